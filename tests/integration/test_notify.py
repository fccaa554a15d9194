"""Webhook notifications against a real HTTP endpoint, redis-server and `coord worker`s.

The endpoint (a local HTTP server in this process) answers 500 to the first three
deliveries, then is down (its port closed) for 10 s, then accepts; meanwhile the worker
holding the outbox is SIGKILLed and the other worker takes the outbox over once its lease
has expired. Every event is delivered, each delivery id is accepted once, every request
is signed, and the sweep ended while its deliveries were still failing (it never waited
on them: the notifier only reads the event log, on its own thread).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import Counter

import pytest

from tests.integration.helpers import Cluster, wait_until, write_api_catalog
from tests.integration.receivers import Endpoint, Slow
from tests.servers import free_port

pytestmark = pytest.mark.timeout(150)

SECRET = "hook-secret-1"


NOTIFIED = """  plans:
    - {id: PLAN-001, title: notified, status: active}
  todos:
    - {id: TODO-001, task: one, repo: api, plan: PLAN-001, run: "exit 3"}
"""


def _catalog(c: Cluster, port: int) -> None:
    write_api_catalog(c.root, [
        {"url": f"http://hook:pw%40x@127.0.0.1:{port}/hook",
         "events": ["todo.failed", "sweep.finished"], "secret_env": "COORD_HOOK_SECRET"}],
        NOTIFIED + """    - {id: TODO-002, task: two, repo: api, plan: PLAN-001, run: "true"}
    - {id: TODO-003, task: three, repo: api, plan: PLAN-001, run: "exit 4"}
""")


def test_every_event_delivered_once_through_failures_an_outage_and_a_killed_worker(
        cluster: Cluster) -> None:
    port = free_port()
    endpoint = Endpoint(port)
    try:
        _catalog(cluster, port)
        cluster.env["COORD_HOOK_SECRET"] = SECRET
        workers = cluster.start_workers(["api", "api"])
        sid = cluster.start_sweep()
        st = cluster.wait_sweep(sid, timeout=60)
        assert st["status"] == "failed"
        ended = time.time()
        # The sweep is over while its deliveries are still failing: it did not wait on them.
        with endpoint.lock:
            assert endpoint.accepted == [], "a delivery was accepted before the sweep ended"
        outbox = cluster.rt.outbox()
        wait_until(lambda: len(outbox.log()) == 3, 30, "the sweep's three events in the outbox")

        # The endpoint's outage: kill the worker delivering (it holds the outbox).
        wait_until(lambda: endpoint.down_until > 0, 30, "the endpoint to fail three deliveries")
        holder = outbox.holder()
        assert holder is not None
        pid = int(holder.split(":")[1])
        killed = next(w for w in workers if w.pid == pid)
        killed.kill()
        survivor = next(w for w in workers if w is not killed)
        assert survivor.alive()

        wait_until(lambda: len(endpoint.accepted) >= 3, 90,
                   "every event to be accepted (the other worker taking over the outbox)")
        with endpoint.lock:
            accepted, repeats, reqs = list(endpoint.accepted), list(endpoint.repeats), list(endpoint.requests)
        assert min(endpoint.accepted_at) >= endpoint.down_until > ended
        assert all(n == 1 for n in Counter(accepted).values()), accepted
        bodies = {json.loads(r["body"])["id"]: json.loads(r["body"]) for r in reqs}
        kinds = sorted(bodies[d]["kind"] for d in accepted)
        assert kinds == ["sweep.finished", "todo.failed", "todo.failed"], kinds
        assert sorted(bodies[d]["event"].get("todo_id") or "" for d in accepted) == [
            "", "TODO-001", "TODO-003"]
        assert len({bodies[d]["event"]["id"] for d in accepted}) == 3
        assert not repeats, repeats
        # The new holder is the survivor, and every request was signed and authenticated.
        assert int(str(outbox.holder()).split(":")[1]) == survivor.pid
        for r in reqs:
            h = r["headers"]
            assert h["X-Coord-Delivery"] == json.loads(r["body"])["id"]
            t, v1 = (p.split("=", 1)[1] for p in h["X-Coord-Signature"].split(","))
            want = hmac.new(SECRET.encode(), f"{t}.".encode() + r["body"], hashlib.sha256)
            assert hmac.compare_digest(v1, want.hexdigest())
            assert h["Authorization"] == "Basic aG9vazpwd0B4"  # hook:pw@x

        log = cluster.cli_json("notify", "log")
        assert {e["status"] for e in log} == {"delivered"} and len(log) == 3
        assert max(e["attempts"] for e in log) >= 3
        assert any("refused" in str(e["last_error"]).lower() for e in log), json.dumps(log, indent=1)
        shown = cluster.cli("notify", "log")
        assert shown.returncode == 0 and "pw" not in shown.stdout + json.dumps(log)
        assert "http://***@127.0.0.1" in json.dumps(log)

        test = cluster.cli_json("notify", "test")
        assert [t["ok"] for t in test] == [True], test
        assert "pw" not in json.dumps(test)
    finally:
        endpoint.close()


def test_a_gate_waiting_is_delivered(cluster: Cluster) -> None:
    """Deliveries work off the event log: a gate's `gate.waiting` (emitted by the gate
    code's own script) reaches a webhook with nothing in the notifier knowing gates."""
    port = free_port()
    endpoint = Endpoint(port, fail_first=0)
    try:
        write_api_catalog(cluster.root, [
            {"url": f"http://127.0.0.1:{port}/hook", "events": ["gate.waiting"],
             "format": "slack"}], """  plans:
    - {id: PLAN-001, title: gated, status: active}
  todos:
    - {id: TODO-001, task: build, repo: api, plan: PLAN-001, run: "true"}
    - id: TODO-002
      task: approve the rollout
      repo: api
      plan: PLAN-001
      blocked_by: [TODO-001]
      gate: {approvals: 1, from: [ana]}
""")
        cluster.start_workers(["api"])
        sid = cluster.start_sweep()
        wait_until(lambda: len(endpoint.accepted) >= 1, 60, "the gate.waiting delivery")
        with endpoint.lock:
            body = json.loads(endpoint.requests[0]["body"])
        assert body["text"].startswith("coord: *gate.waiting*") and "TODO-002" in body["text"]
        assert sid in body["text"]
        cluster.cli("sweep", "cancel", sid)
    finally:
        endpoint.close()


def test_a_slow_webhook_does_not_hold_the_others(cluster: Cluster) -> None:
    """A worker's notifier: the healthy webhook gets every delivery, in event order,
    before the slow one (each POST timing out, then waiting out its backoff) is even
    tried a second time; the slow one gets its own in order too, later."""
    slow = Slow(delay=6.0)
    port = free_port()
    healthy = Endpoint(port, fail_first=0)
    try:
        events = ["todo.failed", "sweep.finished"]
        write_api_catalog(cluster.root, [
            {"url": f"http://127.0.0.1:{slow.port}/slow", "events": events},
            {"url": f"http://127.0.0.1:{port}/hook", "events": events}],
            NOTIFIED + """    - {id: TODO-002, task: two, repo: api, plan: PLAN-001, run: "exit 4"}
""")
        cluster.start_workers(["api"])
        sid = cluster.start_sweep()
        assert cluster.wait_sweep(sid, timeout=60)["status"] == "failed"
        wait_until(lambda: len(endpoint_kinds(healthy)) == 3, 30,
                   "the healthy webhook's three deliveries")
        with slow.lock:
            slow_tries = list(slow.arrived)
        with healthy.lock:
            last_healthy = max(healthy.accepted_at)
        # Never behind the slow one: all three were in before its second try.
        assert len(slow_tries) <= 1 or last_healthy < slow_tries[1], (slow_tries, last_healthy)
        kinds = endpoint_kinds(healthy)
        assert kinds[-1] == "sweep.finished" and sorted(kinds[:2]) == ["todo.failed"] * 2
        outbox = cluster.rt.outbox()
        wait_until(lambda: any(d["attempts"] for d in outbox.log() if f":{slow.port}/" in d["url"]),
                   10, "the slow webhook's first POST to time out")
        log = cluster.cli_json("notify", "log")
        mine = [e for e in log if f":{slow.port}/" in e["url"]]
        assert len(mine) == 3 and all(e["status"] == "pending" for e in mine)
        tried = [e for e in mine if e["attempts"]]
        assert len(tried) == 1 and "timed out" in str(tried[0]["last_error"]), tried
        # Its other two wait behind it: the same next try.
        assert len({e["next_at"] for e in mine}) == 1
    finally:
        slow.close()
        healthy.close()


def endpoint_kinds(ep: Endpoint) -> list[str]:
    """The kinds an endpoint accepted, in the order it accepted them."""
    with ep.lock:
        bodies = {json.loads(r["body"])["id"]: json.loads(r["body"]) for r in ep.requests}
        return [bodies[d]["kind"] for d in ep.accepted]
