"""What the runtime sends: the messages themselves, on Celery's in-memory transport.

No worker: a publish hook records each message as it leaves. These are the
messages the sweep engine sends (through ``CeleryDispatcher``), not a canvas
built for inspection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from coordination.dispatch import CeleryDispatcher
from coordination.dispatch.signatures import todo_signature
from coordination.keys import Keys
from coordination.messages import TodoMessage, todo_task_id

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def memory_app() -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """A Celery app on the in-memory transport, current for the test; records publishes."""
    from celery import Celery
    from celery._state import get_current_app
    from celery.signals import before_task_publish

    old = get_current_app()
    app = Celery("dispatch-test", broker="memory://", backend="cache+memory://")
    app.set_current()
    sent: list[dict[str, Any]] = []

    def record(headers: dict[str, Any] | None = None, routing_key: str | None = None,
               body: Any = None, **_: Any) -> None:
        sent.append({"routing_key": routing_key, "body": body, **(headers or {})})

    before_task_publish.connect(record, weak=False)
    try:
        yield app, sent
    finally:
        before_task_publish.disconnect(record)
        old.set_current()


def test_signature_options_ids_and_json_only_kwargs() -> None:
    sig = todo_signature("TODO-7", "api", sweep_id="S", plan_id="PLAN-1", keys=Keys("ns"), run=2)
    assert sig["task"] == "coord.run_todo" and sig["immutable"] is True
    assert sig["kwargs"] == {"sweep_id": "S", "plan_id": "PLAN-1", "todo_id": "TODO-7",
                             "repo": "api", "run": 2}
    opts = sig["options"]
    assert opts["queue"] == "ns.repo.api" and opts["task_id"] == "S:TODO-7:2"
    assert opts["ignore_result"] is True
    stamps = {"coord_sweep": "S", "coord_plan": "PLAN-1", "coord_todo": "TODO-7"}
    assert opts["headers"] == stamps
    assert sorted(opts["stamped_headers"]) == sorted(stamps)
    assert json.loads(json.dumps(sig))["kwargs"] == sig["kwargs"]


def test_task_id_names_sweep_todo_and_run() -> None:
    assert todo_task_id("S", "T") == "S:T"
    assert TodoMessage("S", "P", "T", "api", 3).task_id == "S:T:3"


def test_sent_messages_carry_queue_task_id_stamps_and_no_result(memory_app: Any) -> None:
    app, sent = memory_app
    d = CeleryDispatcher(app, Keys("coord"))
    d.send([TodoMessage("S", "PLAN-001", "TODO-003", "api", 0),
            TodoMessage("S", "PLAN-001", "TODO-004", "web", 0)])
    by_id = {m["id"]: m for m in sent}
    assert set(by_id) == {"S:TODO-003:0", "S:TODO-004:0"}
    m = by_id["S:TODO-003:0"]
    assert m["task"] == "coord.run_todo"
    assert m["routing_key"] == "coord.repo.api"
    assert by_id["S:TODO-004:0"]["routing_key"] == "coord.repo.web"
    assert m["coord_sweep"] == "S" and m["coord_todo"] == "TODO-003"
    assert m["stamps"]["coord_plan"] == "PLAN-001"
    assert m["ignore_result"] is True
    assert m["body"][1] == {"sweep_id": "S", "plan_id": "PLAN-001", "todo_id": "TODO-003",
                            "repo": "api", "run": 0}


def test_send_level_sends_each_queued_todo_once_and_nothing_while_paused(
        memory_app: Any) -> None:
    """The engine's own sender: a level is queued in one script call, then one message
    per todo it queued; a second sender (a racing supervisor) sends nothing."""
    from coordination.runtime.context import Runtime
    from coordination.settings import Settings
    from coordination.sweeps.sending import send_level
    from coordination.sweeps.spec import SweepSpec, TodoSpec

    app, sent = memory_app
    from coordination.connection.client import stand_in

    rt = Runtime.create(Settings(redis_url=None, namespace="dispatch-test"), client=stand_in())
    rt.dispatcher = CeleryDispatcher(app, rt.keys)
    todos = {t: TodoSpec(id=t, repo="api", queue=rt.keys.repo_queue("api"), run="true",
                         timeout=5, retries=0) for t in ("A", "B")}
    spec = SweepSpec(sweep_id="SW", plan="P", strategy="levels", run=0, todos=todos,
                     levels=[["A", "B"]], concurrency={"api": 1})
    rt.checkpoints.create_sweep("SW", {"spec": spec.to_json(), "status": "paused"})
    assert send_level(rt, spec, 0, reason="start") == [] and sent == []  # paused
    rt.checkpoints.set_sweep_status("SW", "queued")
    assert send_level(rt, spec, 0, reason="start") == ["A", "B"]
    assert send_level(rt, spec, 0, reason="again") == []
    assert sorted(m["id"] for m in sent) == ["SW:A:0", "SW:B:0"]
    kinds = [e.kind for e in rt.events.read("SW")]
    assert kinds == ["todo.queued", "todo.queued"]


def test_revoke_goes_through_the_app(memory_app: Any) -> None:
    calls: list[list[str]] = []

    class Control:
        def revoke(self, ids: list[str]) -> None:
            calls.append(ids)

    class App:
        control = Control()

    d = CeleryDispatcher(App(), Keys())
    d.revoke([])
    d.revoke(["S:A:0"])
    assert calls == [["S:A:0"]]


def test_a_batch_that_fails_is_sent_again_one_by_one(memory_app: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A publish batch flushes without kombu's retries; when it fails, every message of
    the batch goes again through ``send_task``'s own retrying publish (duplicates are
    harmless: the start script lets one delivery run a todo)."""
    from kombu import messaging

    app, sent = memory_app

    def broken_batch(self: Any, max_size: int = 1000) -> Any:
        class Broken:
            def __enter__(self) -> None:
                return None

            def __exit__(self, *exc: object) -> None:
                raise ConnectionError("flush failed")
        return Broken()

    monkeypatch.setattr(messaging.Producer, "batch", broken_batch)
    d = CeleryDispatcher(app, Keys("coord"))
    d.send([TodoMessage("S", "P", f"TODO-{i}", "api", 0) for i in range(3)])
    ids = [m["id"] for m in sent]
    # the batch "sent" them, then its flush failed: each is sent once more, in order
    assert ids[-3:] == ["S:TODO-0:0", "S:TODO-1:0", "S:TODO-2:0"]
    assert len(ids) == 6
