"""Real git for the change tests and bench/land.py: bare repos as remotes, a clone of each
as the user's checkout, and a post-receive hook in every remote that appends
``<repo> <old> <new>`` to one shared log (the order of pushes across remotes)."""

from __future__ import annotations

import os
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path | str, *args: str) -> str:
    env = dict(os.environ, **GIT_ENV)
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


@dataclass
class Repos:
    root: Path
    names: list[str]
    log: Path

    def remote(self, name: str) -> Path:
        return self.root / "remotes" / f"{name}.git"

    def checkout(self, name: str) -> Path:
        return self.root / "checkouts" / name

    def remote_head(self, name: str, branch: str = "main") -> str:
        return git(self.remote(name), "rev-parse", f"refs/heads/{branch}")

    def pushes(self) -> list[tuple[str, str, str]]:
        if not self.log.exists():
            return []
        return [tuple(line.split()) for line in self.log.read_text().splitlines()]  # type: ignore[misc]

    def push_from_elsewhere(self, name: str, filename: str = "other.txt") -> str:
        """Someone else pushes a commit to ``name``'s main; its SHA."""
        other = self.root / "others" / name
        if not other.exists():
            git(self.root, "clone", "--quiet", str(self.remote(name)), str(other))
        git(other, "pull", "--quiet", "--ff-only")
        (other / filename).write_text(f"{filename} {len(self.pushes())}\n")
        git(other, "add", "-A")
        git(other, "commit", "--quiet", "-m", "someone else")
        git(other, "push", "--quiet", "origin", "HEAD:main")
        return git(other, "rev-parse", "HEAD")


def make_repos(root: Path, names: list[str], hook_extra: str = "") -> Repos:
    """``names`` as bare remotes with one commit on main, cloned under checkouts/.
    ``hook_extra``: shell appended to every post-receive hook (``$REPO`` is set)."""
    log = root / "pushes.log"
    seed = root / "seed"
    seed.mkdir(parents=True)
    git(seed, "init", "--quiet", "-b", "main")
    (seed / "README").write_text("seed\n")
    git(seed, "add", "-A")
    git(seed, "commit", "--quiet", "-m", "seed")
    for name in names:
        remote = root / "remotes" / f"{name}.git"
        git(root, "init", "--quiet", "--bare", "-b", "main", str(remote))
        hook = remote / "hooks" / "post-receive"
        hook.write_text(textwrap.dedent(f"""\
            #!/bin/sh
            REPO={name}
            while read old new ref; do echo "$REPO $old $new" >> {log}; done
            """) + hook_extra)
        hook.chmod(0o755)
        git(seed, "push", "--quiet", str(remote), "main")
        git(root, "clone", "--quiet", str(remote), str(root / "checkouts" / name))
        for k, v in (("user.name", "t"), ("user.email", "t@t")):
            git(root / "checkouts" / name, "config", k, v)
    log.unlink(missing_ok=True)  # the seeding pushes are not a landing's
    return Repos(root, names, log)
