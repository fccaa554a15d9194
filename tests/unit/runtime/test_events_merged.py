"""Where events are stored (a todo event in its sweep's stream only) and the
namespace-wide view that merges the streams back: ``read()``, ``follow()``,
``last_id()`` without a sweep. On fakeredis and on a real redis-server.

Where a test asserts the exact order of events emitted to different streams,
it emits each in a millisecond of its own (``apart``): stream ids of different
streams are ordered by the server clock, so two in one millisecond may compare
either way.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from coordination.keys import Keys
from coordination.runtime.events import Event, EventLog, live_events, stream_id_key

pytestmark = pytest.mark.timeout(60)

K = Keys("t")
WAIT = 10.0  # seconds: the deadline of every wait below


# -- helpers -------------------------------------------------------------------


def server_ms(r: redis.Redis) -> int:
    sec, usec = r.time()
    return int(sec) * 1000 + int(usec) // 1000


def apart(r: redis.Redis) -> None:
    """Wait until the server's clock is in a new millisecond (so the next event's id
    is later than every id given before, whatever its stream)."""
    start = server_ms(r)
    deadline = time.monotonic() + WAIT
    while server_ms(r) == start:
        assert time.monotonic() < deadline, "the server clock did not move"


def set_status(r: redis.Redis, sweep_id: str, status: str) -> None:
    r.hset(K.sweep(sweep_id), "status", json.dumps(status))  # JSON text, as the store writes


def put(r: Any, stream: str, entry_id: str, kind: str,
        sweep_id: str | None = None, todo_id: str | None = None) -> None:
    """An entry with an id of our choosing, as emit would have written it."""
    body = {"kind": kind, "ts": 1.0, "sweep_id": sweep_id, "todo_id": todo_id}
    r.xadd(stream, {"e": json.dumps(body)}, id=entry_id)


def ids_in(r: redis.Redis, stream: str) -> list[str]:
    entries: Any = r.xrange(stream)
    return [str(eid) for eid, _fields in entries]


def what(events: list[Event]) -> list[tuple[str, str | None, str | None]]:
    return [(e.kind, e.sweep_id, e.todo_id) for e in events]


class Follower:
    """``log.follow(None)`` in a thread, collecting what it yields."""

    def __init__(self, log: EventLog, after: str = "0-0") -> None:
        self.got: list[Event] = []
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(log, after), daemon=True)

    def _run(self, log: EventLog, after: str) -> None:
        try:
            for ev in log.follow(after=after, block_ms=50, stop=self._done.is_set):
                self.got.append(ev)
        except BaseException as exc:  # surfaced by wait_for
            self.error = exc

    def __enter__(self) -> Follower:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=WAIT)
        assert not self._thread.is_alive()

    def wait_for(self, done: Callable[[list[Event]], bool]) -> list[Event]:
        deadline = time.monotonic() + WAIT
        while not done(list(self.got)):
            assert self.error is None, self.error
            assert time.monotonic() < deadline, f"timed out; got {what(self.got)}"
            time.sleep(0.005)
        return list(self.got)

    def wait_count(self, n: int) -> list[Event]:
        return self.wait_for(lambda got: len(got) >= n)


# -- where an event is stored ----------------------------------------------------


def test_a_todo_event_goes_to_its_sweep_stream_only(r: redis.Redis, log: EventLog) -> None:
    log.emit("sweep.queued", sweep_id="S")
    assert (r.xlen(K.events), r.xlen(K.sweep_events("S"))) == (1, 1)  # a sweep event: both
    tid = log.emit("todo.started", sweep_id="S", todo_id="T")
    assert (r.xlen(K.events), r.xlen(K.sweep_events("S"))) == (1, 2)  # a todo event: one
    assert ids_in(r, K.sweep_events("S"))[-1] == tid
    log.emit("repo.breaker_open", sweep_id="S", todo_id="T", repo="x")
    log.emit("level.done", sweep_id="S", level=0)
    assert (r.xlen(K.events), r.xlen(K.sweep_events("S"))) == (2, 4)
    log.emit("repo.breaker_closed", repo="x")  # no sweep: global only
    assert (r.xlen(K.events), r.xlen(K.sweep_events("S"))) == (3, 4)


def test_a_todo_event_is_published_once_with_its_sweep_stream_id(
    r: redis.Redis, log: EventLog
) -> None:
    ps = r.pubsub()
    ps.subscribe(K.events_channel)
    deadline = time.monotonic() + WAIT
    while ps.get_message(timeout=0.05) is None:
        assert time.monotonic() < deadline  # the subscribe confirmation
    eid = log.emit("todo.succeeded", sweep_id="S", todo_id="T", exit_code=0)
    bodies: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not bodies:
        msg = ps.get_message(timeout=0.05)
        if msg is not None:
            bodies.extend(live_events(msg["data"]))
    log.emit("sweep.finished", sweep_id="S")  # a sentinel: nothing else came before it
    while time.monotonic() < deadline and len(bodies) < 2:
        msg = ps.get_message(timeout=0.05)
        if msg is not None:
            bodies.extend(live_events(msg["data"]))
    ps.close()
    assert [b["kind"] for b in bodies] == ["todo.succeeded", "sweep.finished"]
    assert bodies[0]["id"] == eid == ids_in(r, K.sweep_events("S"))[0]
    assert bodies[0]["todo_id"] == "T" and bodies[0]["exit_code"] == 0


def test_each_stream_is_capped_by_its_own_maxlen(r: redis.Redis) -> None:
    """MAXLEN ~ trims whole nodes (up to 100 entries each): far under 600, far over 50."""
    small_sweep = EventLog(r, K, maxlen=100_000, sweep_maxlen=50)
    for i in range(600):
        small_sweep.emit("todo.queued", sweep_id="A", todo_id=f"T{i}")
    assert r.xlen(K.sweep_events("A")) <= 200  # the sweep maxlen, not the global one
    small_global = EventLog(r, K, maxlen=50, sweep_maxlen=100_000)
    for i in range(600):
        small_global.emit("level.done", sweep_id="B", level=i)
    assert r.xlen(K.events) <= 200 and r.xlen(K.sweep_events("B")) == 600


# -- the merged read ---------------------------------------------------------------


def emit_two_sweeps(r: redis.Redis, log: EventLog) -> list[tuple[str, str | None, str | None]]:
    """Two sweeps whose todo events interleave, with their own events and one of no
    sweep between them; each in its own millisecond. Returns what was emitted."""
    plan: list[tuple[str, str | None, str | None]] = [
        ("sweep.queued", "A", None), ("todo.queued", "A", "a1"), ("sweep.queued", "B", None),
        ("todo.queued", "B", "b1"), ("todo.started", "A", "a1"),
        ("repo.breaker_closed", None, None),
        ("todo.started", "B", "b1"), ("todo.succeeded", "A", "a1"), ("level.done", "A", None),
        ("todo.succeeded", "B", "b1"), ("sweep.finished", "A", None), ("todo.queued", "B", "b2"),
    ]  # fmt: skip
    for kind, sweep_id, todo_id in plan:
        apart(r)
        log.emit(kind, sweep_id=sweep_id, todo_id=todo_id)
    return plan


def test_merged_read_interleaves_sweeps_in_id_order_once_each(
    r: redis.Redis, log: EventLog
) -> None:
    plan = emit_two_sweeps(r, log)
    every = log.read()
    assert what(every) == plan  # all of them, in the order they happened, none twice
    ids = [stream_id_key(e.id) for e in every]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    # Ids keep their meaning: a todo event's is its sweep-stream id, another's its global id.
    global_ids = set(ids_in(r, K.events))
    sweep_ids = {eid for s in "AB" for eid in ids_in(r, K.sweep_events(s))}
    for e in every:
        assert e.id in (sweep_ids if e.todo_id else global_ids), e


def test_merged_read_after_and_count(r: redis.Redis, log: EventLog) -> None:
    plan = emit_two_sweeps(r, log)
    every = log.read()
    for i in range(len(every)):  # `after` is exclusive, on every stream
        assert what(log.read(after=every[i].id)) == plan[i + 1 :]
    assert what(log.read(count=3)) == plan[:3]
    assert what(log.read(after=every[4].id, count=4)) == plan[5:9]
    assert log.read(count=0) == []
    # B's own events all come before this point; its todo events after it still count.
    after_b = every[3].id
    assert ("todo.queued", "B", "b2") in what(log.read(after=after_b))


def test_merge_compares_ids_numerically(r: redis.Redis, log: EventLog) -> None:
    """As text, 7-10 sorts before 7-9 and 10-0 before 9-0."""
    put(r, K.events, "7-0", "sweep.queued", "S")
    put(r, K.sweep_events("S"), "7-0", "sweep.queued", "S")
    for seq in range(1, 12):
        put(r, K.sweep_events("S"), f"7-{seq}", "todo.queued", "S", f"T{seq}")
    put(r, K.events, "7-9", "repo.breaker_closed")
    put(r, K.events, "9-0", "level.done", "S")
    put(r, K.sweep_events("S"), "9-0", "level.done", "S")
    put(r, K.sweep_events("S"), "10-0", "todo.started", "S", "T1")
    got = [e.id for e in log.read()]
    assert got == ["7-0", *(f"7-{s}" for s in range(1, 10)), "7-9", "7-10", "7-11", "9-0", "10-0"]


def test_merge_skips_todo_copies_left_in_the_global_stream(r: redis.Redis, log: EventLog) -> None:
    """Before todo events went to the sweep stream only, the global stream holds
    copies of them: each is still yielded once."""
    for stream in (K.events, K.sweep_events("S")):
        put(r, stream, "5-0", "sweep.queued", "S")
        put(r, stream, "5-1", "todo.queued", "S", "T")
    put(r, K.events, "6-0", "todo.started", "S", "T")  # an old double write: ids differ
    put(r, K.sweep_events("S"), "6-3", "todo.started", "S", "T")
    assert [(e.id, e.kind) for e in log.read()] == [
        ("5-0", "sweep.queued"), ("5-1", "todo.queued"), ("6-3", "todo.started")]


def test_merged_read_fetches_every_sweep_stream_in_one_round_trip(
    r: redis.Redis, log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    for s in range(30):
        log.emit("sweep.queued", sweep_id=f"S{s}")
        log.emit("todo.queued", sweep_id=f"S{s}", todo_id="T")
    for i in range(2500):  # a big sweep: three pages
        log.emit("todo.queued", sweep_id="S0", todo_id=f"T{i}")
    calls: list[str] = []
    real_xrange, real_pipeline = r.xrange, r.pipeline

    def xrange(name: str, *a: Any, **kw: Any) -> Any:
        calls.append(name)
        return real_xrange(name, *a, **kw)

    def pipeline(*a: Any, **kw: Any) -> Any:
        calls.append("pipeline")
        return real_pipeline(*a, **kw)

    monkeypatch.setattr(r, "xrange", xrange)
    monkeypatch.setattr(r, "pipeline", pipeline)
    assert len(log.read(count=40)) == 40
    # The global stream, then one pipeline of the 30 first pages; no later page of S0.
    assert calls == [K.events, "pipeline"]
    calls.clear()
    assert len(log.read()) == 30 * 2 + 2500
    assert calls == [K.events, "pipeline", K.sweep_events("S0"), K.sweep_events("S0")]


# -- the merged follow -------------------------------------------------------------


def test_follow_all_sees_running_paused_and_new_sweeps_in_order(
    r: redis.Redis, log: EventLog
) -> None:
    emitted: list[tuple[str, str | None, str | None]] = []

    def emit(kind: str, sweep_id: str | None = None, todo_id: str | None = None) -> None:
        apart(r)
        log.emit(kind, sweep_id=sweep_id, todo_id=todo_id)
        emitted.append((kind, sweep_id, todo_id))

    set_status(r, "RUN", "running")
    emit("sweep.started", "RUN")
    emit("todo.started", "RUN", "r1")
    set_status(r, "PAUSED", "paused")
    emit("sweep.queued", "PAUSED")
    emit("todo.started", "PAUSED", "p1")
    emit("sweep.paused", "PAUSED")
    emit("repo.breaker_closed")
    before = len(emitted)
    with Follower(log) as f:
        assert what(f.wait_count(before)) == emitted  # the replay
        emit("todo.succeeded", "RUN", "r1")
        emit("todo.succeeded", "PAUSED", "p1")  # paused: its running todos still finish
        set_status(r, "NEW", "queued")
        emit("sweep.queued", "NEW")  # created after the follow started
        for i in range(3):
            emit("todo.queued", "NEW", f"n{i}")
        emit("todo.started", "RUN", "r2")
        emit("todo.started", "NEW", "n0")
        got = f.wait_count(len(emitted))
        f.wait_for(lambda g: g[-1].id == log.read()[-1].id)  # nothing after the last
    assert what(got) == emitted
    assert what(f.got) == emitted  # no duplicate came late
    assert [e.id for e in f.got] == [e.id for e in log.read()]


def test_follow_all_sees_todo_events_in_the_millisecond_before_a_new_sweeps_first_event(
    r: redis.Redis, log: EventLog
) -> None:
    put(r, K.events, "100-0", "repo.breaker_closed")
    with Follower(log) as f:
        f.wait_count(1)
        put(r, K.sweep_events("N"), "500-0", "todo.queued", "N", "T")  # before its sweep event
        put(r, K.sweep_events("N"), "500-1", "sweep.queued", "N")
        put(r, K.events, "500-1", "sweep.queued", "N")
        got = f.wait_count(3)
    assert [(e.id, e.kind) for e in got[1:]] == [
        ("500-0", "todo.queued"), ("500-1", "sweep.queued")]
    assert len(f.got) == 3


def test_follow_all_yields_a_new_sweeps_todo_events_in_order_with_later_global_ones(
    r: redis.Redis, log: EventLog
) -> None:
    """One XREAD can bring a new sweep's first global event and a later global event:
    the sweep's todo events between the two are read at once, not after both."""
    put(r, K.events, "100-0", "repo.breaker_closed")
    with Follower(log) as f:
        f.wait_count(1)
        tx = r.pipeline(transaction=True)  # the follower sees all of it in one XREAD
        put(tx, K.sweep_events("N"), "500-0", "sweep.queued", "N")
        put(tx, K.events, "500-0", "sweep.queued", "N")
        put(tx, K.sweep_events("N"), "550-0", "todo.queued", "N", "T")
        put(tx, K.events, "600-0", "level.done", "OTHER")
        tx.execute()
        f.wait_count(4)
        put(r, K.sweep_events("N"), "700-0", "todo.started", "N", "T")  # followed from now on
        got = f.wait_count(5)
    assert [e.id for e in got] == ["100-0", "500-0", "550-0", "600-0", "700-0"]
    assert len(f.got) == 5


def test_follow_all_keeps_order_when_one_stream_fills_its_page(
    r: redis.Redis, log: EventLog
) -> None:
    """A backlog larger than a page in one stream: one XREAD brings a full page of it
    and the global stream's later events. The later ones wait for the rest of the
    backlog instead of coming before it. (Two pages and more: a blocked XREAD that
    a real server wakes answers with the stream that woke it only.)"""
    set_status(r, "S", "running")
    put(r, K.events, "100-0", "sweep.queued", "S")
    with Follower(log) as f:
        f.wait_count(1)
        tx = r.pipeline(transaction=True)  # the follower sees all of it in one XREAD
        for seq in range(1, 2501):
            put(tx, K.sweep_events("S"), f"200-{seq}", "todo.queued", "S", f"T{seq}")
        for seq in range(5):
            put(tx, K.events, f"300-{seq}", "repo.breaker_closed")
        tx.execute()
        got = f.wait_count(2506)
    ids = [e.id for e in got]
    assert ids == ["100-0", *(f"200-{s}" for s in range(1, 2501)),
                   *(f"300-{s}" for s in range(5))]


def test_follow_all_never_yields_a_replayed_event_again(r: redis.Redis, log: EventLog) -> None:
    """An ended sweep (replayed, not followed) resumed during the follow: its stream is
    read again from the millisecond before the resume, but not over what the replay
    yielded."""
    set_status(r, "R", "succeeded")
    for stream in (K.events, K.sweep_events("R")):
        put(r, stream, "100-0", "sweep.queued", "R")
    put(r, K.sweep_events("R"), "100-1", "todo.succeeded", "R", "a")
    put(r, K.sweep_events("R"), "100-2", "todo.succeeded", "R", "b")
    for stream in (K.events, K.sweep_events("R")):
        put(r, stream, "100-5", "sweep.finished", "R")
    with Follower(log) as f:
        assert [e.id for e in f.wait_count(4)] == ["100-0", "100-1", "100-2", "100-5"]
        set_status(r, "R", "queued")
        for stream in (K.events, K.sweep_events("R")):
            put(r, stream, "101-0", "sweep.queued", "R")
        put(r, K.sweep_events("R"), "101-1", "todo.queued", "R", "a")
        put(r, K.events, "102-0", "repo.breaker_closed")  # a sentinel, after the rest
        f.wait_for(lambda g: g[-1].id == "102-0")
    ids = [e.id for e in f.got]
    assert ids == ["100-0", "100-1", "100-2", "100-5", "101-0", "101-1", "102-0"]


def test_follow_all_from_last_id_starts_now(r: redis.Redis, log: EventLog) -> None:
    """The global stream's last id can be long past: todo events after it are only in
    the sweeps' streams. Following from last_id() replays none of them."""
    set_status(r, "S", "running")
    log.emit("sweep.started", sweep_id="S")
    for i in range(3):
        apart(r)
        log.emit("todo.queued", sweep_id="S", todo_id=f"old{i}")
    apart(r)
    now = log.last_id()
    assert stream_id_key(now) > stream_id_key(log.read()[-1].id)
    with Follower(log, after=now) as f:
        log.emit("todo.started", sweep_id="S", todo_id="new")
        got = f.wait_count(1)
        log.emit("repo.breaker_closed")  # a sentinel, after the rest
        got = f.wait_for(lambda g: g[-1].kind == "repo.breaker_closed")
    assert what(got) == [("todo.started", "S", "new"), ("repo.breaker_closed", None, None)]


def test_last_id_is_before_any_event_emitted_after_it(log: EventLog) -> None:
    """Even one emitted in the same millisecond, as the first of that millisecond in
    its stream (id ``<ms>-0``): a follow from last_id() must not skip it."""
    for i in range(20):  # several of them land in the millisecond last_id() read
        now = log.last_id()
        eid = log.emit("todo.queued", sweep_id=f"S{i}", todo_id="T")
        assert stream_id_key(eid) > stream_id_key(now)


def test_follow_all_retries_a_dropped_connection(
    r: redis.Redis, log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_status(r, "S", "running")
    log.emit("sweep.started", sweep_id="S")
    real_xread = r.xread
    failures = iter([redis.ConnectionError("cut"), redis.TimeoutError("slow")])

    def flaky(*a: Any, **kw: Any) -> Any:
        exc = next(failures, None)
        if exc is not None:
            raise exc
        return real_xread(*a, **kw)

    monkeypatch.setattr(r, "xread", flaky)
    with Follower(log) as f:
        f.wait_count(1)
        log.emit("todo.queued", sweep_id="S", todo_id="T")
        got = f.wait_count(2)
    assert what(got) == [("sweep.started", "S", None), ("todo.queued", "S", "T")]


def test_follow_all_replay_stops_where_the_global_stream_ended(
    r: redis.Redis, log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events emitted while the replay runs (between its read of the global stream and
    of the sweeps' streams) come live, in order: the replay does not run ahead on the
    sweep streams past the global events it has not read."""
    set_status(r, "S", "running")
    log.emit("sweep.started", sweep_id="S")
    scan = log._scan_global

    def scan_then_emit(*a: Any, **kw: Any) -> Any:
        found = scan(*a, **kw)
        apart(r)
        log.emit("level.done", sweep_id="S", level=0)  # after the scan: not replayed
        apart(r)
        log.emit("todo.queued", sweep_id="S", todo_id="T")
        return found

    monkeypatch.setattr(log, "_scan_global", scan_then_emit)
    with Follower(log) as f:
        got = f.wait_count(3)
    assert what(got) == [("sweep.started", "S", None), ("level.done", "S", None),
                         ("todo.queued", "S", "T")]
