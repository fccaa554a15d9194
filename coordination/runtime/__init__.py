"""Redis-backed state of the runtime: leases, the event ledger, checkpoints.

The client it reads and writes through is :mod:`coordination.connection`'s
(``get_redis``); what a record must prove before a decision reads it is
:mod:`coordination.trust`'s.

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
