"""Plan status and progress documents (JSON types only): how far a plan has got.

Behind ``coord plan status`` and the progress column of ``coord plan list``, and
the one place that says when a plan is *complete*, so ``sweep sync`` (which
completes plans) and the status document can never disagree.

Catalog data only: no graph library, no runtime.

Rules:

- A plan's todos are :meth:`Catalog.plan_todos` (those naming it in ``plan`` or
  listed in its milestones), as ``todo list --plan`` and the planner see them.
- A plan (or a milestone) is complete when it has at least one todo and every
  one of them is ``completed``. With no todos it is *not* complete: nothing
  shows the work was done, and ``sweep sync`` must not turn a plan that is still
  being written (no todos yet) into a ``completed`` one.
- A milestone is ``done`` when complete, else ``overdue`` when its ``due`` date
  is before ``today`` (a milestone due today is still ``open``), else ``open``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Protocol, TypedDict

from coordination.catalog.rules.checks import unknown
from coordination.catalog.due import iso, overdue
from coordination.catalog.models import (
    Catalog,
    Criterion,
    Milestone,
    Repo,
    Todo,
    TodoStatus,
    criterion_text,
)
from coordination.catalog.selection.templates import TemplateProblem, plan_problems

MILESTONE_STATES = ("done", "open", "overdue")
COMPLETED = TodoStatus.completed.value


class MilestoneStatus(TypedDict):
    id: str
    title: str
    due: str | None  # ISO date
    status: str  # one of MILESTONE_STATES
    todos: list[str]
    completed: int


class RemainingTodo(TypedDict):
    id: str
    status: str
    repo: str
    task: str
    due: str | None  # its due: (ISO, UTC)
    overdue: bool  # due: passed, not completed


class CheckStatus(TypedDict):
    """A checked criterion in ``plan status``: its last result, if it was checked as it
    is written now (``ok`` None: never)."""

    criterion: str
    check: str
    ok: bool | None
    at: str | None
    exit_code: int | None
    reason: str | None


class PlanStatus(TypedDict):
    """``coord plan status --json`` (see :func:`plan_status`)."""

    plan: str
    title: str
    status: str
    complete: bool
    as_of: str  # ISO date
    todos: dict[str, int]  # "total" and every todo status
    milestones: list[MilestoneStatus]
    completion_criteria: list[str]  # their texts (checked or not)
    #: each checked criterion and its last result (``coord plan status --check``)
    checks: list[CheckStatus]
    remaining: list[RemainingTodo]
    #: what keeps the plan from being planned now, one line each (a template whose
    #: for_each selects nothing...): the plan is then not complete, whatever the rest says
    problems: list[str]
    due: str | None  # the plan's due: (ISO, UTC)
    overdue: bool  # its due: passed and it is not complete
    overdue_todos: list[str]  # its todos past their due: and not completed


class Progress(TypedDict):
    completed: int
    total: int


class RepoSource(Protocol):
    """Where :func:`repo_list` reads repos from (a CoordinationManager's ``reads``)."""

    def list_repos(self) -> list[Repo]: ...

    def checkout(self, repo: Repo) -> Path: ...


def _value(status: TodoStatus | str) -> str:
    return str(status.value if isinstance(status, Enum) else status)


def is_complete(statuses: Iterable[TodoStatus | str]) -> bool:
    """True when there is at least one status and every one is ``completed``.

    Takes :class:`TodoStatus` members or their text (``sweep sync`` reads the
    round-trip document, where a missing status means ``pending``).
    """
    seen = False
    for s in statuses:
        if _value(s) != COMPLETED:
            return False
        seen = True
    return seen


def todo_counts(todos: Iterable[Todo]) -> dict[str, int]:
    """``{"total": n, "pending": .., "in_progress": .., "completed": .., ...}``: every
    todo status of the catalog, zeros included, in the schema's order."""
    counts = {"total": 0, **{s.value: 0 for s in TodoStatus}}
    for t in todos:
        counts["total"] += 1
        counts[t.status.value] += 1
    return counts


def progress(todos: Iterable[Todo]) -> Progress:
    """``{"completed": n, "total": m}`` of a plan's todos (``plan list``)."""
    todos = list(todos)
    return {"completed": sum(t.status == TodoStatus.completed for t in todos),
            "total": len(todos)}


def milestone_state(milestone: Milestone, statuses: Iterable[TodoStatus | str],
                    today: dt.date) -> str:
    """``done``, ``overdue`` or ``open`` (see the module's rules)."""
    if is_complete(statuses):
        return "done"
    if milestone.due is not None and milestone.due < today:
        return "overdue"
    return "open"


def check_statuses(criteria: Iterable[str | Criterion],
                   results: Iterable[Mapping[str, object]]) -> list[CheckStatus]:
    """Each checked criterion with its last result (taken with the same text and
    command), from the results kept beside the catalog (:mod:`coordination.catalog.runs.criteria`)."""
    by = {(r.get("criterion"), r.get("check")): r for r in results}
    out: list[CheckStatus] = []
    for c in criteria:
        if isinstance(c, str):
            continue
        r = by.get((c.text, c.check))
        code = None if r is None else r.get("exit_code")
        out.append({"criterion": c.text, "check": c.check,
                    "ok": None if r is None else bool(r.get("ok")),
                    "at": None if r is None else str(r.get("at") or "") or None,
                    "exit_code": code if isinstance(code, int) else None,
                    "reason": None if r is None else str(r.get("reason") or "")})
    return out


def plan_status(catalog: Catalog, plan_id: str, *, today: dt.date | None = None,
                problems: Mapping[str, TemplateProblem] | None = None,
                results: Iterable[Mapping[str, object]] = ()) -> PlanStatus:
    """The ``coord plan status`` document.

    ``{"plan", "title", "status", "complete", "as_of", "todos": {"total", <every todo
    status>}, "milestones": [{"id", "title", "due", "status", "todos", "completed"}],
    "completion_criteria": [...], "checks": [{"criterion", "check", "ok", "at",
    "exit_code", "reason"}], "remaining": [{"id", "status", "repo", "task"}],
    "problems": [...]}``. ``today`` (default: the local date) decides which
    milestones are overdue. ``problems``: what :func:`~coordination.catalog.selection.templates.
    expand` recorded for ``catalog``; the plan's are listed, and it is not complete
    while it has one (a template with no instances counts for nothing done).
    Raises NotFoundError (naming close matches) for an unknown plan.
    """
    plan = catalog.plan(plan_id)
    if plan is None:
        raise unknown(plan_id, [p.id for p in catalog.coordination.plans], "plan")
    today = today or dt.date.today()
    todos = catalog.plan_todos(plan_id)
    milestones: list[MilestoneStatus] = []
    for ms in plan.milestones:
        found = [catalog.todo(tid) for tid in ms.todos]
        statuses: list[TodoStatus | str] = [t.status if t is not None else "missing"
                                            for t in found]
        milestones.append({
            "id": ms.id, "title": ms.title,
            "due": ms.due.isoformat() if ms.due else None,
            "status": milestone_state(ms, statuses, today),
            "todos": list(ms.todos),
            "completed": sum(_value(s) == COMPLETED for s in statuses),
        })
    said = [p.line() for p in plan_problems(problems or {}, plan_id)]
    checks = check_statuses(plan.completion_criteria, results)
    complete = (is_complete(t.status for t in todos) and not said
                and all(c["ok"] for c in checks))
    now = dt.datetime.now(dt.timezone.utc)
    late = {t.id for t in todos if overdue(t.due, t.status == TodoStatus.completed, now)}
    return {
        "plan": plan.id,
        "title": plan.title,
        "status": plan.status.value,
        # every todo completed, and every check passed when it was last run
        "complete": complete,
        "as_of": today.isoformat(),
        "todos": todo_counts(todos),
        "milestones": milestones,
        "completion_criteria": [criterion_text(c) for c in plan.completion_criteria],
        "checks": checks,
        "remaining": [
            {"id": t.id, "status": t.status.value, "repo": t.repo, "task": t.task,
             "due": iso(t.due) if t.due is not None else None, "overdue": t.id in late}
            for t in todos if t.status != TodoStatus.completed
        ],
        "problems": said,
        "due": iso(plan.due) if plan.due is not None else None,
        "overdue": overdue(plan.due, complete, now),
        "overdue_todos": sorted(late),
    }


def repo_list(manager: RepoSource, live: Mapping[str, int] | None,
              breakers: Mapping[str, object] | None = None) -> list[dict[str, object]]:
    """The ``coord repo list`` document: every repo of ``manager``'s catalog (its reads) with its
    ``checkout``, ``workers`` (live workers serving it, from ``live``; None when
    they could not be read) and ``breaker_state`` (from ``breakers``, for repos
    with a breaker whose state could be read; else None). Shared by the CLI and
    the web view."""
    return [
        {**r.model_dump(mode="json"), "checkout": str(manager.checkout(r)),
         "workers": None if live is None else live.get(r.name, 0),
         "breaker_state": (breakers or {}).get(r.name)}
        for r in manager.list_repos()
    ]


__all__ = ["MILESTONE_STATES", "is_complete", "milestone_state", "plan_status", "progress",
           "repo_list", "todo_counts"]
