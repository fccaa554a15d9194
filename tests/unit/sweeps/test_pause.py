"""Pausing a sweep: nothing new starts, running todos finish, the deadline waits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coordination.dispatch import CeleryDispatcher
from coordination.errors import UsageError
from coordination.runtime.context import Runtime
from coordination.sweeps.supervision import supervise_once
from coordination.sweeps import SweepService
from tests.unit.support.sweeps import PLAN, repos_of, write_catalog  # noqa: F401
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


def status(rt: Runtime, sid: str, tid: str) -> str:
    return str((rt.checkpoints.get(sid, tid) or {}).get("status"))


def kinds(rt: Runtime, sid: str) -> list[str]:
    return [e.kind for e in rt.events.read(sweep_id=sid)]


@pytest.mark.parametrize("strategy", ["levels", "eager"])
def test_pause_holds_dispatch_lets_running_finish_and_stops_the_deadline(
    rt: Runtime, tmp_path: Path, strategy: str
) -> None:
    from workers.embedded import embedded_workers

    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api",
         "run": "while [ ! -f go ]; do echo tick >> ticks; sleep 0.05; done"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
    ])
    go = tmp_path / "eco" / "repos" / "api" / "go"
    svc = SweepService(rt, cat)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, strategy=strategy, ignore_blockers=True)
        wait_for(lambda: status(rt, sid, "TODO-001") == "running", 30, "TODO-001 to run")
        assert svc.pause(sid)["changed"] is True
        assert svc.pause(sid)["changed"] is False  # idempotent
        assert svc.status(sid)["status"] == "paused"

        ticks = go.parent / "ticks"

        def ticked() -> int:
            return len(ticks.read_text().splitlines()) if ticks.exists() else 0

        n0 = ticked()  # still running well past the worker's cancel checks (every 0.5 s)
        wait_for(lambda: ticked() >= n0 + 20 or status(rt, sid, "TODO-001") != "running",
                 30, "TODO-001 to keep running while paused")
        assert status(rt, sid, "TODO-001") == "running"
        go.write_text("")  # the running todo finishes while paused, and is recorded
        wait_for(lambda: status(rt, sid, "TODO-001") == "succeeded", 30, "TODO-001 to finish")
        # Pretend it has been paused for 100 s, with 50 s of its budget left when
        # paused: its deadline passed while paused.
        now = time.time()
        rt.checkpoints.update_sweep(sid, paused_at=now - 100, deadline=now - 50)
        for _ in range(3):
            rt.redis.delete(rt.keys.supervisor_lock(sid))
            supervise_once(rt, sid, grace=0.0)
        assert status(rt, sid, "TODO-002") == "pending"  # nothing new started
        assert svc.status(sid)["status"] == "paused"  # and the deadline did not end it
        with pytest.raises(UsageError, match="still paused"):
            svc.resume(sid)

        out = svc.unpause(sid)
        assert out["changed"] is True and out["status"] == "running"
        assert out["paused_for"] >= 100
        assert float(svc.record(sid)["deadline"]) >= now + 49  # moved by the time paused
        st = svc.wait(sid, timeout=60)
    assert st["status"] == "succeeded"
    ks = kinds(rt, sid)
    assert ks.index("sweep.paused") < ks.index("sweep.unpaused") < ks.index("sweep.finished")


def test_a_paused_sweep_can_be_cancelled_and_only_live_sweeps_pause(
    rt: Runtime, tmp_path: Path
) -> None:
    from tests.unit.support.sweeps import StubApp

    rt.dispatcher = CeleryDispatcher(StubApp(), rt.keys)
    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    svc = SweepService(rt, cat)
    sid = svc.start(PLAN, ignore_blockers=True)
    svc.pause(sid)
    assert svc.cancel(sid, wait=0)["cancelled"] is True
    assert svc.status(sid)["status"] == "cancelled"
    with pytest.raises(UsageError, match="only a queued or running sweep"):
        svc.pause(sid)
    with pytest.raises(UsageError, match="not paused"):
        svc.unpause(sid)


def test_a_todo_delivered_while_paused_is_not_started_and_is_resent_on_unpause(
    rt: Runtime, tmp_path: Path
) -> None:
    from tests.unit.support.sweeps import StubApp
    from workers.runner import Outcome, WorkerInfo, run_todo

    rt.dispatcher = CeleryDispatcher(StubApp(), rt.keys)
    marker = tmp_path / "ran"
    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api",
                                            "run": f"touch {marker}"}])
    svc = SweepService(rt, cat)
    sid = svc.start(PLAN, ignore_blockers=True)
    svc.pause(sid)
    outcome, _ = run_todo(rt, sid, "TODO-001", WorkerInfo(repo=None, name="w"))
    assert outcome is Outcome.gone and not marker.exists()
    assert status(rt, sid, "TODO-001") == "queued"
    sent_before = len(rt.app.todos_sent())
    assert svc.unpause(sid)["resent"] == ["TODO-001"]
    assert rt.app.todos_sent()[sent_before:] == ["TODO-001"]
