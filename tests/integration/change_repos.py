"""Real git for the change tests and bench/land.py: bare repos as remotes, a clone of each
as the user's checkout, and a post-receive hook in every remote that appends
``<repo> <old> <new>`` to one shared log (the order of pushes across remotes)."""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Five repos, each a consumer of the one before (libz <- core <- api <- web <- app).
CHAIN = ["libz", "core", "api", "web", "app"]

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path | str, *args: str, check: bool = True, input: str | None = None) -> str:
    env = dict(os.environ, **GIT_ENV)
    return subprocess.run(["git", "-C", str(cwd), *args], check=check, capture_output=True,
                          text=True, env=env, input=input).stdout.strip()


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
            while read old new ref; do
              case "$ref" in refs/coord/*) continue;; esac  # freshness anchors
              echo "$REPO $old $new" >> {log}
            done
            """) + hook_extra)
        hook.chmod(0o755)
        git(seed, "push", "--quiet", str(remote), "main")
        git(root, "clone", "--quiet", str(remote), str(root / "checkouts" / name))
        for k, v in (("user.name", "t"), ("user.email", "t@t")):
            git(root / "checkouts" / name, "config", k, v)
    log.unlink(missing_ok=True)  # the seeding pushes are not a landing's
    return Repos(root, names, log)


def edits_catalog_lines(names: list[str], title: str, runs: dict[str, str],
                        plan: str = "PLAN-001") -> tuple[list[str], list[str]]:
    """A catalog's lines, up to its todos: ``names`` as repos (checkouts/<name>), a change
    plan ``title`` (branch chg) and an edit+commit todo per repo running ``runs[repo]``.
    The lines (more todos may follow) and the edit todos' ids."""
    lines = ["version: 1", "repos:"]
    lines += [f"  - {{name: {n}, path: checkouts/{n}}}" for n in names]
    lines += ["coordination:", "  plans:",
              f"    - {{id: {plan}, title: {title}, status: active, change: {{branch: chg}}}}",
              "  todos:"]
    ids = []
    for i, n in enumerate(names):
        ids.append(f"TODO-{i + 1:03d}")
        lines.append(f"    - {{id: {ids[-1]}, task: edit {n}, repo: {n}, plan: {plan}, "
                     f"run: {json_str(runs[n])}, commit: \"edit {n}\"}}")
    return lines, ids


def catalog_yaml(names: list[str], *, branch: str = "chg", land: str = "push",
                 land_command: str | None = None, plan: str = "PLAN-001",
                 verify_run: str = "true", edit_run: str = "echo edited > CHANGED") -> str:
    """A catalog: ``names`` as repos (checkouts/<name>), each depending on the one before,
    a change plan with an edit+commit todo per repo and one verify todo in the last."""
    lines = ["version: 1", "repos:"]
    for n in names:
        lines.append(f"  - {{name: {n}, path: checkouts/{n}"
                     + (f", land_command: {json_str(land_command)}" if land_command else "") + "}")
    lines += ["coordination:", "  plans:",
              f"    - {{id: {plan}, title: change, status: active, "
              f"change: {{branch: {branch}, land: {land}}}}}", "  todos:"]
    edits = []
    for i, n in enumerate(names):
        tid = f"TODO-{i + 1:03d}"
        edits.append(tid)
        lines.append(f"    - {{id: {tid}, task: edit {n}, repo: {n}, plan: {plan}, "
                     f"run: {json_str(edit_run)}, commit: \"edit {n}\"}}")
    lines.append(f"    - {{id: TODO-{100 + len(names):03d}, task: verify, repo: {names[-1]}, plan: {plan}, "
                 f"verify: true, run: {json_str(verify_run)}, blocked_by: [{', '.join(edits)}]}}")
    lines.append("  dependencies:")
    for i in range(1, len(names)):
        lines.append(f"    - {{id: DEP-{i:03d}, consumer: {names[i]}, provider: {names[i - 1]}}}")
    return "\n".join(lines) + "\n"


def json_str(s: str) -> str:
    import json

    return json.dumps(s)


class World:
    """Repos, a catalog with a change plan, and a runtime on the test's Redis; candidates
    are made through the worker's own calls (coordination.change.todos)."""

    def __init__(self, root: Path, names: list[str], **catalog_kw: object) -> None:
        from coordination.catalog.file.store import CatalogStore
        from coordination.change.model import change_of
        from coordination.runtime.context import Runtime

        self.root = root
        self.names = names
        self.repos = make_repos(root, names)
        self.catalog = root / "ecosystem.yaml"
        self.catalog.write_text(catalog_yaml(names, **catalog_kw))  # type: ignore[arg-type]
        self.rt = Runtime.create(catalog=self.catalog)
        self.plan = str(catalog_kw.get("plan", "PLAN-001"))
        self.cp = change_of(CatalogStore(self.catalog).load(), self.plan, root)

    def draft(self, tag: str = "edit", unchanged: Iterable[str] = ()) -> dict[str, str]:
        """An edit committed in every repo's change worktree but those ``unchanged`` (a
        template's run found nothing to do there); repo -> candidate."""
        from coordination.change.todos import enter, leave

        out = {}
        for i, repo in enumerate(self.cp.targets):
            tc = self.cp.todo_change(f"{tag} {repo}", False)
            e = enter(self.rt.changes, tc, repo, str(self.repos.checkout(repo)))
            if repo not in unchanged:
                (Path(e.cwd) / f"{tag}.txt").write_text(f"{tag} {repo}\n")
            sha = leave(self.rt.changes, tc, repo, f"TODO-{i + 1:03d}", e, True)
            assert sha is not None
            out[repo] = sha
        return out

    def drafted_and_verified(self) -> tuple[dict[str, str], dict[str, str]]:
        """The change drafted (:meth:`draft`) and verified: each repo's remote head before
        it, and each repo's candidate."""
        base = {r: self.repos.remote_head(r) for r in self.names}
        cands = self.draft()
        self.verify()
        return base, cands

    def verify(self, ok: bool = True) -> dict[str, str]:
        """The verify todo's turn (in the last repo), in a one-todo sweep of its own as
        `coord todo run` starts it (the plan's sweep pointer notes where it ran): the
        SHAs it was given."""
        from coordination.change.todos import enter, leave

        self.verified = getattr(self, "verified", 0) + 1
        sweep = f"{self.verify_todo}-verify-{self.verified}"
        self.rt.changes.note_sweep(self.plan, sweep, 0, [self.verify_todo], last=False)
        repo = self.names[-1]
        tc = self.cp.todo_change(None, True)
        e = enter(self.rt.changes, tc, repo, str(self.repos.checkout(repo)))
        leave(self.rt.changes, tc, repo, self.verify_todo, e, ok, sweep=sweep, run=0)
        return e.shas

    @property
    def verify_todo(self) -> str:
        return self.cp.verify_todos[0]

    def lander(self, **kw: object):  # type: ignore[no-untyped-def]
        from coordination.change.landing import Lander

        return Lander(self.rt, self.cp, **kw)  # type: ignore[arg-type]

    def status(self) -> dict:  # type: ignore[type-arg]
        from coordination.change.reading import status_of

        return dict(status_of(self.rt, self.cp))


def remote_with(root: Path, name: str, files: dict[str, str], branch: str = "main") -> Path:
    """A bare remote holding ``files`` on ``branch``; its path."""
    seed = root / "seed" / name
    seed.mkdir(parents=True)
    git(seed, "init", "-q", "-b", branch)
    for rel, text in files.items():
        (seed / rel).parent.mkdir(parents=True, exist_ok=True)
        (seed / rel).write_text(text)
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "first")
    bare = root / "remotes" / f"{name}.git"
    git(root, "clone", "-q", "--bare", str(seed), str(bare))
    return bare


def commit(checkout: Path, rel: str, text: str) -> None:
    (checkout / rel).write_text(text)
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", f"edit {rel}")


def coord(w: World, *args: str) -> Any:
    """``coord --file <w's catalog> ARGS`` in the background, its outputs piped (a
    ``Popen``, or the same calls on a process forked from a warm interpreter:
    tests/clifork.py)."""
    import sys

    from tests import clifork

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return clifork.popen([sys.executable, "-m", "coordination.cli.main", "--file",
                          str(w.catalog), *args], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
