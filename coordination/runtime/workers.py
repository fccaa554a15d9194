"""Worker liveness: who is up, which repos they serve, which messages they hold.

Every ``coord worker`` beats every ``COORD_WORKER_HEARTBEAT`` seconds: one
pipeline that writes its record (JSON, expiring after three missed beats) and
its score in the ``workers`` index. A worker that dies simply stops beating;
its record expires and readers drop its index entry.

What a worker *holds* (the task ids Celery has reserved or is running on it,
including todos waiting for a repo lease) is how the supervisor tells a todo
waiting in a live worker from one whose message was lost with a dead worker.
``coord workers`` and ``coord repo list`` read the same records.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import TypedDict

import redis

from coordination.keys import Keys

log = logging.getLogger(__name__)

MISSED_BEATS = 3  # a worker silent for this many beats counts as gone


class WorkerDocument(TypedDict):
    """One worker of ``coord workers --json``."""

    name: str
    host: str
    pid: int
    repos: list[str]
    running: list[str]
    last_seen: float
    started_at: float
    held: int


@dataclass
class WorkerRecord:
    name: str
    host: str
    pid: int
    repos: list[str]
    running: list[str] = field(default_factory=list)  # "<sweep>/<todo>" being executed
    held: list[str] = field(default_factory=list)  # Celery task ids reserved or active
    last_seen: float = 0.0
    started_at: float = 0.0
    beat: float = 5.0  # this worker's beat interval (seconds)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> WorkerRecord:
        data = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def public(self) -> WorkerDocument:
        """The `coord workers --json` document of this worker."""
        return {
            "name": self.name, "host": self.host, "pid": self.pid, "repos": self.repos,
            "running": self.running, "last_seen": self.last_seen,
            "started_at": self.started_at, "held": len(self.held),
        }


class WorkerRegistry:
    """Reads and writes worker records, and the messages workers set aside."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys

    def beat(self, record: WorkerRecord) -> None:
        """Publish ``record`` as alive now (one round trip)."""
        record.last_seen = time.time()
        ttl_ms = max(1000, int(record.beat * MISSED_BEATS * 1000))
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self.keys.worker(record.name), record.to_json(), px=ttl_ms)
        pipe.zadd(self.keys.workers, {record.name: record.last_seen})
        pipe.execute()

    def leave(self, name: str) -> None:
        """A clean shutdown: gone at once rather than after missed beats."""
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self.keys.worker(name))
        pipe.zrem(self.keys.workers, name)
        pipe.execute()

    def live(self) -> list[WorkerRecord]:
        """Every worker whose record has not expired, by name; prunes the dead from the index."""
        names = [str(n) for n in self.r.zrange(self.keys.workers, 0, -1)]
        if not names:
            return []
        raw = self.r.mget([self.keys.worker(n) for n in names])
        out, gone = [], []
        for name, text in zip(names, raw):
            if text is None:
                gone.append(name)
                continue
            try:
                out.append(WorkerRecord.from_json(str(text)))
            except (ValueError, TypeError):
                log.warning("unreadable worker record %s; ignored", name)
        if gone:
            self.r.zrem(self.keys.workers, *gone)
        return sorted(out, key=lambda w: w.name)

    def held(self) -> set[str]:
        """Task ids some live worker has reserved or is running."""
        return {t for w in self.live() for t in w.held}

    def per_repo(self) -> dict[str, int]:
        """Repo -> number of live workers serving it."""
        counts: dict[str, int] = {}
        for w in self.live():
            for repo in w.repos:
                counts[repo] = counts.get(repo, 0) + 1
        return counts

    def dead_letters(self, limit: int) -> list[str]:
        """The newest ``limit`` malformed messages workers set aside (JSON text each,
        as ``workers.broker.dead_letter`` wrote them)."""
        return [t if isinstance(t, str) else t.decode("utf-8", "replace")
                for t in self.r.lrange(self.keys.dead_letters, 0, limit - 1)]

    def purge_dead_letters(self) -> None:
        self.r.delete(self.keys.dead_letters)
