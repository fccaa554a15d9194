"""A todo's broker message written by coord (coordination.dispatch.envelope) is the one
Celery writes, field for field; BrokerDispatcher pushes it as kombu's Redis transport
does, and falls back to Celery's path when the push fails.

Celery's document is taken where kombu's virtual channel hands it to the transport
(``Channel._put``, the same for the Redis and in-memory transports): what the Redis
transport would serialise onto the queue's list.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from functools import partial
from typing import Any

import fakeredis
import pytest
import redis

from coordination.dispatch import BrokerDispatcher, CeleryDispatcher
from coordination.dispatch.envelope import Envelopes
from coordination.keys import Keys
from coordination.messages import BROKER_PRIORITY, TodoMessage
from coordination.runtime.queues import push_messages, queued_task_ids

pytestmark = pytest.mark.timeout(60)

KEYS = Keys("ns")

#: What differs between two senders, or two sends: the message's own tag, and the
#: sending process's node name and reply-to.
PER_SEND = {("properties", "delivery_tag"), ("headers", "origin"), ("properties", "reply_to")}


@pytest.fixture
def celery_documents(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, list[tuple[str, dict[str, Any]]]]]:
    """A Celery app on the in-memory transport; every (queue, document) its channel puts."""
    from celery import Celery
    from celery._state import get_current_app
    from kombu.transport import memory

    put: list[tuple[str, dict[str, Any]]] = []
    real_put = memory.Channel._put

    def record(self: Any, queue: str, message: dict[str, Any], **kw: Any) -> None:
        put.append((queue, json.loads(json.dumps(message))))
        real_put(self, queue, message, **kw)

    monkeypatch.setattr(memory.Channel, "_put", record)
    old = get_current_app()
    app = Celery("envelope-test", broker="memory://", backend="cache+memory://")
    app.conf.update(task_serializer="json", accept_content=["json"], task_ignore_result=True,
                    task_create_missing_queues=True)
    app.set_current()
    try:
        yield app, put
    finally:
        old.set_current()


MESSAGES = [
    TodoMessage("PLAN-1-20261123-ab12", "PLAN-1", "TODO-001", "api", 0),
    TodoMessage("S", "PLAN-7", "TODO-2", "web-app", 3, priority=BROKER_PRIORITY["critical"]),
    TodoMessage("S", "PLAN-7", "TODO-3", "web", 1, priority=BROKER_PRIORITY["low"],
                eta=1_900_000_000.25),
    TodoMessage("S", "", "TODO-4", "api", 0, priority=BROKER_PRIORITY["medium"]),
]


def differences(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    out = []
    for section in ("headers", "properties"):
        for k in sorted(set(ours[section]) | set(theirs[section])):
            if (section, k) in PER_SEND:
                continue
            if ours[section].get(k, "<missing>") != theirs[section].get(k, "<missing>"):
                out.append(f"{section}.{k}: ours {ours[section].get(k, '<missing>')!r} "
                           f"celery {theirs[section].get(k, '<missing>')!r}")
        if list(ours[section]) != list(theirs[section]):
            out.append(f"{section} order: ours {list(ours[section])} celery {list(theirs[section])}")
    for k in ("content-encoding", "content-type"):
        if ours[k] != theirs[k]:
            out.append(f"{k}: ours {ours[k]!r} celery {theirs[k]!r}")
    if list(ours) != list(theirs):
        out.append(f"order: ours {list(ours)} celery {list(theirs)}")
    if base64.b64decode(ours["body"]) != base64.b64decode(theirs["body"]):
        out.append(f"body: ours {base64.b64decode(ours['body'])!r} "
                   f"celery {base64.b64decode(theirs['body'])!r}")
    return out


def test_the_document_is_celerys_field_for_field(celery_documents: Any) -> None:
    app, put = celery_documents
    CeleryDispatcher(app, KEYS).send(MESSAGES)
    assert len(put) == len(MESSAGES)
    env = Envelopes()
    for m, (queue, theirs) in zip(MESSAGES, put):
        assert queue == KEYS.repo_queue(m.repo)
        ours = env.document(m, queue)
        assert differences(ours, theirs) == [], m


def test_what_differs_per_send_is_well_formed() -> None:
    env = Envelopes()
    a = env.document(MESSAGES[0], "ns.repo.api")
    b = env.document(MESSAGES[0], "ns.repo.api")
    assert a["properties"]["delivery_tag"] != b["properties"]["delivery_tag"]
    assert a["headers"]["origin"].startswith("gen") and "@" in a["headers"]["origin"]
    assert a["properties"]["reply_to"] == b["properties"]["reply_to"]  # one per process


def test_a_celery_worker_reads_it_as_the_task_it_is() -> None:
    """kombu's own message decoding (what a worker runs on a message, JSON only) gets
    the task, its id, kwargs, eta and stamps back."""
    from kombu.message import Message

    env = Envelopes()
    doc = env.document(MESSAGES[2], "ns.repo.web")
    msg = Message(body=base64.b64decode(doc["body"]), content_type=doc["content-type"],
                  content_encoding=doc["content-encoding"], headers=doc["headers"],
                  properties=doc["properties"], accept=["application/json"])
    args, kwargs, embed = msg.decode()
    assert (args, embed["chord"]) == ([], None)
    assert kwargs == {"sweep_id": "S", "plan_id": "PLAN-7", "todo_id": "TODO-3", "repo": "web",
                      "run": 1}
    assert msg.headers["task"] == "coord.run_todo" and msg.headers["id"] == "S:TODO-3:1"
    assert msg.headers["eta"] == "2030-03-17T17:46:40.250000+00:00"
    assert msg.headers["stamps"]["coord_todo"] == "TODO-3"


def test_the_push_lands_where_kombu_would_put_it_in_order() -> None:
    r = fakeredis.FakeRedis()
    d = BrokerDispatcher(partial(push_messages, r, KEYS), KEYS, app_factory=lambda: pytest.fail("no Celery app needed"))
    batch = [TodoMessage("S", "P", f"TODO-{i}", "api", 0, priority=BROKER_PRIORITY["medium"])
             for i in range(5)]
    batch.append(TodoMessage("S", "P", "TODO-9", "api", 0, priority=BROKER_PRIORITY["critical"]))
    d.send(batch)
    medium = KEYS.broker_queue("ns.repo.api", 6)
    critical = KEYS.broker_queue("ns.repo.api", 0)
    assert critical == "ns:celery:ns.repo.api" and medium == "ns:celery:ns.repo.api\x06\x166"
    # a worker pops the tail (BRPOP): the first sent is the first taken
    popped = [json.loads(r.rpop(medium))["headers"]["id"] for _ in range(5)]
    assert popped == [f"S:TODO-{i}:0" for i in range(5)]
    assert queued_task_ids(r, KEYS, ["ns.repo.api"]) == {"S:TODO-9:0"}
    member = b"ns.repo.api\x06\x16\x06\x16ns.repo.api"
    assert r.smembers("ns:celery:_kombu.binding.ns.repo.api") == {member}
    assert r.smembers("ns:celery:_kombu.binding_permanent.ns.repo.api") == {member}


def test_a_batch_is_one_round_trip_and_a_queue_is_bound_once() -> None:
    r = fakeredis.FakeRedis()
    d = BrokerDispatcher(partial(push_messages, r, KEYS), KEYS, app_factory=lambda: pytest.fail("no Celery app needed"))
    calls: list[list[Any]] = []
    real = r.pipeline

    def counting_pipeline(*a: Any, **kw: Any) -> Any:
        pipe = real(*a, **kw)
        real_execute = pipe.execute

        def execute(*ea: Any, **ekw: Any) -> Any:
            calls.append([c[0][0] for c in pipe.command_stack])
            return real_execute(*ea, **ekw)

        pipe.execute = execute
        return pipe

    r.pipeline = counting_pipeline  # type: ignore[method-assign]
    d.send([TodoMessage("S", "P", f"T{i}", repo, 0, priority=6)
            for i, repo in enumerate(["api", "web", "api", "web"])])
    d.send([TodoMessage("S", "P", "T9", "api", 0, priority=6)])
    assert calls == [["SADD", "SADD", "SADD", "SADD", "LPUSH", "LPUSH"], ["LPUSH"]]


def test_a_failed_push_goes_through_celery(celery_documents: Any) -> None:
    app, put = celery_documents

    class Down(fakeredis.FakeRedis):
        def pipeline(self, *a: Any, **kw: Any) -> Any:
            raise redis.ConnectionError("broker restarting")

    d = BrokerDispatcher(partial(push_messages, Down(), KEYS), KEYS, app=app)
    d.send(MESSAGES[:2])
    assert [doc["headers"]["id"] for _, doc in put] == [m.task_id for m in MESSAGES[:2]]


def test_revoke_makes_the_app_when_needed() -> None:
    calls: list[list[str]] = []

    class App:
        class control:  # noqa: N801 - Celery's attribute
            @staticmethod
            def revoke(ids: list[str]) -> None:
                calls.append(ids)

    made: list[int] = []
    d = BrokerDispatcher(partial(push_messages, fakeredis.FakeRedis(), KEYS), KEYS, app_factory=lambda: made.append(1) or App())
    d.revoke([])
    assert made == []
    d.revoke(["S:A:0"])
    assert calls == [["S:A:0"]] and made == [1]


def test_queues_live_workers_consume_are_not_bound_again() -> None:
    """A worker bound its queues as it started consuming them: a sender binds only the
    queues no live worker serves (two commands a queue saved: at 10,000 repos, two of a
    sweep's commands per todo), asks who serves what once for a batch with new queues,
    and binds them all when it cannot tell."""
    r = fakeredis.FakeRedis()
    asked: list[int] = []

    def served() -> list[str]:
        asked.append(1)
        return ["ns.repo.api"]

    d = BrokerDispatcher(partial(push_messages, r, KEYS), KEYS, served=served,
                         app_factory=lambda: pytest.fail("no Celery app needed"))
    d.send([TodoMessage("S", "P", "T1", "api", 0), TodoMessage("S", "P", "T2", "web", 0)])
    d.send([TodoMessage("S", "P", "T3", "api", 0), TodoMessage("S", "P", "T4", "web", 0)])
    assert asked == [1]  # the second batch sends to no new queue
    assert not r.exists("ns:celery:_kombu.binding.ns.repo.api")
    assert r.exists("ns:celery:_kombu.binding.ns.repo.web")

    def down() -> list[str]:
        raise redis.ConnectionError("gone")

    d = BrokerDispatcher(partial(push_messages, r, KEYS), KEYS, served=down,
                         app_factory=lambda: pytest.fail("no Celery app needed"))
    d.send([TodoMessage("S", "P", "T5", "db", 0)])
    assert r.exists("ns:celery:_kombu.binding.ns.repo.db")
