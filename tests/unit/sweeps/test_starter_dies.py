"""A start or a resume whose process dies right after its write, before it sent anything
(``begin`` never ran: a killed ``plan sweep``, Redis lost mid-start), is carried on by
the supervision passes: the run was listed active and its counters written with its
record, so a pass sends its first todos after a grace, starts its first wave, or ends a
sweep of no todos, and the sweep ends as it would have. It was left ``queued`` where no
pass looked, for good.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coordination.runtime.context import Runtime
from coordination.status import EventKind
from coordination.sweeps import SweepService, steering
from tests.unit.support.sweeps import PLAN, repos_of, with_plan, write_catalog

pytestmark = pytest.mark.timeout(90)

TODOS = [
    {"id": "TODO-001", "repo": "api", "run": "true"},
    {"id": "TODO-002", "repo": "web", "run": "test -f ../api/fixed", "blocked_by": ["TODO-001"]},
    {"id": "TODO-003", "repo": "api", "run": "true", "blocked_by": ["TODO-002"]},
    {"id": "TODO-004", "repo": "web", "run": "true"},
]


class Died(Exception):
    """The starting process, gone right after its write."""


def dying_before_it_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    def died(*_: Any, **__: Any) -> None:
        raise Died

    monkeypatch.setattr(steering, "begin", died)


def catalog(tmp_path: Path, shape: str) -> Path:
    """TODOS (waves: but TODO-003, which would wait on a later wave)."""
    todos = [t for t in TODOS if shape != "waves" or t["id"] != "TODO-003"]
    cat = write_catalog(tmp_path / "eco", todos, repos=("api", "web"))
    if shape == "waves":
        with_plan(cat, waves=[{"name": "api", "repos": ["api"]},
                              {"name": "web", "repos": ["web"]}])
    return cat


@pytest.mark.rt(settings={"supervise_interval": 0.05})
@pytest.mark.parametrize("shape", ["levels", "eager", "waves"])
def test_a_start_and_a_resume_whose_process_died_after_its_write_are_carried_on(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: str) -> None:
    from workers.embedded import embedded_workers

    cat = catalog(tmp_path, shape)
    svc = SweepService(rt, cat)
    strategy = "eager" if shape == "eager" else "levels"
    with monkeypatch.context() as m:
        dying_before_it_sends(m)
        with pytest.raises(Died):
            svc.start(PLAN, strategy=strategy, ignore_blockers=True)
    sid = str(rt.checkpoints.list_sweeps(limit=1)[0]["id"])
    assert rt.checkpoints.active_sweeps() == [sid]  # listed with its record
    with embedded_workers(rt, repos_of(svc)):
        st = svc.wait(sid, timeout=30)  # (the wait supervises, as a worker's passes do)
        assert st["status"] == "failed", st
        ended = {"TODO-001": "succeeded", "TODO-002": "failed", "TODO-003": "skipped",
                 "TODO-004": "succeeded"}
        if shape == "waves":
            del ended["TODO-003"]
        assert {t: v["status"] for t, v in st["todos"].items()} == ended, st["todos"]
        (tmp_path / "eco" / "repos" / "api" / "fixed").write_text("")
        with monkeypatch.context() as m:
            dying_before_it_sends(m)
            with pytest.raises(Died):
                svc.resume(sid)
        assert sid in rt.checkpoints.active_sweeps()  # listed with its status
        st = svc.wait(sid, timeout=30)
    assert st["status"] == "succeeded", st
    assert all(v["status"] == "succeeded" for v in st["todos"].values()), st["todos"]
    if shape == "waves":
        started = [(e.data["wave"], e.data["reason"]) for e in rt.events.read(sweep_id=sid)
                   if e.kind == EventKind.wave_started]
        assert started == [("api", "start"), ("web", "wave api done"),  # once each a run
                           ("api", "resume"), ("web", "wave api done")], started


@pytest.mark.rt(settings={"supervise_interval": 0.05})
def test_a_sweep_of_no_todos_whose_starter_died_is_ended_by_a_pass(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every todo of the plan is completed: its sweep has none (`plan sweep` says
    "nothing to run" and starts it; its ``begin`` ends it at once). Its starter dead
    before that, the passes over the active sweeps (what every worker runs) end it."""
    from coordination.sweeps.supervision import supervise_all
    from tests.waiting import wait_for

    svc = SweepService(rt, write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true", "status": "completed"}]))
    with monkeypatch.context() as m:
        dying_before_it_sends(m)
        with pytest.raises(Died):
            svc.start(PLAN)
    sid = str(rt.checkpoints.list_sweeps(limit=1)[0]["id"])

    def ended() -> bool:
        supervise_all(rt)
        return (rt.checkpoints.get_sweep(sid) or {}).get("status") == "succeeded"

    wait_for(ended, 20, "a pass to end the sweep of no todos")
    assert (rt.checkpoints.get_sweep(sid) or {}).get("reason") == "0 todos succeeded"
    assert sid not in rt.checkpoints.active_sweeps()


@pytest.mark.rt(settings={"supervise_interval": 0.05})
def test_a_rollback_whose_process_died_before_its_first_undo_is_carried_on(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``sweep rollback`` writes the rollback's run (status, counters, the undos
    pending) in one step, then sends its first undos; dead in between, the passes over
    the active sweeps send them after their grace and the sweep ends rolled back. (It is
    listed active by its status write, ``status_cas.lua``, where a separate write before
    the send listed it until this round.)"""
    from coordination.sweeps import rollback
    from coordination.sweeps.supervision import supervise_all
    from tests.waiting import wait_for
    from workers.embedded import embedded_workers

    undone = tmp_path / "undone"
    svc = SweepService(rt, write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true", "undo": f"touch {undone}"},
        {"id": "TODO-002", "repo": "api", "run": "exit 3", "blocked_by": ["TODO-001"]},
    ], repos=("api",)))
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, strategy="levels", ignore_blockers=True)
        assert svc.wait(sid, timeout=30)["status"] == "failed"
        with monkeypatch.context() as m:
            m.setattr(rollback, "send_level", lambda *_a, **_k: (_ for _ in ()).throw(Died()))
            with pytest.raises(Died):
                svc.rollback(sid)
        assert (rt.checkpoints.get_sweep(sid) or {}).get("status") == "rolling_back"
        assert sid in rt.checkpoints.active_sweeps()  # listed with its status

        def rolled_back() -> bool:
            supervise_all(rt)
            return (rt.checkpoints.get_sweep(sid) or {}).get("status") == "rolled_back"

        wait_for(rolled_back, 30, "the passes to carry the rollback on")
    assert undone.exists()


def test_a_triggered_start_whose_process_died_after_its_record_is_in_the_audit_log(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A start no person typed (a schedule's firing, a push) writes its ``sweep.start``
    audit entry before its record: killed right after the record (the passes carry its
    sweep on), it still has its entry. Written after the start, it was lost with it."""
    import json

    from coordination.catalog.audit.log import log_path
    from coordination.sweeps.planning import new_sweep_id
    from coordination.sweeps.starts.triggers import schedule_trigger

    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    svc = SweepService(rt, cat)
    sid = new_sweep_id(PLAN)
    dying_before_it_sends(monkeypatch)
    with pytest.raises(Died):
        svc.start_spec(svc.plan_spec(PLAN, strategy="levels", ignore_blockers=False), sid,
                       trigger=schedule_trigger("2026-11-30T03:00:00+01:00"))
    assert (rt.checkpoints.get_sweep(sid) or {}).get("status") == "queued"
    entries = [json.loads(line) for line in log_path(cat).read_text().splitlines()]
    assert [(e["ids"], e["decision"]["trigger"]["firing"]) for e in entries
            if e.get("op") == "sweep.start"] == [([sid, PLAN], "2026-11-30T03:00:00+01:00")]
