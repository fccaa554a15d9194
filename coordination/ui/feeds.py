"""The web view's event streams: one reader for every open stream, no thread each.

A page open on a sweep holds a server-sent event stream. Each stream used to hold a
worker thread for its blocking ``XREAD`` (and the thread pool is shared with every
page), so a few dozen open pages starved the rest. Here one reader thread follows every
sweep someone watches with one ``XREAD`` over all of their streams, turns each batch into
messages once (the todos' statuses read once, not per page) and hands them to the
subscribers' queues on their event loops. A stream waits on its queue, never on a thread.

A subscriber first joins its sweep's feed, then reads what came before (its own paged
reads, from the id it asked for), then takes the feed's messages, skipping ids it has
already sent: joining before catching up is what makes the two overlap rather than leave
a gap. Bounds: :class:`EventHub` refuses streams past ``max_streams`` (the caller answers
503), and a subscriber that falls ``queue_cap`` messages behind is dropped (its stream
ends without an ``end`` event, so the browser reconnects with ``Last-Event-ID`` and
catches up by reading).
"""

from __future__ import annotations

import asyncio
import logging
import re
import resource
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis

from coordination.jsonable import JSONObject
from coordination.runtime.context import Runtime
from coordination.runtime.events import Event
from coordination.sweeps import ended_by, over

log = logging.getLogger("coord.ui")

#: Open event streams one server holds at most (each is a socket; see effective_cap).
DEFAULT_MAX_STREAMS = 2000
#: Messages a stream may fall behind before it is dropped (the browser reconnects).
DEFAULT_QUEUE_CAP = 5000
#: Entries one read takes from one stream.
PAGE = 500
#: File descriptors kept for everything but event streams (pages, Redis, files).
FD_RESERVE = 128
#: Seconds between two checks that a quiet feed's sweep is still live.
STATUS_EVERY = 1.0

_ID = re.compile(r"(\d{1,20})(?:-(\d{1,20}))?")
_U64 = 2**64 - 1


def parse_event_id(raw: str) -> str | None:
    """``raw`` as a stream id (``MS-SEQ``, or ``MS``: ``MS-0``); None when it is not one."""
    m = _ID.fullmatch(raw)
    if m is None:
        return None
    ms, seq = int(m[1]), int(m[2] or 0)
    if ms > _U64 or seq > _U64:
        return None
    return f"{ms}-{seq}"


@dataclass(frozen=True)
class Message:
    """One server-sent event: ``end`` carries no id (the stream names its own last)."""

    event: str
    data: JSONObject
    id: str | None = None


def render(rt: Runtime, sweep_id: str, batch: list[Event]) -> tuple[list[Message], bool]:
    """``batch`` (one sweep's events, oldest first) as messages, and whether one of them
    ended the sweep (then the last message is ``end``). Reads Redis: call it off the loop."""
    ids = sorted({e.todo_id for e in batch if e.todo_id})
    now: dict[str, str] = {}
    if ids:
        cps = rt.checkpoints.get_fields_all(sweep_id, ids, ("status",))
        now = {t: str(cp["status"]) for t, cp in cps.items()}
    out: list[Message] = []
    over = False
    for ev in batch:
        if ev.todo_id:
            msg: JSONObject = {"todo": ev.todo_id, "kind": ev.kind, "ts": ev.ts,
                               "status": now.get(ev.todo_id)}
            if ev.data.get("paced_until") is not None:  # queued, waiting for a pace token
                msg["paced_until"] = ev.data["paced_until"]
            out.append(Message("todo", msg, ev.id))
        elif ev.kind == "sweep.queued" and ev.data.get("resumed"):
            out.append(Message("reload", {"kind": ev.kind}, ev.id))  # a new run
        elif ev.kind.startswith(("sweep.", "wave.")):
            out.append(Message("sweep", {"kind": ev.kind, "ts": ev.ts,
                                         "status": rt.checkpoints.sweep_status(sweep_id),
                                         "reason": ev.data.get("reason")}, ev.id))
            over = over or ended_by(rt, sweep_id, ev)
    if over:
        out.append(end_message(rt, sweep_id))
    return out, over


def end_message(rt: Runtime, sweep_id: str, status: str | None = None) -> Message:
    return Message("end", {"status": status or rt.checkpoints.sweep_status(sweep_id)})


class Overflow(Exception):
    """The subscriber fell too far behind: its stream ends, the browser reconnects."""


class Subscriber:
    """One open stream's queue, filled from the reader thread, read on its event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, cap: int = DEFAULT_QUEUE_CAP) -> None:
        self.loop, self.cap = loop, cap
        self.pending: deque[Message] = deque()
        self.ready = asyncio.Event()
        self.overflow = False

    def take(self, messages: list[Message]) -> None:
        """On the subscriber's loop: queue ``messages`` (or mark it dropped)."""
        if len(self.pending) + len(messages) > self.cap:
            self.overflow = True
            self.pending.clear()
        elif not self.overflow:
            self.pending.extend(messages)
        self.ready.set()

    async def next(self, timeout: float) -> list[Message]:
        """What has arrived (empty after ``timeout`` of quiet); :class:`Overflow` when
        dropped."""
        if not self.pending and not self.overflow:
            try:
                await asyncio.wait_for(self.ready.wait(), timeout)
            except TimeoutError:
                pass
        self.ready.clear()
        if self.overflow:
            raise Overflow
        got = list(self.pending)
        self.pending.clear()
        return got


def _deliver(subs: list[Subscriber], messages: list[Message]) -> None:
    for sub in subs:
        sub.take(messages)


@dataclass
class _Feed:
    """A watched sweep: where the reader is in its stream, and who gets what it reads."""

    subs: set[Subscriber] = field(default_factory=set)
    pos: str | None = None  # None: its start is being read
    checked: float = 0.0  # monotonic time of the last status check


def effective_cap(max_streams: int) -> int:
    """``max_streams``, lowered to fit this process's open-file limit."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_streams
    return min(max_streams, max(1, soft - FD_RESERVE))


class EventHub:
    """Every open event stream of one app: admission, and the one reader feeding them.

    Thread-safe: streams join from the app's event loop (or loops: a test client runs
    one per request), the reader runs in its own thread while anyone watches.
    """

    def __init__(self, rt: Runtime, *, block_ms: int = 1000,
                 max_streams: int = DEFAULT_MAX_STREAMS) -> None:
        self.rt = rt
        self.block_ms = max(1, block_ms)
        self.max_streams = max_streams
        self.open = 0
        self._feeds: dict[str, _Feed] = {}
        self._lock = threading.Lock()
        self._started = threading.Condition(self._lock)
        self._reader: threading.Thread | None = None

    # -- admission -------------------------------------------------------------------
    def admit(self) -> bool:
        """Count one more open stream; False (nothing counted) at the cap."""
        cap = effective_cap(self.max_streams)
        with self._lock:
            if self.open >= cap:
                return False
            self.open += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.open -= 1

    # -- subscribing -----------------------------------------------------------------
    def join(self, sweep_id: str, sub: Subscriber) -> None:
        """Add ``sub`` to the sweep's feed (blocking: a Redis read for a new feed's start).

        Everything after the feed's position reaches ``sub``; the caller reads what came
        before itself, after this returns."""
        with self._lock:
            feed = self._feeds.setdefault(sweep_id, _Feed())
            feed.subs.add(sub)
            if feed.pos is not None:
                return
        start = self.rt.events.last_id(sweep_id)
        with self._lock:
            if feed.pos is None:
                feed.pos = start
            if self._reader is None:
                self._reader = threading.Thread(target=self._run, name="coord-ui-events",
                                                daemon=True)
                self._reader.start()
            self._started.notify_all()

    def leave(self, sweep_id: str, sub: Subscriber) -> None:
        """Drop ``sub`` (and its feed with its last subscriber). Never blocks on Redis."""
        with self._lock:
            feed = self._feeds.get(sweep_id)
            if feed is not None:
                feed.subs.discard(sub)
                if not feed.subs:
                    del self._feeds[sweep_id]

    def watched(self) -> int:
        """How many sweeps the reader follows (for tests)."""
        with self._lock:
            return len(self._feeds)

    # -- the reader ------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 0.1
        while True:
            with self._lock:
                if not self._feeds:
                    self._reader = None  # the next join starts another
                    return
                cursors = {sid: f.pos for sid, f in self._feeds.items() if f.pos is not None}
                if not cursors:
                    self._started.wait(0.05)
                    continue
            try:
                self._pass(cursors)
                backoff = 0.1
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("web view: event streams unreachable, retrying: %s", exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            except Exception:  # a bad entry must not stop every page's stream
                log.exception("web view: reading event streams failed; retrying")
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def _pass(self, cursors: dict[str, str]) -> None:
        """One XREAD over every watched sweep; deliver, and end the feeds that ended."""
        batches = self.rt.events.wait_sweeps(cursors, block_ms=self.block_ms, count=PAGE)
        out: list[tuple[str, str, list[Message], bool]] = []
        for sid, batch in batches.items():
            messages, over = render(self.rt, sid, batch)
            out.append((sid, batch[-1].id, messages, over))
        now = time.monotonic()
        for sid in self._quiet(cursors, batches, now):
            ended = self._ended(sid, cursors[sid])
            if ended is not None:
                out.append((sid, *ended))
        self._publish(out)

    def _quiet(self, cursors: dict[str, str], batches: dict[str, list[Event]],
               now: float) -> list[str]:
        """Watched sweeps that had no news and whose status is due a check."""
        due = []
        with self._lock:
            for sid in cursors:
                feed = self._feeds.get(sid)
                if feed is None or sid in batches or now - feed.checked < STATUS_EVERY:
                    continue
                feed.checked = now
                due.append(sid)
        return due

    def _ended(self, sid: str, pos: str) -> tuple[str, list[Message], bool] | None:
        """For a quiet sweep that is over (ended, its end said): its last events (read
        after that, so none is lost) and ``end``."""
        if not over(self.rt, sid):
            return None
        status = self.rt.checkpoints.sweep_status(sid)
        batch = self.rt.events.read(sid, pos)
        messages, said = render(self.rt, sid, batch)
        if not said:
            messages.append(end_message(self.rt, sid, status))
        return (batch[-1].id if batch else pos), messages, True

    def _publish(self, out: Iterable[tuple[str, str, list[Message], bool]]) -> None:
        """Hand each feed's messages to its subscribers, on their loops (one call per
        loop), and move the feed on; an ended feed is dropped."""
        with self._lock:
            for sid, last, messages, over in out:
                feed = self._feeds.get(sid)
                if feed is None:
                    continue
                feed.pos = last
                if over:
                    del self._feeds[sid]
                if not messages:
                    continue
                by_loop: dict[asyncio.AbstractEventLoop, list[Subscriber]] = {}
                for sub in feed.subs:
                    by_loop.setdefault(sub.loop, []).append(sub)
                for loop, subs in by_loop.items():
                    try:
                        loop.call_soon_threadsafe(_deliver, subs, messages)
                    except RuntimeError:  # that loop has closed: its streams are gone
                        pass
