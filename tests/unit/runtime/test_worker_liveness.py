"""Worker liveness records: who counts as gone (issue #29, item 8), a stopping worker,
and a beat that cannot write a record back after it was removed. On fakeredis and a
real redis-server; the end-to-end test with real workers is
tests/integration/test_liveness_prompt.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from coordination.keys import Keys
from coordination.runtime.workers import WorkerRecord, WorkerRegistry, worker_documents
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(60)

K = Keys("t")


@pytest.fixture
def reg(redis_backend: tuple[str, Any]) -> Iterator[WorkerRegistry]:
    name, make = redis_backend
    client: redis.Redis = make(fakeredis.FakeRedis if name == "fakeredis" else redis.Redis)
    yield WorkerRegistry(client, K)
    client.close()


def test_a_worker_silent_for_two_beats_is_gone_and_a_missing_one_too(
        reg: WorkerRegistry) -> None:
    fast = WorkerRecord(name="w1", host="h", pid=1, repos=["a"], beat=0.4)
    slow = WorkerRecord(name="w2", host="h", pid=2, repos=["a"], beat=30)
    reg.beat(fast)
    reg.beat(slow)
    started = time.monotonic()
    assert reg.gone(["w1", "w2", "", "w9"]) == {"w9"}  # never beat (or expired): gone
    # w1 stops beating: gone once 2 beats (0.8 s) passed by the server's clock, while its
    # record is still there (it expires after 3); w2, with its 30 s beat, is not.
    wait_for(lambda: reg.gone(["w1", "w2"]) == {"w1"}, 5, "w1 to count as gone")
    assert time.monotonic() - started >= 0.7
    assert "w1" in {w.name for w in reg.live()}  # not expired yet: `coord workers` lists it
    reg.beat(fast)  # it beats again: not gone
    assert reg.gone(["w1"]) == set()
    reg.leave("w1")
    assert reg.gone(["w1"]) == {"w1"}


def test_a_stopping_worker_is_listed_held_from_and_serves_no_repo(reg: WorkerRegistry) -> None:
    reg.beat(WorkerRecord(name="w1", host="h", pid=1, repos=["a", "b"], held=["t1"]))
    reg.beat(WorkerRecord(name="w2", host="h", pid=2, repos=["b"], held=["t2"],
                          stopping=True))
    assert reg.per_repo() == {"a": 1, "b": 1}
    assert reg.held() == {"t1", "t2"}  # what it still runs is not a lost message
    docs = {w.name: w.public() for w in reg.live()}
    assert docs["w2"]["stopping"] is True and docs["w1"]["stopping"] is False
    assert reg.gone(["w2"]) == set()


def test_the_processes_of_one_worker_are_listed_as_that_worker(reg: WorkerRegistry) -> None:
    """`coord worker --repo a --repo b --repo c` forks a process per share of its repos
    (#64): each beats its own record (its todos' checkpoints name it, its held messages
    are its own), and `coord workers` lists the worker the person started, once."""
    group = ("a+b+c-100@h", 100)
    reg.beat(WorkerRecord(name="a+c-101@h", host="h", pid=101, repos=["a", "c"],
                          running=["S/T2"], held=["t1", "t2"], started_at=5.0,
                          group=group[0], group_pid=group[1]))
    reg.beat(WorkerRecord(name="b-102@h", host="h", pid=102, repos=["b"], running=["S/T1"],
                          held=["t3"], started_at=4.0, stopping=True, group=group[0],
                          group_pid=group[1]))
    reg.beat(WorkerRecord(name="d-200@h", host="h", pid=200, repos=["d"]))
    records = reg.live()
    assert reg.per_repo() == {"a": 1, "c": 1, "d": 1}  # a stopping process serves no repo
    assert reg.held() == {"t1", "t2", "t3"} and reg.gone(["b-102@h", "a+c-101@h"]) == set()
    docs = worker_documents(records)
    assert [d["name"] for d in docs] == ["a+b+c-100@h", "d-200@h"]
    one, other = docs
    assert (one["pid"], one["processes"], sorted(one["repos"])) == (100, 2, ["a", "b", "c"])
    assert one["running"] == ["S/T1", "S/T2"] and one["held"] == 3 and one["stopping"] is True
    assert one["started_at"] == 4.0
    assert one["last_seen"] == max(r.last_seen for r in records if r.group)
    assert other == records[-1].public() and other["processes"] == 1


def test_a_beat_after_the_worker_left_writes_nothing(reg: WorkerRegistry) -> None:
    from workers.liveness import WorkerBeat

    beat = WorkerBeat(reg, "w1", ["a"], interval=30)
    beat.beat_once()
    assert [w.name for w in reg.live()] == ["w1"]
    beat.stopping()  # from a signal handler: no Redis call of its own
    beat.stop(leave=True)
    assert reg.live() == []
    beat.beat_once()  # a beat that was in flight when it left
    assert reg.live() == [] and reg.gone(["w1"]) == {"w1"}


def test_a_beat_is_two_commands_in_one_round_trip(reg: WorkerRegistry,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A fleet's workers beat every two seconds each: a beat is its record and its
    index entry, no MULTI/EXEC around them (four commands where two do)."""
    sent: list[tuple[bool, list[str]]] = []
    real = reg.r.pipeline

    def pipeline(transaction: bool = True, **kw: Any) -> Any:
        pipe = real(transaction=transaction, **kw)
        inner = pipe.execute

        def execute(*a: Any, **k: Any) -> Any:
            sent.append((transaction, [str(c[0][0]) for c in pipe.command_stack]))
            return inner(*a, **k)

        pipe.execute = execute
        return pipe

    monkeypatch.setattr(reg.r, "pipeline", pipeline)
    reg.beat(WorkerRecord(name="w1", host="h", pid=1, repos=["a"], beat=2))
    assert sent == [(False, ["SET", "ZADD"])]
    assert [w.name for w in reg.live()] == ["w1"]
