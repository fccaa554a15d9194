"""`coord schema`: the catalog's JSON Schema accepts every example catalog of the repo
(ecosystem.yaml, the test fixtures, every catalog the docs show) and refuses what the
loader refuses: unknown keys, bad enums and ids, and the rules between fields a loader's
validator holds (a todo has a repo unless it is a template, a template has none; a wave
names repos or tags)."""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from coordination.catalog.file.loader import load_catalog
from coordination.cli.main import cli
from coordination.cli.schema import catalog_schema
from coordination.errors import CatalogError

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[3]
#: Every example catalog file in the repo: the one the demo copies, and the test fixtures.
EXAMPLES = [ROOT / "ecosystem.yaml", *sorted((ROOT / "tests").rglob("fixtures/*.yaml"))]


#: The Markdown files whose yaml blocks are checked: the README, the architecture paper
#: and every page of the docs.
PAGES = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").rglob("*.md"))]
#: An excerpt's items, by their ids' prefix: the model (a `$defs` entry) each is.
ITEM_DEFS = {"ISSUE": "Issue", "PLAN": "Plan", "TODO": "Todo", "DEP": "Dependency",
             "MS": "Milestone"}


def _excerpt_def(doc: object) -> str | None:
    """What an excerpt of a catalog is: ``""`` for (a part of) the whole catalog, the
    `$defs` entry it is, or None (not catalog-looking: another file's YAML)."""
    schema = catalog_schema()
    top = set(schema["properties"])  # type: ignore[arg-type]
    coordination = set(schema["$defs"]["Coordination"]["properties"])  # type: ignore[index]
    if isinstance(doc, dict) and doc:
        if set(doc) <= top:
            return ""
        if set(doc) <= coordination:
            return "Coordination"
    if isinstance(doc, list) and doc and all(isinstance(x, dict) for x in doc):
        kinds = {ITEM_DEFS.get(str(x.get("id", "")).split("-")[0]) for x in doc}
        if len(kinds) == 1 and None not in kinds:
            return kinds.pop()
    return None


def docs_catalogs() -> list[tuple[str, str, str | None]]:
    """Every catalog-looking ```yaml block of the README, ARCHITECTURE.md and the docs,
    wherever it is in the page (a Markdown parser finds them): (page:line, text, what it
    is). A whole catalog (a mapping with `version:`) is checked as it is (what is ``None``);
    an excerpt (some of its top-level keys, of `coordination:`'s, a list of plans or
    todos...) against the schema of what it is, fields it leaves out allowed."""
    from tests.docs.examples import blocks

    found = []
    for page in PAGES:
        for b in blocks(page):
            if b.lang not in ("yaml", "yml"):
                continue
            doc = read_yaml(b.text)
            where = f"{page.relative_to(ROOT)}:{b.line}"
            if isinstance(doc, dict) and "version" in doc:
                found.append((where, b.text, None))
            else:
                what = _excerpt_def(doc)
                if what is not None:
                    found.append((where, b.text, what))
    return found


def _leniently(node: Any) -> Any:
    """The schema without its ``required`` lists (but in ``if``: what a rule is about
    stays), for an excerpt."""
    if isinstance(node, dict):
        return {k: (v if k == "if" else _leniently(v)) for k, v in node.items()
                if k != "required"}
    if isinstance(node, list):
        return [_leniently(x) for x in node]
    return node


def read_yaml(text: str) -> Any:
    """``text`` read as the catalog's loader and a YAML 1.2 editor read it (ruamel): a
    plan's ``on:`` is the key "on" there, where PyYAML (YAML 1.1) reads ``True``."""
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(text)


def as_json(path: Path) -> Any:
    """The YAML document as JSON would hold it (dates become ISO text, as in a file
    an editor validates)."""
    return json.loads(json.dumps(read_yaml(path.read_text()), default=str))


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = catalog_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_catalog_is_valid(validator: Any, path: Path) -> None:
    load_catalog(path.read_bytes(), str(path))  # the loader takes it...
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(as_json(path))]
    assert errors == []  # ...and so does the schema


def test_the_docs_show_catalogs() -> None:
    found = docs_catalogs()
    pages = {where.split(":")[0] for where, _, what in found if what is None}
    assert {"README.md", "docs/tutorials/first-sweep.md", "docs/explanation/catalog.md"} <= pages
    excerpts = {where.split(":")[0] for where, _, what in found if what is not None}
    assert {"docs/how-to/cache.md", "docs/explanation/changes.md",
            "docs/tutorials/fleet-change.md"} <= excerpts


def test_an_indented_catalog_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "p.md"
    page.write_text("# P\n\n1. Write it:\n\n   ```yaml\n   version: 1\n   repos: []\n   ```\n"
                    "\n~~~yaml\n- {id: TODO-001, task: t, repo: api}\n~~~\n")
    monkeypatch.setattr(sys.modules[__name__], "PAGES", [page])
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert [(w, what) for w, _, what in docs_catalogs()] == [("p.md:5", None), ("p.md:10", "Todo")]


@pytest.mark.parametrize("where, text, what", docs_catalogs(), ids=[w for w, _, _ in docs_catalogs()])
def test_every_catalog_the_docs_show_is_valid(validator: Any, where: str, text: str,
                                              what: str | None) -> None:
    doc = json.loads(json.dumps(read_yaml(text), default=str))
    if what is None:
        load_catalog(text.encode(), where)  # the loader takes it...
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    else:
        schema = _leniently(catalog_schema())
        if what:
            schema = {"$ref": f"#/$defs/{what}", "$defs": schema["$defs"]}
            if isinstance(doc, list):
                schema = {"type": "array", "items": schema, "$defs": schema["$defs"]}
        cls = jsonschema.validators.validator_for(catalog_schema())
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in cls(schema).iter_errors(doc)]
    assert errors == [], where  # ...and so does the schema


def test_a_template_is_valid(validator: Any) -> None:
    doc = as_json(EXAMPLES[0])
    todo = doc["coordination"]["todos"][0]
    del todo["repo"]
    todo.update(for_each="tag:python", deps="follow")
    load_catalog(yaml.safe_dump(doc).encode(), "template.yaml")
    assert [e.message for e in validator.iter_errors(doc)] == []


Doc = dict[str, Any]


def _todo(d: Doc) -> Doc:
    return d["coordination"]["todos"][0]  # type: ignore[no-any-return]


def _plan(d: Doc) -> Doc:
    return d["coordination"]["plans"][0]  # type: ignore[no-any-return]


def _repo(d: Doc) -> Doc:
    return d["repos"][0]  # type: ignore[no-any-return]


def _template(d: Doc, selector: str) -> None:
    del _todo(d)["repo"]
    _todo(d)["for_each"] = selector


def _wave(**kw: Any) -> Any:
    return lambda d: _plan(d).update(waves=[{"name": "canary", "repos": ["api"], **kw}])


def _gate(**kw: Any) -> Any:
    def put(d: Doc) -> None:
        _todo(d).pop("run", None)
        _todo(d)["gate"] = kw
    return put


def _notify(**kw: Any) -> Any:
    return lambda d: d.update(notify=[{"url": "https://hooks.example/coord", **kw}])


#: What the loader refuses, and the schema must too (each a change to ecosystem.yaml).
REFUSED: dict[str, Any] = {
    "unknown key": lambda d: _repo(d).update(colour="blue"),
    "bad enum": lambda d: _todo(d).update(status="finished"),
    "bad id": lambda d: _todo(d).update(id="TASK-1"),
    "bad dependency type": lambda d: d["coordination"]["dependencies"][0].update(type="transitive"),
    "bad source line": lambda d: d["coordination"]["dependencies"][0].update(
        source={"file": "go.mod", "line": 0}),
    "unknown top-level key": lambda d: d.update(repositories=[]),
    "todo with neither repo nor for_each": lambda d: _todo(d).pop("repo"),
    "todo with an empty repo": lambda d: _todo(d).update(repo=""),
    "template with a repo": lambda d: _todo(d).update(for_each="tag:python"),
    "deps without for_each": lambda d: _todo(d).update(deps="follow"),
    "instances without for_each": lambda d: _todo(d).update(instances={"api": "completed"}),
    "empty for_each": lambda d: _template(d, ""),
    "wave without repos or tags": lambda d: _plan(d).update(waves=[{"name": "canary"}]),
    "wave with empty repos": lambda d: _plan(d).update(waves=[{"name": "canary", "repos": []}]),
    # pacing: parse_rate
    "pace rate fast": lambda d: _plan(d).update(pace={"rate": "fast"}),
    "pace rate 0/hour": lambda d: _plan(d).update(pace={"rate": "0/hour"}),
    "pace rate over a period of 0": lambda d: _plan(d).update(pace={"rate": "5/0s"}),
    "pace rate over 30 days": lambda d: _plan(d).update(pace={"rate": "1/31d"}),
    "pace rate over 721 hours": lambda d: _repo(d).update(pace={"rate": "1/721h"}),
    "pace rate in an unknown unit": lambda d: _plan(d).update(pace={"rate": "10/week"}),
    # webhooks
    "notify ftp url": _notify(url="ftp://hooks.example/x"),
    "notify url without a host": _notify(url="http://:8080/x"),
    "notify url with only a user": _notify(url="http://user@:8080/x"),
    "notify unknown event": _notify(events=["sweep.exploded"]),
    "notify empty events": _notify(events=[]),
    "notify secret_env not a name": _notify(secret_env="hunter2 secret"),
    # git names (git_branch, git_remote)
    "default_branch -x": lambda d: _repo(d).update(default_branch="-x"),
    "default_branch a..b": lambda d: _repo(d).update(default_branch="a..b"),
    "default_branch ending .lock": lambda d: _repo(d).update(default_branch="main.lock"),
    "default_branch ending /": lambda d: _repo(d).update(default_branch="release/"),
    "default_branch with a newline": lambda d: _repo(d).update(default_branch="main\n"),
    "change branch a//b": lambda d: _plan(d).update(change={"branch": "a//b"}),
    "change base .x": lambda d: _plan(d).update(change={"branch": "b", "base": ".x"}),
    "remote ext::": lambda d: _repo(d).update(remote="ext::sh -c touch% /tmp/pwned"),
    "remote --upload-pack": lambda d: _repo(d).update(remote="--upload-pack=touch /tmp/x"),
    "remote with a space": lambda d: _repo(d).update(remote="origin x"),
    "clone url with a password": lambda d: _repo(d).update(url="https://bo:s3cret@git.example/api"),
    "clone url --upload-pack": lambda d: _repo(d).update(url="--upload-pack=touch /tmp/x"),
    "change remote fd::": lambda d: _plan(d).update(change={"branch": "b", "remote": "fd::3"}),
    # forge: on a repo
    "forge of an unknown kind": lambda d: _repo(d).update(forge={"kind": "bitbucket",
                                                                 "project": "a/b"}),
    "github project with three parts": lambda d: _repo(d).update(
        forge={"kind": "github", "project": "a/b/c"}),
    "gitlab project of one part": lambda d: _repo(d).update(forge={"kind": "gitlab",
                                                                   "project": "grp"}),
    "forge project ending .git": lambda d: _repo(d).update(forge={"kind": "gitea",
                                                                  "project": "a/b.git"}),
    "forge api over http to a remote host": lambda d: _repo(d).update(
        forge={"kind": "gitlab", "project": "g/p", "api": "http://gitlab.example.com"}),
    "forge token_env not a name": lambda d: _repo(d).update(
        forge={"kind": "github", "project": "a/b", "token_env": "my token"}),
    "change land by carrier pigeon": lambda d: _plan(d).update(
        change={"branch": "b", "land": "pigeon"}),
    "change merge_method octopus": lambda d: _plan(d).update(
        change={"branch": "b", "land": "pr", "merge_method": "octopus"}),
    # the rest of one object's rules
    "cache inputs ../x": lambda d: _todo(d).update(cache={"inputs": ["../x"]}),
    "cache inputs a/../../x": lambda d: _todo(d).update(cache={"inputs": ["a/../../x"]}),
    "cache inputs /abs": lambda d: _todo(d).update(cache={"inputs": ["/etc/passwd"]}),
    "created yesterday": lambda d: d["coordination"]["issues"][0].update(created="yesterday"),
    "due in month 13": lambda d: _plan(d)["milestones"][0].update(due="2026-13-01"),
    "for_each tag:": lambda d: _template(d, "tag:"),
    "for_each !...": lambda d: _template(d, "!..."),
    "for_each with an empty term": lambda d: _template(d, "api,,web"),
    "for_each of an unknown kind": lambda d: _template(d, "lang:go"),
    "for_each changed:-x": lambda d: _template(d, "changed:--output=x"),
    "wave soak 40d": _wave(soak="40d"),
    "wave soak 10x": _wave(soak="10x"),
    "gate expires 31d": _gate(expires="31d"),
    "gate expires 750h": _gate(expires="750h"),
    "timeout as text not a number": lambda d: _todo(d).update(timeout="600s"),
    "verify as a word not a boolean": lambda d: _todo(d).update(verify="maybe"),
    "env value a list": lambda d: _todo(d).update(env={"A": [1]}),
    "env value null": lambda d: _todo(d).update(env={"A": None}),
}

#: What the loader accepts, and the schema must too (or an editor flags a valid catalog).
ACCEPTED: dict[str, Any] = {
    "env PORT 8080": lambda d: _todo(d).update(env={"PORT": 8080}),
    "env DEBUG true and PYTHON 3.13": lambda d: _todo(d).update(env={"DEBUG": True,
                                                                     "PYTHON": 3.13}),
    "outputs X 1": lambda d: _todo(d).update(outputs={"X": 1}),
    "timeout '600'": lambda d: _todo(d).update(timeout="600"),
    "timeout ' 1.5e3 '": lambda d: _todo(d).update(timeout=" 1.5e3 "),
    "concurrency '2'": lambda d: _repo(d).update(concurrency="2"),
    "concurrency 2.0": lambda d: _repo(d).update(concurrency=2.0),
    "retries ' 3 '": lambda d: _todo(d).update(retries=" 3 "),
    "estimated_hours '2.5'": lambda d: _todo(d).update(estimated_hours="2.5"),
    "verify yes (YAML 1.2 reads it as text)": lambda d: _todo(d).update(verify="yes"),
    "land_hooks 'On'": lambda d: _repo(d).update(land_hooks="On"),
    "verify 1": lambda d: _todo(d).update(verify=1),
    "starter_may_approve 'no'": _gate(starter_may_approve="no"),
    "wave soak '10m'": _wave(soak="10m"),
    "wave soak '30d' (the most)": _wave(soak="30d"),
    "wave soak 90": _wave(soak=90),
    "wave success_rate '0.5'": _wave(require={"success_rate": "0.5"}),
    "gate expires '24h'": _gate(expires="24h", approvals=2, **{"from": ["ana", "bo"]}),
    "created as a date": lambda d: d["coordination"]["issues"][0].update(created="2026-01-05"),
    "pace rate 10/HOUR": lambda d: _plan(d).update(pace={"rate": "10/HOUR"}),
    "pace rate 5/10s": lambda d: _plan(d).update(pace={"rate": "5/10s"}),
    "pace rate 1/30days": lambda d: _plan(d).update(pace={"rate": " 1 / 30 days "}),
    "pace rate 2/0.5d": lambda d: _repo(d).update(pace={"rate": "2/0.5d", "key": "host"}),
    "notify url HTTPS": _notify(url="HTTPS://hooks.example/coord"),
    "notify url with a user and port": _notify(url="https://bot@hooks.example:8443/x"),
    "notify events of governance": _notify(events=["wave.started", "gate.waiting"],
                                           secret_env="COORD_HOOK_SECRET", format="slack"),
    "remote an ssh url": lambda d: _repo(d).update(remote="git@github.com:acme/api.git"),
    "remote a path": lambda d: _repo(d).update(remote="../remotes/api.git"),
    "clone url with a user": lambda d: _repo(d).update(url="https://bo@git.example/api.git"),
    "clone url ssh with a port": lambda d: _repo(d).update(url="ssh://git@git.example:22/api"),
    "default_branch release/1.0": lambda d: _repo(d).update(default_branch="release/1.0"),
    "change branch and base": lambda d: _plan(d).update(
        change={"branch": "bump/libcore-2.0", "base": "develop", "remote": "upstream"}),
    "forge github": lambda d: _repo(d).update(forge={"kind": "github", "project": "acme/api"}),
    "forge gitlab subgroup, self-hosted": lambda d: _repo(d).update(forge={
        "kind": "gitlab", "project": "grp/sub/api", "api": "https://gitlab.example.com/api/v4",
        "token_env": "GL_TOKEN", "webhook_secret_env": "GL_HOOK"}),
    "forge gitea on loopback http": lambda d: _repo(d).update(forge={
        "kind": "gitea", "project": "acme/api", "api": "http://127.0.0.1:3000"}),
    "change land pr": lambda d: _plan(d).update(change={"branch": "b", "land": "pr",
                                                        "merge_method": "rebase",
                                                        "draft": True}),
    "cache inputs globs": lambda d: _todo(d).update(
        cache={"inputs": [".env", "vendor/**/*.whl", "a..b/x"], "env": ["CI"]}),
    "for_each graph forms": lambda d: _template(d, "...libcore, !legacy,tag:py*"),
    "for_each a..., ...^b": lambda d: _template(d, "api...,...^core,role:service"),
}

#: What the loader refuses and JSON Schema cannot say (the rule is between fields, or
#: about the whole catalog), each with what docs/reference/schema.md says of it.
NOT_EXPRESSED: dict[str, tuple[Any, str]] = {
    "gate approvals above its from list": (
        _gate(approvals=3, **{"from": ["ana", "bo"]}), "more approvals than"),
    "a todo blocked by an unknown todo": (
        lambda d: _todo(d).update(blocked_by=["TODO-999"]), "references"),
    "two todos with one id": (
        lambda d: d["coordination"]["todos"].append(copy.deepcopy(_todo(d))), "unique ids"),
    "a number written as text out of its bounds": (
        lambda d: _todo(d).update(timeout="0"), "written as text"),
    "a day that does not exist": (
        lambda d: d["coordination"]["issues"][0].update(created="2026-02-30"), "February 30"),
}


def _changed(change: Any) -> Doc:
    doc = copy.deepcopy(as_json(EXAMPLES[0]))
    change(doc)
    return doc


def _loads(doc: Doc) -> bool:
    try:
        load_catalog(yaml.safe_dump(doc).encode(), "catalog.yaml")
    except CatalogError:
        return False
    return True


@pytest.mark.parametrize("what", list(REFUSED))
def test_it_refuses_what_the_loader_refuses(validator: Any, what: str) -> None:
    bad = _changed(REFUSED[what])
    assert not _loads(bad), f"the loader takes {what}: not a refusal to test"
    assert list(validator.iter_errors(bad)), f"the schema let {what} through"


@pytest.mark.parametrize("what", list(ACCEPTED))
def test_it_accepts_what_the_loader_accepts(validator: Any, what: str) -> None:
    good = _changed(ACCEPTED[what])
    assert _loads(good), f"the loader refuses {what}"
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(good)]
    assert errors == [], f"an editor would flag {what}, which the loader takes"


@pytest.mark.parametrize("what", list(NOT_EXPRESSED))
def test_what_the_schema_cannot_say_is_on_the_schema_page(validator: Any, what: str) -> None:
    change, phrase = NOT_EXPRESSED[what]
    doc = _changed(change)
    assert not _loads(doc), f"the loader takes {what}"
    assert not list(validator.iter_errors(doc)), \
        f"the schema refuses {what} now: move it to REFUSED"
    page = " ".join((ROOT / "docs/reference/schema.md").read_text(encoding="utf-8").split())
    assert phrase in page, f"docs/reference/schema.md does not say the schema lets {what} through"


def test_the_schema_says_what_fields_are() -> None:
    schema = catalog_schema()
    defs = schema["$defs"]
    assert isinstance(defs, dict)
    assert defs["DependencyType"]["enum"] == ["runtime", "build", "dev", "test", "api", "peer", "optional"]
    assert defs["TodoStatus"]["enum"][0] == "pending"
    assert "description" in defs["DependencySource"]["properties"]["line"]
    assert defs["Repo"]["additionalProperties"] is False


def test_coord_schema_prints_it() -> None:
    out = CliRunner().invoke(cli, ["schema"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == json.loads(json.dumps(catalog_schema()))


def test_the_schema_line_points_at_the_file_written_beside_the_catalog(tmp_path: Path) -> None:
    """What `coord init` writes resolves for an editor with nothing hosted: the YAML
    language server reads a relative ``$schema=`` from the YAML file's directory, and
    write_schema puts the schema there."""
    from coordination.catalog.file.beside import SCHEMA
    from coordination.cli.schema import HEADER, write_schema

    m = re.match(r"^#\s*yaml-language-server\s*:.*\$schema=(\S+)\n$", HEADER)
    assert m is not None, HEADER  # (the language server's modeline)
    target = m.group(1)
    assert target == SCHEMA and not re.match(r"[a-z]+://", target)
    assert not Path(target).is_absolute() and ".." not in Path(target).parts
    catalog = tmp_path / "fleet" / "ecosystem.yaml"
    catalog.parent.mkdir()
    catalog.write_text(HEADER + "version: 1\n")
    written = write_schema(catalog.parent)
    assert written == catalog.parent / target
    assert json.loads(written.read_text()) == json.loads(json.dumps(catalog_schema()))
    load_catalog(catalog.read_bytes(), str(catalog))  # the line is a comment to the loader
    page = (ROOT / "docs/reference/schema.md").read_text(encoding="utf-8")
    assert HEADER.strip() in page and "example.com" not in page
