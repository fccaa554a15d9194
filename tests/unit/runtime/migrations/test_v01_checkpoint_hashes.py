"""coord 0.1 kept a hash per checkpoint (JSON text per field) and a hash of eager counts
beside each sweep's record. Opening a runtime moves them into the record, once per
namespace; no read of a sweep moves anything."""

from __future__ import annotations

import pytest
import redis

from coordination.keys import Keys
from coordination.runtime.checkpoints import CheckpointStore
from coordination.runtime.context import Runtime
from coordination.runtime.migrations import upgrade
from coordination.runtime.migrations.v01_checkpoint_hashes import move_sweep
from coordination.settings import Settings

pytestmark = pytest.mark.timeout(60)

K = Keys("t")


def record_as_0_1(r: redis.Redis, sweep_id: str) -> str:
    """A failed sweep as coord 0.1 recorded it (record, index entry, a checkpoint hash
    per todo, the eager counts); the prefix of its checkpoint hashes."""
    r.hset(K.sweep(sweep_id), mapping={"status": '"failed"', "plan": '"P"', "run": "0"})
    r.zadd(K.sweeps, {sweep_id: 1.0})
    prefix = K.legacy_checkpoint_prefix(sweep_id)
    r.hset(prefix + "A", mapping={"status": '"succeeded"', "attempts": "1",
                                  "output_tail": '"ok\\n"', "reason": "null"})
    r.hset(prefix + "B", mapping={"status": '"failed"', "exit_code": "3"})
    r.hset(K.legacy_remaining(sweep_id), mapping={"C": "1"})
    return prefix


def open_runtime(r: redis.Redis) -> Runtime:
    return Runtime.create(Settings(redis_url=None, namespace=K.namespace), client=r)


def test_a_sweep_of_coord_0_1_is_moved_into_its_record_on_upgrade(fake_r: redis.Redis) -> None:
    r = fake_r
    store = CheckpointStore(r, K)
    prefix = record_as_0_1(r, "OLD")
    upgrade(r, K)
    rec = store.get_sweep("OLD")
    assert rec is not None and rec["status"] == "failed" and "layout" not in rec
    assert store.get("OLD", "A") == {"status": "succeeded", "attempts": 1, "output_tail": "ok\n"}
    assert store.get("OLD", "B") == {"status": "failed", "exit_code": 3}
    assert r.hget(K.sweep("OLD"), "r:C") == "1"
    assert r.keys(prefix + "*") == [] and not r.exists(K.legacy_remaining("OLD"))
    assert r.hget(K.sweep("OLD"), "layout") == "2"
    assert not move_sweep(r, K, "OLD")  # once only


def test_a_read_of_a_sweep_moves_nothing(fake_r: redis.Redis) -> None:
    r = fake_r
    store = CheckpointStore(r, K)
    prefix = record_as_0_1(r, "OLD")
    assert store.get_sweep("OLD") is not None
    assert store.get_sweep_fields("OLD", ("plan",)) is not None
    assert store.get_tally("OLD", ("plan",))[0] is not None
    assert [s["id"] for s in store.list_sweeps()] == ["OLD"]
    assert sorted(r.keys(prefix + "*")) == [prefix + "A", prefix + "B"]
    assert r.exists(K.legacy_remaining("OLD"))
    assert r.hget(K.sweep("OLD"), "layout") is None


def test_opening_a_runtime_moves_them_once(fake_r: redis.Redis) -> None:
    r = fake_r
    record_as_0_1(r, "OLD")
    rt = open_runtime(r)
    assert rt.checkpoints.get("OLD", "B") == {"status": "failed", "exit_code": 3}
    # A namespace brought up to date is not looked over again (what coord 0.1 could
    # still write now stays where it is).
    late = record_as_0_1(r, "LATE")
    open_runtime(r)
    assert len(r.keys(late + "*")) == 2 and r.exists(K.legacy_remaining("LATE"))


def test_an_index_entry_without_a_record_is_left_alone(fake_r: redis.Redis) -> None:
    r = fake_r
    r.zadd(K.sweeps, {"GONE": 1.0})
    open_runtime(r)
    assert not r.exists(K.sweep("GONE"))
