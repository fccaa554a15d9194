"""The verdict of each gate of a change in the plan's last sweep.

A gate is approved when its checkpoint reads so, by a decision coord's count sealed for
it (checked as what follows a gate checks it), under the binding computed again from
the sweep's signed spec (never the one Redis holds), by votes that count as the gate's
count made them count, for what the catalog says the plan runs now.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coordination.change.landing_evidence import FrozenSpec
from coordination.change.model import BOUND, ChangePlan, definition
from coordination.errors import CoordError
from coordination.runtime.sweep_fields import Checkpoint
from coordination.status import TodoStatus
from coordination.trust import evidence
from coordination.trust.approvers import Approvers, Starter, verified, votes_of
from coordination.trust.sshsig import Proof
from coordination.trust.signing import Policy

#: A gate's status in the plan's last sweep -> its verdict.
GATE_VERDICTS = {TodoStatus.succeeded: "approved", TodoStatus.awaiting_approval: "waiting",
                 TodoStatus.failed: "rejected", TodoStatus.cancelled: "expired"}


@dataclass(frozen=True)
class GateVerdict:
    verdict: str  # approved | waiting | rejected | expired | missing | refused | stale
    approvals: list[str]
    why: str | None

    def document(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "approvals": self.approvals, "why": self.why}


@dataclass(frozen=True)
class GateContext:
    """What a gate's votes are checked against: the gate as the catalog says it, who
    proves approvers (the allowed-signers file), who started the sweep."""

    spec: dict[str, Any]
    approvers: Approvers
    started_by: str | Starter | None = None  # (with approvers:, the start's proof)
    #: its votes' SSH signatures checked before (:func:`ssh_proofs`); None: checked
    #: when counted
    proofs: Mapping[tuple[str, str], Proof | str | CoordError] | None = None


def backing(votes: str, gate: str, sweep: str, last: Checkpoint | None, approvals: list[str],
            needed: int, policy: Any, ctx: GateContext | None = None) -> str | None:
    """None when a gate that reads approved is backed by ``needed`` approvals under its
    binding whose votes count (``votes``: its votes field as stored): seals, and
    ``ctx``'s checks, those the gate's count made (``from:``, the SSH signature with
    an allowed-signers file, the starter, one key one approver); else why not. The
    gate's status and approvals are plain checkpoint fields: a writer without the key
    could set them, but not seal (nor sign) the votes behind them."""
    ctx = ctx or GateContext({}, Approvers(None))
    cast = votes_of(votes)
    binding = str((last or {}).get("binding") or "")
    try:
        counted, _, refused = verified(sweep, gate, ctx.spec, binding, cast,
                                       started_by=ctx.started_by, approvers=ctx.approvers,
                                       policy=policy, proofs=ctx.proofs)
    except CoordError as exc:  # ssh-keygen missing: nothing can be checked, nothing counts
        counted, refused = [], {who: f"{exc}" for who in approvals}
    good: list[str] = []
    said: list[str] = []
    for who in approvals:
        v = cast.get(who)
        if not isinstance(v, dict) or v.get("d") != "approve" or v.get("b") != binding:
            said.append(f"vote of {who} on gate {gate} of sweep {sweep}: no approving vote "
                        "under the gate's binding")
        elif who in counted:
            good.append(who)
        else:
            said.append(refused.get(who) or f"vote of {who} on gate {gate} of sweep {sweep}: "
                        "does not count")
    if len(good) >= needed:
        return None
    return (f"gate {gate} reads approved in sweep {sweep}, but only {len(good)} of the "
            f"{needed} approvals it needs are votes that count"
            + (f" ({'; '.join(said)})" if said else "")
            + ": its record was not written by coord's count; sweep the plan again for a "
            "new decision")


def gate_verdict(gate: str, last: Checkpoint | None, sweep: str | None, gone: bool,
                 votes: str = "", needed: int = 1, policy: Any = None,
                 ctx: GateContext | None = None, changed: list[str] | None = None,
                 plan: str = "", decided: str | None = None) -> GateVerdict:
    """``decided``: why the gate's sealed decision is refused (None: it holds, or the
    gate does not read approved, or no spec to check it against)."""
    if sweep is None:
        return GateVerdict("missing", [], f"gate {gate}: the plan was not swept since it "
                           "became a change (coord plan sweep)")
    if gone:
        return GateVerdict("missing", [], f"gate {gate}: the plan's last sweep {sweep} is "
                           "gone from Redis (expired): sweep the plan again")
    status = str(last.get("status")) if last else str(TodoStatus.pending)
    approvals = [str(u) for u in (last.get("approvals") if last else None) or []]
    verdict = GATE_VERDICTS.get(status, "missing")  # type: ignore[call-overload]
    if verdict == "approved":
        return _approved(gate, sweep, last, approvals, votes, needed, policy, ctx, changed,
                         plan, decided)
    if verdict == "waiting":
        why = (f"gate {gate} is waiting for approval in sweep {sweep}"
               f" ({len(approvals)} so far): coord approve {gate} --sweep {sweep}")
    elif verdict == "rejected":
        by = last.get("rejected_by") if last else None
        why = (f"gate {gate} was rejected in sweep {sweep}" + (f" by {by}" if by else "")
               + ": sweep the plan again for a new decision")
    elif verdict == "expired":
        why = (f"gate {gate} expired (or its sweep ended) in sweep {sweep} without approval: "
               "sweep the plan again")
    else:
        why = f"gate {gate} was never reached in sweep {sweep} (status {status})"
    return GateVerdict(verdict, approvals, why)


def _approved(gate: str, sweep: str, last: Checkpoint | None, approvals: list[str],
              votes: str, needed: int, policy: Any, ctx: GateContext | None,
              changed: list[str] | None, plan: str, decided: str | None) -> GateVerdict:
    """A gate that reads approved: approved if its decision, its votes and what it
    approved hold; else refused (decision, votes) or stale (the catalog changed)."""
    if decided:
        return GateVerdict("refused", approvals, (
            f"{decided}: the gate reads approved, but not by a decision coord's count "
            f"sealed for it; sweep the plan again for a new decision (coord plan sweep "
            f"{plan} --again)"))
    unbacked = backing(votes, gate, sweep, last, approvals, needed, policy, ctx)
    if unbacked:
        return GateVerdict("refused", approvals, unbacked)
    if changed:
        return GateVerdict("stale", approvals, (
            f"gate {gate} approved for another binding: the catalog changed "
            + ", ".join(changed) + f" since sweep {sweep} froze the plan: re-run or "
            f"resume (coord plan sweep {plan} --again; or coord sweep resume {sweep}), "
            "then approve it again"))
    return GateVerdict("approved", approvals, None)


def decision_refusal(spec: FrozenSpec, sweep: str, gate: str, cpt: Checkpoint, votes: str,
                     run: int, policy: Policy) -> str | None:
    """Why gate ``gate``'s sealed decision (the ``decision`` field of its checkpoint
    ``cpt``, which reads passed) is refused, as what follows a gate checks it
    (:func:`coordination.trust.evidence.decision_refusal`, the check of
    :mod:`coordination.sweeps.governance.decisions`): sealed for this sweep, gate, binding, what
    the sweep's last run runs (``spec``, its frozen spec, signature checked), these
    approvers and their ``votes``, in a run from the last that opened the gate on; None
    if it holds. A rollback's spec runs undo commands, not what the gate approved:
    nothing to check against (the sweep pointer, which no rollback moves, refuses it)."""
    if spec.rollback:
        return None
    rules = spec.todo(gate).get("gate")
    try:
        needed = int((rules or {}).get("approvals") or 1)
    except (TypeError, ValueError, AttributeError):
        needed = 1
    return evidence.decision_refusal(
        policy, sweep, gate, cpt, votes_of(votes), digest=spec.digest,
        needed=needed, run=run, last_run=spec.last_run(gate, run))


def rolled_back(spec: FrozenSpec, sweep: str, gate: str, last: Mapping[str, Checkpoint]
                ) -> str | None:
    """Why gate ``gate``'s binding as its checkpoint holds it is not the one computed
    again from the sweep's signed spec (``spec``) and its predecessors' outcomes as
    ``last`` holds them (:func:`coordination.trust.evidence.binding_of`, as every
    count computes it): a binding rolled back in Redis to the one older votes were cast
    under. None: the same (or a rollback's spec, which runs undo commands)."""
    if spec.rollback:
        return None
    preds = [str(p) for p in spec.todo(gate).get("preds") or [] if p in spec.todos]
    binding = evidence.binding_of(spec.digest, {p: last.get(p) or {} for p in preds})
    held = str((last.get(gate) or {}).get("binding") or "")
    if held == binding:
        return None
    return (f"gate {gate} of sweep {sweep}: the binding its checkpoint holds "
            f"({held[:12] or 'none'}) is not the one the sweep's signed spec and its "
            f"predecessors' outcomes give ({binding[:12]}): the binding (rolled back to the "
            "one older votes were cast under) or a predecessor's outcome was rewritten in "
            "Redis, or a predecessor ran again since the gate passed; the votes behind it "
            "count for nothing here")


def changed_since(cp: ChangePlan, frozen: dict[str, Any]) -> list[str]:
    """What the catalog changed (``cp``: as it says the plan now) in the todos a sweep
    froze (``frozen``: its spec's todos): ``TODO-002 (run, env)``, ``TODO-003
    (edges)``, ``TODO-004 (removed)``, in todo order; empty when nothing that a gate's
    approval is bound to changed."""
    out: list[str] = []
    for tid in sorted(frozen):
        t = frozen[tid]
        if not isinstance(t, dict):
            continue
        now = cp.definitions.get(tid)
        if now is None:
            out.append(f"{tid} (removed)")
            continue
        was = definition(t)
        fields = [f for f in BOUND if was[f] != now[f]]
        preds = sorted(p for p in cp.preds.get(tid, ()) if p in frozen)
        if sorted(str(p) for p in t.get("preds") or []) != preds:
            fields.append("edges")
        if fields:
            out.append(f"{tid} ({', '.join(fields)})")
    return out
