"""What people decide on gates, and a gate nobody decided in time.

``coord approve`` / ``coord reject`` and the web view's buttons call :func:`decide`:
the checks that need no race (is it a gate, is it waiting, may this person decide:
``from:``, ``starter_may_approve``) are made here and refused with a clear error
(exit 2); the vote, its count and the gate's end are one script call
(``lua/gate_decide.lua``: two approvers at once never both pass or both miss the
gate, and one person never counts twice). A gate that passes ends ``succeeded``, a
rejected one ``failed``, and the progression carries the sweep on from there.

Every decision is in the sweep's events (``gate.approved``, ``gate.rejected``, then
the gate's ``todo.succeeded``/``todo.failed``), in the gate's checkpoint (who
approved, who rejected: the history row of the gate says it) and in the catalog's
audit log (an entry with ``op`` approve or reject, ``who``, and the decision), which
``coord history search`` reads too.

The supervision pass calls :func:`watch_gates`: a gate past its ``expires`` ends
``cancelled`` (``gate.expired``) and cancels its sweep (``on_expiry: cancel``) or
stops and rolls it back (``on_expiry: rollback``); a gate re-opened with enough
approvals carried over (a resume whose inputs did not change) passes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TypedDict

from coordination.catalog.store import CatalogStore
from coordination.errors import NotFoundError, UsageError
from coordination.runtime.context import Runtime
from coordination.status import EventKind, SweepStatus, TodoStatus
from coordination.sweeps.progress import Change, Pass, end_sweep, progress, stop_run
from coordination.sweeps.reading import record as sweep_record
from coordination.sweeps.spec import GateSpec, SweepSpec
from coordination.sweeps.spec_store import level_index, load_spec

log = logging.getLogger("coord.approvals")

DECISIONS = ("approve", "reject")


class Decision(TypedDict):
    """``coord approve|reject --json``."""

    sweep_id: str
    todo_id: str
    decision: str
    by: str
    comment: str
    status: str  # the gate's status after it: awaiting_approval, succeeded or failed
    approvals: list[str]
    needed: int


def _gate_of(rt: Runtime, sweep_id: str, todo_id: str) -> tuple[SweepSpec, GateSpec]:
    rec = sweep_record(rt, sweep_id)
    spec = load_spec(rt, sweep_id, rec)
    if spec is None or todo_id not in spec.todos:
        raise NotFoundError(f"sweep {sweep_id} has no todo {todo_id!r}",
                            hint=f"see `coord sweep status {sweep_id}`")
    gate = spec.todos[todo_id].gate
    if not gate:
        raise UsageError(f"{todo_id} is not a gate: it waits for nobody's approval",
                         hint="only a todo with gate: (and no run:) is approved or rejected")
    return spec, gate


def decide(rt: Runtime, sweep_id: str, todo_id: str, *, who: str, decision: str,
           comment: str = "", catalog: Path | None = None) -> Decision:
    """``who`` approves or rejects the gate ``todo_id`` of ``sweep_id`` (see the module
    docstring); ``catalog``: whose audit log records it (when the file exists)."""
    if decision not in DECISIONS:
        raise UsageError(f"unknown decision {decision!r}", hint="approve or reject")
    who = who.strip()
    if not who:
        raise UsageError("who decides is unknown", hint="set COORD_USER")
    spec, gate = _gate_of(rt, sweep_id, todo_id)
    cp = rt.checkpoints.get(sweep_id, todo_id) or {}
    status = str(cp.get("status") or TodoStatus.pending)
    needed = int(gate.get("approvals") or 1)
    if status != TodoStatus.awaiting_approval:
        raise UsageError(f"{todo_id} of sweep {sweep_id} is {status}, not awaiting approval",
                         hint="a gate waits once its predecessors succeeded, until it is "
                         "approved, rejected or expires")
    allowed = list(gate.get("from") or [])
    if allowed and who not in allowed:
        raise UsageError(f"{who} may not {decision} {todo_id}: its approvers are "
                         f"{', '.join(allowed)}",
                         hint="ask one of them, or set COORD_USER to who you are")
    if decision == "approve" and gate.get("starter_may_approve") is False:
        rec = rt.checkpoints.get_sweep_fields(sweep_id, ("started_by",)) or {}
        if rec.get("started_by") == who:
            raise UsageError(f"{who} started sweep {sweep_id} and may not approve its gate "
                             f"{todo_id} (starter_may_approve: false)",
                             hint="another approver must")
    t = spec.todos[todo_id]
    succs = ([(s, spec.todos[s].queue) for s in t.succs if s in spec.todos]
             if spec.strategy == "eager" and not spec.waves else [])
    level = level_index(spec, todo_id)
    got = rt.transitions.decide_gate(sweep_id, todo_id, who=who, decision=decision,
                                     comment=comment, level=level, successors=succs)
    if got.verdict == "duplicate":
        raise UsageError(f"{who} approved {todo_id} already ({got.approvals} of {needed}); "
                         f"its {needed} approvals must come from different people",
                         hint="ask another approver")
    if got.verdict == "status":
        raise UsageError(f"{todo_id} of sweep {sweep_id} is {got.detail}, not awaiting "
                         "approval", hint=f"see `coord sweep status {sweep_id}`")
    if got.verdict == "gone":
        raise UsageError(f"sweep {sweep_id} is {got.detail}: its gates wait no more",
                         hint=f"see `coord sweep status {sweep_id}`")
    new = TodoStatus.awaiting_approval
    if got.verdict in ("approved", "rejected"):
        new = TodoStatus.succeeded if got.verdict == "approved" else TodoStatus.failed
        progress(rt, spec, [Change(todo_id, new, level_done=got.level_done,
                                   terminal=got.terminal,
                                   levels=(level,) if got.level_done and level >= 0 else (),
                                   queued=tuple(got.queued))])
    after = rt.checkpoints.get(sweep_id, todo_id) or {}
    approvals = [str(u) for u in after.get("approvals") or []]
    out: Decision = {"sweep_id": sweep_id, "todo_id": todo_id, "decision": decision,
                     "by": who, "comment": comment, "status": str(new),
                     "approvals": approvals, "needed": needed}
    if catalog is not None and catalog.is_file():
        try:
            CatalogStore(catalog).record_decision(
                who=who, op=decision, ids=[todo_id],
                decision={"sweep_id": sweep_id, "todo_id": todo_id, "decision": decision,
                          "comment": comment, "status": str(new), "approvals": approvals,
                          "needed": needed, "binding": after.get("binding")})
        except Exception as exc:  # the decision stands (events, checkpoint): say it
            log.warning("the %s of %s/%s is not in the audit log: %s", decision, sweep_id,
                        todo_id, exc)
    return out


def watch_gates(rt: Runtime, spec: SweepSpec, now: float) -> None:
    """The supervision pass's look at a sweep's waiting gates: expire those past their
    ``expires``; pass those whose approvals (kept from an earlier opening) suffice."""
    gates = spec.gates()
    if not gates or spec.mode != "run":
        return
    cps = rt.checkpoints.get_fields_all(spec.sweep_id, gates,
                                        ("expires_at", "approvals", "needed"))
    for g, cp in cps.items():
        if cp.get("status") != TodoStatus.awaiting_approval:
            continue
        given = cp.get("approvals") or []
        if isinstance(given, list) and len(given) >= int(str(cp.get("needed") or 1)):
            level = level_index(spec, g)
            got = rt.transitions.decide_gate(spec.sweep_id, g, who="", decision="approve",
                                             level=level)
            if got.verdict == "approved":
                progress(rt, spec, [Change(g, TodoStatus.succeeded, level_done=got.level_done,
                                           terminal=got.terminal,
                                           levels=(level,) if got.level_done and level >= 0
                                           else (), queued=tuple(got.queued))])
            continue
        expires = cp.get("expires_at")
        if expires is not None and now >= float(str(expires)):
            expire(rt, spec, g, now)


def expire(rt: Runtime, spec: SweepSpec, todo_id: str, now: float) -> bool:
    """End a gate nobody decided in time: ``cancelled`` with ``gate.expired``, then its
    sweep cancelled or (``on_expiry: rollback``) stopped and rolled back. False if it
    was no longer waiting (decided meanwhile, or expired by another process)."""
    gate = spec.todos[todo_id].gate
    on_expiry = gate["on_expiry"] if gate is not None else "cancel"
    why = f"gate {todo_id} expired with nobody's decision (on_expiry: {on_expiry})"
    p = Pass(rt, spec)
    if not p.end([todo_id], TodoStatus.cancelled,
                 frozenset({TodoStatus.awaiting_approval}), event={"reason": why},
                 cascade=True):
        return False
    rt.events.emit(EventKind.gate_expired, sweep_id=spec.sweep_id, todo_id=todo_id,
                   on_expiry=on_expiry, reason=why)
    log.warning("sweep %s: %s", spec.sweep_id, why)
    if on_expiry == "rollback":
        stop_run(p, why)
    else:
        # Ended first: the gate's level ending must not send the next one meanwhile.
        end_sweep(rt, spec.sweep_id, why, status=SweepStatus.cancelled)
    progress(rt, spec, p.work, finish=True)
    return True
