"""The event ledger: capped Redis streams for replay, pub/sub for live tailing.

An event is stored only in the streams its readers need (each XADD is one more
Redis command, and todo events are most of them):

- a todo event (it names a sweep and a todo) goes to its sweep's stream only:
  the sweep's readers are the ones who want it, and a global copy would double
  the writes of the busiest kind of event;
- any other event of a sweep (``sweep.*``, ``level.done``, ``repo.unattended``)
  goes to the global stream and to the sweep's: the global stream stays the
  namespace's timeline of sweeps, and the index of which sweeps exist;
- an event of no sweep goes to the global stream only.

Each stream is capped separately, so a busy namespace cannot trim a sweep's
history away early. The namespace-wide view (``read``/``follow`` without a
sweep) is a merge: the global stream, plus the todo events of the stream of
every sweep it names, ordered by stream id (the ids of all streams come from
the one server clock; within one millisecond, the sequence numbers of two
streams do not say which event came first). Followers read streams, not pub/sub: a stream id is a
resume point, so a reconnect or a late start misses nothing. The pub/sub
messages (on ``Keys.events_channel``) are for dashboards that only want what
happens from now on: one message per script call that emitted, a JSON array of
its events in stream order, each object with the id its readers resume from
(workers before 0.4 published one object per event; :func:`live_events` reads
both).
"""

from __future__ import annotations

import heapq
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, cast

import redis
from redis.typing import KeyT, StreamIdT

from coordination.keys import Keys
from coordination.runtime.scripts import lua
from coordination.status import SWEEP_LIVE, EventKind

log = logging.getLogger(__name__)

KINDS = frozenset(k.value for k in EventKind)

_PAGE = 1000
_RESERVED = ("id", "kind", "ts", "sweep_id", "todo_id")
_SEQ_MAX = 2**64 - 1  # the largest sequence part of a stream id

#: A stream entry's fields, as the (decoding) client reads them: ``e`` holds the event.
Fields = Mapping[str, str]
#: A stream entry: its id and fields.
Entry = tuple[str, Fields]
#: An XREAD reply: RESP3 a dict of stream -> entries, RESP2 (stream, entries) pairs.
XReadReply = Mapping[str, Sequence[Entry]] | Sequence[tuple[str, Sequence[Entry]]] | None


def _entries(reply: object) -> list[Entry]:
    """The entries of an XRANGE / XREVRANGE reply (None: no stream) as the client
    decodes them: redis-py types ids and fields as bytes or text, ours are text."""
    return cast("list[Entry]", reply or [])


@dataclass
class Event:
    id: str
    kind: str
    ts: float
    sweep_id: str | None
    todo_id: str | None
    #: Everything else the event carries (JSON values; which ones depends on ``kind``:
    #: a reader takes what its kind is known to carry, older events may lack it).
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """The event as one JSON object (``coord events --json`` prints one a line)."""
        return {
            "id": self.id, "kind": self.kind, "ts": self.ts,
            "sweep_id": self.sweep_id, "todo_id": self.todo_id, **self.data,
        }  # fmt: skip

    @classmethod
    def from_entry(cls, entry_id: str, fields: Fields) -> Event:
        """Decode one stream entry (its single field ``e`` holds the JSON)."""
        d = json.loads(fields["e"])
        d.pop("id", None)
        kind = d.pop("kind")
        ts = float(d.pop("ts"))
        sweep_id = d.pop("sweep_id", None)
        todo_id = d.pop("todo_id", None)
        return cls(entry_id, kind, ts, sweep_id, todo_id, d)

    @property
    def of_todo(self) -> bool:
        """A todo event: stored in its sweep's stream only (see the module docstring)."""
        return self.sweep_id is not None and self.todo_id is not None


def stream_id_key(entry_id: str) -> tuple[int, int]:
    """A stream id as numbers: as text, ``9-0`` would sort after ``10-0``."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def stream_entries(reply: XReadReply) -> Iterator[tuple[str, str, Fields]]:
    """``(stream, entry id, fields)`` of an XREAD reply, RESP3 (a dict) or RESP2 (pairs)."""
    streams = reply.items() if isinstance(reply, Mapping) else (reply or [])
    for name, entries in streams:
        for entry_id, fields in entries:
            yield name, entry_id, fields


def _by_id(event: Event) -> tuple[int, int]:
    return stream_id_key(event.id)


def _later(a: str, b: str) -> str:
    return a if stream_id_key(a) >= stream_id_key(b) else b


def _before(entry_id: str) -> str:
    """The stream id just before ``entry_id``: following from it starts at that entry."""
    ms, seq = stream_id_key(entry_id)
    if seq > 0:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-{_SEQ_MAX}" if ms > 0 else "0-0"


def _live(raw: str | None) -> bool:
    """Whether a sweep hash's ``status`` field (JSON text; None: no hash) is live.

    A missing hash counts as ended: its sweep expired or was deleted, nothing
    will run in it again.
    """
    if raw is None:
        return False
    try:
        status = json.loads(raw)
    except ValueError:
        status = raw  # written by something else as plain text
    return str(status) in SWEEP_LIVE


@dataclass
class _GlobalScan:
    """One pass over the whole global stream (see ``EventLog._scan_global``)."""

    events: list[Event]  # after the reader's ``after``, todo copies left out
    sweeps: list[str]  # every sweep it names, first seen first
    last: str  # the id of its newest entry ("0-0": empty)


class _Following:
    """The streams a namespace-wide follow reads live, each with the id it resumes after.

    A stream's cursor only moves forward and a stream is never added twice, so no
    (stream, id) is read twice: that is the follow's dedupe.
    """

    def __init__(
        self, r: redis.Redis, keys: Keys, upto: str, replayed: list[str], live: list[bool]
    ) -> None:
        self.r = r
        self.keys = keys
        self.upto = upto  # the replay read every stream it read up to here
        self.replayed = set(replayed)
        # Typed as XREAD takes it (its dict is invariant in its key and id types).
        self.cursors: dict[KeyT, StreamIdT] = {keys.events: upto}
        for sweep_id, is_live in zip(replayed, live):
            if is_live:
                self.cursors[keys.sweep_events(sweep_id)] = upto
        self.held: list[Event] = []  # read, not yet yielded (see ``take``)

    def track(self, sweep_id: str, seen_at: str) -> bool:
        """Follow a sweep named by the global event ``seen_at``; False if it already is
        (a tracked sweep stays tracked: an ended sweep's last todo events still come)."""
        stream = self.keys.sweep_events(sweep_id)
        if stream in self.cursors:
            return False
        # From the millisecond before: todo events emitted in the same millisecond
        # as that global event (even just before it) are not missed.
        start = f"{max(stream_id_key(seen_at)[0] - 1, 0)}-0"
        if sweep_id in self.replayed:
            start = _later(start, self.upto)  # never read again what the replay yielded
        self.cursors[stream] = start
        return True

    def take(self, reply: XReadReply) -> list[Event]:
        """The events of one XREAD reply to yield, oldest first; advances the cursors.

        A stream that filled its page may hold more before the others' newest ids:
        the events past the lowest such page end are held back, and yielded with a
        later reply, in order with what it brings.
        """
        batch = self.held
        found: list[str] = []
        newest = "0-0"
        read: dict[str, list[str]] = {}
        for name, entry_id, fields in stream_entries(reply):
            newest = _later(newest, entry_id)
            read.setdefault(name, []).append(entry_id)
            event = self._entry(name, entry_id, fields, found)
            if event is not None:
                batch.append(event)
        if found:
            batch += self._catch_up(found, newest, read)
        batch.sort(key=_by_id)
        ends = [stream_id_key(ids[-1]) for ids in read.values() if len(ids) >= _PAGE]
        if not ends:
            self.held = []
            return batch
        upto = min(ends)
        cut = next((i for i, e in enumerate(batch) if stream_id_key(e.id) > upto), len(batch))
        self.held = batch[cut:]
        return batch[:cut]

    def _entry(self, stream: str, entry_id: str, fields: Fields, found: list[str]
               ) -> Event | None:
        """The event of one entry read, None for a copy (yielded from its other stream);
        appends to ``found`` the sweeps it starts following."""
        self.cursors[stream] = entry_id
        event = Event.from_entry(entry_id, fields)
        if stream != self.keys.events:
            return event if event.todo_id is not None else None  # else a global entry's copy
        if event.sweep_id is not None and self.track(event.sweep_id, entry_id):
            found.append(event.sweep_id)
        return None if event.of_todo else event  # a todo copy: its sweep's stream has it

    def _catch_up(self, sweeps: list[str], upto: str, read: dict[str, list[str]]) -> list[Event]:
        """The todo events, up to the batch's newest id, of the sweeps the batch started
        following (one round trip): without them the batch would yield later events
        first, and theirs would come with the next XREAD, out of order. Adds the ids
        it read to ``read``.

        Anything left (more than a page, or Redis away) comes with the next XREAD:
        the cursors moved only over what was read.
        """
        streams = [self.keys.sweep_events(sweep_id) for sweep_id in sweeps]
        pipe = self.r.pipeline(transaction=False)
        for stream in streams:
            pipe.xrange(stream, min=f"({self.cursors[stream]!s}", max=upto, count=_PAGE)
        try:
            pages = pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError):
            return []
        out: list[Event] = []
        for stream, page in zip(streams, pages):
            for entry_id, fields in _entries(page):
                read.setdefault(stream, []).append(entry_id)
                event = self._entry(stream, entry_id, fields, [])
                if event is not None:
                    out.append(event)
        return out


def live_events(data: str | bytes) -> list[dict[str, Any]]:
    """The events of one message of the live channel, in stream order: a JSON array
    of event objects, or one object (what workers before 0.4 published per event).

    Raises ValueError for anything else (not JSON, or not objects).
    """
    body = json.loads(data)
    events = body if isinstance(body, list) else [body]
    if not all(isinstance(e, dict) for e in events):
        raise ValueError("a live event message is a JSON object or an array of them")
    return events


@dataclass(frozen=True)
class Prepared:
    """An event ready to be written (:meth:`EventLog.prepare`), or several that go to the
    same streams (:meth:`then`): the streams with their caps (the sweep's last), the
    JSON text of each event, one a line, and the live channel. A script that writes
    them takes :meth:`keys` after its own keys and :meth:`args` where it says
    (``emit_prepared`` in ``lua/_common.lua``)."""

    streams: tuple[str, ...]
    maxlens: tuple[int, ...]
    text: str
    channel: str

    def then(self, later: Prepared) -> Prepared:
        """These events, then ``later``'s, written in that order by one script (both go
        to the same streams: events of one sweep and no todo, say)."""
        if (later.streams, later.maxlens, later.channel) != (
                self.streams, self.maxlens, self.channel):
            raise ValueError("events written together must go to the same streams")
        return Prepared(self.streams, self.maxlens, f"{self.text}\n{later.text}", self.channel)

    def keys(self) -> list[str]:
        return list(self.streams)

    def args(self) -> list[str | int]:
        return [self.text, self.channel, *self.maxlens]

    def written_with(self, r: redis.Redis, queue: Callable[[Any], None]) -> None:
        """Write these events with the commands ``queue`` puts on a MULTI pipeline of
        ``r``, in one MULTI/EXEC (``lua/event_emit.lua`` after them): a writer killed
        there made both or neither."""
        lua("event_emit").in_transaction(r, queue, self.keys(), self.args())

    def queue_on(self, pipe: Any) -> None:
        """Queue these events on ``pipe``, a transaction its caller runs (a WATCHed
        compare-and-set), to be written with its other commands."""
        lua("event_emit").queue(pipe, self.keys(), self.args())


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
        self, kind: str, *, sweep_id: str | None = None, todo_id: str | None = None,
        **data: object,
    ) -> str:
        """Record one event; returns its id in the sweep stream (else the global one).

        ``data`` must be JSON types; keys named like the envelope are refused
        so that ``to_dict`` cannot silently lose one.
        """
        return self.write(self.prepare(kind, sweep_id=sweep_id, todo_id=todo_id, **data))

    def write(self, ev: Prepared) -> str:
        """Record an event made ready by :meth:`prepare`, alone (a script that makes the
        change it tells of writes it itself); its id as :meth:`emit` returns it."""
        # One script rather than MULTI: the published message must carry the id
        # XADD assigns, and the appends plus the publish stay atomic.
        return str(lua("event_emit")(self.r, ev.keys(), ev.args()))

    def prepare(
        self, kind: str, *, sweep_id: str | None = None, todo_id: str | None = None,
        **data: object,
    ) -> Prepared:
        """One event made ready for a script to write in the same step as the change it
        tells of (:meth:`emit` writes it alone), so that no reader sees the change
        without it, or after a later change's event. As :meth:`emit` for ``data``."""
        clash = [k for k in data if k in _RESERVED]
        if clash:
            raise ValueError(f"event data may not use the reserved names {clash}")
        payload: dict[str, object] = {"kind": kind, "ts": time.time(), "sweep_id": sweep_id,
                                      "todo_id": todo_id}
        payload.update(data)
        streams = self._streams_of(sweep_id, todo_id)
        return Prepared(tuple(s for s, _n in streams), tuple(n for _s, n in streams),
                        json.dumps(payload, separators=(",", ":")), self.keys.events_channel)

    def sweep_streams(self, sweep_id: str) -> Prepared:
        """Where a sweep's own events go, with no event: for a script that writes a text
        it holds (``lua/sweep_delist.lua``: the end event stored in the record)."""
        streams = self._streams_of(sweep_id, None)
        return Prepared(tuple(s for s, _n in streams), tuple(n for _s, n in streams), "",
                        self.keys.events_channel)

    def _streams_of(self, sweep_id: str | None, todo_id: str | None) -> list[tuple[str, int]]:
        """Where an event goes, with each stream's cap; the sweep's stream last (its id
        is the one returned and published)."""
        if sweep_id is None:
            return [(self.keys.events, self.maxlen)]
        sweep = (self.keys.sweep_events(sweep_id), self.sweep_maxlen)
        if todo_id is not None:
            return [sweep]  # the merged view reads it from there
        return [(self.keys.events, self.maxlen), sweep]

    def read(
        self, sweep_id: str | None = None, after: str = "0-0", count: int | None = None
    ) -> list[Event]:
        """Events after id ``after`` (exclusive), oldest first, at most ``count``.

        Without a sweep: every event of the namespace, todo events included (the
        merged view, see the module docstring).
        """
        if sweep_id:
            return list(self._replay(self.keys.sweep_events(sweep_id), after, count))
        scan = self._scan_global(after, keep=count)
        pages, _live = self._first_pages(scan.sweeps, after, "+", statuses=False)
        return list(self._merge(scan, pages, "+", count))

    def _replay(self, stream: str, after: str, count: int | None = None) -> Iterator[Event]:
        """Page through XRANGE so a 100k-event stream is never one huge reply."""
        left = count
        while left is None or left > 0:
            page = _PAGE if left is None else min(_PAGE, left)
            got = _entries(self.r.xrange(stream, min=f"({after}", max="+", count=page))
            for entry_id, fields in got:
                yield Event.from_entry(entry_id, fields)
            if len(got) < page:
                return
            after = got[-1][0]
            if left is not None:
                left -= len(got)

    def _scan_global(self, after: str, keep: int | None) -> _GlobalScan:
        """Read the whole global stream: its events after ``after`` (at most ``keep``,
        all a merge of ``keep`` can take from it) and every sweep it names.

        The whole stream, not only after ``after``: a sweep whose own events all
        precede ``after`` can still have todo events after it. Todo events found
        here are copies from before they went to the sweep stream only: the sweep's
        stream has them, so they are left out, and no event is yielded twice.
        """
        scan = _GlobalScan([], [], "0-0")
        named: set[str] = set()
        start = stream_id_key(after)
        for event in self._replay(self.keys.events, "0-0"):
            scan.last = event.id
            if event.sweep_id is not None and event.sweep_id not in named:
                named.add(event.sweep_id)
                scan.sweeps.append(event.sweep_id)
            wanted = keep is None or len(scan.events) < keep
            if wanted and not event.of_todo and stream_id_key(event.id) > start:
                scan.events.append(event)
        return scan

    def _first_pages(
        self, sweeps: list[str], after: str, upto: str, *, statuses: bool
    ) -> tuple[list[list[Entry]], list[bool]]:
        """The first page after ``after`` (up to ``upto``) of every sweep's stream and,
        with ``statuses``, whether each sweep is live: one round trip for them all,
        however many sweeps the namespace holds."""
        if not sweeps:
            return [], []
        pipe = self.r.pipeline(transaction=False)
        for sweep_id in sweeps:
            pipe.xrange(self.keys.sweep_events(sweep_id), min=f"({after}", max=upto, count=_PAGE)
        if statuses:
            for sweep_id in sweeps:
                pipe.hget(self.keys.sweep(sweep_id), "status")
        replies = pipe.execute()
        pages = [_entries(page) for page in replies[: len(sweeps)]]
        return pages, [_live(raw) for raw in replies[len(sweeps) :]]

    def _todo_events(self, stream: str, first: list[Entry], upto: str) -> Iterator[Event]:
        """The todo events of one sweep stream (its other events are copies of global
        ones), from its first page on; a further page is read only when the merge
        gets that far."""
        page = first
        while True:
            for entry_id, fields in page:
                event = Event.from_entry(entry_id, fields)
                if event.todo_id is not None:
                    yield event
            if len(page) < _PAGE:
                return
            after = page[-1][0]
            page = _entries(self.r.xrange(stream, min=f"({after}", max=upto, count=_PAGE))

    def _merge(
        self, scan: _GlobalScan, pages: list[list[Entry]], upto: str, count: int | None
    ) -> Iterator[Event]:
        """The global events and every sweep's todo events, by id, at most ``count``."""
        sweeps: list[Iterable[Event]] = [
            self._todo_events(self.keys.sweep_events(sweep_id), first, upto)
            for sweep_id, first in zip(scan.sweeps, pages)
        ]
        return islice(heapq.merge(scan.events, *sweeps, key=_by_id), count)

    def wait_sweeps(self, cursors: Mapping[str, str], *, block_ms: int,
                    count: int = 500) -> dict[str, list[Event]]:
        """Each sweep's events after its cursor (sweep id -> last id read), in one XREAD
        blocking up to ``block_ms`` for the first: a reader serving many sweeps at once
        (the web view's shared feed)."""
        keys = {self.keys.sweep_events(sid): sid for sid in cursors}
        streams: dict[KeyT, StreamIdT] = {k: cursors[sid] for k, sid in keys.items()}
        reply = cast(XReadReply, self.r.xread(streams, count=count, block=max(1, block_ms)))
        out: dict[str, list[Event]] = {}
        for name, entry_id, fields in stream_entries(reply):
            sid = keys.get(name.decode() if isinstance(name, bytes) else str(name))
            if sid is not None:
                out.setdefault(sid, []).append(Event.from_entry(entry_id, fields))
        return out

    def wait_sweep(self, sweep_id: str, after: str, *, block_ms: int,
                   count: int = 500) -> list[Event]:
        """The sweep's events after ``after``, blocking up to ``block_ms`` for the first
        (one XREAD: a caller that serves one sweep's events to a page)."""
        reply = cast(XReadReply, self.r.xread({self.keys.sweep_events(sweep_id): after},
                                              count=count, block=max(1, block_ms)))
        return [Event.from_entry(eid, fields) for _name, eid, fields in stream_entries(reply)]

    def last_id(self, sweep_id: str | None = None) -> str:
        """An id to follow from: the newest event's (``0-0`` for none).

        Without a sweep, the newest global id or now, whichever is later: todo
        events are in the sweeps' streams only, so the global stream's last id
        can be long past. "Now" is the id just before the current millisecond's
        first (``<ms-1>-<max seq>``), so an event appended later in that same
        millisecond is still after it.
        """
        if sweep_id:
            newest = _entries(self.r.xrevrange(self.keys.sweep_events(sweep_id), count=1))
            return str(newest[0][0]) if newest else "0-0"
        pipe = self.r.pipeline(transaction=False)
        pipe.xrevrange(self.keys.events, count=1)
        pipe.time()
        newest, (sec, usec) = pipe.execute()
        last = str(newest[0][0]) if newest else "0-0"
        ms = int(sec) * 1000 + int(usec) // 1000
        return _later(last, f"{ms - 1}-{_SEQ_MAX}" if ms > 0 else "0-0")

    def tail_start(self, sweep_id: str | None = None, last: int = 10) -> str:
        """An id to :meth:`follow` from so that the newest ``last`` events come first,
        then new ones (``tail -f``): ``0-0`` when there are no more than ``last``,
        "now" (:meth:`last_id`) for ``last`` 0.

        Without a sweep, over the merged view: the global stream's events and the newest
        ``last`` todo events of each sweep's stream (each read backwards, from its end)."""
        if last <= 0:
            return self.last_id(sweep_id)
        if sweep_id:
            newest = _entries(self.r.xrevrange(self.keys.sweep_events(sweep_id),
                                               count=last + 1))
            return _before(str(newest[last - 1][0])) if len(newest) > last else "0-0"
        scan = self._scan_global("0-0", keep=None)
        found = scan.events[-last:]
        for sweep_id_ in scan.sweeps:
            found.extend(self._newest_todo_events(self.keys.sweep_events(sweep_id_), last))
        if len(found) <= last:
            return "0-0"
        found.sort(key=_by_id)
        return _before(found[-last].id)

    def _newest_todo_events(self, stream: str, last: int) -> list[Event]:
        """The newest ``last`` todo events of a sweep's stream (its other entries are
        copies of global events), read backwards a page at a time."""
        out: list[Event] = []
        upper = "+"
        while len(out) < last:
            page = _entries(self.r.xrevrange(stream, max=upper, min="-", count=last))
            for entry_id, fields in page:
                event = Event.from_entry(entry_id, fields)
                if event.todo_id is not None:
                    out.append(event)
            if len(page) < last:
                break
            upper = f"({page[-1][0]}"
        return out[:last]

    def follow(
        self,
        sweep_id: str | None = None,
        after: str = "0-0",
        block_ms: int = 1000,
        stop: Callable[[], bool] | None = None,
        pace: float = 0.0,
    ) -> Iterator[Event]:
        """Every event after ``after``, then new ones as they come, until ``stop()``.

        Replay and live reading continue from the last id read, so nothing
        emitted in between is missed; a dropped connection is retried from that
        same id. Without a sweep, the merged view (see ``_follow_all``).

        ``pace``: at most one live read per ``pace`` seconds. A waiting CLI that
        shows progress needs a few dozen reads a second at most; unpaced, a busy
        sweep costs it one read (and one wake-up) per event.
        """
        if sweep_id:
            return self._follow_one(self.keys.sweep_events(sweep_id), after, block_ms, stop,
                                    pace)
        return self._follow_all(after, block_ms, stop, pace)

    def _xreads(
        self, cursors: dict[KeyT, StreamIdT], block_ms: int, stop: Callable[[], bool] | None,
        pace: float = 0.0, wake: dict[KeyT, StreamIdT] | None = None,
    ) -> Iterator[XReadReply]:
        """XREAD replies from ``cursors`` (the caller moves them) until ``stop()``;
        Redis away is retried with backoff, from the same cursors. ``pace``: the least
        time from one read's start to the next's (events wait in the stream meanwhile),
        waited out on ``wake`` when given (see :meth:`_pause`)."""
        backoff = 0.1
        last: float | None = None  # the first live read is not paced: none came before it
        while stop is None or not stop():
            if pace:
                # Not ``last = 0.0``: the monotonic clock starts near the machine's boot, so
                # on a fresh machine a first read "paced" from zero waited up to ``pace``.
                gap = 0.0 if last is None else last + pace - time.monotonic()
                if gap > 0:
                    self._pause(gap, wake)
                last = time.monotonic()
            try:
                reply = cast(XReadReply, self.r.xread(cursors, count=_PAGE, block=max(1, block_ms)))
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("event streams unreachable, retrying: %s", exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            backoff = 0.1
            yield reply

    def _follow_one(
        self, stream: str, after: str, block_ms: int, stop: Callable[[], bool] | None,
        pace: float = 0.0,
    ) -> Iterator[Event]:
        cursors: dict[KeyT, StreamIdT] = {stream: after}
        # Paced, it waits out its pace on the global stream, where a sweep's own events
        # (its end among them) are written too: the end is read when it lands, not up to
        # a pace later. Its cursor is taken before the replay: what lands after it wakes.
        wake = self._wake_cursor() if pace else None
        try:
            for event in self._replay(stream, after):
                yield event
                cursors[stream] = event.id
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            # The reads below carry on from the last event yielded (XREAD returns what
            # is already there at once): Redis away at the start is ridden out too.
            log.warning("event stream %s unreachable, retrying: %s", stream, exc)
        for reply in self._xreads(cursors, block_ms, stop, pace, wake):
            for _name, entry_id, fields in stream_entries(reply):
                cursors[stream] = entry_id
                yield Event.from_entry(entry_id, fields)
        # ``stop()`` said the end, perhaps after events its last read did not see (a
        # sweep whose last todos ended between two reads): the follower still gets
        # every event written before it stopped.
        try:
            yield from self._replay(stream, str(cursors[stream]))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            log.warning("event stream %s unreachable at the end of a follow: %s", stream, exc)

    def _wake_cursor(self) -> dict[KeyT, StreamIdT] | None:
        """The global stream after its newest event, for :meth:`_pause` (None: sleep
        instead, when Redis does not answer; the reads that follow ride an outage out)."""
        try:
            newest = _entries(self.r.xrevrange(self.keys.events, count=1))
        except redis.RedisError:
            return None
        return {self.keys.events: str(newest[0][0]) if newest else "0-0"}

    def _pause(self, seconds: float, wake: dict[KeyT, StreamIdT] | None) -> None:
        """A paced follow's wait of ``seconds`` between two reads. With ``wake`` (a
        stream and the id read up to there), a blocking XREAD of it, not a sleep: it
        ends early when an event lands there, and ``wake`` moves past what it read."""
        if wake and seconds >= 0.001:
            try:
                reply = cast(XReadReply, self.r.xread(wake, count=_PAGE,
                                                      block=max(1, int(seconds * 1000))))
            except (redis.ConnectionError, redis.TimeoutError):
                return  # the read after it rides the outage out
            except redis.ResponseError:  # refused (an ACL): sleep from now on
                wake.clear()
            else:
                stream = next(iter(wake))
                for _name, entry_id, _fields in stream_entries(reply):
                    wake[stream] = entry_id
                return
        time.sleep(seconds)

    def _follow_all(
        self, after: str, block_ms: int, stop: Callable[[], bool] | None, pace: float = 0.0
    ) -> Iterator[Event]:
        """The merged view after ``after``, then live: XREAD over the global stream
        and the streams of the sweeps followed.

        The replay stops at the global stream's newest entry (every stream read up
        to that one id), so the live reads, which start there for every stream,
        carry on in order. Followed: the sweeps the global stream names that are
        live (paused included: its running todos still finish), and any sweep a
        new global event names (see ``_Following.track``).
        """
        scan = self._scan_global(after, keep=None)
        upto = _later(scan.last, after)
        pages, live = self._first_pages(scan.sweeps, after, upto, statuses=True)
        yield from self._merge(scan, pages, upto, None)
        following = _Following(self.r, self.keys, upto, scan.sweeps, live)
        for reply in self._xreads(following.cursors, block_ms, stop, pace):
            yield from following.take(reply)
