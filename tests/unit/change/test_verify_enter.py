"""A verify todo's set-up (coordination.change.todos.enter) is given every repo's
candidate: for a verify template over a fleet, each instance is given all of them. The
repos other than its own are read from their records and git's files, with no git
process and no read of the whole change (whose verify records grow as repos squared):
a set-up growing with the fleet outlived the lease's TTL on real workers, and every
instance of a 30-repo verify template ended failed as a poison todo."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from coordination.change import worktrees
from coordination.change.model import TodoChange
from coordination.change.todos import enter, leave
from coordination.runtime.changes import RepoRecord
from coordination.runtime.context import Runtime

pytestmark = pytest.mark.timeout(60)

PLAN = "PLAN-001"
NAMES = ["lib", "api", "web", "app"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def clones(tmp_path: Path) -> dict[str, Path]:
    """A bare remote and a clone of each repo; repo -> its checkout."""
    seed = tmp_path / "seed"
    git(tmp_path, "init", "-q", "-b", "main", str(seed))
    git(seed, "commit", "-q", "--allow-empty", "-m", "seed")
    out = {}
    for n in NAMES:
        remote = tmp_path / "remotes" / f"{n}.git"
        git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
        git(seed, "push", "-q", str(remote), "main")
        git(tmp_path, "clone", "-q", str(remote), str(tmp_path / n))
        out[n] = tmp_path / n
    return out


def change(clones: dict[str, Path], verify: bool) -> TodoChange:
    return TodoChange(plan=PLAN, branch="bump/x", commit=None if verify else "edit",
                      verify=verify, repos={n: [str(p), "main", "origin"]
                                            for n, p in clones.items()})


def edit_all(rt: Runtime, clones: dict[str, Path]) -> dict[str, str]:
    """Each repo's edit todo, as a worker runs it: repo -> its candidate."""
    out = {}
    for n, checkout in clones.items():
        tc = change(clones, False)
        e = enter(rt.changes, tc, n, str(checkout))
        (Path(e.cwd) / "CHANGES").write_text(f"{n}\n")
        sha = leave(rt.changes, tc, n, f"TODO-010[{n}]", e, True)
        assert sha is not None
        out[n] = sha
    return out


def test_a_verify_todo_reads_the_other_repos_from_their_records_and_files(
        rt: Runtime, clones: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    cands = edit_all(rt, clones)
    started: list[list[str]] = []
    real = subprocess.run

    def counted(*a: Any, **kw: Any) -> Any:
        started.append([str(x) for x in a[0]])
        return real(*a, **kw)

    with monkeypatch.context() as m:
        m.setattr(subprocess, "run", counted)
        m.setattr(type(rt.changes), "read",
                  lambda *a: pytest.fail("a todo's set-up read the whole change"))
        e = enter(rt.changes, change(clones, True), "app", str(clones["app"]))
    assert e.shas == cands  # every repo's candidate, its own included
    for n, checkout in clones.items():
        assert e.env[f"COORD_CANDIDATE_{n.upper()}_PATH"] == str(
            worktrees.path_of(checkout, "bump/x"))
        assert e.env[f"COORD_CANDIDATE_{n.upper()}_SHA"] == cands[n]
    # git ran for its own repo's worktree only, never for the other repos
    assert started and all(str(clones["app"]) in " ".join(a) for a in started), started


def test_what_the_records_do_not_say_is_asked_of_git(
        rt: Runtime, clones: dict[str, Path]) -> None:
    cands = edit_all(rt, clones)
    # web: a commit made by hand in its worktree since (its candidate now, recorded);
    # api: its record lost (its worktree is found again by git)
    wt = worktrees.path_of(clones["web"], "bump/x")
    (wt / "MORE").write_text("more\n")
    git(wt, "add", "-A")
    git(wt, "commit", "-q", "-m", "by hand")
    moved = git(wt, "rev-parse", "HEAD")
    rt.changes.r.hdel(rt.changes.keys.change(PLAN), "repo:api")
    e = enter(rt.changes, change(clones, True), "app", str(clones["app"]))
    assert e.shas == {**cands, "web": moved}
    recs = rt.changes.repos(PLAN, NAMES)
    assert recs["web"].candidate == moved and recs["api"].candidate == cands["api"]
    assert recs["api"].worktree == str(worktrees.path_of(clones["api"], "bump/x"))
    # a record of another base is not this change's: git is asked, the record rewritten
    rt.changes.set_repo(PLAN, "lib", RepoRecord("release", "origin", "x", "y", "/elsewhere"))
    e = enter(rt.changes, change(clones, True), "app", str(clones["app"]))
    assert e.shas["lib"] == cands["lib"]
    assert rt.changes.repos(PLAN, ["lib"])["lib"].base == "main"
