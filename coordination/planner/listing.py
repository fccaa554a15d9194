"""Plan rows for ``coord plan list``: catalog data only, no graph library.

Kept apart from the graph modules so listing plans never imports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

from coordination.catalog.models import Catalog
from coordination.catalog.reads.reports import Progress, progress
from coordination.catalog.selection.templates import TemplateProblem, plan_problems


class PlanRow(TypedDict):
    """One plan of ``coord plan list --json``."""

    id: str
    title: str
    status: str
    repos: list[str]
    milestones: int
    todos: int
    completed: int
    progress: Progress
    #: what keeps the plan from being planned now (a template whose for_each selects
    #: nothing...), one line each; its other todos are counted as usual
    problems: list[str]


def list_plans(catalog: Catalog, *, status: str | None = None, repo: str | None = None,
               problems: Mapping[str, TemplateProblem] | None = None) -> list[PlanRow]:
    """One row per plan; ``repo`` matches the plan's repos or any of its todos' repos.

    ``progress`` is ``{"completed": n, "total": m}`` of the plan's todos (as
    ``coord plan status`` counts them); ``todos`` and ``completed`` repeat it for
    scripts written before 0.2. ``problems``: those :func:`~coordination.catalog.
    templates.expand` recorded for ``catalog``, each said in its plans' rows (one
    plan's problem never hides the others).
    """
    rows: list[PlanRow] = []
    for plan in catalog.coordination.plans:
        if status and plan.status.value != status:
            continue
        todos = catalog.plan_todos(plan.id)
        repos = sorted(set(plan.repos) | {t.repo for t in todos})
        if repo and repo not in repos:
            continue
        prog = progress(todos)
        rows.append({
            "id": plan.id, "title": plan.title, "status": plan.status.value,
            "repos": repos, "milestones": len(plan.milestones), "todos": len(todos),
            "completed": prog["completed"], "progress": prog,
            "problems": [x.line() for x in plan_problems(problems or {}, plan.id)],
        })
    return rows
