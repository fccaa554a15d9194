"""Webhooks are delivered concurrently, each in its own lane: a slow endpoint holds its
own deliveries, never another's; each endpoint gets its deliveries in event order, and
one back from an outage gets its backlog in order (a delivery waiting out a backoff
holds its webhook's later ones). Real loopback receivers; the outbox on fakeredis and
on redis-server alike."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from coordination.keys import Keys
from coordination.runtime.events import EventLog
from coordination.runtime.notify import Outbox
from coordination.sweeps.notices import notify
from tests.waiting import wait_for
from tests.webhooks import QuietHandler, serve, stop_serving

pytestmark = pytest.mark.timeout(60)
KEYS = Keys("lanes")
KINDS = ["todo.failed", "sweep.finished"]


class Receiver:
    """A webhook endpoint: records each request's event id; answers ``code``; with
    ``hold`` set, holds each answer until ``release`` is set (5 s at most)."""

    def __init__(self, hold: bool = False) -> None:
        self.code = 200
        self.hold = hold
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.got: list[str] = []  # "kind:todo", as received
        self.entered = threading.Event()
        self.answered = threading.Event()
        box = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.body())
                with box.lock:
                    ev = body["event"]
                    box.got.append(f"{ev['kind']}:{ev.get('todo_id') or ''}")
                box.entered.set()
                if box.hold:
                    box.release.wait(5.0)
                self.answer(box.code)
                box.answered.set()

        self.server = serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def received(self) -> list[str]:
        with self.lock:
            return list(self.got)

    def close(self) -> None:
        self.release.set()
        stop_serving(self.server)


@pytest.fixture
def box(redis_backend: tuple[str, Any]) -> Iterator[tuple[Outbox, EventLog]]:
    _name, make = redis_backend
    r = make(redis.Redis) if _name == "redis-server" else make(__import__("fakeredis").FakeRedis)
    yield Outbox(r, KEYS), EventLog(r, KEYS)
    r.close()


def hook(url: str) -> dict[str, object]:
    return {"url": url, "events": KINDS, "secret_env": None, "format": "json"}


def test_a_slow_webhook_holds_only_its_own_lane(box: tuple[Outbox, EventLog]) -> None:
    outbox, events = box
    slow, fast = Receiver(hold=True), Receiver()
    try:
        targets = [hook(slow.url), hook(fast.url)]
        outbox.publish_targets(targets)
        assert outbox.acquire("A", 30)
        events.emit("sweep.queued", sweep_id="S1")
        events.emit("todo.failed", sweep_id="S1", todo_id="TODO-0")
        first = "todo.failed:TODO-0"
        assert notify.fill(outbox, "A", targets[:1], 100.0) == 1  # the slow one's, due first
        for i in (1, 2, 3):
            events.emit("todo.failed", sweep_id="S1", todo_id=f"TODO-{i}")
        events.emit("sweep.finished", sweep_id="S1", status="failed")
        ids = ["todo.failed:TODO-1", "todo.failed:TODO-2", "todo.failed:TODO-3",
               "sweep.finished:"]
        assert notify.fill(outbox, "A", targets, 101.0) == 8
        runner = threading.Thread(target=notify.deliver_due, args=(outbox, "A", 200.0),
                                  kwargs={"timeout": 4.0}, daemon=True)
        runner.start()
        assert slow.entered.wait(5.0), "the slow webhook was never called"
        # The healthy webhook gets all of its deliveries, in event order, while the slow
        # one has not answered its first.
        wait_for(lambda: len(fast.received()) == 4, 3.0,
                   "the healthy webhook's deliveries while the slow one holds its first")
        assert not slow.answered.is_set()
        assert fast.received() == ids
        slow.release.set()
        runner.join(10)
        assert not runner.is_alive()
        assert slow.received() == [first, *ids]
        assert outbox.pending() == 0 and outbox.lanes_listed() == 0
    finally:
        slow.close()
        fast.close()


def test_a_backlog_after_an_outage_goes_in_event_order(box: tuple[Outbox, EventLog]) -> None:
    outbox, events = box
    down, other = Receiver(), Receiver()
    try:
        targets = [hook(down.url), hook(other.url)]
        outbox.publish_targets(targets)
        assert outbox.acquire("A", 30)
        down.code = 503
        events.emit("sweep.queued", sweep_id="S1")
        events.emit("todo.failed", sweep_id="S1", todo_id="TODO-1")
        e1, e2, e3 = "todo.failed:TODO-1", "todo.failed:TODO-2", "sweep.finished:"
        notify.fill(outbox, "A", targets, 100.0)
        assert notify.deliver_due(outbox, "A", 100.0, timeout=4.0) == 1  # the other's
        assert down.received() == [e1]
        # While e1 waits out its backoff (due at 101), later events of its webhook wait
        # behind it; the other webhook gets them at once.
        events.emit("todo.failed", sweep_id="S1", todo_id="TODO-2")
        events.emit("sweep.finished", sweep_id="S1", status="failed")
        notify.fill(outbox, "A", targets, 100.5)
        assert notify.deliver_due(outbox, "A", 100.5, timeout=4.0) == 2
        assert down.received() == [e1], "a later delivery overtook one waiting out a backoff"
        assert other.received() == [e1, e2, e3]
        down.code = 200  # back up
        assert notify.deliver_due(outbox, "A", 101.0, timeout=4.0) == 3
        assert down.received() == [e1, e1, e2, e3]
        log = {d["todo_id"]: d for d in outbox.log() if d["url"] == down.url}
        assert log["TODO-1"]["attempts"] == 2 and log["TODO-2"]["attempts"] == 1
        assert outbox.pending() == 0 and outbox.lanes_listed() == 0
    finally:
        down.close()
        other.close()


def test_deliveries_from_before_lanes_are_adopted(box: tuple[Outbox, EventLog]) -> None:
    """An outbox written by coord 0.3 (deliveries in the due set, no lanes) is
    delivered by the first holder, in event order."""
    outbox, events = box
    rcv = Receiver()
    try:
        targets = [hook(rcv.url)]
        outbox.publish_targets(targets)
        assert outbox.acquire("A", 30)
        events.emit("sweep.queued", sweep_id="S1")
        for i in (1, 2):
            events.emit("todo.failed", sweep_id="S1", todo_id=f"TODO-{i}")
        ids = ["todo.failed:TODO-1", "todo.failed:TODO-2"]
        notify.fill(outbox, "A", targets, 100.0)
        for key in outbox.r.scan_iter(f"{KEYS.namespace}:notify:lane*"):
            outbox.r.delete(key)  # as 0.3 left it
        assert notify.deliver_due(outbox, "A", 100.0) == 0
        assert outbox.adopt("B") == -1  # not the holder: nothing written
        assert outbox.adopt("A") == 2 and outbox.adopt("A") == 0
        assert notify.deliver_due(outbox, "A", 100.0) == 2
        assert rcv.received() == ids
    finally:
        rcv.close()


def test_left_due_says_whether_a_command_should_deliver(box: tuple[Outbox, EventLog]) -> None:
    """What a command that ran no sweep asks before it exits: a delivery due now, and no
    notifier holding the outbox (one that does delivers it itself)."""
    outbox, events = box
    targets = [hook("http://127.0.0.1:9/hook")]
    outbox.publish_targets(targets)
    assert not outbox.left_due(100.0)  # nothing in the outbox
    assert outbox.acquire("A", 30)
    events.emit("sweep.queued", sweep_id="S1")
    events.emit("sweep.finished", sweep_id="S1", status="failed")
    assert notify.fill(outbox, "A", targets, 100.0) == 1
    assert not outbox.left_due(100.0)  # a notifier holds the outbox
    outbox.release("A")
    assert outbox.left_due(100.0)
    assert not outbox.left_due(99.0)  # not due yet (a backoff)
