"""A push's worktree at one commit (``worktrees.at_commit``): fetched from the remote when
the checkout lacks the commit, outside the repository, taken away whole afterwards,
even after a todo that broke it; nothing it left reaches outside it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from coordination.change import worktrees
from coordination.errors import OperationFailed

pytestmark = pytest.mark.timeout(60)

ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True, env=dict(os.environ, **ENV)).stdout.strip()


@pytest.fixture
def pushed_world(tmp_path: Path) -> tuple[Path, Path, str]:
    """A bare remote, a clone of it (the checkout), and a commit pushed to the remote
    after the clone (the checkout lacks it)."""
    remote, checkout, other = tmp_path / "r.git", tmp_path / "co", tmp_path / "other"
    git(tmp_path, "init", "--quiet", "--bare", "-b", "main", str(remote))
    git(tmp_path, "clone", "--quiet", str(remote), str(other))
    (other / "a").write_text("1\n")
    git(other, "add", "-A")
    git(other, "commit", "--quiet", "-m", "one")
    git(other, "push", "--quiet", "origin", "HEAD:main")
    git(tmp_path, "clone", "--quiet", str(remote), str(checkout))
    (other / "b").write_text("2\n")
    git(other, "add", "-A")
    git(other, "commit", "--quiet", "-m", "two")
    git(other, "push", "--quiet", "origin", "HEAD:main")
    return checkout, other, git(other, "rev-parse", "HEAD")


def test_a_commit_the_checkout_lacks_is_fetched_and_checked_out(
        pushed_world: tuple[Path, Path, str]) -> None:
    checkout, _other, sha = pushed_world
    head = git(checkout, "rev-parse", "HEAD")
    for given in (sha, sha[:10]):  # whole (fetched by name), abbreviated (with its branch)
        wt = worktrees.at_commit(checkout, given, "main", "origin", repo="core")
        assert wt.sha == sha and git(Path(wt.path), "rev-parse", "HEAD") == sha
        assert not Path(wt.path).is_relative_to(checkout)
        assert worktrees.remove_detached(checkout, wt) is None
        assert not Path(wt.home).exists() and not Path(wt.admin).exists()
    assert git(checkout, "rev-parse", "HEAD") == head  # the checkout as it was
    assert len(git(checkout, "worktree", "list").splitlines()) == 1


def test_a_commit_nowhere_and_a_checkout_without_git_are_said(
        pushed_world: tuple[Path, Path, str], tmp_path: Path) -> None:
    checkout, _other, _sha = pushed_world
    with pytest.raises(OperationFailed, match="not in its checkout nor on its remote 'origin'"):
        worktrees.at_commit(checkout, "ab" * 20, "main", "origin", repo="core")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(OperationFailed, match="is not a git repository"):
        worktrees.at_commit(plain, "ab" * 20, "main", "origin", repo="core")


def test_a_worktree_its_todo_broke_goes_whole_and_nothing_outside_it(
        pushed_world: tuple[Path, Path, str], tmp_path: Path) -> None:
    """The todo rewrote its ``.git`` file and left a symlink to a directory outside: the
    worktree and git's entry for it go, what the symlink points at stays."""
    checkout, _other, sha = pushed_world
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep").write_text("mine\n")
    wt = worktrees.at_commit(checkout, sha, "main", "origin", repo="core")
    (Path(wt.path) / ".git").write_text("gitdir: /nowhere\n")
    (Path(wt.path) / "link").symlink_to(outside)
    why = worktrees.remove_detached(checkout, wt)
    assert why is None
    assert not Path(wt.home).exists() and not Path(wt.admin).exists()
    assert (outside / "keep").read_text() == "mine\n"
    assert len(git(checkout, "worktree", "list").splitlines()) == 1
