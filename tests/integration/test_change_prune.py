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


def test_prune_removes_only_what_git_lists_never_a_path_read_from_redis(
        tmp_path: Path, redis_url: str) -> None:
    """A keyless writer (redis-py) names a real directory outside the fleet as a landed
    change's worktree in its repo record: `--dry-run` prints each path it would remove
    (git's), and prune removes the change's real worktrees, leaves the named directory
    alone and says so (0.5 deleted it)."""
    import redis

    w = World(tmp_path, NAMES)
    w.draft()
    w.verify()
    victim = tmp_path / "someones-home"
    (victim / "keep").mkdir(parents=True)
    (victim / "keep" / "notes.txt").write_text("mine\n")
    wts = {n: Path(r["worktree"]) for n, r in w.status()["repos"].items()}

    def coord(*args: str, json_out: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file",
                              str(w.catalog), *args, *(["--json"] if json_out else [])],
                             env=dict(os.environ), text=True, capture_output=True, timeout=60)
        assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out

    assert json.loads(coord("change", "land", "PLAN-001").stdout)["state"] == "landed"
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    key = w.rt.keys.change("PLAN-001")
    rec = json.loads(raw.hget(key, "repo:libz") or "{}")
    raw.hset(key, "repo:libz", json.dumps({**rec, "worktree": str(victim)}))

    dry = coord("change", "prune", "PLAN-001", "--dry-run", json_out=False)
    for n in NAMES:
        assert f"{n}: would remove {os.path.realpath(wts[n])}" in dry.stdout, dry.stdout
    assert str(victim) not in dry.stdout and f"names {victim}" in dry.stderr, dry
    doc = json.loads(coord("change", "prune", "PLAN-001").stdout)
    [libz, core] = doc["changes"][0]["repos"]
    assert libz["action"] == "removed" and libz["paths"] == [os.path.realpath(wts["libz"])]
    assert f"names {victim} as its worktree, which git does not list" in libz["why"], libz
    assert (victim / "keep" / "notes.txt").read_text() == "mine\n"  # never touched
    assert not wts["libz"].exists() and not wts["core"].exists()
