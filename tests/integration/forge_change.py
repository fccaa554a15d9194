"""A two-repo change landed through pull requests on a fake forge of each kind
(tests/forges/: real HTTP on loopback, real bare repositories behind with a protected
default branch, every request and response checked against the forge's description):
the catalog, checkouts cloned from the fake's repositories, the change's candidates made
through the worker's own calls, and ``coord`` run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.forges import TOKEN_ENV, FakeForge
from tests.integration.change_repos import git

NAMES = ["libz", "api"]  # api uses libz
PLAN = "PLAN-001"
SECRET = "webhook-s3cret"


def catalog_text(fake: FakeForge, root: Path, extra_gate: str = "") -> str:
    lines = ["version: 1", "repos:"]
    for n in NAMES:
        lines.append(f"  - {{name: {n}, path: checkouts/{n}, forge: {{kind: {fake.kind}, "
                     f"project: acme/{n}, api: \"{fake.api}\", token_env: {TOKEN_ENV}}}}}")
    lines += ["coordination:", "  plans:",
              f"    - {{id: {PLAN}, title: libz 2 everywhere, status: active, "
              "change: {branch: chg, land: pr}}", "  todos:"]
    for i, n in enumerate(NAMES):
        lines.append(f"    - {{id: TODO-00{i + 1}, task: edit {n}, repo: {n}, plan: {PLAN}, "
                     f"run: \"echo 2 > VERSION\", commit: \"{n} 2\"}}")
    lines.append(f"    - {{id: TODO-100, task: verify, repo: api, plan: {PLAN}, verify: true, "
                 "run: \"true\", blocked_by: [TODO-001, TODO-002]}")
    lines += ["  dependencies:", "    - {id: DEP-001, consumer: api, provider: libz}"]
    return "\n".join(lines) + "\n" + extra_gate


class ForgeChange:
    """The change's world over ``fake`` (its projects ``acme/libz`` and ``acme/api``)."""

    def __init__(self, fake: FakeForge, root: Path) -> None:
        from coordination.catalog.file.store import CatalogStore
        from coordination.change.model import change_of
        from coordination.runtime.context import Runtime

        self.fake, self.root = fake, root
        root.mkdir(parents=True, exist_ok=True)
        for n in NAMES:
            fake.add_project(f"acme/{n}")
            co = root / "checkouts" / n
            git(root, "clone", "--quiet", str(self.bare(n)), str(co))
            for k, v in (("user.name", "t"), ("user.email", "t@t")):
                git(co, "config", k, v)
        self.catalog = root / "ecosystem.yaml"
        self.catalog.write_text(catalog_text(fake, root))
        self.rt = Runtime.create(catalog=self.catalog)
        self.cp = change_of(CatalogStore(self.catalog).load(), PLAN, root)
        self.env = {TOKEN_ENV: fake.token}

    def bare(self, repo: str) -> Path:
        return self.fake.projects[f"acme/{repo}"].repo.path

    def head(self, repo: str, branch: str = "main") -> str | None:
        out = git(self.bare(repo), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}",
                  check=False)
        return out or None

    def draft(self) -> dict[str, str]:
        from coordination.change.todos import enter, leave

        out = {}
        for i, repo in enumerate(self.cp.targets):
            tc = self.cp.todo_change(f"{repo} 2", False)
            e = enter(self.rt.changes, tc, repo, str(self.root / "checkouts" / repo))
            (Path(e.cwd) / "VERSION").write_text(f"2 {repo}\n")
            sha = leave(self.rt.changes, tc, repo, f"TODO-00{i + 1}", e, True)
            assert sha is not None
            out[repo] = sha
        return out

    def verify(self, ok: bool = True) -> None:
        from coordination.change.todos import enter, leave

        n = getattr(self, "verified", 0) + 1
        self.verified = n
        sweep = f"TODO-100-verify-{n}"
        self.rt.changes.note_sweep(PLAN, sweep, 0, ["TODO-100"], last=False)
        tc = self.cp.todo_change(None, True)
        e = enter(self.rt.changes, tc, "api", str(self.root / "checkouts" / "api"))
        leave(self.rt.changes, tc, "api", "TODO-100", e, ok, sweep=sweep, run=0)

    def coord(self, *args: str, env: dict[str, str] | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
        run_env = {**os.environ, **self.env, **(env or {})}
        return subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file",
                               str(self.catalog), *args], capture_output=True, text=True,
                              env=run_env, timeout=timeout, stdin=subprocess.DEVNULL)

    def coord_json(self, *args: str, expect: int = 0) -> Any:
        res = self.coord(*args, "--json")
        assert res.returncode == expect, (res.returncode, res.stdout, res.stderr)
        return json.loads(res.stdout)

    def push_by_hand(self, repo: str) -> str | None:
        """Someone else pushes a commit to ``repo``'s change branch (not what coord
        verified); the branch's new head."""
        other = self.root / f"other-{repo}"
        git(self.root, "clone", "-q", "-b", "chg", str(self.bare(repo)), str(other))
        (other / "late.txt").write_text("late\n")
        git(other, "add", "-A")
        git(other, "-c", "user.name=o", "-c", "user.email=o@o", "commit", "-qm", "late")
        git(other, "push", "-q", "origin", "HEAD:chg")
        return self.head(repo, "chg")

    def pr(self, repo: str) -> Any:
        """The fake's record of the repo's pull request of the change."""
        p = self.fake.projects[f"acme/{repo}"]
        [pr] = [x for x in p.prs.values() if x.head == "chg"]
        return pr

    def merges(self) -> list[str]:
        """Merge requests the fake was sent, in order: the project of each."""
        out = []
        for method, path, _q, _h, _b in self.fake.seen:
            if method in ("PUT", "POST") and path.endswith("/merge"):
                out.append(next(n for n in NAMES if f"acme/{n}" in path.replace("%2F", "/")
                                or f"/{n}/" in path))
        return out


# -- merge queues (GitHub's ruleset rule, GitLab's merge trains) -------------------------


def require_queues(fc: ForgeChange) -> str:
    """Both repos' bases require a merge queue (GitHub) or run merge trains (GitLab);
    the queue's kind."""
    for r in NAMES:
        if fc.fake.kind == "gitlab":
            fc.fake.merge_trains(f"acme/{r}")  # type: ignore[attr-defined]
        else:
            fc.fake.add_ruleset(f"acme/{r}", queue="MERGE")
    return "merge_train" if fc.fake.kind == "gitlab" else "merge_queue"


def in_background(fc: ForgeChange, *args: str) -> Any:
    """``coord ARGS --json`` started, its outputs piped (:func:`ended` ends it)."""
    from tests import clifork

    return clifork.popen([sys.executable, "-m", "coordination.cli.main", "--file",
                          str(fc.catalog), *args, "--json"],
                         env={**os.environ, **fc.env}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def ended(proc: Any, failed: bool) -> tuple[int, str, str]:
    """The command's exit and outputs (ended at once when the test failed meanwhile)."""
    from tests.servers import term_then_kill

    try:
        if failed:
            term_then_kill(proc.pid, group=False, grace=5, poll=0.05)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            term_then_kill(proc.pid, group=False, grace=5, poll=0.05)
    return proc.returncode, out, err


def queue_requests(fc: ForgeChange) -> list[dict[str, Any]]:
    """What coord sent to add a pull request to its queue: GitHub's enqueuePullRequest
    variables, GitLab's merge bodies (each one: a direct merge would be one too)."""
    out = []
    for method, path, _q, _h, body in fc.fake.seen:
        if fc.fake.kind == "gitlab" and method == "PUT" and path.endswith("/merge"):
            out.append(json.loads(body))
        elif path.endswith("/graphql") and b"enqueuePullRequest" in body:
            out.append(json.loads(body)["variables"])
    return out
