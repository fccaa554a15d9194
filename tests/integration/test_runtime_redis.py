"""Leases, events and checkpoints against a real redis-server.

Leases and claims come from the scripts workers run (``Transitions.start`` /
``finish``). The key scenario: a holder frozen (SIGSTOP) past its TTL loses the
todo to a new holder with a higher fence, and its writes after waking up are
rejected.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from coordination.connection.client import get_redis
from coordination.keys import Keys
from coordination.runtime.checkpoints import CheckpointStore
from coordination.runtime.events import EventLog
from coordination.runtime.leases import Heartbeat, Lease, LeaseManager
from coordination.runtime.sweep_fields import tail_field
from coordination.runtime.transitions import Transitions
from coordination.status import TodoStatus
from tests.unit.support.runtime import new_sweep, start, started
from tests.waiting import Follower, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
K = Keys("it")


@pytest.fixture
def real_r(redis_url: str) -> redis.Redis:
    client = get_redis()
    assert type(client).__module__.startswith("redis")  # the real server, not fakeredis
    return client


def held(real_r: redis.Redis, lease: Lease) -> bool:
    return all(v == lease.token for v in real_r.mget(lease.keys))


def test_get_redis_uses_the_url_and_caches_the_client(real_r: redis.Redis, redis_url: str) -> None:
    assert get_redis() is real_r
    assert real_r.connection_pool.connection_kwargs["port"] == int(redis_url.rsplit(":", 1)[1][:-2])


def test_lease_exclusivity_fences_and_tokens(real_r: redis.Redis) -> None:
    new_sweep(real_r, K)
    t = Transitions(real_r, K, lease_ttl=0.3)
    mgr = LeaseManager(real_r, K, ttl=0.3)
    a, b = started(t, "A", concurrency=2), started(t, "B", concurrency=2)
    assert start(t, "C", concurrency=2).verdict == "wait"
    assert {a.slot, b.slot} == {0, 1} and a.fence < b.fence
    assert not mgr.release(Lease(a.repo, a.slot, "forged", a.fence, a.ttl_ms, a.namespace))
    assert mgr.release(a)
    c = started(t, "C", concurrency=2)
    assert c.slot == a.slot and c.fence > b.fence  # the one slot free
    assert wait_for(lambda: not held(real_r, b))  # real PX expiry
    assert not mgr.extend(b)
    d = started(t, "D", concurrency=2)
    assert d.fence > c.fence


def test_scripts_survive_a_script_flush(real_r: redis.Redis) -> None:
    new_sweep(real_r, K)
    t = Transitions(real_r, K, lease_ttl=5)
    started(t, "A")
    real_r.script_flush()  # as after a server restart: EVALSHA fails, EVAL reloads
    lease = started(t, "B", repo="web")
    assert LeaseManager(real_r, K, ttl=5).release(lease)


def test_heartbeat_keeps_lease_and_reports_takeover(real_r: redis.Redis) -> None:
    new_sweep(real_r, K)
    t = Transitions(real_r, K, lease_ttl=0.3)
    mgr = LeaseManager(real_r, K, ttl=0.3)
    lease = started(t, "A")
    lost = threading.Event()
    hb = Heartbeat(mgr, lease, interval=0.05, on_lost=lost.set).start()
    time.sleep(0.9)  # three TTLs
    assert held(real_r, lease) and not hb.lost
    real_r.delete(lease.key)
    assert started(t, "B").key == lease.key
    assert lost.wait(5) and hb.lost
    hb.stop()


def test_start_claims_takes_over_and_fences_writes(real_r: redis.Redis) -> None:
    store = new_sweep(real_r, K, status="queued")
    short, long = Transitions(real_r, K, lease_ttl=0.3), Transitions(real_r, K, lease_ttl=5)
    first = started(short, "T1", worker="w1", now=1.0)
    # A second delivery, with a slot free: the live holder runs it.
    assert start(long, "T1", concurrency=2, worker="w2", now=2.0).verdict == "busy"
    assert wait_for(lambda: not held(real_r, first))  # real PX expiry
    st = start(long, "T1", concurrency=2, worker="w2", now=3.0)
    assert st.verdict == "started" and st.taken_over and st.lease is not None
    second = st.lease
    assert second.fence > first.fence
    assert start(long, "T1", concurrency=2, worker="w3", now=3.0).verdict == "busy"
    assert not store.write("S", "T1", {"exit_code": 9}, lease=first)
    fin = long.finish("S", "T1", lease=first, status=TodoStatus.failed, fields={}, event={})
    assert not fin.ok and fin.detail == "fence"
    assert store.write("S", "T1", {"attempts": 2}, lease=second)
    fin = long.finish("S", "T1", lease=second, status=TodoStatus.succeeded,
                      fields={"exit_code": 0}, event={})
    assert fin.ok and not held(real_r, second)
    st = start(long, "T1", worker="w3", now=4.0)
    assert (st.verdict, st.detail) == ("terminal", "succeeded")
    store.set_fields("S", "T2", status="queued", fence=1_000)  # Redis lost the fence counter
    assert start(long, "T2", worker="w2", now=5.0).verdict == "stale"
    cp = store.get("S", "T1")
    assert cp is not None and cp["worker"] == "w2" and cp["attempts"] == 2 and cp["lost_runs"] == 1
    rec = store.get_sweep("S")
    assert rec is not None and rec["status"] == "running"  # its first start moved it
    assert not store.set_sweep_status("S", "running", allowed_from={"queued"})
    assert store.set_sweep_status("S", "paused", allowed_from={"running"})
    assert [s["id"] for s in store.list_sweeps()] == ["S"]


def test_get_all_ten_thousand_is_fast(real_r: redis.Redis) -> None:
    store = CheckpointStore(real_r, K)
    ids = [f"TODO-{i:05d}" for i in range(10_000)]
    store.create_sweep("BIG", {"plan": "P"})
    store.reset_todos("BIG", ids[::2], status="succeeded", exit_code=0)  # half written
    real_r.hset(K.sweep("BIG"), mapping={tail_field(t): "done\n" for t in ids[::2]})
    t0 = time.monotonic()
    got = store.get_all("BIG", ids)
    assert time.monotonic() - t0 < 2.0
    assert len(got) == 10_000 and got["TODO-00042"]["status"] == "succeeded"
    assert got["TODO-00042"]["output_tail"] == "done\n"
    assert got["TODO-00043"] == {"status": "pending"}


def test_events_follow_live_and_across_a_reconnect(real_r: redis.Redis, redis_url: str) -> None:
    log = EventLog(real_r, K)
    for i in range(3):
        log.emit("todo.queued", sweep_id="S", i=i)
    follower = Follower(log, "S", block_ms=100, daemon=True)
    got = follower.got
    assert wait_for(lambda: len(got) == 3)
    admin = redis.Redis.from_url(redis_url, decode_responses=True)
    emitter = EventLog(admin, K)
    # Drop every other connection (the follower's blocked XREAD among them)
    # while events keep coming; the follower must resume from its last id.
    killed = 0
    for i in range(3, 40):
        emitter.emit("todo.queued", sweep_id="S", i=i)
        if i % 10 == 0:
            killed += int(admin.client_kill_filter(_type="normal", skipme=True))
    assert killed >= 1
    assert wait_for(lambda: len(got) >= 40)
    follower.stop()
    assert [e.data["i"] for e in got] == list(range(40))
    admin.close()


# A lease holder in its own process, as a worker: start the todo (lease and claim in
# one step), heartbeat, say READY, then (possibly much later) try a fenced write and
# its finish, and report what happened.
HOLDER = r"""
import json, sys, time
import redis
from coordination.keys import Keys
from coordination.runtime.checkpoints import CheckpointStore
from coordination.runtime.leases import Heartbeat, LeaseManager
from coordination.runtime.transitions import Transitions
from coordination.status import TodoStatus
url, ns, sweep, todo, ttl = sys.argv[1:6]
r = redis.Redis.from_url(url, decode_responses=True)
keys = Keys(ns)
leases = LeaseManager(r, keys, float(ttl))
transitions = Transitions(r, keys, lease_ttl=float(ttl))
store = CheckpointStore(r, keys)
st = transitions.start(sweep, todo, repo="api", concurrency=1, preds=[], worker="old",
                       now=time.time())
lease = st.lease
hb = Heartbeat(leases, lease, interval=float(ttl) / 3, on_lost=lambda: None).start()
print(json.dumps({"start": st.verdict, "fence": lease.fence}), flush=True)
print("READY", flush=True)
sys.stdin.readline()
ok = store.write(sweep, todo, {"exit_code": 99, "worker": "old"}, lease=lease)
fin = transitions.finish(sweep, todo, lease=lease, status=TodoStatus.failed,
                         fields={"exit_code": 99}, event={})
deadline = time.monotonic() + 5
while not hb.lost and time.monotonic() < deadline:
    time.sleep(0.01)
print(json.dumps({"write": ok, "finish": fin.detail if not fin.ok else "ok",
                  "lost": hb.lost}), flush=True)
"""


class Lines:
    """The holder's stdout lines, read by a thread so every wait has a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.q.put(line.strip())
        self.q.put(None)

    def next(self, timeout: float = 15.0) -> str:
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output from the holder in {timeout}s") from None
        if line is None:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"holder exited ({self.proc.wait()}): {err}")
        return line


def test_stopped_holder_loses_lease_and_its_late_write_is_rejected(
    real_r: redis.Redis, redis_url: str
) -> None:
    ttl = 0.5
    store = CheckpointStore(real_r, K)
    store.create_sweep("S", {"plan": "PLAN-001"})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, redis_url, K.namespace, "S", "T1", str(ttl)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=ROOT, env=env,
    )  # fmt: skip
    lines = Lines(proc)
    stopped = False
    try:
        first = json.loads(lines.next())
        assert first["start"] == "started"
        assert lines.next() == "READY"
        proc.send_signal(signal.SIGSTOP)
        stopped = True
        mgr = LeaseManager(real_r, K, ttl=10)
        assert wait_for(lambda: mgr.holder("api", 0) is None)  # its heartbeat is frozen too
        st = start(Transitions(real_r, K, lease_ttl=10), "T1", worker="new", now=time.time())
        assert st.verdict == "started" and st.taken_over and st.lease is not None
        new = st.lease
        assert new.fence > first["fence"]

        proc.send_signal(signal.SIGCONT)
        stopped = False
        assert proc.stdin is not None
        proc.stdin.write("write\n")
        proc.stdin.flush()
        result = json.loads(lines.next())
        assert result == {"write": False, "finish": "fence", "lost": True}

        cp = store.get("S", "T1")
        assert cp is not None
        assert cp["status"] == "running" and cp["worker"] == "new"
        assert cp["token"] == new.token and cp["fence"] == new.fence and cp["attempts"] == 2
        fin = Transitions(real_r, K, lease_ttl=10).finish(
            "S", "T1", lease=new, status=TodoStatus.succeeded, fields={"exit_code": 0},
            event={})
        assert fin.ok and mgr.holder("api", 0) is None  # finished, and the slot is free
        assert proc.wait(timeout=10) == 0
    finally:
        if stopped:
            proc.send_signal(signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_a_level_is_sent_in_one_round_trip_in_start_order(real_r: redis.Redis, redis_url: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000 messages of a level: kombu's publish batch puts them on the repo's queue in
    the order given (a queue hands them out in that order), with a handful of round
    trips, not one per message."""
    from coordination.dispatch import CeleryDispatcher
    from coordination.dispatch.app import celery_app
    from coordination.messages import TodoMessage
    from coordination.settings import Settings

    keys = Keys("it-batch")
    app = celery_app(Settings(redis_url=redis_url, namespace="it-batch"), url=redis_url)
    d = CeleryDispatcher(app, keys)
    d.send([TodoMessage("S", "P", "warm", "api", 0)])
    for q in real_r.scan_iter(f"*{keys.repo_queue('api')}*"):
        real_r.delete(q)
    before = real_r.info("commandstats")
    writes: list[int] = []
    real = redis.connection.AbstractConnection.send_packed_command

    def counted(self: object, command: object, check_health: bool = True) -> None:
        writes.append(1)
        real(self, command, check_health)  # type: ignore[arg-type]

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    n = 1000
    d.send([TodoMessage("S", "P", f"T{i:04d}", "api", 0) for i in range(n)])
    monkeypatch.undo()
    after = real_r.info("commandstats")
    lpush = after["cmdstat_lpush"]["calls"] - before.get("cmdstat_lpush", {"calls": 0})["calls"]
    assert lpush == n
    assert len(writes) <= 5, f"{len(writes)} writes to Redis for {n} messages"
    # kombu LPUSHes, workers BRPOP: the oldest message is at the right end
    # the broker's keys carry the namespace's prefix; a priority adds a suffix
    queues = [q for q in real_r.scan_iter(f"*{keys.repo_queue('api')}*") if real_r.type(q) == "list"]
    assert len(queues) == 1, queues
    bodies = [json.loads(m)["headers"]["id"] for m in reversed(real_r.lrange(queues[0], 0, -1))]
    assert bodies == [f"S:T{i:04d}:0" for i in range(n)]
    real_r.delete(*queues)
