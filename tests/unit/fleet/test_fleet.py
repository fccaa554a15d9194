"""Inferring dependencies between the checkouts of a fleet, the drift of a catalog
from them, and taking it in one audited edit (``apply_fleet``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordination.catalog.audit.log import log_path
from coordination.fleet.discovery import Checkout, read_checkout
from coordination.fleet.drift import compare, infer
from coordination.fleet.manifests import ManifestProblem, Manifests, Requirement
from coordination.catalog.manager import CoordinationManager
from coordination.catalog.file.store import CatalogStore
from coordination.errors import UsageError

pytestmark = pytest.mark.timeout(60)


def co(path: Path, provides: set[tuple[str, str]] = frozenset(),  # type: ignore[assignment]
       requires: list[Requirement] = (), branch: str | None = "main",  # type: ignore[assignment]
       tags: set[str] = frozenset()) -> Checkout:  # type: ignore[assignment]
    return Checkout(path, default_branch=branch, branch_from="HEAD", remote="origin",
                    manifests=Manifests(set(provides), list(requires), set(tags)))


def req(name: str, type_: str = "runtime", line: int = 1, file: str = "pyproject.toml",
        eco: str = "python", path: str | None = None) -> Requirement:
    return Requirement((eco, name), type_, file, line, None, path)


def test_the_strongest_type_wins_then_the_first_written(tmp_path: Path) -> None:
    fleet = {
        "core": co(tmp_path / "core", {("python", "core")}),
        "api": co(tmp_path / "api", {("python", "api")}, [
            req("core", "test", 9), req("core", "dev", 3), req("core", "runtime", 12),
            req("core", "runtime", 14), req("requests", "runtime", 2), req("api", "test", 5)]),
    }
    assert infer(fleet) == [{"consumer": "api", "provider": "core", "type": "runtime",
                             "source": {"file": "pyproject.toml", "line": 12}}]


def test_go_local_replace_finds_the_provider_by_path(tmp_path: Path) -> None:
    fleet = {
        "events": co(tmp_path / "events", {("go", "example.com/events")}),
        "gw": co(tmp_path / "gw", set(), [req("example.com/renamed", eco="go", file="go.mod",
                                              line=7, path=str(tmp_path / "events"))]),
    }
    assert [(d["consumer"], d["provider"], d["source"]["line"]) for d in infer(fleet)] == [
        ("gw", "events", 7)]


def test_a_package_two_repos_provide_is_ambiguous(tmp_path: Path) -> None:
    notes: list[str] = []
    fleet = {
        "kit": co(tmp_path / "kit", {("npm", "@acme/kit")}),
        "kit-fork": co(tmp_path / "kit-fork", {("npm", "@acme/kit")}),
        "web": co(tmp_path / "web", set(), [req("@acme/kit", eco="npm")]),
    }
    assert infer(fleet, notes) == []
    assert "kit, kit-fork" in notes[0] and "@acme/kit" in notes[0]


CATALOG = """\
version: 1
repos:
  - name: core
    path: core
    default_branch: main
  - name: api
    path: api
  - name: gone
    path: gone
coordination:
  todos:
    - id: TODO-001
      task: t
      repo: gone
  dependencies:
    - id: DEP-001
      consumer: api
      provider: core
      type: runtime
      source: {file: pyproject.toml, line: 4}
    - id: DEP-002
      consumer: core
      provider: api
      type: api
      notes: hand-written
"""


def test_drift_added_gone_branches_deps(eco: Path, tmp_path: Path) -> None:
    cat = CatalogStore(eco, cache_dir=None).load()
    now = [
        co(tmp_path / "core", {("python", "core")}, branch="trunk"),
        co(tmp_path / "api", {("python", "api")}, [req("acme-web", "test", 8)]),
        co(tmp_path / "web", {("python", "acme-web")}, [req("core", "runtime", 3)],
           tags={"python"}),
    ]
    fleet = compare(cat, tmp_path, now)
    assert fleet.drifted
    assert fleet.added == [{"name": "web", "path": "web", "tags": ["python"],
                            "default_branch": "main"}]
    assert fleet.gone == ["gone"]
    assert fleet.branches == [{"repo": "core", "catalog": "main", "now": "trunk",
                               "read_from": "HEAD"}]
    assert [(d["consumer"], d["provider"], d["type"]) for d in fleet.deps_added] == [
        ("api", "web", "test"), ("web", "core", "runtime")]
    # DEP-001 was inferred and no manifest names core now; DEP-002 is hand-written.
    assert fleet.deps_lost == [{"id": "DEP-001", "consumer": "api", "provider": "core",
                                "source": {"file": "pyproject.toml", "line": 4},
                                "hand_edited": False}]
    json.dumps(fleet.to_dict())


def test_no_drift_when_the_checkouts_match(eco: Path, tmp_path: Path) -> None:
    cat = CatalogStore(eco, cache_dir=None).load()
    now = [co(tmp_path / "core", {("python", "core")}),
           co(tmp_path / "api", {("python", "api")}, [req("core", line=4)]),
           co(tmp_path / "gone")]
    fleet = compare(cat, tmp_path, now)
    assert not fleet.drifted, fleet.to_dict()
    # an api with no default_branch means main: not a move
    assert fleet.branches == []


def test_apply_fleet_is_one_audited_edit(eco: Path, tmp_path: Path) -> None:
    m = CoordinationManager(eco)
    done = m.fleet.apply({
        "repos": [{"name": "web", "path": "web", "tags": ["python"], "default_branch": "main"}],
        "dependencies": [
            {"consumer": "web", "provider": "core", "type": "runtime",
             "version_constraint": ">=2", "source": {"file": "pyproject.toml", "line": 3}},
            {"consumer": "core", "provider": "web", "type": "test",
             "source": {"file": "requirements-test.txt", "line": 1}}],
        "remove_dependencies": ["DEP-001"],
        "default_branches": {"core": "trunk"},
        "prune": ["gone", "api"],
    })
    assert done["repos_added"] == ["web"]
    assert done["dependencies_added"] == ["DEP-003", "DEP-004"]
    assert done["dependencies_removed"] == ["DEP-001"]
    assert done["branches_set"] == ["core"]
    # gone: a todo runs in it, so kept; api: only dependencies name it, so pruned with them
    assert done["repos_pruned"] == ["api"]
    assert done["pruned_dependencies"] == ["DEP-002"]
    assert [k["id"] for k in done["kept"]] == ["TODO-001"]
    cat = m.reads.catalog()
    assert [r.name for r in cat.repos] == ["core", "gone", "web"]
    assert cat.repo("core").default_branch == "trunk"  # type: ignore[union-attr]
    dep = cat.dependency("DEP-003")
    assert dep is not None and dep.source is not None
    assert (dep.source.file, dep.source.line, dep.version_constraint) == (
        "pyproject.toml", 3, ">=2")
    assert "source: {file: pyproject.toml, line: 3}" in eco.read_text()
    entries = [json.loads(line) for line in log_path(eco).read_text().splitlines()]
    assert len(entries) == 1  # one edit, one audit entry
    assert entries[0]["op"] == "apply_fleet"


def test_apply_fleet_refuses_a_repo_that_exists(eco: Path) -> None:
    with pytest.raises(UsageError, match="exists already"):
        CoordinationManager(eco).fleet.apply({"repos": [{"name": "core", "path": "c2"}]})
    assert eco.read_text() == CATALOG


def test_a_symlinked_root_matches_the_catalog_s_paths(eco: Path, tmp_path: Path) -> None:
    cat = CatalogStore(eco, cache_dir=None).load()
    for name in ("core", "api", "gone"):
        (tmp_path / name).mkdir()
    link = tmp_path.parent / f"{tmp_path.name}-link"
    link.symlink_to(tmp_path)
    now = [co(link / "core", {("python", "core")}),
           co(link / "api", {("python", "api")}, [req("core", line=4)]), co(link / "gone")]
    fleet = compare(cat, tmp_path, now)
    assert not fleet.drifted, fleet.to_dict()
    fresh = compare(None, tmp_path, now)
    assert [r["path"] for r in fresh.added] == ["core", "api", "gone"]


def test_a_topic_branch_without_a_remote_head_is_no_move(tmp_path: Path) -> None:
    import subprocess

    def git(cwd: Path, *args: str) -> None:
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=cwd,
                       check=True, capture_output=True)

    for name in ("core", "api"):
        (tmp_path / name).mkdir()
        git(tmp_path / name, "init", "-q", "-b", "main")
        git(tmp_path / name, "commit", "-q", "--allow-empty", "-m", "first")
    eco = tmp_path / "ecosystem.yaml"
    eco.write_text("version: 1\nrepos:\n  - {name: core, path: core}\n"
                       "  - {name: api, path: api, default_branch: trunk}\n")
    cat = CatalogStore(eco, cache_dir=None).load()
    # core: no remote at all, on a topic branch; main is still there (packed, even).
    git(tmp_path / "core", "switch", "-q", "-c", "topic")
    git(tmp_path / "core", "pack-refs", "--all")
    # api: the catalog says trunk, which this checkout has never had: that is said,
    # with what was compared.
    git(tmp_path / "api", "switch", "-q", "-c", "feature")
    now = [read_checkout(tmp_path / "core"), read_checkout(tmp_path / "api")]
    assert [c.branch_from for c in now] == ["HEAD", "HEAD"]
    fleet = compare(cat, tmp_path, now)
    assert fleet.branches == [{"repo": "api", "catalog": "trunk", "now": "feature",
                               "read_from": "HEAD"}]
    # Once core's main is gone, its current branch is all there is to go by.
    git(tmp_path / "core", "branch", "-q", "-D", "main")
    assert [b["repo"] for b in compare(cat, tmp_path, now).branches] == ["core", "api"]


def _with(c: Checkout, *problems: ManifestProblem) -> Checkout:
    c.manifests.problems.extend(problems)
    return c


def test_an_unreadable_manifest_holds_what_it_would_lose(eco: Path, tmp_path: Path) -> None:
    """DEP-001 (api -> core) was read from api's pyproject.toml: with that file
    unreadable, no manifest naming core is no news. It is held, not lost, and the
    manifest is drift of its own, with the dependency it holds."""
    cat = CatalogStore(eco, cache_dir=None).load()
    broken = ManifestProblem("pyproject.toml", 7, "Invalid value")
    fleet = compare(cat, tmp_path, [co(tmp_path / "core", {("python", "core")}),
                                    _with(co(tmp_path / "api"), broken), co(tmp_path / "gone")])
    assert fleet.deps_lost == [] and fleet.deps_changed == []
    assert fleet.unreadable == [{"repo": "api", "file": "pyproject.toml", "line": 7,
                                 "message": "Invalid value", "held": ["DEP-001"]}]
    assert fleet.drifted and fleet.to_dict()["manifests_unreadable"] == fleet.unreadable
    # Another manifest of api unreadable: none of api's dependencies changes until it
    # reads (the entry may have moved into it), so DEP-001 is held by it.
    other = ManifestProblem("package.json", 1, "Expecting value")
    fleet = compare(cat, tmp_path, [co(tmp_path / "core", {("python", "core")}),
                                    _with(co(tmp_path / "api"), other), co(tmp_path / "gone")])
    assert fleet.deps_lost == []
    assert [u["held"] for u in fleet.unreadable] == [["DEP-001"]]
    # The provider's manifest unreadable: what it provides is unknown, so held.
    fleet = compare(cat, tmp_path, [_with(co(tmp_path / "core"), broken),
                                    co(tmp_path / "api", set(), [req("core", line=4)]),
                                    co(tmp_path / "gone")])
    assert fleet.deps_lost == []
    assert [(u["repo"], u["held"]) for u in fleet.unreadable] == [("core", ["DEP-001"])]
    # One entry of the source file not understood: held too, said as drift, not a note.
    entry = ManifestProblem("pyproject.toml", 4, "'acme core' is not a requirement", False)
    fleet = compare(cat, tmp_path, [co(tmp_path / "core", {("python", "core")}),
                                    _with(co(tmp_path / "api"), entry), co(tmp_path / "gone")])
    assert fleet.deps_lost == [] and fleet.notes == []
    assert [(u["line"], u["held"]) for u in fleet.unreadable] == [(4, ["DEP-001"])]


def test_type_constraint_and_source_changes_are_drift(eco: Path, tmp_path: Path) -> None:
    cat = CatalogStore(eco, cache_dir=None).load()
    moved = Requirement(("python", "core"), "test", "requirements-test.txt", 2, ">=0.5")
    fleet = compare(cat, tmp_path, [co(tmp_path / "core", {("python", "core")}),
                                    co(tmp_path / "api", {("python", "api")}, [moved]),
                                    co(tmp_path / "gone")])
    assert fleet.drifted and fleet.deps_lost == [] and fleet.deps_added == []
    assert fleet.deps_changed == [{
        "id": "DEP-001", "consumer": "api", "provider": "core",
        "changes": {"type": ["runtime", "test"], "version_constraint": [None, ">=0.5"],
                    "source": [{"file": "pyproject.toml", "line": 4},
                               {"file": "requirements-test.txt", "line": 2}]}}]
    # DEP-002 is hand-written (no source): what the manifests say of core -> api is not
    # compared with it.
    back = [co(tmp_path / "core", {("python", "core")}, [req("api", "test", 9)]),
            co(tmp_path / "api", {("python", "api")}, [req("core", line=4)]),
            co(tmp_path / "gone")]
    assert compare(cat, tmp_path, back).deps_changed == []


def test_a_hand_edited_inferred_dependency_is_kept_without_prune(tmp_path: Path) -> None:
    from coordination.fleet.drift import hand_edited

    eco = tmp_path / "ecosystem.yaml"
    eco.write_text(CATALOG.replace("      source: {file: pyproject.toml, line: 4}\n",
                                       "      source: {file: pyproject.toml, line: 4}\n"
                                       "      notes: pinned while core 3 is out\n"))
    cat = CatalogStore(eco, cache_dir=None).load()
    assert hand_edited(cat.dependency("DEP-001"))  # type: ignore[arg-type]
    assert hand_edited(cat.dependency("DEP-002"))  # type: ignore[arg-type]  # api: nothing infers it
    fleet = compare(cat, tmp_path, [co(tmp_path / "core", {("python", "core")}),
                                    co(tmp_path / "api"), co(tmp_path / "gone")])
    assert [(d["id"], d["hand_edited"]) for d in fleet.deps_lost] == [("DEP-001", True)]


@pytest.mark.parametrize(("url", "shared"), [
    ("https://x-access-token:ghs_secret@github.com/acme/api.git",
     "https://github.com/acme/api.git"),
    ("https://ghp_token@github.com/acme/api", "https://github.com/acme/api"),
    ("ssh://git:pw@git.acme.dev:2222/api.git", "ssh://git@git.acme.dev:2222/api.git"),
    ("ssh://git@git.acme.dev/api.git", "ssh://git@git.acme.dev/api.git"),
    ("git@github.com:acme/api.git", "git@github.com:acme/api.git"),
    ("/srv/git/api.git", "/srv/git/api.git"),
    ("ext::sh -c evil", None), ("--upload-pack=evil", None), (None, None),
])
def test_a_new_repo_records_its_clone_url_without_secrets(
        tmp_path: Path, url: str | None, shared: str | None) -> None:
    from coordination.fleet.drift import new_repo

    c = Checkout(tmp_path / "api", default_branch="main", remote="origin", url=url)
    assert new_repo("api", c, tmp_path).get("url") == shared


def test_the_catalog_refuses_a_url_with_a_password(tmp_path: Path) -> None:
    eco = tmp_path / "ecosystem.yaml"
    eco.write_text("version: 1\nrepos:\n  - name: api\n"
                       "    url: https://bot:s3cret@github.com/acme/api.git\n")
    with pytest.raises(UsageError, match="url holds a password"):
        CatalogStore(eco, cache_dir=None).load()


def test_an_entry_not_understood_holds_only_what_it_may_have_named(
        eco: Path, tmp_path: Path) -> None:
    """One requirement of api's pyproject.toml not understood: DEP-001, still named by
    another entry of it, is judged as usual (its line moved: no drift, refreshed by
    --apply), and the entry is a note, not drift."""
    cat = CatalogStore(eco, cache_dir=None).load()
    entry = ManifestProblem("pyproject.toml", 9, "'acme web' is not a requirement", False)
    fleet = compare(cat, tmp_path, [co(tmp_path / "core", {("python", "core")}),
                                    _with(co(tmp_path / "api", set(), [req("core", line=5)]),
                                          entry), co(tmp_path / "gone")])
    assert fleet.unreadable == [] and fleet.notes == [f"api: {entry}"]
    assert fleet.deps_changed == []
    assert list(fleet.deps_moved.values()) == [{"file": "pyproject.toml", "line": 5}]
