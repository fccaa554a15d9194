"""Redis-backed state of the runtime: leases, the event ledger, checkpoints.

One client (``get_redis``) serves both modes: a real server when
``COORD_REDIS_URL`` is set, else a process-wide in-memory fakeredis server.
"""

from coordination.runtime.checkpoints import CheckpointStore
from coordination.runtime.client import get_redis, reset_embedded
from coordination.runtime.events import Event, EventLog
from coordination.runtime.leases import Heartbeat, Lease, LeaseManager

__all__ = [
    "CheckpointStore",
    "Event",
    "EventLog",
    "Heartbeat",
    "Lease",
    "LeaseManager",
    "get_redis",
    "reset_embedded",
]
