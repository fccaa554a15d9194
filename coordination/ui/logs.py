"""A todo's logs in the web view: its attempts and one attempt's output
(``/api/sweeps/ID/todos/TODO/logs``, `coord logs --json`'s document), and the output
as it is written (``.../logs/stream``: server-sent events, until the attempt ends).

A stream waits in short blocking reads (:data:`BLOCK_MS`) of the attempt's stream and the
sweep's events, each on a thread of its own small pool (:data:`READERS`): a page following
a log holds a thread for at most one read at a time, and followers never take the
threads the other pages are served from. The streams count against the view's cap on
open streams (the events' :class:`~coordination.ui.feeds.EventHub`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import anyio
import redis

from coordination.errors import NotFoundError
from coordination.runtime.context import Runtime
from coordination.runtime.logs import AttemptRecord
from coordination.sweeps.runlogs.logs import LogDocument, attempt_over, logs_document
from coordination.sweeps.reading import record

T = TypeVar("T")

#: Milliseconds one read of a followed log blocks.
BLOCK_MS = 500
#: Threads the log streams' reads share.
READERS = 16

_limiter: anyio.CapacityLimiter | None = None


def _readers() -> anyio.CapacityLimiter:
    global _limiter
    if _limiter is None:
        _limiter = anyio.CapacityLimiter(READERS)
    return _limiter


def todo_logs(rt: Runtime, sweep_id: str, todo_id: str, attempt: int | None) -> LogDocument:
    """`coord logs --json` of the todo in the sweep; a todo that has not run yet has an
    empty history (not an error: its page shows it waiting)."""
    record(rt, sweep_id)  # unknown sweep: 404
    try:
        return logs_document(rt, todo_id, sweep_id=sweep_id, attempt=attempt)
    except NotFoundError:
        if attempt is not None or rt.logs().attempts(sweep_id, todo_id):
            raise
        return {"sweep_id": sweep_id, "todo_id": todo_id, "attempts": [], "attempt": 0,
                "running": False, "output": [], "after": "0-0"}


def _sse(event: str, data: object, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def follow(rt: Runtime, sweep_id: str, todo_id: str, attempt: int, after: str
                 ) -> AsyncIterator[str]:
    """Attempt ``attempt``'s output after ``after``: ``chunk`` events (``stream``,
    ``text``), then ``end`` (the attempt's record; ``{}``: it ended without one)."""
    store = rt.logs()
    yield "retry: 2000\n\n"
    limiter = _readers()

    async def off(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kw), limiter=limiter)

    try:
        events_after = await off(store.events_tip, sweep_id)
        while True:
            page = await off(store.read, sweep_id, todo_id, attempt, after)
            if not page.chunks and page.end is None:
                if await off(attempt_over, rt, sweep_id, todo_id, attempt):
                    page = await off(store.read, sweep_id, todo_id, attempt, after)
                    if not page.chunks and page.end is None:
                        yield _sse("end", {}, after)
                        return
                else:
                    page, events_after = await off(store.wait_any, sweep_id, todo_id, attempt,
                                                   after, events_after, block_ms=BLOCK_MS)
                    if not page.chunks and page.end is None:
                        yield ": idle\n\n"
                        continue
            for c in page.chunks:
                yield _sse("chunk", {"stream": c.stream, "text": c.text}, c.id)
            after = page.last_id
            if page.end is not None:
                end: AttemptRecord = page.end
                yield _sse("end", end, after)
                return
    except (redis.ConnectionError, redis.TimeoutError):
        return  # the browser reconnects from its last id
