"""Manifest fidelity through `coord init --check [--apply]` (run in process, on real git
checkouts): a manifest coord cannot read entirely is *held*, reported with its file and
line, every dependency it gave kept, and --apply exits 1 naming it without touching
them; a moved line is no drift; a changed clone URL is; types follow each ecosystem's
sections; nothing outside the checkout is read, globbed or printed."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coordination.fleet.manifests.base import said
from coordination.catalog.file.store import CatalogStore
from coordination.cli.main import main
from coordination.fleet.manifests import base

pytestmark = pytest.mark.timeout(60)

SECRET = "root:x:0:0:SECRET-LINE:/root:/bin/bash"


def checkout(root: Path, name: str, files: dict[str, str], url: str | None = None) -> Path:
    d = root / name
    d.mkdir(parents=True)
    for rel, text in files.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(text)
    subprocess.run(["git", "init", "-q", "-b", "main", str(d)], check=True)
    if url:
        subprocess.run(["git", "-C", str(d), "remote", "add", "origin", url], check=True)
    return d


class Coord:
    def __init__(self, fleet: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.fleet, self.capsys = fleet, capsys

    def __call__(self, *args: str, expect: int = 0) -> tuple[str, str]:
        self.capsys.readouterr()
        cwd = os.getcwd()
        os.chdir(self.fleet)
        try:
            main(["-f", str(self.fleet / "ecosystem.yaml"), *args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        finally:
            os.chdir(cwd)
        out, err = self.capsys.readouterr()
        assert code == expect, f"coord {' '.join(args)}: exit {code}\n{out}\n{err}"
        return out, err

    def json(self, *args: str, expect: int = 0) -> Any:
        return json.loads(self(*args, "--json", expect=expect)[0])

    def deps(self) -> dict[tuple[str, str], Any]:
        cat = CatalogStore(self.fleet / "ecosystem.yaml", cache_dir=None).load()
        return {(d.consumer, d.provider): d for d in cat.coordination.dependencies}


@pytest.fixture
def coord(tmp_path: Path, capsys: pytest.CaptureFixture[str],
          monkeypatch: pytest.MonkeyPatch) -> Coord:
    monkeypatch.delenv("COORD_ECOSYSTEM", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    return Coord(fleet, capsys)


PROVIDERS = {
    "pylib": {"pyproject.toml": '[project]\nname = "acme-lib"\n'},
    "jslib": {"package.json": '{"name": "@acme/lib"}\n'},
    "golib": {"go.mod": "module github.com/acme/lib\n\ngo 1.22\n"},
    "rslib": {"Cargo.toml": '[package]\nname = "acme-lib"\nversion = "1.0.0"\n'},
    "jvlib": {"pom.xml": "<project><groupId>com.acme</groupId><artifactId>lib</artifactId>"
                         "</project>\n"},
}
#: app's manifests: each names its ecosystem's lib.
APP = {
    "pyproject.toml": '[project]\nname = "acme-app"\ndependencies = [\n  "acme-lib>=1.2, <2",\n]\n',
    "package.json": '{\n  "name": "@acme/app",\n  "dependencies": {\n    "@acme/lib": "^1"\n  }\n}\n',
    "go.mod": ("module github.com/acme/app\n\ngo 1.22\n\nrequire (\n"
               "\tgithub.com/acme/lib v1.0.0\n)\n"),
    "Cargo.toml": '[package]\nname = "acme-app"\nversion = "0.1.0"\n\n[dependencies]\n'
                  'acme-lib = "1"\n',
    "pom.xml": ("<project>\n  <groupId>com.acme</groupId>\n  <artifactId>app</artifactId>\n"
                "  <dependencies>\n    <dependency>\n      <groupId>com.acme</groupId>\n"
                "      <artifactId>lib</artifactId>\n    </dependency>\n  </dependencies>\n"
                "</project>\n"),
}
FILE_OF = {"pylib": "pyproject.toml", "jslib": "package.json", "golib": "go.mod",
           "rslib": "Cargo.toml", "jvlib": "pom.xml"}


def fleet_of(coord: Coord) -> None:
    for name, files in PROVIDERS.items():
        checkout(coord.fleet, name, files)
    checkout(coord.fleet, "app", APP)
    coord("init", str(coord.fleet))
    assert set(coord.deps()) == {("app", p) for p in PROVIDERS}


def _fifo(p: Path) -> None:
    p.unlink()
    os.mkfifo(p)


def _symlink_out(p: Path) -> None:
    outside = p.parents[2] / "outside.txt"
    outside.write_text(SECRET + "\n")
    p.unlink()
    p.symlink_to(outside)


def _oversized(p: Path) -> None:
    with open(p, "a") as f:
        f.truncate(base.MAX_MANIFEST_BYTES + 1)


BROKEN: dict[str, tuple[str, Callable[[Path], None], int | None, str]] = {
    # form: (provider whose edge app's manifest gives, how it breaks, line, message part)
    "go.mod unknown directive": ("golib", lambda p: p.write_text(
        p.read_text().replace("module ", "modul ")), 1, "unknown directive 'modul'"),
    "go.mod unclosed require": ("golib", lambda p: p.write_text(
        p.read_text().replace("\n)\n", "\n")), 5, "never closed"),
    "go.mod require without version": ("golib", lambda p: p.write_text(
        p.read_text().replace(" v1.0.0", "")), 6, "malformed require"),
    "go.mod FIFO": ("golib", _fifo, None, "not a regular file"),
    "package.json truncated": ("jslib", lambda p: p.write_text(p.read_text()[:40]), 3, "Unterminated"),
    "package.json 1,000 deep": ("jslib", lambda p: p.write_text(
        '{"name": "@acme/app", "dependencies": {"@acme/lib": "^1"},\n"x": '
        + "[" * 1000 + "]" * 1000 + "}\n"), 2, "nested too deep"),
    "package.json oversized": ("jslib", _oversized, None, "over the"),
    "package.json symlink out": ("jslib", _symlink_out, None, "leading out of the checkout"),
    "pyproject truncated": ("pylib", lambda p: p.write_text(p.read_text()[:60]), None, ""),
    "pyproject 1,000 deep": ("pylib", lambda p: p.write_text(
        p.read_text() + "x = " + "[" * 1000 + "]" * 1000 + "\n"), 6, "nested too deep"),
    "pyproject symlink out": ("pylib", _symlink_out, None, "leading out of the checkout"),
    "Cargo.toml truncated": ("rslib", lambda p: p.write_text(p.read_text()[:-3]), None, ""),
    "Cargo.toml FIFO": ("rslib", _fifo, None, "not a regular file"),
    "pom.xml truncated": ("jvlib", lambda p: p.write_text(p.read_text()[:120]), None, ""),
    "pom.xml symlink out": ("jvlib", _symlink_out, None, "leading out of the checkout"),
}


@pytest.mark.parametrize("form", sorted(BROKEN))
def test_a_manifest_not_read_entirely_is_held(coord: Coord, form: str) -> None:
    provider, breaks, line, message = BROKEN[form]
    fleet_of(coord)
    before = (coord.fleet / "ecosystem.yaml").read_text()
    deps = coord.deps()
    rel = FILE_OF[provider]
    breaks(coord.fleet / "app" / rel)
    drift = coord.json("init", "--check", expect=1)
    assert drift["dependencies_lost"] == [] and drift["dependencies_changed"] == []
    [u] = [u for u in drift["manifests_unreadable"] if u["file"] == rel]
    assert u["repo"] == "app" and deps[("app", provider)].id in u["held"]
    if line is not None:
        assert u["line"] == line, u
    assert message in u["message"]
    out, err = coord("init", "--check", "--apply", expect=1)
    assert f"app: {rel}" in err and "fix the manifest" in err
    assert "Traceback" not in out + err and SECRET not in out + err
    # Nothing changed: every dependency the manifest gave is still there, as it was.
    assert (coord.fleet / "ecosystem.yaml").read_text() == before
    applied = coord.json("init", "--check", "--apply", expect=1)
    assert "manifest_unreadable" in [x["kind"] for x in applied["left"]]
    assert SECRET not in json.dumps(applied)


def test_a_moved_line_is_no_drift_and_apply_refreshes_it(coord: Coord) -> None:
    fleet_of(coord)
    py = coord.fleet / "app" / "pyproject.toml"
    py.write_text(py.read_text().replace('name = "acme-app"\n',
                                         'name = "acme-app"\nclassifiers = ["x"]\n'))
    drift = coord.json("init", "--check")
    assert drift["drift"] is False and drift["dependencies_changed"] == []
    dep = coord.deps()[("app", "pylib")]
    assert drift["dependencies_moved"] == [
        {"id": dep.id, "source": {"file": "pyproject.toml", "line": 5}}]
    out, _ = coord("init", "--check", "--apply")
    # Issue #61: said as what it is, a move, not an update of what it says.
    assert f"1 dependency moved (source line refreshed: {dep.id})" in out, out
    assert "updated" not in out
    dep = coord.deps()[("app", "pylib")]
    assert dep.source is not None and dep.source.line == 5
    assert dep.version_constraint == ">=1.2, <2"  # as written, not packaging's "<2,>=1.2"


def test_a_changed_clone_url_is_drift_and_apply_takes_it(coord: Coord) -> None:
    checkout(coord.fleet, "lib", PROVIDERS["pylib"], url="https://git.example.com/acme/lib.git")
    coord("init", str(coord.fleet))
    subprocess.run(["git", "-C", str(coord.fleet / "lib"), "remote", "set-url", "origin",
                    "https://git.example.com/platform/lib.git"], check=True)
    drift = coord.json("init", "--check", expect=1)
    assert drift["urls_changed"] == [{"repo": "lib",
                                      "catalog": "https://git.example.com/acme/lib.git",
                                      "now": "https://git.example.com/platform/lib.git"}]
    out, _ = coord("init", "--check", "--apply")
    assert "1 clone URL set" in out
    cat = CatalogStore(coord.fleet / "ecosystem.yaml", cache_dir=None).load()
    assert cat.repo("lib").url == "https://git.example.com/platform/lib.git"  # type: ignore[union-attr]
    assert coord.json("init", "--check")["drift"] is False


def test_types_from_each_ecosystems_sections_and_a_type_change_is_drift(coord: Coord) -> None:
    """npm peer/optional/dev, Python build-system/extras/groups, Go indirect and a nested
    module, Cargo build/dev: each edge's type as its section says; one edge per pair,
    the type that orders most."""
    checkout(coord.fleet, "core", {"package.json": '{"name": "@acme/core"}\n'})
    checkout(coord.fleet, "theme", {"package.json": '{"name": "@acme/theme"}\n'})
    checkout(coord.fleet, "cli", {"package.json": '{"name": "@acme/cli"}\n'})
    checkout(coord.fleet, "web", {"package.json": json.dumps({
        "name": "@acme/web", "peerDependencies": {"@acme/core": "^2"},
        "devDependencies": {"@acme/core": "^2", "@acme/cli": "^1"},
        "optionalDependencies": {"@acme/theme": "1"}}, indent=2)})
    checkout(coord.fleet, "hatch", {"pyproject.toml": '[project]\nname = "acme-hatch"\n'})
    checkout(coord.fleet, "pg", {"pyproject.toml": '[project]\nname = "acme-pg"\n'})
    checkout(coord.fleet, "lint", {"pyproject.toml": '[project]\nname = "acme-lint"\n'})
    checkout(coord.fleet, "svc", {"pyproject.toml": (
        '[build-system]\nrequires = ["acme-hatch"]\n[project]\nname = "acme-svc"\n'
        '[project.optional-dependencies]\npg = ["acme-pg"]\ntest = ["acme-lint"]\n')})
    checkout(coord.fleet, "bus", {"go.mod": "module github.com/acme/bus\n\ngo 1.22\n"})
    checkout(coord.fleet, "mon", {
        "go.mod": ("module github.com/acme/mon\n\ngo 1.22\n\nrequire (\n"
                   "\tgithub.com/acme/bus v1.0.0 // indirect\n)\n"),
        # a nested module: the repo's too (what it requires, what it provides)
        "common/assets/go.mod": ("module github.com/acme/mon/assets\n\ngo 1.22\n\n"
                                 "require github.com/acme/gw v0.1.0\n")})
    checkout(coord.fleet, "gw", {"go.mod": (
        "module github.com/acme/gw\n\ngo 1.22\n\nrequire github.com/acme/mon/assets v0.1.0\n")})
    checkout(coord.fleet, "gen", {"Cargo.toml": '[package]\nname = "acme-gen"\n'})
    checkout(coord.fleet, "fix", {"Cargo.toml": '[package]\nname = "acme-fix"\n'})
    checkout(coord.fleet, "rt", {"Cargo.toml": (
        '[package]\nname = "acme-rt"\n[build-dependencies]\nacme-gen = "1"\n'
        '[dev-dependencies]\nacme_fix = "0.1"\n')})
    coord("init", str(coord.fleet))
    got = {k: (d.type.value, d.indirect) for k, d in coord.deps().items()}
    assert got == {
        ("web", "core"): ("peer", False), ("web", "cli"): ("dev", False),
        ("web", "theme"): ("optional", False),
        ("svc", "hatch"): ("build", False), ("svc", "pg"): ("optional", False),
        ("svc", "lint"): ("dev", False),
        ("mon", "bus"): ("runtime", True), ("mon", "gw"): ("runtime", False),
        ("gw", "mon"): ("runtime", False),
        ("rt", "gen"): ("build", False), ("rt", "fix"): ("dev", False)}
    text = (coord.fleet / "ecosystem.yaml").read_text()
    assert "indirect: true" in text and "indirect: false" not in text
    # A type change is drift; --apply takes it (indirect too).
    web = coord.fleet / "web" / "package.json"
    web.write_text(json.dumps({"name": "@acme/web", "dependencies": {"@acme/core": "^2"},
                               "devDependencies": {"@acme/cli": "^1"},
                               "optionalDependencies": {"@acme/theme": "1"}}, indent=2))
    gomod = coord.fleet / "mon" / "go.mod"
    gomod.write_text(gomod.read_text().replace(" // indirect", ""))
    drift = coord.json("init", "--check", expect=1)
    changes = {(c["consumer"], c["provider"]): c["changes"] for c in drift["dependencies_changed"]}
    assert changes[("web", "core")]["type"] == ["peer", "runtime"]
    assert changes[("mon", "bus")] == {"indirect": [True, False]}
    coord("init", "--check", "--apply")
    got = {k: (d.type.value, d.indirect) for k, d in coord.deps().items()}
    assert got[("web", "core")] == ("runtime", False) and got[("mon", "bus")] == ("runtime", False)
    assert "indirect" not in (coord.fleet / "ecosystem.yaml").read_text()
    assert coord.json("init", "--check")["drift"] is False


# -- inside the fleet (issue 49 item 5) ----------------------------------------------
def test_a_symlink_out_of_the_checkout_is_never_followed_nor_printed(coord: Coord) -> None:
    """`requirements-dev.txt -> a file outside the fleet`: not read (noted), none of its
    lines in `init`, `init --json` or `init --from`'s output."""
    outside = coord.fleet.parent / "passwd"
    outside.write_text(f"{SECRET}\nacme-lib\n")
    app = checkout(coord.fleet, "app", {"pyproject.toml": '[project]\nname = "acme-app"\n'})
    (app / "requirements-dev.txt").symlink_to(outside)
    checkout(coord.fleet, "lib", PROVIDERS["pylib"])
    listed = coord.fleet / "repos.txt"
    listed.write_text("app\nlib\n")
    for args in (("init", str(coord.fleet), "--dry-run"),
                 ("init", str(coord.fleet), "--dry-run", "--json"),
                 ("init", "--from", str(listed), "--dry-run", "--json")):
        out, err = coord(*args)
        assert SECRET not in out + err and "SECRET" not in out + err
        assert "requirements-dev.txt" in out and "leading out of the checkout" in out
    doc = coord.json("init", str(coord.fleet), "--dry-run")
    assert doc["dependencies_added"] == []  # acme-lib, named only out there, is not read


def test_workspace_globs_and_members_outside_the_checkout_are_refused(coord: Coord) -> None:
    """`/**` (which walked the whole filesystem), `../*`, an absolute path: not
    expanded, a note on their line; Cargo, go.work and Maven members outside: not read
    nor claimed, but a dependency on the repo there, as go.work's and npm's are; a
    member reached through a symlink out: not followed."""
    checkout(coord.fleet, "other", {"package.json": '{"name": "@acme/other"}\n',
                                    "Cargo.toml": '[package]\nname = "acme-other"\n',
                                    "pom.xml": "<project><groupId>com.acme</groupId>"
                                               "<artifactId>other</artifactId></project>\n"})
    web = checkout(coord.fleet, "web", {
        "package.json": '{"name": "@acme/web", "workspaces": ["packages/*", "/**"]}\n',
        "pnpm-workspace.yaml": f"packages:\n  - '../*'\n  - '{coord.fleet}/other'\n",
        "Cargo.toml": '[workspace]\nmembers = ["../other"]\n',
        "pom.xml": ("<project><groupId>com.acme</groupId><artifactId>web</artifactId>\n"
                    "<modules><module>../other</module></modules></project>\n"),
        "packages/ui/package.json": '{"name": "@acme/ui"}\n'})
    (web / "packages" / "escape").symlink_to(coord.fleet / "other")
    doc = coord.json("init", str(coord.fleet), "--dry-run")
    notes = "\n".join(doc["notes"])
    for where in ("package.json:1: workspace member '/**'",
                  "pnpm-workspace.yaml:2: workspace member '../*'",
                  # (an echo of the manifest is cut at 80 characters: a long tmp path is)
                  said(f"pnpm-workspace.yaml:3: workspace member '{coord.fleet}/other'"),
                  "Cargo.toml:2: workspace member '../other'",
                  "pom.xml:2: module '../other'"):
        assert f"web: {where} leaves the checkout: not read" in notes, notes
    assert doc["notes"] and not doc["manifests_unreadable"]
    # web provides only its own packages: nothing of `other` claimed through a member;
    # the Cargo member out there (and the Maven module) is a build dependency on it
    assert doc["dependencies_added"] == [{"consumer": "web", "provider": "other",
                                          "type": "build",
                                          "source": {"file": "Cargo.toml", "line": 2}}]
    from coordination.fleet import manifests
    m = manifests.read(web)
    assert m.provides == {("npm", "@acme/web"), ("npm", "@acme/ui"), ("maven", "com.acme:web")}


def test_nesting_too_deep_is_a_located_message(tmp_path: Path) -> None:
    from coordination.fleet import manifests
    root = tmp_path / "web"
    root.mkdir()
    (root / "pnpm-workspace.yaml").write_text("packages:\n  - x\nextra: " + "[" * 1000
                                              + "]" * 1000 + "\n")
    (root / "Cargo.toml").write_text('[package]\nname = "x"\n\nx = ' + "{a = " * 1000
                                     + "1" + "}" * 1000 + "\n")
    m = manifests.read(root)
    got = {p.file: (p.line, p.message) for p in m.problems}
    assert got == {"pnpm-workspace.yaml": (3, "nested too deep to read"),
                   "Cargo.toml": (4, "nested too deep to read")}


def test_80000_dependencies_are_read_in_linear_time(tmp_path: Path) -> None:
    """Line lookup is linear: a package.json naming 80,000 packages is read in under
    2 s on a quiet machine (bench/fleet_init.py --big times it; it took 135 s when each
    lookup searched its section from the top). Bound: 5 s of CPU time, generous for a
    busy box, and still 25 times less than the quadratic lookup took."""
    import time

    from coordination.fleet import manifests
    root = tmp_path / "big"
    root.mkdir()
    deps = ",\n".join(f'    "pkg-{i}": "^1.{i}"' for i in range(80_000))
    (root / "package.json").write_text(
        '{\n  "name": "big",\n  "dependencies": {\n' + deps + "\n  }\n}\n")
    t0 = time.process_time()
    m = manifests.read(root)
    took = time.process_time() - t0
    assert len(m.requires) == 80_000 and not m.problems
    assert [(r.package[1], r.line) for r in m.requires[:2]] == [("pkg-0", 4), ("pkg-1", 5)]
    assert (m.requires[-1].package[1], m.requires[-1].line) == ("pkg-79999", 80_003)
    assert took < 5.0, took


# -- coord init's own refusals --------------------------------------------------------
def test_a_bad_remote_skips_its_repo_with_a_note(coord: Coord) -> None:
    bad = checkout(coord.fleet, "bad", {"pyproject.toml": '[project]\nname = "acme-bad"\n'})
    with open(bad / ".git" / "config", "a") as f:
        f.write('[remote "up stream"]\n\turl = https://git.example.com/bad.git\n')
    checkout(coord.fleet, "lib", PROVIDERS["pylib"])
    out, _ = coord("init", str(coord.fleet))
    assert "skipped: its remote cannot be written to the catalog" in out
    assert "'up stream' holds whitespace" in out
    cat = CatalogStore(coord.fleet / "ecosystem.yaml", cache_dir=None).load()
    assert [r.name for r in cat.repos] == ["lib"]
    assert coord.json("init", "--check")["drift"] is False  # skipped again, quietly drift-free


def test_a_refused_init_writes_nothing(coord: Coord, monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.catalog.edits.fleet_edits import FleetEdits
    from coordination.errors import UsageError

    def refuse(self: object, edit: object) -> object:
        raise UsageError("refused for the test; nothing was written")

    monkeypatch.setattr(FleetEdits, "apply", refuse)  # the manager's too
    checkout(coord.fleet, "lib", PROVIDERS["pylib"])
    _, err = coord("init", str(coord.fleet), expect=2)
    assert "nothing was written" in err
    assert sorted(p.name for p in coord.fleet.iterdir()) == ["lib"]  # no stub, no .coord


def test_schema_to_an_unwritable_path_is_a_clear_error(coord: Coord, tmp_path: Path) -> None:
    _, err = coord("schema", "-o", str(tmp_path / "no" / "such" / "dir" / "schema.json"),
                   expect=2)
    assert "cannot write it: No such file or directory" in err and "Traceback" not in err
    out, _ = coord("schema", "-o", str(tmp_path / "schema.json"))
    assert json.loads((tmp_path / "schema.json").read_text())["title"].startswith("coord")


def test_the_issues_fleet_shapes_get_the_types_that_order_them(coord: Coord) -> None:
    """Issue 48's fleets as their manifests write them: a Node toolchain whose CLI repo
    is a dev dependency of the libraries it is built from (workspaces); Go modules
    requiring each other `// indirect`, one through a nested module; two Cargo
    workspaces, one's dev-dependencies on the other's crates, the other's runtime ones
    back. Each cycle is closed only by dev or indirect edges, which do not order."""
    checkout(coord.fleet, "md-cli", {"package.json": json.dumps({
        "name": "md-cli", "workspaces": ["packages/*"],
        "dependencies": {"md-parse": "^2", "md-render": "^3"}})})
    (coord.fleet / "md-cli" / "packages" / "cli-core").mkdir(parents=True)
    (coord.fleet / "md-cli" / "packages" / "cli-core" / "package.json").write_text(
        '{"name": "md-cli-core", "peerDependencies": {"md-parse": "*"}}\n')
    for lib in ("md-parse", "md-render"):
        checkout(coord.fleet, lib, {"package.json": json.dumps({
            "name": lib, "devDependencies": {"md-cli": "^1"}}, indent=2)})
    checkout(coord.fleet, "prom", {
        "go.mod": "module example.com/prom\n\ngo 1.22\n",
        "common/assets/go.mod": ("module example.com/prom/assets\n\ngo 1.22\n\nrequire (\n"
                                 "\texample.com/alert v0.27.0 // indirect\n)\n")})
    checkout(coord.fleet, "alert", {"go.mod": (
        "module example.com/alert\n\ngo 1.22\n\nrequire example.com/prom v0.50.0\n"
        "require example.com/prom/assets v0.50.0 // indirect\n")})
    checkout(coord.fleet, "tokio", {
        "Cargo.toml": '[workspace]\nmembers = ["tokio", "tokio-util"]\n',
        "tokio/Cargo.toml": ('[package]\nname = "tokio"\n[dev-dependencies]\n'
                             'tracing = "0.1"\n'),
        "tokio-util/Cargo.toml": '[package]\nname = "tokio-util"\n[dependencies]\ntokio = "1"\n'})
    checkout(coord.fleet, "tracing", {
        "Cargo.toml": '[workspace]\nmembers = ["tracing*"]\n',
        "tracing/Cargo.toml": '[package]\nname = "tracing"\n',
        "tracing-futures/Cargo.toml": ('[package]\nname = "tracing-futures"\n'
                                       '[dependencies]\ntokio = { version = "1", optional = true }\n'
                                       'tracing = { path = "../tracing" }\n')})
    coord("init", str(coord.fleet))
    got = {k: (d.type.value, d.indirect, d.source.file if d.source else None)
           for k, d in coord.deps().items()}
    assert got == {
        ("md-cli", "md-parse"): ("runtime", False, "package.json"),
        ("md-cli", "md-render"): ("runtime", False, "package.json"),
        ("md-parse", "md-cli"): ("dev", False, "package.json"),
        ("md-render", "md-cli"): ("dev", False, "package.json"),
        ("prom", "alert"): ("runtime", True, "common/assets/go.mod"),
        ("alert", "prom"): ("runtime", False, "go.mod"),
        ("tokio", "tracing"): ("dev", False, "tokio/Cargo.toml"),
        # an optional crate (built with a feature): optional, which does not order
        ("tracing", "tokio"): ("optional", False, "tracing-futures/Cargo.toml")}


def test_a_repo_with_a_held_manifest_has_none_of_its_dependencies_changed(
        coord: Coord) -> None:
    """app's go.mod cannot be read: its pyproject's dependency moving to another line,
    its range changing and a new dependency in its package.json are all left for when
    it reads (an entry may have moved between its manifests); --apply changes nothing."""
    fleet_of(coord)
    before = (coord.fleet / "ecosystem.yaml").read_text()
    gomod = coord.fleet / "app" / "go.mod"
    gomod.write_text(gomod.read_text().replace("require (", "require ("[:-2]))
    py = coord.fleet / "app" / "pyproject.toml"
    py.write_text(py.read_text().replace('"acme-lib>=1.2, <2"', '"acme-lib>=1.3"'))
    checkout(coord.fleet, "jsextra", {"package.json": '{"name": "@acme/extra"}\n'})
    pj = coord.fleet / "app" / "package.json"
    pj.write_text(pj.read_text().replace('"@acme/lib": "^1"', '"@acme/lib": "^1", "@acme/extra": "1"'))
    drift = coord.json("init", "--check", expect=1)
    assert drift["dependencies_changed"] == [] and drift["dependencies_lost"] == []
    assert [(d["consumer"], d["provider"]) for d in drift["dependencies_added"]] == []
    [u] = drift["manifests_unreadable"]
    assert u["file"] == "go.mod" and coord.deps()[("app", "pylib")].id in u["held"]
    assert any("app -> jsextra" in n and "not added while app/go.mod cannot be read" in n
               for n in drift["notes"])
    coord("init", "--check", "--apply", expect=1)
    after = (coord.fleet / "ecosystem.yaml").read_text()
    # only the new repo is added; none of app's dependencies changed
    assert "name: jsextra" in after
    assert after[after.index("coordination:"):] == before[before.index("coordination:"):]


def test_init_check_without_drift_loads_no_editor(coord: Coord) -> None:
    """`init --check` that finds no drift writes nothing, so it never loads the catalog
    editor (ruamel, the manager): part of what kept `init --check` at 200 checkouts
    within 2x a `git rev-parse` loop (bench/fleet_init.py)."""
    from tests.unit.support.cli import loaded

    checkout(coord.fleet, "lib", PROVIDERS["pylib"])
    coord("init", str(coord.fleet))
    mods = loaded(coord.fleet / "ecosystem.yaml", "init", "--check", every=True)
    assert "coordination.fleet.drift" in mods  # it did check
    assert not {m for m in mods if m.split(".")[0] in ("ruamel", "pydantic_settings")
                or m == "coordination.catalog.manager"}


def test_init_as_json_loads_no_markup_library(coord: Coord) -> None:
    """`init --json` and `init --check --json` print no rich markup: rich (a tenth of
    their start-up over 200 checkouts, bench/fleet_init.py) is imported only for the
    report printed as text; nor is tomllib, where tomli reads TOML."""
    from tests.unit.support.cli import loaded

    checkout(coord.fleet, "lib", PROVIDERS["pylib"])
    catalog = coord.fleet / "ecosystem.yaml"
    for args in (("init", str(coord.fleet), "--json"), ("init", "--check", "--json")):
        mods = loaded(catalog, *args, every=True)
        assert "coordination.fleet.drift" in mods  # it did read the fleet
        assert not {m for m in mods if m.split(".")[0] in ("rich", "tomllib")}, args
    assert "rich" in loaded(catalog, "init", "--check")  # the text report escapes with it


def test_init_again_with_nothing_new_loads_no_editor(coord: Coord) -> None:
    """`coord init` over a fleet its catalog holds already writes nothing: it loads
    neither the editor nor the models (a third of a second of CPU, bench/fleet_init.py
    "init again"); one that finds a new checkout does, and adds it."""
    from tests.unit.support.cli import loaded

    checkout(coord.fleet, "lib", PROVIDERS["pylib"])
    coord("init", str(coord.fleet))
    catalog = coord.fleet / "ecosystem.yaml"
    loaded(catalog, "init", "--check")  # the cache warm (in the probe's environment)
    mods = loaded(catalog, "init", every=True)
    assert "coordination.fleet.drift" in mods  # it did read the fleet
    assert not {m for m in mods if m.split(".")[0] in ("ruamel", "pydantic")
                or m.startswith(("coordination.catalog.edits", "coordination.catalog.models"))}
    checkout(coord.fleet, "app", {"pyproject.toml": '[project]\nname = "app"\n'
                                                    'dependencies = ["acme-lib"]\n'})
    coord("init")
    assert "name: app" in catalog.read_text()
