"""Each todo transition is one script call: one round trip, all or nothing.

Round trips are counted on the client (every command redis-py sends), not timed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from coordination.connection.client import own_client
from coordination.keys import Keys
from coordination.planner.ranking import DEFAULT_RANK
from coordination.runtime.checkpoints import CheckpointStore
from coordination.runtime.events import EventLog, live_events
from coordination.runtime.scripts import LUA_DIR, script_text
from coordination.runtime.transitions import Transitions, waiter_rank
from coordination.status import NOT_STARTED, TodoStatus
from coordination.trust.evidence import outcome_stamp

pytestmark = pytest.mark.timeout(30)
KEYS = Keys("tr")


class Counting(redis.Redis):
    """A client that counts the commands it sends."""

    sent: list[str]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(str(args[0]).upper())
        return super().execute_command(*args, **options)


class FakeCounting(fakeredis.FakeRedis, Counting):
    pass


@pytest.fixture
def counting_r(redis_backend: tuple[str, Any]) -> Iterator[Counting]:
    """A counting client on fakeredis and on a real redis-server (both must agree)."""
    name, make = redis_backend
    client: Counting = make(FakeCounting if name == "fakeredis" else Counting)
    client.sent = []
    for path in LUA_DIR.glob("todo_*.lua"):  # as a long-lived server has them cached
        client.script_load(script_text(path.stem))
    yield client


def sweep(counting_r: Counting, todos: list[str], *, status: str = "running",
          levels: list[list[str]] | None = None) -> CheckpointStore:
    cps = CheckpointStore(counting_r, KEYS)
    cps.create_sweep("S", {"status": status})
    for i, level in enumerate(levels or []):
        counting_r.hset(KEYS.sweep("S"), mapping={f"level_left:{i}": len(level), f"level_ok:{i}": 0})
    counting_r.sent.clear()
    return cps


def tr(counting_r: Counting) -> Transitions:
    return Transitions(counting_r, KEYS, lease_ttl=30)


def kinds(counting_r: Counting) -> list[str]:
    return [e.kind for e in EventLog(counting_r, KEYS).read("S")]


def status(counting_r: Counting, todo: str) -> str:
    cp = CheckpointStore(counting_r, KEYS).get("S", todo)
    assert cp is not None
    return str(cp["status"])


def test_start_is_one_round_trip_and_does_everything(counting_r: Counting) -> None:
    sweep(counting_r, ["A"], status="queued")
    st = tr(counting_r).start("S", "A", repo="api", concurrency=2, preds=[], worker="w1")
    assert counting_r.sent == ["EVALSHA"]
    assert st.verdict == "started" and st.lease is not None and st.attempts == 1
    assert status(counting_r, "A") == "running"
    assert counting_r.get(st.lease.key) == st.lease.token  # the lease is held
    assert json.loads(counting_r.hget(KEYS.sweep("S"), "status")) == "running"  # queued -> running
    assert kinds(counting_r) == ["todo.started"]


def test_start_retried_with_its_token_answers_started_again(counting_r: Counting) -> None:
    sweep(counting_r, ["A"])
    first = tr(counting_r).start("S", "A", repo="api", concurrency=1, preds=[], worker="w", token="tok")
    again = tr(counting_r).start("S", "A", repo="api", concurrency=1, preds=[], worker="w", token="tok")
    assert first.verdict == again.verdict == "started"
    assert again.lease == first.lease
    other = tr(counting_r).start("S", "A", repo="api", concurrency=1, preds=[], worker="w", token="x")
    assert other.verdict == "busy"  # another delivery: its live holder runs it


@pytest.mark.parametrize("sweep_status", ["paused", "cancelled", "succeeded"])
def test_start_refuses_a_sweep_that_is_not_dispatching(counting_r: Counting, sweep_status: str) -> None:
    sweep(counting_r, ["A"], status=sweep_status)
    st = tr(counting_r).start("S", "A", repo="api", concurrency=1, preds=[], worker="w")
    assert (st.verdict, st.detail) == ("gone", sweep_status)
    assert status(counting_r, "A") == "pending" and counting_r.keys(KEYS.lease("api", 0)) == []


def test_start_skips_after_a_failed_predecessor_and_waits_for_a_running_one(counting_r: Counting) -> None:
    cps = sweep(counting_r, ["A", "B", "C"])
    cps.set_fields("S", "A", status="running")
    st = tr(counting_r).start("S", "C", repo="api", concurrency=1, preds=["A", "B"], worker="w")
    assert st.verdict == "premature" and st.waiting == ["A", "B"]
    cps.set_fields("S", "B", status="failed")
    counting_r.sent.clear()
    st = tr(counting_r).start("S", "C", repo="api", concurrency=1, preds=["A", "B"], worker="w")
    assert counting_r.sent == ["EVALSHA"]
    assert (st.verdict, st.detail, st.terminal) == ("skipped", "B failed", 1)
    assert status(counting_r, "C") == "skipped" and kinds(counting_r) == ["todo.skipped"]
    assert counting_r.keys(KEYS.lease("api", 0)) == []  # no lease taken for a skip


def test_start_waits_without_side_effects_when_every_slot_is_held(counting_r: Counting) -> None:
    """A start that must wait changes nothing of its todo, nor the fence; it only flags
    the todo holding the slot, whose finish then wakes the line."""
    sweep(counting_r, ["A", "B"])
    assert tr(counting_r).start("S", "A", repo="api", concurrency=1, preds=[], worker="w").verdict == "started"
    before = counting_r.hgetall(KEYS.sweep("S"))
    fence = counting_r.get(KEYS.fence("api"))
    st = tr(counting_r).start("S", "B", repo="api", concurrency=1, preds=[], worker="w")
    assert st.verdict == "wait"
    assert counting_r.hgetall(KEYS.sweep("S")) == {**before, "w:A": "1"}
    assert counting_r.get(KEYS.fence("api")) == fence


def test_finish_is_one_round_trip_releases_the_lease_and_counts(counting_r: Counting) -> None:
    sweep(counting_r, ["A", "B"], levels=[["A", "B"]])
    st = tr(counting_r).start("S", "A", repo="api", concurrency=1, preds=[], worker="w", level=0)
    assert st.lease is not None
    counting_r.sent.clear()
    fin = tr(counting_r).finish("S", "A", lease=st.lease, status=TodoStatus.succeeded,
                       fields={"exit_code": 0, "attempts": 1}, event={"exit_code": 0},
                       level=0)
    assert counting_r.sent == ["EVALSHA"]
    assert fin.ok and fin.terminal == 1 and not fin.level_done
    assert status(counting_r, "A") == "succeeded"
    assert counting_r.get(st.lease.key) is None  # released in the same step
    assert counting_r.hget(KEYS.sweep("S"), "level_left:0") == "1"
    assert counting_r.hget(KEYS.sweep("S"), "level_ok:0") == "1"
    assert kinds(counting_r) == ["todo.started", "todo.succeeded"]


def test_finish_by_an_overtaken_holder_writes_nothing(counting_r: Counting) -> None:
    sweep(counting_r, ["A"])
    st = tr(counting_r).start("S", "A", repo="api", concurrency=1, preds=[], worker="w")
    assert st.lease is not None
    counting_r.delete(st.lease.key)  # expired; someone else may hold the slot now
    fin = tr(counting_r).finish("S", "A", lease=st.lease, status=TodoStatus.failed, fields={},
                       event={})
    assert not fin.ok and fin.detail == "lease"
    assert status(counting_r, "A") == "running" and counting_r.hget(KEYS.sweep("S"), "terminal") is None


def test_finish_by_an_overtaken_holder_gives_the_slot_back_to_its_new_holder(
    counting_r: Counting
) -> None:
    sweep(counting_r, ["A", "B"])
    t = tr(counting_r)
    st = t.start("S", "A", repo="api", concurrency=1, preds=[], worker="w")
    assert st.lease is not None
    counting_r.delete(st.lease.key)  # expired, and B took the slot
    other = t.start("S", "B", repo="api", concurrency=1, preds=[], worker="w")
    assert other.lease is not None and other.lease.key == st.lease.key
    fin = t.finish("S", "A", lease=st.lease, status=TodoStatus.failed, fields={}, event={})
    assert not fin.ok and fin.detail == "lease"
    assert counting_r.get(st.lease.key) == other.lease.token


def test_finish_refused_for_a_lost_resource_slot_leaves_the_repo_slot_as_it_was(
    counting_r: Counting
) -> None:
    """A resource slot no longer held: the finish is refused before the repo slot
    is touched (neither released nor given a new TTL)."""
    sweep(counting_r, ["A"])
    st = tr(counting_r).start("S", "A", repo="api", concurrency=1, preds=[], worker="w",
                     resources=[("db", 1)])
    assert st.lease is not None and len(st.lease.extra) == 1
    counting_r.delete(st.lease.extra[0])  # the resource slot expired
    counting_r.pexpire(st.lease.key, 5000)
    fin = tr(counting_r).finish("S", "A", lease=st.lease, status=TodoStatus.succeeded, fields={},
                       event={}, resources=["db"])
    assert not fin.ok and fin.detail == "lease"
    assert counting_r.get(st.lease.key) == st.lease.token
    assert 0 < counting_r.pttl(st.lease.key) <= 5000
    assert status(counting_r, "A") == "running"


def test_the_last_predecessor_to_finish_queues_the_successor_once(counting_r: Counting) -> None:
    """Eager: two predecessors of C finish; exactly the second queues C."""
    sweep(counting_r, ["A", "B", "C"])
    CheckpointStore(counting_r, KEYS).set_remaining("S", {"C": 2})
    t = tr(counting_r)
    queued = []
    for todo in ("A", "B"):
        st = t.start("S", todo, repo=todo, concurrency=1, preds=[], worker="w")
        assert st.lease is not None
        fin = t.finish("S", todo, lease=st.lease, status=TodoStatus.succeeded, fields={},
                       event={}, successors=[("C", "tr.repo.c")])
        queued.append(fin.queued)
    assert queued == [[], ["C"]]
    assert status(counting_r, "C") == "queued"
    assert kinds(counting_r).count("todo.queued") == 1


def test_end_ends_many_todos_in_one_round_trip_and_says_which_levels_ended(counting_r: Counting) -> None:
    cps = sweep(counting_r, ["A", "B", "C"], levels=[["A"], ["B", "C"]])
    cps.set_fields("S", "A", status="running")
    counting_r.sent.clear()
    ended = tr(counting_r).end("S", [("A", 0), ("B", 1), ("C", 1)], TodoStatus.skipped, NOT_STARTED,
                      event={"reason": "X failed"})
    assert counting_r.sent == ["EVALSHA"]
    assert ended.todos == ["B", "C"] and ended.levels_done == [1] and ended.terminal == 2
    assert status(counting_r, "A") == "running"  # running: not skipped under its holder
    cp = CheckpointStore(counting_r, KEYS).get("S", "B")
    assert cp is not None and cp["reason"] == "X failed"
    events = EventLog(counting_r, KEYS).read("S")
    assert [(e.kind, e.todo_id, e.data["reason"]) for e in events] == [
        ("todo.skipped", "B", "X failed"), ("todo.skipped", "C", "X failed")]


def test_queue_is_one_round_trip_once_per_todo_and_nothing_when_paused(counting_r: Counting) -> None:
    sweep(counting_r, ["A", "B"], status="paused")
    t = tr(counting_r)
    assert t.queue("S", [("A", "q"), ("B", "q")], via="start") == []
    counting_r.hset(KEYS.sweep("S"), "status", '"running"')
    counting_r.sent.clear()
    assert t.queue("S", [("A", "q"), ("B", "q")], via="start") == ["A", "B"]
    assert counting_r.sent == ["EVALSHA"]
    assert t.queue("S", [("A", "q"), ("B", "q")], via="again") == []
    ev = EventLog(counting_r, KEYS).read("S")
    assert [(e.kind, e.todo_id, e.data) for e in ev] == [
        ("todo.queued", "A", {"queue": "q", "via": "start"}),
        ("todo.queued", "B", {"queue": "q", "via": "start"})]


# -- what a todo costs Redis -----------------------------------------------------------
def _server_calls(client: redis.Redis) -> dict[str, int]:
    """Commands the server ran since the last CONFIG RESETSTAT, a script's own
    commands included (INFO commandstats); the probes themselves left out."""
    stats: Any = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()
            if k not in ("cmdstat_config|resetstat", "cmdstat_info")}


def test_what_an_uncontended_start_and_finish_cost_inside_redis(redis_server: Any) -> None:
    """The cheapest path of a todo, as the server counts it (the script's commands
    included): the budget of the sweep bench's "<= 25 commands per todo", with
    Celery's own ~6 (publish, fetch, acks_late bookkeeping) on top.

    start: one read of everything (sweep status and run, checkpoint, predecessors,
    counters), the waiters' count, one SET of a slot, the fence, one write, the event
    (stream + publish). finish: one read, the slot released (GETDEL), one write, the
    event (stream + publish); nobody waited, so no look at the line (a finish wakes the
    first waiter only when one flagged it: see the next test). A command added to
    either path fails this."""
    counting_r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    counting_r.flushall()
    for path in LUA_DIR.glob("todo_*.lua"):
        counting_r.script_load(script_text(path.stem))
    store = CheckpointStore(counting_r, KEYS)
    store.create_sweep("S", {"status": "running"})
    counting_r.hset(KEYS.sweep("S"), mapping={"level_left:0": 2, "level_ok:0": 0})
    t = Transitions(counting_r, KEYS, lease_ttl=30)
    assert t.queue("S", [("A", "q"), ("P", "q")], via="start") == ["A", "P"]
    store.set_fields("S", "P", status="succeeded")
    counting_r.config_resetstat()
    st = t.start("S", "A", repo="api", concurrency=2, preds=["P"], worker="w", level=0, run=0)
    started = _server_calls(counting_r)
    assert st.verdict == "started" and st.lease is not None
    counting_r.config_resetstat()
    fin = t.finish("S", "A", lease=st.lease, status=TodoStatus.succeeded,
                   fields={"exit_code": 0, "output_tail": ""}, event={}, level=0)
    finished = _server_calls(counting_r)
    counting_r.close()
    assert fin.ok and fin.terminal == 1
    assert started == {"evalsha": 1, "hmget": 1, "zcard": 1, "set": 1, "incr": 1, "hset": 1,
                       "xadd": 1, "publish": 1}, started
    assert finished == {"evalsha": 1, "hmget": 1, "getdel": 1, "hset": 1, "xadd": 1,
                        "publish": 1}, finished


def test_a_finish_wakes_the_line_that_waited_for_its_slot(counting_r: Counting) -> None:
    """A waits for nobody; B and C wait for A's slot (their first ask flags A). A's
    finish wakes B (the first in line); B, started with C still in line, wakes C."""
    sweep(counting_r, ["A", "B", "C"])
    t = tr(counting_r)
    a = t.start("S", "A", repo="api", concurrency=1, preds=[], worker="w")
    assert a.lease is not None
    ranks = {x: waiter_rank(DEFAULT_RANK, time.time(), "S", x) for x in ("B", "C")}
    for x in ("B", "C"):
        assert t.start("S", x, repo="api", concurrency=1, preds=[], worker="w",
                       rank=ranks[x]).verdict == "wait"
    assert not counting_r.exists(KEYS.wake(ranks["B"]))
    assert t.finish("S", "A", lease=a.lease, status=TodoStatus.succeeded, fields={},
                    event={}).ok
    assert counting_r.lrange(KEYS.wake(ranks["B"]), 0, -1) == ["1"]  # woken
    b = t.start("S", "B", repo="api", concurrency=1, preds=[], worker="w", rank=ranks["B"],
                waited=True)
    assert b.verdict == "started" and b.lease is not None
    assert not counting_r.exists(KEYS.wake(ranks["C"]))
    assert t.finish("S", "B", lease=b.lease, status=TodoStatus.succeeded, fields={},
                    event={}).ok
    assert counting_r.lrange(KEYS.wake(ranks["C"]), 0, -1) == ["1"]
    c = t.start("S", "C", repo="api", concurrency=1, preds=[], worker="w", rank=ranks["C"],
                waited=True)
    assert c.verdict == "started" and c.lease is not None
    assert not counting_r.exists(KEYS.waiters("repo:api"))


def test_a_waiter_flags_no_holder_of_another_kind_and_no_sweep_that_is_gone(
        counting_r: Counting) -> None:
    """A slot held by a landing step (a token naming no todo) or by a todo whose sweep's
    hash is gone is left as it is: nothing is written outside the sweeps that exist."""
    sweep(counting_r, ["B"])
    counting_r.set(KEYS.lease("api", 0), "host:1:abc", px=30_000)  # a landing step
    assert tr(counting_r).start("S", "B", repo="api", concurrency=1, preds=[], worker="w").verdict == "wait"
    counting_r.set(KEYS.lease("api", 0), f"host:1:abc|{KEYS.sweep('GONE')}|X", px=30_000)
    assert tr(counting_r).start("S", "B", repo="api", concurrency=1, preds=[], worker="w").verdict == "wait"
    assert not counting_r.exists(KEYS.sweep("GONE"))
    assert "w:B" not in counting_r.hgetall(KEYS.sweep("S"))


def test_queueing_a_level_costs_two_commands_and_its_events(redis_server: Any) -> None:
    """A level of n todos: one read and one write of the sweep's hash, whatever n,
    each todo's event in the stream, and one live message for them all."""
    counting_r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    counting_r.flushall()
    counting_r.script_load(script_text("todo_queue"))
    CheckpointStore(counting_r, KEYS).create_sweep("S", {"status": "running"})
    ids = [f"T{i}" for i in range(50)]
    own_client(counting_r).ping()  # the thread's own connection made (HELLO) before counting
    counting_r.config_resetstat()
    assert Transitions(counting_r, KEYS, lease_ttl=30).queue("S", [(i, "q") for i in ids], via="x") == ids
    calls = _server_calls(counting_r)
    counting_r.close()
    assert calls == {"evalsha": 1, "hmget": 1, "hset": 1, "xadd": 50, "publish": 1}, calls


def test_a_takeover_that_waits_for_a_slot_counts_its_lost_run_once(counting_r: Counting) -> None:
    """A dead holder's todo, delivered again while its repo's only slot is busy, asks
    again and again; the lost run is counted (toward the poison limit) when the
    takeover happens, not at every ask."""
    sweep(counting_r, ["A", "B"])
    t = tr(counting_r)
    dead = t.start("S", "A", repo="api", concurrency=1, preds=[], worker="w1", token="dead")
    assert dead.lease is not None
    counting_r.delete(dead.lease.key)  # its worker died: the lease is gone, A still 'running'
    busy = t.start("S", "B", repo="api", concurrency=1, preds=[], worker="w2")
    assert busy.verdict == "started" and busy.lease is not None  # B holds the only slot
    for _ in range(3):
        st = t.start("S", "A", repo="api", concurrency=1, preds=[], worker="w3",
                     max_lost=3, token="again", waited=True)
        assert st.verdict == "wait"
    cp = CheckpointStore(counting_r, KEYS).get("S", "A")
    assert cp is not None and cp.get("lost_runs") is None and cp["token"] == "dead"
    t.finish("S", "B", lease=busy.lease, status=TodoStatus.succeeded, fields={}, event={})
    st = t.start("S", "A", repo="api", concurrency=1, preds=[], worker="w3", max_lost=3,
                 token="again", waited=True)
    assert st.verdict == "started" and st.taken_over
    cp = CheckpointStore(counting_r, KEYS).get("S", "A")
    assert cp is not None and cp["lost_runs"] == 1 and cp["token"] == "again"


def test_the_endings_a_start_or_a_lost_run_decides_are_written_with_their_seals(
        counting_r: Counting) -> None:
    """The runtime seals the endings a script may decide (Lua cannot seal), for the run
    the caller names, and writes them with the status the script decides, in its one
    step: the skip's and the poison's; a verdict that ends nothing writes neither;
    without a run (nothing to bind a seal to), an older seal never stays."""
    cps = sweep(counting_r, ["A", "B", "C", "D"])
    t = Transitions(counting_r, KEYS, lease_ttl=30, seal_keys=lambda: ["k-1"])

    def sealed(todo: str, status: str) -> dict[str, object] | None:
        return outcome_stamp(["k-1"], "S", todo, 0, status, None)

    cps.set_fields("S", "A", status="failed", exit_code=1)
    cps.set_fields("S", "B", outcome_seal={"run": 0, "sig": "v1:old", "kid": "k"}, exit_code=3)
    st = t.start("S", "B", repo="api", concurrency=1, preds=["A"], worker="w", run=0)
    assert st.verdict == "skipped"
    got = cps.get("S", "B") or {}
    assert got["status"] == "skipped" and got.get("exit_code") is None
    assert got["outcome_seal"] == sealed("B", "skipped") is not None

    held = t.start("S", "C", repo="api", concurrency=1, preds=[], worker="w1", run=0)
    assert held.verdict == "started" and held.lease is not None
    assert "outcome_seal" not in (cps.get("S", "C") or {})  # a start ends nothing: no seal
    counting_r.delete(held.lease.key)  # its worker dies
    st = t.start("S", "C", repo="api", concurrency=1, preds=[], worker="w2", max_lost=1, run=0)
    assert st.verdict == "poisoned"
    got = cps.get("S", "C") or {}
    assert got["status"] == "failed" and got["outcome_seal"] == sealed("C", "failed")

    held = t.start("S", "D", repo="web", concurrency=1, preds=[], worker="w1", run=0)
    assert held.lease is not None
    counting_r.delete(held.lease.key)
    token = str((cps.get("S", "D") or {})["token"])
    assert t.lost("S", "D", repo="web", token=token, max_lost=1, now=time.time(),
                  why="lease expired", run=0) == "poisoned"
    got = cps.get("S", "D") or {}
    assert got["status"] == "failed" and got["outcome_seal"] == sealed("D", "failed")

    cps.set_fields("S", "B", status="pending", outcome_seal={"run": 0, "sig": "v1:old", "kid": "k"})
    assert t.start("S", "B", repo="api", concurrency=1, preds=["A"], worker="w").verdict == "skipped"
    assert (cps.get("S", "B") or {}).get("outcome_seal") is None  # no run: none kept


def test_a_finish_and_an_end_are_written_with_the_runtimes_seal(counting_r: Counting) -> None:
    """A finish is sealed for its run with its status and exit code, an end for its run
    with its status; an end without a run (a refused spec's todo) is written unsealed."""
    cps = sweep(counting_r, ["A", "B", "C"])
    t = Transitions(counting_r, KEYS, lease_ttl=30, seal_keys=lambda: ["k-1"])
    held = t.start("S", "A", repo="api", concurrency=1, preds=[], worker="w", run=0)
    assert held.lease is not None
    fin = t.finish("S", "A", lease=held.lease, status=TodoStatus.failed,
                   fields={"exit_code": 7}, event={}, run=0)
    assert fin.ok
    got = cps.get("S", "A") or {}
    assert got["outcome_seal"] == outcome_stamp(["k-1"], "S", "A", 0, "failed", 7) is not None
    assert got["exit_code"] == 7
    t.end("S", [("B", 0)], TodoStatus.cancelled, {TodoStatus.pending}, event={}, run=0)
    assert (cps.get("S", "B") or {})["outcome_seal"] == outcome_stamp(
        ["k-1"], "S", "B", 0, "cancelled", None)
    t.end("S", [("C", 0)], TodoStatus.failed, {TodoStatus.pending}, event={"refused": True})
    got = cps.get("S", "C") or {}
    assert got["status"] == "failed" and got.get("outcome_seal") is None


# -- the live channel: one message per script call ---------------------------------------
class Live:
    """A subscriber to the live channel; ``messages()`` returns what came until now
    (a sentinel published after the calls marks the end: nothing is waited out)."""

    def __init__(self, counting_r: Counting) -> None:
        self.r = counting_r
        self.ps = counting_r.pubsub(ignore_subscribe_messages=True)
        self.ps.subscribe(KEYS.events_channel)
        deadline = time.monotonic() + 10
        while not self.ps.subscribed or self.r.pubsub_numsub(KEYS.events_channel)[0][1] < 1:
            self.ps.get_message(timeout=0.05)
            assert time.monotonic() < deadline, "the subscription never took"
        counting_r.sent.clear()

    def messages(self) -> list[list[dict[str, Any]]]:
        self.r.publish(KEYS.events_channel, "end")
        out: list[list[dict[str, Any]]] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg = self.ps.get_message(timeout=0.05)
            if msg is None:
                continue
            if msg["data"] == "end":
                return out
            out.append(live_events(msg["data"]))
        raise AssertionError(f"the sentinel never came; got {out}")

    def close(self) -> None:
        self.ps.close()


def stream_ids(counting_r: Counting) -> list[str]:
    return [e.id for e in EventLog(counting_r, KEYS).read("S")]


def test_a_script_call_publishes_all_its_events_in_one_message_in_stream_order(
    counting_r: Counting
) -> None:
    """Queueing a level (one event per todo), a finish that queues eager successors
    (three events) and a start that returns early after its event (skipped): each
    call one live message, its events as the stream holds them, ids included."""
    cps = sweep(counting_r, ["A", "B", "C", "D", "E", "F", "G"])
    cps.set_remaining("S", {"C": 1, "D": 1})
    live = Live(counting_r)
    t = tr(counting_r)
    todos = ["A", "B", "E", "F", "G"]
    assert t.queue("S", [(x, "q") for x in todos], via="start") == todos
    queued = live.messages()
    assert [[(e["kind"], e["todo_id"]) for e in m] for m in queued] == [
        [("todo.queued", x) for x in todos]]
    assert [e["id"] for e in queued[0]] == stream_ids(counting_r)
    assert queued[0][0]["via"] == "start" and queued[0][0]["queue"] == "q"

    st = t.start("S", "A", repo="api", concurrency=1, preds=[], worker="w")
    assert st.lease is not None
    fin = t.finish("S", "A", lease=st.lease, status=TodoStatus.succeeded, fields={},
                   event={"exit_code": 0}, successors=[("C", "q"), ("D", "q")])
    assert fin.queued == ["C", "D"]
    ran = live.messages()
    assert [[(e["kind"], e["todo_id"]) for e in m] for m in ran] == [
        [("todo.started", "A")],
        [("todo.succeeded", "A"), ("todo.queued", "C"), ("todo.queued", "D")]]
    assert [e["id"] for m in ran for e in m] == stream_ids(counting_r)[len(todos):]

    cps.set_fields("S", "F", status="failed")
    skipped = t.start("S", "E", repo="web", concurrency=1, preds=["F"], worker="w")
    assert skipped.verdict == "skipped"  # an early return of the script, after its event
    assert [[(e["kind"], e["todo_id"]) for e in m] for m in live.messages()] == [
        [("todo.skipped", "E")]]
    assert t.queue("S", [("A", "q")], via="again") == []  # no event: no message
    assert live.messages() == []
    live.close()


def test_a_call_of_thousands_of_events_publishes_a_message_per_thousand(counting_r: Counting) -> None:
    """A level of 2,500 todos: three messages (1,000, 1,000, 500), in stream order, so
    no single message grows with the level (a subscriber's output buffer is capped)."""
    todos = [f"T{i:04d}" for i in range(2500)]
    sweep(counting_r, todos)
    live = Live(counting_r)
    assert len(tr(counting_r).queue("S", [(x, "q") for x in todos], via="start")) == 2500
    got = live.messages()
    live.close()
    assert [len(m) for m in got] == [1000, 1000, 500]
    assert [e["id"] for m in got for e in m] == stream_ids(counting_r)
    assert [e["todo_id"] for m in got for e in m] == todos


def test_every_script_that_emits_publishes_after_its_body_and_loads(redis_server: Any) -> None:
    """The body of a script that emits runs as a function with publish_emitted()
    after it (so no early return skips its message), and every script still compiles
    on a real redis-server (Lua 5.1: at most 60 upvalues a function)."""
    counting_r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    emitting = []
    for path in sorted(LUA_DIR.glob("*.lua")):
        if path.name.startswith("_"):
            continue
        text = script_text(path.stem)
        counting_r.script_load(text)
        if "local function emit(" in text:
            emitting.append(path.stem)
            assert text.rstrip().endswith(
                "local script_result = script_body()\npublish_emitted()\nreturn script_result"
            ), path.name
    counting_r.close()
    assert {"todo_queue", "todo_start", "todo_finish", "gate_decide"} <= set(emitting)
