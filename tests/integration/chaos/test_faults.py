"""Faults with real `coord worker` processes: a worker SIGKILLed or frozen
(SIGSTOP) mid-todo, and a todo flooding its output.

The invariants from DESIGN.md under test: a dead worker's todo process group
dies with it and the todo runs again once its lease expires (not after the
broker's visibility timeout); a frozen lease holder is overtaken and, when it
wakes, kills its todo and writes nothing; output never costs worker memory.
"""

from __future__ import annotations

import signal
import threading
import time

import psutil
import pytest

from tests.integration.helpers import (
    LEASE_TTL,
    PLAN,
    Cluster,
    T,
    read_lines,
    todo_processes,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _gone(procs: list[psutil.Process]) -> bool:
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


def _cmdlines(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            out.append(" ".join(p.cmdline()))
        except psutil.Error:
            pass
    return out


def test_sigkilled_worker_takes_its_todo_down_and_the_todo_reruns_once_after_the_lease_expires(
    cluster: Cluster,
) -> None:
    cluster.write_catalog({"a": 1, "b": 1}, [
        T("TODO-001", "a", "echo $PPID >> $COORD_TODO_ID.starts; sleep 4; echo done >> $COORD_TODO_ID.marker"),
        T("TODO-002", "b", "echo ran >> $COORD_TODO_ID.marker", blocked_by=["TODO-001"]),
    ])
    # b's worker stays up: its supervisor thread is what notices the lost todo.
    wa, _wb = cluster.start_workers(["a", "b"])
    sid = cluster.start_sweep()
    cp = cluster.wait_todo(sid, "TODO-001", {"running"})
    assert cp["worker"].startswith(wa.hostname_prefix)
    procs = wait_until(
        lambda: [p for p in todo_processes(sid, "TODO-001")
                 if any("sleep 4" in c for c in _cmdlines([p]))],
        10, "TODO-001's `sleep 4`")

    wa.signal(signal.SIGKILL)  # the worker process alone; its todo is in another group
    killed_at = time.time()
    wa.proc.wait(timeout=10)
    # The guard kills the todo's whole process group as the worker's pipe closes.
    # Within 2 s: well before its `sleep 4` would have ended by itself.
    wait_until(lambda: not todo_processes(sid, "TODO-001"), 2,
               f"TODO-001's processes to die with their worker (left: {_cmdlines(todo_processes(sid))})")
    assert _gone(procs)

    wa2 = cluster.start_worker("a")
    ready_at = time.time()
    st = cluster.wait_sweep(sid, timeout=60)
    assert st["status"] == "succeeded", st
    t1 = st["todos"]["TODO-001"]
    assert t1["worker"].startswith(wa2.hostname_prefix), t1
    assert t1["attempts"] == 2
    d = cluster.repo_dir("a")
    assert read_lines(d / "TODO-001.marker") == ["done"]  # finished exactly once
    assert read_lines(d / "TODO-001.starts") == [str(wa.pid), str(wa2.pid)]
    assert read_lines(cluster.repo_dir("b") / "TODO-002.marker") == ["ran"]

    evs = [e for e in cluster.events(sid) if e.get("todo_id") == "TODO-001"]
    lost = [e for e in evs if e["kind"] == "todo.lost"]
    assert lost and lost[0]["worker"].startswith(wa.hostname_prefix), evs
    starts = [e for e in evs if e["kind"] == "todo.started"]
    assert len(starts) == 2 and [e["kind"] for e in evs].count("todo.succeeded") == 1
    # Re-run as soon as the lease expired, not after the broker's visibility
    # timeout (over an hour): lost within TTL + a few supervisor passes, and
    # started again right after a worker was there to take it.
    assert lost[0]["ts"] - killed_at < LEASE_TTL + 3, lost[0]["ts"] - killed_at
    assert starts[1]["ts"] - max(ready_at, lost[0]["ts"]) < 5
    assert starts[1]["ts"] - killed_at < 20


def test_frozen_lease_holder_is_overtaken_and_its_late_result_is_refused(cluster: Cluster) -> None:
    # Long enough that the frozen holder's own todo is still running when it wakes.
    cluster.write_catalog({"a": 1}, [
        T("TODO-001", "a", "echo $PPID >> $COORD_TODO_ID.starts; sleep 6; echo $PPID >> $COORD_TODO_ID.marker"),
    ])
    w1, w2 = cluster.start_workers(["a", "a"])
    sid = cluster.start_sweep()
    cp = cluster.wait_todo(sid, "TODO-001", {"running"})
    holder, other = (w1, w2) if cp["worker"].startswith(w1.hostname_prefix) else (w2, w1)
    assert cp["worker"].startswith(holder.hostname_prefix)
    first = wait_until(lambda: todo_processes(sid, "TODO-001"), 10, "the holder's todo processes")
    fence = cp["fence"]

    holder.signal(signal.SIGSTOP)
    # Its last renewal was up to a heartbeat ago: the lease dies when its PTTL runs out.
    expires_at = time.time() + cluster.rt.redis.pttl(cp["lease_key"]) / 1000
    stopped_at = time.time()
    try:
        # The supervisor (the other worker's thread) sees the lease expire and
        # re-dispatches; the other worker claims it with a higher fence.
        def taken_over() -> dict | None:
            c = cluster.checkpoint(sid, "TODO-001")
            ok = c.get("status") == "running" and str(c.get("worker", "")).startswith(other.hostname_prefix)
            return c if ok else None

        cp2 = wait_until(taken_over, LEASE_TTL + 8, "the other worker to take TODO-001 over")
        assert time.time() >= expires_at - 0.05, "taken over while the holder's lease was alive"
        assert time.time() - stopped_at < LEASE_TTL + 8
        assert int(cp2["fence"]) > int(fence)
    finally:
        holder.signal(signal.SIGCONT)
    woke_at = time.time()
    # Awake, the holder's heartbeat fails: it kills its todo's group at once
    # (its `sleep 6` would otherwise end and write the marker).
    wait_until(lambda: _gone(first), 3, f"the holder's todo to be killed (left: {_cmdlines(first)})")
    assert time.time() - woke_at < 3

    st = cluster.wait_sweep(sid, timeout=30)
    assert st["status"] == "succeeded", st
    t1 = st["todos"]["TODO-001"]
    assert t1["worker"].startswith(other.hostname_prefix), t1
    d = cluster.repo_dir("a")
    assert read_lines(d / "TODO-001.starts") == [str(holder.pid), str(other.pid)]
    assert read_lines(d / "TODO-001.marker") == [str(other.pid)]  # only the winner's side effect
    evs = [e for e in cluster.events(sid) if e.get("todo_id") == "TODO-001"]
    lost = [e for e in evs if e["kind"] == "todo.lost"]
    assert any(e.get("reason") == "lease expired" for e in lost), evs  # the supervisor's
    assert any(e.get("reason") == "lease lost" and e["worker"].startswith(holder.hostname_prefix)
               for e in lost), evs  # the holder's own, after waking
    done = [e for e in evs if e["kind"] in ("todo.succeeded", "todo.failed")]
    assert len(done) == 1 and done[0]["worker"].startswith(other.hostname_prefix), done
    assert holder.alive()  # it lost the todo, not its life


def test_a_todo_printing_100_mb_costs_the_worker_no_memory(cluster: Cluster) -> None:
    size = 100_000_000
    cluster.write_catalog({"a": 1}, [
        T("TODO-001", "a", "true", plan="PLAN-002"),
        T("TODO-002", "a", f"yes | head -c {size}; echo; echo tail-marker; sleep 0.3"),
    ], plans=(PLAN, "PLAN-002"))
    w = cluster.start_worker("a")
    # Warm up: the first todo imports and caches what every later one uses.
    assert cluster.cli_json("plan", "sweep", "PLAN-002", "--wait")["status"] == "succeeded"
    idle = []
    for _ in range(5):
        idle.append(w.rss())
        time.sleep(0.05)
    baseline = max(idle)

    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                samples.append(w.rss())
            except psutil.Error:
                return
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        sid = cluster.start_sweep()
        st = cluster.wait_sweep(sid, timeout=60)
    finally:
        stop.set()
        sampler.join(timeout=5)
    assert st["status"] == "succeeded", st
    assert len(samples) >= 20
    growth = max(samples) - baseline
    print(f"worker RSS: baseline {baseline / 2**20:.1f} MiB, peak growth {growth / 2**20:.2f} MiB "
          f"over {len(samples)} samples")
    assert growth < 64 * 2**20, f"worker RSS grew {growth / 2**20:.1f} MiB over {baseline / 2**20:.1f} MiB"

    cp = cluster.checkpoint(sid, "TODO-002")
    assert cp["stdout_bytes"] == size + len("\ntail-marker\n")
    tail = st["todos"]["TODO-002"]["output_tail"]
    # COORD_OUTPUT_TAIL_BYTES (64 KiB) of each stream is kept, plus a one-line label.
    label = len(f"--- stdout (last 65536 chars of {size + 13} bytes) ---\n")
    assert len(tail.encode()) <= 64 * 1024 + label and tail == cp["output_tail"]
    assert len(tail.encode()) > 4096  # not the 4 KiB it used to keep
    assert tail.rstrip().endswith("tail-marker")
    assert f"of {size + 13} bytes" in tail  # says it is a tail of how much
