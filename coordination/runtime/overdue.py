"""What a sweep has said is overdue: one ``d:<name>`` field of the sweep's hash per todo
(``d:@plan`` for its plan), set once (HSETNX), so ``todo.overdue`` and ``plan.overdue``
are emitted once per (sweep, todo) whichever process's supervision pass sees it first
(:mod:`coordination.sweeps.notices.overdue`)."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from coordination.keys import Keys

#: The name a sweep's plan is marked under (no todo id starts with ``@``).
PLAN = "@plan"


def overdue_field(name: str) -> str:
    """The sweep-hash field marking ``name`` (a todo id, or :data:`PLAN`) said overdue."""
    return f"d:{name}"


class OverdueMarks:
    """The ``d:`` fields of sweeps' hashes."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.redis = r
        self.keys = keys

    def marked(self, sweep_id: str, names: Sequence[str]) -> set[str]:
        """Those of ``names`` already said overdue in the sweep."""
        if not names:
            return set()
        got = self.redis.hmget(self.keys.sweep(sweep_id), [overdue_field(n) for n in names])
        return {n for n, v in zip(names, got) if v is not None}

    def mark(self, sweep_id: str, names: Sequence[str], at: float) -> list[str]:
        """Mark ``names`` overdue in the sweep; returns those this call marked (HSETNX:
        of two passes at once, one marks each, and only it emits the event)."""
        if not names:
            return []
        key = self.keys.sweep(sweep_id)
        with self.redis.pipeline(transaction=False) as pipe:
            for n in names:
                pipe.hsetnx(key, overdue_field(n), repr(at))
            set_ = pipe.execute()
        return [n for n, was_set in zip(names, set_) if was_set]
