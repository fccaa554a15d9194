"""Redis-backed state of the runtime, and only that: leases, the event ledger,
checkpoints (and a sweep's hash layout), transitions and their Lua, the result cache,
tallies and metric counters, workers' records, changes' records, the history store,
notifications, shared context, breakers, the broker's queues, the ACL users' key
patterns, and the migrations of all these. :mod:`.context` bundles the stores for
one process.

The client it reads and writes through is :mod:`coordination.connection`'s
(``get_redis``); what a record must prove before a decision reads it is
:mod:`coordination.trust`'s; the arithmetic over recorded runs is
:mod:`coordination.stats`', and reading the history (search, trends) is
:mod:`coordination.history`'s.

Names are re-exported lazily (PEP 562), as the planner's are: importing one
submodule that needs no Redis client (``history``, read by `coord history`
embedded) does not load redis-py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coordination.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "CheckpointStore": "checkpoints",
    "Event": "events",
    "EventLog": "events",
    "Heartbeat": "leases",
    "Lease": "leases",
    "LeaseManager": "leases",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from coordination.runtime.checkpoints import CheckpointStore
    from coordination.runtime.events import Event, EventLog
    from coordination.runtime.leases import Heartbeat, Lease, LeaseManager


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
