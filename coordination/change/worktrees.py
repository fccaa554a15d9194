"""One worktree per repo and change branch, created from the base on first use and
reused by every todo after (no clone per todo, the user's checkout untouched).

The worktree lives in the repo's own git directory
(``<git-common-dir>/coord-worktrees/<branch>``): beside nothing of the user's,
found again by any process from the checkout and the branch alone, and gone
with the repository. Creation is serialised per repository by a lock file
there, so two todos (or a todo and a landing) never race to create it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from coordination.change import git as g
from coordination.errors import OperationFailed

DIR = "coord-worktrees"


@dataclass(frozen=True)
class Worktree:
    path: str
    branch: str
    #: the base's SHA it was created from (or, found existing, where it forked)
    base_sha: str
    created: bool


def common_dir(checkout: str | Path) -> Path:
    out = g.git(checkout, "rev-parse", "--path-format=absolute", "--git-common-dir")
    return Path(out)


def path_of(checkout: str | Path, branch: str) -> Path:
    """Where ``branch``'s worktree of ``checkout`` is (whether it exists or not)."""
    return common_dir(checkout) / DIR / branch.replace("/", "%")


def plain_path_of(checkout: str | Path, branch: str) -> Path | None:
    """:func:`path_of` without a git process, for a checkout whose ``.git`` is its git
    directory (a clone); None for any other (a linked worktree, a ``.git`` file: ask
    git)."""
    dotgit = Path(checkout) / ".git"
    return dotgit / DIR / branch.replace("/", "%") if dotgit.is_dir() else None


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def ensure(checkout: str | Path, branch: str, base: str, remote: str, *,
           repo: str | None = None, url: str | None = None) -> Worktree:
    """The worktree of ``branch`` in ``checkout``: created from ``remote``'s ``base``
    (fetched now) if it does not exist yet, else the one there is. ``url``: where the
    catalog says the repo ``repo`` is (``url:``); the fetch that creates the worktree
    is refused (:class:`~coordination.change.git.GitError`, nothing fetched) when
    ``remote`` there names another URL (:func:`~coordination.change.git.remote_refusal`,
    as for every fetch of a change) or the checkout's own config rewrites it into
    another (:func:`~coordination.change.git.rewrite_refusal`: this fetch obeys the
    repository's config, so the allow-list does not refuse the rule for it)."""
    if not Path(checkout).is_dir():
        raise g.GitError(["-C", str(checkout)], 128,
                         f"checkout {checkout} does not exist (clone the repo there)")
    wt = path_of(checkout, branch)
    with _locked(wt.parent):
        if (wt / ".git").exists():
            tracking = f"refs/remotes/{remote}/{base}"
            fork = g.git(wt, "merge-base", "HEAD", tracking, check=False) or g.head(wt)
            return Worktree(str(wt), branch, fork, created=False)
        # --force: a worktree of ours whose directory was deleted is still registered
        # (no `git worktree prune`: that would drop the user's own missing worktrees too).
        # (a todo's run: the repo's own config is the todos' world, as their commands are;
        # not where its remote is, when the catalog says it)
        _check_remote(checkout, remote, repo or str(checkout), url)
        base_sha = g.fetch(checkout, remote, base, hooks=True)
        if g.ok(checkout, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}"):
            # The branch outlived its worktree (removed by hand): carry on with it.
            g.git(checkout, "worktree", "add", "--quiet", "--force", str(wt), branch)
            fork = g.git(wt, "merge-base", "HEAD", base_sha, check=False) or base_sha
            return Worktree(str(wt), branch, fork, created=False)
        g.git(checkout, "worktree", "add", "--quiet", "--force", "--no-track", "-b", branch,
              str(wt), base_sha)
        return Worktree(str(wt), branch, base_sha, created=True)


def _check_remote(checkout: str | Path, remote: str, repo: str, url: str | None) -> None:
    """Raise :class:`~coordination.change.git.GitError` (nothing fetched) when the
    catalog says ``repo`` is at ``url`` and fetching ``remote`` in ``checkout`` would
    read another URL (see :func:`ensure`); nothing to check without ``url``."""
    if url is None:
        return
    why = (g.remote_refusal(repo, checkout, remote, url, checkout)
           or g.rewrite_refusal(repo, checkout, remote))
    if why:
        raise g.GitError(["fetch", remote], 1, why)


def identity_env(repo: str | Path) -> dict[str, str]:
    """The identity git has in ``repo`` (config, env) for a commit there; coord's when
    git has none (:func:`coordination.change.git.identity`)."""
    return g.identity(repo)[0]


def commit_all(wt: str | Path, message: str) -> str | None:
    """Commit everything changed in ``wt`` (new files too); the new SHA, or None when
    nothing changed (a todo run again over its own edit commits nothing)."""
    if not g.git(wt, "status", "--porcelain"):
        return None
    g.git(wt, "add", "-A")
    g.git(wt, "commit", "--quiet", "--no-verify", "-m", message, env=identity_env(wt))
    return g.head(wt)


@dataclass(frozen=True)
class Detached:
    """A worktree at one commit, no branch (a push's todo runs there), in a directory of
    its own outside the repository; :func:`remove_detached` takes it away."""

    path: str
    sha: str
    #: its administrative directory in the repository (``.git/worktrees/<name>``)
    admin: str
    #: the private directory it lives in (removed with it)
    home: str


def at_commit(checkout: str | Path, sha: str, branch: str, remote: str, *,
              repo: str | None = None, url: str | None = None) -> Detached:
    """A new worktree of ``checkout`` at the commit ``sha`` (detached), fetched from
    ``remote`` first when the repository does not have it (by its name, else with
    ``branch``: :func:`~coordination.change.git.fetch_commit`). The fetch is refused, as
    :func:`ensure`'s, when ``remote`` names another URL than the catalog's ``url``. It
    lives in a new private directory (``mkdtemp``) outside the repository, never in a
    path the repository (or a todo that wrote into it) could point elsewhere with a
    symlink. :class:`~coordination.errors.OperationFailed` when the checkout is no git
    repository or the commit is not found, a GitError when git fails (nothing made)."""
    if not Path(checkout).is_dir():
        raise g.GitError(["-C", str(checkout)], 128,
                         f"checkout {checkout} does not exist (clone the repo there)")
    if not g.ok(checkout, "rev-parse", "--git-dir"):
        raise OperationFailed(f"checkout {checkout} is not a git repository (clone the repo "
                              "there: a push's todos run on the pushed commit)")
    _check_remote(checkout, remote, repo or str(checkout), url)
    whole = g.fetch_commit(checkout, remote, sha, branch)
    if whole is None:
        raise OperationFailed(f"not in its checkout nor on its remote {remote!r} (its "
                              f"branch {branch} fetched): was it pushed there?")
    home = tempfile.mkdtemp(prefix="coord-push-")
    wt = Path(home) / (repo or Path(checkout).name)
    try:
        g.git(checkout, "worktree", "add", "--quiet", "--detach", "--force", str(wt), whole)
        admin = g.git(wt, "rev-parse", "--path-format=absolute", "--absolute-git-dir")
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)
        raise
    return Detached(str(wt), whole, admin, home)


def remove_detached(checkout: str | Path, wt: Detached) -> str | None:
    """Take ``wt`` away: git forgets it (``worktree remove``), its directory goes, and
    its administrative directory when git could not (a todo that broke its ``.git``
    file). Never raises; what could not be removed, said, or None."""
    why = None
    try:
        g.git(checkout, "worktree", "remove", "--force", "--force", wt.path)
    except (g.GitError, OSError) as exc:
        why = str(exc)
    shutil.rmtree(wt.home, ignore_errors=True)
    admin = Path(wt.admin)
    # (only git's own entry for this worktree: .git/worktrees/<name> whose gitdir file
    # names it; shutil.rmtree never follows a symlink)
    if why and admin.parent.name == "worktrees" and admin.is_dir() and not admin.is_symlink():
        shutil.rmtree(admin, ignore_errors=True)
    if Path(wt.home).exists():
        return f"worktree {wt.path} could not be removed" + (f": {why}" if why else "")
    return None
