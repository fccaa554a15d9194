"""``due:``: the supervision pass emits ``todo.overdue`` once per (sweep, todo) and
``plan.overdue`` once per sweep; a todo that succeeded before its due time is not late."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from coordination.sweeps.notices.overdue import note_overdue
from coordination.sweeps.spec_store import load_spec
from coordination.sweeps.supervision import supervise_once
from tests.unit.support.sweeps import PLAN, write_catalog

pytestmark = pytest.mark.timeout(60)


def catalog(tmp_path: Path, *, plan_due: str | None) -> Path:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true", "due": "2020-01-01T12:00Z"},
        {"id": "TODO-002", "repo": "web", "run": "true", "due": "2999-01-01"},
        {"id": "TODO-003", "repo": "jobs", "run": "true"},
        {"id": "TODO-004", "repo": "api", "run": "true", "due": "2020-06-01"},
    ])
    if plan_due is not None:
        doc = yaml.safe_load(cat.read_text())
        doc["coordination"]["plans"][0]["due"] = plan_due
        cat.write_text(yaml.safe_dump(doc, sort_keys=False))
    return cat


def overdue_events(rt: Runtime, sid: str) -> list[tuple[str, str | None]]:
    return [(e.kind, e.todo_id) for e in rt.events.read(sweep_id=sid)
            if e.kind in ("todo.overdue", "plan.overdue")]


def test_overdue_todos_and_plan_are_said_once(rt: Runtime, tmp_path: Path) -> None:
    svc = SweepService(rt, catalog(tmp_path, plan_due="2020-01-02T00:00:00+01:00"))
    sid = svc.start(PLAN, ignore_blockers=True)  # no worker: nothing ends
    # TODO-004 succeeded before its due time (2020-06-01, end of day UTC): not late
    rt.checkpoints.set_fields(sid, "TODO-004", status="succeeded",
                              finished_at=1590969600.0)  # 2020-06-01T00:00Z
    spec = load_spec(rt, sid, svc.record(sid))
    assert spec is not None
    assert spec.todos["TODO-001"].due == 1577880000.0  # 2020-01-01T12:00Z
    assert spec.todos["TODO-004"].due == 1591055999.0  # the end of that day, UTC
    assert spec.plan_due == 1577919600.0
    said = note_overdue(rt, sid, spec, 0, time.time())
    assert said == ["TODO-001", "@plan"]
    assert note_overdue(rt, sid, spec, 0, time.time()) == []  # once
    assert supervise_once(rt, sid, grace=0.0)  # the supervision pass says nothing more
    evs = [e for e in rt.events.read(sweep_id=sid) if e.kind in ("todo.overdue", "plan.overdue")]
    assert [(e.kind, e.todo_id) for e in evs] == [("todo.overdue", "TODO-001"),
                                                  ("plan.overdue", None)]
    todo_ev, plan_ev = (e.to_dict() for e in evs)
    assert (todo_ev["repo"], todo_ev["due"], todo_ev["status"]) == ("api", "2020-01-01T12:00:00Z",
                                                                    "queued")
    assert (plan_ev["plan"], plan_ev["due"], plan_ev["left"]) == (PLAN, "2020-01-01T23:00:00Z", 4)


def test_the_supervision_pass_emits_them(rt: Runtime, tmp_path: Path) -> None:
    svc = SweepService(rt, catalog(tmp_path, plan_due=None))
    sid = svc.start(PLAN, ignore_blockers=True)
    assert overdue_events(rt, sid) == []
    assert supervise_once(rt, sid, grace=0.0)
    assert overdue_events(rt, sid) == [("todo.overdue", "TODO-001"),
                                       ("todo.overdue", "TODO-004")]


def test_a_todo_that_succeeded_late_is_overdue(rt: Runtime, tmp_path: Path) -> None:
    svc = SweepService(rt, catalog(tmp_path, plan_due=None))
    sid = svc.start(PLAN, ignore_blockers=True)
    rt.checkpoints.set_fields(sid, "TODO-004", status="succeeded", finished_at=time.time())
    spec = load_spec(rt, sid, svc.record(sid))
    assert spec is not None
    assert note_overdue(rt, sid, spec, 1, time.time()) == ["TODO-001", "TODO-004"]


def test_two_passes_at_once_say_it_once(rt: Runtime, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Both passes read the marks before either wrote one: the mark (HSETNX) decides."""
    from coordination.runtime.overdue import OverdueMarks

    svc = SweepService(rt, catalog(tmp_path, plan_due="2020-01-01"))
    sid = svc.start(PLAN, ignore_blockers=True)
    spec = load_spec(rt, sid, svc.record(sid))
    assert spec is not None
    monkeypatch.setattr(OverdueMarks, "marked", lambda self, sweep, names: set())
    assert note_overdue(rt, sid, spec, 0, time.time()) == ["TODO-001", "TODO-004", "@plan"]
    assert note_overdue(rt, sid, spec, 0, time.time()) == []
    assert len(overdue_events(rt, sid)) == 3


def test_overdue_is_said_with_its_mark_however_soon_its_pass_dies(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each ``todo.overdue``/``plan.overdue`` is written with the mark that says it was
    said: a pass dying where it would write an event alone has said them all, once, and
    the next pass says nothing again (marked first and said after, a pass dying in
    between left them marked and never said)."""
    from coordination.runtime.events import EventLog

    svc = SweepService(rt, catalog(tmp_path, plan_due="2020-01-01"))
    sid = svc.start(PLAN, ignore_blockers=True)
    spec = load_spec(rt, sid, svc.record(sid))
    assert spec is not None

    def dies(*_: object, **__: object) -> str:
        raise RuntimeError("the pass died where it would write an event alone")

    monkeypatch.setattr(EventLog, "emit", dies)
    try:
        note_overdue(rt, sid, spec, 0, time.time())
    except RuntimeError:
        pass  # died: what it marked must have said itself
    monkeypatch.undo()
    assert note_overdue(rt, sid, spec, 0, time.time()) == []
    assert overdue_events(rt, sid) == [("todo.overdue", "TODO-001"),
                                       ("todo.overdue", "TODO-004"), ("plan.overdue", None)]


def test_thousands_overdue_at_once_are_said_a_thousand_a_live_message(rt: Runtime) -> None:
    """Every one marked is in the sweep's stream; the live channel carries them a
    thousand a message (as every script that says many), and a second mark says none."""
    import json

    names = [f"TODO-{i:04d}" for i in range(2500)]
    sub = rt.redis.pubsub()
    sub.subscribe(rt.keys.events_channel)
    assert sub.get_message(timeout=1)  # subscribed
    said = {n: rt.events.prepare("todo.overdue", sweep_id="S-1", todo_id=n) for n in names}
    assert rt.overdue().mark("S-1", said, 1.0) == names
    assert rt.redis.xlen(rt.keys.sweep_events("S-1")) == 2500
    sizes = []
    while (msg := sub.get_message(timeout=1)) is not None:
        if msg["type"] == "message":
            sizes.append(len(json.loads(msg["data"])))
    sub.close()
    assert sizes == [1000, 1000, 500]
    assert rt.overdue().mark("S-1", {n: said[n] for n in names[:3]}, 2.0) == []
    assert rt.redis.xlen(rt.keys.sweep_events("S-1")) == 2500


# -- a todo past its due: that no sweep runs (`coord beat`'s look) ---------------------

def global_overdue(rt: Runtime) -> list[dict[str, object]]:
    return [e.to_dict() for e in rt.events.read() if e.kind == "todo.overdue"
            and e.sweep_id is None]


def test_a_todo_no_sweep_runs_is_said_overdue_once_per_due_time(rt: Runtime,
                                                                 tmp_path: Path) -> None:
    from coordination.sweeps.notices.overdue import catalog_dues, note_unswept_overdue

    path = catalog(tmp_path, plan_due=None)
    svc = SweepService(rt, path)
    dues = catalog_dues(svc.catalog())
    assert [d[0] for d in dues] == ["TODO-001", "TODO-002", "TODO-004"]
    asked: list[int] = []

    def nothing_runs() -> set[str]:
        asked.append(1)
        return set()

    now = time.time()
    assert note_unswept_overdue(rt, dues, now, nothing_runs) == ["TODO-001", "TODO-004"]
    assert note_unswept_overdue(rt, dues, now, nothing_runs) == []  # once
    evs = global_overdue(rt)
    assert [(e["todo_id"], e["repo"], e["due"], e["status"]) for e in evs] == [
        ("TODO-001", "api", "2020-01-01T12:00:00Z", "pending"),
        ("TODO-004", "api", "2020-06-01T23:59:59Z", "pending")]
    assert len(asked) == 1  # the live sweeps were read only when one was late and unsaid
    # A new due time, passed too: said again, once.
    moved = [(t, at + 60 if t == "TODO-001" else at, s, r) for t, at, s, r in dues]
    assert note_unswept_overdue(rt, moved, now, nothing_runs) == ["TODO-001"]
    assert note_unswept_overdue(rt, moved, now, nothing_runs) == []
    # Not yet due (TODO-002, 2999): never said.
    assert "TODO-002" not in {e["todo_id"] for e in global_overdue(rt)}


def test_a_todo_a_live_sweep_runs_is_its_supervisions_to_say(rt: Runtime,
                                                             tmp_path: Path) -> None:
    from coordination.sweeps.notices.overdue import (catalog_dues, note_unswept_overdue,
                                                     running_todos)

    svc = SweepService(rt, catalog(tmp_path, plan_due=None))
    sid = svc.start(PLAN, ignore_blockers=True)  # no worker: it stays live
    dues = catalog_dues(svc.catalog())
    assert note_unswept_overdue(rt, dues, time.time(),
                                lambda: running_todos(rt, svc.live_sweeps())) == []
    assert global_overdue(rt) == []
    assert supervise_once(rt, sid, grace=0.0)  # its pass says them, in the sweep
    assert overdue_events(rt, sid) == [("todo.overdue", "TODO-001"),
                                       ("todo.overdue", "TODO-004")]


def test_a_completed_todo_is_not_overdue(rt: Runtime, tmp_path: Path) -> None:
    from coordination.sweeps.notices.overdue import catalog_dues

    path = catalog(tmp_path, plan_due=None)
    doc = yaml.safe_load(path.read_text())
    doc["coordination"]["todos"][0]["status"] = "completed"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert [d[0] for d in catalog_dues(SweepService(rt, path).catalog())] == ["TODO-002",
                                                                             "TODO-004"]
