"""`coord freeze`: what a frozen fleet refuses (every start, resume, unpause, a landing's
prepare, the train), what it lets through (pause, cancel), its record, audit entries and
events; `sweep pause|cancel --all`."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.catalog.audit import log as audit
from coordination.errors import FleetFrozen
from coordination.runtime.context import Runtime
from coordination.runtime.events import Prepared
from coordination.runtime.freeze import FreezeRecord
from coordination.sweeps import SweepService
from coordination.sweeps.governance import freeze as freezing
from tests.unit.support.sweeps import PLAN, write_catalog

pytestmark = pytest.mark.timeout(60)


def catalog(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"},
                                            {"id": "TODO-002", "repo": "web", "run": "true"}])


def test_a_frozen_fleet_refuses_a_start_saying_who_when_why_and_how_to_unfreeze(
        rt: Runtime, tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    svc = SweepService(rt, cat)
    out = freezing.freeze(rt, cat, who="ana", reason="incident 4711")
    assert out["frozen"] and out["changed"] and out["audited"] is True
    with pytest.raises(FleetFrozen) as got:
        svc.start(PLAN, ignore_blockers=True)
    err = got.value
    assert err.exit_code == 1
    assert "refusing to start a sweep of PLAN-001" in err.message
    assert "frozen by ana" in err.message and "incident 4711" in err.message
    assert "coord unfreeze" in str(err.hint)
    assert rt.checkpoints.list_sweeps() == []  # nothing recorded
    # the first freeze stands; a second one changes nothing
    again = freezing.freeze(rt, cat, who="bo", reason="other")
    assert not again["changed"] and again["by"] == "ana"
    assert freezing.unfreeze(rt, cat, who="cy")["changed"] is True
    assert freezing.unfreeze(rt, cat, who="cy")["changed"] is False
    sid = svc.start(PLAN, ignore_blockers=True)
    assert svc.record(sid)["trigger"] == {"kind": "cli"}
    ops = [(e["op"], e["who"]) for e in audit.read(audit.log_path(cat))]
    assert ops == [("fleet.freeze", "ana"), ("fleet.unfreeze", "cy")]
    kinds = [e.kind for e in rt.events.read()]
    assert kinds.count("fleet.frozen") == 1 and kinds.count("fleet.unfrozen") == 1


def test_frozen_refuses_resume_and_unpause_but_not_pause_or_cancel(rt: Runtime,
                                                                   tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    svc = SweepService(rt, cat)
    live = svc.start(PLAN, ignore_blockers=True)  # no worker: it stays queued
    ended = svc.start(PLAN, ignore_blockers=True)
    svc.cancel(ended, wait=0)
    freezing.freeze(rt, cat, who="ana", reason="")
    with pytest.raises(FleetFrozen, match="refusing to resume sweep"):
        svc.resume(ended)
    paused = svc.on_every_live("pause")  # allowed: an emergency stop is made of these
    assert [(p["sweep_id"], p["changed"]) for p in paused] == [(live, True)]
    with pytest.raises(FleetFrozen, match=f"refusing to unpause sweep {live}"):
        svc.unpause(live)
    assert svc.record(live)["status"] == "paused"
    cancelled = svc.on_every_live("cancel")
    assert [(c["sweep_id"], c["cancelled"]) for c in cancelled] == [(live, True)]
    assert svc.on_every_live("cancel") == []  # nothing live is left


def test_a_landing_and_the_train_are_refused_while_frozen(rt: Runtime) -> None:
    from coordination.change.train import run_train

    freezing.freeze(rt, None, who="ana", reason="stop")
    rt.changes.enqueue(["PLAN-009"])

    def resolve(plan: str) -> tuple[object, dict[str, int]]:
        raise AssertionError("a frozen train resolves nothing")

    with pytest.raises(FleetFrozen, match="refusing to run the merge train"):
        run_train(rt, resolve, lambda cp: "")  # type: ignore[arg-type]
    assert rt.changes.train() == ["PLAN-009"]  # the freeze drops nothing from the train


def test_an_unreadable_freeze_record_still_freezes(rt: Runtime) -> None:
    rt.freeze().redis.set(rt.freeze().key, "not json")
    with pytest.raises(FleetFrozen, match="unreadable freeze record"):
        freezing.refuse_if_frozen(rt, "start a sweep")
    # and `coord unfreeze` ends it, as any other
    assert freezing.unfreeze(rt, None, who="ana")["changed"] is True
    freezing.refuse_if_frozen(rt, "start a sweep")
    [ev] = [e for e in rt.events.read() if e.kind == "fleet.unfrozen"]
    assert ev.data["frozen_by"] == "?"


def test_a_freeze_and_its_end_are_said_however_soon_the_freezer_dies(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``fleet.frozen``/``fleet.unfrozen`` (the team's webhooks) are written with the
    freeze's record and its removal: a `coord freeze` killed where it would write an
    event alone has said it already (written after the record, it was lost: a fleet
    frozen, or unfrozen, with no word)."""
    from coordination.runtime.events import EventLog

    cat = catalog(tmp_path)

    def dies(*_: object, **__: object) -> str:
        raise RuntimeError("the freezer died where it would write an event alone")

    monkeypatch.setattr(EventLog, "emit", dies)
    for step in (lambda: freezing.freeze(rt, cat, who="ana", reason="incident 4711"),
                 lambda: freezing.unfreeze(rt, cat, who="bo")):
        try:
            step()
        except RuntimeError:
            pass  # died: what it wrote must say itself
    assert rt.freeze().get() is None  # frozen, then unfrozen
    said = [(e.kind, e.data) for e in rt.events.read()]
    assert [k for k, _ in said] == ["fleet.frozen", "fleet.unfrozen"]
    assert said[0][1] == {"by": "ana", "reason": "incident 4711"}
    assert said[1][1]["by"] == "bo" and said[1][1]["frozen_by"] == "ana"


def test_an_unfreeze_ends_the_freeze_in_force_when_one_was_set_after_its_read(
        rt: Runtime) -> None:
    """The unfreeze's clear is a compare and delete of the record it read: a freeze set
    again in between is read again, ended once and said under its own name."""
    store = rt.freeze()
    store.set({"by": "ana", "at": 1.0, "reason": ""},
              rt.events.prepare("fleet.frozen", by="ana", reason=""))
    seen: list[str] = []

    def say(rec: FreezeRecord) -> Prepared:
        seen.append(rec["by"])
        if len(seen) == 1:  # another unfreeze, then a freeze, between the read and the clear
            store.redis.set(store.key, '{"by": "cy", "at": 2.0, "reason": "again"}')
        return rt.events.prepare("fleet.unfrozen", by="bo", frozen_by=rec["by"],
                                 frozen_for=0.0)

    ended = store.clear(say)
    assert ended is not None and ended["by"] == "cy" and seen == ["ana", "cy"]
    assert store.get() is None and store.clear(say) is None
    told = [e.data["frozen_by"] for e in rt.events.read() if e.kind == "fleet.unfrozen"]
    assert told == ["cy"]
