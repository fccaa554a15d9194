"""Faults against a real redis-server and real `coord worker` processes.

Each test breaks one thing while a sweep runs and checks what DESIGN.md
promises: the sweep ends succeeded (or, where Redis lost its data, with a clear
status and reason), no todo runs twice at once, every re-run is explained by a
`todo.lost` event, and every worker process is still alive. Recovery times are
printed (`-s`) for the README's guarantee table.
"""

from __future__ import annotations

from coordination.dispatch import CeleryDispatcher
from coordination.messages import BROKER_PRIORITY
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.chaos.conftest import OwnRedis
from tests.integration.chaos.proxy import Proxy
from tests.integration.helpers import Cluster, T, read_lines, wait_until

pytestmark = pytest.mark.timeout(240)

LOGGED = "echo start $(date +%s.%N) >> $COORD_TODO_ID.log; sleep {s}; echo end $(date +%s.%N) >> $COORD_TODO_ID.log"


def runs(d: Path, tid: str) -> tuple[int, int]:
    """(starts, ends) of a LOGGED todo."""
    lines = read_lines(d / f"{tid}.log")
    return (sum(1 for x in lines if x.startswith("start")), sum(1 for x in lines if x.startswith("end")))


def spans(d: Path, tid: str) -> list[tuple[float, float | None]]:
    out: list[tuple[float, float | None]] = []
    for x in read_lines(d / f"{tid}.log"):
        kind, ts = x.split()
        if kind == "start":
            out.append((float(ts), None))
        elif out:
            out[-1] = (out[-1][0], float(ts))
    return out


def lost_events(c: Cluster, sid: str, tid: str) -> list[dict[str, Any]]:
    """One per lost run, as the supervisor or a taking-over worker records it (the
    lost holder's own "lease lost" line, when it gets through, is the same run)."""
    return [e for e in c.events(sid) if e["kind"] == "todo.lost" and e.get("todo_id") == tid
            and e.get("reason") != "lease lost"]


def report(what: str, seconds: float) -> None:
    print(f"\nRECOVERY {what}: {seconds:.1f} s")


# -- workers ------------------------------------------------------------------------------
def test_sigterm_mid_todo_lets_it_finish_and_the_worker_exits_cleanly(fast: Cluster) -> None:
    fast.write_catalog({"a": 1}, [T("TODO-001", "a", LOGGED.format(s=2))])
    (w,) = fast.start_workers(["a"])
    sid = fast.start_sweep()
    fast.wait_todo(sid, "TODO-001", {"running"})
    w.signal(signal.SIGTERM)  # Celery's warm shutdown: running tasks finish first
    assert w.proc.wait(timeout=60) == 0, w.log_text()[-3000:]
    st = fast.wait_sweep(sid, timeout=30)
    assert st["status"] == "succeeded", st
    assert runs(fast.repo_dir("a"), "TODO-001") == (1, 1)


# -- Redis restarts -----------------------------------------------------------------------
@pytest.mark.parametrize("own_redis", [True], indirect=True, ids=["aof"])
def test_redis_restart_with_aof_mid_todo(chaos: Cluster, own_redis: OwnRedis) -> None:
    chaos.env["COORD_LEASE_TTL"] = "8"  # longer than the outage: the todo rides it out
    chaos.write_catalog({"a": 1}, [T("TODO-001", "a", LOGGED.format(s=4))])
    (w,) = chaos.start_workers(["a"])
    waiter = chaos.popen("plan", "sweep", "PLAN-001", "--wait", "--json")
    sid = wait_until(lambda: (chaos.rt.checkpoints.list_sweeps(1) or [{}])[0].get("id"), 30, "the sweep")
    chaos.wait_todo(sid, "TODO-001", {"running"})
    own_redis.kill()
    killed = time.time()
    time.sleep(2)  # the outage under test: Redis is down for 2 s
    own_redis.start()
    try:
        out, err = waiter.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        r = own_redis.client()
        print("DEBUG keys", sorted(r.keys("*"))[:50])
        print("DEBUG cp", chaos.checkpoint(sid, "TODO-001"))
        print("DEBUG events", [(e["kind"], e.get("reason")) for e in chaos.events(sid)])
        print("DEBUG workers", r.zrange("coord:workers", 0, -1))
        raise
    assert waiter.returncode == 0, err[-3000:]
    st = json.loads(out)
    assert st["status"] == "succeeded", st
    assert runs(chaos.repo_dir("a"), "TODO-001") == (1, 1)  # ran once, undisturbed
    assert w.alive()
    report("Redis SIGKILL + restart (AOF), sweep done after", time.time() - killed)
    # The same worker process goes on consuming.
    sid2 = chaos.cli_json("todo", "run", "TODO-001")["sweep_id"]
    st2 = chaos.wait_sweep(sid2, timeout=60)
    assert st2["status"] == "succeeded" and st2["todos"]["TODO-001"]["worker"].startswith(w.hostname_prefix)


@pytest.mark.parametrize("own_redis", [False], indirect=True, ids=["no-aof"])
def test_redis_restart_without_persistence_mid_todo(chaos: Cluster, own_redis: OwnRedis) -> None:
    chaos.write_catalog({"a": 1}, [T("TODO-001", "a", LOGGED.format(s=3))])
    (w,) = chaos.start_workers(["a"])
    waiter = chaos.popen("plan", "sweep", "PLAN-001", "--wait")
    sid = wait_until(lambda: (chaos.rt.checkpoints.list_sweeps(1) or [{}])[0].get("id"), 30, "the sweep")
    chaos.wait_todo(sid, "TODO-001", {"running"})
    own_redis.kill()
    time.sleep(2)  # the outage under test
    own_redis.start()  # empty: the sweep's record, checkpoints and queue are gone
    restarted = time.time()
    _, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 1, err[-3000:]
    assert "vanished from Redis" in err and "Traceback" not in err, err[-3000:]
    report("Redis restart without persistence, waiting CLI told after", time.time() - restarted)
    assert w.alive()
    sid2 = chaos.cli_json("todo", "run", "TODO-001")["sweep_id"]  # the same worker takes new work
    st = chaos.wait_sweep(sid2, timeout=60)
    assert st["status"] == "succeeded" and st["todos"]["TODO-001"]["worker"].startswith(w.hostname_prefix)


# -- the network --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["blackhole", "reset"])
def test_worker_cut_from_redis_past_its_lease_ttl(
    chaos: Cluster, proxy: Proxy, mode: str
) -> None:
    chaos.write_catalog({"a": 1}, [T("TODO-001", "a", LOGGED.format(s=4))])
    (w,) = [chaos.start_worker("a", redis_url=proxy.url)]
    waiter = chaos.popen("plan", "sweep", "PLAN-001", "--wait", "--json")  # supervises, direct
    sid = wait_until(lambda: (chaos.rt.checkpoints.list_sweeps(1) or [{}])[0].get("id"), 30, "the sweep")
    chaos.wait_todo(sid, "TODO-001", {"running"})
    proxy.cut(mode)
    cut = time.time()
    wait_until(lambda: lost_events(chaos, sid, "TODO-001"), 30, "the lost todo to be noticed")
    # The cut lasts 10 s in all (dropped packets), or 1 s past the lease TTL (resets).
    time.sleep(max(0.0, cut + 10 - time.time()) if mode == "blackhole" else 1)
    proxy.restore()
    out, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err[-3000:] + w.log_text()[-3000:]
    assert json.loads(out)["status"] == "succeeded"
    report(f"worker cut from Redis ({mode}), sweep done after", time.time() - cut)
    d = chaos.repo_dir("a")
    starts, ends = runs(d, "TODO-001")
    # Finished once; every extra start is a lost run (a run lost before its
    # command began writes no start at all).
    assert ends == 1 and 1 <= starts <= 1 + len(lost_events(chaos, sid, "TODO-001"))
    s = spans(d, "TODO-001")
    # The cut run was killed before the re-run started: never two at once.
    assert all(b[0] >= (a[1] or a[0]) for a, b in zip(s, s[1:])), s
    assert w.alive()


def test_50ms_latency_between_workers_and_redis(chaos: Cluster, proxy: Proxy) -> None:
    proxy.latency(0.05)
    chaos.write_catalog({"a": 2, "b": 1}, [
        T("TODO-001", "a", "true"), T("TODO-002", "a", "true"),
        T("TODO-003", "b", "true", blocked_by=["TODO-001"]),
        T("TODO-004", "a", "true", blocked_by=["TODO-003"]),
    ])
    for repo in ("a", "b"):
        chaos.start_worker(repo, redis_url=proxy.url, wait=False)
    for w in chaos.workers:
        chaos.wait_ready(w, timeout=60)
    t0 = time.time()
    st = chaos.wait_sweep(chaos.start_sweep(), timeout=120)
    assert st["status"] == "succeeded", st
    print(f"\n4 todos over 3 levels with 50 ms added per hop: {time.time() - t0:.1f} s")


# -- messages -----------------------------------------------------------------------------
def test_a_deleted_queued_message_is_sent_again(fast: Cluster) -> None:
    fast.write_catalog({"a": 1}, [T("TODO-001", "a", "echo ran >> ran")])
    sid = fast.start_sweep()  # no worker yet: the message waits in the queue
    # A medium-priority todo's message sits in the queue's priority-6 list.
    key = fast.rt.keys.broker_queue(fast.rt.keys.repo_queue("a"), BROKER_PRIORITY["medium"])
    wait_until(lambda: fast.rt.redis.llen(key) == 1, 10, "the message in its queue")
    fast.rt.redis.delete(key)
    deleted = time.time()
    fast.start_workers(["a"])
    st = fast.wait_sweep(sid, timeout=60)
    assert st["status"] == "succeeded", st
    lost = lost_events(fast, sid, "TODO-001")
    assert [e["reason"] for e in lost] == ["message lost"]
    assert read_lines(fast.repo_dir("a") / "ran") == ["ran"]
    report("queued message deleted (COORD_LOST_AFTER=3), re-sent after", lost[0]["ts"] - deleted)


def test_garbage_on_a_queue_is_set_aside_and_the_worker_goes_on(fast: Cluster) -> None:
    fast.write_catalog({"a": 1}, [T("TODO-001", "a", "true")])
    (w,) = fast.start_workers(["a"])
    key = fast.rt.keys.broker_queue(fast.rt.keys.repo_queue("a"))
    fast.rt.redis.lpush(key, "this is not json", '{"body": 1}', "\x00\xff")
    wait_until(lambda: fast.rt.redis.llen(key) == 0, 10, "the worker to read them")
    st = fast.wait_sweep(fast.start_sweep(), timeout=60)
    assert st["status"] == "succeeded" and w.alive()
    letters = fast.cli_json("dead-letters")
    assert len(letters) == 3 and all(x["queue"] == "coord.repo.a" for x in letters)
    assert {x["raw"] for x in letters} >= {"this is not json", '{"body": 1}'}


def test_a_duplicate_message_runs_the_todo_once(fast: Cluster) -> None:
    fast.write_catalog({"a": 2}, [T("TODO-001", "a", "echo ran >> ran; sleep 1")])
    fast.start_workers(["a"])
    sid = fast.start_sweep()
    from coordination.sweeps.sending import send as _send
    from coordination.sweeps.spec_store import load_spec
    from workers.app import create_app

    fast.rt.dispatcher = CeleryDispatcher(create_app(fast.rt.settings), fast.rt.keys)
    spec = load_spec(fast.rt, sid)
    _send(fast.rt, spec, ["TODO-001"])  # the same task id, sent twice more
    _send(fast.rt, spec, ["TODO-001"])
    st = fast.wait_sweep(sid, timeout=60)
    assert st["status"] == "succeeded"
    assert read_lines(fast.repo_dir("a") / "ran") == ["ran"]


def test_poison_todo_fails_after_three_lost_runs(fast: Cluster) -> None:
    fast.write_catalog({"a": 1, "b": 1}, [
        T("TODO-001", "a", "echo $PPID >> starts; kill -9 $PPID; sleep 5"),
        T("TODO-002", "b", "true", blocked_by=["TODO-001"]),
    ])
    fast.start_workers(["b"])  # its supervisor notices the lost runs
    sid = fast.start_sweep()
    t0 = time.time()
    deadline = t0 + 120
    while time.time() < deadline:  # a process manager restarting the dying worker
        rec = fast.rt.checkpoints.get_sweep(sid) or {}
        if rec.get("status") not in ("queued", "running"):
            break
        if not any(w.alive() for w in fast.workers if w.repo == "a"):
            fast.start_worker("a", wait=False)  # it may die before it says ready
        time.sleep(0.2)
    st = fast.status(sid)
    assert st["status"] == "failed", st
    t1 = st["todos"]["TODO-001"]
    assert t1["status"] == "failed" and "its worker died 3 times while running it" in t1["reason"]
    assert st["todos"]["TODO-002"]["status"] == "skipped"
    assert len(read_lines(fast.repo_dir("a") / "starts")) == 3
    report("poison todo (3 lost runs) ended failed after", time.time() - t0)


def test_a_stuck_events_reader_slows_nothing(fast: Cluster) -> None:
    n = 150
    fast.write_catalog({"a": 4}, [T(f"TODO-{i:03d}", "a", "true") for i in range(1, n + 1)])
    fast.start_workers(["a"])
    stuck = fast.popen("events", "--follow")  # stdout is a pipe nobody reads
    t0 = time.time()
    st = fast.wait_sweep(fast.start_sweep(), timeout=120)
    assert st["status"] == "succeeded"
    assert stuck.poll() is None  # still blocked on its full pipe, harmlessly
    clients = fast.rt.redis.client_list()
    assert max(int(c.get("omem", 0)) for c in clients) < 1 << 20, clients
    print(f"\n{n} todos with a stuck `events --follow`: {time.time() - t0:.1f} s")
    stuck.kill()
    stuck.communicate(timeout=10)
    _ = subprocess  # (the reader is a real subprocess; see Cluster.popen)


# -- soak ---------------------------------------------------------------------------------
SOAK = "echo start $(date +%s.%N) $PPID >> $COORD_TODO_ID.log; sleep 0.1; echo end $(date +%s.%N) >> $COORD_TODO_ID.log"


@pytest.mark.timeout(420)
def test_soak_1000_todos_with_a_worker_sigkilled_every_few_seconds(fast: Cluster) -> None:
    import random

    repos = {"a": 2, "b": 2, "c": 1}
    names = list(repos)
    n = 1000
    fast.write_catalog(repos, [T(f"TODO-{i:04d}", names[i % 3], SOAK) for i in range(n)])
    fast.start_workers(names, timeout=60)
    sid = fast.start_sweep()
    t0 = time.time()
    rng = random.Random(7)
    killed: dict[int, float] = {}  # worker pid -> when it was killed
    next_kill = t0 + 3
    while time.time() < t0 + 300:
        rec = fast.rt.checkpoints.get_sweep(sid) or {}
        if rec.get("status") not in ("queued", "running"):
            break
        if time.time() >= next_kill:
            live = [w for w in fast.workers if w.alive()]
            victim = rng.choice(live)
            victim.signal(signal.SIGKILL)
            killed[victim.pid] = time.time()
            victim.proc.wait(timeout=10)
            fast.start_worker(victim.repo, wait=False)
            next_kill = time.time() + rng.uniform(2, 4)
        time.sleep(0.1)
    took = time.time() - t0
    st = fast.status(sid)
    assert st["status"] == "succeeded", {k: v for k, v in st.items() if k != "todos"}

    # No repo ever ran more todos at once than its concurrency (a killed run ends
    # when its worker was killed: the guard takes its process group down with it).
    for repo, conc in repos.items():
        points: list[tuple[float, int]] = []
        for tid, v in st["todos"].items():
            if v["repo"] != repo:
                continue
            for line_start, line_end in _soak_spans(fast.repo_dir(repo), tid, killed):
                points += [(line_start, 1), (line_end, -1)]
        points.sort(key=lambda p: (p[0], p[1]))
        cur = peak = 0
        for _, d in points:
            cur += d
            peak = max(peak, cur)
        assert peak <= conc, (repo, peak, conc)

    # Every re-run is counted and explained.
    events = fast.events(sid)
    lost: dict[str, int] = {}
    for e in events:
        if e["kind"] == "todo.lost" and e.get("reason") != "lease lost":
            lost[e["todo_id"]] = lost.get(e["todo_id"], 0) + 1
    reruns = 0
    for tid, v in st["todos"].items():
        starts = len(_soak_spans(fast.repo_dir(v["repo"]), tid, killed))
        assert starts >= 1
        assert starts - 1 <= lost.get(tid, 0), (tid, starts, lost.get(tid), v)
        reruns += starts - 1
    assert all(w.alive() for w in fast.workers if w.pid not in killed)
    print(f"\nSOAK {n} todos over 3 repos: {took:.1f} s, {len(killed)} workers SIGKILLed, "
          f"{reruns} re-runs, {sum(lost.values())} lost runs/messages re-sent "
          f"({sum(1 for e in events if e.get('reason') == 'message lost')} lost messages)")


def _soak_spans(d: Path, tid: str, killed: dict[int, float]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    open_start: tuple[float, int] | None = None
    for line in read_lines(d / f"{tid}.log"):
        parts = line.split()
        if parts[0] == "start":
            if open_start is not None:  # the previous run never ended: its worker was killed
                out.append((open_start[0], killed.get(open_start[1], open_start[0])))
            open_start = (float(parts[1]), int(parts[2]))
        elif open_start is not None:
            out.append((open_start[0], float(parts[1])))
            open_start = None
    if open_start is not None:
        out.append((open_start[0], killed.get(open_start[1], open_start[0])))
    return out
