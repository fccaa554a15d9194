"""The runtime's stateful parts bundled for one process.

Embedded and distributed modes build the same object; only the Redis client
differs (a real server, or the in-process stand-in).
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from coordination.keys import Keys
from coordination.settings import Settings, get_settings


@dataclass
class Runtime:
    settings: Settings
    keys: Keys
    redis: Any
    events: Any
    checkpoints: Any
    leases: Any
    workers: Any = None  # WorkerRegistry
    _app: Any = field(default=None, repr=False)

    @classmethod
    def create(cls, settings: Settings | None = None) -> Runtime:
        from coordination.runtime.checkpoints import CheckpointStore
        from coordination.runtime.client import get_redis
        from coordination.runtime.events import EventLog
        from coordination.runtime.leases import LeaseManager
        from coordination.runtime.workers import WorkerRegistry

        settings = settings or get_settings()
        keys = Keys(settings.namespace)
        r = get_redis(settings)
        return cls(
            settings=settings,
            keys=keys,
            redis=r,
            events=EventLog(r, keys, maxlen=settings.events_maxlen),
            checkpoints=CheckpointStore(r, keys),
            leases=LeaseManager(r, keys, ttl=settings.lease_ttl),
            workers=WorkerRegistry(r, keys),
        )

    @property
    def app(self) -> Any:
        """The Celery app (created on first use: the CLI's read paths never need it)."""
        if self._app is None:
            from workers.app import create_app

            self._app = create_app(self.settings)
        return self._app

    @app.setter
    def app(self, value: Any) -> None:
        self._app = value


@functools.lru_cache(maxsize=1)
def get_runtime() -> Runtime:
    """The process-wide runtime for the current settings."""
    return Runtime.create()


def worker_identity() -> str:
    """host:pid, recorded on checkpoints so a status names who ran a todo."""
    return f"{socket.gethostname()}:{os.getpid()}"
