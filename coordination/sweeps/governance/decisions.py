"""A gate's decision, sealed where it is made, and checked before anything after it runs.

A gate's status, approvals and reason are plain checkpoint fields: a writer without
``COORD_SIGNING_KEY`` could set ``succeeded`` there. So the process that passes a gate
(its count: :mod:`.votes` and :mod:`.approvals`, which verified every vote it counts)
seals the decision (:mod:`coordination.trust.evidence`, kind ``decision``) about
the sweep and the gate, over: ``approved``, the gate's binding, the sweep's spec
digest (:attr:`SweepSpec.digest`), the run that decided, the approvers counted, and the
digest of their votes as stored (:func:`votes_of_digest`). ``lua/gate_decide.lua``
keeps it as the gate's ``decision`` in the same write as its status.

Nothing after a gate goes by its status alone (:func:`decision_refusal`):

- a worker about to run a todo after a gate checks the gate's decision, holding the
  todo's lease (:mod:`..turns`); the supervision pass before it sends one
  (:mod:`..supervision`); a sweep about to end ``succeeded`` before it does
  (:func:`coordination.sweeps.progress.finish_if_done`);
- a decision that fails (unsigned, changed, copied from another gate or sweep, of an
  earlier run than the one that opened the gate again, fewer approvals than the gate
  needs) ends the gate ``failed`` with why (``todo.failed`` with ``refused: true``;
  :func:`coordination.sweeps.progress.fail_gate`, the door of every ending), then the
  sweep ``failed``
  (:func:`coordination.sweeps.governance.approvals.refuse_gates`): nothing after the gate runs,
  and its sync never marks the gate completed.

The same holds for a todo's predecessors (#59): the start script (Lua, which cannot
check a seal) goes by their plain statuses, so the worker that won the start checks each
one's sealed outcome before the command runs (:func:`turn_refusals`; a refusal ends
the todo ``failed`` unrun), and a sweep about to end ``succeeded`` checks every outcome
(:func:`ended_refusals`).

Without a key (and without ``COORD_REQUIRE_SIGNED=1``) decisions are neither sealed nor
checked, as every other evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from coordination.runtime.context import Runtime
from coordination.status import SUCCESSFUL, TodoStatus
from coordination.sweeps.spec import Mode, SweepSpec
from coordination.trust import evidence
from coordination.trust.signing import Policy

#: The gate checkpoint field holding its decision's seal ({run, sig, kid}).
FIELD = evidence.DECISION_FIELD


def bindings(rt: Runtime, spec: SweepSpec, gate_ids: list[str]) -> dict[str, str]:
    """Gate -> the binding its approvals are bound to (:func:`evidence.binding_of`: the
    signed spec's digest and its predecessors' outcomes as their checkpoints hold them
    now), computed, never read from the gate's checkpoint: the gate's opening stores
    it, and every count and the landing rule compute it again
    (:meth:`~coordination.runtime.gate_count.GateCounter.bindings`)."""
    return rt.gates.bindings(spec.sweep_id, spec.digest, {
        g: [p for p in spec.todos[g].preds if p in spec.todos] for g in gate_ids})


def binding_over(spec: SweepSpec, gate_id: str, cps: Mapping[str, Mapping[str, Any]]) -> str:
    """The binding of gate ``gate_id`` over ``cps`` (its predecessors' checkpoints as
    read: :func:`evidence.binding_of`)."""
    return evidence.binding_of(spec.digest, {p: cps.get(p, {}) for p in spec.todos[gate_id].preds
                                             if p in spec.todos})


binding_refusal = evidence.binding_refusal
votes_of_digest = evidence.votes_digest
about = evidence.decision_about
what = evidence.decision_what


def decision_refusal(policy: Policy, spec: SweepSpec, todo_id: str, cp: Mapping[str, Any],
                     votes: Mapping[str, Any]) -> str | None:
    """None if what follows gate ``todo_id`` may go by its checkpoint ``cp`` (under
    ``policy``: sealed by a key held here, for this sweep, gate, binding, spec, these
    approvers and their ``votes``, in a run no earlier than the last that opened the
    gate), or if it does not read passed; else why not, naming the record
    (:func:`evidence.decision_refusal`, which the landing rule asks too)."""
    if cp.get("status") != TodoStatus.succeeded:
        return None
    return evidence.decision_refusal(policy, spec.sweep_id, todo_id, cp, votes,
                                     digest=spec.digest, needed=_needed(spec, todo_id),
                                     run=spec.run, last_run=spec.last_run(todo_id))


class Refusals(NamedTuple):
    """What a check of the records a todo goes by refused, each with why: gates whose
    decision fails its check, predecessors whose outcome fails its seal."""

    gates: dict[str, str]
    outcomes: dict[str, str]


def gate_refusals(rt: Runtime, spec: SweepSpec, gates: Iterable[str]) -> dict[str, str]:
    """Of ``gates`` (of ``spec``), those that read passed on a decision that fails its
    check, with why (one read of them all; nothing without a key or a requirement)."""
    return _check(rt, spec, sorted(set(gates)), []).gates


def turn_refusals(rt: Runtime, spec: SweepSpec, todo_id: str) -> Refusals:
    """What ``todo_id``'s run goes by, checked by the worker that holds its lease: of the
    gates it comes right after (:func:`gate_preds`), those that read passed on a decision
    that fails its check (:func:`gate_refusals`); of its other predecessors, those whose
    checkpoint reads ended well on an outcome that fails its seal (unsigned, changed, of
    another todo or sweep, of a run before the last that dispatched it). The start script
    went by their plain statuses, which anyone with Redis can write. One read of all
    their records; outcomes only with a key or a requirement (without, none is sealed)."""
    t = spec.todos.get(todo_id)
    if t is None:
        return Refusals({}, {})
    policy = rt.policy
    gates = gate_preds(spec, todo_id)
    outcomes = sorted(p for p in t.preds if p in spec.todos and not spec.todos[p].gate) if (
        policy.keys or policy.require_signed) else []
    return _check(rt, spec, gates, outcomes)


def _check(rt: Runtime, spec: SweepSpec, gates: Sequence[str], outcomes: Sequence[str]
           ) -> Refusals:
    """``gates``' decisions and ``outcomes``' seals checked: the spec's facts first (its
    digest, each todo's last run, what each gate needs), then one read of their records,
    then the checks over both."""
    if not gates and not outcomes:
        return Refusals({}, {})
    policy = rt.policy
    needed = {g: _needed(spec, g) for g in gates}
    digest = spec.digest if gates else ""
    last = {p: spec.last_run(p) for p in (*gates, *outcomes)}
    cps, votes = rt.checkpoints.evidence_read(spec.sweep_id, [*gates, *outcomes], gates)
    refused = Refusals({}, {})
    for g in gates:
        cp = cps.get(g)
        if cp is None or cp.get("status") != TodoStatus.succeeded:
            continue
        why = evidence.decision_refusal(policy, spec.sweep_id, g, cp, votes.get(g, {}),
                                        digest=digest, needed=needed[g], run=spec.run,
                                        last_run=last[g])
        if why is not None:
            refused.gates[g] = why
    for p in outcomes:
        cp = cps.get(p) or {}
        if cp.get("status") not in SUCCESSFUL:
            continue  # (the script would not have started it: said there)
        why = evidence.outcome_refusal(policy, spec.sweep_id, p, cp, current_run=spec.run,
                                       last_run=last[p])
        if why is not None:
            refused.outcomes[p] = why
    return refused


def _needed(spec: SweepSpec, gate_id: str) -> int:
    """How many approvals gate ``gate_id`` needs (1 if it says none)."""
    gate = spec.todos[gate_id].gate if gate_id in spec.todos else None
    return int(gate.get("approvals") or 1) if gate else 1


def ended_refusals(rt: Runtime, spec: SweepSpec, cps: Mapping[str, Mapping[str, Any]]
                   ) -> dict[str, str]:
    """Of the sweep's todos that are no gate, those whose checkpoint (``cps``, as read)
    reads ended well on an outcome that fails its seal, with why: what a sweep about to
    end ``succeeded`` asks (nothing without a key or a requirement)."""
    policy = rt.policy
    if not (policy.keys or policy.require_signed):
        return {}
    out: dict[str, str] = {}
    for t, cp in sorted(cps.items()):
        if t in spec.todos and not spec.todos[t].gate and cp.get("status") in SUCCESSFUL:
            why = evidence.outcome_refusal(policy, spec.sweep_id, t, cp,
                                           current_run=spec.run, last_run=spec.last_run(t))
            if why is not None:
                out[t] = why
    return out


def gate_preds(spec: SweepSpec, todo_id: str) -> list[str]:
    """The gates ``todo_id`` comes right after (what its run goes by)."""
    t = spec.todos.get(todo_id)
    if t is None or spec.mode != Mode.run:
        return []
    return sorted(p for p in t.preds if p in spec.todos and spec.todos[p].gate)
