"""Levels, critical path and load of a plan DAG.

Levels are topological generations: level k holds the todos whose longest
chain of predecessors has k todos, so every edge goes from a lower level to a
higher one and the levels strategy can run each level as one parallel group.
A todo without ``estimated_hours`` weighs 0 hours (it is listed in
``unestimated`` so the display can say the figures are partial).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

from coordination.errors import PlanError
from coordination.planner.algorithms import critical_path, find_cycles, topological_levels
from coordination.planner.dag import PlanGraph
from coordination.planner.digraph import Unfeasible


class RepoLoadDict(TypedDict):
    todos: int
    hours: float


@dataclass
class RepoLoad:
    todos: int = 0
    hours: float = 0.0

    def to_dict(self) -> RepoLoadDict:
        return {"todos": self.todos, "hours": self.hours}


@dataclass
class Analysis:
    levels: list[list[str]]
    critical_path: list[str]
    critical_hours: float
    total_hours: float
    widths: list[int]
    load_per_repo: dict[str, RepoLoad]
    level_of: dict[str, int] = field(default_factory=dict)
    unestimated: list[str] = field(default_factory=list)

    @property
    def order(self) -> list[str]:
        """A topological order: the levels one after another."""
        return [t for level in self.levels for t in level]

    def load_dicts(self) -> dict[str, RepoLoadDict]:
        """``load_per_repo`` as the plan documents print it."""
        return {r: load.to_dict() for r, load in self.load_per_repo.items()}


def cycle_error(pg: PlanGraph) -> PlanError:
    """A PlanError naming every cycle (up to the bound) with its path."""
    cycles, total = find_cycles(pg.graph)
    shown = "; ".join(" -> ".join([*c, c[0]]) for c in cycles)
    more = f" (and {total - len(cycles)} more)" if total > len(cycles) else ""
    return PlanError(
        f"plan {pg.plan_id} has {total} cycle(s): {shown}{more}",
        hint=f"remove one blocked_by edge of each cycle; `coord plan validate {pg.plan_id}`",
    )


def analyze(pg: PlanGraph) -> Analysis:
    """Levels, critical path, totals; raises PlanError when the graph has a cycle."""
    g = pg.graph
    try:
        levels = topological_levels(g)
    except Unfeasible:
        raise cycle_error(pg) from None
    weight: dict[str, float] = {}
    load: dict[str, RepoLoad] = {}
    unestimated: list[str] = []
    level_of: dict[str, int] = {}
    for i, level in enumerate(levels):
        for tid in level:
            level_of[tid] = i
            todo = g.nodes[tid]["todo"]
            hours = todo.estimated_hours
            if hours is None:
                unestimated.append(tid)
                hours = 0.0
            weight[tid] = float(hours)
            rl = load.setdefault(todo.repo, RepoLoad())
            rl.todos += 1
            rl.hours += float(hours)
    order = [t for level in levels for t in level]
    path, hours = critical_path(g, order, weight)
    return Analysis(
        levels=levels,
        critical_path=path,
        critical_hours=hours,
        total_hours=sum(weight.values()),
        widths=[len(level) for level in levels],
        load_per_repo=dict(sorted(load.items())),
        level_of=level_of,
        unestimated=sorted(unestimated),
    )
