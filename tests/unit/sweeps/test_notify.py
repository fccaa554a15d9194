"""Notifications: the outbox filled from the event log (each event once per webhook,
whoever reads it, however often), the lease every write is checked against, signing,
the payloads, and URLs fit to print."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest

from coordination.catalog.models import NotifyTarget
from coordination.keys import Keys
from coordination.runtime.events import EventLog
from coordination.runtime.notify import Outbox
from coordination.sweeps.notices import notify

pytestmark = pytest.mark.timeout(30)
KEYS = Keys("nt")
HOOK = {"url": "https://u:pw@hooks.example/coord", "events": ["todo.failed", "sweep.finished",
                                                               "gate.waiting"],
        "secret_env": "HOOK_SECRET", "format": "json"}


@pytest.fixture
def fake_box() -> Iterator[tuple[Outbox, EventLog]]:
    r = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    yield Outbox(r, KEYS), EventLog(r, KEYS)


def one_failure_filled(outbox: Outbox, events: EventLog) -> None:
    """HOOK published, filler A holding the outbox, and one todo.failed (TODO-1 of S1)
    filled in as a pending delivery."""
    outbox.publish_targets([HOOK])
    assert outbox.acquire("A", 10)
    events.emit("sweep.queued", sweep_id="S1")
    events.emit("todo.failed", sweep_id="S1", todo_id="TODO-1")
    notify.fill(outbox, "A", [HOOK], 100.0)


def test_every_event_once_per_webhook_whoever_reads_it(fake_box: tuple[Outbox, EventLog]) -> None:
    outbox, events = fake_box
    outbox.publish_targets([HOOK])  # the feed starts here
    assert outbox.acquire("A", 10)
    events.emit("sweep.queued", sweep_id="S1")
    events.emit("todo.failed", sweep_id="S1", todo_id="TODO-1", reason="exit 1")
    # A kind no code of this module knows (approval gates): delivered all the same.
    events.emit("gate.waiting", sweep_id="S1", todo_id="TODO-2")
    events.emit("todo.succeeded", sweep_id="S1", todo_id="TODO-3")
    assert notify.fill(outbox, "A", [HOOK], 100.0) == 2
    events.emit("sweep.finished", sweep_id="S1", status="failed")
    assert notify.fill(outbox, "A", [HOOK], 101.0) == 1
    # Read again from scratch (a filler killed before it saved its cursors): nothing new.
    cursors = outbox.cursors()
    outbox.r.delete(KEYS.notify_cursors)
    outbox.save_cursors({notify.GLOBAL: "0-0"})
    assert notify.fill(outbox, "A", [HOOK], 102.0) == 0
    kinds = sorted(d["kind"] for d in outbox.due(200.0))
    assert kinds == ["gate.waiting", "sweep.finished", "todo.failed"]
    assert len({d["id"] for d in outbox.due(200.0)}) == 3
    assert cursors


def test_a_filler_that_lost_the_outbox_writes_nothing(fake_box: tuple[Outbox, EventLog]) -> None:
    outbox, events = fake_box
    outbox.publish_targets([HOOK])
    assert outbox.acquire("A", 10)
    events.emit("sweep.queued", sweep_id="S1")
    events.emit("todo.failed", sweep_id="S1", todo_id="TODO-1")
    outbox.r.delete(KEYS.notify_lease)
    assert outbox.acquire("B", 10) and not outbox.acquire("A", 10)
    assert notify.fill(outbox, "A", [HOOK], 100.0) == -1
    assert outbox.due(200.0) == []
    assert notify.fill(outbox, "B", [HOOK], 100.0) == 1
    d = outbox.due(200.0)[0]
    assert not outbox.settle("A", {**d, "status": "delivered", "next_at": None})
    assert outbox.due(200.0) == [d]


def test_attempts_back_off_then_deliver_signed(fake_box: tuple[Outbox, EventLog],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    outbox, events = fake_box
    one_failure_filled(outbox, events)
    sent: list[tuple[str, bytes, dict[str, str]]] = []
    answers = iter([(500, "HTTP 500"), (None, "ConnectionRefusedError: refused"), (200, None)])

    def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 3) -> Any:
        sent.append((url, body, dict(headers)))
        return next(answers)

    monkeypatch.setattr(notify, "post", post)
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    now = 1000.0
    assert notify.deliver_due(outbox, "A", now) == 0
    d = outbox.log()[0]
    assert d["attempts"] == 1 and d["last_error"] == "HTTP 500" and d["next_at"] == now + 1
    assert notify.deliver_due(outbox, "A", now + 0.5) == 0  # not due yet: not sent
    assert len(sent) == 1
    assert notify.deliver_due(outbox, "A", now + 1) == 0
    assert outbox.log()[0]["next_at"] == now + 1 + 2  # doubled
    assert notify.deliver_due(outbox, "A", now + 3) == 1
    d = outbox.log()[0]
    assert d["status"] == "delivered" and d["attempts"] == 3 and outbox.pending() == 0
    ids = {h["X-Coord-Delivery"] for _u, _b, h in sent}
    assert ids == {d["id"]}  # one id across every attempt
    for _url, body, h in sent:
        t, v1 = (p.split("=", 1)[1] for p in h["X-Coord-Signature"].split(","))
        want = hmac.new(b"s3cret", f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(v1, want)
        assert json.loads(body)["event"]["todo_id"] == "TODO-1"


def test_a_missing_secret_is_an_error_not_an_unsigned_post(fake_box: tuple[Outbox, EventLog],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    outbox, events = fake_box
    one_failure_filled(outbox, events)
    monkeypatch.delenv("HOOK_SECRET", raising=False)
    monkeypatch.setattr(notify, "post", lambda *a, **k: pytest.fail("posted unsigned"))
    notify.deliver_due(outbox, "A", 1000.0)
    assert "HOOK_SECRET is not set" in str(outbox.log()[0]["last_error"])


def test_slack_payload() -> None:
    body = notify.payload({"id": "d-1", "format": "slack"},
                          {"kind": "todo.failed", "sweep_id": "S", "todo_id": "TODO-1",
                           "reason": "exit 2"})
    assert json.loads(body) == {"text": "coord: *todo.failed* S TODO-1 (reason: exit 2)"}


@pytest.mark.parametrize("url,shown", [
    ("https://u:pw@hooks.example/coord?token=abc", "https://***@hooks.example/coord?token=***"),
    ("https://hooks.slack.com/services/T0001/B0001/abcdefghijklmnop1234",
     "https://hooks.slack.com/services/T0001/B0001/***"),
    ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook"),
])
def test_urls_are_printed_without_credentials(url: str, shown: str) -> None:
    assert notify.redact(url) == shown


def test_the_events_filter_takes_every_governance_event() -> None:
    names = ["sweep.finished", "todo.failed", "gate.waiting", "gate.approved", "gate.rejected",
             "gate.expired", "wave.started", "wave.soaking", "wave.done", "wave.halted",
             "repo.breaker_open", "repo.unattended"]
    assert NotifyTarget(url="https://h/x", events=names).events == names
    with pytest.raises(ValueError, match="unknown event 'gate.wating'"):
        NotifyTarget(url="https://h/x", events=["gate.wating"])
    with pytest.raises(ValueError, match="http"):
        NotifyTarget(url="ftp://h/x")
    with pytest.raises(ValueError, match="environment variable name"):
        NotifyTarget(url="https://h/x", secret_env="my secret")
