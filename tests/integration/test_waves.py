"""Waves on a real redis-server with real `coord worker` processes.

Three waves: the first (max_parallel 2 over three todos of a repo that could run
three) soaks, the second fails and halts the sweep (paused, with the reason), the
third never starts; `sweep unpause` accepts the halted wave and lets the third go.
An atomic sweep's halted wave rolls it back instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import PLAN, TIMED, Cluster, intervals, max_overlap, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SOAK = 1.0


def waves_catalog(c: Cluster) -> Path:
    """a (three todos, concurrency 3), b (one todo that fails), c (one todo); b and c
    tagged; waves: canary [a] max_parallel 2 soak 1 s, middle [tag b] soak 1 s, rest [c]."""
    for r in ("a", "b", "c"):
        c.repo_dir(r).mkdir(parents=True, exist_ok=True)
    timed = TIMED.format(s=0.4).replace('"', '\\"')
    todos = "".join(f"""    - {{id: TODO-00{i}, task: a{i}, repo: a, plan: {PLAN}, run: "{timed}",
        undo: "touch undone-{i}"}}
""" for i in (1, 2, 3))
    c.eco.write_text(f"""version: 1
repos:
  - {{name: a, path: repos/a, concurrency: 3}}
  - {{name: b, path: repos/b, tags: [mid]}}
  - {{name: c, path: repos/c, tags: [last]}}
coordination:
  plans:
    - id: {PLAN}
      title: waves
      status: active
      waves:
        - {{name: canary, repos: [a], max_parallel: 2, soak: {SOAK}s}}
        - {{name: middle, tags: [mid], soak: {SOAK}s, require: {{success_rate: 1.0}}}}
        - {{name: rest, tags: [last]}}
  todos:
{todos}    - {{id: TODO-004, task: b, repo: b, plan: {PLAN}, run: "echo broken >&2; exit 3"}}
    - {{id: TODO-005, task: c, repo: c, plan: {PLAN}, run: "touch ran"}}
""")
    return c.eco


def wave_events(c: Cluster, sid: str) -> list[dict[str, Any]]:
    return [e for e in c.events(sid) if e["kind"].startswith("wave.")]


def test_three_waves_the_second_fails_and_halts(cluster: Cluster) -> None:
    c = cluster
    waves_catalog(c)
    c.start_workers(["a", "b", "c"])
    sid = c.start_sweep()

    def paused() -> dict[str, Any] | None:
        rec = c.rt.checkpoints.get_sweep(sid) or {}
        assert rec.get("status") not in ("succeeded", "failed", "cancelled"), rec
        return rec if rec.get("status") == "paused" else None

    rec = wait_until(paused, 45, f"sweep {sid} to halt", interval=0.1)
    assert "wave middle missed its criteria: 0 of 1 succeeded (0%), needs 100%" in rec["reason"]
    evs = wave_events(c, sid)
    assert [(e["kind"], e["wave"]) for e in evs] == [
        ("wave.started", "canary"), ("wave.soaking", "canary"), ("wave.done", "canary"),
        ("wave.started", "middle"), ("wave.halted", "middle")], evs
    assert evs[-1]["action"] == "pause"

    # The canary wave: every todo ended before the middle one started, never more
    # than its max_parallel (2) at once though its repo runs 3; the soak was kept.
    spans = intervals({t: c.repo_dir("a") for t in ("TODO-001", "TODO-002", "TODO-003")})
    assert max_overlap(spans.values()) == 2, spans
    soaking, started_middle = evs[1], evs[3]
    assert started_middle["ts"] >= soaking["until"] >= max(e for _, e in spans.values()) + SOAK - 0.05
    st = c.status(sid)
    assert st["todos"]["TODO-004"]["status"] == "failed"
    assert st["todos"]["TODO-005"]["status"] == "pending"  # the third wave never started
    assert not (c.repo_dir("c") / "ran").exists()
    assert [(w["name"], w["state"]) for w in st["waves"]] == [
        ("canary", "done"), ("middle", "halted"), ("rest", "pending")]

    shown = c.cli("sweep", "status", sid)
    assert "wave middle: halted" in shown.stdout and "wave rest: pending" in shown.stdout, shown

    # Unpausing accepts the halted wave: the last one starts, and the sweep ends.
    assert c.cli("sweep", "unpause", sid).returncode == 0
    st = c.wait_sweep(sid, 30)
    assert st["status"] == "failed" and st["todos"]["TODO-005"]["status"] == "succeeded", st
    tail = [(e["kind"], e["wave"]) for e in wave_events(c, sid)][5:]
    assert tail == [("wave.done", "middle"), ("wave.started", "rest"), ("wave.done", "rest")]
    assert [e for e in wave_events(c, sid) if e["kind"] == "wave.done"][1]["accepted"] is True


def test_an_atomic_sweep_whose_wave_misses_rolls_back(cluster: Cluster) -> None:
    c = cluster
    waves_catalog(c)
    c.start_workers(["a", "b", "c"])
    sid = str(c.cli_json("plan", "sweep", PLAN, "--atomic")["sweep_id"])

    def ended() -> dict[str, Any] | None:
        rec = c.rt.checkpoints.get_sweep(sid) or {}
        assert rec.get("status") != "paused", rec
        return rec if (rec.get("status") in ("rolled_back", "rollback_failed", "failed")
                       and c.ended(sid, rec)) else None

    rec = wait_until(ended, 45, f"sweep {sid} to roll back", interval=0.1)
    assert rec["status"] == "rolled_back", rec
    assert "wave middle missed its criteria" in rec["reason"], rec
    st = c.status(sid)
    assert {t: st["todos"][t]["status"] for t in ("TODO-001", "TODO-002", "TODO-003")} == {
        "TODO-001": "compensated", "TODO-002": "compensated", "TODO-003": "compensated"}
    assert st["todos"]["TODO-005"]["status"] == "cancelled"
    assert [e["action"] for e in wave_events(c, sid) if e["kind"] == "wave.halted"] == ["rollback"]
