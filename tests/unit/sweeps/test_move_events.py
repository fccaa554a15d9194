"""A sweep's moves write the events that tell of them in the same step as the move.

Each test lets the process that moves a sweep die where it would have said so after
its write (:meth:`EventLog.emit` of that event raising, as a process killed there
would stop): the move is made, and its event is there all the same, once. Written
after the move, it was lost for good (nothing says it again).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coordination.runtime.context import Runtime
from coordination.runtime.events import EventLog
from coordination.status import EventKind
from coordination.sweeps import SweepService
from tests.unit.support.sweeps import PLAN, repos_of, with_plan, write_catalog
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(60)

#: The events a sweep's moves say (a pause, an unpause, an end, a resume, a rollback).
MOVES = {EventKind.sweep_paused, EventKind.sweep_unpaused, EventKind.sweep_finished,
         EventKind.sweep_queued, EventKind.sweep_rolling_back, EventKind.wave_halted}


class Died(Exception):
    """The process stopped where it would have written the event itself."""


def dying_before_saying_a_move(monkeypatch: pytest.MonkeyPatch) -> None:
    emit = EventLog.emit

    def dies(self: EventLog, kind: str, **kw: Any) -> str:
        if kind in MOVES and (kind != EventKind.sweep_queued or kw.get("resumed")):
            raise Died(kind)
        return emit(self, kind, **kw)

    monkeypatch.setattr(EventLog, "emit", dies)


def said(rt: Runtime, sid: str, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in rt.events.read(sweep_id=sid) if e.kind == kind]


def moved(step: Any) -> None:
    """Run one move; a process dying after its write is what is tried here."""
    try:
        step()
    except Died:
        pass


def test_a_start_says_so_however_soon_its_process_dies(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its ``sweep.queued`` is written with its record: a starter dying right after
    (where it used to say it) leaves it said, once (the passes carry the sweep on)."""
    from coordination.sweeps import steering

    svc = SweepService(rt, write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"}]))

    def dies(*_: Any, **__: Any) -> None:
        raise Died("right after the record")

    monkeypatch.setattr(steering, "note_change", dies)  # (the step after the record)
    with pytest.raises(Died):
        svc.start(PLAN)
    [sweep] = rt.checkpoints.list_sweeps()
    assert sweep["status"] == "queued"
    assert [(e["plan"], e["todos"], e["levels"]) for e in
            said(rt, str(sweep["id"]), EventKind.sweep_queued)] == [(PLAN, 1, 1)]


def test_a_pause_and_an_unpause_say_so_however_soon_their_process_dies(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = SweepService(rt, write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"}]))
    sid = svc.start(PLAN)  # (no worker: it stays queued)
    dying_before_saying_a_move(monkeypatch)
    monkeypatch.setenv("COORD_USER", "ana")
    moved(lambda: svc.pause(sid))
    assert svc.status(sid)["status"] == "paused"
    assert [(e["was"], e["by"]) for e in said(rt, sid, EventKind.sweep_paused)] == [
        ("queued", "ana")]
    monkeypatch.setenv("COORD_USER", "bo")
    moved(lambda: svc.unpause(sid))
    assert svc.status(sid)["status"] == "queued"
    assert [e["by"] for e in said(rt, sid, EventKind.sweep_unpaused)] == ["bo"]


def test_an_end_a_resume_and_a_rollback_say_so_however_soon_their_process_dies(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.embedded import embedded_workers

    svc = SweepService(rt, write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true", "undo": "true"},
        {"id": "TODO-002", "repo": "api", "run": "exit 3", "blocked_by": ["TODO-001"]}]))
    dying_before_saying_a_move(monkeypatch)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, strategy="levels", ignore_blockers=True)
        wait_for(lambda: said(rt, sid, EventKind.sweep_finished), 30, "the sweep's end said")
        assert svc.status(sid)["status"] == "failed"
        moved(lambda: svc.resume(sid))
        assert [e["run"] for e in said(rt, sid, EventKind.sweep_queued) if e.get("resumed")] \
            == [1]
        wait_for(lambda: len(said(rt, sid, EventKind.sweep_finished)) == 2, 30,
                 "the resumed run's end said")
        moved(lambda: svc.rollback(sid))
        assert [e["compensate"] for e in said(rt, sid, EventKind.sweep_rolling_back)] == [1]
        wait_for(lambda: len(said(rt, sid, EventKind.sweep_finished)) == 3, 30,
                 "the rollback's end said")
    assert [e["status"] for e in said(rt, sid, EventKind.sweep_finished)] == [
        "failed", "failed", "rolled_back"]


def test_a_halted_waves_pause_and_its_unpause_say_so_in_order(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The halt says so with the wave's write (``wave.halted``), and pauses the sweep
    (``sweep.paused``, naming the wave); the unpause that accepts the halt says the
    wave done, then itself, with its one write."""
    from workers.embedded import embedded_workers

    cat = with_plan(write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "exit 3"},
        {"id": "TODO-002", "repo": "web", "run": "true"},
    ], repos=("api", "web")), waves=[
        {"name": "api", "repos": ["api"], "require": {"success_rate": 1.0}},
        {"name": "web", "repos": ["web"]}])
    svc = SweepService(rt, cat)
    dying_before_saying_a_move(monkeypatch)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN)
        wait_for(lambda: svc.status(sid)["status"] == "paused", 30, "the halt's pause")
        assert [(e["wave"], e["action"]) for e in said(rt, sid, EventKind.wave_halted)] == [
            ("api", "pause")]
        assert [e.get("wave") for e in said(rt, sid, EventKind.sweep_paused)] == ["api"]
        moved(lambda: svc.unpause(sid))
        kinds = [(e.kind, e.data.get("wave")) for e in rt.events.read(sweep_id=sid)]
        at = kinds.index((EventKind.wave_done, "api"))
        assert kinds[at + 1] == (EventKind.sweep_unpaused, None), kinds
        st = svc.wait(sid, timeout=30)
    assert st["todos"]["TODO-002"]["status"] == "succeeded", st


def dying_before_saying_its_end(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The first ender stops right after its move (where it keeps the run and says its
    end); every later call (a pass's) runs. Returns the sweeps whose ender died."""
    from coordination.sweeps import recording

    real = recording.ended
    died: list[str] = []

    def ended(rt: Runtime, sweep_id: str, run: int) -> bool:
        if not died:
            died.append(sweep_id)
            raise Died("right after the move that ended it")
        return real(rt, sweep_id, run)

    monkeypatch.setattr(recording, "ended", ended)
    return died


@pytest.mark.rt(settings={"supervise_interval": 0.001})  # (a pass's turn: ~1 ms)
@pytest.mark.parametrize("how", ["cancelled", "finished"])
def test_an_end_whose_process_died_after_its_move_is_said_by_a_pass_once(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """The end event goes into the record with the move; whoever takes the sweep off the
    active ones says it. Its ender dead first, the sweep stays listed; a pass leaves it
    to its ender for a grace, then says it (after the cancels' ``level.done``), keeps the
    run in the history and takes it off; nothing says it again. (Written after the move
    by the ender, it was lost for good, and the run never reached the history.)"""
    from coordination.history.search import search
    from coordination.sweeps import recording
    from coordination.sweeps.supervision import supervise_once

    todos: list[dict[str, Any]] = [{"id": "TODO-001", "repo": "api", "run": "true"},
                                   {"id": "TODO-002", "repo": "api", "run": "true",
                                    "blocked_by": ["TODO-001"]}]
    if how == "finished":  # every todo completed: its start ends it at once (succeeded)
        todos = [{**t, "status": "completed"} for t in todos]
    svc = SweepService(rt, write_catalog(tmp_path / "eco", todos))
    died = dying_before_saying_its_end(monkeypatch)
    if how == "cancelled":
        sid = svc.start(PLAN)  # (no worker: it stays queued)
        moved(lambda: svc.cancel(sid))
    else:
        moved(lambda: svc.start(PLAN))
        sid = str(rt.checkpoints.list_sweeps(limit=1)[0]["id"])
    kind = EventKind.sweep_cancelled if how == "cancelled" else EventKind.sweep_finished
    status = "cancelled" if how == "cancelled" else "succeeded"

    def a_pass(grace: float) -> None:
        wait_for(lambda: supervise_once(rt, sid, grace=grace), 5, "a pass's turn")

    assert died == [sid] and svc.status(sid)["status"] == status
    assert not said(rt, sid, kind) and sid in rt.checkpoints.active_sweeps()
    a_pass(60)  # within its grace: its ender may be at it still
    assert not said(rt, sid, kind) and sid in rt.checkpoints.active_sweeps()
    a_pass(0)
    assert [e["status"] for e in said(rt, sid, kind)] == [status]
    assert sid not in rt.checkpoints.active_sweeps()
    kinds = [e.kind for e in rt.events.read(sweep_id=sid)]
    assert kinds[-1] == kind, kinds  # (after every level.done of the cancels)
    assert [(r["sweep_id"], r["status"]) for r in search(rt.history(), "", kind="sweep")] \
        == [(sid, status)]
    a_pass(0)
    assert recording.ended(rt, sid, 0) is False  # the ender, late: nothing said again
    assert len(said(rt, sid, kind)) == 1
    assert len(search(rt.history(), "", kind="sweep")) == 1


@pytest.mark.parametrize("then", ["resume", "rollback"])
def test_a_run_whose_end_was_not_said_is_said_before_the_next_run_moves_on(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, then: str) -> None:
    """Its ender dead after its move and no pass by yet, a resume or a rollback moves the
    sweep on from that run: it says that run's end (and records the run) first, which
    nothing would say after it."""
    from coordination.history.search import search

    svc = SweepService(rt, write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true", "undo": "true"}]))
    died = dying_before_saying_its_end(monkeypatch)
    sid = svc.start(PLAN)  # (no worker: it stays queued)
    moved(lambda: svc.cancel(sid))
    assert died == [sid] and not said(rt, sid, EventKind.sweep_cancelled)
    if then == "resume":
        svc.resume(sid)
    else:
        svc.rollback(sid)
    kinds = [e.kind for e in rt.events.read(sweep_id=sid)]
    nxt = EventKind.sweep_queued if then == "resume" else EventKind.sweep_rolling_back
    assert kinds.count(EventKind.sweep_cancelled) == 1, kinds
    assert kinds.index(EventKind.sweep_cancelled) < len(kinds) - 1 - kinds[::-1].index(nxt)
    assert [(r["run"], r["status"]) for r in search(rt.history(), "", kind="sweep")][-1] \
        == (0, "cancelled")


def test_an_ender_slower_than_a_resume_keeps_nothing_of_the_next_run(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A resume lands between a cancel's move and its keeping the run: the resume says
    and records the cancelled run first; the ender, late, neither records the resumed
    run as ended (its rows are the next run's) nor gives the live sweep an expiry, nor
    says anything again."""
    from coordination.history.search import search
    from coordination.sweeps import recording

    svc = SweepService(rt, write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"}]))
    sid = svc.start(PLAN)  # (no worker: it stays queued)
    real = recording.ended
    late: list[bool] = []

    def ended(rt_: Runtime, sweep_id: str, run: int) -> bool:
        if not late:  # the ender, held right after its move while a resume lands
            late.append(True)
            svc.resume(sid)
        return real(rt_, sweep_id, run)

    monkeypatch.setattr(recording, "ended", ended)
    svc.cancel(sid)
    assert late and svc.status(sid)["status"] == "queued"
    assert [(r["run"], r["status"]) for r in search(rt.history(), "", kind="sweep")] == [
        (0, "cancelled")]
    assert rt.checkpoints.r.ttl(rt.keys.sweep(sid)) == -1  # kept, no expiry: it runs
    kinds = [e.kind for e in rt.events.read(sweep_id=sid)]
    assert kinds.count(EventKind.sweep_cancelled) == 1
    assert kinds.index(EventKind.sweep_cancelled) < kinds.index(EventKind.sweep_queued, 1)
    assert sid in rt.checkpoints.active_sweeps()


def test_an_expired_gate_says_so_however_soon_its_process_dies(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``gate.expired`` (a default webhook event) is written by the script that ends
    the gate: an expirer dying right after that ending (where it used to say it)
    leaves it said, once, after the gate's ``todo.cancelled``; a second expirer ends
    nothing and says nothing again."""
    from coordination.sweeps.governance import approvals
    from coordination.sweeps.progress import Pass
    from coordination.sweeps.spec_store import load_spec

    svc = SweepService(rt, write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "gate": {"approvals": 1, "expires": "1h"}},
        {"id": "TODO-002", "repo": "api", "run": "true", "blocked_by": ["TODO-001"]}]))
    sid = svc.start(PLAN)
    assert svc.status(sid)["todos"]["TODO-001"]["status"] == "awaiting_approval"
    spec = load_spec(rt, sid)
    assert spec is not None
    end = Pass.end

    def ends_then_dies(self: Pass, *a: Any, **kw: Any) -> list[str]:
        end(self, *a, **kw)
        raise Died("right after the gate's ending")

    monkeypatch.setattr(Pass, "end", ends_then_dies)
    with pytest.raises(Died):
        approvals.expire(rt, spec, "TODO-001", 0.0)
    monkeypatch.setattr(Pass, "end", end)
    assert svc.status(sid)["todos"]["TODO-001"]["status"] == "cancelled"
    kinds = [(e.kind, e.todo_id) for e in rt.events.read(sweep_id=sid)
             if e.kind in (EventKind.todo_cancelled, EventKind.gate_expired)]
    assert kinds == [(EventKind.todo_cancelled, "TODO-001"),
                     (EventKind.gate_expired, "TODO-001")]
    [ev] = said(rt, sid, EventKind.gate_expired)
    assert ev["on_expiry"] == "cancel"
    assert ev["reason"].startswith("gate TODO-001 expired with 0 of 1 approvals")
    assert approvals.expire(rt, spec, "TODO-001", 0.0) is False  # (another expirer)
    assert len(said(rt, sid, EventKind.gate_expired)) == 1


def test_a_sweep_whose_end_is_not_said_yet_is_not_over_for_its_followers(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the web view's event stream and ``coord events --follow`` go by: a sweep is
    over once it ended and its end is said. Ended with its end still to come (stored in
    its record until the step that takes it off the active ones says it), a follower
    that stopped at its status ended without its ``sweep.cancelled``/``sweep.finished``
    (the web view's stream test caught it: its stream ended with no ``sweep.finished``)."""
    from coordination.sweeps import over, recording

    svc = SweepService(rt, write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"}]))
    sid = svc.start(PLAN)  # (no worker: it stays queued)
    assert not over(rt, sid)  # live
    died = dying_before_saying_its_end(monkeypatch)
    moved(lambda: svc.cancel(sid))
    assert died == [sid] and svc.status(sid)["status"] == "cancelled"
    assert not said(rt, sid, EventKind.sweep_cancelled)
    assert not over(rt, sid)  # ended, its end still to come
    recording.end_unsaid(rt, sid)
    assert [e["status"] for e in said(rt, sid, EventKind.sweep_cancelled)] == ["cancelled"]
    assert over(rt, sid)
    assert over(rt, "no-such-sweep")


def test_a_running_todo_whose_worker_is_gone_is_said_cancelled_with_its_sweep(
        rt: Runtime, tmp_path: Path) -> None:
    """A cancel that finds a running todo's worker gone ends it ``cancelled`` itself (no
    worker is left to say so): its ``todo.cancelled`` is written in that step, as every
    other ending's event (it ended with no event at all: a follower saw it running to
    the end, and a webhook of it never came)."""
    svc = SweepService(rt, write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"}]))
    sid = svc.start(PLAN, ignore_blockers=True)  # no worker: it stays queued
    # it ran on a worker that died: running, under a lease no one holds any more
    rt.checkpoints.set_fields(sid, "TODO-001", status="running", token="t-1",
                              lease_key=rt.keys.lease("api", 0))
    out = svc.cancel(sid, wait=5)
    assert out["cancelled"] and out["still_running"] == []
    assert rt.checkpoints.get(sid, "TODO-001")["status"] == "cancelled"
    assert said(rt, sid, "todo.cancelled") == [
        {"reason": "cancelled; its worker was gone", "exit_code": None}]


def test_a_level_whose_ender_died_before_saying_it_is_said_by_a_pass_once(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker that ends a level's last todo says ``level.done`` after the script that
    ended it; one that dies in between left it unsaid for good. The next full
    supervision pass finds the level ended and not said, and says it, once: a second
    pass, and the late ender itself, say nothing more."""
    import time

    from coordination.runtime.checkpoints import CheckpointStore
    from coordination.status import TodoStatus
    from coordination.sweeps.progress import finish_run, say_level
    from coordination.sweeps.spec_store import load_spec
    from coordination.sweeps.supervision import supervise_once
    from tests.unit.support.sweeps import run_as_worker, unlock

    svc = SweepService(rt, write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]}]))
    sid = svc.start(PLAN, ignore_blockers=True)  # no worker: each todo is run here
    spec = load_spec(rt, sid)
    assert spec is not None
    lease = run_as_worker(rt, sid, "TODO-001", "api")
    emit = EventLog.emit

    def dies(self: EventLog, kind: str, **kw: Any) -> str:
        if kind == EventKind.level_done:
            raise Died(kind)
        return emit(self, kind, **kw)

    def dies_saying(*_: object, **__: object) -> bool:
        raise Died("level.done")

    monkeypatch.setattr(EventLog, "emit", dies)  # where it was said after the script
    monkeypatch.setattr(CheckpointStore, "say_level", dies_saying)
    moved(lambda: finish_run(rt, spec, "TODO-001", lease=lease, status=TodoStatus.succeeded,
                             fields={"exit_code": 0}, event={"exit_code": 0}, level=0,
                             patience=time.monotonic() + 5))
    monkeypatch.undo()
    assert rt.checkpoints.get(sid, "TODO-001")["status"] == "succeeded"
    assert said(rt, sid, EventKind.level_done) == []
    unlock(rt, sid)
    supervise_once(rt, sid, grace=0.0)  # a full pass: the level ended, not said
    assert said(rt, sid, EventKind.level_done) == [{"level": 0, "succeeded": 1, "todos": 1}]
    unlock(rt, sid)
    supervise_once(rt, sid, grace=0.0)
    assert not say_level(rt, spec, 0, 1)  # the late ender: said already
    assert len(said(rt, sid, EventKind.level_done)) == 1


def test_a_run_recorded_before_the_marks_says_its_levels_as_before(
        rt: Runtime, tmp_path: Path) -> None:
    """A run whose record has no ``level_said:`` marks (recorded by a coord before 0.6,
    carried on by this one) says each level once, by its ender, as before; no pass says
    it again (nothing tells it was said)."""
    import time

    from coordination.status import TodoStatus
    from coordination.sweeps.progress import finish_run
    from coordination.sweeps.spec_store import load_spec
    from coordination.sweeps.supervision import supervise_once
    from tests.unit.support.sweeps import run_as_worker, unlock

    svc = SweepService(rt, write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]}]))
    sid = svc.start(PLAN, ignore_blockers=True)
    rt.redis.hdel(rt.keys.sweep(sid), "level_said:0", "level_said:1")  # a run of before
    spec = load_spec(rt, sid)
    assert spec is not None
    lease = run_as_worker(rt, sid, "TODO-001", "api")
    finish_run(rt, spec, "TODO-001", lease=lease, status=TodoStatus.succeeded,
               fields={"exit_code": 0}, event={"exit_code": 0}, level=0,
               patience=time.monotonic() + 5)
    assert said(rt, sid, EventKind.level_done) == [{"level": 0, "succeeded": 1, "todos": 1}]
    unlock(rt, sid)
    supervise_once(rt, sid, grace=0.0)
    assert len(said(rt, sid, EventKind.level_done)) == 1
