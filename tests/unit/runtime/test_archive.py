"""Embedded sweeps kept beside the catalog: a sweep's keys out and back in, and rows
kept by coord 0.1 (a hash per checkpoint) read into today's one hash per sweep."""

from __future__ import annotations

import json
from pathlib import Path

import fakeredis
import pytest
import redis

from coordination.keys import Keys
from coordination.runtime.archive import restore, save
from coordination.runtime.checkpoints import CheckpointStore
from coordination.runtime.events import EventLog
from coordination.runtime.history import connect

pytestmark = pytest.mark.timeout(30)
K = Keys("a")


def client() -> redis.Redis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


def test_a_kept_sweep_comes_back_whole_into_another_server(tmp_path: Path) -> None:
    r = client()
    store, events = CheckpointStore(r, K), EventLog(r, K)
    store.create_sweep("S", {"plan": "PLAN-001", "status": "succeeded"})
    store.set_fields("S", "T1", status="succeeded", exit_code=0, has_tail=True)
    r.hset(K.sweep("S"), "o:T1", "hello\n")
    events.emit("sweep.queued", sweep_id="S")
    events.emit("todo.succeeded", sweep_id="S", todo_id="T1")
    path = tmp_path / "h.sqlite"
    assert save(r, K, path, "S", keep_days=1)

    other = client()
    assert restore(other, K, path, sweep_ids=["S"]) == ["S"]
    back = CheckpointStore(other, K)
    assert (back.get_sweep("S") or {})["plan"] == "PLAN-001"
    assert back.get("S", "T1") == {"status": "succeeded", "exit_code": 0, "output_tail": "hello\n"}
    assert [e.kind for e in EventLog(other, K).read("S")] == ["sweep.queued", "todo.succeeded"]
    # Todo events stay in the sweep's stream only, as EventLog.emit stores them.
    assert [e.kind for e in EventLog(other, K)._replay(K.events, "0-0")] == ["sweep.queued"]
    assert [e.kind for e in EventLog(other, K).read()] == ["sweep.queued", "todo.succeeded"]


def test_a_row_kept_by_coord_0_1_is_read_into_one_hash(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    row = {
        "record": {"status": '"failed"', "plan": '"PLAN-001"', "run": "0", "spec": '{"x": 1}'},
        "score": 5.0,
        "checkpoints": {
            "T1": {"status": '"succeeded"', "attempts": "1", "output_tail": '"ok"', "reason": "null"},
            "T2": {"status": '"failed"', "exit_code": "2", "worker": "plain text"},
        },
        "remaining": {"T3": "1"},
        "events": [],
    }
    db = connect(path)
    assert db is not None
    db.execute("CREATE TABLE archive (sweep_id TEXT PRIMARY KEY, created_at REAL, "
               "saved_at REAL, data TEXT NOT NULL)")
    db.execute("INSERT INTO archive VALUES (?, ?, ?, ?)", ["OLD", 5.0, 5.0, json.dumps(row)])
    db.commit()
    db.close()
    r = client()
    assert restore(r, K, path, sweep_ids=["OLD"]) == ["OLD"]
    store = CheckpointStore(r, K)
    assert (store.get_sweep("OLD") or {})["status"] == "failed"
    assert store.get("OLD", "T1") == {"status": "succeeded", "attempts": 1, "output_tail": "ok"}
    assert store.get("OLD", "T2") == {"status": "failed", "exit_code": 2, "worker": "plain text"}
    assert r.hget(K.sweep("OLD"), "r:T3") == "1"
    assert r.keys(K.legacy_checkpoint_prefix("OLD") + "*") == []
