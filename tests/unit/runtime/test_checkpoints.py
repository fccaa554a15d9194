"""Checkpoints on the embedded server: claims, fenced writes, CAS, sweep records."""

from __future__ import annotations

import time
from typing import Any

import fakeredis
import pytest
import redis

from coordination.keys import Keys
from coordination.runtime.checkpoints import CheckpointStore
from coordination.runtime.leases import Lease, LeaseManager
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(60)

K = Keys("t")


@pytest.fixture
def r() -> redis.Redis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


@pytest.fixture
def store(r: redis.Redis) -> CheckpointStore:
    s = CheckpointStore(r, K)
    s.create_sweep("S", {"plan": "PLAN-001", "strategy": "levels"})
    return s


@pytest.fixture
def leases(r: redis.Redis) -> LeaseManager:
    return LeaseManager(r, K, ttl=0.25)


def grab(leases: LeaseManager) -> Lease:
    lease = leases.try_acquire("api")
    assert lease is not None
    return lease


def test_create_sweep_writes_the_record_and_its_todos_read_pending(
    r: redis.Redis, store: CheckpointStore
) -> None:
    rec = store.get_sweep("S")
    assert rec is not None
    assert rec["id"] == "S" and rec["status"] == "queued" and rec["plan"] == "PLAN-001"
    assert store.get("S", "T1") == {"status": "pending"}
    assert store.get_sweep("nope") is None and store.get("nope", "T1") is None
    # One key per sweep: a todo costs no write until something happens to it.
    assert r.keys("t:sweep:*") == [K.sweep("S")]
    assert not any(f.startswith("t:") for f in r.hkeys(K.sweep("S")))


def test_values_round_trip_as_json(store: CheckpointStore) -> None:
    store.set_fields("S", "T1", exit_code=0, reason="x", duration=1.5, worker="w")
    store.set_fields("S", "T1", reason=None)  # None removes a field
    cp = store.get("S", "T1")
    assert cp == {"status": "pending", "exit_code": 0, "duration": 1.5, "worker": "w"}
    with pytest.raises(ValueError, match="output tail"):
        store.set_fields("S", "T1", output_tail="a")
    store.update_sweep("S", not_compensable=["T1", "T2"], deadline=123.0)
    rec = store.get_sweep("S")
    assert rec is not None and rec["not_compensable"] == ["T1", "T2"] and rec["deadline"] == 123.0


def test_an_undeclared_record_field_is_refused(store: CheckpointStore) -> None:
    """get_sweep reads the declared fields: an undeclared one would be written and
    never read again."""
    with pytest.raises(ValueError, match="RECORD_FIELDS"):
        store.update_sweep("S", graph={"levels": []})
    with pytest.raises(ValueError, match="RECORD_FIELDS"):
        store.set_sweep_status("S", "running", t_oops=1)
    store.update_sweep("S", **{"level_left:3": 2, "unattended:api": [1.0, False]})
    assert store.get_sweep_fields("S", ("level_left:3",)) == {
        "status": "queued", "level_left:3": 2, "id": "S"}


def test_list_sweeps_newest_first_and_delete(store: CheckpointStore) -> None:
    store.create_sweep("OLD", {"plan": "P", "created_at": 1.0})
    store.create_sweep("NEW", {"plan": "P", "created_at": time.time() + 100})
    assert [s["id"] for s in store.list_sweeps()] == ["NEW", "S", "OLD"]
    assert [s["id"] for s in store.list_sweeps(limit=1)] == ["NEW"]
    store.delete_sweep("S")
    assert store.get_sweep("S") is None and store.get("S", "T1") is None
    assert [s["id"] for s in store.list_sweeps()] == ["NEW", "OLD"]
    assert store.get("OLD", "A") is not None


def test_set_sweep_status_is_compare_and_set(store: CheckpointStore) -> None:
    assert store.set_sweep_status("S", "running", allowed_from={"queued"}, started_at=5.0)
    assert not store.set_sweep_status("S", "running", allowed_from={"queued"})
    assert store.set_sweep_status("S", "failed", allowed_from={"running"}, reason="x")
    rec = store.get_sweep("S")
    assert rec is not None and rec["status"] == "failed" and rec["reason"] == "x"
    assert rec["started_at"] == 5.0
    assert store.set_sweep_status("S", "cancelled")  # None: from any status
    assert not store.set_sweep_status("missing", "cancelled")


def test_set_status_if_checks_status_and_token(store: CheckpointStore) -> None:
    assert store.set_status_if("S", "T1", "queued", {"pending"})
    assert not store.set_status_if("S", "T1", "queued", {"pending"})
    store.set_fields("S", "T1", token="tok")
    assert not store.set_status_if("S", "T1", "failed", {"queued"}, expect_token="other")
    assert store.set_status_if("S", "T1", "failed", {"queued"}, expect_token="tok", exit_code=2)
    cp = store.get("S", "T1")
    assert cp is not None and cp["status"] == "failed" and cp["exit_code"] == 2
    assert not store.set_status_if("NOPE", "T1", "failed", {"pending"})  # no such sweep


def test_claim_pending_then_busy(store: CheckpointStore, leases: LeaseManager) -> None:
    lease = grab(leases)
    assert store.claim("S", "T1", lease=lease, worker="w1", now=10.0) == "claimed"
    cp = store.get("S", "T1")
    assert cp is not None
    assert cp["status"] == "running" and cp["attempts"] == 1 and cp["worker"] == "w1"
    assert cp["token"] == lease.token and cp["fence"] == lease.fence
    assert cp["lease_key"] == lease.key and cp["started_at"] == 10.0
    # A duplicate delivery with another live lease finds it busy.
    other = LeaseManager(store.r, K, ttl=5).try_acquire("api", 2)
    assert other is not None and other.fence > lease.fence
    assert store.claim("S", "T1", lease=other, worker="w2", now=11.0) == "busy"


def test_claim_terminal(store: CheckpointStore, leases: LeaseManager) -> None:
    lease = grab(leases)
    for status in ("succeeded", "failed", "skipped", "cancelled"):
        store.set_fields("S", "T1", status=status)
        assert store.claim("S", "T1", lease=lease, worker="w", now=1.0) == "terminal"
    assert store.claim("NOPE", "T1", lease=lease, worker="w", now=1.0) == "terminal"


def test_claim_takes_over_after_holder_expired(
    store: CheckpointStore, leases: LeaseManager
) -> None:
    old = grab(leases)
    assert store.claim("S", "T1", lease=old, worker="w1", now=1.0) == "claimed"
    assert wait_for(lambda: not leases.is_held(old))
    new = grab(leases)
    assert store.claim("S", "T1", lease=new, worker="w2", now=2.0) == "taken_over"
    cp = store.get("S", "T1")
    assert cp is not None and cp["attempts"] == 2 and cp["token"] == new.token
    assert cp["fence"] == new.fence and cp["worker"] == "w2"


def test_orphaned_lists_running_todos_whose_lease_is_gone(
    store: CheckpointStore, leases: LeaseManager
) -> None:
    short = grab(leases)
    long = LeaseManager(store.r, K, ttl=30).try_acquire("web")
    assert long is not None
    store.claim("S", "T1", lease=short, worker="w1", now=1.0)
    store.claim("S", "T2", lease=long, worker="w2", now=1.0)
    assert store.orphaned(store.get_all("S", ["T1", "T2", "T3"])) == []
    assert wait_for(lambda: not leases.is_held(short))
    assert store.orphaned(store.get_all("S", ["T1", "T2", "T3"])) == ["T1"]


def test_claim_with_older_fence_is_stale(store: CheckpointStore, leases: LeaseManager) -> None:
    many = LeaseManager(store.r, K, ttl=5)
    older = many.try_acquire("api", 2)
    newer = many.try_acquire("api", 2)
    assert older and newer and older.fence < newer.fence
    store.set_fields("S", "T1", status="queued", fence=newer.fence)
    assert store.claim("S", "T1", lease=older, worker="w", now=1.0) == "stale"
    assert store.claim("S", "T1", lease=newer, worker="w", now=1.0) == "claimed"


def test_claim_with_expired_own_lease_is_stale(
    store: CheckpointStore, leases: LeaseManager
) -> None:
    lease = grab(leases)
    assert wait_for(lambda: not leases.is_held(lease))
    assert store.claim("S", "T1", lease=lease, worker="w", now=1.0) == "stale"
    assert store.get("S", "T1") == {"status": "pending"}


def test_fenced_write_accepted_from_holder(store: CheckpointStore, leases: LeaseManager) -> None:
    lease = grab(leases)
    store.claim("S", "T1", lease=lease, worker="w", now=1.0)
    assert store.write("S", "T1", {"status": "succeeded", "exit_code": 0}, lease=lease)
    cp = store.get("S", "T1")
    assert cp is not None and cp["status"] == "succeeded" and cp["exit_code"] == 0


def test_fenced_write_rejected_after_takeover(store: CheckpointStore, leases: LeaseManager) -> None:
    old = grab(leases)
    store.claim("S", "T1", lease=old, worker="w1", now=1.0)
    assert wait_for(lambda: not leases.is_held(old))
    new = grab(leases)
    assert store.claim("S", "T1", lease=new, worker="w2", now=2.0) == "taken_over"
    assert not store.write("S", "T1", {"status": "failed", "exit_code": 9}, lease=old)
    assert store.write("S", "T1", {"status": "succeeded", "exit_code": 0}, lease=new)
    cp = store.get("S", "T1")
    assert cp is not None and cp["status"] == "succeeded" and cp["worker"] == "w2"


def test_fenced_write_rejected_after_lease_expiry(
    store: CheckpointStore, leases: LeaseManager
) -> None:
    lease = grab(leases)
    store.claim("S", "T1", lease=lease, worker="w", now=1.0)
    assert wait_for(lambda: not leases.is_held(lease))
    assert not store.write("S", "T1", {"status": "succeeded"}, lease=lease)
    cp = store.get("S", "T1")
    assert cp is not None and cp["status"] == "running"


def test_get_all_of_ten_thousand_todos(r: redis.Redis) -> None:
    store = CheckpointStore(r, K)
    ids = [f"TODO-{i:05d}" for i in range(10_000)]
    store.create_sweep("BIG", {"plan": "P"})
    store.set_fields("BIG", "TODO-00007", status="failed", exit_code=2)
    sent: list[str] = []
    real = r.execute_command

    def counting(*args: Any, **kw: Any) -> Any:
        sent.append(str(args[0]))
        return real(*args, **kw)

    r.execute_command = counting  # type: ignore[method-assign]
    got = store.get_all("BIG", ids)
    assert sent == ["HMGET"]  # one command for the whole sweep
    assert len(got) == 10_000 and got["TODO-09999"] == {"status": "pending"}
    assert got["TODO-00007"] == {"status": "failed", "exit_code": 2}
    assert store.get_all("NOPE", ids) == {}


def test_a_sweep_of_coord_0_1_is_moved_into_its_record_when_read(r: redis.Redis) -> None:
    """coord 0.1 kept a hash per checkpoint (JSON text per field) and a hash of eager
    counts; the first read of such a sweep moves them into its record's hash."""
    store = CheckpointStore(r, K)
    r.hset(K.sweep("OLD"), mapping={"status": '"failed"', "plan": '"P"', "run": "0"})
    prefix = K.legacy_checkpoint_prefix("OLD")
    r.hset(prefix + "A", mapping={"status": '"succeeded"', "attempts": "1",
                                  "output_tail": '"ok\\n"', "reason": "null"})
    r.hset(prefix + "B", mapping={"status": '"failed"', "exit_code": "3"})
    r.hset(K.legacy_remaining("OLD"), mapping={"C": "1"})
    rec = store.get_sweep("OLD")
    assert rec is not None and rec["status"] == "failed" and "layout" not in rec
    assert store.get("OLD", "A") == {"status": "succeeded", "attempts": 1, "output_tail": "ok\n"}
    assert store.get("OLD", "B") == {"status": "failed", "exit_code": 3}
    assert r.hget(K.sweep("OLD"), "r:C") == "1"
    assert r.keys(prefix + "*") == [] and not r.exists(K.legacy_remaining("OLD"))
    assert r.hget(K.sweep("OLD"), "layout") == "2"
    assert not store.migrate("OLD")  # once only
