"""``EventLog.tail_start``: where `coord events --follow` starts so that the newest N
events come first, then new ones (issue #29, item 10b). On fakeredis and a real
redis-server; the CLI's default is in tests/unit/cli/test_events_follow_tail.py."""

from __future__ import annotations

import json
import time

import pytest
import redis

from coordination.keys import Keys
from coordination.runtime.events import Event, EventLog

pytestmark = pytest.mark.timeout(60)

K = Keys("t")


def apart(r: redis.Redis) -> None:
    """Until the server clock is in a new millisecond: ids of different streams in order."""
    sec, usec = r.time()
    start = int(sec) * 1000 + int(usec) // 1000
    deadline = time.monotonic() + 10
    while True:
        sec, usec = r.time()
        if int(sec) * 1000 + int(usec) // 1000 != start:
            return
        assert time.monotonic() < deadline, "the server clock did not move"


def history(r: redis.Redis, log: EventLog) -> list[str]:
    """Two running sweeps' events, interleaved across streams; their ids."""
    ids = []
    for sweep in ("S1", "S2"):
        r.hset(K.sweep(sweep), "status", json.dumps("running"))  # followed live
        for kind, todo in (("sweep.queued", None), ("todo.started", "T1"),
                           ("todo.succeeded", "T1"), ("todo.started", "T2")):
            apart(r)
            ids.append(log.emit(kind, sweep_id=sweep, todo_id=todo))
    apart(r)
    ids.append(log.emit("todo.succeeded", sweep_id="S1", todo_id="T2"))  # S1's, after S2's
    return ids


def first(log: EventLog, after: str, n: int, sweep_id: str | None = None) -> list[Event]:
    """The first ``n`` events following from ``after`` (fewer at a 5 s deadline)."""
    out: list[Event] = []
    deadline = time.monotonic() + 5
    for ev in log.follow(sweep_id, after=after, block_ms=20,
                         stop=lambda: len(out) >= n or time.monotonic() > deadline):
        out.append(ev)
        if len(out) >= n:
            break
    return out


def test_follow_from_the_tail_start_gives_the_newest_n_then_new_ones(
        r: redis.Redis, log: EventLog) -> None:
    history(r, log)
    every = log.read()
    assert len(every) == 9
    for n in (1, 3, 8):
        start = log.tail_start(None, n)
        assert [e.id for e in first(log, start, n)] == [e.id for e in every[-n:]], n
    # No more than N: from the beginning.
    assert log.tail_start(None, 9) == "0-0" and log.tail_start(None, 50) == "0-0"
    # 0: only what comes next.
    start = log.tail_start(None, 0)
    apart(r)
    new = log.emit("todo.started", sweep_id="S2", todo_id="T9")
    assert [e.id for e in first(log, start, 1)] == [new]
    # Then the new ones follow the backlog.
    start = log.tail_start(None, 2)
    assert [e.id for e in first(log, start, 3)] == [every[-1].id, new]


def test_one_sweeps_tail(r: redis.Redis, log: EventLog) -> None:
    history(r, log)
    mine = log.read("S1")
    assert len(mine) == 5
    start = log.tail_start("S1", 2)
    assert [e.id for e in first(log, start, 2, "S1")] == [e.id for e in mine[-2:]]
    assert log.tail_start("S1", 5) == "0-0"
    assert log.tail_start("S9", 3) == "0-0"  # no stream at all


def test_a_sweep_stream_whose_newest_entries_are_not_todo_events(
        r: redis.Redis, log: EventLog) -> None:
    """A sweep's stream also holds copies of its sweep events; the tail pages back past
    them to its todo events (the global stream has the copies' originals)."""
    r.hset(K.sweep("S"), "status", json.dumps("running"))
    apart(r)
    old = log.emit("todo.succeeded", sweep_id="S", todo_id="T")
    for _ in range(5):
        apart(r)
        log.emit("level.done", sweep_id="S", level=0)
    every = log.read()
    assert len(every) == 6 and every[0].id == old
    start = log.tail_start(None, 6)
    assert start == "0-0"
    start = log.tail_start(None, 5)
    assert [e.kind for e in first(log, start, 5)] == ["level.done"] * 5
