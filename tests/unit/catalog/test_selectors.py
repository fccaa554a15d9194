"""Repo selectors: names, globs, tags, roles, exclusions, the dependency forms, changed:."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from coordination.catalog.models import Catalog
from coordination.catalog.selection.selectors import Selector, git_changed, parse, select
from coordination.errors import UsageError

pytestmark = pytest.mark.timeout(60)

# web -> api -> db ; worker -> db ; admin -> web ; legacy stands alone
REPOS = [
    {"name": "db", "role": "store", "tags": ["sql"]},
    {"name": "api", "role": "service", "tags": ["python"]},
    {"name": "web", "role": "service", "tags": ["js"]},
    {"name": "worker", "role": "service", "tags": ["python"]},
    {"name": "admin", "role": "frontend", "tags": ["js"]},
    {"name": "legacy", "tags": ["python", "old"]},
    {"name": "svc-a"},
    {"name": "svc-b"},
]
DEPS = [("web", "api"), ("api", "db"), ("worker", "db"), ("admin", "web")]


def fleet() -> Catalog:
    return Catalog.model_validate({
        "version": 1, "repos": REPOS,
        "coordination": {"dependencies": [
            {"id": f"DEP-{i:03d}", "consumer": c, "provider": p}
            for i, (c, p) in enumerate(DEPS, 1)]}})


def names(sel: str, **kw: object) -> list[str]:
    return select(fleet(), sel, Path("/nowhere"), **kw).names  # type: ignore[arg-type]


@pytest.mark.parametrize("sel, want", [
    ("api", ["api"]),
    ("api,web", ["api", "web"]),
    (" web , api ", ["api", "web"]),  # catalog order, spaces ignored
    ("svc-*", ["svc-a", "svc-b"]),
    ("tag:python", ["api", "worker", "legacy"]),
    ("tag:*", ["db", "api", "web", "worker", "admin", "legacy"]),  # any tagged repo
    ("role:service", ["api", "web", "worker"]),
    ("tag:python,!legacy", ["api", "worker"]),
    ("*,!tag:js,!svc-*", ["db", "api", "worker", "legacy"]),
    ("api...", ["db", "api"]),  # api and what it depends on
    ("admin...", ["db", "api", "web", "admin"]),  # transitively
    ("...api", ["api", "web", "admin"]),  # api and what depends on it
    ("...db", ["db", "api", "web", "worker", "admin"]),
    ("web^...", ["db", "api"]),  # what web depends on, without web
    ("...^api", ["web", "admin"]),  # what depends on api, without api
    ("...db,!worker", ["db", "api", "web", "admin"]),
    ("...tag:sql", ["db", "api", "web", "worker", "admin"]),  # a graph form over a tag
    ("...api...", ["db", "api", "web", "admin"]),
])
def test_selects(sel: str, want: list[str]) -> None:
    assert names(sel) == want


@pytest.mark.parametrize("sel, says", [
    ("apii", "'apii' matches no repo"),  # a typo
    ("api,wbe", "'wbe' matches no repo"),  # one bad term is an error, not ignored
    ("tag:pyhton", "did you mean tag:python"),
    ("role:servce", "did you mean role:service"),
    ("nomatch-*", "matches no repo"),
    ("api,!api", "every repo it selects is excluded"),
    ("", "it is empty"),
    ("api,,web", "an empty term"),
    ("!", "'!' excludes nothing"),
    ("kind:x", "unknown kind 'kind:'"),
    ("tag:", "names nothing"),
    ("a...b", "cannot read"),
    ("changed:--output=x", "does not start with '-'"),
    # intersections
    ("tag:python&", "an empty part of the intersection"),
    ("tag:python&!legacy", "'!' goes before the whole term"),
    ("tag:python&tag:pyton", "'tag:pyton' matches no repo"),
    ("tag:sql&tag:js", "it selects no repo"),
    ("!*", "it excludes every repo"),
])
def test_refuses(sel: str, says: str) -> None:
    with pytest.raises(UsageError) as err:
        names(sel)
    assert says in str(err.value)


def test_closest_names_are_offered() -> None:
    with pytest.raises(UsageError) as err:
        names("wokrer")
    assert "did you mean worker" in str(err.value)


def test_parse_keeps_the_forms_apart() -> None:
    (t,) = parse("...^api")
    assert (t.kind, t.value, t.dependents, t.deps, t.keep_self) == ("name", "api", True, False, False)
    (t,) = parse("!changed:origin/main")
    assert (t.exclude, t.kind, t.value) == (True, "changed", "origin/main")


def test_changed_asks_the_probe_only_about_repos_not_excluded() -> None:
    asked: list[str] = []

    def probe(path: Path, ref: str) -> bool | str:
        asked.append(path.name)
        assert ref == "main"
        if path.name == "legacy":
            return "has no 'main'"
        return path.name in ("api", "svc-a")

    sel = Selector(fleet(), Path("/fleet"), probe).select("changed:main,!legacy")
    assert sel.names == ["api", "svc-a"]
    assert sel.changed == {"main": ["api", "svc-a"]}
    assert "legacy" not in asked


def test_a_repo_lacking_the_ref_is_reported_not_dropped() -> None:
    def probe(path: Path, ref: str) -> bool | str:
        return "has no 'main'" if path.name == "legacy" else path.name == "api"

    with pytest.raises(UsageError) as err:
        Selector(fleet(), Path("/fleet"), probe).select("changed:main")
    assert "cannot tell for 1 repo(s): legacy: has no 'main'" in str(err.value)
    assert "!NAME" in (err.value.hint or "")


def test_changed_with_dependents_is_affected() -> None:
    def probe(path: Path, ref: str) -> bool | str:
        return path.name == "db"

    sel = Selector(fleet(), Path("/fleet"), probe).select("...changed:HEAD~1")
    assert sel.names == ["db", "api", "web", "worker", "admin"]


def test_nothing_changed_is_an_error_saying_so() -> None:
    with pytest.raises(UsageError) as err:
        Selector(fleet(), Path("/fleet"), lambda p, r: False).select("changed:main")
    assert "no repo differs from main" in str(err.value)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_git_changed_on_a_real_checkout(tmp_path: Path) -> None:
    repo = tmp_path / "api"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty",
         "-m", "first")
    (repo / "a.txt").write_text("a\n")
    _git(repo, "add", "a.txt")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "second")
    assert git_changed(repo, "HEAD") is False  # clean
    assert git_changed(repo, "HEAD~1") is True  # a commit since
    (repo / "new.txt").write_text("x\n")
    assert git_changed(repo, "HEAD") is True  # untracked counts
    (repo / "new.txt").unlink()
    (repo / "a.txt").write_text("b\n")
    assert git_changed(repo, "HEAD") is True  # a tracked edit
    missing = git_changed(repo, "no-such-branch")
    assert isinstance(missing, str) and "has no 'no-such-branch'" in missing
    assert "no checkout" in str(git_changed(tmp_path / "gone", "HEAD"))


def test_a_thousand_repos_select_fast() -> None:
    import time

    cat = Catalog.model_validate({
        "version": 1,
        "repos": [{"name": f"svc-{i:04d}", "tags": ["python" if i % 2 else "go"]}
                  for i in range(1000)],
        "coordination": {"dependencies": [
            {"id": f"DEP-{i:04d}", "consumer": f"svc-{i:04d}", "provider": f"svc-{i - 1:04d}"}
            for i in range(1, 1000)]}})
    s = Selector(cat, Path("/fleet"))
    t0 = time.perf_counter()
    assert len(s.select("tag:*").names) == 1000
    assert len(s.select("tag:python,!svc-000*").names) == 495
    assert s.select("svc-0500...").names[0] == "svc-0000"
    assert len(s.select("...svc-0500").names) == 500
    assert time.perf_counter() - t0 < 2.0


def test_git_changed_is_against_the_merge_base_not_ref(tmp_path: Path) -> None:
    def commit(repo: Path, name: str) -> None:
        (repo / name).write_text(name)
        _git(repo, "add", name)
        _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", name)

    repo = tmp_path / "api"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    commit(repo, "first")
    _git(repo, "switch", "-q", "-c", "behind")  # forks here...
    _git(repo, "switch", "-q", "main")
    commit(repo, "landed-on-main")  # ...and main moves on
    _git(repo, "switch", "-q", "behind")
    # The branch changed nothing since it forked: main's newer commit is not its change.
    assert git_changed(repo, "main") is False
    commit(repo, "mine")  # its own commit is
    assert git_changed(repo, "main") is True
    _git(repo, "reset", "-q", "--hard", "HEAD~1")
    (repo / "first").write_text("edited\n")  # and so is an uncommitted edit
    assert git_changed(repo, "main") is True
    _git(repo, "checkout", "-q", "--", "first")
    # No common ancestor (an unrelated history, as a shallow clone has): it cannot tell.
    _git(repo, "switch", "-q", "--orphan", "alone")
    commit(repo, "other")
    said = git_changed(repo, "main")
    assert isinstance(said, str) and "no common ancestor" in said


@pytest.mark.parametrize("sel, want", [
    # exclusions alone start from every repo (Turborepo's and pnpm's --filter=!x)
    ("!legacy", ["db", "api", "web", "worker", "admin", "svc-a", "svc-b"]),
    ("!tag:*", ["svc-a", "svc-b"]),
    ("!svc-*,!...web", ["db", "api", "worker", "legacy"]),
    # intersections: what every part selects
    ("tag:python&role:service", ["api", "worker"]),
    ("...db&tag:js", ["web", "admin"]),
    ("tag:python&role:service,tag:sql", ["db", "api", "worker"]),
    ("*,!tag:python&role:service", ["db", "web", "admin", "legacy", "svc-a", "svc-b"]),
    ("!tag:python&role:service", ["db", "web", "admin", "legacy", "svc-a", "svc-b"]),
])
def test_exclusions_alone_and_intersections(sel: str, want: list[str]) -> None:
    assert names(sel) == want


def test_changed_in_an_intersection_asks_git_only_about_the_others_selection() -> None:
    """pnpm's `pattern[ref]`, Nx's affected with a projects filter: git runs in the
    Python repos only."""
    asked: list[str] = []

    def probe(path: Path, ref: str) -> bool | str:
        asked.append(path.name)
        return path.name in ("api", "web")

    sel = Selector(fleet(), Path("/fleet"), probe).select("changed:main&tag:python,!legacy")
    assert sel.names == ["api"] and sorted(asked) == ["api", "worker"]
    # A graph form of changed: needs every repo's answer (web's dependents may be Python).
    asked.clear()
    got = Selector(fleet(), Path("/fleet"), probe).select("changed:main...&tag:python")
    assert got.names == ["api"] and len(asked) == len(REPOS)


def test_a_checkout_nested_in_another_is_not_its_change(tmp_path: Path) -> None:
    """A fleet cloned inside a parent repo (or a linked worktree there) shows in the
    parent as an untracked directory: not the parent's change."""
    parent = tmp_path / "platform"
    parent.mkdir()
    _git(parent, "init", "-q", "-b", "main")
    _git(parent, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty",
         "-m", "first")
    inner = parent / "services" / "api"
    inner.mkdir(parents=True)
    _git(inner, "init", "-q", "-b", "main")
    (inner / "code.py").write_text("x\n")
    _git(inner, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty",
         "-m", "first")
    _git(inner, "worktree", "add", "-q", "-b", "work", str(parent / "wt"))
    assert git_changed(parent, "main") is False
    assert git_changed(inner, "main") is True  # its own untracked file still counts
    (parent / "services" / "README").write_text("x\n")  # a file of the parent's does
    assert git_changed(parent, "main") is True


def test_changed_runs_two_gits_for_an_unchanged_repo_and_one_for_a_changed_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At fleet size `changed:REF` is git processes: one `git diff --merge-base` (the fork
    and the working tree against it) and, when it finds nothing, one `ls-files` for the
    untracked files; the step-by-step path (four) only when that diff cannot answer."""
    repo = tmp_path / "api"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty",
         "-m", "first")
    _git(repo, "switch", "-q", "-c", "work")
    calls: list[list[str]] = []
    real = subprocess.run

    def counting(args: list[str], *a: object, **kw: object) -> object:
        calls.append(list(args))
        return real(args, *a, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "run", counting)
    assert git_changed(repo, "main") is False
    assert len(calls) == 2, calls
    calls.clear()
    (repo / "a.txt").write_text("a\n")
    assert git_changed(repo, "main") is True  # untracked
    assert len(calls) == 2, calls
    calls.clear()
    _git(repo, "add", "a.txt")
    calls.clear()
    assert git_changed(repo, "main") is True  # staged: the diff says it
    assert len(calls) == 1, calls
    calls.clear()
    said = git_changed(repo, "no-such-branch")  # the diff cannot: asked step by step
    assert isinstance(said, str) and "has no 'no-such-branch'" in said


def _commit(repo: Path, msg: str, name: str | None = None) -> None:
    if name is not None:
        (repo / name).write_text(msg + "\n")
        _git(repo, "add", name)
    _git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty",
         "-m", msg)


def _cloned(tmp_path: Path, name: str, branch: str) -> Path:
    """A checkout cloned from a bare remote whose default branch is ``branch`` (the
    clone records it as origin/HEAD), with a feature branch checked out."""
    seed = tmp_path / "seed" / name
    seed.mkdir(parents=True)
    _git(seed, "init", "-q", "-b", branch)
    _commit(seed, "first", "a.txt")
    bare = tmp_path / "remotes" / f"{name}.git"
    _git(tmp_path, "clone", "-q", "--bare", str(seed), str(bare))
    checkout = tmp_path / "repos" / name
    _git(tmp_path, "clone", "-q", str(bare), str(checkout))
    _git(checkout, "switch", "-q", "-c", "feature")
    return checkout


def test_changed_without_a_ref_compares_each_repo_with_its_own_default_branch(
        tmp_path: Path) -> None:
    """A fleet mixing main and master: `changed:` asks each from origin/HEAD (what its
    clone recorded), else the catalog's default_branch; `changed:main` cannot tell for
    the master repo, which is why the bare form exists."""
    on_main, on_master = _cloned(tmp_path, "core", "main"), _cloned(tmp_path, "legacy", "master")
    quiet = _cloned(tmp_path, "quiet", "master")
    _commit(on_main, "edit", "b.txt")
    _commit(on_master, "edit", "b.txt")
    local = tmp_path / "repos" / "local"  # no remote: its catalog default_branch, trunk
    local.mkdir()
    _git(local, "init", "-q", "-b", "trunk")
    _commit(local, "first", "a.txt")
    _git(local, "switch", "-q", "-c", "feature")
    _commit(local, "edit", "b.txt")
    cat = Catalog.model_validate({"version": 1, "repos": [
        {"name": "core", "path": "repos/core"}, {"name": "legacy", "path": "repos/legacy"},
        {"name": "quiet", "path": "repos/quiet"},
        {"name": "local", "path": "repos/local", "default_branch": "trunk"}]})
    assert select(cat, "changed:", tmp_path).names == ["core", "legacy", "local"]
    assert select(cat, "quiet,changed:", tmp_path).names == ["core", "legacy", "quiet", "local"]
    with pytest.raises(UsageError) as err:  # one ref for all: master's repos cannot say
        select(cat, "changed:main", tmp_path)
    assert "legacy" in err.value.message and "quiet" in err.value.message
    # neither origin/HEAD nor default_branch: named, with how to give one
    bare = cat.model_copy(update={"repos": [*cat.repos[:3], cat.repos[3].model_copy(
        update={"default_branch": None})]})
    bare._repos = None
    with pytest.raises(UsageError) as err:
        select(bare, "changed:", tmp_path)
    assert "local: no default branch" in err.value.message
    assert "--default-branch" in (err.value.hint or "")
    assert select(bare, "changed:,!local", tmp_path).names == ["core", "legacy"]  # as hinted
