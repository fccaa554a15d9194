"""Checkpoints on the embedded server: claims, fenced writes, CAS, sweep records."""

from __future__ import annotations

import time

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
    s.create_sweep("S", {"plan": "PLAN-001", "strategy": "levels"}, ["T1", "T2", "T3"])
    return s


@pytest.fixture
def leases(r: redis.Redis) -> LeaseManager:
    return LeaseManager(r, K, ttl=0.25)


def grab(leases: LeaseManager) -> Lease:
    lease = leases.try_acquire("api")
    assert lease is not None
    return lease


def test_create_sweep_writes_record_and_pending_todos(store: CheckpointStore) -> None:
    rec = store.get_sweep("S")
    assert rec is not None
    assert rec["id"] == "S" and rec["status"] == "queued" and rec["plan"] == "PLAN-001"
    assert store.get("S", "T1") == {"status": "pending", "attempts": 0}
    assert store.get_sweep("nope") is None and store.get("S", "nope") is None


def test_values_round_trip_as_json(store: CheckpointStore) -> None:
    store.set_fields("S", "T1", exit_code=0, output_tail="a\nb", reason=None, duration=1.5)
    cp = store.get("S", "T1")
    assert cp is not None
    assert cp["exit_code"] == 0 and cp["output_tail"] == "a\nb" and cp["reason"] is None
    assert cp["duration"] == 1.5
    store.update_sweep("S", graph={"levels": [["T1"], ["T2"]]}, deadline=123.0)
    rec = store.get_sweep("S")
    assert rec is not None and rec["graph"] == {"levels": [["T1"], ["T2"]]}


def test_list_sweeps_newest_first_and_delete(store: CheckpointStore) -> None:
    store.create_sweep("OLD", {"plan": "P", "created_at": 1.0}, ["A"])
    store.create_sweep("NEW", {"plan": "P", "created_at": time.time() + 100}, ["A"])
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
    assert not store.set_status_if("S", "missing", "failed", {"pending"})


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
    assert store.claim("S", "nope", lease=lease, worker="w", now=1.0) == "terminal"


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
    assert store.get("S", "T1") == {"status": "pending", "attempts": 0}


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
    store.create_sweep("BIG", {"plan": "P"}, ids)
    t0 = time.monotonic()
    got = store.get_all("BIG", ids + ["TODO-missing"])
    elapsed = time.monotonic() - t0
    assert len(got) == 10_000 and "TODO-missing" not in got
    assert got["TODO-09999"] == {"status": "pending", "attempts": 0}
    assert elapsed < 10  # one pipelined round trip; fakeredis itself is the slow part
