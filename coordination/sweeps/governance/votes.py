"""A gate's votes: which of them count, and counting them.

Which votes count is :mod:`coordination.trust.approvers` (:func:`verified`: the
seal, ``from:``, with the catalog's ``approvers:`` the SSH signature, the starter,
one key one approver; the landing rule checks votes with it too). Lua cannot check either, so votes are counted here
and the count is handed to ``lua/gate_decide.lua`` with the votes it was made over
(a compare-and-set: :func:`tally`). :mod:`.approvals` (people deciding, the
supervision's settling) and :mod:`.gates` (a gate opened again with votes carried
over) count through here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from coordination.runtime.context import Runtime
from coordination.runtime.transitions import GateDecision, votes_digest
from coordination.status import TodoStatus
from coordination.sweeps.governance import decisions
from coordination.sweeps.spec import SweepSpec
from coordination.sweeps.spec_store import level_index
from coordination.trust.approvers import (
    START_FIELDS,
    Approvers,
    about,
    starter_of,
    verified,
    votes_of,
)
from coordination.trust.evidence import decision_stamp, policy_of

log = logging.getLogger("coord.approvals")

__all__ = ["ATTEMPTS", "Approvers", "about", "tally", "verified", "votes_of"]

#: Compare-and-set attempts of one count (each failed one means another vote
#: landed meanwhile; that voter counts the gate too, so a few suffice).
ATTEMPTS = 8


def tally(rt: Runtime, spec: SweepSpec, todo_id: str,
          approvers_of: Callable[[], Approvers], *, may_pass: bool = True
          ) -> GateDecision | None:
    """Count a waiting gate's votes again, verified, if they changed since they were
    last counted, and record the count (approvals, refusals) with
    ``lua/gate_decide.lua``, which passes the gate when they suffice; None when there
    was nothing to count. ``may_pass`` False (the sending path, which cannot carry
    the sweep on from a gate): a count that would pass is left to the supervision
    pass. Where the catalog (so whether approvers must prove who they are) is not
    readable, nothing is counted: the next vote, made where it is, settles it."""
    gate = spec.todos[todo_id].gate
    assert gate is not None
    # The spec's facts first (the approvals it needs, its predecessors, where it sits,
    # what its passing sends on); then, each attempt, one read of every record the count
    # goes by, the checks, and the one write of the count.
    needed = int(gate.get("approvals") or 1)
    preds = [p for p in spec.todos[todo_id].preds if p in spec.todos]
    level, succs = level_index(spec, todo_id), spec.sent_on_finish(todo_id)
    digest = decisions.spec_digest(spec)
    policy = policy_of(rt.settings)
    for _ in range(ATTEMPTS):
        cp, raw, pred_cps, record = rt.checkpoints.count_read(spec.sweep_id, todo_id, preds,
                                                              START_FIELDS)
        if cp is None or cp.get("status") != TodoStatus.awaiting_approval or not raw:
            return None
        if cp.get("settled") == votes_digest(raw):
            return None  # counted as they are (the script records what it counted over)
        approvers = approvers_of()
        if not approvers.known:
            log.warning("sweep %s: gate %s has votes not yet counted, and its catalog %s is "
                        "not readable here to say how approvers prove who they are: left "
                        "for a process that has it", spec.sweep_id, todo_id, spec.catalog)
            return None
        # The binding computed again from the signed spec and the predecessors'
        # outcomes (read with the votes), never taken from the checkpoint (a keyless
        # writer could roll it back to the one older votes were cast under).
        binding = decisions.binding_over(spec, todo_id, pred_cps)
        rolled = decisions.binding_refusal(spec.sweep_id, todo_id, cp.get("binding"), binding)
        if rolled:
            log.warning("sweep %s: %s", spec.sweep_id, rolled)
            return None
        started_by = starter_of(record, spec.sweep_id, approvers)
        users, refused, _ = verified(spec.sweep_id, todo_id, gate, binding, votes_of(raw),
                                     started_by=started_by, approvers=approvers,
                                     policy=policy)
        if not may_pass and len(users) >= needed:
            return None
        sealed = (decision_stamp(rt.settings.signing_keys, spec.sweep_id, todo_id, digest,
                                 binding, spec.run, users, votes_of(raw))
                  if len(users) >= needed else None)
        got = rt.transitions.decide_gate(spec.sweep_id, todo_id, who="", decision="approve",
                                         binding=binding, seen=raw, counted=users,
                                         refused=refused, level=level, successors=succs,
                                         sealed=sealed)
        if got.verdict == "changed":
            continue
        for why in refused:
            log.warning("sweep %s: %s", spec.sweep_id, why)
        return got
    return None
