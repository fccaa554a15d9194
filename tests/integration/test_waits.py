"""Waits you can see and that end, with real workers on the session's redis-server.

- While one todo holds the only slot of a shared resource, `coord resources --graph`
  from another process names the waiter and its holder.
- The holder's worker is SIGKILLed while the other waits on it: the supervision pass
  (on the surviving worker) frees the slot long before the lease would expire
  (COORD_LEASE_TTL is 120 s here), the waiter runs, and once a worker serves the dead
  holder's repo again its todo runs again and the sweep ends.
- A live holder whose liveness record a keyless writer keeps deleting is not gone: its
  lease is renewed all along, nothing is broken, its todo runs once.
- A todo that waits longer than its ``wait_timeout:`` (or `plan sweep --wait-timeout`)
  ends failed, naming what it waited for and who held it.
"""

from __future__ import annotations

import time

import pytest

from tests.integration.helpers import Cluster, T, wait_until

pytestmark = pytest.mark.timeout(180)


def _graph_with_a_waiter(cluster: Cluster) -> dict:
    def waiting() -> dict | None:
        doc = cluster.cli_json("resources", "--graph")
        edges = [e for e in doc["edges"] if e["waiting_for"] == "resource:db"]
        return doc if edges and edges[0]["holders"] and edges[0]["holders"][0]["todo_id"] else None

    return wait_until(waiting, 60, "a todo waiting for the db slot and its holder")


def test_a_holder_killed_while_a_todo_waits_on_it_is_broken_and_the_sweep_ends(
        cluster: Cluster) -> None:
    cluster.env["COORD_LEASE_TTL"] = "120"  # the break must not be the lease expiring
    # (gone: no liveness record, and the lease two beats unrenewed: 10 s here)
    cluster.env["COORD_HEARTBEAT"] = "5"
    once = cluster.root / "ran-once"
    hold = f"if [ -f {once} ]; then exit 0; fi; touch {once}; sleep 300"
    cluster.write_catalog({"api": 1, "web": 1}, [
        T("TODO-001", "api", hold, resources=["db"], timeout=600),
        T("TODO-002", "web", hold, resources=["db"], timeout=600),
    ], resources={"db": 1})
    workers = {w.repo: w for w in cluster.start_workers(["api", "web"])}
    sid = cluster.start_sweep()
    doc = _graph_with_a_waiter(cluster)
    (edge,) = [e for e in doc["edges"] if e["waiting_for"] == "resource:db"]
    (holder,) = edge["holders"]
    assert edge["sweep_id"] == sid and holder["sweep_id"] == sid
    assert {edge["todo_id"], holder["todo_id"]} == {"TODO-001", "TODO-002"}
    assert holder["gone"] is False and doc["cycles"] == []
    held_repo = "api" if holder["todo_id"] == "TODO-001" else "web"
    waiter = edge["todo_id"]

    killed_at = time.monotonic()
    workers[held_repo].kill()
    # The waiter runs (the marker exists now, so its command exits 0) well before the
    # dead holder's 120 s lease would have expired.
    cluster.wait_todo(sid, waiter, {"succeeded"}, timeout=60)
    assert time.monotonic() - killed_at < 60
    lost = [e for e in cluster.events(sid) if e["kind"] == "todo.lost"
            and e.get("todo_id") == holder["todo_id"]]
    assert lost and "is gone while" in str(lost[0]["reason"]) and waiter in str(lost[0]["reason"])
    # A worker for the dead holder's repo again: its todo runs again and the sweep ends.
    cluster.start_worker(held_repo)
    assert cluster.wait_sweep(sid, timeout=90)["status"] == "succeeded"
    after = cluster.cli_json("resources", "--graph")
    assert after["edges"] == []


def test_deleting_a_live_holders_liveness_record_never_runs_its_todo_twice(
        cluster: Cluster) -> None:
    import redis

    cluster.env["COORD_LEASE_TTL"] = "10"
    starts, go = cluster.root / "starts", cluster.root / "go"
    hold = f"echo $COORD_TODO_ID >> {starts}; while [ ! -f {go} ]; do sleep 0.05; done"
    cluster.write_catalog({"api": 1, "web": 1}, [
        T("TODO-001", "api", hold, resources=["db"], timeout=120),
        T("TODO-002", "web", hold, resources=["db"], timeout=120),
    ], resources={"db": 1})
    workers = {w.repo: w for w in cluster.start_workers(["api", "web"])}
    sid = cluster.start_sweep()
    doc = _graph_with_a_waiter(cluster)
    (edge,) = [e for e in doc["edges"] if e["waiting_for"] == "resource:db"]
    (holder,) = edge["holders"]
    held_repo = "api" if holder["todo_id"] == "TODO-001" else "web"
    raw = redis.Redis.from_url(cluster.redis_url)
    name = next(w.name for w in cluster.rt.workers.live()
                if w.name.startswith(workers[held_repo].hostname_prefix))
    # The keyless writer deletes the holder's liveness record, again and again, for
    # longer than the waits' look takes to come round several times.
    until = time.monotonic() + 12
    while time.monotonic() < until:
        raw.delete(cluster.rt.keys.worker(name))
        time.sleep(0.1)
    assert cluster.checkpoint(sid, holder["todo_id"])["status"] == "running"
    go.touch()
    assert cluster.wait_sweep(sid, timeout=60)["status"] == "succeeded"
    assert sorted(starts.read_text().split()) == ["TODO-001", "TODO-002"]  # each ran once
    assert not [e for e in cluster.events(sid) if e["kind"] == "todo.lost"]


def test_a_todo_that_waits_past_its_wait_timeout_fails_naming_what_it_waited_for(
        cluster: Cluster) -> None:
    gate = cluster.root / "go"
    hold = f"while [ ! -f {gate} ]; do sleep 0.05; done"
    cluster.write_catalog({"api": 1, "web": 1}, [
        T("TODO-001", "api", hold, resources=["db"], wait_timeout="2s"),
        T("TODO-002", "web", hold, resources=["db"], wait_timeout="2s"),
    ], resources={"db": 1})
    cluster.start_workers(["api", "web"])
    sid = cluster.start_sweep()
    try:
        def one_failed() -> dict | None:
            st = cluster.status(sid)["todos"]
            failed = [t for t, v in st.items() if v["status"] == "failed"]
            return st if failed else None

        st = wait_until(one_failed, 60, "the waiting todo to fail by its wait_timeout")
    finally:
        gate.touch()
    (failed,) = [t for t, v in st.items() if v["status"] == "failed"]
    other = "TODO-002" if failed == "TODO-001" else "TODO-001"
    reason = str(cluster.checkpoint(sid, failed).get("reason"))
    assert "wait timeout" in reason and "resource db" in reason and other in reason, reason
    end = cluster.wait_sweep(sid)
    assert end["todos"][other]["status"] == "succeeded"
    assert end["status"] == "failed"
    ev = [e for e in cluster.events(sid) if e["kind"] == "todo.failed"]
    assert ev and "wait timeout" in str(ev[0]["reason"])


def test_plan_sweep_wait_timeout_bounds_the_wait_of_todos_without_their_own(
        cluster: Cluster) -> None:
    gate = cluster.root / "go"
    hold = f"while [ ! -f {gate} ]; do sleep 0.05; done"
    cluster.write_catalog({"api": 1}, [T("TODO-001", "api", hold), T("TODO-002", "api", hold)])
    cluster.start_workers(["api", "api"])
    bad = cluster.cli("plan", "sweep", "PLAN-001", "--wait-timeout", "soon")
    assert bad.returncode == 2 and "--wait-timeout" in bad.stderr
    sid = str(cluster.cli_json("plan", "sweep", "PLAN-001", "--wait-timeout", "2")["sweep_id"])
    try:
        def one_failed() -> dict | None:
            st = cluster.status(sid)["todos"]
            return st if any(v["status"] == "failed" for v in st.values()) else None

        st = wait_until(one_failed, 60, "the waiting todo to fail by --wait-timeout")
    finally:
        gate.touch()
    (failed,) = [t for t, v in st.items() if v["status"] == "failed"]
    reason = str(cluster.checkpoint(sid, failed).get("reason"))
    assert "wait timeout" in reason and "repo api" in reason, reason
    assert cluster.wait_sweep(sid)["status"] == "failed"
