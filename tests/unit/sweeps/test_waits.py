"""Waits you can see and that end (coordination.sweeps.waits): the wait-for graph read
back from Redis, a holder that is gone freed by the supervision pass, and the cycle
detector.

Todos take slots through the start script as workers do (no workers needed). A real
cycle among slot waits cannot be made: grants are all-or-none, so a waiting todo holds
no slot and nothing can wait on it. The detector and the breaking of a cycle are
therefore tested on a constructed wait-for graph."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from coordination.runtime.context import Runtime
from coordination.runtime.workers import WorkerRecord
from coordination.sweeps import waits
from coordination.sweeps.waits import WaitEdge, supervise_waits, wait_cycles, wait_graph, youngest
from coordination.runtime.transitions import start_token
from coordination.sweeps.spec import SweepSpec
from tests.unit.support.fleet import ask, fleet_catalog, queued_spec


def start(rt: Runtime, spec: SweepSpec, tid: str, now: float) -> str:
    """``tid`` started as a worker starts it (a token naming its sweep and todo)."""
    token = start_token(rt.keys, spec.sweep_id, tid)
    assert ask(rt, spec, tid, now=now, token=token).verdict == "started"
    return token

pytestmark = pytest.mark.timeout(60)


def _edge(waiter: str, holder: str, since: float) -> WaitEdge:
    return {"sweep_id": "S", "todo_id": waiter, "waiting_for": "repo:x", "waiting_since": since,
            "holders": [{"sweep_id": "S", "todo_id": holder, "worker": "w", "gone": False}]}


def test_the_graph_names_the_waiter_and_its_holder(rt: Runtime, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cat = fleet_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true", "resources": ["db"]},
        {"id": "TODO-002", "repo": "web", "run": "true", "resources": ["db"]},
    ], resources=[{"name": "db", "capacity": 1}])
    spec = queued_spec(rt, cat)
    now = time.time()
    token = start(rt, spec, "TODO-001", now)
    assert ask(rt, spec, "TODO-002", now=now, since=now - 1).verdict == "wait"
    graph, _ = wait_graph(rt, {"api": 1, "web": 1}, {"db": 1})
    (edge,) = graph["edges"]
    assert (edge["todo_id"], edge["waiting_for"]) == ("TODO-002", "resource:db")
    assert [(h["sweep_id"], h["todo_id"], h["worker"]) for h in edge["holders"]] == [
        (spec.sweep_id, "TODO-001", "w")]
    assert graph["cycles"] == []

    from coordination.cli.main import cli

    monkeypatch.setattr("coordination.cli.resources.get_runtime", lambda *_a, **_k: rt)
    res = CliRunner().invoke(cli, ["--file", str(cat), "resources", "--graph", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["edges"][0]["holders"][0]["todo_id"] == "TODO-001"
    res = CliRunner().invoke(cli, ["--file", str(cat), "resources", "--graph"])
    assert res.exit_code == 0, res.output
    assert "TODO-002" in res.output and "TODO-001" in res.output and "resource:db" in res.output


def test_a_gone_holder_someone_waits_on_is_freed_and_its_run_sent_again(
        rt: Runtime, tmp_path: Path) -> None:
    cat = fleet_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "api", "run": "true"},
    ])
    spec = queued_spec(rt, cat)
    now = time.time()
    token = start(rt, spec, "TODO-001", now)
    assert ask(rt, spec, "TODO-002", now=now, since=now - 1).verdict == "wait"
    # Its worker "w" beats: alive, so nothing is broken.
    rt.workers.beat(WorkerRecord(name="w", host="h", pid=1, repos=["api"], beat=5.0))
    assert supervise_waits(rt, period=0.001) == {"broken": [], "failed": []}
    assert rt.leases.holders("api", 1) == [token]
    # Its liveness record gone while its lease is renewed (a writer deleted the record,
    # or a beat is late): not gone, nothing broken (#59: it would run twice at once).
    rt.workers.leave("w")
    assert supervise_waits(rt, period=0.001) == {"broken": [], "failed": []}
    assert rt.leases.holders("api", 1) == [token]
    # Its worker died (a SIGKILL): no record, and its lease two beats unrenewed (its
    # TTL left says so): the waited-on slot is freed at once, not when the lease ends.
    rt.redis.pexpire(rt.keys.lease("api", 0), int(rt.settings.heartbeat_interval * 1000) // 2)
    time.sleep(0.01)
    done = supervise_waits(rt, period=0.001)
    assert done["broken"] == [f"{spec.sweep_id}/TODO-001"]
    assert rt.leases.holders("api", 1) == [None]
    cp = rt.checkpoints.get(spec.sweep_id, "TODO-001") or {}
    assert cp.get("status") == "queued" and cp.get("lost_runs") == 1
    lost = [e for e in rt.events.read(sweep_id=spec.sweep_id) if e.kind == "todo.lost"]
    assert lost and "worker w is gone" in str(lost[-1].data["reason"])
    assert "TODO-002" in str(lost[-1].data["reason"])
    # The waiter starts at its next ask.
    assert ask(rt, spec, "TODO-002", now=time.time(), since=now - 1).verdict == "started"


def test_nobody_waiting_leaves_a_silent_holder_to_its_lease(rt: Runtime, tmp_path: Path) -> None:
    cat = fleet_catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": "true"}])
    spec = queued_spec(rt, cat)
    token = start(rt, spec, "TODO-001", time.time())
    assert supervise_waits(rt, period=0.001)["broken"] == []
    assert rt.leases.holders("api", 1) == [token]


def test_the_detector_names_a_cycle_on_a_constructed_graph() -> None:
    # (impossible through the start script: a waiter holds nothing; see the module docs)
    edges = [_edge("TODO-001", "TODO-002", 10.0), _edge("TODO-002", "TODO-003", 30.0),
             _edge("TODO-003", "TODO-001", 20.0), _edge("TODO-009", "TODO-001", 40.0)]
    (cycle,) = wait_cycles(edges)
    assert cycle[0] == cycle[-1] and set(cycle) == {"S/TODO-001", "S/TODO-002", "S/TODO-003"}
    assert youngest(cycle, edges) == "S/TODO-002"  # the last of the three to start waiting
    assert wait_cycles(edges[:2]) == []


def test_the_pass_fails_the_youngest_waiter_of_a_cycle_naming_it(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cat = fleet_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "true"},
    ])
    spec = queued_spec(rt, cat)
    sid = spec.sweep_id
    edges = [_edge("TODO-001", "TODO-002", 10.0), _edge("TODO-002", "TODO-001", 20.0)]
    for e in edges:
        e["sweep_id"] = sid
        e["holders"][0]["sweep_id"] = sid
    monkeypatch.setattr(rt.leases, "waited", lambda *_a: (["api", "web"], []))
    monkeypatch.setattr(waits, "wait_graph", lambda *_a: (
        {"edges": edges, "cycles": wait_cycles(edges)}, {}))
    done = supervise_waits(rt, period=0.001)
    assert done["failed"] == [f"{sid}/TODO-002"]
    cp = rt.checkpoints.get(sid, "TODO-002") or {}
    assert cp.get("status") == "failed"
    assert f"{sid}/TODO-001 -> {sid}/TODO-002 -> {sid}/TODO-001" in str(cp.get("reason"))
    assert (rt.checkpoints.get(sid, "TODO-001") or {}).get("status") == "queued"


def test_a_resume_keeps_the_sweeps_wait_timeout(rt: Runtime, tmp_path: Path) -> None:
    from coordination.sweeps import SweepService
    from coordination.sweeps.spec_store import load_spec

    cat = fleet_catalog(tmp_path, [{"id": "TODO-001", "repo": "api", "run": "true",
                                    "wait_timeout": "10m"},
                                   {"id": "TODO-002", "repo": "api", "run": "true"}])
    svc = SweepService(rt, cat)
    spec = svc.plan_spec("PLAN-001", strategy="levels", ignore_blockers=True)
    assert spec.todos["TODO-001"].wait_timeout == 600.0
    spec.wait_timeout = 7.0  # `plan sweep --wait-timeout 7`
    sid = svc.start_spec(spec, "PLAN-001-wt")
    stored = load_spec(rt, sid)
    assert stored is not None and stored.wait_timeout == 7.0
    assert stored.wait_timeout_of("TODO-001") == 600.0 and stored.wait_timeout_of("TODO-002") == 7.0
    svc.cancel(sid)
    svc.resume(sid)
    again = load_spec(rt, sid)
    assert again is not None and again.run == 1 and again.wait_timeout == 7.0
