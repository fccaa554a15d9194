"""Who gives a runtime its dispatcher: whoever makes a runtime that sends (a worker, a
launch, :class:`SweepService` through :func:`coordination.dispatch.sender`), when it is
made. Sending itself builds nothing: a runtime that reaches a send unwired is refused,
saying how to wire it, and nothing is sent or queued."""

from __future__ import annotations

import pytest

from coordination.dispatch import BrokerDispatcher, CeleryDispatcher, sender
from coordination.sweeps import SweepService
from coordination.sweeps.sending import send_paced
from coordination.sweeps.spec import Strategy, SweepSpec, TodoSpec
from tests.unit.support.sweeps import fresh_runtime

pytestmark = pytest.mark.timeout(60)


def one_todo_spec() -> SweepSpec:
    todo = TodoSpec(id="TODO-1", repo="api", queue="coord.repo.api", run="true",
                    timeout=60, retries=0)
    return SweepSpec(sweep_id="S-1", plan="PLAN-1", strategy=Strategy.levels, run=0,
                     todos={"TODO-1": todo}, levels=[["TODO-1"]], concurrency={"api": 1})


def test_an_unwired_runtime_is_refused_at_its_send() -> None:
    rt = fresh_runtime()
    assert rt.dispatcher is None
    with pytest.raises(RuntimeError, match="given no dispatcher.*coordination.dispatch.sender"):
        send_paced(rt, one_todo_spec(), "TODO-1", due=0.0)
    assert rt.dispatcher is None  # nothing made on the way


def test_the_sweep_service_wires_its_runtime_without_building_an_app() -> None:
    rt = fresh_runtime()
    SweepService(rt)
    d = rt.dispatcher
    assert isinstance(d, CeleryDispatcher)  # fakeredis: Celery's in-memory transport
    assert d.source.app is None  # made on first need (a send, a revoke), not to read a sweep
    assert sender(rt) is d  # once: a second service keeps it
    SweepService(rt)
    assert rt.dispatcher is d


def test_a_wired_dispatcher_is_kept() -> None:
    rt = fresh_runtime()
    mine = CeleryDispatcher(object(), rt.keys)  # type: ignore[arg-type]
    rt.dispatcher = mine
    SweepService(rt)
    assert rt.dispatcher is mine


def test_a_sent_message_goes_through_the_service_dispatcher() -> None:
    from tests.unit.support.sweeps import StubApp

    rt = fresh_runtime()
    app = StubApp()
    rt.dispatcher = CeleryDispatcher(None, rt.keys, app_factory=lambda: app)  # type: ignore[arg-type,return-value]
    send_paced(rt, one_todo_spec(), "TODO-1", due=0.0)
    (msg,) = app.sent
    assert msg["kwargs"]["todo_id"] == "TODO-1"


def test_a_dispatcher_needs_an_app_or_a_factory() -> None:
    rt = fresh_runtime()
    with pytest.raises(ValueError, match="an app or an app_factory"):
        CeleryDispatcher(None, rt.keys)
    with pytest.raises(ValueError, match="an app or an app_factory"):
        BrokerDispatcher(rt.push_messages, rt.keys)
