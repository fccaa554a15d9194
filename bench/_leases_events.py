"""bench/sweep.py's `leases` and `events` parts: coord's lease (a todo's start and
finish, its renewal) against redis-py's Lock, and an event's emit -> follow latency
against PUBLISH -> SUBSCRIBE, on the same redis-server."""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from typing import Any

from _procs import NAMESPACE

def leases(url: str, m: int) -> dict[str, float]:
    """A lease as workers hold one: granted with the todo's start
    (``Transitions.start``: the slot with the next fence, the checkpoint claimed,
    ``todo.started``) and given back with its finish (``Transitions.finish``: the
    fenced outcome, the slot released, ``todo.succeeded``); and its heartbeat
    (``LeaseManager.extend``). Baselines: redis-py's Lock acquire + release, and
    Lock.extend."""
    import itertools

    from redis.lock import Lock

    from coordination.connection.client import get_redis
    from coordination.keys import Keys
    from coordination.runtime.checkpoints import CheckpointStore
    from coordination.runtime.leases import LeaseManager
    from coordination.runtime.transitions import Transitions
    from coordination.settings import Settings
    from coordination.status import TodoStatus

    r = get_redis(Settings(redis_url=f"{url}/0", namespace=NAMESPACE))
    keys = Keys(NAMESPACE)
    sweep_id, repo = "leasebench", "leasebench"
    CheckpointStore(r, keys).create_sweep(
        sweep_id, {"plan": "PLAN-BENCH", "strategy": "eager", "status": "running"})
    # TTLs far above a round's length: on a loaded machine 2 x M pairs can take longer
    # than a short TTL, and the held lease or lock would expire before it is renewed
    ttl = 600.0
    tr = Transitions(r, keys, lease_ttl=ttl)
    lm = LeaseManager(r, keys, ttl=ttl)
    todo_ids = (f"T{i}" for i in itertools.count())

    def coord_once() -> None:
        todo = next(todo_ids)
        st = tr.start(sweep_id, todo, repo=repo, concurrency=1, preds=[], worker="bench")
        assert st.verdict == "started" and st.lease is not None, st
        done = tr.finish(sweep_id, todo, lease=st.lease, status=TodoStatus.succeeded,
                         fields={"exit_code": 0}, event={"exit_code": 0})
        assert done.ok, done

    held: Any = None

    def coord_renew() -> None:
        assert lm.extend(held)

    lock = Lock(r, f"{NAMESPACE}:rawlock", timeout=ttl)

    def raw_once() -> None:
        assert lock.acquire(blocking=False)
        lock.release()

    renewed = Lock(r, f"{NAMESPACE}:rawlock-renew", timeout=ttl)

    def raw_renew() -> None:
        assert renewed.extend(ttl, replace_ttl=True)

    def rate(fn: Any) -> float:
        for _ in range(min(100, m)):  # warm-up (EVALSHA cache, connection)
            fn()
        t0 = time.perf_counter()
        for _ in range(m):
            fn()
        return m / (time.perf_counter() - t0)

    # interleave two rounds each so a noisy neighbour hits both alike
    c1, b1, c2, b2 = rate(coord_once), rate(raw_once), rate(coord_once), rate(raw_once)
    held = tr.start(sweep_id, "renewed", repo=f"{repo}-renew", concurrency=1, preds=[],
                    worker="bench").lease
    assert held is not None
    assert renewed.acquire(blocking=False)
    e1, f1, e2, f2 = rate(coord_renew), rate(raw_renew), rate(coord_renew), rate(raw_renew)
    assert lm.release(held)
    renewed.release()
    return {"coord_ops_s": max(c1, c2), "raw_ops_s": max(b1, b2),
            "coord_renew_s": max(e1, e2), "raw_renew_s": max(f1, f2)}


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def _collect(recv: Any, k: int, warm: int, send: Any, interval: float) -> list[float]:
    """Run `recv` (returns latencies) in a thread while `send(i)` sends k events."""
    got: list[float] = []
    ready = threading.Event()
    t = threading.Thread(target=lambda: got.extend(recv(ready)), daemon=True)
    t.start()
    ready.wait(10)
    time.sleep(0.2)  # let the reader block in its read
    for i in range(k):
        send(i)
        time.sleep(interval)
    t.join(timeout=60)
    return [x * 1000 for x in got[warm:]]


def events(url: str, k: int, interval: float = 0.002) -> dict[str, float]:
    import redis

    from coordination.keys import Keys
    from coordination.runtime.events import EventLog

    keys = Keys(NAMESPACE)
    sweep_id = f"EVBENCH-{os.getpid()}-{time.time_ns()}"
    warm = min(50, k // 10)
    # separate clients (own pools), like a worker and a CLI
    w = redis.Redis.from_url(f"{url}/0", decode_responses=True)
    c = redis.Redis.from_url(f"{url}/0", decode_responses=True)
    writer, reader = EventLog(w, keys), EventLog(c, keys)
    total = k + warm

    def coord_recv(ready: threading.Event) -> list[float]:
        lat: list[float] = []
        ready.set()
        deadline = time.time() + 60
        for ev in reader.follow(sweep_id=sweep_id, block_ms=100,
                                stop=lambda: len(lat) >= total or time.time() > deadline):
            lat.append(time.time() - ev.data["sent"])
            if len(lat) >= total:
                break
        return lat

    def coord_send(i: int) -> None:
        writer.emit("todo.started", sweep_id=sweep_id, todo_id=f"TODO-{i}", sent=time.time())

    coord_lat = _collect(coord_recv, total, warm, coord_send, interval)

    channel = f"{NAMESPACE}:evbench"

    def raw_recv(ready: threading.Event) -> list[float]:
        lat: list[float] = []
        ps = c.pubsub(ignore_subscribe_messages=True)
        ps.subscribe(channel)
        while ps.get_message(timeout=1.0) is None and not ps.subscribed:
            pass
        ready.set()
        deadline = time.time() + 60
        while len(lat) < total and time.time() < deadline:
            msg = ps.get_message(timeout=1.0)
            if msg and msg["type"] == "message":
                lat.append(time.time() - json.loads(msg["data"])["sent"])
        ps.close()
        return lat

    def raw_send(i: int) -> None:
        w.publish(channel, json.dumps({"kind": "todo.started", "todo_id": f"TODO-{i}", "sent": time.time()}))

    raw_lat = _collect(raw_recv, total, warm, raw_send, interval)
    w.close()
    c.close()
    if len(coord_lat) < k or len(raw_lat) < k:
        raise RuntimeError(f"events lost: coord got {len(coord_lat)}/{k}, pub/sub {len(raw_lat)}/{k}")
    return {"coord_p50_ms": statistics.median(coord_lat), "coord_p99_ms": pct(coord_lat, 0.99),
            "raw_p50_ms": statistics.median(raw_lat), "raw_p99_ms": pct(raw_lat, 0.99)}
