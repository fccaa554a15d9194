"""The event ledger: capped Redis streams for replay, pub/sub for live tailing.

Every event goes to the global stream and, when it belongs to a sweep, to that
sweep's stream too (capped separately, so a busy namespace cannot trim a
sweep's history away early). Followers read streams, not pub/sub: a stream
id is a resume point, so a reconnect or a late start misses nothing. The
pub/sub message is for dashboards that only want what happens from now on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis

from coordination.keys import Keys
from coordination.status import EventKind
from coordination.runtime.client import lua

log = logging.getLogger(__name__)

KINDS = frozenset(k.value for k in EventKind)

_PAGE = 1000
_RESERVED = ("id", "kind", "ts", "sweep_id", "todo_id")


@dataclass
class Event:
    id: str
    kind: str
    ts: float
    sweep_id: str | None
    todo_id: str | None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "ts": self.ts,
            "sweep_id": self.sweep_id, "todo_id": self.todo_id, **self.data,
        }  # fmt: skip

    @classmethod
    def from_entry(cls, entry_id: str, fields: Any) -> Event:
        """Decode one stream entry (its single field ``e`` holds the JSON)."""
        d = json.loads(fields["e"])
        d.pop("id", None)
        kind = d.pop("kind")
        ts = float(d.pop("ts"))
        sweep_id = d.pop("sweep_id", None)
        todo_id = d.pop("todo_id", None)
        return cls(entry_id, kind, ts, sweep_id, todo_id, d)


class EventLog:
    """Appends events and reads them back, in order, from Redis streams."""

    def __init__(
        self, r: redis.Redis, keys: Keys, maxlen: int = 100_000, sweep_maxlen: int = 20_000
    ) -> None:
        self.r = r
        self.keys = keys
        self.maxlen = maxlen
        self.sweep_maxlen = sweep_maxlen

    def emit(
        self, kind: str, *, sweep_id: str | None = None, todo_id: str | None = None, **data: Any
    ) -> str:
        """Record one event; returns its id in the sweep stream (else the global one).

        ``data`` must be JSON types; keys named like the envelope are refused
        so that ``to_dict`` cannot silently lose one.
        """
        clash = [k for k in data if k in _RESERVED]
        if clash:
            raise ValueError(f"event data may not use the reserved names {clash}")
        payload = {"kind": kind, "ts": time.time(), "sweep_id": sweep_id, "todo_id": todo_id}
        payload.update(data)
        text = json.dumps(payload, separators=(",", ":"))
        stream_keys = [self.keys.events]
        if sweep_id is not None:
            stream_keys.append(self.keys.sweep_events(sweep_id))
        # One script rather than MULTI: the published message must carry the id
        # XADD assigns, and both appends plus the publish stay atomic.
        res = lua("event_emit")(
            self.r,
            stream_keys,
            [text, self.maxlen, self.sweep_maxlen, self.keys.events_channel],
        )
        return str(res)

    def _stream(self, sweep_id: str | None) -> str:
        return self.keys.sweep_events(sweep_id) if sweep_id else self.keys.events

    def read(
        self, sweep_id: str | None = None, after: str = "0-0", count: int | None = None
    ) -> list[Event]:
        """Events after id ``after`` (exclusive), oldest first, at most ``count``."""
        return list(self._replay(self._stream(sweep_id), after, count))

    def _replay(self, stream: str, after: str, count: int | None = None) -> Iterator[Event]:
        """Page through XRANGE so a 100k-event stream is never one huge reply."""
        left = count
        while left is None or left > 0:
            page = _PAGE if left is None else min(_PAGE, left)
            entries: list[Any] = self.r.xrange(stream, min=f"({after}", max="+", count=page) or []
            for entry_id, fields in entries:
                yield Event.from_entry(entry_id, fields)
            if len(entries) < page:
                return
            after = entries[-1][0]
            if left is not None:
                left -= len(entries)

    def last_id(self, sweep_id: str | None = None) -> str:
        """The id of the newest event (``0-0`` for none): a point to follow from."""
        entries: Any = self.r.xrevrange(self._stream(sweep_id), count=1) or []
        return str(entries[0][0]) if entries else "0-0"

    def follow(
        self,
        sweep_id: str | None = None,
        after: str = "0-0",
        block_ms: int = 1000,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[Event]:
        """Every event after ``after``, then new ones as they come, until ``stop()``.

        Replay and live reading continue from the last id yielded, so nothing
        emitted in between is missed; a dropped connection is retried from that
        same id.
        """
        stream = self._stream(sweep_id)
        last = after
        for event in self._replay(stream, last):
            yield event
            last = event.id
        backoff = 0.1
        while stop is None or not stop():
            try:
                reply: Any = self.r.xread({stream: last}, count=_PAGE, block=max(1, block_ms))
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("event stream %s unreachable, retrying: %s", stream, exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.1
            streams = reply.items() if isinstance(reply, dict) else (reply or [])  # RESP3 | 2
            for _name, entries in streams:
                for entry_id, fields in entries:
                    event = Event.from_entry(entry_id, fields)
                    last = entry_id
                    yield event
