"""Redis-backed state of the runtime: leases, the event ledger, checkpoints.

One client (``get_redis``) serves both modes: a real server when
``COORD_REDIS_URL`` is set, else a process-wide in-memory fakeredis server.

Names are re-exported lazily (PEP 562), as the planner's are: importing one
submodule that needs no Redis client (``history``, read by `coord history`
embedded) does not load redis-py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "CheckpointStore": "checkpoints",
    "get_redis": "client",
    "reset_embedded": "client",
    "Event": "events",
    "EventLog": "events",
    "Heartbeat": "leases",
    "Lease": "leases",
    "LeaseManager": "leases",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from coordination.runtime.checkpoints import CheckpointStore
    from coordination.runtime.client import get_redis, reset_embedded
    from coordination.runtime.events import Event, EventLog
    from coordination.runtime.leases import Heartbeat, Lease, LeaseManager


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
