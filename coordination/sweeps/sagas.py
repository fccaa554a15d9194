"""Rolling a sweep back: which todos to compensate, in which order (pure).

A rollback runs the ``undo:`` command of every todo of the sweep that
succeeded, in reverse dependency order: a todo's undo starts only after the
undos of all its succeeded dependents (transitively) ended. It runs through
the same engine as any run of the sweep (leases, checkpoints, events), as the
next run of the sweep with ``mode="rollback"``: its todos end ``compensated``
or ``compensation_failed``, the sweep ``rolled_back`` or ``rollback_failed``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import networkx as nx

from coordination.status import TodoStatus
from coordination.sweeps.spec import SweepSpec, TodoSpec


@dataclass(frozen=True)
class RollbackPlan:
    compensate: list[str]  # todos whose undo runs
    levels: list[list[str]]  # ... in this order (each level after the one before)
    not_compensable: list[str]  # succeeded, but with no undo: command
    preds: dict[str, list[str]]  # todo -> the undos that must end before its own

    def to_dict(self) -> dict[str, object]:
        return {"compensate": self.compensate, "levels": self.levels,
                "not_compensable": self.not_compensable}


def rollback_plan(spec: SweepSpec, statuses: dict[str, str],
                  undo: dict[str, str | None] | None = None) -> RollbackPlan:
    """What a rollback of a sweep in ``statuses`` would run. ``undo`` overrides the
    undo commands frozen in the spec (a spec recorded before they were frozen)."""
    undo_of = {t: (undo or {}).get(t, spec.todos[t].undo) for t in spec.todos}
    succeeded = [t for t in spec.todos if statuses.get(t) == TodoStatus.succeeded]
    compensate = sorted(t for t in succeeded if undo_of[t])
    chosen = set(compensate)
    preds = {t: sorted(d for d in spec.descendants(t) if d in chosen) for t in compensate}
    g = nx.DiGraph()
    g.add_nodes_from(compensate)
    for t, before in preds.items():
        g.add_edges_from((d, t) for d in before)
    levels = [sorted(level) for level in nx.topological_generations(g)]
    return RollbackPlan(compensate, levels,
                        sorted(t for t in succeeded if not undo_of[t]), preds)


def rollback_spec(spec: SweepSpec, plan: RollbackPlan,
                  undo: dict[str, str | None] | None = None) -> SweepSpec:
    """The next run of ``spec``: every todo listed (for status), the compensated ones
    with their undo: command, the reversed order as edges and levels."""
    succs: dict[str, list[str]] = {t: [] for t in plan.compensate}
    for t, before in plan.preds.items():
        for d in before:
            succs[d].append(t)
    level_of = {t: i for i, level in enumerate(plan.levels) for t in level}
    todos: dict[str, TodoSpec] = {}
    for t, ts in spec.todos.items():
        if t in level_of:
            command = (undo or {}).get(t, ts.undo) or ""
            todos[t] = replace(ts, run=command, preds=list(plan.preds[t]),
                               succs=sorted(succs[t]), level=level_of[t])
        else:
            todos[t] = replace(ts, preds=[], succs=[])
    return replace(spec, run=spec.run + 1, todos=todos, levels=plan.levels,
                   strategy="levels", mode="rollback")
