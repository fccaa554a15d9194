"""CoordinationManager, called as a library (no CLI)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from coordination.catalog.file.store import CatalogStore
from coordination.errors import CatalogError, NotFoundError, UsageError
from coordination.catalog.manager import CoordinationManager

pytestmark = pytest.mark.timeout(60)


def add_dependency(path: Path, consumer: str, provider: str, **validation: Any) -> str:
    """Append a dependency with a validation command straight to the document."""
    def edit(doc: Any) -> str:
        deps = doc["coordination"]["dependencies"]
        new_id = f"DEP-{len(deps) + 101:03d}"
        deps.append({"id": new_id, "consumer": consumer, "provider": provider,
                     "status": "unknown", "validation": dict(validation)})
        return new_id

    return CatalogStore(path).update(edit)


# -- reads ------------------------------------------------------------------------
def test_filters(m: CoordinationManager) -> None:
    assert [i.id for i in m.reads.list_issues(repo="web")] == ["ISSUE-003"]
    assert [i.id for i in m.reads.list_issues(status="resolved")] == ["ISSUE-002"]
    assert [t.id for t in m.reads.list_todos(repo="infra")] == ["TODO-001", "TODO-006"]
    assert [t.id for t in m.reads.list_todos(plan="PLAN-001", assignee="ana")] == ["TODO-002", "TODO-003"]
    assert [d.id for d in m.reads.list_dependencies(provider="libcore")] == ["DEP-001", "DEP-002"]
    assert [p.id for p in m.reads.list_plans(repo="web")] == ["PLAN-001"]
    assert len(m.reads.plan_todos("PLAN-001")) == 5


@pytest.mark.parametrize("call", [
    lambda m: m.reads.get_issue("ISSUE-099"),
    lambda m: m.reads.get_todo("TODO-9"),
    lambda m: m.reads.get_plan("PLAN-002"),
    lambda m: m.reads.list_todos(repo="apii"),
    lambda m: m.reports.repo_status("nope"),
])
def test_unknown_ids_raise_not_found_with_a_hint(m: CoordinationManager, call: Any) -> None:
    with pytest.raises(NotFoundError) as exc:
        call(m)
    assert exc.value.hint


def test_hint_names_the_close_match(m: CoordinationManager) -> None:
    with pytest.raises(NotFoundError, match="unknown repo 'apii'") as exc:
        m.reads.list_todos(repo="apii")
    assert "'api'" in str(exc.value.hint)


def test_bad_enum_values_are_usage_errors(m: CoordinationManager) -> None:
    with pytest.raises(UsageError, match="choose one of"):
        m.reads.list_issues(priority="urgent")


# -- issue edits ------------------------------------------------------------------------
def test_create_issue_takes_next_id_keeps_comments_and_dates(
    m: CoordinationManager, example_catalog: Path
) -> None:
    issue = m.issues.create("Rotate secrets", repos=["api", "infra"], priority="critical",
                            labels=["security"], dependencies=["ISSUE-001"])
    assert issue.id == "ISSUE-004"
    assert issue.created == issue.updated == dt.date.today()
    assert m.reads.get_issue("ISSUE-001").blocking == ["ISSUE-004"]
    text = example_catalog.read_text()
    assert "# checkout, relative to this file" in text
    assert "&id" not in text  # no YAML anchors for the two dates
    # Tidy: empty fields are left out.
    block = text[text.index("id: ISSUE-004"):]
    assert "description" not in block.split("plans:")[0]


def test_update_and_close_issue(m: CoordinationManager) -> None:
    updated = m.issues.update("ISSUE-003", status="in_progress", assignee=None, labels=["a", "b"])
    assert (updated.status.value, updated.assignee, updated.labels) == ("in_progress", None, ["a", "b"])
    assert updated.updated == dt.date.today()
    assert m.issues.close("ISSUE-003").status.value == "closed"


@pytest.mark.parametrize("call,error", [
    (lambda m: m.issues.create("x", repos=["nope"]), NotFoundError),
    (lambda m: m.issues.create("x", priority="urgent"), UsageError),
    (lambda m: m.issues.create("  "), UsageError),
    (lambda m: m.issues.update("ISSUE-042", status="open"), NotFoundError),
    (lambda m: m.issues.update("ISSUE-001", status="done"), UsageError),
    (lambda m: m.issues.update("ISSUE-001", id="ISSUE-9"), UsageError),
    (lambda m: m.todos.create("x", "nope"), NotFoundError),
    (lambda m: m.todos.create("x", "api", blocked_by=["TODO-404"]), NotFoundError),
    (lambda m: m.todos.create("x", "api", blocked_by=["TASK-1"]), UsageError),
    (lambda m: m.todos.create("x", "api", plan="PLAN-9"), NotFoundError),
    (lambda m: m.todos.complete("TODO-404"), NotFoundError),
    (lambda m: m.todos.complete("TODO-002", hours=-1), UsageError),
])
def test_bad_edits_write_nothing(
    m: CoordinationManager, example_catalog: Path, call: Any, error: type[Exception]
) -> None:
    before = example_catalog.read_bytes()
    with pytest.raises(error):
        call(m)
    assert example_catalog.read_bytes() == before


# -- todo edits -------------------------------------------------------------------------
def test_create_todo_writes_both_sides_of_blocked_by(m: CoordinationManager) -> None:
    todo = m.todos.create("Bump client", "web", run="make client", plan="PLAN-001",
                          blocked_by=["TODO-005", "ISSUE-003", "TODO-003"], estimate=2.5,
                          criteria=["client builds", "tests pass"])
    assert todo.id == "TODO-007"
    assert todo.blocked_by == ["TODO-005", "ISSUE-003", "TODO-003"]
    assert todo.acceptance_criteria == ["client builds", "tests pass"]
    assert m.reads.get_todo("TODO-005").blocking == ["TODO-007"]  # list created
    assert m.reads.get_todo("TODO-003").blocking == ["TODO-005", "TODO-006", "TODO-007"]  # appended
    assert todo in m.reads.plan_todos("PLAN-001")


def test_complete_todo_records_hours(m: CoordinationManager) -> None:
    done = m.todos.complete("TODO-002", hours=6.5).todo
    assert (done.status.value, done.actual_hours) == ("completed", 6.5)


def test_missing_sections_are_created(tmp_path: Path) -> None:
    path = tmp_path / "ecosystem.yaml"
    path.write_text("version: 1\n# the team's repos\nrepos:\n  - name: api\n")
    m = CoordinationManager(path)
    assert m.todos.create("first", "api").id == "TODO-001"
    assert m.issues.create("first", repos=["api"]).id == "ISSUE-001"
    assert "# the team's repos" in path.read_text()


# -- dependencies -----------------------------------------------------------------------
def test_check_dependencies_records_results_in_one_update(
    m: CoordinationManager, example_catalog: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = add_dependency(example_catalog, "web", "libcore", command="exit 4")
    slow = add_dependency(example_catalog, "jobs", "api", command="sleep 5", timeout=0.5)
    updates: list[Any] = []
    real = CatalogStore.update
    monkeypatch.setattr(CatalogStore, "update", lambda self, fn: updates.append(fn) or real(self, fn))
    start = time.monotonic()
    results = {r.id: r for r in m.dependencies.check()}
    assert time.monotonic() - start < 4
    assert len(updates) == 1
    assert results["DEP-001"].status == "satisfied"
    assert results[failing].status == "unsatisfied" and results[failing].exit_code == 4
    assert results[slow].status == "unsatisfied" and "timed out" in results[slow].reason
    assert results["DEP-003"].status == "skipped"
    assert (results["DEP-001"].consumer, results["DEP-001"].provider) == ("api", "libcore")
    deps = {d.id: d.status.value for d in m.reads.list_dependencies()}
    assert deps == {"DEP-001": "satisfied", "DEP-002": "satisfied", "DEP-003": "unknown",
                    failing: "unsatisfied", slow: "unsatisfied"}


def test_check_dependencies_missing_checkout(m: CoordinationManager, example_catalog: Path) -> None:
    (example_catalog.parent / "repos" / "api").rmdir()
    [r] = [r for r in m.dependencies.check(consumer="api")]
    assert r.status == "unsatisfied" and "repos/api" in r.reason
    assert m.reads.list_dependencies(consumer="api")[0].status.value == "unsatisfied"


def test_check_without_changes_does_not_write(m: CoordinationManager, example_catalog: Path) -> None:
    m.dependencies.check()
    before = example_catalog.read_bytes()
    m.dependencies.check()
    assert example_catalog.read_bytes() == before


# -- repos ------------------------------------------------------------------------------
def test_repo_status(m: CoordinationManager, example_catalog: Path) -> None:
    s = m.reports.repo_status("api")
    assert s["checkout"] == str(example_catalog.parent / "repos" / "api")
    assert s["checkout_exists"] is True
    assert [i["id"] for i in s["open_issues"]] == ["ISSUE-001", "ISSUE-003"]
    assert s["todos"] == {"pending": ["TODO-003"]}
    assert [d["id"] for d in s["consumes"]] == ["DEP-001"]
    assert [d["id"] for d in s["provides"]] == ["DEP-003"]


def test_blocking_gives_reasons(m: CoordinationManager) -> None:
    web = {b["id"]: b for b in m.reports.blocking("web")}
    assert set(web) == {"DEP-003", "TODO-005"}
    assert web["TODO-005"]["waits_on"] == ["TODO-003"]
    assert "unknown" in web["DEP-003"]["reason"]
    m.issues.create("later", repos=["jobs"], dependencies=["ISSUE-001"])
    jobs = {b["id"]: b for b in m.reports.blocking("jobs")}
    assert jobs["ISSUE-004"]["waits_on"] == ["ISSUE-001"]
    assert jobs["TODO-004"]["reason"] == "TODO-004 (pending) waits on TODO-002 (pending)"
    assert "DEP-002" not in jobs  # satisfied


def test_store_validation_still_guards_edits(m: CoordinationManager, example_catalog: Path) -> None:
    before = example_catalog.read_bytes()
    with pytest.raises(CatalogError):
        m.todos.create("x", "api", timeout=-1)
    assert example_catalog.read_bytes() == before
