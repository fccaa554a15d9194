"""Plan completion: `coord plan status`, progress in `plan list`, and `sweep sync`
writing skipped todos back and completing the plan whose todos are all completed."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.catalog.models import Catalog
from coordination.catalog.file.store import CatalogStore
from coordination.errors import NotFoundError
from coordination.catalog.reads.reports import is_complete, plan_status
from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from tests.unit.support.cli import plan_coord as coord
from tests.unit.support.cli import write_yaml as write
from tests.unit.support.sweeps import PLAN, run_sweep, write_catalog  # noqa: F401

pytestmark = pytest.mark.timeout(120)

TODAY = dt.date(2026, 6, 15)


def status_catalog_data() -> dict[str, Any]:
    """PLAN-1 with a todo in every status and one milestone per state; TODO-9 belongs to
    PLAN-1 only through a milestone, TODO-10 to another plan."""
    def todo(n: int, status: str, **kw: Any) -> dict[str, Any]:
        return {"id": f"TODO-{n}", "task": f"task {n}", "repo": "api", "plan": "PLAN-1",
                "status": status, **kw}

    return {
        "version": 1,
        "repos": [{"name": "api"}],
        "coordination": {
            "plans": [
                {"id": "PLAN-1", "title": "the plan", "status": "active",
                 "completion_criteria": ["api on 3.13", "docs updated"],
                 "milestones": [
                     {"id": "MS-1", "title": "past, all done", "due": "2026-06-01",
                      "todos": ["TODO-1", "TODO-2"]},
                     {"id": "MS-2", "title": "past, not done", "due": "2026-06-14",
                      "todos": ["TODO-1", "TODO-3"]},
                     {"id": "MS-3", "title": "due today", "due": "2026-06-15",
                      "todos": ["TODO-4"]},
                     {"id": "MS-4", "title": "no date", "todos": ["TODO-9"]},
                     {"id": "MS-5", "title": "future", "due": "2026-07-01",
                      "todos": ["TODO-5"]},
                 ]},
                {"id": "PLAN-2", "title": "no todos yet"},
            ],
            "todos": [
                todo(1, "completed"), todo(2, "completed"), todo(3, "failed"),
                todo(4, "in_progress"), todo(5, "pending"), todo(6, "skipped"),
                todo(7, "blocked"),
                {"id": "TODO-9", "task": "only in a milestone", "repo": "api",
                 "status": "pending"},
                {"id": "TODO-10", "task": "elsewhere", "repo": "api", "plan": "PLAN-2",
                 "status": "completed"},
            ],
        },
    }


def status_catalog(**todo_status: str) -> Catalog:
    data = status_catalog_data()
    for t in data["coordination"]["todos"]:
        t["status"] = todo_status.get(t["id"].replace("-", "_"), t["status"])
    return Catalog.model_validate(data)


# -- the document ------------------------------------------------------------------
def test_status_document_counts_milestones_and_criteria() -> None:
    doc = plan_status(status_catalog(), "PLAN-1", today=TODAY)
    assert doc["plan"] == "PLAN-1" and doc["status"] == "active" and doc["complete"] is False
    assert doc["todos"] == {"total": 8, "pending": 2, "in_progress": 1, "completed": 2,
                            "failed": 1, "skipped": 1, "blocked": 1}
    states = {m["id"]: m["status"] for m in doc["milestones"]}
    assert states == {"MS-1": "done", "MS-2": "overdue", "MS-3": "open", "MS-4": "open",
                      "MS-5": "open"}
    ms2 = doc["milestones"][1]
    assert ms2 == {"id": "MS-2", "title": "past, not done", "due": "2026-06-14",
                   "status": "overdue", "todos": ["TODO-1", "TODO-3"], "completed": 1}
    assert doc["completion_criteria"] == ["api on 3.13", "docs updated"]
    assert doc["as_of"] == "2026-06-15"
    assert [t["id"] for t in doc["remaining"]] == [
        "TODO-3", "TODO-4", "TODO-5", "TODO-6", "TODO-7", "TODO-9"]
    json.dumps(doc)  # JSON types only


def test_overdue_follows_the_injected_day() -> None:
    cat = status_catalog()
    by_day = {d: {m["id"]: m["status"] for m in plan_status(cat, "PLAN-1", today=d)["milestones"]}
              for d in (dt.date(2026, 6, 14), dt.date(2026, 6, 16), dt.date(2026, 8, 1))}
    assert by_day[dt.date(2026, 6, 14)]["MS-2"] == "open"  # due today: not yet overdue
    assert by_day[dt.date(2026, 6, 16)]["MS-3"] == "overdue"
    assert by_day[dt.date(2026, 8, 1)] == {"MS-1": "done", "MS-2": "overdue", "MS-3": "overdue",
                                           "MS-4": "open", "MS-5": "overdue"}


def test_complete_when_every_todo_is_completed() -> None:
    done = {f"TODO_{n}": "completed" for n in (3, 4, 5, 6, 7, 9)}
    doc = plan_status(status_catalog(**done), "PLAN-1", today=dt.date(2030, 1, 1))
    assert doc["complete"] is True and doc["remaining"] == []
    assert doc["todos"]["completed"] == doc["todos"]["total"] == 8
    assert {m["status"] for m in doc["milestones"]} == {"done"}  # never overdue once done
    # One todo short (skipped is not completed): not complete.
    almost = plan_status(status_catalog(**{**done, "TODO_9": "skipped"}), "PLAN-1", today=TODAY)
    assert almost["complete"] is False
    assert next(m for m in almost["milestones"] if m["id"] == "MS-4")["status"] == "open"


def test_a_plan_without_todos_is_not_complete() -> None:
    data = status_catalog_data()
    data["coordination"]["todos"].pop()  # TODO-10, PLAN-2's only todo
    doc = plan_status(Catalog.model_validate(data), "PLAN-2", today=TODAY)
    assert doc["todos"]["total"] == 0 and doc["complete"] is False
    assert doc["milestones"] == [] and doc["completion_criteria"] == []
    assert is_complete([]) is False and is_complete(["completed", "completed"]) is True
    assert is_complete(["completed", "pending"]) is False


def test_unknown_plan_names_a_close_one() -> None:
    with pytest.raises(NotFoundError) as exc:
        plan_status(status_catalog(), "PLAN-3")
    assert "unknown plan 'PLAN-3'" in str(exc.value) and "PLAN-1" in str(exc.value)


def test_document_side_plan_todos_agree_with_the_catalog(tmp_path: Path) -> None:
    from coordination.catalog.edits.document import plan_todo_items

    path = write(tmp_path, status_catalog_data())
    cat = CatalogStore(path, cache_dir=None).load()

    def ids(doc: Any) -> dict[str, list[str]]:
        return {p: [str(t["id"]) for t in plan_todo_items(doc, p)]
                for p in ("PLAN-1", "PLAN-2", "PLAN-9")}

    from_doc = CatalogStore(path, cache_dir=None).update(ids)
    assert from_doc == {p: [t.id for t in cat.plan_todos(p)] for p in from_doc}
    assert "TODO-9" in from_doc["PLAN-1"] and from_doc["PLAN-2"] == ["TODO-10"]


# -- the CLI -----------------------------------------------------------------------
def test_cli_status_json_is_one_document(tmp_path: Path) -> None:
    path = write(tmp_path, status_catalog_data())
    r = coord(path, "status", "PLAN-1", "--as-of", "2026-06-15", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # exactly one document
    assert doc == plan_status(status_catalog(), "PLAN-1", today=TODAY)
    for key in ("plan", "status", "complete", "todos", "milestones", "completion_criteria"):
        assert key in doc


def test_cli_status_for_people(tmp_path: Path) -> None:
    path = write(tmp_path, status_catalog_data())
    r = coord(path, "status", "PLAN-1", "--as-of", "2026-06-15")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "2/8 (25%)" in out and "no (6 of 8 todos not completed)" in out
    assert "overdue" in out and "done" in out and "2026-06-14" in out
    assert "api on 3.13" in out and "docs updated" in out


def test_cli_status_refusals_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, status_catalog_data())
    bad = coord(path, "status", "PLAN-404", "--json")
    assert bad.returncode == 2 and bad.stdout == "" and "unknown plan 'PLAN-404'" in bad.stderr
    bad_day = coord(path, "status", "PLAN-1", "--as-of", "tomorrow")
    assert bad_day.returncode == 2 and bad_day.stdout == "" and "YYYY-MM-DD" in bad_day.stderr


def test_plan_list_shows_progress(tmp_path: Path) -> None:
    path = write(tmp_path, status_catalog_data())
    r = coord(path, "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = {p["id"]: p for p in json.loads(r.stdout)}
    assert rows["PLAN-1"]["progress"] == {"completed": 2, "total": 8}
    assert rows["PLAN-2"]["progress"] == {"completed": 1, "total": 1}
    assert rows["PLAN-1"]["todos"] == 8 and rows["PLAN-1"]["completed"] == 2  # kept
    human = coord(path, "list")
    assert human.returncode == 0 and "2/8" in human.stdout and "1/1" in human.stdout


def test_plan_status_imports_no_runtime_or_graph(tmp_path: Path) -> None:
    from tests.unit.support.cli import HEAVY, loaded

    path = write(tmp_path, status_catalog_data())
    for args in (("plan", "status", "PLAN-1"), ("plan", "list", "--json")):
        assert not loaded(path, *args) & set(HEAVY), args


# -- sweep sync --------------------------------------------------------------------
def catalog_doc(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def statuses(path: Path) -> dict[str, str]:
    return {t["id"]: t.get("status", "pending")
            for t in catalog_doc(path)["coordination"]["todos"]}


def plan_of(path: Path, plan: str = PLAN) -> str:
    return str(next(p for p in catalog_doc(path)["coordination"]["plans"]
                    if p["id"] == plan).get("status"))


def count_updates(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = CatalogStore.update

    def update(self: CatalogStore, fn: Any) -> Any:
        calls.append(1)
        return real(self, fn)

    monkeypatch.setattr(CatalogStore, "update", update)
    return calls


def test_sync_completes_the_plan_in_the_same_edit(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
    ])
    svc, sid, st = run_sweep(rt, cat)
    assert st["status"] == "succeeded"
    calls = count_updates(monkeypatch)
    out = svc.sync(sid)
    assert len(calls) == 1  # todos and plan: one atomic edit
    assert sorted(out["completed"]) == ["TODO-001", "TODO-002"]
    assert out["skipped"] == [] and out["failed"] == []
    assert out["plan"] == PLAN and out["plan_completed"] is True
    assert out["plan_status"] == "completed"
    assert plan_of(cat) == "completed"
    doc = plan_status(CatalogStore(cat).load(), PLAN)
    assert doc["complete"] is True and doc["status"] == "completed"
    again = svc.sync(sid)  # nothing left to change
    assert again["plan_completed"] is False and again["plan_status"] == "completed"


def test_sync_writes_skipped_and_leaves_the_plan_active(
    rt: Runtime, tmp_path: Path  # noqa: F811
) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "api", "run": "exit 3", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "run": "true", "blocked_by": ["TODO-002"]},
        {"id": "TODO-004", "repo": "jobs", "run": "true", "blocked_by": ["TODO-003"]},
    ])
    svc, sid, st = run_sweep(rt, cat)
    assert st["status"] == "failed"
    out = svc.sync(sid)
    assert out["completed"] == ["TODO-001"] and out["failed"] == ["TODO-002"]
    assert out["skipped"] == ["TODO-003", "TODO-004"]
    assert out["plan_completed"] is False and out["plan_status"] == "active"
    assert statuses(cat) == {"TODO-001": "completed", "TODO-002": "failed",
                             "TODO-003": "skipped", "TODO-004": "skipped"}
    assert plan_of(cat) == "active"


def test_sync_keeps_a_todo_cancelled_before_it_started_pending_and_a_completed_one(
    rt: Runtime, tmp_path: Path  # noqa: F811
) -> None:
    from tests.unit.support.sweeps import repos_of
    from tests.waiting import wait_for
    from workers.embedded import embedded_workers

    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "sleep 30"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
    ])
    svc = SweepService(rt, cat)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, strategy="levels", ignore_blockers=True)
        wait_for(lambda: svc.status(sid)["todos"]["TODO-001"]["status"] == "running",
                 what="TODO-001 running")
        assert svc.cancel(sid, wait=10)["cancelled"] is True
    st = svc.status(sid)
    assert {v["status"] for v in st["todos"].values()} == {"cancelled"}
    # Meanwhile someone finished TODO-001 by hand: the sync must not undo that.
    from coordination.catalog.manager import CoordinationManager

    CoordinationManager(cat).todos.complete("TODO-001", hours=1)
    out = svc.sync(sid)
    # TODO-002 was cancelled before it started: it never ran, so it stays pending
    assert out["skipped"] == [] and out["completed"] == []
    assert statuses(cat) == {"TODO-001": "completed", "TODO-002": "pending"}
    assert out["plan_completed"] is False and plan_of(cat) == "active"


def test_todo_runs_complete_the_plan_with_the_last_todo(
    rt: Runtime, tmp_path: Path  # noqa: F811
) -> None:
    from workers.embedded import embedded_workers

    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "true"},
    ])
    svc = SweepService(rt, cat)
    with embedded_workers(rt, {"api": 1, "web": 1}):
        first = svc.start_spec(svc.todo_spec("TODO-001"), "TODO-001-s1", kind="todo")
        assert svc.wait(first, timeout=60)["status"] == "succeeded"
        out = svc.sync(first)
        assert out["completed"] == ["TODO-001"] and out["plan_completed"] is False
        assert plan_of(cat) == "active"  # TODO-002 is still pending
        second = svc.start_spec(svc.todo_spec("TODO-002"), "TODO-002-s2", kind="todo")
        assert svc.wait(second, timeout=60)["status"] == "succeeded"
        out = svc.sync(second)
    assert out["completed"] == ["TODO-002"] and out["plan_completed"] is True
    assert plan_of(cat) == "completed"


def test_sync_never_completes_a_cancelled_plan(rt: Runtime, tmp_path: Path) -> None:  # noqa: F811
    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    svc, sid, st = run_sweep(rt, cat)
    assert st["status"] == "succeeded"

    def cancel_plan(doc: Any) -> None:
        doc["coordination"]["plans"][0]["status"] = "cancelled"

    CatalogStore(cat).update(cancel_plan)
    out = svc.sync(sid)
    assert out["completed"] == ["TODO-001"]
    assert out["plan_completed"] is False and out["plan_status"] == "cancelled"
    assert plan_of(cat) == "cancelled"
