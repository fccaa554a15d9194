"""Running a plan again (`plan sweep --again`): every todo runs, completed ones too, and
the sync records the new outcomes: a completed todo that fails now is `failed` and its
completed plan `active` again, one it skips now (its blocker failed) `pending`; run again
and succeeding, the plan is completed again."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from coordination.sweeps.writeback.sync import write_outcome
from tests.unit.support.sweeps import PLAN, counting, runs, write_catalog

pytestmark = pytest.mark.timeout(120)
A, B, C = "TODO-001", "TODO-002", "TODO-003"


def statuses(catalog: Path) -> dict[str, str]:
    doc = yaml.safe_load(catalog.read_text())
    out = {t["id"]: str(t.get("status", "pending")) for t in doc["coordination"]["todos"]}
    out.update({p["id"]: str(p.get("status")) for p in doc["coordination"]["plans"]})
    return out


def test_again_runs_completed_todos_and_the_sync_records_what_happened_now(
        rt: Runtime, tmp_path: Path) -> None:
    from workers.embedded import embedded_workers

    counter, broken = tmp_path / "runs", tmp_path / "broken"
    counter.mkdir()
    catalog = write_catalog(tmp_path / "eco", [
        {"id": A, "repo": "api", "run": counting(counter, A, f"test ! -e {broken}")},
        {"id": B, "repo": "web", "run": counting(counter, B), "blocked_by": [A]},
        {"id": C, "repo": "jobs", "run": counting(counter, C)},
    ])
    svc = SweepService(rt, catalog)

    def sweep(*, again: bool) -> tuple[str, dict[str, object]]:
        sid = svc.start(PLAN, ignore_blockers=True, again=again)
        st = svc.wait(sid, timeout=60)
        return str(st["status"]), svc.sync(sid, status=st)

    with embedded_workers(rt, {"api": 1, "web": 1, "jobs": 1}):
        assert sweep(again=False)[0] == "succeeded"
        assert statuses(catalog) == {A: "completed", B: "completed", C: "completed",
                                     PLAN: "completed"}
        # A plain sweep of the plan has nothing left to run ...
        assert svc.plan_spec(PLAN, strategy="levels", ignore_blockers=True).todos == {}
        # ... --again runs every todo; upstream moved: A fails now, B (after A) is skipped
        broken.touch()
        status, synced = sweep(again=True)
        assert status == "failed"
        assert [runs(counter, t) for t in (A, B, C)] == [2, 1, 2]
        assert synced["failed"] == [A] and synced["completed"] == []
        assert synced["unrun"] == [B] and synced["skipped"] == []
        assert synced["reopened"] is True and synced["plan_status"] == "active"
        # B did not run now (its blocker failed): the catalog says what this latest run
        # left of it, pending, not the completed of the run before; the plan is active
        assert statuses(catalog) == {A: "failed", B: "pending", C: "completed",
                                     PLAN: "active"}
        # fixed: run again, every todo succeeds, the plan is completed again
        broken.unlink()
        status, synced = sweep(again=True)
        assert status == "succeeded" and synced["completed"] == [A, B]
        assert synced["plan_completed"] is True and synced["reopened"] is False
        assert [runs(counter, t) for t in (A, B, C)] == [3, 2, 3]
    assert statuses(catalog) == {A: "completed", B: "completed", C: "completed",
                                 PLAN: "completed"}


def test_a_failure_reopens_a_completed_plan_a_success_keeps_it(tmp_path: Path) -> None:
    """write_outcome alone: a completed todo failing reopens its completed plan; one
    succeeding again changes nothing (it was completed); a plan of the same catalog
    completed with no todo of this sweep failing stays completed."""
    catalog = write_catalog(tmp_path / "eco", [
        {"id": A, "repo": "api", "run": "true", "status": "completed"},
        {"id": B, "repo": "web", "run": "true", "status": "completed"},
    ], checkouts=False)
    doc = yaml.safe_load(catalog.read_text())
    doc["coordination"]["plans"][0]["status"] = "completed"
    catalog.write_text(yaml.safe_dump(doc, sort_keys=False))
    ok = write_outcome(catalog, PLAN, {A: {"status": "succeeded", "duration": 1.0}})
    assert ok["completed"] == [] and ok["reopened"] is False and ok["plan_status"] == "completed"
    assert statuses(catalog)[PLAN] == "completed"
    bad = write_outcome(catalog, PLAN, {A: {"status": "succeeded", "duration": 1.0},
                                        B: {"status": "failed", "duration": 1.0}})
    assert bad["failed"] == [B] and bad["reopened"] is True and bad["plan_status"] == "active"
    assert statuses(catalog) == {A: "completed", B: "failed", PLAN: "active"}
