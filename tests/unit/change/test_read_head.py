"""A worktree's HEAD read from git's files (``coord change status`` re-reads it for
every repo of a change, hundreds): the same SHA as ``git rev-parse HEAD``, and git
itself whenever the files hold anything but the plain cases."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from coordination.change import git as g

pytestmark = pytest.mark.timeout(30)


def run(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], check=True, capture_output=True, text=True).stdout.strip()


def test_a_branch_loose_or_packed_and_a_detached_head_are_read_from_files(
        repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(repo, "worktree", "add", "-q", "-b", "chg", str(tmp_path / "wt"))
    run(tmp_path / "wt", "commit", "-q", "--allow-empty", "-m", "edit")
    run(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "det"), "main")
    want = {p: run(p, "rev-parse", "HEAD") for p in (repo, tmp_path / "wt", tmp_path / "det")}
    with monkeypatch.context() as m:
        m.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"git started: {a}"))
        assert {p: g.read_head(p) for p in want} == want  # loose refs, a detached HEAD
    run(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "chg").exists()
    with monkeypatch.context() as m:
        m.setattr(subprocess, "run", lambda *a, **k: pytest.fail(f"git started: {a}"))
        assert {p: g.read_head(p) for p in want} == want  # packed refs


def test_what_the_files_do_not_say_plainly_is_asked_of_git(repo: Path) -> None:
    head = run(repo, "rev-parse", "HEAD")
    # a symbolic ref to a symbolic ref: git resolves it
    run(repo, "symbolic-ref", "refs/heads/alias", "refs/heads/main")
    run(repo, "symbolic-ref", "HEAD", "refs/heads/alias")
    assert g.read_head(repo) == head
    # an unborn branch: git's own error, never a made-up SHA
    run(repo, "checkout", "-q", "--orphan", "empty")
    with pytest.raises(g.GitError):
        g.read_head(repo)


def test_a_dot_git_file_that_is_not_a_gitdir_is_asked_of_git(tmp_path: Path) -> None:
    wt = tmp_path / "odd"
    wt.mkdir()
    (wt / ".git").write_text("not a gitdir line\n")
    with pytest.raises(g.GitError):
        g.read_head(wt)
