"""Worker liveness: who is up, which repos they serve, which messages they hold.

Every ``coord worker`` beats every ``COORD_WORKER_HEARTBEAT`` seconds: one
pipeline that writes its record (JSON, expiring after three missed beats) and
its score in the ``workers`` index. A worker that dies simply stops beating;
its record expires and readers drop its index entry. A worker that stops
cleanly says so at once (``stopping``: it takes no new work, but still beats
while its running todos finish) and removes its record when it exits.

How long a worker has been silent is read from its record's remaining TTL, i.e.
by the Redis server's clock, never by comparing two hosts' clocks:
:meth:`WorkerRegistry.gone` names the workers silent for more than
``GONE_AFTER`` beats, which ``sweep status`` shows on their running todos
(display only: a dead holder's todo is re-run when its lease expires, as before).

What a worker *holds* (the task ids Celery has reserved or is running on it,
including todos waiting for a repo lease) is how the supervisor tells a todo
waiting in a live worker from one whose message was lost with a dead worker.
``coord workers`` and ``coord repo list`` read the same records.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TypedDict

import redis

from coordination.runtime.store import Store

log = logging.getLogger(__name__)

MISSED_BEATS = 3  # a worker silent for this many beats counts as gone (its record expires)
GONE_AFTER = 2  # a running todo's worker silent for this many beats is shown as gone


def record_ttl_ms(beat: float) -> int:
    """How long a worker's record lives after one beat (``beat`` seconds apart)."""
    return max(1000, int(beat * MISSED_BEATS * 1000))


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
    stopping: bool
    #: the processes of a `coord worker` of several repos (1: a worker of one process)
    processes: int


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
    stopping: bool = False  # shutting down: takes no new work, finishing what it runs
    #: a process forked by a `coord worker` of several repos: that process's worker name
    #: and pid (``coord workers`` lists the processes of one group as one worker)
    group: str = ""
    group_pid: int = 0
    #: it holds a signing key (``coord doctor`` warns when such a worker runs todos as
    #: root: a root todo reads any process's environment and memory)
    keyed: bool = False
    #: the OS user its todos run as (``--todo-user``; else the worker's own), and
    #: whether that is root
    todo_user: str = ""
    todos_as_root: bool = False

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
            "stopping": self.stopping, "processes": 1,
        }


def worker_documents(records: Iterable[WorkerRecord]) -> list[WorkerDocument]:
    """`coord workers --json`: one document per `coord worker` a person started, the
    processes of a worker of several repos folded into theirs (its name and pid, every
    repo they serve, what they run and hold, the latest beat, stopping when one is)."""
    out: list[WorkerDocument] = []
    groups: dict[str, list[WorkerRecord]] = {}
    for rec in records:
        if rec.group:
            groups.setdefault(rec.group, []).append(rec)
        else:
            out.append(rec.public())
    for name, members in groups.items():
        out.append({
            "name": name, "host": members[0].host, "pid": members[0].group_pid,
            "repos": [r for m in members for r in m.repos],
            "running": sorted(t for m in members for t in m.running),
            "last_seen": max(m.last_seen for m in members),
            "started_at": min(m.started_at for m in members),
            "held": sum(len(m.held) for m in members),
            "stopping": any(m.stopping for m in members), "processes": len(members),
        })
    return sorted(out, key=lambda d: d["name"])


@dataclass(frozen=True)
class WorkerClock:
    """A live worker and how far its clock is from the server's (seconds; positive:
    ahead), measured on its last beat: the time it wrote minus when, by the server's
    clock, the beat landed (from its record's remaining TTL). `coord doctor` reads it."""

    record: WorkerRecord
    skew: float | None


class WorkerRegistry(Store):
    """Reads and writes worker records, and the messages workers set aside."""

    def beat(self, record: WorkerRecord) -> None:
        """Publish ``record`` as alive now (one round trip, two commands: a MULTI/EXEC
        around them would double a beat's commands for nothing. The record is written
        first, so a reader never finds the index entry of this beat without it; a
        reader pruning the entry of an expired record just before a beat lands can
        drop it until the next beat, with or without a transaction)."""
        record.last_seen = time.time()
        ttl_ms = record_ttl_ms(record.beat)
        pipe = self.r.pipeline(transaction=False)
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
            try:
                self.r.zrem(self.keys.workers, *gone)
            except redis.exceptions.NoPermissionError:
                pass  # a read-only user (the web view, /metrics): the next writer prunes
        return sorted(out, key=lambda w: w.name)

    def gone(self, names: Iterable[str]) -> set[str]:
        """Of ``names``, the workers that stopped beating: no record (expired, or
        removed on exit), or one not renewed for more than ``GONE_AFTER`` of its own
        beats. Measured by the record's remaining TTL (the server's clock), so the
        reader's and the worker's clocks never meet. One round trip."""
        wanted = sorted({n for n in names if n})
        if not wanted:
            return set()
        pipe = self.r.pipeline(transaction=False)
        for name in wanted:
            pipe.get(self.keys.worker(name))
            pipe.pttl(self.keys.worker(name))
        replies = pipe.execute()
        out: set[str] = set()
        for i, name in enumerate(wanted):
            text, left_ms = replies[2 * i], replies[2 * i + 1]
            if text is None:
                out.add(name)
                continue
            try:
                beat = float(WorkerRecord.from_json(str(text)).beat)
            except (ValueError, TypeError):
                continue  # unreadable: say nothing rather than something wrong
            if left_ms is None or int(left_ms) < 0:
                continue  # no TTL (not written by a beat): not ours to judge
            silent_ms = record_ttl_ms(beat) - int(left_ms)
            if silent_ms > GONE_AFTER * beat * 1000:
                out.add(name)
        return out

    def clocks(self, workers: list[WorkerRecord]) -> list[WorkerClock]:
        """Each of ``workers``' clock skew against the server's, in one round trip. Exact
        to within a beat's write time (a few milliseconds): a beat writes its own clock's
        ``last_seen`` and sets the record's TTL in one transaction."""
        if not workers:
            return []
        pipe = self.r.pipeline(transaction=False)
        pipe.time()
        for w in workers:
            pipe.pttl(self.keys.worker(w.name))
        now_raw, *ttls = pipe.execute()
        server_now = float(now_raw[0]) + float(now_raw[1]) / 1e6
        out = []
        for w, left in zip(workers, ttls):
            if left is None or int(left) < 0 or not w.last_seen:
                out.append(WorkerClock(w, None))
                continue
            beat_at = server_now - (record_ttl_ms(w.beat) - int(left)) / 1000.0
            out.append(WorkerClock(w, round(w.last_seen - beat_at, 3)))
        return out

    def held(self) -> set[str]:
        """Task ids some live worker has reserved or is running."""
        return {t for w in self.live() for t in w.held}

    def per_repo(self) -> dict[str, int]:
        """Repo -> number of live workers serving it (a stopping one takes no new work)."""
        counts: dict[str, int] = {}
        for w in self.live():
            if w.stopping:
                continue
            for repo in w.repos:
                counts[repo] = counts.get(repo, 0) + 1
        return counts

    def set_aside(self, entry: Mapping[str, object], keep: int) -> None:
        """Keep a malformed message a worker could not run (``workers.broker.dead_letter``
        says what ``entry`` holds), the newest ``keep`` only: one MULTI/EXEC."""
        pipe = self.r.pipeline(transaction=True)
        pipe.lpush(self.keys.dead_letters, json.dumps(entry))
        pipe.ltrim(self.keys.dead_letters, 0, keep - 1)
        pipe.execute()

    def dead_letters(self, limit: int) -> list[str]:
        """The newest ``limit`` malformed messages workers set aside (JSON text each,
        as ``workers.broker.dead_letter`` wrote them)."""
        return [t if isinstance(t, str) else t.decode("utf-8", "replace")
                for t in self.r.lrange(self.keys.dead_letters, 0, limit - 1)]

    def purge_dead_letters(self) -> None:
        self.r.delete(self.keys.dead_letters)
