"""Plan validation: every problem at once, each naming the ids involved.

Errors stop a sweep (and make ``coord plan validate`` exit 1); warnings are
advice. Codes are stable strings scripts can match on:

    error    cycle             a blocked_by cycle, with its full path
    error    cycles-truncated  more tangles than reported
    error    unknown-id        a blocked_by/blocking/milestone id the catalog lacks
    error    unknown-repo      a todo whose repo is not in the catalog
    error    no-run            a todo without a run command (nor a gate:)
    error    gate-with-run     a todo with both gate: and run: (a gate runs nothing)
    error    wave-unplaced     a todo of a plan with waves: that no wave names
    error    wave-order        a todo waits for a todo of a later wave
    error    blocked           a blocker outside the plan is unsatisfied
                               (a warning with ignore_blockers=True)
    warning  redundant-edge    an edge implied by a longer path
    warning  redundancy-skipped the plan is too big for the redundant-edge check
    warning  milestone-other-plan  a todo of this plan sits in another plan's milestone
    warning  empty-plan        nothing left to run
    warning  checkout-outside  a repo's relative checkout path climbs out of the
                               catalog's directory (``../../etc``)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal, TypedDict

from coordination.catalog.models import Catalog
from coordination.planner.algorithms import (
    REDUNDANCY_MAX_NODES,
    find_cycles,
    redundant_edges,
    topological_levels,
)
from coordination.planner.dag import PlanGraph, build_plan_graph
from coordination.planner.digraph import DiGraph, is_directed_acyclic_graph
from coordination.planner.waves import assign, backward_edges, sweep_waves, wave_name

Severity = Literal["error", "warning"]


class FindingDict(TypedDict):
    severity: Severity
    code: str
    message: str
    ids: list[str]


@dataclass(frozen=True)
class Finding:
    severity: Severity
    code: str
    message: str
    ids: list[str] = field(default_factory=list)

    def to_dict(self) -> FindingDict:
        return {"severity": self.severity, "code": self.code, "message": self.message,
                "ids": list(self.ids)}

    def __str__(self) -> str:
        return f"{self.severity}: [{self.code}] {self.message}"


def validate_plan(
    catalog: Catalog,
    plan_id: str,
    *,
    include_completed: bool = False,
    ignore_blockers: bool = False,
    max_cycles: int = 20,
    pg: PlanGraph | None = None,
    advice: bool = True,
) -> list[Finding]:
    """All findings of one plan, errors first; pass ``pg`` to reuse a built graph.

    ``advice=False`` skips the warning-only checks (redundant edges, other
    milestones), which a sweep does not need.
    """
    if pg is None:
        pg = build_plan_graph(catalog, plan_id, include_completed=include_completed)
    out: list[Finding] = []
    g = pg.graph

    cycles, tangles = find_cycles(g, limit=max_cycles) if _has_cycle(g) else ([], 0)
    for c in cycles:
        out.append(Finding("error", "cycle", "cycle: " + " -> ".join([*c, c[0]]), list(c)))
    if tangles > len(cycles):
        out.append(Finding("error", "cycles-truncated",
                           f"{tangles - len(cycles)} more cycle(s) not shown "
                           f"(showing {len(cycles)} of {tangles})"))

    for u in pg.unknown_refs:
        out.append(Finding("error", "unknown-id",
                           f"{u.source}.{u.field} names {u.ref}, which is not in the catalog",
                           [u.source, u.ref]))

    for tid in g.nodes:
        todo = g.nodes[tid]["todo"]
        if catalog.repo(todo.repo) is None:
            out.append(Finding("error", "unknown-repo",
                               f"{tid} runs in repo {todo.repo!r}, which is not in the catalog",
                               [tid]))
        if todo.gate is not None:
            if (todo.run or "").strip():
                out.append(Finding("error", "gate-with-run",
                                   f"{tid} has both gate: and run:; a gate runs nothing "
                                   "(put the command in a todo it blocks)", [tid]))
        elif not (todo.run or "").strip():
            out.append(Finding("error", "no-run",
                               f"{tid} has no run command; add `run:` or complete it by hand",
                               [tid]))

    plan = catalog.plan(plan_id)
    if plan is not None and sweep_waves(plan):  # a per-wave change's: change_of checks them
        wave_of, unplaced = assign(catalog, plan, list(g.nodes))
        for tid in unplaced:
            out.append(Finding("error", "wave-unplaced",
                               f"{tid} (repo {g.nodes[tid]['todo'].repo}) is in no wave of "
                               f"{plan_id}; name its repo or a tag of it in a wave", [tid]))
        for blocker, todo_id in backward_edges(g, wave_of):
            out.append(Finding("error", "wave-order",
                               f"{todo_id} (wave {wave_name(plan, wave_of[todo_id])}) waits for "
                               f"{blocker} of a later wave ({wave_name(plan, wave_of[blocker])}); "
                               "reorder the waves or the edge", [todo_id, blocker]))

    severity: Severity = "warning" if ignore_blockers else "error"
    for b in pg.blockers:
        out.append(Finding(severity, "blocked", str(b), [b.todo_id, b.blocker_id]))

    if advice:
        if not cycles:
            out.extend(_redundancy(pg))
        out.extend(_other_milestones(catalog, pg))
        out.extend(_checkouts_outside(catalog, pg))
        out.extend(_change_fields_outside_a_change(catalog, plan_id, pg))
    if g.number_of_nodes() == 0:
        out.append(Finding("warning", "empty-plan",
                           f"plan {plan_id} has no todo left to run "
                           f"({len(pg.skipped_completed)} completed)"))
    out.sort(key=lambda f: 0 if f.severity == "error" else 1)  # stable: keeps code order
    return out


def _has_cycle(g: DiGraph) -> bool:
    return not is_directed_acyclic_graph(g)


def _redundancy(pg: PlanGraph) -> list[Finding]:
    g = pg.graph
    n = g.number_of_nodes()
    if n > REDUNDANCY_MAX_NODES:
        return [Finding("warning", "redundancy-skipped",
                        f"redundant-edge check skipped: {n} todos (limit {REDUNDANCY_MAX_NODES})")]
    order = [t for level in topological_levels(g) for t in level]
    return [
        Finding("warning", "redundant-edge",
                f"{v} blocked_by {u} is implied by a longer path; the edge can go", [u, v])
        for u, v in redundant_edges(g, order)
    ]


def _other_milestones(catalog: Catalog, pg: PlanGraph) -> list[Finding]:
    nodes = pg.graph.nodes
    out: list[Finding] = []
    for plan in catalog.coordination.plans:
        if plan.id == pg.plan_id:
            continue
        for ms in plan.milestones:
            for tid in ms.todos:
                if tid in nodes:
                    out.append(Finding(
                        "warning", "milestone-other-plan",
                        f"{tid} belongs to {pg.plan_id} but is in milestone {ms.id} of {plan.id}",
                        [tid, ms.id, plan.id]))
    return out


def _checkouts_outside(catalog: Catalog, pg: PlanGraph) -> list[Finding]:
    """Relative checkout paths that leave the catalog's tree: allowed (absolute
    paths are normal), but worth a look, since a typo or a hostile catalog can
    point a todo's shell at any directory."""
    repos = sorted({pg.graph.nodes[t]["todo"].repo for t in pg.graph.nodes})
    out: list[Finding] = []
    for name in repos:
        repo = catalog.repo(name)
        raw = (repo.path if repo is not None else None) or ""
        if not raw or raw.startswith(("/", "~")):
            continue
        norm = os.path.normpath(raw)
        if norm == ".." or norm.startswith(".." + os.sep):
            out.append(Finding(
                "warning", "checkout-outside",
                f"repo {name}: checkout path {raw!r} climbs out of the catalog's directory "
                f"(to {norm}); write it as an absolute path if that is meant", [name]))
    return out


def _change_fields_outside_a_change(catalog: Catalog, plan_id: str,
                                    pg: PlanGraph) -> list[Finding]:
    """``commit:`` and ``verify:`` act only in a change's plan: elsewhere they would be
    ignored without a word."""
    plan = catalog.plan(plan_id)
    if plan is None or plan.change is not None:
        return []
    return [Finding("warning", "not-a-change",
                    f"{tid} has commit:/verify:, which only a change's plan uses: add "
                    f"change: {{branch: NAME}} to {plan_id}, or drop them", [tid])
            for tid in pg.graph.nodes
            if pg.graph.nodes[tid]["todo"].commit or pg.graph.nodes[tid]["todo"].verify]


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]
