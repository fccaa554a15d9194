"""A gate's votes: which of them count, and counting them.

Which votes count is :mod:`coordination.trust.approvers` (:func:`verified`: the
seal, ``from:``, with the catalog's ``approvers:`` the SSH signature, the starter,
one key one approver; the landing rule checks votes with it too). Lua cannot check
either, so the runtime counts them where it writes the count
(:mod:`coordination.runtime.gate_count`: verified, sealed when it passes the gate,
handed to ``lua/gate_decide.lua`` with the votes it was made over, a
compare-and-set), from the facts the sweep's spec gives (:func:`count_of`).
:mod:`.approvals` (people deciding, the supervision's settling) and :mod:`.gates`
(a gate opened again with votes carried over) count through here.
"""

from __future__ import annotations

from collections.abc import Callable

from coordination.runtime.context import Runtime
from coordination.runtime.gate_count import ATTEMPTS, GateCount
from coordination.runtime.transitions import GateDecision
from coordination.sweeps.spec import SweepSpec
from coordination.sweeps.spec_store import level_index
from coordination.trust.approvers import Approvers, about, verified, votes_of

__all__ = ["ATTEMPTS", "Approvers", "about", "count_of", "tally", "verified", "votes_of"]


def count_of(spec: SweepSpec, todo_id: str) -> GateCount:
    """What the count of gate ``todo_id``'s votes goes by, from ``spec``: the approvals
    it needs, its predecessors, where it sits, what its passing sends on, the spec's
    digest and run."""
    gate = spec.todos[todo_id].gate
    assert gate is not None  # (only gates are counted)
    return GateCount(spec.sweep_id, todo_id, gate, int(gate.get("approvals") or 1),
                     tuple(p for p in spec.todos[todo_id].preds if p in spec.todos),
                     level_index(spec, todo_id), tuple(spec.sent_on_finish(todo_id)),
                     spec.digest, spec.run, spec.catalog)


def tally(rt: Runtime, spec: SweepSpec, todo_id: str,
          approvers_of: Callable[[], Approvers], *, may_pass: bool = True
          ) -> GateDecision | None:
    """Count a waiting gate's votes again, verified, if they changed since they were
    last counted, and record the count (:meth:`GateCounter.count
    <coordination.runtime.gate_count.GateCounter.count>`); None when there was nothing
    to count. ``may_pass`` False (the sending path, which cannot carry the sweep on
    from a gate): a count that would pass is left to the supervision pass."""
    return rt.gates.count(count_of(spec, todo_id), approvers_of, may_pass=may_pass)
