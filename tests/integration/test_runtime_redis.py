"""Leases, events and checkpoints against a real redis-server.

The key scenario: a lease holder frozen (SIGSTOP) past its TTL loses the todo to
a new holder with a higher fence, and its writes after waking up are rejected.
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

from coordination.keys import Keys
from coordination.runtime.checkpoints import CheckpointStore, tail_field
from coordination.runtime.client import get_redis
from coordination.runtime.events import Event, EventLog
from coordination.runtime.leases import Heartbeat, LeaseManager
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
K = Keys("it")




@pytest.fixture
def r(redis_url: str) -> redis.Redis:
    client = get_redis()
    assert type(client).__module__.startswith("redis")  # the real server, not fakeredis
    return client


def test_get_redis_uses_the_url_and_caches_the_client(r: redis.Redis, redis_url: str) -> None:
    assert get_redis() is r
    assert r.connection_pool.connection_kwargs["port"] == int(redis_url.rsplit(":", 1)[1][:-2])


def test_lease_exclusivity_fences_and_tokens(r: redis.Redis) -> None:
    mgr = LeaseManager(r, K, ttl=0.3)
    got = [mgr.try_acquire("api", 2) for _ in range(3)]
    a, b = got[0], got[1]
    assert a and b and got[2] is None and a.fence < b.fence
    assert not mgr.release(type(a)(a.repo, a.slot, "forged", a.fence, a.ttl_ms, a.namespace))
    assert mgr.release(a)
    c = mgr.try_acquire("api", 2)
    assert c is not None and c.slot == 0 and c.fence > b.fence
    assert wait_for(lambda: not mgr.is_held(b))  # real PX expiry
    assert not mgr.extend(b)
    d = mgr.try_acquire("api", 2)
    assert d is not None and d.fence > c.fence


def test_scripts_survive_a_script_flush(r: redis.Redis) -> None:
    mgr = LeaseManager(r, K, ttl=5)
    assert mgr.try_acquire("api") is not None
    r.script_flush()  # as after a server restart: EVALSHA fails, EVAL reloads
    lease = mgr.try_acquire("web")
    assert lease is not None and mgr.release(lease)


def test_heartbeat_keeps_lease_and_reports_takeover(r: redis.Redis) -> None:
    mgr = LeaseManager(r, K, ttl=0.3)
    lease = mgr.try_acquire("api")
    assert lease is not None
    lost = threading.Event()
    hb = Heartbeat(mgr, lease, interval=0.05, on_lost=lost.set).start()
    time.sleep(0.9)  # three TTLs
    assert mgr.is_held(lease) and not hb.lost
    r.delete(lease.key)
    assert mgr.try_acquire("api") is not None
    assert lost.wait(5) and hb.lost
    hb.stop()


def test_checkpoint_claims_and_fenced_writes(r: redis.Redis) -> None:
    mgr = LeaseManager(r, K, ttl=0.3)
    store = CheckpointStore(r, K)
    store.create_sweep("S", {"plan": "PLAN-001"})
    first = mgr.try_acquire("api")
    assert first is not None
    assert store.claim("S", "T1", lease=first, worker="w1", now=1.0) == "claimed"
    second = LeaseManager(r, K, ttl=5).try_acquire("api", 2)
    assert second is not None
    assert store.claim("S", "T1", lease=second, worker="w2", now=2.0) == "busy"
    assert wait_for(lambda: not mgr.is_held(first))
    third = mgr.try_acquire("api")
    assert third is not None and third.fence > second.fence
    assert store.claim("S", "T1", lease=second, worker="w2", now=3.0) == "taken_over"
    assert store.claim("S", "T1", lease=third, worker="w3", now=3.0) == "busy"
    assert not store.write("S", "T1", {"status": "failed"}, lease=first)
    assert store.write("S", "T1", {"status": "succeeded", "exit_code": 0}, lease=second)
    assert store.claim("S", "T1", lease=third, worker="w3", now=4.0) == "terminal"
    store.set_fields("S", "T2", status="queued", fence=third.fence)
    assert store.claim("S", "T2", lease=second, worker="w2", now=5.0) == "stale"
    assert store.set_sweep_status("S", "running", allowed_from={"queued"})
    assert not store.set_sweep_status("S", "running", allowed_from={"queued"})
    assert [s["id"] for s in store.list_sweeps()] == ["S"]


def test_get_all_ten_thousand_is_fast(r: redis.Redis) -> None:
    store = CheckpointStore(r, K)
    ids = [f"TODO-{i:05d}" for i in range(10_000)]
    store.create_sweep("BIG", {"plan": "P"})
    store.reset_todos("BIG", ids[::2], status="succeeded", exit_code=0)  # half written
    r.hset(K.sweep("BIG"), mapping={tail_field(t): "done\n" for t in ids[::2]})
    t0 = time.monotonic()
    got = store.get_all("BIG", ids)
    assert time.monotonic() - t0 < 2.0
    assert len(got) == 10_000 and got["TODO-00042"]["status"] == "succeeded"
    assert got["TODO-00042"]["output_tail"] == "done\n"
    assert got["TODO-00043"] == {"status": "pending"}


def test_events_follow_live_and_across_a_reconnect(r: redis.Redis, redis_url: str) -> None:
    log = EventLog(r, K)
    for i in range(3):
        log.emit("todo.queued", sweep_id="S", i=i)
    got: list[Event] = []
    done = threading.Event()

    def reader() -> None:
        for ev in log.follow("S", block_ms=100, stop=done.is_set):
            got.append(ev)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
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
    done.set()
    t.join(timeout=5)
    assert [e.data["i"] for e in got] == list(range(40))
    admin.close()


# A lease holder in its own process: acquire, heartbeat, claim, say READY,
# then (possibly much later) try a fenced write and report what happened.
HOLDER = r"""
import json, sys, time
import redis
from coordination.keys import Keys
from coordination.runtime.checkpoints import CheckpointStore
from coordination.runtime.leases import Heartbeat, LeaseManager
url, ns, sweep, todo, ttl = sys.argv[1:6]
r = redis.Redis.from_url(url, decode_responses=True)
keys = Keys(ns)
leases = LeaseManager(r, keys, float(ttl))
store = CheckpointStore(r, keys)
lease = leases.acquire("api", timeout=10)
hb = Heartbeat(leases, lease, interval=float(ttl) / 3, on_lost=lambda: None).start()
claim = store.claim(sweep, todo, lease=lease, worker="old", now=time.time())
print(json.dumps({"claim": claim, "fence": lease.fence}), flush=True)
print("READY", flush=True)
sys.stdin.readline()
ok = store.write(sweep, todo, {"status": "failed", "exit_code": 99, "worker": "old"}, lease=lease)
deadline = time.monotonic() + 5
while not hb.lost and time.monotonic() < deadline:
    time.sleep(0.01)
print(json.dumps({"write": ok, "lost": hb.lost}), flush=True)
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
    r: redis.Redis, redis_url: str
) -> None:
    ttl = 0.5
    store = CheckpointStore(r, K)
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
        assert first["claim"] == "claimed"
        assert lines.next() == "READY"
        proc.send_signal(signal.SIGSTOP)
        stopped = True
        mgr = LeaseManager(r, K, ttl=10)
        assert wait_for(lambda: mgr.holder("api", 0) is None)  # its heartbeat is frozen too
        new = mgr.acquire("api", timeout=5)
        assert new is not None and new.fence > first["fence"]
        assert store.claim("S", "T1", lease=new, worker="new", now=time.time()) == "taken_over"

        proc.send_signal(signal.SIGCONT)
        stopped = False
        assert proc.stdin is not None
        proc.stdin.write("write\n")
        proc.stdin.flush()
        result = json.loads(lines.next())
        assert result == {"write": False, "lost": True}

        cp = store.get("S", "T1")
        assert cp is not None
        assert cp["status"] == "running" and cp["worker"] == "new"
        assert cp["token"] == new.token and cp["fence"] == new.fence and cp["attempts"] == 2
        assert store.write("S", "T1", {"status": "succeeded", "exit_code": 0}, lease=new)
        assert mgr.release(new)
        assert proc.wait(timeout=10) == 0
    finally:
        if stopped:
            proc.send_signal(signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
