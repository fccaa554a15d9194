"""The supervisor pass on the embedded server, with no Celery worker.

The runtime's app is a stub that records every signature it is asked to send,
so each test sees exactly what the supervisor (or the sweep start) dispatched.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from coordination.dispatch import CeleryDispatcher
from coordination.runtime.context import Runtime
from coordination.sweeps.progress import finish_if_done as maybe_finish
from coordination.sweeps.supervision import supervise_once
from coordination.sweeps import SweepService
from tests.unit.support.sweeps import fresh_runtime
from tests.unit.support.sweeps import StubApp, chain_catalog, events, run_as_worker, start, status, unlock  # noqa: F401

pytestmark = [pytest.mark.timeout(120), pytest.mark.rt(stub=True)]


class NoSupervisorLock:
    """A client that always grants the per-sweep supervisor lock: lets passes race."""

    def __init__(self, r: Any) -> None:
        self._r = r

    def __getattr__(self, name: str) -> Any:
        return getattr(self._r, name)

    def set(self, key: str, *a: Any, **kw: Any) -> Any:
        if key.endswith(":supervisor"):
            return True
        return self._r.set(key, *a, **kw)


def age(rt: Runtime, sid: str, seconds: float) -> None:
    """Pretend the sweep was created ``seconds`` ago."""
    rt.checkpoints.update_sweep(sid, created_at=time.time() - seconds)


# -- dispatch at start -------------------------------------------------------------------
def test_start_sends_level_zero_only(rt: Runtime, tmp_path: Path) -> None:
    sid = start(rt, chain_catalog(tmp_path))
    assert sorted(rt.app.todos_sent()) == ["TODO-001", "TODO-004"]
    assert status(rt, sid, "TODO-001") == "queued" and status(rt, sid, "TODO-002") == "pending"
    assert rt.redis.sismember(rt.keys.active_sweeps, sid)


def test_eager_start_sends_roots_and_counts_preds(rt: Runtime, tmp_path: Path) -> None:
    sid = start(rt, chain_catalog(tmp_path), "eager")
    assert sorted(rt.app.todos_sent()) == ["TODO-001", "TODO-004"]
    ids = ["TODO-001", "TODO-002", "TODO-003", "TODO-004"]
    assert rt.redis.hmget(rt.keys.sweep(sid), [f"r:{t}" for t in ids]) == ["0", "1", "1", "0"]


# -- lost todos --------------------------------------------------------------------------
def test_expired_lease_requeues_and_resends_once(rt: Runtime, tmp_path: Path) -> None:
    sid = start(rt, chain_catalog(tmp_path))
    lease = run_as_worker(rt, sid, "TODO-001", "api")
    before = len(rt.app.todos_sent())
    supervise_once(rt, sid)  # lease alive: nothing to do
    assert status(rt, sid, "TODO-001") == "running" and len(rt.app.todos_sent()) == before

    rt.redis.delete(lease.key)  # the worker died: its lease expired
    unlock(rt, sid)
    supervise_once(rt, sid)
    cp = rt.checkpoints.get(sid, "TODO-001")
    assert cp["status"] == "queued" and cp.get("lost_at")
    assert rt.app.todos_sent()[before:] == ["TODO-001"]
    assert len(events(rt, sid, "todo.lost")) == 1
    assert len(events(rt, sid, "supervisor.redispatched")) == 1

    unlock(rt, sid)
    supervise_once(rt, sid)  # already queued again: not sent a second time
    assert rt.app.todos_sent()[before:] == ["TODO-001"]
    # The dead holder's late write is refused.
    assert not rt.checkpoints.write(sid, "TODO-001", {"status": "succeeded"}, lease=lease)


def test_racing_supervisors_resend_a_lost_todo_once(rt: Runtime, tmp_path: Path) -> None:
    sid = start(rt, chain_catalog(tmp_path))
    lease = run_as_worker(rt, sid, "TODO-001", "api")
    rt.redis.delete(lease.key)
    before = len(rt.app.todos_sent())
    # Eight supervisors (as many worker processes) past the per-sweep lock at once.
    racer = dataclasses.replace(rt, redis=NoSupervisorLock(rt.redis))
    go = threading.Barrier(8)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            go.wait()
            supervise_once(racer, sid)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert rt.app.todos_sent()[before:] == ["TODO-001"]
    assert len(events(rt, sid, "todo.lost")) == 1


def test_supervisor_lock_lets_one_pass_at_a_time(rt: Runtime, tmp_path: Path) -> None:
    sid = start(rt, chain_catalog(tmp_path))
    lease = run_as_worker(rt, sid, "TODO-001", "api")
    rt.redis.delete(lease.key)
    supervise_once(rt, sid)
    rt.checkpoints.set_fields(sid, "TODO-001", status="running", token="x", lease_key=lease.key)
    supervise_once(rt, sid)  # within the lock's life: this pass does nothing
    assert status(rt, sid, "TODO-001") == "running"


# -- never-dispatched todos ----------------------------------------------------------------
def test_pending_todo_whose_preds_succeeded_long_ago_is_dispatched(
    rt: Runtime, tmp_path: Path
) -> None:
    sid = start(rt, chain_catalog(tmp_path))
    now = time.time()
    rt.checkpoints.set_fields(sid, "TODO-001", status="succeeded", finished_at=now)
    before = len(rt.app.todos_sent())
    supervise_once(rt, sid, grace=30)  # just finished: the canvas gets its chance first
    assert status(rt, sid, "TODO-002") == "pending" and len(rt.app.todos_sent()) == before

    age(rt, sid, 100)
    rt.checkpoints.set_fields(sid, "TODO-001", finished_at=now - 60)
    unlock(rt, sid)
    supervise_once(rt, sid, grace=30)  # levels: TODO-004 (level 0) still runs, no barrier yet
    assert status(rt, sid, "TODO-002") == "pending" and len(rt.app.todos_sent()) == before

    rt.checkpoints.set_fields(sid, "TODO-004", status="succeeded", finished_at=now - 60)
    unlock(rt, sid)
    supervise_once(rt, sid, grace=30)  # a chord body that never fired
    assert status(rt, sid, "TODO-002") == "queued"
    assert rt.app.todos_sent()[before:] == ["TODO-002"]
    assert status(rt, sid, "TODO-003") == "pending"  # its pred has not succeeded
    queued = [e for e in events(rt, sid, "todo.queued") if e.todo_id == "TODO-002"]
    assert [e.data["via"] for e in queued] == ["supervisor"]
    unlock(rt, sid)
    supervise_once(rt, sid, grace=30)
    assert rt.app.todos_sent()[before:] == ["TODO-002"]  # once


def test_supervisor_skips_dependents_of_failed(rt: Runtime, tmp_path: Path) -> None:
    sid = start(rt, chain_catalog(tmp_path))
    rt.checkpoints.set_fields(sid, "TODO-001", status="failed", finished_at=time.time(),
                              exit_code=1)
    supervise_once(rt, sid)
    assert status(rt, sid, "TODO-002") == "skipped" and status(rt, sid, "TODO-003") == "skipped"
    assert status(rt, sid, "TODO-004") == "queued"  # independent: untouched
    assert (rt.checkpoints.get(sid, "TODO-003") or {})["reason"] == "TODO-001 failed"
    assert (rt.checkpoints.get_sweep(sid) or {})["status"] == "queued"  # TODO-004 still to run


# -- deadlines and finishing -------------------------------------------------------------
def test_sweep_past_its_deadline_fails_with_a_reason(rt: Runtime, tmp_path: Path) -> None:
    sid = start(rt, chain_catalog(tmp_path))
    rt.checkpoints.update_sweep(sid, deadline=time.time() - 1)
    supervise_once(rt, sid)
    rec = rt.checkpoints.get_sweep(sid) or {}
    assert rec["status"] == "failed" and "deadline" in rec["reason"]
    for tid in ("TODO-001", "TODO-002", "TODO-003", "TODO-004"):
        assert status(rt, sid, tid) == "cancelled"
    fin = events(rt, sid, "sweep.finished")
    assert len(fin) == 1 and fin[0].data["status"] == "failed"
    assert not rt.redis.sismember(rt.keys.active_sweeps, sid)


def test_maybe_finish_is_idempotent(rt: Runtime, tmp_path: Path) -> None:
    sid = start(rt, chain_catalog(tmp_path))
    assert maybe_finish(rt, sid) is None  # not everything is terminal
    for tid in ("TODO-001", "TODO-002", "TODO-003", "TODO-004"):
        rt.checkpoints.set_fields(sid, tid, status="succeeded", finished_at=time.time())
    results: list[str | None] = []
    go = threading.Barrier(8)

    def one() -> None:
        go.wait()
        results.append(maybe_finish(rt, sid, full=True))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 8 and results.count("succeeded") == 1 and results.count(None) == 7
    assert len(events(rt, sid, "sweep.finished")) == 1
    assert maybe_finish(rt, sid, full=True) is None
    rec = rt.checkpoints.get_sweep(sid) or {}
    assert rec["status"] == "succeeded" and rec["reason"] == "4 todos succeeded"
    assert not rt.redis.sismember(rt.keys.active_sweeps, sid)


def test_maybe_finish_names_failed_todos(rt: Runtime, tmp_path: Path) -> None:
    sid = start(rt, chain_catalog(tmp_path))
    rt.checkpoints.set_fields(sid, "TODO-001", status="failed", exit_code=7)
    rt.checkpoints.set_fields(sid, "TODO-002", status="skipped")
    rt.checkpoints.set_fields(sid, "TODO-003", status="skipped")
    rt.checkpoints.set_fields(sid, "TODO-004", status="succeeded")
    assert maybe_finish(rt, sid, full=True) == "failed"
    rec = rt.checkpoints.get_sweep(sid) or {}
    assert rec["reason"] == "TODO-001 failed (exit 7); 2 skipped"


def test_fast_finish_trusts_the_terminal_count_and_the_pass_checks_in_full(
    rt: Runtime, tmp_path: Path
) -> None:
    """After each todo only a counter is read; a count lost to a crash (here:
    statuses written behind its back) delays the end to the next full pass."""
    sid = start(rt, chain_catalog(tmp_path))
    for tid in ("TODO-001", "TODO-002", "TODO-003", "TODO-004"):
        rt.checkpoints.set_fields(sid, tid, status="succeeded", finished_at=time.time())
    assert maybe_finish(rt, sid) is None  # counter still says 0 of 4
    rt.redis.hincrby(rt.keys.sweep(sid), "terminal", 4)
    assert maybe_finish(rt, sid) == "succeeded"


def test_supervisor_pass_finishes_a_sweep_whose_count_was_lost(rt: Runtime, tmp_path: Path) -> None:
    sid = start(rt, chain_catalog(tmp_path))
    for tid in ("TODO-001", "TODO-002", "TODO-003", "TODO-004"):
        rt.checkpoints.set_fields(sid, tid, status="succeeded", finished_at=time.time())
    supervise_once(rt, sid)
    assert (rt.checkpoints.get_sweep(sid) or {})["status"] == "succeeded"


def test_finished_sweep_leaves_the_active_set(rt: Runtime, tmp_path: Path) -> None:
    sid = start(rt, chain_catalog(tmp_path))
    rt.checkpoints.set_sweep_status(sid, "cancelled")
    supervise_once(rt, sid)
    assert not rt.redis.sismember(rt.keys.active_sweeps, sid)


# -- waiting through Redis outages ---------------------------------------------------------
def _flaky(times: int, then: Any) -> Any:
    """A read that fails to reach Redis ``times`` times, then does ``then()``."""
    import redis

    calls = [0]

    def read(*_: Any, **__: Any) -> Any:
        calls[0] += 1
        if calls[0] <= times:
            raise redis.ConnectionError("Redis is restarting")
        return then()

    return read


def test_wait_rides_out_redis_away_at_its_first_read(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`plan sweep --wait` started the sweep, then Redis went away before the wait's
    first read: it waits for Redis instead of failing with "cannot reach Redis"."""
    sid = start(rt, chain_catalog(tmp_path))
    svc = SweepService(rt)
    real = svc.record
    monkeypatch.setattr(svc, "record", _flaky(2, lambda: real(sid)))
    rt.checkpoints.set_sweep_status(sid, "cancelled")  # over: the wait returns at once
    st = svc.wait(sid, timeout=30)
    assert st["status"] == "cancelled"


def test_a_sweep_gone_after_an_outage_has_vanished_not_unknown(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis came back empty (no persistence): the sweep this command started is
    gone. That is a runtime fault (exit 1, "vanished"), not bad input (exit 2)."""
    from coordination.errors import NotFoundError, RuntimeFault

    sid = start(rt, chain_catalog(tmp_path))
    svc = SweepService(rt)

    def gone() -> Any:
        raise NotFoundError(f"unknown sweep {sid!r}")

    monkeypatch.setattr(svc, "record", _flaky(2, gone))
    with pytest.raises(RuntimeFault, match="vanished from Redis"):
        svc.wait(sid, timeout=30)
    monkeypatch.setattr(svc, "record", _flaky(0, gone))  # no outage: the id is just unknown
    with pytest.raises(NotFoundError):
        svc.wait(sid, timeout=30)


def test_a_process_without_a_turn_looks_less_often_up_to_a_bound() -> None:
    from coordination.sweeps.supervision import IDLE_LOOKS, next_look

    assert next_look(4.0, 1, 1.0) == 1.0  # it has a turn: every interval, and keeps it
    wait, waits = 1.0, []
    for _ in range(8):
        wait = next_look(wait, 0, 1.0)
        waits.append(wait)
    assert 1.6 <= waits[0] <= 2.0 and 2.56 <= waits[1] <= 4.0  # twice as long each time
    assert all(IDLE_LOOKS * 0.8 <= w <= IDLE_LOOKS for w in waits[4:])  # up to the bound


def test_a_supervisor_without_the_turn_looks_less_often_and_takes_it_when_free(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A worker's supervisor thread, while another process holds the sweep's turn,
    looks less and less often; once the turn is free it takes it within IDLE_LOOKS
    intervals, and then looks every interval."""
    from coordination.connection.client import reset_embedded
    from coordination.runtime.context import get_runtime
    from coordination.sweeps.supervision import IDLE_LOOKS, SupervisorThread
    from tests.waiting import wait_for

    interval = 0.05
    monkeypatch.setenv("COORD_SUPERVISE_INTERVAL", str(interval))
    rt = fresh_runtime()
    try:
        rt.dispatcher = CeleryDispatcher(StubApp(), rt.keys)
        sid = start(rt, chain_catalog(tmp_path))
        rt.redis.set(rt.keys.supervisor_lock(sid), "1", px=600_000)  # another's turn
        looks: list[tuple[float, bool]] = []
        real = rt.checkpoints.take_supervise_turn

        def take(sweep_id: str, ms: int) -> bool:
            got = bool(real(sweep_id, ms))
            looks.append((time.monotonic(), got))
            return got

        monkeypatch.setattr(rt.checkpoints, "take_supervise_turn", take)
        sup = SupervisorThread(rt)
        sup.start()
        try:
            wait_for(lambda: len(looks) >= 6, timeout=30, what="six looks")
            times = [t for t, _got in looks[:6]]
            gaps = [b - a for a, b in zip(times, times[1:])]
            assert not any(got for _t, got in looks[:6])
            assert gaps[2] > 2.5 * interval and gaps[-1] > 0.7 * IDLE_LOOKS * interval, gaps
            assert max(gaps) < 3 * IDLE_LOOKS * interval, gaps  # (a bound, with slack)
            rt.redis.delete(rt.keys.supervisor_lock(sid))  # the holder went away
            freed = time.monotonic()
            wait_for(lambda: any(got for t, got in looks if t > freed), timeout=30,
                     what="the turn taken")
            took = next(t for t, got in looks if t > freed and got)
            assert took - freed < 3 * IDLE_LOOKS * interval
            n = len(looks)
            wait_for(lambda: len(looks) >= n + 4, timeout=30, what="four more looks")
            after = [t for t, _got in looks[n - 1:n + 4]]
            assert max(b - a for a, b in zip(after, after[1:])) < 2.5 * interval  # every interval
        finally:
            sup.stop()
    finally:
        reset_embedded()
        get_runtime.cache_clear()


@pytest.mark.rt(settings={"supervise_interval": 0.05})
def test_a_wait_that_reads_the_end_before_its_event_waits_for_the_event(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep's end writes its state (status and cancels, one step), then carries it on
    and writes its end event last. A wait that reads the status before the event (the
    ender held there until the wait has read it twice) waits for the event: its
    follower gets ``sweep.cancelled``, and the sweep it shows is whole."""
    from coordination.status import SweepStatus
    from coordination.sweeps.progress import end_sweep
    from tests.waiting import wait_for

    sid = start(rt, chain_catalog(tmp_path))
    svc = SweepService(rt)
    store = rt.checkpoints
    ended_reads = [0]
    real_status, real_deactivate = store.sweep_status, store.deactivate

    def sweep_status(sweep_id: str) -> Any:
        got = real_status(sweep_id)
        # counted only where the wait decides whether it is over (its stop())
        ended_reads[0] += got == "cancelled" and sys._getframe(1).f_code.co_name == "stop"
        return got

    def deactivate(sweep_id: str, *said: Any) -> bool:  # the ender, before its event
        try:
            if threading.current_thread() is ender:  # (the wait's own passes call it too)
                # a wait that stops at the first read of the end never makes a second
                wait_for(lambda: ended_reads[0] >= 2, 5, "the wait to read the end twice")
        finally:
            taken = real_deactivate(sweep_id, *said)
        return taken

    monkeypatch.setattr(store, "sweep_status", sweep_status)
    monkeypatch.setattr(store, "deactivate", deactivate)
    ender = threading.Thread(target=end_sweep, args=(rt, sid, "cancelled by a test"),
                             kwargs={"status": SweepStatus.cancelled}, daemon=True)
    ender.start()
    seen: list[str] = []
    try:
        st = svc.wait(sid, timeout=30, on_event=lambda ev: seen.append(str(ev.kind)))
    finally:
        ender.join(15)
    assert "sweep.cancelled" in seen, seen
    assert ended_reads[0] >= 2  # it did read the end before the event
    assert st["status"] == "cancelled"
    assert {t: v["status"] for t, v in st["todos"].items()} == {
        "TODO-001": "cancelled", "TODO-002": "cancelled", "TODO-003": "cancelled",
        "TODO-004": "cancelled"}, st["todos"]


def test_a_sweep_ended_is_never_read_with_a_todo_still_pending(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ending a sweep moves its status and cancels what had not started in one step:
    read after each of the ender's Redis commands, the sweep is live, or ended with no
    todo left to start; and a second ender, finding it ended, ends nothing."""
    from coordination.status import NOT_STARTED, SWEEP_LIVE, SweepStatus
    from coordination.sweeps.progress import end_sweep

    sid = start(rt, chain_catalog(tmp_path))
    todos = ["TODO-001", "TODO-002", "TODO-003", "TODO-004"]
    store = rt.checkpoints
    real: Any = rt.redis.execute_command
    reads: list[tuple[str, dict[str, str]]] = []
    reading = [False]

    def execute(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        if not reading[0]:
            reading[0] = True
            try:
                reads.append((str(store.sweep_status(sid)),
                              {t: str(cp.get("status")) for t, cp in store.get_all(sid, todos).items()}))
            finally:
                reading[0] = False
        return out

    monkeypatch.setattr(rt.redis, "execute_command", execute)
    assert end_sweep(rt, sid, "cancelled by a test", status=SweepStatus.cancelled)
    assert reads and reads[-1] == ("cancelled", dict.fromkeys(todos, "cancelled")), reads[-1:]
    torn = [r for r in reads if r[0] not in SWEEP_LIVE
            and any(s in NOT_STARTED for s in r[1].values())]
    assert not torn, torn[0]
    assert not end_sweep(rt, sid, "again", status=SweepStatus.failed)  # ended already: nothing moves
    assert store.sweep_status(sid) == "cancelled"
    assert len(events(rt, sid, "sweep.cancelled")) == 1


def test_a_sweep_move_refused_ends_none_of_its_todos(rt: Runtime, tmp_path: Path) -> None:
    """The ending script with the sweep's own move: a sweep not in one of the statuses
    it may move from is left as it is, and so are its todos."""
    from coordination.runtime.transitions import SweepMove
    from coordination.status import NOT_STARTED, SweepStatus, TodoStatus

    sid = start(rt, chain_catalog(tmp_path))
    todos = [("TODO-002", 1), ("TODO-003", 2)]
    move = SweepMove(SweepStatus.cancelled, frozenset({SweepStatus.paused}),
                     {"reason": "not paused"})
    got = rt.transitions.end(sid, todos, TodoStatus.cancelled, NOT_STARTED, event={}, sweep_to=move)
    assert not got.moved and got.todos == []
    assert rt.checkpoints.sweep_status(sid) == "queued"
    assert [status(rt, sid, t) for t, _ in todos] == ["pending", "pending"]
    move = SweepMove(SweepStatus.cancelled,
                     frozenset({SweepStatus.queued, SweepStatus.running}), {"reason": "now"})
    got = rt.transitions.end(sid, todos, TodoStatus.cancelled, NOT_STARTED, event={}, sweep_to=move)
    assert got.moved and got.todos == ["TODO-002", "TODO-003"]
    rec = rt.checkpoints.get_sweep_fields(sid, ("status", "reason")) or {}
    assert (rec.get("status"), rec.get("reason")) == ("cancelled", "now")


def test_redis_unreachable_in_a_pass_is_a_warning_and_any_other_error_a_traceback(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A failover's READONLY (or a refused connection) in a pass is an outage the next
    pass rides out: one warning line, not an ERROR with a traceback per sweep per pass
    (what a Sentinel failover wrote to every worker's log). A sweep's own error still is."""
    import logging

    import redis

    from coordination.sweeps import supervision

    monkeypatch.setattr(rt.checkpoints, "active_sweeps", lambda: ["S-1", "S-2"])
    readonly = "You can't write against a read only replica."
    failures = {"S-1": redis.exceptions.ReadOnlyError(readonly), "S-2": KeyError("todos")}

    def once(_rt: Runtime, sweep_id: str, throttle: bool = False) -> int:
        raise failures[sweep_id]

    def waits(_rt: Runtime) -> None:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(supervision, "supervise_once", once)
    monkeypatch.setattr(supervision, "supervise_waits", waits)
    with caplog.at_level(logging.WARNING, logger=supervision.log.name):
        assert supervision.supervise_all(rt) == 2
    said = [(r.levelno, r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert said == [
        (logging.WARNING, f"supervising sweep S-1 paused, Redis unreachable: {readonly}",
         False),
        (logging.ERROR, "supervising sweep S-2 failed", True),
        (logging.WARNING, "supervising the waits paused, Redis unreachable: "
                          "Error 111 connecting to 127.0.0.1:6379. Connection refused.", False),
    ], said
