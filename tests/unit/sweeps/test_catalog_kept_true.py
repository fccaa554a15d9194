"""The catalog says what happened: a sweep's outcome reaches it even when nobody ran
`coord sweep sync`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from coordination.errors import PlanError
from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService, new_sweep_id
from tests.unit.support.sweeps import PLAN, write_catalog

pytestmark = pytest.mark.timeout(120)


def todo_status(catalog: Path, todo_id: str) -> str:
    doc = yaml.safe_load(catalog.read_text())
    return next(str(t.get("status", "pending")) for t in doc["coordination"]["todos"]
                if t["id"] == todo_id)


def test_a_blocker_that_succeeded_in_an_unsynced_sweep_does_not_block(
        rt: Runtime, tmp_path: Path) -> None:
    """The README's distributed flow (start, then watch) left the catalog unsynced, so
    `todo run` of a dependent refused it as blocked by a todo that had succeeded."""
    from workers.embedded import embedded_workers

    catalog = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "run": "false"},
    ])
    svc = SweepService(rt, catalog)
    with embedded_workers(rt, {"api": 1, "web": 1}):
        first = svc.start_spec(svc.todo_spec("TODO-001"), new_sweep_id("TODO-001"), kind="todo")
        assert svc.wait(first, timeout=60)["status"] == "succeeded"
        failing = svc.start_spec(svc.todo_spec("TODO-003"), new_sweep_id("TODO-003"),
                                 kind="todo")
        assert svc.wait(failing, timeout=60)["status"] == "failed"
    assert todo_status(catalog, "TODO-001") == "pending"  # nobody synced
    spec = svc.todo_spec("TODO-002")  # not refused: S-1 is synced first
    assert list(spec.todos) == ["TODO-002"]
    assert todo_status(catalog, "TODO-001") == "completed"
    assert todo_status(catalog, "TODO-003") == "pending"  # that sweep has nothing it needs
    assert svc.record(first).get("synced_at") and not svc.record(failing).get("synced_at")


def test_a_blocker_that_failed_still_blocks(rt: Runtime, tmp_path: Path) -> None:
    from workers.embedded import embedded_workers

    catalog = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "false"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
    ])
    svc = SweepService(rt, catalog)
    with embedded_workers(rt, {"api": 1, "web": 1}):
        sid = svc.start_spec(svc.todo_spec("TODO-001"), new_sweep_id("TODO-001"), kind="todo")
        assert svc.wait(sid, timeout=60)["status"] == "failed"
    with pytest.raises(PlanError, match="TODO-002 is blocked"):
        svc.todo_spec("TODO-002")
    assert todo_status(catalog, "TODO-001") == "pending"
    assert PLAN  # the catalog's one plan holds both
