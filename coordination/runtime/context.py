"""The runtime's stateful parts bundled for one process.

Embedded and distributed modes build the same object; only the Redis client
differs (a real server, or the in-process stand-in).
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from coordination.keys import Keys
from coordination.runtime import archive
from coordination.runtime.breakers import Breakers
from coordination.runtime.checkpoints import CheckpointStore
from coordination.runtime.client import get_redis, is_embedded
from coordination.runtime.events import EventLog
from coordination.runtime.history import HistoryStore, history_path, open_history
from coordination.runtime.leases import LeaseManager
from coordination.runtime.messages import Dispatcher
from coordination.runtime.transitions import Transitions
from coordination.runtime.workers import WorkerRegistry
from coordination.settings import Settings, get_settings


@dataclass
class Runtime:
    settings: Settings
    keys: Keys
    redis: redis.Redis
    events: EventLog
    checkpoints: CheckpointStore
    leases: LeaseManager
    transitions: Transitions
    workers: WorkerRegistry
    breakers: Breakers
    #: How todos are sent (given by whoever wires the process: worker, CLI, embedded).
    dispatcher: Dispatcher | None = field(default=None, repr=False)

    @classmethod
    def create(cls, settings: Settings | None = None) -> Runtime:
        settings = settings or get_settings()
        keys = Keys(settings.namespace)
        r = get_redis(settings)
        events = EventLog(r, keys, maxlen=settings.events_maxlen)
        return cls(
            settings=settings,
            keys=keys,
            redis=r,
            events=events,
            checkpoints=CheckpointStore(r, keys),
            leases=LeaseManager(r, keys, ttl=settings.lease_ttl),
            transitions=Transitions(r, keys, lease_ttl=settings.lease_ttl),
            workers=WorkerRegistry(r, keys),
            breakers=Breakers(r, keys, events),
        )

    @property
    def in_process(self) -> bool:
        """Is its Redis the in-process stand-in (no server to block on)?"""
        return is_embedded(self.redis)

    def history(self, catalog: str | os.PathLike[str] | None) -> HistoryStore | None:
        """The run history of this mode (close it after use); None without one."""
        return open_history(self.settings, catalog, self.redis)

    def keep_beside(self, catalog: str | os.PathLike[str], sweep_id: str) -> None:
        """Embedded: (re)write a sweep's keys beside ``catalog`` (its history file)."""
        archive.save(self.redis, self.keys, history_path(catalog), sweep_id,
                     keep_days=self.settings.retention_days)

    def restore_kept(self, catalog: Path, sweep_ids: list[str] | None = None, *,
                     newest: int | None = None) -> list[str]:
        """Embedded: load sweeps an earlier process kept beside ``catalog``."""
        return archive.restore(self.redis, self.keys, history_path(catalog),
                               sweep_ids=sweep_ids, newest=newest)

    @property
    def app(self) -> Any:
        """The Celery app of a Celery dispatcher (give one as ``dispatcher``)."""
        app = getattr(self.dispatcher, "app", None)
        if app is None:
            raise RuntimeError("this runtime was given no Celery app")
        return app


@functools.lru_cache(maxsize=1)
def get_runtime() -> Runtime:
    """The process-wide runtime for the current settings."""
    return Runtime.create()


def worker_identity() -> str:
    """host:pid, recorded on checkpoints so a status names who ran a todo."""
    return f"{socket.gethostname()}:{os.getpid()}"
