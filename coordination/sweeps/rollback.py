"""Rolling a sweep back: which todos to compensate, in which order, and starting it.

A rollback runs the ``undo:`` command of every todo of the sweep that
succeeded, in reverse dependency order: a todo's undo starts only after the
undos of all its succeeded dependents (transitively) ended. It runs through
the same engine as any run of the sweep (leases, checkpoints, events), as the
next run of the sweep with ``mode="rollback"``: its todos end ``compensated``
or ``compensation_failed``, the sweep ``rolled_back`` or ``rollback_failed``.

A rollback that did not finish (``rollback_failed``, or cancelled) is finished
by another rollback run that retries exactly the undos of the last one that did
not end ``compensated`` (failed, skipped after a failure, cancelled), in the same
reverse order (:func:`retry_plan`).

Why a sweep rolls back (its *trigger*: "after TODO-018 failed: exit 1", "by
user") is kept in its record's ``rollback_reason``; the reason it ends with
names it first ("rolled back after TODO-018 failed: exit 1; 6 todos compensated").
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, replace

from coordination.planner.digraph import DiGraph, topological_generations
from coordination.runtime.context import Runtime
from coordination.runtime.sweep_fields import Checkpoint
from coordination.status import SWEEP_ACTIVE, EventKind, SweepStatus, TodoStatus
from coordination.sweeps import recording
from coordination.sweeps.sending import send_level
from coordination.sweeps.spec import Mode, Strategy, SweepSpec, TodoSpec, forward_of
from coordination.sweeps.spec_store import derivable_spec, run_record

log = logging.getLogger("coord.rollback")

#: A sweep running its todos (not rolling back).
RUN_ACTIVE = SWEEP_ACTIVE - {SweepStatus.rolling_back}
#: Sweep statuses a rollback may start from (a run that ended).
ROLLBACK_FROM = frozenset({SweepStatus.succeeded, SweepStatus.failed, SweepStatus.cancelled})
#: Statuses of a rollback run that did not finish: another one retries what it left.
RETRY_FROM = frozenset({SweepStatus.rollback_failed, SweepStatus.cancelled})


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
    g = DiGraph()
    g.add_nodes_from(compensate)
    for t, before in preds.items():
        g.add_edges_from((d, t) for d in before)
    levels = [sorted(level) for level in topological_generations(g)]
    # (a gate that passed changed nothing: nothing of it to undo, nor to report)
    return RollbackPlan(compensate, levels,
                        sorted(t for t in succeeded if not undo_of[t] and not spec.todos[t].gate),
                        preds)


def retry_plan(spec: SweepSpec, statuses: dict[str, str]) -> RollbackPlan:
    """What a rollback of a rollback that did not finish runs: the undos of ``spec``
    (the last rollback run's spec) that did not end compensated, in the same order
    (a todo's undo after the undos still left of everything that depends on it)."""
    ran = [t for level in spec.levels for t in level]
    left = sorted(t for t in ran if statuses.get(t) != TodoStatus.compensated)
    chosen = set(left)
    # a rollback spec's preds are every compensated descendant (transitively), so
    # keeping those still left keeps the order among them
    preds = {t: sorted(d for d in spec.todos[t].preds if d in chosen) for t in left}
    g = DiGraph()
    g.add_nodes_from(left)
    for t, before in preds.items():
        g.add_edges_from((d, t) for d in before)
    levels = [sorted(level) for level in topological_generations(g)]
    return RollbackPlan(left, levels, [], preds)


def failed_first(cps: dict[str, Checkpoint]) -> str | None:
    """The first todo that failed (by when it ended) and why: "TODO-018 failed: exit 1"
    ("and N more failed" after it); None if none failed."""
    failed = [t for t, cp in cps.items() if cp.get("status") == TodoStatus.failed]
    if not failed:
        return None
    failed.sort(key=lambda t: (float(str(cps[t].get("finished_at") or 0)), t))
    text = failed_text(failed[0], cps[failed[0]])
    if len(failed) > 1:
        text += f" (and {len(failed) - 1} more failed)"
    return text


def failed_text(todo_id: str, cp: Checkpoint) -> str:
    """"TODO-018 failed: exit 1": a failed todo and why."""
    why = cp.get("reason") or (f"exit {cp.get('exit_code')}" if cp.get("exit_code") is not None
                               else "no reason recorded")
    return f"{todo_id} failed: {why}"


def user_trigger(status: object, cps: dict[str, Checkpoint]) -> str:
    """Why a rollback a user asked for runs, for its reason: "by user after TODO-018
    failed: exit 1", "by user (it had succeeded)"."""
    first = failed_first(cps) if status == SweepStatus.failed else None
    if first:
        return f"by user after {first}"
    if status == SweepStatus.succeeded:
        return "by user (it had succeeded)"
    if status == SweepStatus.cancelled:
        return "by user (it was cancelled)"
    return "by user"


def rollback_spec(spec: SweepSpec, plan: RollbackPlan,
                  undo: dict[str, str | None] | None = None) -> SweepSpec:
    """The next run of ``spec``: every todo listed (for status), the compensated ones
    with their undo: command, the reversed order as edges and levels; the run that
    applied the change kept beside them (``forward``), for a resume to apply it again."""
    succs: dict[str, list[str]] = {t: [] for t in plan.compensate}
    for t, before in plan.preds.items():
        for d in before:
            succs[d].append(t)
    level_of = {t: i for i, level in enumerate(plan.levels) for t in level}
    todos: dict[str, TodoSpec] = {}
    for t, ts in spec.todos.items():
        if t in level_of:
            # (a rollback's spec runs the undo: its run is the undo, even from 0.1)
            command = ((undo or {}).get(t) or ts.undo
                       or (ts.run if spec.mode == Mode.rollback else "") or "")
            todos[t] = replace(ts, run=command, preds=list(plan.preds[t]),
                               succs=sorted(succs[t]), level=level_of[t])
        else:
            todos[t] = replace(ts, preds=[], succs=[])
    # (undos run in reverse order, all at once: no wave holds them back; a gate has no
    # undo, so it is not in the rollback's levels and nothing opens it)
    return replace(spec, run=spec.run + 1, todos=todos, levels=plan.levels,
                   strategy=Strategy.levels, mode=Mode.rollback, waves=[],
                   forward=forward_of(spec, plan.compensate),
                   dispatched=spec.next_dispatched(spec.run + 1, plan.levels))


#: "TODO-018 failed: exit 1" (and a count of more failures after it), in a trigger.
_FAILED = re.compile(r"(\S+ failed): (.*?)( \(and \d+ more failed\))?$")


def trigger_phrase(trigger: str) -> str:
    """A rollback's trigger as the last line of a waiting command says it: "after
    TODO-018 failed: exit 1" -> "TODO-018 failed (exit 1)"; "by user ..." as it is."""
    return _FAILED.sub(r"\1 (\2)\3", trigger.removeprefix("after "))


def ending(status: str, reason: str | None, trigger: str | None) -> str | None:
    """The last line a waiting command prints of a sweep that rolled back, naming the
    outcome and its trigger: "rolled back: TODO-015 failed (exit 1)", "rollback failed:
    TODO-003 compensation_failed (exit 1); it rolled back after TODO-015 failed (exit
    1)". None for a sweep that did not roll back."""
    why = trigger_phrase(trigger) if trigger else "no trigger recorded"
    if status == SweepStatus.rolled_back:
        return f"rolled back: {why}"
    if status == SweepStatus.rollback_failed:
        left = (reason or "").partition(" did not finish: ")
        parts = left[2] if left[1] else (reason or "no reason recorded")
        after = "after " if trigger and trigger.startswith("after ") else ""
        return f"rollback failed: {parts}; it rolled back {after}{why}"
    return None


def rollback_outcome(spec: SweepSpec, cps: dict[str, Checkpoint],
                     trigger: str | None = None) -> tuple[SweepStatus, str]:
    """rolled_back when every undo of the rollback run succeeded, else rollback_failed;
    the reason names the ``trigger`` first ("rolled back after TODO-018 failed: exit 1;
    6 todos compensated")."""
    ran = [t for level in spec.levels for t in level]
    bad = [t for t in ran if cps.get(t, {}).get("status") != TodoStatus.compensated]
    if not bad:
        done = sum(1 for cp in cps.values() if cp.get("status") == TodoStatus.compensated)
        what = (f"{done} todo{'' if done == 1 else 's'} compensated" if done
                else "nothing to compensate")
        return SweepStatus.rolled_back, (f"rolled back {trigger}; " if trigger else "") + what
    parts = []
    for t in bad[:5]:
        cp = cps.get(t) or Checkpoint(status=TodoStatus.pending)
        why = cp.get("reason") or ("exit " + str(cp.get("exit_code")))
        parts.append(f"{t} {cp.get('status')} ({why})")
    if len(bad) > 5:
        parts.append(f"and {len(bad) - 5} more not compensated")
    head = f"rollback {trigger} did not finish: " if trigger else ""
    return SweepStatus.rollback_failed, head + "; ".join(parts)


def start_rollback(rt: Runtime, sweep_id: str, *, reason: str,
                   undo: dict[str, str | None] | None = None,
                   from_active: bool = False) -> RollbackPlan | None:
    """Start the rollback run of an ended sweep; ``from_active``: of an atomic sweep
    whose every todo just ended, one failed. Of a rollback that did not finish
    (``rollback_failed``, cancelled): the run that retries the undos it left
    (:func:`retry_plan`).

    ``reason`` is its trigger ("after TODO-018 failed: exit 1", "by user"), kept in
    the record's ``rollback_reason`` (a retry keeps the first rollback's) and named
    first by the reason the sweep ends with. ``undo``: undo commands that override
    the spec's (a spec of 0.1; the catalog's fixed ones for a retry).

    Returns its plan, or None when the sweep is not in a state to roll back (another
    caller started it first). Needs no catalog: the undo: commands are in the spec."""
    record = rt.checkpoints.get_sweep(sweep_id)
    if record is None:
        return None
    spec = derivable_spec(rt, sweep_id, record)  # its undo: commands get signed
    if spec is None:
        return None
    retry = spec.mode == Mode.rollback
    allowed = (frozenset() if from_active else RETRY_FROM) if retry else (
        RUN_ACTIVE if from_active else ROLLBACK_FROM)
    if record.get("status") not in allowed:
        return None
    recording.end_unsaid(rt, sweep_id, record)  # (the last run's, if its ender died first)
    cps = rt.checkpoints.get_all(sweep_id, list(spec.todos))
    statuses = {t: str(cp.get("status")) for t, cp in cps.items()}
    plan = retry_plan(spec, statuses) if retry else rollback_plan(spec, statuses, undo)
    rb = rollback_spec(spec, plan, undo)
    trigger = str(record.get("rollback_reason") or reason) if retry else reason
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
    first: dict[str, object] = {} if retry else {
        "rollback_of": SweepStatus.failed if from_active else record.get("status"),
        "rollback_reason": reason, "not_compensable": plan.not_compensable}
    said = rt.events.prepare(EventKind.sweep_rolling_back, sweep_id=sweep_id, run=rb.run,
                             reason=trigger, compensate=len(plan.compensate), retry=retry,
                             not_compensable=plan.not_compensable)
    if not rt.checkpoints.set_sweep_status(
        sweep_id, SweepStatus.rolling_back, said, allowed_from=allowed,
        run=rb.run, **run_record(rt, rb, now=now), finished_at=None, reason=None,
        terminal=len(rb.todos) - len(plan.compensate), full_pass_terminal=None,
        **first, **rb.counters(),
    ):
        return None
    if not plan.compensate:
        # Nothing to run: the rollback ends here (rolling_back -> rolled_back, the
        # table's way; a supervisor that got there first wrote the same reason).
        final, why = rollback_outcome(rb, cps, trigger)
        ending = rt.events.prepare(EventKind.sweep_finished, sweep_id=sweep_id,
                                   status=str(final), reason=why, run=rb.run)
        if rt.checkpoints.set_sweep_status(sweep_id, final,
                                           allowed_from={SweepStatus.rolling_back},
                                           finished_at=now, reason=why, ending=ending.text):
            recording.ended(rt, sweep_id, rb.run)
        return plan
    rt.checkpoints.clear_remaining(sweep_id, rb.todos)
    send_level(rt, rb, 0, reason="rollback")
    log.info("sweep %s: rolling back %s: %s", sweep_id, trigger, ", ".join(plan.compensate))
    return plan
