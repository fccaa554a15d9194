"""Honest endings, rule by rule (issue #39: 4, 5, 6, 17; end to end in
tests/integration/test_honest_endings.py): what the sync writes of a todo the sweep did
not run, the last line of a rolled-back sweep's wait, and both output tails of an
undone todo in `sweep status --json` and the web view's todo document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from coordination.sweeps.rollback import ending, trigger_phrase
from coordination.sweeps.writeback.sync import Outcome, write_outcome
from coordination.ui.documents import todo_detail
from tests.unit.support.sweeps import PLAN, repos_of, write_catalog

pytestmark = pytest.mark.timeout(120)
A, B = "TODO-001", "TODO-002"


def statuses(catalog: Path) -> dict[str, str]:
    doc = yaml.safe_load(catalog.read_text())
    return {t["id"]: str(t.get("status", "pending")) for t in doc["coordination"]["todos"]}


def outcome(status: str, attempts: int) -> Outcome:
    return {"status": status, "duration": None, "outputs": {}, "attempts": attempts}


# (catalog status before, this run's outcome, attempts, --again?) -> catalog status after
RULES: list[tuple[str, str, int, bool, str]] = [
    # a blocker failed: skipped, as before; a completed todo run again and skipped now is
    # pending (what this run left), one completed meanwhile by hand keeps it
    ("pending", "skipped", 0, False, "skipped"),
    ("completed", "skipped", 0, True, "pending"),
    ("completed", "skipped", 0, False, "completed"),
    # cancelled before it started: it never ran, its status stands (pending stays pending)
    ("pending", "cancelled", 0, False, "pending"),
    ("failed", "cancelled", 0, False, "failed"),
    ("completed", "cancelled", 0, True, "pending"),
    # cancelled while it ran: skipped, as before; a completed todo stopped so while it
    # ran again is skipped too (what this run left), one completed by hand stays so
    ("pending", "cancelled", 1, False, "skipped"),
    ("completed", "cancelled", 1, True, "skipped"),
    ("completed", "cancelled", 1, False, "completed"),
]


@pytest.mark.parametrize("before,status,attempts,again,after", RULES)
def test_what_the_sync_writes_of_a_todo_the_sweep_did_not_finish(
        tmp_path: Path, before: str, status: str, attempts: int, again: bool,
        after: str) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": A, "repo": "api", "run": "true", "status": before}], checkouts=False)
    out = write_outcome(cat, PLAN, {A: outcome(status, attempts)}, again=again)
    assert statuses(cat) == {A: after}
    assert out["unrun"] == ([A] if before == "completed" and after == "pending" else [])
    assert out["skipped"] == ([A] if after == "skipped" else [])


def test_an_again_run_that_leaves_a_todo_undone_reopens_its_completed_plan(
        tmp_path: Path) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": A, "repo": "api", "run": "true", "status": "completed"},
        {"id": B, "repo": "web", "run": "true", "status": "completed", "blocked_by": [A]},
    ], checkouts=False)
    doc = yaml.safe_load(cat.read_text())
    doc["coordination"]["plans"][0]["status"] = "completed"
    cat.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = write_outcome(cat, PLAN, {A: outcome("cancelled", 0), B: outcome("cancelled", 0)},
                        again=True)
    assert out["unrun"] == [A, B] and out["reopened"] is True
    assert out["plan_status"] == "active"


@pytest.mark.parametrize("status,reason,trigger,line", [
    ("rolled_back", "rolled back after TODO-015 failed: exit 1; 2 todos compensated",
     "after TODO-015 failed: exit 1", "rolled back: TODO-015 failed (exit 1)"),
    ("rolled_back", "x", "after TODO-015 failed: exit 1 (and 2 more failed)",
     "rolled back: TODO-015 failed (exit 1) (and 2 more failed)"),
    ("rolled_back", "x", "by user (it had succeeded)", "rolled back: by user (it had succeeded)"),
    ("rolled_back", "x", "by user after TODO-015 failed: timed out after 30 s",
     "rolled back: by user after TODO-015 failed (timed out after 30 s)"),
    ("rollback_failed",
     "rollback after TODO-015 failed: exit 1 did not finish: TODO-007 compensation_failed "
     "(exit 1)", "after TODO-015 failed: exit 1",
     "rollback failed: TODO-007 compensation_failed (exit 1); it rolled back after "
     "TODO-015 failed (exit 1)"),
    ("rollback_failed",
     "rollback by user (it had succeeded) did not finish: TODO-007 compensation_failed "
     "(exit 1)", "by user (it had succeeded)",
     "rollback failed: TODO-007 compensation_failed (exit 1); it rolled back by user "
     "(it had succeeded)"),
    ("failed", "TODO-015 failed: exit 1", None, None),
    ("succeeded", None, None, None),
])
def test_the_last_line_of_a_rolled_back_sweep_names_outcome_and_trigger(
        status: str, reason: str, trigger: str | None, line: str | None) -> None:
    assert ending(status, reason, trigger) == line


def test_a_trigger_without_a_failure_is_said_as_it_is() -> None:
    assert trigger_phrase("by user") == "by user"


def test_an_undone_todo_keeps_its_changes_tail_beside_its_undos(rt: Runtime,
                                                                 tmp_path: Path) -> None:
    from workers.embedded import embedded_workers

    eco = write_catalog(tmp_path / "eco", [
        {"id": A, "repo": "api", "run": "echo change-out", "undo": "echo undo-out"},
        {"id": B, "repo": "web", "run": "echo kaput >&2; exit 7", "blocked_by": [A],
         "undo": "echo never"},
    ])
    svc = SweepService(rt, eco)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, ignore_blockers=True, atomic=True)
        st = svc.wait(sid, timeout=60)
    assert st["status"] == "rolled_back", st["reason"]
    assert st["rollback_reason"] == f"after {B} failed: exit 7"
    a: Any = st["todos"][A]
    assert a["status"] == "compensated"
    assert "change-out" in a["output_tail"] and "undo-out" not in a["output_tail"]
    assert "undo-out" in a["undo_output_tail"]
    assert "undo_output_tail" not in st["todos"][B]  # failed, never undone
    assert "kaput" in st["todos"][B]["output_tail"]
    # the web view's todo document: the undo's run, its tail under the same name too
    detail: Any = todo_detail(svc, sid, A)
    assert "undo-out" in detail["undo_output_tail"]
    assert "change-out" in detail["change"]["output_tail"]
