"""The ``op`` every manager edit writes into the audit log, pinned: users' logs, their
queries over them and `coord audit` name edits by these strings, so a rename of the
library's methods must not rename an entry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coordination.catalog.audit import log as audit
from coordination.catalog.manager import CoordinationManager

pytestmark = pytest.mark.timeout(60)

#: Every ``op`` a CoordinationManager edit writes (the sweep's sync, a gate's decision,
#: a hand edit and `audit --verify` write their own, pinned beside them).
OPS = frozenset({
    "create_issue", "update_issue", "close_issue", "delete_issue", "link_issue", "mirror_issue",
    "create_todo", "update_todo", "complete_todo", "delete_todo",
    "create_plan", "update_plan", "delete_plan", "reset_plan",
    "add_milestone", "update_milestone", "delete_milestone",
    "add_dependency", "update_dependency", "remove_dependency", "check_dependencies",
    "add_repo", "update_repo", "remove_repo", "apply_fleet",
    "add_notify", "remove_notify",
})

#: One edit of each kind, in an order in which each is valid on the example catalog.
EDITS: list[tuple[str, Callable[[CoordinationManager], Any]]] = [
    ("create_issue", lambda m: m.issues.create("New one", repos=["api"])),
    ("update_issue", lambda m: m.issues.update("ISSUE-003", priority="high")),
    ("close_issue", lambda m: m.issues.close("ISSUE-001")),
    ("link_issue", lambda m: m.issues.link("ISSUE-003", "https://github.com/acme/api/issues/3")),
    ("mirror_issue", lambda m: m.issues.mirror("ISSUE-003", "https://github.com/acme/api/issues/3",
                                               title="Renamed on the forge")),
    ("delete_issue", lambda m: m.issues.delete("ISSUE-004")),
    ("create_todo", lambda m: m.todos.create("Bump", "api")),
    ("update_todo", lambda m: m.todos.update("TODO-002", assignee="dan")),
    ("complete_todo", lambda m: m.todos.complete("TODO-006", hours=2.5)),
    ("delete_todo", lambda m: m.todos.delete("TODO-007")),
    ("create_plan", lambda m: m.plans.create("Another")),
    ("update_plan", lambda m: m.plans.update("PLAN-002", description="why")),
    ("add_milestone", lambda m: m.milestones.add("PLAN-002", "first")),
    ("update_milestone", lambda m: m.milestones.update("MS-002", title="first, renamed")),
    ("delete_milestone", lambda m: m.milestones.delete("MS-002")),
    ("delete_plan", lambda m: m.plans.delete("PLAN-002")),
    ("reset_plan", lambda m: m.plans.reset("PLAN-001")),
    ("add_repo", lambda m: m.repos.add("extra")),
    ("update_repo", lambda m: m.repos.update("extra", description="more")),
    ("add_dependency", lambda m: m.dependencies.add("extra", "libcore")),
    ("update_dependency", lambda m: m.dependencies.update("DEP-004", notes="why")),
    ("remove_dependency", lambda m: m.dependencies.remove("DEP-004")),
    ("check_dependencies", lambda m: m.dependencies.check(consumer="api")),
    ("remove_repo", lambda m: m.repos.remove("extra")),
    ("apply_fleet", lambda m: m.fleet.apply({"tags": {"api": ["python"]}})),
    ("add_notify", lambda m: m.notify.add("https://hooks.example.com/coord")),
    ("remove_notify", lambda m: m.notify.remove("https://hooks.example.com/coord")),
]


def test_the_table_covers_every_pinned_name() -> None:
    assert sorted(op for op, _ in EDITS) == sorted(OPS)


def test_each_edit_writes_its_pinned_name(mgr: CoordinationManager, example_catalog: Path) -> None:
    log = audit.log_path(example_catalog)
    for op, edit in EDITS:
        before = len(audit.read(log)) if log.exists() else 0
        edit(mgr)
        got = audit.read(log)
        assert [e["op"] for e in got[before:]] == [op], op
    assert audit.verify(log) == (len(EDITS), None)


def test_the_parts_name_no_other_entry(example_catalog: Path) -> None:
    """Every audited method of the manager's parts names one of the pinned entries, and
    every pinned entry is some method's: a new edit adds its name here on purpose."""
    manager = CoordinationManager(example_catalog)
    named = {getattr(getattr(part, attr), "audit_op", None): f"{name}.{attr}"
             for name, part in vars(manager).items() for attr in dir(part)
             if not attr.startswith("_")}
    named.pop(None, None)
    assert set(named) == OPS, named


def test_a_todo_edit_returns_the_milestones_it_moved(mgr: CoordinationManager) -> None:
    """Completing a milestone's last open todo says so in what the edit returns (the CLI
    and the MCP server announce it from there), and reopening it says that."""
    ms = mgr.milestones.add("PLAN-001", "the last one", todos=["TODO-006"])
    done = mgr.todos.complete("TODO-006")
    assert done.todo.status.value == "completed"
    assert [c["milestone"] for c in done.completed] == [ms.id] and done.reopened == []
    again = mgr.todos.update("TODO-006", status="pending")
    assert [c["milestone"] for c in again.reopened] == [ms.id] and again.completed == []
    other = mgr.todos.update("TODO-006", assignee="dan")
    assert (other.completed, other.reopened) == ([], [])
