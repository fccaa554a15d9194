"""Checkpoints on the embedded server: sweep records, CAS, and the claims and fenced
writes of the scripts workers run (``Transitions.start`` / ``finish``, ``write``)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from coordination.keys import Keys
from coordination.runtime.checkpoints import CheckpointStore
from coordination.runtime.leases import Lease
from coordination.runtime.transitions import Transitions
from coordination.status import TodoStatus
from tests.unit.support.runtime import start, started
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(60)

K = Keys("t")


@pytest.fixture
def checkpoints(fake_r: redis.Redis) -> CheckpointStore:
    s = CheckpointStore(fake_r, K)
    s.create_sweep("S", {"plan": "PLAN-001", "strategy": "levels"})
    return s


def expired(fake_r: redis.Redis, lease: Lease) -> bool:
    return wait_for(lambda: not fake_r.exists(lease.key), what=f"{lease.key} to expire")


def finish(tr: Transitions, todo: str, lease: Lease, status: TodoStatus = TodoStatus.succeeded,
           **fields: Any) -> str:
    """The holder records its outcome: 'ok', or why the script refused it."""
    fin = tr.finish("S", todo, lease=lease, status=status, fields=fields, event={})
    return "ok" if fin.ok else fin.detail


def test_create_sweep_writes_the_record_and_its_todos_read_pending(
    fake_r: redis.Redis, checkpoints: CheckpointStore
) -> None:
    rec = checkpoints.get_sweep("S")
    assert rec is not None
    assert rec["id"] == "S" and rec["status"] == "queued" and rec["plan"] == "PLAN-001"
    assert checkpoints.get("S", "T1") == {"status": "pending"}
    assert checkpoints.get_sweep("nope") is None and checkpoints.get("nope", "T1") is None
    # One key per sweep: a todo costs no write until something happens to it.
    assert fake_r.keys("t:sweep:*") == [K.sweep("S")]
    assert not any(f.startswith("t:") for f in fake_r.hkeys(K.sweep("S")))


def test_values_round_trip_as_json(checkpoints: CheckpointStore) -> None:
    checkpoints.set_fields("S", "T1", exit_code=0, reason="x", duration=1.5, worker="w")
    checkpoints.set_fields("S", "T1", reason=None)  # None removes a field
    cp = checkpoints.get("S", "T1")
    assert cp == {"status": "pending", "exit_code": 0, "duration": 1.5, "worker": "w"}
    with pytest.raises(ValueError, match="output tail"):
        checkpoints.set_fields("S", "T1", output_tail="a")
    checkpoints.update_sweep("S", not_compensable=["T1", "T2"], deadline=123.0)
    rec = checkpoints.get_sweep("S")
    assert rec is not None and rec["not_compensable"] == ["T1", "T2"] and rec["deadline"] == 123.0


def test_an_undeclared_record_field_is_refused(checkpoints: CheckpointStore) -> None:
    """get_sweep reads the declared fields: an undeclared one would be written and
    never read again."""
    with pytest.raises(ValueError, match="RECORD_FIELDS"):
        checkpoints.update_sweep("S", graph={"levels": []})
    with pytest.raises(ValueError, match="RECORD_FIELDS"):
        checkpoints.set_sweep_status("S", "running", t_oops=1)
    checkpoints.update_sweep("S", **{"level_left:3": 2, "unattended:api": [1.0, False]})
    assert checkpoints.get_sweep_fields("S", ("level_left:3",)) == {
        "status": "queued", "level_left:3": 2, "id": "S"}


def test_list_sweeps_newest_first_and_drops_what_expired(
    fake_r: redis.Redis, checkpoints: CheckpointStore
) -> None:
    checkpoints.create_sweep("OLD", {"plan": "P", "created_at": 1.0})
    checkpoints.create_sweep("NEW", {"plan": "P", "created_at": time.time() + 100})
    assert [s["id"] for s in checkpoints.list_sweeps()] == ["NEW", "S", "OLD"]
    assert [s["id"] for s in checkpoints.list_sweeps(limit=1)] == ["NEW"]
    fake_r.delete(K.sweep("S"), K.sweep_events("S"))  # as the end of its retention does
    assert checkpoints.get_sweep("S") is None and checkpoints.get("S", "T1") is None
    assert [s["id"] for s in checkpoints.list_sweeps()] == ["NEW", "OLD"]
    assert fake_r.zscore(K.sweeps, "S") is None  # its index entry went with it
    assert checkpoints.get("OLD", "A") is not None


def test_set_sweep_status_is_compare_and_set(checkpoints: CheckpointStore) -> None:
    assert checkpoints.set_sweep_status("S", "running", allowed_from={"queued"}, started_at=5.0)
    assert not checkpoints.set_sweep_status("S", "running", allowed_from={"queued"})
    assert checkpoints.set_sweep_status("S", "failed", allowed_from={"running"}, reason="x")
    rec = checkpoints.get_sweep("S")
    assert rec is not None and rec["status"] == "failed" and rec["reason"] == "x"
    assert rec["started_at"] == 5.0
    assert checkpoints.set_sweep_status("S", "queued")  # None: from the status it is in (a resume)
    assert not checkpoints.set_sweep_status("missing", "cancelled")


def test_a_sweep_is_listed_active_by_the_write_that_makes_it_live_and_stays_listed(
        checkpoints: CheckpointStore) -> None:
    """A live record is listed among the active sweeps with its write (a start's create,
    a status move to a live status), so a writer that dies after it leaves it where the
    passes look; an ender's delisting that lands after a resume listed it live again
    (the ender slow, a pass that read it ended) leaves it listed."""
    from coordination.status import SweepStatus

    checkpoints.deactivate("S")  # (the fixture's, queued: live, stays listed)
    assert checkpoints.active_sweeps() == ["S"]
    checkpoints.create_sweep("A", {"plan": "P"})  # queued: listed with its record
    checkpoints.create_sweep("R", {"plan": "P", "status": "failed"})  # ended: not
    assert checkpoints.active_sweeps() == ["A", "S"]
    assert checkpoints.set_sweep_status("R", SweepStatus.queued,
                                        allowed_from={SweepStatus.failed})  # a resume
    assert checkpoints.active_sweeps() == ["A", "R", "S"]
    checkpoints.deactivate("R")  # the last run's ender, late
    assert checkpoints.active_sweeps() == ["A", "R", "S"]
    assert checkpoints.set_sweep_status("R", SweepStatus.cancelled,
                                        allowed_from={SweepStatus.queued})
    checkpoints.deactivate("R")
    assert checkpoints.active_sweeps() == ["A", "S"]


def test_a_sweep_taken_off_the_active_ones_says_the_end_its_record_holds_once(
        checkpoints: CheckpointStore, fake_r: redis.Redis) -> None:
    """The end event a move stored in the record (``ending``) is written, and dropped
    from the record, by the one call that takes the sweep off: a second call (an ender
    and a pass racing) says nothing; a live sweep stays listed and says nothing; no
    streams given, nothing is said."""
    from coordination.runtime.events import EventLog
    from coordination.status import SweepStatus

    events = EventLog(fake_r, K)
    end = events.prepare("sweep.cancelled", sweep_id="S", status="cancelled", run=0)
    assert not checkpoints.deactivate("S", events.sweep_streams("S"))  # live: stays
    assert checkpoints.set_sweep_status("S", SweepStatus.cancelled, ending=end.text)
    assert checkpoints.get_sweep_fields("S", ("ending",)) == {
        "id": "S", "status": "cancelled", "ending": end.text}
    with fake_r.pubsub() as sub:
        sub.subscribe(K.events_channel)
        wait_for(lambda: sub.get_message(timeout=0.1) is not None, 5, "the subscription")
        assert checkpoints.deactivate("S", events.sweep_streams("S"))
        told = wait_for(lambda: sub.get_message(timeout=0.1), 5, "the live message")
    assert [(e.kind, e.data) for e in events.read(sweep_id="S")] == [
        ("sweep.cancelled", {"status": "cancelled", "run": 0})]
    assert [(e.kind, e.sweep_id) for e in events.read()] == [("sweep.cancelled", "S")]
    assert '"kind":"sweep.cancelled"' in str(told["data"])
    assert checkpoints.get_sweep_fields("S", ("ending",)) == {"id": "S", "status": "cancelled"}
    assert checkpoints.active_sweeps() == []
    assert not checkpoints.deactivate("S", events.sweep_streams("S"))  # (a second call)
    assert len(events.read(sweep_id="S")) == 1
    checkpoints.create_sweep("T", {"plan": "P", "status": "failed", "ending": end.text})
    fake_r.sadd(K.active_sweeps, "T")
    assert checkpoints.deactivate("T")  # no streams: taken off, nothing said
    assert len(events.read()) == 1


def test_a_move_the_transition_table_forbids_is_refused_before_redis(
        checkpoints: CheckpointStore) -> None:
    """Every sweep status change is checked against status.SWEEP_TRANSITIONS: a caller
    asking for a move that can never be made is a bug, refused with nothing written."""
    from coordination.runtime.checkpoints import TransitionRefused

    assert checkpoints.set_sweep_status("S", "running", allowed_from={"queued"})
    assert checkpoints.set_sweep_status("S", "rolled_back", allowed_from={"rolling_back"}) is False
    with pytest.raises(TransitionRefused, match="running to rolled_back"):
        checkpoints.set_sweep_status("S", "rolled_back", allowed_from={"running"})
    # of several sources, only the legal ones are compare-and-set: running -> queued is not
    with pytest.raises(TransitionRefused):
        checkpoints.set_sweep_status("S", "queued", allowed_from={"running", "queued"})
    assert checkpoints.set_sweep_status("S", "rolling_back", allowed_from={"running", "paused"})
    with pytest.raises(TransitionRefused, match="set_sweep_status"):
        checkpoints.update_sweep("S", status="succeeded")  # only a compare-and-set moves it
    assert checkpoints.sweep_status("S") == "rolling_back"


def test_set_status_if_checks_status_and_token(checkpoints: CheckpointStore) -> None:
    assert checkpoints.set_status_if("S", "T1", "queued", {"pending"})
    assert not checkpoints.set_status_if("S", "T1", "queued", {"pending"})
    checkpoints.set_fields("S", "T1", token="tok")
    assert not checkpoints.set_status_if("S", "T1", "failed", {"queued"}, expect_token="other")
    assert checkpoints.set_status_if("S", "T1", "failed", {"queued"}, expect_token="tok", exit_code=2)
    cp = checkpoints.get("S", "T1")
    assert cp is not None and cp["status"] == "failed" and cp["exit_code"] == 2
    assert not checkpoints.set_status_if("NOPE", "T1", "failed", {"pending"})  # no such sweep


# -- claims: what a worker's start does to the checkpoint (lua/todo_start.lua) ----------
def test_start_claims_a_pending_todo_and_a_second_delivery_finds_it_busy(
    fake_r: redis.Redis, checkpoints: CheckpointStore, tr: Transitions
) -> None:
    lease = started(tr, "T1", worker="w1", now=10.0)
    cp = checkpoints.get("S", "T1")
    assert cp is not None
    assert cp["status"] == "running" and cp["attempts"] == 1 and cp["worker"] == "w1"
    assert cp["token"] == lease.token and cp["fence"] == lease.fence
    assert cp["lease_key"] == lease.key and cp["started_at"] == 10.0
    # A duplicate delivery finds it busy while its holder lives, even with a slot free,
    # and holds nothing for it.
    other = start(Transitions(fake_r, K, lease_ttl=5), "T1", concurrency=2, worker="w2", now=11.0)
    assert other.verdict == "busy" and other.lease is None
    assert fake_r.get(K.lease("api", 1)) is None
    cp = checkpoints.get("S", "T1")
    assert cp is not None and cp["token"] == lease.token and cp["attempts"] == 1


def test_start_of_an_ended_todo_is_terminal_and_of_no_sweep_gone(
    fake_r: redis.Redis, checkpoints: CheckpointStore, tr: Transitions
) -> None:
    for status in ("succeeded", "failed", "skipped", "cancelled"):
        checkpoints.set_fields("S", "T1", status=status)
        st = start(tr, "T1", now=1.0)
        assert (st.verdict, st.detail) == ("terminal", status)
    st = start(tr, "T1", sweep_id="NOPE", now=1.0)
    assert (st.verdict, st.detail) == ("gone", "missing")
    assert fake_r.keys(K.lease("api", "*")) == []  # no lease was taken for any of them


def taken_over(fake_r: redis.Redis, tr: Transitions) -> tuple[Lease, Lease]:
    """T1 started by w1, whose lease expired, then taken over by w2: both leases."""
    old = started(tr, "T1", worker="w1", now=1.0)
    assert expired(fake_r, old)
    st = start(tr, "T1", worker="w2", now=2.0)
    assert st.verdict == "started" and st.taken_over and st.lease is not None
    return old, st.lease


def test_start_takes_over_after_the_holder_expired(
    fake_r: redis.Redis, checkpoints: CheckpointStore, tr: Transitions
) -> None:
    old, new = taken_over(fake_r, tr)
    assert new.fence > old.fence
    cp = checkpoints.get("S", "T1")
    assert cp is not None and cp["attempts"] == 2 and cp["token"] == new.token
    assert cp["fence"] == new.fence and cp["worker"] == "w2" and cp["lost_runs"] == 1


def test_the_max_lost_th_takeover_poisons_the_todo(
    fake_r: redis.Redis, checkpoints: CheckpointStore, tr: Transitions
) -> None:
    """A todo whose command kills its worker is not taken over forever: the takeover
    that makes its max_lost-th lost run ends it failed instead of running it again."""
    lease = started(tr, "T1", worker="w1", now=1.0)
    fake_r.delete(lease.key)  # w1 dies
    st = start(tr, "T1", worker="w2", now=2.0, max_lost=2)
    assert st.verdict == "started" and st.taken_over and st.lease is not None
    fake_r.delete(st.lease.key)  # w2 dies too
    st = start(tr, "T1", worker="w3", now=3.0, max_lost=2)
    assert (st.verdict, st.terminal, st.lease) == ("poisoned", 1, None)
    cp = checkpoints.get("S", "T1")
    assert cp is not None and cp["status"] == "failed" and cp["lost_runs"] == 2
    assert "died 2 times" in cp["reason"] and "(last: w2)" in cp["reason"]
    assert fake_r.keys(K.lease("api", "*")) == []  # nothing runs it
    assert start(tr, "T1", worker="w4", now=4.0).verdict == "terminal"


def test_orphaned_lists_running_todos_whose_lease_is_gone(
    fake_r: redis.Redis, checkpoints: CheckpointStore, tr: Transitions
) -> None:
    short = started(tr, "T1", worker="w1", now=1.0)
    started(Transitions(fake_r, K, lease_ttl=30), "T2", repo="web", worker="w2", now=1.0)
    assert checkpoints.orphaned(checkpoints.get_all("S", ["T1", "T2", "T3"])) == []
    assert expired(fake_r, short)
    assert checkpoints.orphaned(checkpoints.get_all("S", ["T1", "T2", "T3"])) == ["T1"]


def test_start_under_a_fence_older_than_the_stored_one_is_stale(
    fake_r: redis.Redis, checkpoints: CheckpointStore, tr: Transitions
) -> None:
    """The repo's fence counter behind a fence already stored (Redis lost data): the
    start is refused and gives its slot back; never a run under a lower fence."""
    checkpoints.set_fields("S", "T1", status="queued", fence=100)
    assert start(tr, "T1", now=1.0).verdict == "stale"
    assert fake_r.get(K.lease("api", 0)) is None
    cp = checkpoints.get("S", "T1")
    assert cp == {"status": "queued", "fence": 100}
    fake_r.set(K.fence("api"), 100)  # grants are numbered past the stored fence again
    lease = started(tr, "T1", now=1.0)
    assert lease.fence == 101


# -- fenced writes: checkpoint_write (a holder's progress) and todo_finish --------------
def test_fenced_writes_accepted_from_the_holder(
    checkpoints: CheckpointStore, tr: Transitions
) -> None:
    lease = started(tr, "T1", worker="w")
    assert checkpoints.write("S", "T1", {"attempts": 1, "exit_code": 0}, lease=lease)
    assert finish(tr, "T1", lease, exit_code=0) == "ok"
    cp = checkpoints.get("S", "T1")
    assert cp is not None and cp["status"] == "succeeded" and cp["exit_code"] == 0


def test_fenced_writes_rejected_after_a_takeover(
    fake_r: redis.Redis, checkpoints: CheckpointStore, tr: Transitions
) -> None:
    old, new = taken_over(fake_r, tr)
    assert not checkpoints.write("S", "T1", {"exit_code": 9}, lease=old)
    assert finish(tr, "T1", old, TodoStatus.failed, exit_code=9) == "fence"
    assert checkpoints.write("S", "T1", {"attempts": 2}, lease=new)
    assert finish(tr, "T1", new, exit_code=0) == "ok"
    cp = checkpoints.get("S", "T1")
    assert cp is not None and cp["status"] == "succeeded" and cp["worker"] == "w2"
    assert cp["exit_code"] == 0


def test_fenced_writes_rejected_after_lease_expiry(
    fake_r: redis.Redis, checkpoints: CheckpointStore, tr: Transitions
) -> None:
    """A holder whose own lease ran out writes nothing, even with nobody else holding
    the todo yet: it must not go on as if it still ran it."""
    lease = started(tr, "T1", worker="w")
    assert expired(fake_r, lease)
    assert not checkpoints.write("S", "T1", {"exit_code": 0}, lease=lease)
    assert finish(tr, "T1", lease, exit_code=0) == "lease"
    cp = checkpoints.get("S", "T1")
    assert cp is not None and cp["status"] == "running" and "exit_code" not in cp


def test_get_all_of_ten_thousand_todos(fake_r: redis.Redis) -> None:
    checkpoints = CheckpointStore(fake_r, K)
    ids = [f"TODO-{i:05d}" for i in range(10_000)]
    checkpoints.create_sweep("BIG", {"plan": "P"})
    checkpoints.set_fields("BIG", "TODO-00007", status="failed", exit_code=2)
    sent: list[str] = []
    real = fake_r.execute_command

    def counting(*args: Any, **kw: Any) -> Any:
        sent.append(str(args[0]))
        return real(*args, **kw)

    fake_r.execute_command = counting  # type: ignore[method-assign]
    got = checkpoints.get_all("BIG", ids)
    assert sent == ["HMGET"]  # one command for the whole sweep
    assert len(got) == 10_000 and got["TODO-09999"] == {"status": "pending"}
    assert got["TODO-00007"] == {"status": "failed", "exit_code": 2}
    assert checkpoints.get_all("NOPE", ids) == {}
