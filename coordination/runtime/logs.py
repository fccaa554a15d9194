"""A todo's whole output, attempt by attempt (`coord logs`, the web view's todo page).

Each attempt of a todo in a sweep (its number is the checkpoint's ``attempts`` when it
started: a delivery's start and each retry count one) keeps:

- a **stream** of its output (``Keys.attempt_log``), one entry per chunk as the worker
  read it (``s``: ``stdout``, ``stderr`` or ``coord`` for coord's own line, such as the
  cap's; ``d``: the text, masked already), and a last entry ``end`` (the attempt's
  record as it ended). A reader following it blocks on the stream (``XREAD BLOCK``):
  nothing polls.
- its **record** in the todo's attempts hash (``Keys.todo_attempts``): worker, run,
  start and end, exit code, outcome, bytes read and kept, whether the cap cut it.

Everything is written by the worker that runs the attempt, in batches (one pipelined
round trip each: :meth:`LogStore.write`), and is listed in the sweep's set of log keys
(``Keys.sweep_log_keys``) so that the sweep's retention reaches it: an ended sweep's
logs expire with its record (:meth:`~coordination.runtime.checkpoints.CheckpointStore.expire_sweep`),
a resumed sweep's are kept again. Each write also gives the keys a TTL of their own
(:attr:`LogStore.keep_s`: the retention plus the longest sweep), so that a write that
comes after the sweep's end (a killed todo's last chunk) never lives forever.

No race needs a script: an attempt has one writer (the worker holding its lease), and
its record is a field of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict, cast

import redis

from coordination.keys import Keys

#: Streams a chunk may belong to (``coord``: a line of coord's own, not the command's).
STREAMS = ("stdout", "stderr", "coord")
#: Entries one read takes from an attempt's stream.
PAGE = 1000


class AttemptRecord(TypedDict, total=False):
    """One attempt of a todo (what `coord logs --json` lists under ``attempts``)."""

    attempt: int
    run: int
    worker: str
    started_at: float
    ended_at: float | None
    #: how the command ended: exited, timeout, stopped, error (None: still running)
    outcome: str | None
    exit_code: int | None
    stdout_bytes: int
    stderr_bytes: int
    #: bytes of output kept (at most :attr:`cap`)
    kept_bytes: int
    truncated: bool
    cap: int


@dataclass(frozen=True)
class Chunk:
    """One entry of an attempt's output: its stream id, which stream, its text."""

    id: str
    stream: str
    text: str


@dataclass(frozen=True)
class LogPage:
    """What one read of an attempt's stream returned: its chunks in order, the id to
    read after next, and the attempt's final record once its ``end`` entry was read."""

    chunks: list[Chunk]
    last_id: str
    end: AttemptRecord | None


XReadReply = list[tuple[str, list[tuple[str, dict[str, str]]]]]


class LogStore:
    """Attempts' output and records of one namespace (see the module)."""

    def __init__(self, r: redis.Redis, keys: Keys, *, keep_s: float) -> None:
        self.r = r
        self.keys = keys
        self.keep_s = max(1, int(keep_s))

    # -- the worker's side --------------------------------------------------------------
    def write(self, sweep_id: str, todo_id: str, attempt: int,
              chunks: Sequence[tuple[str, str]], record: AttemptRecord, *,
              first: bool, end: bool) -> None:
        """Append ``chunks`` (stream, text) to the attempt's output and write its record,
        in one round trip; ``first``: its first write (its keys listed for retention);
        ``end``: its last (the ``end`` entry follows the chunks)."""
        pipe = self.r.pipeline(transaction=False)
        self.queue(pipe, sweep_id, todo_id, attempt, chunks, record, first=first, end=end)
        pipe.execute()

    def queue(self, pipe: Any, sweep_id: str, todo_id: str, attempt: int,
              chunks: Sequence[tuple[str, str]], record: AttemptRecord, *,
              first: bool, end: bool) -> None:
        """:meth:`write`'s commands put on ``pipe`` (a pipeline of this store's client)
        for its owner to send: an attempt's last write goes in the round trip of the
        todo's finish (:meth:`~coordination.runtime.transitions.Transitions.finish`'s
        ``before``), ahead of it."""
        stream = self.keys.attempt_log(sweep_id, todo_id, attempt)
        index = self.keys.todo_attempts(sweep_id, todo_id)
        for name, text in chunks:
            pipe.xadd(stream, {"s": name, "d": text})
        if end:
            pipe.xadd(stream, {"end": json.dumps(record, separators=(",", ":"))})
        pipe.hset(index, str(attempt), json.dumps(record, separators=(",", ":")))
        if first or end:
            listed = self.keys.sweep_log_keys(sweep_id)
            if first:
                pipe.sadd(listed, stream, index)
            for key in (stream, index, listed):
                pipe.expire(key, self.keep_s)

    # -- readers ------------------------------------------------------------------------
    def attempts(self, sweep_id: str, todo_id: str) -> list[AttemptRecord]:
        """The todo's attempts in the sweep, in order (none: it never ran there, or its
        logs expired)."""
        raw = cast("dict[str, str]", self.r.hgetall(self.keys.todo_attempts(sweep_id, todo_id)))
        out = [cast(AttemptRecord, json.loads(v)) for k, v in raw.items() if k.isdigit()]
        return sorted(out, key=lambda a: int(a.get("attempt") or 0))

    def read(self, sweep_id: str, todo_id: str, attempt: int, after: str = "0-0", *,
             count: int = PAGE) -> LogPage:
        """The attempt's entries after ``after`` (at most ``count``), without waiting."""
        key = self.keys.attempt_log(sweep_id, todo_id, attempt)
        rows = cast("list[tuple[str, dict[str, str]]]",
                    self.r.xrange(key, min=f"({after}" if after != "0-0" else "-",
                                  count=count))
        return _page(rows, after)

    def wait(self, sweep_id: str, todo_id: str, attempt: int, after: str, *,
             block_ms: int, count: int = PAGE) -> LogPage:
        """What the attempt writes after ``after``: blocks up to ``block_ms`` for its next
        entries (an empty page when none came)."""
        key = self.keys.attempt_log(sweep_id, todo_id, attempt)
        reply = cast("XReadReply | None",
                     self.r.xread({key: after}, count=count, block=max(1, block_ms)))
        rows = reply[0][1] if reply else []
        return _page(rows, after)

    def wait_any(self, sweep_id: str, todo_id: str, attempt: int, after: str,
                 events_after: str, *, block_ms: int) -> tuple[LogPage, str]:
        """As :meth:`wait`, also waking on the sweep's events (a todo that ended or
        started again without writing a word): the page, and the events' last id."""
        key = self.keys.attempt_log(sweep_id, todo_id, attempt)
        events = self.keys.sweep_events(sweep_id)
        reply = cast("XReadReply | None",
                     self.r.xread({key: after, events: events_after}, count=PAGE,
                                  block=max(1, block_ms)))
        rows: list[tuple[str, dict[str, str]]] = []
        for name, entries in reply or []:
            if name == key:
                rows = entries
            elif entries:
                events_after = entries[-1][0]
        return _page(rows, after), events_after

    def events_tip(self, sweep_id: str) -> str:
        """The id of the sweep's newest event (``0-0``: none): where :meth:`wait_any` starts."""
        got = cast("list[tuple[str, dict[str, str]]]",
                   self.r.xrevrange(self.keys.sweep_events(sweep_id), count=1))
        return got[0][0] if got else "0-0"

    def latest_sweep(self, todo_id: str, sweep_ids: Iterable[str]) -> str | None:
        """The first of ``sweep_ids`` (newest first) in which ``todo_id`` has an attempt
        kept, in one round trip."""
        ids = list(sweep_ids)
        pipe = self.r.pipeline(transaction=False)
        for sid in ids:
            pipe.exists(self.keys.todo_attempts(sid, todo_id))
        for sid, found in zip(ids, pipe.execute()):
            if found:
                return sid
        return None

    def log_keys(self, sweep_id: str) -> list[str]:
        """Every log key of the sweep (its retention: ``CheckpointStore._sweep_keys``),
        the set listing them first."""
        listed = self.keys.sweep_log_keys(sweep_id)
        return [listed, *sorted(cast("set[str]", self.r.smembers(listed)))]


def _page(rows: list[tuple[str, dict[str, str]]], after: str) -> LogPage:
    chunks: list[Chunk] = []
    end: AttemptRecord | None = None
    last = after
    for entry_id, fields in rows:
        last = entry_id
        if "end" in fields:
            end = cast(AttemptRecord, json.loads(fields["end"]))
            break
        name = fields.get("s", "stdout")
        chunks.append(Chunk(entry_id, name if name in STREAMS else "stdout",
                            fields.get("d", "")))
    return LogPage(chunks, last, end)
