"""The event ledger on the embedded server: emit, read, follow, replay."""

from __future__ import annotations

import json
import time

import pytest
import redis

from coordination.keys import Keys
from coordination.runtime.events import EventLog, live_events
from tests.waiting import Follower

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def fake_log(fake_r: redis.Redis) -> EventLog:
    return EventLog(fake_r, Keys("t"))


def wait_past(fake_r: redis.Redis, entry_id: str) -> None:
    """Wait until the server's clock is past the millisecond of stream id ``entry_id``."""
    ms = int(entry_id.split("-")[0])
    deadline = time.monotonic() + 5
    while True:
        sec, usec = fake_r.time()
        if int(sec) * 1000 + int(usec) // 1000 > ms:
            return
        assert time.monotonic() < deadline, "the server clock did not move"


def test_emit_and_read_in_order(fake_log: EventLog) -> None:
    queued = fake_log.emit("sweep.queued", sweep_id="S")
    ids = [fake_log.emit("todo.started", sweep_id="S", todo_id=f"T{i}", n=i) for i in range(5)]
    # Ids of different streams order by the server clock: in one millisecond, OTHER's
    # global id could sort before S's last todo ids. Emit it in the next one.
    wait_past(fake_log.r, ids[-1])
    fake_log.emit("sweep.queued", sweep_id="OTHER")
    events = fake_log.read("S")
    assert [e.id for e in events] == [queued, *ids]
    assert [e.data["n"] for e in events[1:]] == list(range(5))
    assert all(e.kind == "todo.started" and e.sweep_id == "S" for e in events[1:])
    # The namespace-wide view still has every event: the sweeps' own events from the
    # global stream, the todo events (stored in S's stream only) merged in.
    every = fake_log.read()
    assert [e.kind for e in every] == ["sweep.queued", *["todo.started"] * 5, "sweep.queued"]
    assert [e.id for e in every[1:6]] == ids
    assert [e.id for e in fake_log.read("S", after=ids[1], count=2)] == ids[2:4]


def test_to_dict_is_json_and_flat(fake_log: EventLog) -> None:
    fake_log.emit("todo.failed", sweep_id="S", todo_id="T1", exit_code=3, tail=None)
    d = fake_log.read("S")[0].to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["kind"] == "todo.failed" and d["exit_code"] == 3 and d["todo_id"] == "T1"
    assert set(d) >= {"id", "kind", "ts", "sweep_id", "todo_id"}


def test_reserved_names_are_refused(fake_log: EventLog) -> None:
    with pytest.raises(ValueError):
        fake_log.emit("todo.started", ts="oops")


def test_emit_publishes_with_id(fake_r: redis.Redis, fake_log: EventLog) -> None:
    ps = fake_r.pubsub()
    ps.subscribe(Keys("t").events_channel)
    deadline = time.monotonic() + 5
    while ps.get_message(timeout=0.1) is None and time.monotonic() < deadline:
        pass  # the subscribe confirmation
    eid = fake_log.emit("sweep.started", sweep_id="S", plan="PLAN-001")
    msg = None
    while msg is None and time.monotonic() < deadline:
        msg = ps.get_message(timeout=0.1)
    assert msg is not None
    (body,) = live_events(msg["data"])  # a message of one event: an array of one
    assert body["id"] == eid and body["kind"] == "sweep.started" and body["plan"] == "PLAN-001"
    assert json.loads(msg["data"]) == [body]
    ps.close()


def test_events_prepared_together_are_written_in_order_and_told_in_one_message(
        fake_r: redis.Redis, fake_log: EventLog) -> None:
    """Two events of one sweep a script writes with its change (``Prepared.then``):
    appended in order to both streams, published together, each with its id; the text
    of one holding a newline stays one event. Events for other streams are refused."""
    ps = fake_r.pubsub()
    ps.subscribe(Keys("t").events_channel)
    deadline = time.monotonic() + 5
    while ps.get_message(timeout=0.1) is None and time.monotonic() < deadline:
        pass  # the subscribe confirmation
    first = fake_log.prepare("wave.done", sweep_id="S", wave="api", note="two\nlines")
    last_id = fake_log.write(first.then(fake_log.prepare("sweep.unpaused", sweep_id="S")))
    msg = None
    while msg is None and time.monotonic() < deadline:
        msg = ps.get_message(timeout=0.1)
    assert msg is not None
    told = live_events(msg["data"])
    assert [(e["kind"], e.get("note")) for e in told] == [
        ("wave.done", "two\nlines"), ("sweep.unpaused", None)]
    mine = fake_log.read("S")
    assert [(e.id, e.kind) for e in mine] == [(e["id"], e["kind"]) for e in told]
    assert mine[-1].id == last_id
    assert [e.kind for e in fake_log.read()] == ["wave.done", "sweep.unpaused"]
    with pytest.raises(ValueError, match="same streams"):
        first.then(fake_log.prepare("todo.started", sweep_id="S", todo_id="T1"))
    ps.close()


def test_live_events_reads_an_array_and_a_single_event_in_order() -> None:
    """A 0.4 message (an array, in stream order) and what workers before 0.4
    published (one object per event) read alike; anything else is refused."""
    batch = '[{"id":"1-0","kind":"todo.queued"},{"id":"1-1","kind":"todo.started"}]'
    assert [e["id"] for e in live_events(batch)] == ["1-0", "1-1"]
    assert live_events(b'{"id":"2-0","kind":"todo.succeeded"}') == [
        {"id": "2-0", "kind": "todo.succeeded"}]
    for junk in ("[1, 2]", '"todo.queued"', "3", "not json"):
        with pytest.raises(ValueError):
            live_events(junk)


def test_read_pages_through_many_events(fake_log: EventLog) -> None:
    pipe_ids = [fake_log.emit("todo.queued", sweep_id="S", i=i) for i in range(2500)]
    events = fake_log.read("S")
    assert [e.id for e in events] == pipe_ids
    assert len(fake_log.read("S", count=1500)) == 1500


def test_follow_replays_then_goes_live_without_gaps(fake_log: EventLog) -> None:
    for i in range(3):
        fake_log.emit("todo.queued", sweep_id="S", i=i)
    follower = Follower(fake_log, "S", block_ms=50)
    got = follower.got
    for i in range(3, 50):
        fake_log.emit("todo.queued", sweep_id="S", i=i)
    deadline = time.monotonic() + 10
    while len(got) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    follower.stop()
    assert not follower.thread.is_alive()
    assert [e.data["i"] for e in got] == list(range(50))


def test_late_reader_replays_from_its_last_id(fake_log: EventLog) -> None:
    first = [fake_log.emit("todo.queued", sweep_id="S", i=i) for i in range(5)]
    for i in range(5, 8):
        fake_log.emit("todo.queued", sweep_id="S", i=i)
    seen = []
    for ev in fake_log.follow("S", after=first[-1], block_ms=10, stop=lambda: True):
        seen.append(ev.data["i"])
    assert seen == [5, 6, 7]


def test_every_kind_the_code_emits_is_a_known_kind() -> None:
    """KINDS is the list of event kinds (README, dashboards): whatever the code emits is in
    it, spelled as text (``emit("todo.lost", ...)``) or as a member (``EventKind.todo_lost``)."""
    import re
    from pathlib import Path

    from coordination.runtime.events import KINDS
    from coordination.status import EventKind

    root = Path(__file__).resolve().parents[3]
    emitted: set[str] = set()
    members: set[str] = set()
    for f in [*root.joinpath("coordination").rglob("*.py"), *root.joinpath("workers").rglob("*.py")]:
        text = f.read_text()
        emitted |= set(re.findall(r'emit\(\s*"([a-z]+\.[a-z_]+)"', text))
        members |= set(re.findall(r"emit\(\s*EventKind\.(\w+)", text))
    assert members <= set(EventKind.__members__), sorted(members - set(EventKind.__members__))
    emitted |= {EventKind[m].value for m in members}
    assert emitted and emitted <= KINDS, sorted(emitted - KINDS)
