"""A gate's opening and the count of its votes, verified and sealed where they are written.

A gate's approvals are plain fields of its checkpoint, which anyone with Redis can
write, and Lua can check neither an SSH signature nor a seal. So the count runs
here, in one place, as a todo's ending is sealed in :mod:`.transitions`: every vote
the count reads is verified (:func:`coordination.trust.approvers.verified`: the
seal, ``from:``, with the catalog's ``approvers:`` the SSH signature, the starter,
one key one approver), against the binding computed again from the sweep's signed
spec and its predecessors' outcomes as read with the votes
(:func:`coordination.trust.evidence.binding_of`, never the one the checkpoint
holds), and a count that passes the gate is sealed
(:func:`coordination.trust.evidence.decision_stamp`). The count is handed to
``lua/gate_decide.lua`` with the votes it was made over (a compare-and-set).

The caller hands the facts its sweep's spec gives (:class:`GateCount`); the
sweeps' governance (:mod:`coordination.sweeps.governance`) decides when to count:
a gate opened with votes carried over, a supervision pass settling the votes that
changed (:meth:`GateCounter.count`), a person's vote
(:meth:`GateCounter.cast`: the vote made, signed and sealed by
:mod:`coordination.sweeps.governance.approvals`, which checks who may decide first
and says why a vote was refused). No other place seals a gate's decision
(``tests/unit/sweeps/test_one_door.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from coordination.runtime.checkpoints import CheckpointStore
from coordination.runtime.transitions import GateDecision, GateOpening, Transitions, votes_digest
from coordination.status import TodoStatus
from coordination.trust.approvers import (
    START_FIELDS,
    Approvers,
    Starter,
    starter_of,
    verified,
    votes_of,
)
from coordination.trust.evidence import (
    BINDING_FIELDS,
    OUTCOME_FIELD,
    binding_of,
    binding_refusal,
    decision_stamp,
)
from coordination.trust.signing import Policy

log = logging.getLogger("coord.approvals")

#: Compare-and-set attempts of one count (each failed one means another vote
#: landed meanwhile; that voter counts the gate too, so a few suffice).
ATTEMPTS = 8


@dataclass(frozen=True)
class GateCount:
    """What the count of gate ``todo_id``'s votes goes by, from its sweep's signed spec:
    the gate's settings (``approvals``, ``from``, ``starter_may_approve``, ...), the
    approvals it needs, its predecessors, its level, what its passing sends on
    (``lua/gate_decide.lua``'s successors), the spec's digest and run."""

    sweep_id: str
    todo_id: str
    gate: Mapping[str, Any]
    needed: int
    preds: tuple[str, ...]
    level: int
    successors: tuple[tuple[str, str], ...]
    digest: str
    run: int
    catalog: str | None = None  # (named where it is not readable)


@dataclass(frozen=True)
class Opening:
    """A gate to open (:meth:`GateCounter.open`): its count's facts, when it expires
    (None: never), its ``gate.waiting`` event's fields."""

    count: GateCount
    expires_at: float | None
    event: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Ballot:
    """A person's vote on a waiting gate (:meth:`GateCounter.cast`): who, ``approve`` or
    ``reject``, the vote as its votes field keeps it (made, signed and sealed by the
    caller), the comment."""

    who: str
    decision: str
    vote: Mapping[str, Any]
    comment: str = ""


class Cast(NamedTuple):
    """What a ballot came to: the decide script's answer (None: the ballot was
    refused), the votes the count refused (why each), and why the ballot was refused
    (``refusal``: ``already`` approved, ``detail`` the approvals it had; ``not_counted``,
    ``detail`` why; ``not_waiting``, ``detail`` the gate's status; ``reopened`` for
    another binding meanwhile; ``kept_changing``; ``""``: recorded)."""

    decision: GateDecision | None
    refused: list[str]
    refusal: str = ""
    detail: str = ""


class GateCounter:
    """Gates opened and their votes counted over one runtime's records and keys."""

    def __init__(self, checkpoints: CheckpointStore, transitions: Transitions,
                 policy: Callable[[], Policy], seal_keys: Callable[[], Sequence[str]]) -> None:
        self.checkpoints = checkpoints
        self.transitions = transitions
        self.policy = policy
        self.seal_keys = seal_keys

    def open(self, sweep_id: str, openings: Sequence[Opening],
             approvers_of: Callable[[], Approvers], *, allowed_from: Iterable[TodoStatus],
             now: float) -> list[tuple[str, int]]:
        """Open each gate (in ``allowed_from``, its predecessors succeeded) bound to its
        binding as its predecessors' checkpoints hold them now; a gate opened again with
        votes of an earlier opening under this binding has them counted, verified, here
        (a count that would pass it is left to the supervision pass, which carries the
        sweep on). Returns ``(gate, approvals it kept)`` of those opened."""
        if not openings:
            return []
        bound = self.bindings(sweep_id, openings[0].count.digest,
                              {o.count.todo_id: o.count.preds for o in openings})
        opened = self.transitions.open_gates(sweep_id, [
            GateOpening(o.count.todo_id, bound[o.count.todo_id], o.expires_at, o.count.needed,
                        o.event) for o in openings], allowed_from=allowed_from, now=now)
        counts = {o.count.todo_id: o.count for o in openings}
        for g, given in opened:
            if given:
                self.count(counts[g], approvers_of, may_pass=False)
        return opened

    def bindings(self, sweep_id: str, digest: str, preds: Mapping[str, Sequence[str]]
                 ) -> dict[str, str]:
        """Gate -> the binding its approvals are bound to: the spec's ``digest`` and its
        predecessors' (``preds``: gate -> them) outcomes as their checkpoints hold them
        now, read once (:func:`coordination.trust.evidence.binding_of`); computed, never
        read from the gate's checkpoint."""
        every = sorted({p for ps in preds.values() for p in ps})
        cps = (self.checkpoints.get_fields_all(sweep_id, every, (*BINDING_FIELDS, OUTCOME_FIELD))
               if every else {})
        return {g: binding_of(digest, {p: cps.get(p, {}) for p in ps}) for g, ps in preds.items()}

    def count(self, facts: GateCount, approvers_of: Callable[[], Approvers], *,
              may_pass: bool = True) -> GateDecision | None:
        """Count a waiting gate's votes again, verified, if they changed since they were
        last counted, and record the count (approvals, refusals) with
        ``lua/gate_decide.lua``, which passes the gate when they suffice; None when there
        was nothing to count. ``may_pass`` False (the sending path, which cannot carry
        the sweep on from a gate): a count that would pass is left to the supervision
        pass. Where the catalog (so whether approvers must prove who they are) is not
        readable, nothing is counted: the next vote, made where it is, settles it."""
        sweep_id, todo_id = facts.sweep_id, facts.todo_id
        policy = self.policy()
        for _ in range(ATTEMPTS):
            read = self.checkpoints.count_read(sweep_id, todo_id, facts.preds, START_FIELDS)
            cp, raw = read.checkpoint, read.votes
            if cp is None or cp.get("status") != TodoStatus.awaiting_approval or not raw:
                return None
            if cp.get("settled") == votes_digest(raw):
                return None  # counted as they are (the script records what it counted over)
            approvers = approvers_of()
            if not approvers.known:
                log.warning("sweep %s: gate %s has votes not yet counted, and its catalog %s is "
                            "not readable here to say how approvers prove who they are: left "
                            "for a process that has it", sweep_id, todo_id, facts.catalog)
                return None
            # The binding computed again from the signed spec and the predecessors'
            # outcomes (read with the votes), never taken from the checkpoint (a keyless
            # writer could roll it back to the one older votes were cast under).
            binding = binding_of(facts.digest, {p: read.preds.get(p, {}) for p in facts.preds})
            rolled = binding_refusal(sweep_id, todo_id, cp.get("binding"), binding)
            if rolled:
                log.warning("sweep %s: %s", sweep_id, rolled)
                return None
            started_by = starter_of(read.sweep, sweep_id, approvers)
            votes = votes_of(raw)
            users, refused, _ = verified(sweep_id, todo_id, facts.gate, binding, votes,
                                         started_by=started_by, approvers=approvers,
                                         policy=policy)
            if not may_pass and len(users) >= facts.needed:
                return None
            sealed = (decision_stamp(list(self.seal_keys()), sweep_id, todo_id, facts.digest,
                                     binding, facts.run, users, votes)
                      if len(users) >= facts.needed else None)
            got = self.transitions.decide_gate(
                sweep_id, todo_id, who="", decision="approve", binding=binding, seen=raw,
                counted=users, refused=refused, level=facts.level,
                successors=facts.successors, sealed=sealed)
            if got.verdict == "changed":
                continue
            for why in refused:
                log.warning("sweep %s: %s", sweep_id, why)
            return got
        return None

    def cast(self, facts: GateCount, ballot: Ballot, approvers: Approvers, started_by: Starter,
             *, binding: str, raw: str) -> Cast:
        """Record ``ballot`` on the waiting gate ``facts.todo_id``, counted with the votes it
        has (``raw``: its votes field as read with the predecessors ``binding`` was
        computed over): every vote verified, the count sealed when it passes the gate,
        handed to ``lua/gate_decide.lua`` with the votes it was made over; read, verified
        and tried again when they changed meanwhile. Refused (nothing recorded) when its
        approver approved already, or their vote would not count."""
        sweep_id, todo_id, who = facts.sweep_id, facts.todo_id, ballot.who
        approve = ballot.decision == "approve"
        policy = self.policy()
        for _ in range(ATTEMPTS):
            had = votes_of(raw)
            if approve and who in had:  # (a forged one is replaced, not kept)
                before, _r, _w = verified(sweep_id, todo_id, facts.gate, binding, had,
                                          started_by=started_by, approvers=approvers,
                                          policy=policy)
                if who in before:
                    return Cast(None, [], "already", str(len(before)))
            votes = {**had, who: ballot.vote}
            users, refused, by_whom = verified(sweep_id, todo_id, facts.gate, binding, votes,
                                               started_by=started_by, approvers=approvers,
                                               policy=policy)
            if approve and who in by_whom:
                return Cast(None, refused, "not_counted", by_whom[who])
            sealed = (decision_stamp(list(self.seal_keys()), sweep_id, todo_id, facts.digest,
                                     binding, facts.run, users, votes)
                      if approve and len(users) >= facts.needed else None)
            got = self.transitions.decide_gate(
                sweep_id, todo_id, who=who, decision=ballot.decision, vote=ballot.vote,
                binding=binding, seen=raw, counted=users, refused=refused,
                comment=ballot.comment, level=facts.level, successors=facts.successors,
                sealed=sealed)
            if got.verdict != "changed":
                return Cast(got, refused)
            cp, raw = self.checkpoints.gate_read(sweep_id, todo_id)
            status = str((cp or {}).get("status") or TodoStatus.pending)
            if cp is None or status != TodoStatus.awaiting_approval:
                return Cast(None, [], "not_waiting", status)
            if str(cp.get("binding") or "") != binding:
                return Cast(None, [], "reopened")
        return Cast(None, [], "kept_changing")
