"""Rolling a sweep back: which todos to compensate, in which order, and starting it.

A rollback runs the ``undo:`` command of every todo of the sweep that
succeeded, in reverse dependency order: a todo's undo starts only after the
undos of all its succeeded dependents (transitively) ended. It runs through
the same engine as any run of the sweep (leases, checkpoints, events), as the
next run of the sweep with ``mode="rollback"``: its todos end ``compensated``
or ``compensation_failed``, the sweep ``rolled_back`` or ``rollback_failed``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import networkx as nx

from coordination.runtime.checkpoints import Checkpoint
from coordination.runtime.context import Runtime
from coordination.status import SWEEP_ACTIVE, EventKind, SweepStatus, TodoStatus
from coordination.sweeps import recording
from coordination.sweeps.sending import send_level
from coordination.sweeps.spec import SweepSpec, TodoSpec, sweep_deadline
from coordination.sweeps.spec_store import load_spec, signature_fields

log = logging.getLogger("coord.rollback")

#: A sweep running its todos (not rolling back).
RUN_ACTIVE = SWEEP_ACTIVE - {SweepStatus.rolling_back}
#: Sweep statuses a rollback may start from (a run that ended).
ROLLBACK_FROM = frozenset({SweepStatus.succeeded, SweepStatus.failed, SweepStatus.cancelled})


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


def rollback_outcome(spec: SweepSpec, cps: dict[str, Checkpoint]) -> tuple[SweepStatus, str]:
    """rolled_back when every undo of the rollback run succeeded, else rollback_failed."""
    ran = [t for level in spec.levels for t in level]
    bad = [t for t in ran if cps.get(t, {}).get("status") != TodoStatus.compensated]
    if not bad:
        return SweepStatus.rolled_back, f"{len(ran)} todos compensated"
    parts = []
    for t in bad[:5]:
        cp = cps.get(t) or Checkpoint(status=TodoStatus.pending)
        why = cp.get("reason") or ("exit " + str(cp.get("exit_code")))
        parts.append(f"{t} {cp.get('status')} ({why})")
    if len(bad) > 5:
        parts.append(f"and {len(bad) - 5} more not compensated")
    return SweepStatus.rollback_failed, "; ".join(parts)


def start_rollback(rt: Runtime, sweep_id: str, *, reason: str,
                   undo: dict[str, str | None] | None = None,
                   from_active: bool = False) -> RollbackPlan | None:
    """Start the rollback run of an ended sweep; ``from_active``: of an atomic sweep
    whose every todo just ended, one failed.

    Returns its plan, or None when the sweep is not in a state to roll back (another
    caller started it first). Needs no catalog: the undo: commands are in the spec."""
    allowed = RUN_ACTIVE if from_active else ROLLBACK_FROM
    record = rt.checkpoints.get_sweep(sweep_id)
    if record is None or record.get("status") not in allowed:
        return None
    spec = load_spec(rt, sweep_id, record)
    if spec is None or spec.mode != "run":
        return None
    cps = rt.checkpoints.get_all(sweep_id, list(spec.todos))
    plan = rollback_plan(spec, {t: str(cp.get("status")) for t, cp in cps.items()}, undo)
    rb = rollback_spec(spec, plan, undo)
    now = time.time()
    # Checkpoints first, while the sweep is still ended (nothing looks at them), then
    # the status: a supervisor never sees a rolling-back sweep whose todos to
    # compensate still read 'succeeded' (it would call the rollback done).
    # The change's own run stays readable beside its undo's (the web view shows both):
    # the undo writes the todo's checkpoint and output tail anew. (A retry has none.)
    rt.checkpoints.keep_change_runs(sweep_id, {
        t: cps[t] for t in plan.compensate
        if t in cps and cps[t].get("status") == TodoStatus.succeeded},
        {t: spec.todos[t].run for t in plan.compensate})
    rt.checkpoints.reset_todos(sweep_id, plan.compensate, status=TodoStatus.pending,
                               reason=None, finished_at=None, exit_code=None, queued_at=None,
                               token=None, lease_key=None)
    rt.checkpoints.persist_sweep(sweep_id)
    status = SweepStatus.rolling_back if plan.compensate else SweepStatus.rolled_back
    if not rt.checkpoints.set_sweep_status(
        sweep_id, status, allowed_from=allowed,
        run=rb.run, spec=rb.to_json(), **signature_fields(rt, rb),
        finished_at=None if plan.compensate else now, todos=len(rb.todos),
        terminal=len(rb.todos) - len(plan.compensate), full_pass_terminal=None,
        deadline=now + sweep_deadline(rb, rt.settings.sweep_deadline),
        reason=None if plan.compensate else "nothing to compensate",
        rollback_of=SweepStatus.failed if from_active else record.get("status"),
        rollback_reason=reason, not_compensable=plan.not_compensable, **rb.counters(),
    ):
        return None
    rt.events.emit(EventKind.sweep_rolling_back, sweep_id=sweep_id, run=rb.run, reason=reason,
                   compensate=len(plan.compensate), not_compensable=plan.not_compensable)
    if not plan.compensate:
        rt.events.emit(EventKind.sweep_finished, sweep_id=sweep_id, status=str(status),
                       reason="nothing to compensate", run=rb.run)
        recording.keep(rt, sweep_id)
        return plan
    rt.checkpoints.clear_remaining(sweep_id, rb.todos)
    rt.checkpoints.activate(sweep_id)
    send_level(rt, rb, 0, reason="rollback")
    if from_active:
        log.warning("sweep %s: %s; rolling back %s", sweep_id, reason, ", ".join(plan.compensate))
    return plan
