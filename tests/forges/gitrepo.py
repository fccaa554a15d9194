"""The git behind a fake forge: one bare repository per project, whose default branch
is protected by a ``pre-receive`` hook (a push to it is refused, as on a forge with
branch protection) and whose ``post-receive`` hook tells the fake what was pushed (for
its push webhooks). Merges are done by the fake with real git in a scratch clone
(merge commit, squash or rebase) and pushed through the hook with the fake's own pass."""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.forges.server import FakeForge

GIT_ENV = {"GIT_AUTHOR_NAME": "fake forge", "GIT_AUTHOR_EMAIL": "forge@fake.invalid",
           "GIT_COMMITTER_NAME": "fake forge", "GIT_COMMITTER_EMAIL": "forge@fake.invalid",
           "GIT_CONFIG_NOSYSTEM": "1"}
ZERO = "0" * 40


class HeadMovedError(Exception):
    """The head branch is not at the commit the merge was pinned to."""


class MergeConflict(Exception):
    """git could not merge the head into the base without a conflict."""


def git(cwd: Path | str, *args: str, env: dict[str, str] | None = None,
        check: bool = True) -> str:
    run_env = dict(os.environ, **GIT_ENV, **(env or {}))
    out = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True,
                         env=run_env, check=False)
    if check and out.returncode != 0:
        raise subprocess.CalledProcessError(out.returncode, ["git", *args], out.stdout,
                                            out.stderr)
    return out.stdout.strip()


PRE_RECEIVE = """#!/bin/sh
# The fake forge's branch protection: nobody pushes to {branch} but the forge's merges.
while read old new ref; do
  if [ "$ref" = "refs/heads/{branch}" ] && [ "$FAKE_FORGE_PASS" != "{secret}" ]; then
    echo "remote: {branch} is protected: changes land through a pull request" >&2
    exit 1
  fi
done
"""

POST_RECEIVE = """#!/bin/sh
# Tell the fake forge what was pushed (its push webhooks).
exec {python} -c {code} "$@"
"""
_NOTIFY = ("import sys, urllib.request; data = sys.stdin.read().encode(); "
           "urllib.request.urlopen(urllib.request.Request({url!r}, data=data, method='POST'), "
           "timeout=10).read()")


class BareRepo:
    """A project's repository: ``path`` is what a clone or a push names."""

    def __init__(self, root: Path, name: str, default_branch: str = "main") -> None:
        self.path = root / f"{name.replace('/', '__')}.git"
        self.default_branch = default_branch
        self._pass = secrets.token_hex(8)
        self.path.mkdir(parents=True)
        git(self.path, "init", "--quiet", "--bare", f"--initial-branch={default_branch}")
        seed = Path(tempfile.mkdtemp(prefix="seed-", dir=root))
        git(seed, "init", "--quiet", f"--initial-branch={default_branch}")
        (seed / "README.md").write_text(f"# {name}\n")
        git(seed, "add", "-A")
        git(seed, "commit", "--quiet", "-m", "initial")
        git(seed, "push", "--quiet", str(self.path), f"HEAD:refs/heads/{default_branch}")
        self._hook("pre-receive", PRE_RECEIVE.format(branch=default_branch, secret=self._pass))

    def _hook(self, name: str, text: str) -> None:
        hook = self.path / "hooks" / name
        hook.write_text(text)
        hook.chmod(0o755)

    def notify_pushes(self, url: str) -> None:
        """The post-receive hook posts ``old new ref`` lines to ``url``."""
        code = shlex.quote(_NOTIFY.format(url=url))
        self._hook("post-receive", POST_RECEIVE.format(python=shlex.quote(sys.executable),
                                                       code=code))

    def head(self, branch: str) -> str | None:
        out = git(self.path, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}",
                  check=False)
        return out or None

    def conflicts(self, base: str, head: str) -> bool:
        """Would merging ``head`` into ``base`` conflict? (git merge-tree, no worktree)"""
        out = subprocess.run(["git", "-C", str(self.path), "merge-tree", "--write-tree",
                              f"refs/heads/{base}", f"refs/heads/{head}"],
                             capture_output=True, text=True, env=dict(os.environ, **GIT_ENV))
        return out.returncode == 1

    def behind(self, base: str, head: str) -> bool:
        """Is ``base``'s tip missing from ``head`` (the head is not up to date)?"""
        out = subprocess.run(["git", "-C", str(self.path), "merge-base", "--is-ancestor",
                              f"refs/heads/{base}", f"refs/heads/{head}"],
                             env=dict(os.environ, **GIT_ENV))
        return out.returncode != 0

    def merge(self, base: str, head: str, head_sha: str, method: str, message: str) -> str:
        """Merge branch ``head`` (at ``head_sha``, else HeadMovedError) into ``base`` by
        ``method`` (merge, squash, rebase) with real git; the new tip of ``base``.
        MergeConflict when git cannot."""
        work = Path(tempfile.mkdtemp(prefix="merge-", dir=self.path.parent))
        git(work, "clone", "--quiet", "--branch", base, str(self.path), ".")
        git(work, "fetch", "--quiet", "origin", f"refs/heads/{head}")
        if git(work, "rev-parse", "FETCH_HEAD") != head_sha:
            raise HeadMovedError(head)
        try:
            if method == "merge":
                git(work, "merge", "--quiet", "--no-ff", "-m", message, head_sha)
            elif method == "squash":
                git(work, "merge", "--quiet", "--squash", head_sha)
                git(work, "commit", "--quiet", "--allow-empty", "-m", message)
            elif method == "rebase":
                git(work, "checkout", "--quiet", "-B", "rebasing", head_sha)
                git(work, "rebase", "--quiet", base)
                git(work, "checkout", "--quiet", base)
                git(work, "merge", "--quiet", "--ff-only", "rebasing")
            else:
                raise ValueError(method)
        except subprocess.CalledProcessError as exc:
            raise MergeConflict(exc.stderr or exc.stdout) from None
        git(work, "push", "--quiet", "origin", f"HEAD:refs/heads/{base}",
            env={"FAKE_FORGE_PASS": self._pass})
        return git(work, "rev-parse", "HEAD")


def push_branch(fake: FakeForge, tmp: Path, branch: str, filename: str = "change.txt",
                project: str = "acme/lib") -> str:
    """A commit on ``branch`` pushed to ``fake``'s repository of ``project``; its sha."""
    work = tmp / f"work-{branch.replace('/', '-')}-{filename}"
    if not work.exists():
        git(tmp, "clone", "--quiet", str(fake.projects[project].repo.path), str(work))
        git(work, "checkout", "--quiet", "-B", branch)
    (work / filename).write_text(f"{filename} on {branch}, {len(list(work.iterdir()))}\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", f"change {filename}")
    git(work, "push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}")
    return git(work, "rev-parse", "HEAD")
