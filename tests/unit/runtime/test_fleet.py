"""The fleet's scripts: waiters in rank order, shared resources, repo breakers.

Driven through :class:`coordination.runtime.transitions.Transitions` on the
embedded runtime, with ``now`` given, so cooldowns and stale waiters need no
sleeping. Real workers doing the same: tests/integration/test_fleet.py.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from coordination.runtime.context import Runtime
from coordination.status import TodoStatus
from coordination.sweeps.spec import Mode, SweepSpec
from coordination.sweeps.supervision import note_unattended, release_held
from tests.unit.support.runtime import hold_slot
from tests.unit.support.sweeps import events, status
from tests.unit.support.fleet import ask, finish, fleet_catalog, queued_spec

pytestmark = pytest.mark.timeout(60)


# -- priority and critical path ---------------------------------------------------------
def test_contended_slot_goes_by_priority_then_critical_path_then_age(
        rt: Runtime, tmp_path: Path) -> None:
    cat = fleet_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true", "priority": "low"},
        {"id": "TODO-002", "repo": "api", "run": "true", "priority": "critical"},
        {"id": "TODO-003", "repo": "api", "run": "true", "estimated_hours": 1},
        {"id": "TODO-004", "repo": "api", "run": "true", "estimated_hours": 1},
        {"id": "TODO-005", "repo": "web", "run": "true", "estimated_hours": 8,
         "blocked_by": ["TODO-004"]},
        {"id": "TODO-006", "repo": "api", "run": "true", "estimated_hours": 1},
    ])
    spec = queued_spec(rt, cat)
    holder = hold_slot(rt, "api")  # the repo's one slot is taken
    now = time.time()
    # They arrive in id order (006 after 003: same priority and path, so older first).
    arrival = ["TODO-001", "TODO-002", "TODO-003", "TODO-004", "TODO-006"]
    since = {t: now + i for i, t in enumerate(arrival)}
    for t in arrival:
        assert ask(rt, spec, t, now=now, since=since[t]).verdict == "wait"
    rt.leases.release(holder)
    order = []
    while len(order) < len(arrival):
        # Every waiter asks again, in arrival order: only the first in line starts.
        started = [(t, st) for t in arrival if t not in order
                   for st in [ask(rt, spec, t, now=now, since=since[t])]
                   if st.verdict == "started"]
        assert len(started) == 1, started
        t, st = started[0]
        order.append(t)
        assert st.lease is not None
        finish(rt, spec, t, st.lease, TodoStatus.succeeded, now)
    # critical; then 004 (9 h of plan behind it); then 003 and 006 (1 h, older first); low.
    assert order == ["TODO-002", "TODO-004", "TODO-003", "TODO-006", "TODO-001"]


def test_a_waiter_that_stopped_asking_loses_its_place(rt: Runtime, tmp_path: Path) -> None:
    cat = fleet_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true", "priority": "critical"},
        {"id": "TODO-002", "repo": "api", "run": "true", "priority": "low"},
    ])
    spec = queued_spec(rt, cat)
    holder = hold_slot(rt, "api")
    now = time.time()
    assert ask(rt, spec, "TODO-001", now=now - 10).verdict == "wait"  # its worker then died
    rt.leases.release(holder)
    assert ask(rt, spec, "TODO-002", now=now - 8).verdict == "wait"  # 001 seen 2 s ago
    st = ask(rt, spec, "TODO-002", now=now)  # 001 silent for 10 s (> 5): dropped
    assert st.verdict == "started"
    assert rt.redis.zcard(rt.keys.waiters("repo:api")) == 0  # the line is empty again


def test_dry_run_shows_the_start_order(rt: Runtime, tmp_path: Path) -> None:
    from coordination.catalog.file.store import CatalogStore
    from coordination.planner.documents import dry_run_document

    cat = fleet_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true", "priority": "low"},
        {"id": "TODO-002", "repo": "api", "run": "true", "priority": "high"},
        {"id": "TODO-003", "repo": "api", "run": "true", "estimated_hours": 3},
        {"id": "TODO-004", "repo": "web", "run": "true"},
    ])
    doc = dry_run_document(CatalogStore(cat).load(), "PLAN-001")
    assert doc["start_order"] == {"api": ["TODO-002", "TODO-003", "TODO-001"],
                                  "web": ["TODO-004"]}
    assert doc["priority"]["TODO-002"] == "high" and doc["remaining_hours"]["TODO-003"] == 3


def test_messages_carry_the_priority_and_are_sent_in_start_order(tmp_path: Path) -> None:
    from coordination.dispatch import CeleryDispatcher
    from coordination.messages import BROKER_PRIORITY
    from coordination.sweeps import SweepService
    from tests.unit.support.sweeps import StubApp, fresh_runtime

    rt = fresh_runtime()
    app = StubApp()
    rt.dispatcher = CeleryDispatcher(app, rt.keys)
    cat = fleet_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true", "priority": "low"},
        {"id": "TODO-002", "repo": "api", "run": "true", "priority": "critical"},
        {"id": "TODO-003", "repo": "api", "run": "true"},
    ])
    SweepService(rt, cat).start("PLAN-001", ignore_blockers=True)
    assert app.todos_sent() == ["TODO-002", "TODO-003", "TODO-001"]
    assert [s["options"]["priority"] if "options" in s else s["priority"] for s in app.sent] == [
        BROKER_PRIORITY["critical"], BROKER_PRIORITY["medium"], BROKER_PRIORITY["low"]]


# -- shared resources ---------------------------------------------------------------------
def test_a_capacity_one_resource_keeps_two_repos_apart(rt: Runtime, tmp_path: Path) -> None:
    cat = fleet_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true", "resources": ["staging-db"]},
        {"id": "TODO-002", "repo": "web", "run": "true", "resources": ["staging-db"]},
    ], resources=[{"name": "staging-db", "capacity": 1}])
    spec = queued_spec(rt, cat)
    now = time.time()
    a = ask(rt, spec, "TODO-001", now=now)
    assert a.verdict == "started" and a.lease is not None
    assert a.lease.extra == (rt.keys.resource("staging-db", 0),)
    b = ask(rt, spec, "TODO-002", now=now)
    assert (b.verdict, b.detail) == ("wait", "staging-db")
    assert rt.redis.get(rt.keys.lease("web", 0)) is None  # the refused start holds nothing
    assert rt.leases.extend(a.lease)  # the heartbeat renews the resource slot too
    finish(rt, spec, "TODO-001", a.lease, TodoStatus.succeeded, now)
    assert rt.redis.get(rt.keys.resource("staging-db", 0)) is None
    b = ask(rt, spec, "TODO-002", now=now)
    assert b.verdict == "started" and b.lease is not None
    # Losing the resource slot is losing the lease: no renewal, no outcome written.
    rt.redis.delete(rt.keys.resource("staging-db", 0))
    assert not rt.leases.extend(b.lease)
    fin = rt.transitions.finish(spec.sweep_id, "TODO-002", lease=b.lease,
                                status=TodoStatus.succeeded, fields={}, event={},
                                resources=["staging-db"])
    assert (fin.ok, fin.detail) == (False, "lease")


def test_unknown_resource_is_refused_with_where_and_how(tmp_path: Path) -> None:
    from tests.unit.support.cli import coord

    cat = fleet_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true", "resources": ["staging-bd"]},
    ], resources=[{"name": "staging-db", "capacity": 1}])
    before = cat.read_bytes()
    r = coord(cat, "plan", "validate", "PLAN-001")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "todos[0].resources[0]: unknown resource 'staging-bd' (did you mean 'staging-db'?)" \
        in r.stderr
    assert cat.read_bytes() == before


# -- breakers -------------------------------------------------------------------------------
def behind_a_breaker(rt: Runtime, tmp_path: Path, todos: int, *, failures: int,
                     cooldown: int) -> tuple[SweepSpec, str, float]:
    """A queued sweep of ``todos`` todos of api, whose breaker opens after ``failures``
    failures and cools down ``cooldown`` s: its spec, its id and now."""
    cat = fleet_catalog(tmp_path, [
        {"id": f"TODO-00{i}", "repo": "api", "run": "true"} for i in range(1, todos + 1)
    ], breaker={"failures": failures, "cooldown": cooldown})
    spec = queued_spec(rt, cat)
    return spec, spec.sweep_id, time.time()


def test_breaker_opens_holds_half_opens_and_closes(rt: Runtime, tmp_path: Path) -> None:
    spec, sid, now = behind_a_breaker(rt, tmp_path, 5, failures=2, cooldown=30)
    for t in ("TODO-001", "TODO-002"):
        st = ask(rt, spec, t, now=now)
        assert st.verdict == "started" and st.lease is not None
        finish(rt, spec, t, st.lease, TodoStatus.failed, now)
    [opened] = events(rt, sid, "repo.breaker_open")
    assert (opened.data["repo"], opened.data["failures"]) == ("api", 2)
    # Open: the repo's todos are held, not failed; once each.
    assert ask(rt, spec, "TODO-003", now=now + 1).verdict == "held"
    assert ask(rt, spec, "TODO-003", now=now + 2).verdict == "held"
    assert status(rt, sid, "TODO-003") == "held"
    assert len(events(rt, sid, "todo.held")) == 1
    assert release_held(rt, spec, ["TODO-003"], now + 10) == []  # cooling down
    # Cooldown over: the supervisor lets the first in line through; it is the probe.
    assert release_held(rt, spec, ["TODO-003"], now + 31) == ["TODO-003"]
    probe = ask(rt, spec, "TODO-003", now=now + 31)
    assert probe.verdict == "started" and probe.lease is not None
    assert rt.redis.hget(rt.keys.breaker("api"), "state") == "half_open"
    assert ask(rt, spec, "TODO-004", now=now + 32).verdict == "held"  # one probe at a time
    finish(rt, spec, "TODO-003", probe.lease, TodoStatus.succeeded, now + 33)
    [closed] = events(rt, sid, "repo.breaker_closed")
    assert closed.data["by"] == "probe"
    assert rt.redis.hget(rt.keys.breaker("api"), "state") == "closed"
    # Closed: every held todo is sent again and runs.
    assert release_held(rt, spec, ["TODO-004"], now + 34) == ["TODO-004"]
    assert ask(rt, spec, "TODO-004", now=now + 34).verdict == "started"


def test_a_rollbacks_undos_neither_wait_on_nor_count_against_the_breaker(
        rt: Runtime, tmp_path: Path) -> None:
    """A run's todos wait on their repo's open breaker; a rollback's (the undos the user
    asked for) have none to wait on or report to: what the start, finish and lost-run
    doors hand their scripts (:meth:`SweepSpec.breaker_of_run`)."""
    spec, sid, now = behind_a_breaker(rt, tmp_path, 3, failures=1, cooldown=600)
    st = ask(rt, spec, "TODO-001", now=now)
    assert st.lease is not None
    finish(rt, spec, "TODO-001", st.lease, TodoStatus.failed, now)
    assert rt.redis.hget(rt.keys.breaker("api"), "state") == "open"
    assert spec.breaker_of_run("api") == spec.breaker("api") == (1, 600.0)
    assert ask(rt, spec, "TODO-002", now=now + 1).verdict == "held"
    undo = replace(spec, mode=Mode.rollback)
    assert undo.breaker_of_run("api") is None
    assert undo.breaker("api") == (1, 600.0)  # (the repo's setting is still read as is)


def test_a_failed_probe_reopens_and_lost_runs_count(rt: Runtime, tmp_path: Path) -> None:
    spec, sid, now = behind_a_breaker(rt, tmp_path, 3, failures=1, cooldown=5)
    st = ask(rt, spec, "TODO-001", now=now)
    assert st.lease is not None
    # Its worker dies: the lost run counts as a failure and opens the breaker.
    rt.redis.delete(st.lease.key)
    assert rt.transitions.lost(sid, "TODO-001", repo="api", token=st.lease.token, max_lost=3,
                               now=now, why="test", breaker=spec.breaker("api")) == "requeued"
    assert rt.redis.hget(rt.keys.breaker("api"), "state") == "open"
    probe = ask(rt, spec, "TODO-002", now=now + 6)
    assert probe.verdict == "started" and probe.lease is not None
    finish(rt, spec, "TODO-002", probe.lease, TodoStatus.failed, now + 7)
    assert rt.redis.hget(rt.keys.breaker("api"), "state") == "open"  # re-opened at once
    assert float(rt.redis.hget(rt.keys.breaker("api"), "opened_at") or 0) == pytest.approx(now + 7)
    assert len(events(rt, sid, "repo.breaker_open")) == 2
    assert ask(rt, spec, "TODO-003", now=now + 8).verdict == "held"


def test_reset_closes_the_breaker_and_held_todos_run(rt: Runtime, tmp_path: Path) -> None:
    from coordination.runtime.breakers import breaker_state, reset_breaker

    spec, _, now = behind_a_breaker(rt, tmp_path, 2, failures=1, cooldown=3600)
    st = ask(rt, spec, "TODO-001", now=now)
    assert st.lease is not None
    finish(rt, spec, "TODO-001", st.lease, TodoStatus.failed, now)
    assert ask(rt, spec, "TODO-002", now=now).verdict == "held"
    assert breaker_state(rt.redis, rt.keys, "api")["state"] == "open"
    assert reset_breaker(rt.redis, rt.keys, rt.events, "api")["state"] == "open"
    assert breaker_state(rt.redis, rt.keys, "api") == {
        "state": "closed", "failures": 0, "opened_at": pytest.approx(now), "probe": None}
    assert [e.data["by"] for e in rt.events.read() if e.kind == "repo.breaker_closed"] == ["reset"]
    assert release_held(rt, spec, ["TODO-002"], now + 1) == ["TODO-002"]
    assert ask(rt, spec, "TODO-002", now=now + 1).verdict == "started"


def test_a_reset_says_the_breaker_closed_however_soon_it_dies(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`coord repo reset`'s ``repo.breaker_closed`` is written with the reset: one
    killed where it would write the event alone has said it (written after the reset, it
    was lost), and a second reset of a closed breaker says nothing."""
    from coordination.runtime.breakers import breaker_state, reset_breaker
    from coordination.runtime.events import EventLog

    spec, _, now = behind_a_breaker(rt, tmp_path, 2, failures=1, cooldown=3600)
    st = ask(rt, spec, "TODO-001", now=now)
    assert st.lease is not None
    finish(rt, spec, "TODO-001", st.lease, TodoStatus.failed, now)

    def dies(*_: object, **__: object) -> str:
        raise RuntimeError("the reset died where it would write an event alone")

    monkeypatch.setattr(EventLog, "emit", dies)
    try:
        reset_breaker(rt.redis, rt.keys, rt.events, "api")
    except RuntimeError:
        pass
    monkeypatch.undo()
    assert breaker_state(rt.redis, rt.keys, "api")["state"] == "closed"
    assert reset_breaker(rt.redis, rt.keys, rt.events, "api")["state"] == "closed"
    said = [e.data for e in rt.events.read() if e.kind == "repo.breaker_closed"]
    assert said == [{"repo": "api", "by": "reset", "was": "open", "failures": 1}]


def test_a_repo_without_breaker_never_holds(rt: Runtime, tmp_path: Path) -> None:
    cat = fleet_catalog(tmp_path, [
        {"id": f"TODO-00{i}", "repo": "api", "run": "true"} for i in range(1, 5)])
    spec = queued_spec(rt, cat)
    now = time.time()
    for t in ("TODO-001", "TODO-002", "TODO-003"):
        st = ask(rt, spec, t, now=now)
        assert st.verdict == "started" and st.lease is not None
        finish(rt, spec, t, st.lease, TodoStatus.failed, now)
    assert ask(rt, spec, "TODO-004", now=now).verdict == "started"
    assert not rt.redis.exists(rt.keys.breaker("api"))


# -- unattended repos -----------------------------------------------------------------------
def test_queued_todos_of_a_repo_nobody_serves_are_said_once(rt: Runtime, tmp_path: Path) -> None:
    from coordination.runtime.workers import WorkerRecord, WorkerRegistry

    cat = fleet_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "true"},
    ])
    spec = queued_spec(rt, cat)
    WorkerRegistry(rt.redis, rt.keys).beat(
        WorkerRecord(name="w", host="h", pid=1, repos=["web"], beat=30))
    st = {t: TodoStatus.queued for t in spec.todos}
    now = time.time()
    after = rt.settings.unattended_after
    assert note_unattended(rt, spec, st, now) == []  # the clock starts
    assert note_unattended(rt, spec, st, now + after - 1) == []
    assert note_unattended(rt, spec, st, now + after) == ["api"]
    assert note_unattended(rt, spec, st, now + after + 5) == []  # said once
    [ev] = events(rt, spec.sweep_id, "repo.unattended")
    assert ev.data["repo"] == "api" and ev.data["todos"] == ["TODO-001"]
    assert "coord worker --repo api" in ev.data["hint"]


def test_an_unattended_repo_is_said_with_its_mark_however_its_pass_dies(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``repo.unattended`` (a default webhook event) and the mark that says it was said
    are one write: a pass that dies where it writes the marks has said nothing, and the
    next pass says it once (said first, it was said again by every pass after a death
    there, each a webhook)."""
    from coordination.runtime.checkpoints import CheckpointStore

    spec = queued_spec(rt, fleet_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true"}]))
    st = {t: TodoStatus.queued for t in spec.todos}
    now, after = time.time(), rt.settings.unattended_after
    assert note_unattended(rt, spec, st, now) == []  # the clock starts
    marked = CheckpointStore.set_unattended_marks

    def dies(*_: object, **__: object) -> None:
        raise RuntimeError("the pass died where it writes the marks")

    monkeypatch.setattr(CheckpointStore, "set_unattended_marks", dies)
    with pytest.raises(RuntimeError, match="died"):
        note_unattended(rt, spec, st, now + after)
    monkeypatch.setattr(CheckpointStore, "set_unattended_marks", marked)
    assert events(rt, spec.sweep_id, "repo.unattended") == []
    assert note_unattended(rt, spec, st, now + after + 1) == ["api"]
    assert note_unattended(rt, spec, st, now + after + 2) == []
    [ev] = events(rt, spec.sweep_id, "repo.unattended")
    assert ev.data["repo"] == "api" and ev.data["queued"] == 1
