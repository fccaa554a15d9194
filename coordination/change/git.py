"""The git commands coord runs for changes: one subprocess each, no state kept here.

Every call names its repository directory (``git -C``), never relies on the
process's cwd, and turns a failure into :class:`GitError` carrying git's own
message. Identity and dates of coord's own commits (reverts) are fixed by the
caller so that the same revert made twice has the same SHA.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from coordination.errors import OperationFailed

#: Seconds any one git command may take (a push to a slow remote included).
GIT_TIMEOUT = 120.0

#: Who coord's own commits (reverts, merges of a moved base) are by, unless the
#: repo's git config says otherwise.
IDENTITY = {"GIT_AUTHOR_NAME": "coord", "GIT_AUTHOR_EMAIL": "coord@localhost",
            "GIT_COMMITTER_NAME": "coord", "GIT_COMMITTER_EMAIL": "coord@localhost"}


class GitError(OperationFailed):
    """A git command failed; ``stderr`` is git's own message."""

    def __init__(self, args: Sequence[str], code: int, stderr: str) -> None:
        text = stderr.strip().splitlines()
        super().__init__(f"git {' '.join(args)} failed ({code}): "
                         + (text[-1] if text else "no message"))
        self.args_ = list(args)
        self.code = code
        self.stderr = stderr


def git(repo: str | Path, *args: str, env: Mapping[str, str] | None = None,
        check: bool = True, input: str | None = None) -> str:
    """``git -C repo ARGS``: its stdout, stripped. ``check``: a failure raises."""
    full = None
    if env:
        full = dict(os.environ)
        full.update(env)
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          env=full, timeout=GIT_TIMEOUT, input=input,
                          stdin=None if input is not None else subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise GitError(args, proc.returncode, proc.stderr)
    return proc.stdout.strip()


def ok(repo: str | Path, *args: str, env: Mapping[str, str] | None = None) -> bool:
    """Did ``git -C repo ARGS`` exit 0?"""
    try:
        git(repo, *args, env=env)
    except GitError:
        return False
    return True


def head(repo: str | Path) -> str:
    return git(repo, "rev-parse", "HEAD")


def tree(repo: str | Path, rev: str) -> str | None:
    """The tree SHA of ``rev`` (None if this repo does not have ``rev``)."""
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{tree}}")
    except GitError:
        return None


def remote_sha(repo: str | Path, remote: str, branch: str) -> str | None:
    """``branch``'s SHA on ``remote`` now, asked of the remote (None: no such branch)."""
    out = git(repo, "ls-remote", "--heads", remote, f"refs/heads/{branch}")
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return sha
    return None


def fetch(repo: str | Path, remote: str, branch: str) -> str:
    """Fetch ``branch`` of ``remote`` into its remote-tracking ref; its SHA."""
    git(repo, "fetch", "--quiet", "--no-tags", remote,
        f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
    return git(repo, "rev-parse", f"refs/remotes/{remote}/{branch}")


def has(repo: str | Path, sha: str) -> bool:
    return ok(repo, "cat-file", "-e", f"{sha}^{{commit}}")


def is_ancestor(repo: str | Path, a: str, b: str) -> bool:
    return ok(repo, "merge-base", "--is-ancestor", a, b)


def push(repo: str | Path, remote: str, sha: str, branch: str, expect: str) -> str | None:
    """Push ``sha`` to ``branch`` of ``remote`` only if the remote's branch is still
    ``expect`` (``--force-with-lease``); None when pushed, else git's refusal."""
    try:
        git(repo, "push", "--quiet", "--porcelain",
            f"--force-with-lease=refs/heads/{branch}:{expect}", remote,
            f"{sha}:refs/heads/{branch}")
    except GitError as exc:
        return exc.stderr.strip() or str(exc)
    return None
