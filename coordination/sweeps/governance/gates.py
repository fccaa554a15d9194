"""Opening gates: a todo with ``gate:`` runs nothing; once its predecessors succeeded
it waits for people (``awaiting_approval``), holding no lease and no worker slot.

The sending path (:mod:`..sending`) hands gates here instead of to a repo's queue.
What people decide, and a gate's expiry, are :mod:`.approvals`.

An approval is bound to what it approved: the sweep's spec digest (every todo's
command, undo, environment, gate, edges) and the outcomes of the gate's
predecessors (status, exit code, when they ended, their outputs). A gate opened
again (a resume) with the same binding keeps the approvals it had; with another
(the catalog's commands changed, a predecessor ran again) it needs new ones.

A gate that passed stays passed only for what it approved: a resume whose spec
differs from an approved gate's binding (any command, environment, undo, gate or
edge of the plan: :attr:`SweepSpec.digest`) opens it again (:func:`reopened_by`),
and the todos it re-runs after the gate wait for the new approvals (so do the todos
that already succeeded between the gate and them: they run again after it).

The binding the opening stores is what the gate says it waits for; no count trusts
it: every count (:mod:`.votes`, :mod:`.approvals`) and the landing rule compute it
again (:func:`.decisions.bindings`), and a gate whose stored binding differs (rolled
back in Redis to the one older votes were cast under) counts no vote.
"""

from __future__ import annotations

from collections.abc import Iterable

from coordination.runtime.context import Runtime
from coordination.runtime.gate_count import Opening
from coordination.status import TodoStatus
from coordination.sweeps.governance.decisions import bindings
from coordination.sweeps.governance.votes import Approvers, count_of
from coordination.sweeps.spec import SweepSpec


def reopened_by(rt: Runtime, spec: SweepSpec, rerun: Iterable[str]) -> list[str]:
    """What a resume (``spec``, re-running ``rerun``) must run again besides: the
    gates that passed under another binding than ``spec`` gives them now, and the
    succeeded todos between such a gate and a re-run todo after it (which must wait
    for the gate again). Empty when every approval still holds."""
    again = set(rerun)
    passed = [g for g in spec.gates() if g not in again]
    if not passed:
        return []
    cps = rt.checkpoints.get_fields_all(spec.sweep_id, passed, ("binding",))
    passed = [g for g in passed if cps.get(g, {}).get("status") == TodoStatus.succeeded]
    bound = bindings(rt, spec, passed)
    stale = [g for g in passed if cps[g].get("binding") != bound[g]]
    if not stale:
        return []
    before: set[str] = set()  # every todo a re-run todo comes after
    stack = [p for t in again for p in spec.todos[t].preds if p in spec.todos]
    while stack:
        t = stack.pop()
        if t not in before:
            before.add(t)
            stack.extend(p for p in spec.todos[t].preds if p in spec.todos)
    out = set(stale)
    for g in stale:
        out.update(t for t in spec.descendants(g) if t in before)
    return sorted(out - again)


def open_gates(rt: Runtime, spec: SweepSpec, gate_ids: Iterable[str], *,
               allowed_from: tuple[TodoStatus, ...], now: float) -> list[tuple[str, int]]:
    """Open ``gate_ids`` (in ``allowed_from``): each waits for its approvals, bound to
    its binding (:meth:`GateCounter.open <coordination.runtime.gate_count.GateCounter.open>`,
    which counts the votes an earlier opening under it carried over); returns ``(gate,
    approvals it keeps from an earlier opening)`` of those opened."""
    openings = []
    for g in sorted(gate_ids):
        count = count_of(spec, g)
        expires = count.gate.get("expires")
        openings.append(Opening(
            count, now + float(expires) if expires is not None else None,
            {"from": list(count.gate.get("from") or []),
             "on_expiry": count.gate.get("on_expiry") or "cancel"}))
    found: list[Approvers] = []

    def approvers() -> Approvers:  # (the catalog is read only when votes carry over)
        if not found:
            found.append(Approvers.of(spec.catalog))
        return found[0]

    return rt.gates.open(spec.sweep_id, openings, approvers, allowed_from=allowed_from,
                         now=now)
