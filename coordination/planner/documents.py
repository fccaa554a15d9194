"""Plain-data documents behind the plan commands (JSON types only).

The CLI prints these as JSON or renders them for people; keeping them here
means scripts and tests get the same data without going through click.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NotRequired, TypedDict

from coordination.catalog.selection.templates import (
    TemplateDoc,
    TemplateProblem,
    plan_problems,
    plan_templates,
)
from coordination.errors import PlanError
from coordination.jsonable import JSONObject
from coordination.keys import Keys
from coordination.planner.analysis import Analysis, RepoLoadDict, analyze
from coordination.planner.dag import BlockerDict, build_plan_graph, require_plan
from coordination.planner.estimate import StrategyEstimate, strategy_estimate
from coordination.planner.ranking import ranks, start_order
from coordination.planner.sequence import sequential_order
from coordination.planner.sweepable import prepare_sweep
from coordination.planner.validate import Finding, FindingDict, sweep_advice, validate_plan
from coordination.planner.waves import assign, sweep_waves, wave_name

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog


class ShownTodo(TypedDict):
    id: str
    task: str
    repo: str
    status: str
    estimated_hours: float | None
    level: int | None
    critical: bool
    blocked_by: list[str]


class ShowDocument(TypedDict):
    """``coord plan show --json``; the analysis' figures (None levels and critical
    path when the graph has a cycle, which ``problem`` names)."""

    plan: JSONObject
    milestones: list[JSONObject]
    todos: list[ShownTodo]
    skipped: list[str]
    blockers: list[BlockerDict]
    problem: str | None
    levels: list[list[str]] | None
    critical_path: list[str] | None
    critical_hours: float
    total_hours: float
    widths: list[int]
    load_per_repo: dict[str, RepoLoadDict]
    unestimated: list[str]


class DryRunDocument(TypedDict):
    """``coord plan sweep --dry-run --json``: what a sweep would enqueue."""

    plan: str
    strategy: str
    again: bool  # every todo of the plan, completed ones too (--again): skipped is empty
    levels: list[list[str]]
    queues: dict[str, str]
    critical_path: list[str]
    critical_hours: float
    total_hours: float
    widths: list[int]
    load_per_repo: dict[str, RepoLoadDict]
    blockers: list[BlockerDict]
    skipped: list[str]
    start_order: dict[str, list[str]]
    priority: dict[str, str]
    remaining_hours: dict[str, float]
    todos: int
    enqueued: int
    strategy_estimate: StrategyEstimate
    waves: NotRequired[list[WaveDoc]]  # a plan with waves: each wave's todos, in order
    # a plan with templates (for_each): each one's selected repos and instances
    templates: NotRequired[list[TemplateDoc]]
    # what the sweep would run into that `plan validate` warns about too (verify todos
    # that can start before the change's commits, {repo} in a command); none: left out
    warnings: NotRequired[list[FindingDict]]
    # `--sequential`: the levels are one todo each, in the order they would run
    sequential: NotRequired[bool]


class WaveDoc(TypedDict):
    """One wave of a dry run: the todos it would hold and its settings."""

    name: str
    todos: list[str]
    max_parallel: int
    soak: float
    success_rate: float


class ValidateDocument(TypedDict):
    """``coord plan validate --json``."""

    plan: str
    ok: bool
    errors: int
    warnings: int
    findings: list[FindingDict]


def show_document(catalog: Catalog, plan_id: str, *,
                  include_completed: bool = False) -> ShowDocument:
    """The plan, its milestones and todos, and (when acyclic) levels and critical path."""
    require_plan(catalog, plan_id)
    plan = catalog.plan(plan_id)
    assert plan is not None
    pg = build_plan_graph(catalog, plan_id, include_completed=include_completed)
    analysis: Analysis | None
    problem: str | None = None
    try:
        analysis = analyze(pg)
    except PlanError as exc:
        analysis, problem = None, exc.message
    level_of = analysis.level_of if analysis else {}
    crit = set(analysis.critical_path) if analysis else set()
    todos: list[ShownTodo] = [
        {"id": t.id, "task": t.task, "repo": t.repo, "status": t.status.value,
         "estimated_hours": t.estimated_hours, "level": level_of.get(t.id),
         "critical": t.id in crit,
         "blocked_by": sorted(pg.graph.predecessors(t.id)) if t.id in pg.graph else []}
        for t in catalog.plan_todos(plan_id)
    ]
    figures = analysis or Analysis([], [], 0.0, 0.0, [], {})
    return {
        "plan": plan.model_dump(mode="json", exclude={"milestones"}),
        "milestones": [m.model_dump(mode="json") for m in plan.milestones],
        "todos": todos,
        "skipped": pg.skipped_completed,
        "blockers": [b.to_dict() for b in pg.blockers],
        "problem": problem,
        "levels": figures.levels if analysis is not None else None,
        "critical_path": figures.critical_path if analysis is not None else None,
        "critical_hours": figures.critical_hours,
        "total_hours": figures.total_hours,
        "widths": figures.widths,
        "load_per_repo": figures.load_dicts(),
        "unestimated": figures.unestimated,
    }


def dry_run_document(catalog: Catalog, plan_id: str, *, strategy: str = "levels",
                     ignore_blockers: bool = False, keys: Keys | None = None,
                     again: bool = False,
                     p50_seconds: Mapping[str, float | None] | None = None,
                     written: Catalog | None = None,
                     sequential: bool = False) -> DryRunDocument:
    """What a sweep would enqueue; raises exactly as the sweep would (cycle, blocked).
    ``again``: as `plan sweep --again` (completed todos too). ``p50_seconds``: todo ->
    the p50 of its recorded runs, for the strategy estimate of todos with no
    ``estimated_hours`` (:mod:`coordination.planner.estimate`). ``written``: the
    catalog as written when ``catalog`` is its expansion
    (:func:`coordination.catalog.selection.templates.load_planned`): each template of the plan
    and what its instances get is added. ``sequential``: as `plan sweep --sequential`,
    one todo per level in the order they would run (:mod:`.sequence`)."""
    keys = keys or Keys()
    pg, analysis = prepare_sweep(catalog, plan_id, ignore_blockers=ignore_blockers,
                                 again=again)
    nodes = pg.graph.nodes
    rank = ranks(pg.graph, lambda t: nodes[t]["todo"])
    levels = analysis.levels
    if sequential:
        levels = [[t] for t in sequential_order(
            analysis.order, {t: list(pg.graph.predecessors(t)) for t in analysis.order},
            key=lambda t: (rank[t][0], t))]
    doc: DryRunDocument = {
        "plan": plan_id,
        "strategy": strategy,
        "again": again,
        "levels": levels,
        "queues": {tid: keys.repo_queue(nodes[tid]["todo"].repo) for tid in analysis.order},
        "critical_path": analysis.critical_path,
        "critical_hours": analysis.critical_hours,
        "total_hours": analysis.total_hours,
        "widths": analysis.widths,
        "load_per_repo": analysis.load_dicts(),
        "blockers": [b.to_dict() for b in pg.blockers],
        "skipped": pg.skipped_completed,
        # Contended slots: each repo's todos in the order they start when all wait.
        "start_order": start_order({t: r[0] for t, r in rank.items()},
                                   {t: nodes[t]["todo"].repo for t in rank}),
        "priority": {t: str(getattr(nodes[t]["todo"].priority, "value", nodes[t]["todo"].priority))
                     for t in analysis.order},
        "remaining_hours": {t: rank[t][1] for t in analysis.order},
        "todos": pg.graph.number_of_nodes(),
        "enqueued": 0,
        "strategy_estimate": strategy_estimate(
            pg.graph, levels,
            {t: nodes[t]["todo"].estimated_hours for t in analysis.order}, p50_seconds or {}),
    }
    plan = catalog.plan(plan_id)
    if plan is not None and sweep_waves(plan):
        wave_of, _ = assign(catalog, plan, list(nodes))
        doc["waves"] = [{"name": wave_name(plan, i),
                         "todos": sorted(t for t, k in wave_of.items() if k == i),
                         "max_parallel": w.max_parallel, "soak": w.soak,
                         "success_rate": w.require.success_rate}
                        for i, w in enumerate(plan.waves)]
    if written is not None and written is not catalog:
        doc["templates"] = plan_templates(written, catalog, plan_id)
    advice = sweep_advice(catalog, plan_id, pg, written=written)
    if advice:
        doc["warnings"] = [f.to_dict() for f in advice]
    if sequential:
        doc["sequential"] = True
    return doc


def validate_document(catalog: Catalog, plan_id: str, *, include_completed: bool = False,
                      ignore_blockers: bool = False, written: Catalog | None = None,
                      problems: Mapping[str, TemplateProblem] | None = None,
                      cycles: Sequence[str] = ()) -> ValidateDocument:
    """``coord plan validate --json``: ``{"plan", "ok", "errors", "warnings", "findings"}``;
    ``ok`` is false when a finding is an error (warnings do not count). ``written``:
    the catalog as written when ``catalog`` is its expansion (advice is given about
    what the catalog says, not what the expansion made of it). ``problems``: what the
    expansion could not expand (:func:`~coordination.catalog.selection.templates.expand`): the
    plan's are errors (code ``template``, ``dependency-cycle`` for a cycle refused by
    ``cycles: error``), found before the rest. ``cycles``: the cycle groups of the plan's
    ``deps: follow`` templates (``TODO-010 (deps: follow): dependency cycle among ...``),
    each a ``dependency-cycle`` warning, as the sweep's dry run shows them."""
    require_plan(catalog, plan_id)
    findings = [Finding("error", p.code, p.line(), [p.todo])
                for p in plan_problems(problems or {}, plan_id)]
    findings += validate_plan(catalog, plan_id, include_completed=include_completed,
                              ignore_blockers=ignore_blockers, written=written)
    findings += [Finding("warning", "dependency-cycle", w, [w.split(" ", 1)[0]])
                 for w in cycles]
    n_err = sum(f.severity == "error" for f in findings)
    return {"plan": plan_id, "ok": n_err == 0, "errors": n_err,
            "warnings": len(findings) - n_err, "findings": [f.to_dict() for f in findings]}
