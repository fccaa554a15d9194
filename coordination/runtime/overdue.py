"""What a sweep has said is overdue: one ``d:<name>`` field of the sweep's hash per todo
(``d:@plan`` for its plan), set once (HSETNX) with its ``todo.overdue`` or ``plan.overdue``
in the same step, so each is said once per (sweep, todo) whichever process's supervision
pass sees it first, however soon that pass dies (:mod:`coordination.sweeps.notices.overdue`).
A todo past its due time that no sweep runs is marked the same way in one hash of its own
(:attr:`Keys.overdue_unswept`, ``d:<todo>@<due>``), once per due time, by `coord beat`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from coordination.runtime.scripts import lua
from coordination.runtime.store import Store

if TYPE_CHECKING:
    from coordination.runtime.events import Prepared

#: The name a sweep's plan is marked under (no todo id starts with ``@``).
PLAN = "@plan"


def overdue_field(name: str) -> str:
    """The sweep-hash field marking ``name`` (a todo id, or :data:`PLAN`) said overdue."""
    return f"d:{name}"


class OverdueMarks(Store):
    """The ``d:`` fields of sweeps' hashes."""

    def marked(self, sweep_id: str, names: Sequence[str]) -> set[str]:
        """Those of ``names`` already said overdue in the sweep."""
        return self._marked(self.keys.sweep(sweep_id), names)

    def unswept_marked(self, names: Sequence[str]) -> set[str]:
        """Those of ``names`` (``TODO@due`` keys) already said overdue while no sweep ran."""
        return self._marked(self.keys.overdue_unswept, names)

    def _marked(self, hash_key: str, names: Sequence[str]) -> set[str]:
        if not names:
            return set()
        got = self.r.hmget(hash_key, [overdue_field(n) for n in names])
        return {n for n, v in zip(names, got) if v is not None}

    def mark_unswept(self, said: Mapping[str, Prepared], at: float) -> list[str]:
        """:meth:`mark` for todos no sweep runs (``said``: ``TODO@due`` -> its
        ``todo.overdue``, no sweep): the same script, on their own hash. Of two beats
        at once (a standby taking over), one marks each and says it."""
        return self._mark(self.keys.overdue_unswept, said, at)

    def mark(self, sweep_id: str, said: Mapping[str, Prepared], at: float) -> list[str]:
        """Mark the names of ``said`` overdue in the sweep, each with its event (its
        ``todo.overdue``/``plan.overdue``, :meth:`EventLog.prepare`; all to the same
        streams) written in the same step, only by the call that marks it
        (``lua/overdue_mark.lua``: of two passes at once, one marks each and says it).
        Returns those this call marked, in order."""
        return self._mark(self.keys.sweep(sweep_id), said, at)

    def _mark(self, hash_key: str, said: Mapping[str, Prepared], at: float) -> list[str]:
        names = list(said)
        if not names:
            return []
        first = said[names[0]]
        if any((ev.streams, ev.maxlens) != (first.streams, first.maxlens)
               for ev in said.values()):
            raise ValueError("overdue events marked together must go to the same streams")
        got = lua("overdue_mark")(
            self.r, [hash_key, *first.keys()],
            [repr(at), json.dumps([overdue_field(n) for n in names]),
             "\n".join(said[n].text for n in names), first.channel, *first.maxlens])
        return [names[i - 1] for i in json.loads(got)]
