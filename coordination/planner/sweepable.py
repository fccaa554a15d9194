"""The gate before a sweep: a plan is compiled only when nothing stops it.

``prepare_sweep`` is what both ``coord plan sweep --dry-run`` and the real
sweep call, so a dry run fails exactly when the sweep would, with the same
message.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from coordination.catalog.enums import TodoStatus
from coordination.errors import PlanError
from coordination.planner.analysis import Analysis, analyze, cycle_error
from coordination.planner.dag import PlanGraph, build_plan_graph
from coordination.planner.validate import validate_plan

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog


def prepare_sweep(
    catalog: Catalog, plan_id: str, *, ignore_blockers: bool = False, again: bool = False,
    repos: Collection[str] | None = None,
) -> tuple[PlanGraph, Analysis]:
    """The open todos' graph and its analysis, or PlanError saying what stops the sweep;
    with ``again``, every todo of the plan, completed ones too (`plan sweep --again`),
    but a completed todo with no run command (a step done by hand) stays done: it is
    left out, in ``skipped_completed``, as without ``again``.

    Raises NotFoundError for an unknown plan; PlanError for a cycle, for
    todos that cannot run (unknown repo or id, no run command), and for
    unsatisfied blockers unless ``ignore_blockers`` (every blocker is listed).
    ``repos``: only the todos of these repos (a push's scope, :func:`scope_to_repos`);
    the whole plan is validated first, its levels are the kept todos'.
    """
    pg = build_plan_graph(catalog, plan_id, include_completed=again)
    if again:
        by_hand = [t for t in pg.todo_ids if pg.todo(t).status == TodoStatus.completed
                   and not (pg.todo(t).run or "").strip() and pg.todo(t).gate is None]
        pg.graph.remove_nodes_from(by_hand)  # done, so satisfied: their edges go too
        pg.skipped_completed.extend(by_hand)
    findings = validate_plan(catalog, plan_id, pg=pg, ignore_blockers=True, advice=False)
    if any(f.code == "cycle" for f in findings):
        raise cycle_error(pg)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        lines = "\n".join(f"  - {f.message}" for f in errors)
        raise PlanError(
            f"plan {plan_id} cannot run:\n{lines}",
            hint=f"fix the catalog; `coord plan validate {plan_id}` lists every finding",
        )
    if repos is not None:
        scope_to_repos(pg, repos)
    if pg.blockers and not ignore_blockers:
        lines = "\n".join(f"  - {b}" for b in pg.blockers)
        raise PlanError(
            f"plan {plan_id} is blocked by {len(pg.blockers)} unsatisfied blocker(s):\n{lines}",
            hint="complete or resolve them, or pass --ignore-blockers",
        )
    return pg, analyze(pg)


def scope_to_repos(pg: PlanGraph, repos: Collection[str]) -> None:
    """Keep only ``pg``'s todos of ``repos`` (a push trigger's scope: the pushed repo and,
    with a ``...R`` selector, what depends on it); the levels are then the kept todos'.

    A kept todo's predecessor left out is satisfied only when the catalog says it is
    completed (its outputs reach the kept todo as any earlier sweep's do); one that is
    not completed is a PlanError naming each such edge: a scoped sweep never runs a
    todo as if what it waits for had passed, nor runs todos outside its scope. So is
    a scope that keeps no todo. Blockers outside the plan count for the kept todos only."""
    g = pg.graph
    keep = {t for t in g.nodes if pg.todo(t).repo in repos}
    where = ", ".join(sorted(repos))
    if not keep:
        raise PlanError(f"plan {pg.plan_id} has no todo to run in {where}",
                        hint=f"`coord plan sweep {pg.plan_id}` runs the whole plan")
    waiting = [f"{t} ({pg.todo(t).repo}) waits for {p} ({pg.todo(p).repo}), which is "
               f"{pg.todo(p).status.value}" for t in sorted(keep)
               for p in sorted(g.predecessors(t))
               if p not in keep and pg.todo(p).status != TodoStatus.completed]
    if waiting:
        lines = "\n".join(f"  - {w}" for w in waiting)
        raise PlanError(
            f"plan {pg.plan_id} cannot run only its todos in {where}: what they wait for "
            f"outside them is not completed:\n{lines}",
            hint=f"complete those first (`coord plan sweep {pg.plan_id}` runs the whole plan)")
    g.remove_nodes_from([t for t in list(g.nodes) if t not in keep])
    pg.blockers = [b for b in pg.blockers if b.todo_id in keep]
