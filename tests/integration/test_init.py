"""`coord init` over a generated fleet of real git repos (bare remotes, clones as the
checkouts; Python, Node and Go mixed), then `init --check` after a repo and a
dependency were added, `--apply`, `--prune`, and `--from` with clone URLs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coordination.catalog.audit.log import log_path
from coordination.catalog.file.store import CatalogStore
from tests.integration.change_repos import commit, git, remote_with

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]

MANIFESTS: dict[str, dict[str, str]] = {
    "core": {"pyproject.toml": '[project]\nname = "acme-core"\ndependencies = ["pydantic>=2"]\n'},
    "api": {"pyproject.toml": ('[project]\nname = "acme-api"\ndependencies = [\n'
                               '  "acme_core[pg]>=2,<3; python_version >= \'3.11\'",\n]\n'
                               '[project.optional-dependencies]\ntest = ["acme-testkit"]\n'),
            "Dockerfile": "FROM python:3.12\n"},
    "testkit": {"setup.cfg": "[metadata]\nname = acme-testkit\n"},
    "ui-kit": {"package.json": '{"name": "@acme/ui-kit", "version": "3.0.0"}\n'},
    "web": {"package.json": ('{\n  "name": "@acme/web",\n  "dependencies": {\n'
                             '    "@acme/ui-kit": "^3"\n  }\n}\n')},
    "events": {"go.mod": "module github.com/acme/events\n\ngo 1.22\n"},
    "gateway": {"go.mod": ("module github.com/acme/gateway\n\ngo 1.22\n\nrequire (\n"
                           "\tgithub.com/acme/events v0.4.0\n)\n")},
}


def coord(cwd: Path, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COORD_ECOSYSTEM"}
    env.update(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(cwd / ".cache-home"))
    res = subprocess.run([sys.executable, "-m", "coordination.cli.main", *args], cwd=cwd,
                         env=env, capture_output=True, text=True, timeout=120)
    if expect is not None:
        assert res.returncode == expect, (
            f"coord {' '.join(args)} exited {res.returncode}, wanted {expect}\n"
            f"stdout: {res.stdout[-3000:]}\nstderr: {res.stderr[-3000:]}")
    return res


def coord_json(cwd: Path, *args: str, expect: int = 0) -> Any:
    return json.loads(coord(cwd, *args, "--json", expect=expect).stdout)


@pytest.fixture
def cloned_fleet(tmp_path: Path) -> Path:
    """``tmp_path/src``: a clone of every remote of MANIFESTS (origin/HEAD set)."""
    src = tmp_path / "src"
    src.mkdir()
    for name, files in MANIFESTS.items():
        bare = remote_with(tmp_path, name, files, branch="trunk" if name == "events" else "main")
        git(src, "clone", "-q", str(bare), name)
    return src


def test_init_writes_a_catalog_that_loads_and_validates(cloned_fleet: Path) -> None:
    doc = coord_json(cloned_fleet, "init", str(cloned_fleet))
    catalog = cloned_fleet / "ecosystem.yaml"
    assert doc["created"] is True and doc["catalog"] == str(catalog)
    text = catalog.read_text()
    assert text.startswith("# yaml-language-server: $schema=.coord/schema.json\n")
    assert json.loads((cloned_fleet / ".coord" / "schema.json").read_text())["title"].startswith("coord")
    cat = CatalogStore(catalog, cache_dir=None).load()
    repos = {r.name: r for r in cat.repos}
    assert set(repos) == set(MANIFESTS)
    assert repos["events"].default_branch == "trunk"  # from origin/HEAD
    assert repos["api"].tags == ["docker", "python"] and repos["api"].path == "api"
    assert repos["web"].tags == ["node"] and repos["gateway"].tags == ["go"]
    # Where each is cloned from: a catalog shared in git says where the fleet comes from.
    assert repos["core"].url == str(cloned_fleet.parent / "remotes" / "core.git")
    assert repos["core"].remote is None  # origin: the default, not written
    deps = {(d.consumer, d.provider): d for d in cat.coordination.dependencies}
    assert set(deps) == {("api", "core"), ("api", "testkit"), ("web", "ui-kit"),
                         ("gateway", "events")}
    core = deps[("api", "core")]
    assert (core.type.value, core.version_constraint) == ("runtime", ">=2,<3")
    assert core.source is not None and (core.source.file, core.source.line) == (
        "pyproject.toml", 4)
    assert deps[("api", "testkit")].type.value == "dev"  # a test extra
    gw = deps[("gateway", "events")]
    assert gw.source is not None and (gw.source.file, gw.source.line) == ("go.mod", 6)
    assert deps[("web", "ui-kit")].source.line == 4  # type: ignore[union-attr]
    # The rest of coord takes it: a plan over the fleet validates.
    coord(cloned_fleet, "plan", "create", "--title", "Upgrade", "--repos", ",".join(MANIFESTS))
    coord(cloned_fleet, "todo", "create", "--task", "bump", "--repo", "core", "--plan", "PLAN-001",
          "--run", "true")
    coord(cloned_fleet, "plan", "validate", "PLAN-001")
    assert [d["id"] for d in coord_json(cloned_fleet, "dep", "list")] == [
        "DEP-001", "DEP-002", "DEP-003", "DEP-004"]
    # Nothing moved: no drift, exit 0.
    assert coord_json(cloned_fleet, "init", "--check")["drift"] is False


def test_check_after_a_repo_and_a_dependency_were_added_then_apply(cloned_fleet: Path) -> None:
    coord(cloned_fleet, "init", str(cloned_fleet))
    catalog = cloned_fleet / "ecosystem.yaml"
    # A new repo (a Node package) and a new dependency (core's tests use testkit);
    # events' origin/HEAD is read again from the remote and has not moved.
    bare = remote_with(cloned_fleet.parent, "charts", {
        "package.json": '{"name": "@acme/charts", "devDependencies": {"@acme/ui-kit": "3"}}\n'})
    git(cloned_fleet, "clone", "-q", str(bare), "charts")
    commit(cloned_fleet / "core", "requirements-test.txt", "acme-testkit>=1\n")
    git(cloned_fleet / "events", "remote", "set-head", "origin", "-a")  # still trunk: no move
    drift = coord_json(cloned_fleet, "init", "--check", expect=1)
    assert drift["drift"] is True
    assert [r["name"] for r in drift["repos_added"]] == ["charts"]
    assert [(d["consumer"], d["provider"], d["type"], d["source"]) for d in
            drift["dependencies_added"]] == [
        ("charts", "ui-kit", "dev", {"file": "package.json", "line": 1}),
        ("core", "testkit", "dev", {"file": "requirements-test.txt", "line": 1})]
    assert drift["repos_gone"] == [] and drift["branches_moved"] == []
    before = catalog.read_text()
    applied = coord_json(cloned_fleet, "init", "--check", "--apply")
    assert applied["applied"]["repos_added"] == ["charts"]
    assert applied["applied"]["dependencies_added"] == ["DEP-005", "DEP-006"]
    assert catalog.read_text().startswith(before.split("coordination:")[0].rstrip("\n"))
    assert coord_json(cloned_fleet, "init", "--check")["drift"] is False
    ops = [json.loads(line)["op"] for line in log_path(catalog).read_text().splitlines()]
    # init (and the roots it remembered, whose file only coord's entry vouches for),
    # then --apply: one entry each
    assert ops == ["apply_fleet", "init.roots", "apply_fleet"]


def test_lost_dependency_moved_branch_and_prune(cloned_fleet: Path) -> None:
    coord(cloned_fleet, "init", str(cloned_fleet))
    catalog = cloned_fleet / "ecosystem.yaml"
    coord(cloned_fleet, "dep", "add", "--consumer", "web", "--provider", "core", "--type", "api")
    # gateway stops requiring events; web's checkout goes; core's remote default moves.
    commit(cloned_fleet / "gateway", "go.mod", "module github.com/acme/gateway\n\ngo 1.22\n")
    git(cloned_fleet / "core", "switch", "-q", "-c", "develop")
    git(cloned_fleet / "core", "push", "-q", "origin", "develop")
    git(cloned_fleet / "core", "remote", "set-head", "origin", "develop")
    subprocess.run(["rm", "-rf", str(cloned_fleet / "ui-kit")], check=True)
    drift = coord_json(cloned_fleet, "init", "--check", expect=1)
    assert drift["repos_gone"] == ["ui-kit"]
    assert drift["branches_moved"] == [{"repo": "core", "catalog": "main", "now": "develop",
                                        "read_from": "origin/HEAD"}]
    assert [(d["id"], d["consumer"], d["provider"]) for d in drift["dependencies_lost"]] == [
        ("DEP-003", "gateway", "events")]
    human = coord(cloned_fleet, "init", "--check", expect=1)
    assert "- dependency DEP-003 gateway -> events" in human.stdout
    assert "drifted" in human.stderr and "--apply" in human.stderr
    # --apply without --prune keeps the gone repo (and the dependency on it), and says
    # so: exit 1, what is left and how to take it...
    left = coord_json(cloned_fleet, "init", "--check", "--apply", expect=1)
    assert left["left"] == [{"kind": "repo_gone", "id": "ui-kit",
                             "what": "repo ui-kit: its checkout is gone",
                             "how": "--prune removes it"}]
    cat = CatalogStore(catalog, cache_dir=None).load()
    assert cat.repo("ui-kit") is not None and cat.dependency("DEP-003") is None
    assert cat.dependency("DEP-004") is not None  # web -> ui-kit: ui-kit is gone, not pruned
    assert cat.repo("core").default_branch == "develop"  # type: ignore[union-attr]
    assert cat.dependency("DEP-005") is not None  # hand-written: never removed
    # ...--prune removes it with the dependencies on it.
    pruned = coord_json(cloned_fleet, "init", "--check", "--apply", "--prune")["applied"]
    assert pruned["repos_pruned"] == ["ui-kit"]
    assert pruned["pruned_dependencies"] == ["DEP-004"]
    assert coord_json(cloned_fleet, "init", "--check")["drift"] is False


def test_init_adds_to_an_existing_catalog_and_dry_run_writes_nothing(cloned_fleet: Path) -> None:
    catalog = cloned_fleet / "ecosystem.yaml"
    catalog.write_text("# my fleet\nversion: 1\nrepos:\n  - name: core\n    path: core\n"
                       "    description: the core library  # hand-written\n")
    dry = coord_json(cloned_fleet, "init", str(cloned_fleet), "--dry-run")
    assert dry["dry_run"] is True and dry["applied"] is None
    assert len(dry["repos_added"]) == len(MANIFESTS) - 1
    assert catalog.read_text().startswith("# my fleet\nversion: 1\n")
    assert "api" not in catalog.read_text() and not (cloned_fleet / ".coord").exists()
    coord(cloned_fleet, "init", str(cloned_fleet))
    text = catalog.read_text()
    assert text.startswith("# my fleet\nversion: 1\n")  # no schema line added to a user's file
    assert "description: the core library  # hand-written" in text
    assert len(CatalogStore(catalog, cache_dir=None).load().repos) == len(MANIFESTS)


def test_from_file_clones_urls_into_a_directory(tmp_path: Path) -> None:
    lib = remote_with(tmp_path, "lib", {"Cargo.toml": '[package]\nname = "acme-lib"\n'})
    app = remote_with(tmp_path, "app", {
        "Cargo.toml": '[package]\nname = "app"\n\n[dependencies]\nacme_lib = "1"\n'})
    local = tmp_path / "local"
    git(tmp_path, "clone", "-q", str(app), str(local))
    listing = tmp_path / "repos.txt"
    listing.write_text(f"# the fleet\nfile://{lib}\n./local\n")
    work = tmp_path / "work"
    work.mkdir()
    doc = coord_json(work, "init", "--from", str(listing), "--into", str(work / "src"))
    assert [c["result"] for c in doc["cloned"]] == ["cloned"]
    assert (work / "src" / "lib" / ".git").is_dir()
    cat = CatalogStore(work / "ecosystem.yaml", cache_dir=None).load()
    assert {r.name: r.path for r in cat.repos} == {"lib": "src/lib", "local": str(local)}
    assert {r.name: r.url for r in cat.repos} == {"lib": f"file://{lib}", "local": str(app)}
    assert [(d.consumer, d.provider, d.type.value) for d in cat.coordination.dependencies] == [
        ("local", "lib", "runtime")]
    # A second run finds the clone there and adds nothing.
    again = coord_json(work, "init", "--from", str(listing), "--into", str(work / "src"))
    assert [c["result"] for c in again["cloned"]] == ["present"]
    assert again["repos_added"] == [] and again["applied"] is None


def test_bad_usage_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    res = coord(tmp_path, "init", "--apply", expect=2)
    assert "--apply and --prune go with --check" in res.stderr
    res = coord(tmp_path, "init", "--check", expect=2)
    assert "no catalog to check" in res.stderr
    listing = tmp_path / "l.txt"
    listing.write_text("ext::sh -c touch% /tmp/pwned\n")
    res = coord(tmp_path, "init", "--from", str(listing), expect=2)
    assert "cannot clone" in res.stderr and not (tmp_path / "ecosystem.yaml").exists()


def test_a_checkout_that_is_a_linked_worktree_is_present_and_read(cloned_fleet: Path) -> None:
    coord(cloned_fleet, "init", str(cloned_fleet))
    # web's checkout becomes a linked worktree (a .git *file*) of a clone kept elsewhere,
    # on a work branch: still web's checkout, never "gone", never pruned.
    main_clone = cloned_fleet.parent / "elsewhere" / "web"
    main_clone.parent.mkdir()
    (cloned_fleet / "web").rename(main_clone)
    git(main_clone, "worktree", "add", "-q", "-b", "work", str(cloned_fleet / "web"))
    assert (cloned_fleet / "web" / ".git").is_file()
    drift = coord_json(cloned_fleet, "init", "--check")
    assert drift["drift"] is False, drift
    assert drift["repos_gone"] == [] and drift["dependencies_lost"] == []
    pruned = coord_json(cloned_fleet, "init", "--check", "--apply", "--prune")
    assert pruned["applied"] is None
    cat = CatalogStore(cloned_fleet / "ecosystem.yaml", cache_dir=None).load()
    assert cat.repo("web") is not None
    assert [(d.consumer, d.provider) for d in cat.coordination.dependencies
            if d.consumer == "web"] == [("web", "ui-kit")]
    # The worktree's manifests are read: a dependency it no longer names is lost.
    commit(cloned_fleet / "web", "package.json", '{"name": "@acme/web"}\n')
    lost = coord_json(cloned_fleet, "init", "--check", expect=1)
    assert [(d["consumer"], d["provider"]) for d in lost["dependencies_lost"]] == [
        ("web", "ui-kit")] and lost["repos_gone"] == []


def test_check_without_dirs_scans_the_roots_init_used(tmp_path: Path) -> None:
    # The catalog is kept apart from the two trees of checkouts it was written from.
    for root, name in (("src", "core"), ("work", "api")):
        git(tmp_path, "clone", "-q", str(remote_with(tmp_path, name, MANIFESTS[name])),
            str(tmp_path / root / name))
    git(tmp_path, "clone", "-q", str(remote_with(tmp_path, "testkit", MANIFESTS["testkit"])),
        str(tmp_path / "src" / "team" / "testkit"))  # two levels down
    cat = tmp_path / "cat"
    cat.mkdir()
    eco = cat / "ecosystem.yaml"
    first = coord_json(cat, "--file", str(eco), "init", str(tmp_path / "src"),
                       str(tmp_path / "work"), "--depth", "1")
    assert [r["name"] for r in first["repos_added"]] == ["core", "api"]
    assert json.loads((cat / ".coord" / "fleet.json").read_text()) == {
        "roots": [str(tmp_path / "src"), str(tmp_path / "work")], "depth": 1}
    # A repo cloned into one of them later is found without naming them again...
    git(tmp_path, "clone", "-q", str(remote_with(tmp_path, "web", MANIFESTS["web"])),
        str(tmp_path / "work" / "web"))
    drift = coord_json(cat, "--file", str(eco), "init", "--check", expect=1)
    assert drift["roots"] == [str(tmp_path / "src"), str(tmp_path / "work")]
    assert [r["name"] for r in drift["repos_added"]] == ["web"]  # at the depth remembered
    # ...and --depth still overrides the remembered one.
    deeper = coord_json(cat, "--file", str(eco), "init", "--check", "--depth", "2", expect=1)
    assert [r["name"] for r in deeper["repos_added"]] == ["testkit", "web"]
    # A root that went away is said, not silently skipped.
    subprocess.run(["rm", "-rf", str(tmp_path / "work")], check=True)
    gone = coord_json(cat, "--file", str(eco), "init", "--check", expect=1)
    assert gone["roots"] == [str(tmp_path / "src")] and gone["repos_gone"] == ["api"]
    assert any("is not a directory any more" in n for n in gone["notes"])


def test_a_broken_manifest_holds_its_dependencies_and_is_drift(cloned_fleet: Path) -> None:
    """A manifest that no longer parses says nothing of what the repo needs or
    provides: its dependencies are held (never lost, never removed by --apply) and the
    manifest is reported with its line and the parser's message (exit 1)."""
    coord(cloned_fleet, "init", str(cloned_fleet))
    catalog = cloned_fleet / "ecosystem.yaml"
    api = cloned_fleet / "api" / "pyproject.toml"
    good = api.read_text()
    api.write_text(good + "oops = [\n")
    drift = coord_json(cloned_fleet, "init", "--check", expect=1)
    assert drift["dependencies_lost"] == [] and drift["dependencies_changed"] == []
    assert drift["manifests_unreadable"] == [{
        "repo": "api", "file": "pyproject.toml", "line": 8, "message": "Invalid value",
        "held": ["DEP-001", "DEP-002"]}]
    human = coord(cloned_fleet, "init", "--check", expect=1)
    assert "! manifest api/pyproject.toml:8 cannot be read: Invalid value" in human.stdout
    assert "1 manifest cannot be read, so the catalog cannot be checked" in human.stderr
    assert "--apply" not in human.stderr  # nothing --apply could take: fix it
    before = catalog.read_text()
    applied = coord_json(cloned_fleet, "init", "--check", "--apply", expect=1)
    assert applied["applied"] is None and catalog.read_text() == before
    assert [x["kind"] for x in applied["left"]] == ["manifest_unreadable"]
    # A provider's broken manifest: what it provides is unknown, so api's dependency
    # on it is not lost either.
    api.write_text(good)
    core = cloned_fleet / "core" / "pyproject.toml"
    core.write_text("[project\n" + core.read_text())
    drift = coord_json(cloned_fleet, "init", "--check", expect=1)
    assert drift["dependencies_lost"] == []
    assert [(u["repo"], u["line"], u["held"]) for u in drift["manifests_unreadable"]] == [
        ("core", 1, ["DEP-001"])]
    assert coord_json(cloned_fleet, "init", "--check", "--apply", expect=1)["applied"] is None
    cat = CatalogStore(catalog, cache_dir=None).load()
    assert cat.dependency("DEP-001") is not None and cat.dependency("DEP-002") is not None


def test_a_dependency_that_moved_type_range_and_line_is_changed(cloned_fleet: Path) -> None:
    """acme-testkit moves from api's test extra into its runtime dependencies with a
    higher range: type, version constraint and source line are drift, and --apply
    updates them in place (the comments around kept)."""
    coord(cloned_fleet, "init", str(cloned_fleet))
    catalog = cloned_fleet / "ecosystem.yaml"
    text = catalog.read_text()
    assert "      provider: testkit\n      type: dev\n" in text
    catalog.write_text(text.replace("      provider: testkit\n",
                                    "      provider: testkit  # the shared kit\n"))
    commit(cloned_fleet / "api", "pyproject.toml", (
        '[project]\nname = "acme-api"\ndependencies = [\n'
        '  "acme_core[pg]>=2,<3; python_version >= \'3.11\'",\n  "acme-testkit>=0.5",\n]\n'))
    drift = coord_json(cloned_fleet, "init", "--check", expect=1)
    assert drift["dependencies_lost"] == [] and drift["dependencies_added"] == []
    assert drift["dependencies_changed"] == [{
        "id": "DEP-002", "consumer": "api", "provider": "testkit",
        "changes": {"type": ["dev", "runtime"], "version_constraint": [None, ">=0.5"],
                    "source": [{"file": "pyproject.toml", "line": 7},
                               {"file": "pyproject.toml", "line": 5}]}}]
    human = coord(cloned_fleet, "init", "--check", expect=1)
    assert ("~ dependency DEP-002 api -> testkit: type dev -> runtime, version_constraint "
            "(none) -> >=0.5, source pyproject.toml:7 -> pyproject.toml:5") in human.stdout
    applied = coord(cloned_fleet, "init", "--check", "--apply")
    assert "applied to ecosystem.yaml: 1 dependency updated (DEP-002)" in applied.stdout
    dep = CatalogStore(catalog, cache_dir=None).load().dependency("DEP-002")
    assert dep is not None and dep.source is not None
    assert (dep.type.value, dep.version_constraint, dep.source.line) == ("runtime", ">=0.5", 5)
    assert "provider: testkit  # the shared kit\n" in catalog.read_text()
    assert coord_json(cloned_fleet, "init", "--check")["drift"] is False


def test_a_mistyped_go_directive_holds_and_a_moved_line_is_no_drift(cloned_fleet: Path) -> None:
    """Issue 48: `modul` for `module` in gateway's go.mod made --apply delete its
    dependency, exit 0; and a dependency's line moving made --check exit 1. Now the
    go.mod is held (exit 1 naming it, the dependency kept), and once fixed with a line
    added above the require, --check exits 0 and --apply refreshes the line quietly."""
    coord(cloned_fleet, "init", str(cloned_fleet))
    catalog = cloned_fleet / "ecosystem.yaml"
    gomod = cloned_fleet / "gateway" / "go.mod"
    good = gomod.read_text()
    commit(cloned_fleet / "gateway", "go.mod", good.replace("module ", "modul "))
    before = catalog.read_text()
    applied = coord(cloned_fleet, "init", "--check", "--apply", expect=1)
    assert "gateway: go.mod:1 cannot be read: unknown directive 'modul'" in applied.stderr
    assert catalog.read_text() == before
    dep = next(d for d in CatalogStore(catalog, cache_dir=None).load().coordination.dependencies
               if d.consumer == "gateway")
    assert dep.provider == "events" and dep.source is not None and dep.source.line == 6
    commit(cloned_fleet / "gateway", "go.mod", good.replace("go 1.22\n", "go 1.22\n\ntoolchain go1.22.4\n"))
    drift = coord_json(cloned_fleet, "init", "--check")
    assert drift["drift"] is False
    assert drift["dependencies_moved"] == [{"id": dep.id, "source": {"file": "go.mod",
                                                                      "line": 8}}]
    coord(cloned_fleet, "init", "--check", "--apply")
    moved = CatalogStore(catalog, cache_dir=None).load().dependency(dep.id)
    assert moved is not None and moved.source is not None and moved.source.line == 8


def test_apply_says_what_is_left_hand_edited_and_named_repos(cloned_fleet: Path) -> None:
    """--apply exits 1 while drift is left that it does not take: a hand-edited
    inferred dependency lost upstream (kept without --prune), a gone repo an issue
    still names (kept even with --prune); each said with how to take it."""
    coord(cloned_fleet, "init", str(cloned_fleet))
    catalog = cloned_fleet / "ecosystem.yaml"
    coord(cloned_fleet, "dep", "update", "DEP-003", "--notes", "pinned by hand")
    coord(cloned_fleet, "issue", "create", "--title", "Retire the kit", "--repos", "ui-kit")
    commit(cloned_fleet / "gateway", "go.mod", "module github.com/acme/gateway\n\ngo 1.22\n")
    subprocess.run(["rm", "-rf", str(cloned_fleet / "ui-kit")], check=True)
    drift = coord_json(cloned_fleet, "init", "--check", expect=1)
    assert [(d["id"], d["hand_edited"]) for d in drift["dependencies_lost"]] == [
        ("DEP-003", True)]
    res = coord(cloned_fleet, "init", "--check", "--apply", expect=1)
    assert ("- dependency DEP-003 gateway -> events: no manifest names it now (was go.mod:6)"
            " (lost upstream, kept: hand-edited; --prune removes it)") in res.stdout
    assert "applied to ecosystem.yaml: nothing it can take" in res.stdout
    assert "--prune removes it" in res.stderr and "drift is left" in res.stderr
    assert CatalogStore(catalog, cache_dir=None).load().dependency("DEP-003") is not None
    res = coord(cloned_fleet, "init", "--check", "--apply", "--prune", expect=1)
    assert "applied to ecosystem.yaml: 1 dependency removed (DEP-003)" in res.stdout
    assert "0 dependencies" not in res.stdout and " ," not in res.stdout
    assert "- repo ui-kit: no git checkout where the catalog says (kept: still named" \
        in res.stdout
    assert "issue ISSUE-001 names it" in res.stderr and "edit ISSUE-001" in res.stderr
    cat = CatalogStore(catalog, cache_dir=None).load()
    assert cat.dependency("DEP-003") is None and cat.repo("ui-kit") is not None
    # Once the issue names another repo, --prune takes the rest and says it all.
    coord(cloned_fleet, "issue", "update", "ISSUE-001", "--repos", "web")
    done = coord(cloned_fleet, "init", "--check", "--apply", "--prune")
    assert ("applied to ecosystem.yaml: 1 repo pruned (ui-kit) with 1 dependency (DEP-004)"
            in done.stdout), done.stdout
    assert coord_json(cloned_fleet, "init", "--check")["drift"] is False


def test_init_with_no_checkouts_writes_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "docs").mkdir(parents=True)
    for args in ((), ("--dry-run",)):
        res = coord(tmp_path, "init", str(empty), *args, expect=1)
        assert f"no git checkouts found under {empty} (depth 3)" in res.stderr, res.stderr
        assert "--depth" in res.stderr
    assert sorted(p.name for p in empty.iterdir()) == ["docs"]  # no catalog, no .coord
