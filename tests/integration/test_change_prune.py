"""`coord change prune [PLAN] [--dry-run] [--json]` (#50): the worktrees and local
branches of finished changes removed, never an unfinished change's; a landed change
pruned can still be reverted (the revert makes the worktrees it needs again).

Real git (bare remotes), the test's redis-server; `coord` as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.change_repos import World, git

pytestmark = pytest.mark.timeout(120)

NAMES = ["libz", "core"]


def test_prune_removes_a_finished_changes_worktrees_and_branches_only(
        tmp_path: Path, redis_url: str) -> None:
    w = World(tmp_path, NAMES)
    w.draft()
    w.verify()

    def coord(*args: str, expect: int = 0) -> dict:  # type: ignore[type-arg]
        out = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file",
                              str(w.catalog), *args, "--json"], env=dict(os.environ),
                             text=True, capture_output=True, timeout=60)
        assert out.returncode == expect, (args, out.stdout, out.stderr)
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    wts = {n: Path(r["worktree"]) for n, r in w.status()["repos"].items()}
    # verified, not landed: unfinished, kept
    [kept] = coord("change", "prune")["changes"]
    assert kept["finished"] is False and "not finished: never landed" in kept["why"]
    assert all(p.is_dir() for p in wts.values())

    assert coord("change", "land", "PLAN-001")["state"] == "landed"
    dry = coord("change", "prune", "PLAN-001", "--dry-run")
    assert [r["action"] for r in dry["changes"][0]["repos"]] == ["would_remove"] * 2
    assert all(p.is_dir() for p in wts.values())

    done = coord("change", "prune", "PLAN-001")
    assert [(r["repo"], r["action"]) for r in done["changes"][0]["repos"]] == [
        ("libz", "removed"), ("core", "removed")]
    for n in NAMES:
        assert not wts[n].exists()
        checkout = w.repos.checkout(n)
        assert git(checkout, "branch", "--list", "chg") == ""
        assert git(checkout, "worktree", "list", "--porcelain").count("worktree ") == 1
        assert git(checkout, "status", "--porcelain") == ""
    again = coord("change", "prune", "PLAN-001")
    assert [r["action"] for r in again["changes"][0]["repos"]] == ["absent"] * 2

    # pruned, still revertible: the worktrees are made again for it
    landed = {n: w.repos.remote_head(n) for n in NAMES}
    assert coord("change", "revert", "PLAN-001")["state"] == "reverted"
    assert all(w.repos.remote_head(n) != landed[n] for n in NAMES)
    assert all(p.is_dir() for p in wts.values())
    assert coord("change", "prune")["changes"][0]["finished"] is True
    assert not any(p.exists() for p in wts.values())
