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
         EventKind.sweep_queued, EventKind.sweep_rolling_back}


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
    """The halt pauses the sweep (``sweep.paused``, naming the wave); the unpause that
    accepts the halt says the wave done, then itself, with its one write."""
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
        assert [e.get("wave") for e in said(rt, sid, EventKind.sweep_paused)] == ["api"]
        moved(lambda: svc.unpause(sid))
        kinds = [(e.kind, e.data.get("wave")) for e in rt.events.read(sweep_id=sid)]
        at = kinds.index((EventKind.wave_done, "api"))
        assert kinds[at + 1] == (EventKind.sweep_unpaused, None), kinds
        st = svc.wait(sid, timeout=30)
    assert st["todos"]["TODO-002"]["status"] == "succeeded", st
