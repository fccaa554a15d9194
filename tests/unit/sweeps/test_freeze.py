"""`coord freeze`: what a frozen fleet refuses (every start, resume, unpause, a landing's
prepare, the train), what it lets through (pause, cancel), its record, audit entries and
events; `sweep pause|cancel --all`."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.catalog.audit import log as audit
from coordination.errors import FleetFrozen
from coordination.runtime.context import Runtime
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
