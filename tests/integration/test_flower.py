"""`coord flower` for real (basic auth, a real Redis, a real worker): it monitors and
refuses to act; and a worker does not run a Celery built-in pushed straight to its queue.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from tests.integration.helpers import ROOT, Cluster, T, Worker, wait_until

pytestmark = pytest.mark.timeout(180)

AUTH = "user:pass"
NOBODY = "coord.repo.nobody"  # a queue no worker consumes: a message sent there stays


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Flower:
    base: str
    proc: subprocess.Popen[bytes]
    log: Any

    def request(self, path: str, method: str = "GET", body: Any = None,
                auth: str = AUTH, timeout: float = 15) -> tuple[int, str]:
        data = None if method == "GET" else json.dumps(body if body is not None else {}).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if auth:
            req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")


def start_flower(cluster: Cluster, *extra: str, auth: str | None = AUTH) -> Flower:
    port = _free_port()
    log = cluster.logs / f"flower-{port}.log"
    env = dict(cluster.env)
    env.pop("COORD_FLOWER_AUTH", None)
    if auth:
        env["COORD_FLOWER_AUTH"] = auth
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            cluster.argv("flower", "--port", str(port), "--address", "127.0.0.1", *extra),
            cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    cluster.procs.append(proc)  # killed with the cluster
    f = Flower(f"http://127.0.0.1:{port}", proc, log)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"coord flower exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            return f.request("/healthcheck", auth=auth or "", timeout=2)[0] == 200
        except OSError:
            return False

    wait_until(up, 60, "coord flower to answer /healthcheck", interval=0.2)
    return f


@pytest.fixture
def flower_fleet(cluster: Cluster) -> Iterator[tuple[Cluster, Worker, Flower]]:
    cluster.write_catalog({"api": 1}, [T("TODO-001", "api", "true")])
    w = cluster.start_worker("api")
    yield cluster, w, start_flower(cluster)


def _worker_name(f: Flower, w: Worker) -> str:
    def listed() -> str | None:
        code, text = f.request("/api/workers?refresh=1")
        if code != 200:
            return None
        names = [n for n in json.loads(text) if n.startswith(f"{w.repo}-{w.pid}@")]
        return names[0] if names else None

    return str(wait_until(listed, 30, "Flower to see the worker", interval=0.5))


def _queues(r: redis.Redis) -> dict[str, int]:
    """Length of every kombu queue list of coord's Celery keys."""
    return {k: int(r.llen(k)) for k in r.scan_iter("coord:celery:*") if r.type(k) == "list"}


RUN_TODO = {"kwargs": {"sweep_id": "S-1", "plan_id": "PLAN-001", "todo_id": "TODO-001",
                       "repo": "api"}, "queue": NOBODY}


def _dangerous(worker: str) -> list[tuple[str, Any]]:
    return [
        ("/api/task/async-apply/coord.run_todo", RUN_TODO),
        ("/api/task/async-apply/celery.map", {"kwargs": {"task": {}, "it": []}, "queue": NOBODY}),
        ("/api/task/apply/coord.run_todo", RUN_TODO),
        ("/api/task/send-task/coord.run_todo", RUN_TODO),
        ("/api/task/send-task/celery.map", {"kwargs": {"task": {}, "it": []}, "queue": NOBODY}),
        ("/api/task/revoke/some-id?terminate=true", None),
        ("/api/task/abort/some-id", None),
        (f"/api/task/timeout/coord.run_todo?workername={worker}&hard=1&soft=1", None),
        (f"/api/task/rate-limit/coord.run_todo?workername={worker}&ratelimit=1/h", None),
        (f"/api/worker/pool/grow/{worker}?n=3", None),
        (f"/api/worker/pool/shrink/{worker}?n=1", None),
        (f"/api/worker/pool/autoscale/{worker}?min=1&max=8", None),
        (f"/api/worker/pool/restart/{worker}", None),
        (f"/api/worker/queue/add-consumer/{worker}?queue={NOBODY}", None),
        (f"/api/worker/queue/cancel-consumer/{worker}?queue=coord.repo.api", None),
        (f"/api/worker/shutdown/{worker}", None),
    ]


def test_coord_flower_monitors_and_refuses_to_act(flower_fleet: tuple[Cluster, Worker, Flower]) -> None:
    cluster, w, f = flower_fleet
    r = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    name = _worker_name(f, w)
    before = _queues(r)

    for path, body in _dangerous(name):
        code, text = f.request(path, "POST", body)
        assert code == 403, (path, code, text[:300])
        assert "coord's Flower is read-only" in text, (path, text[:300])  # coord's layer answered
    # Authentication still comes first.
    assert f.request("/api/worker/shutdown/" + name, "POST", auth="user:wrong")[0] == 401

    assert _queues(r) == before
    assert not r.exists(f"coord:celery:{NOBODY}")
    assert w.alive(), w.log_text()[-3000:]
    # Still the same worker, still consuming its queues (no consumer was cancelled).
    code, text = f.request(f"/api/workers?refresh=1&workername={name}")
    assert code == 200
    queues = {q["name"] for q in json.loads(text)[name]["active_queues"]}
    assert queues == {"coord.repo.api", "coord.control"}
    assert "/api/worker/" not in w.log_text()  # nothing reached the worker's control handler

    # Every page and every GET route of Flower's table answers, a task's included
    # (once Flower has turned the worker's task events on: it sends them to Flower only).
    wait_until(lambda: "enabled by remote" in w.log_text(), 60,
               "Flower to enable the worker's task events", interval=0.2)
    sid = cluster.start_sweep()
    assert cluster.wait_sweep(sid)["status"] == "succeeded"

    def task_id() -> str | None:
        code, text = f.request("/api/tasks")
        ids = [t for t, info in json.loads(text).items()
               if info.get("name") == "coord.run_todo"] if code == 200 else []
        return ids[0] if ids else None

    tid = str(wait_until(task_id, 30, "Flower to see the todo's task", interval=0.5))
    routes = ["/", "/workers", f"/worker/{name}", f"/task/{tid}", "/tasks",
              "/tasks/datatable?draw=1&start=0&length=10&search[value]=&order[0][column]=0"
              "&order[0][dir]=asc&columns[0][data]=name",
              "/broker", "/api/workers", f"/api/workers?workername={name}", "/api/tasks",
              "/api/task/types", "/api/queues/length", f"/api/task/info/{tid}",
              f"/api/task/result/{tid}", "/metrics", "/healthcheck"]
    for path in routes:
        code, text = f.request(path)
        assert code == 200, (path, code, text[:300])
    # Flower's own read-only mode is on as well: the worker page offers no actions.
    assert "worker-shutdown" not in f.request(f"/worker/{name}")[1]


def test_the_broker_tab_lists_coords_queues_with_their_lengths(cluster: Cluster) -> None:
    cluster.write_catalog({"api": 1, "web": 1}, [T("TODO-001", "api", "true")])
    r = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    # Two messages wait for web, which no worker serves (one at a higher priority).
    r.rpush("coord:celery:coord.repo.web", "{}")
    r.rpush("coord:celery:coord.repo.web\x06\x163", "{}")
    f = start_flower(cluster)
    code, text = f.request("/api/queues/length")
    assert code == 200, text[:300]
    lengths = {q["name"]: q["messages"] for q in json.loads(text)["active_queues"]}
    assert lengths == {"coord.control": 0, "coord.repo.api": 0, "coord.repo.web": 2}
    code, page = f.request("/broker")
    assert code == 200, page[:300]
    assert "coord.repo.web" in page and "coord.repo.api" in page


def test_the_get_api_answers_on_localhost_without_auth(cluster: Cluster) -> None:
    """As the README says: on localhost without COORD_FLOWER_AUTH, GETs of the API work
    (for curl); no cross-origin header lets another web site read them; POSTs are refused."""
    cluster.write_catalog({"api": 1}, [T("TODO-001", "api", "true")])
    f = start_flower(cluster, auth=None)
    req = urllib.request.Request(f.base + "/api/workers", headers={"Origin": "http://evil.example"})
    with urllib.request.urlopen(req, timeout=15) as resp:
        assert resp.status == 200
        assert resp.headers.get("Access-Control-Allow-Origin") is None
        json.loads(resp.read())
    assert f.request("/api/queues/length", auth="")[0] == 200
    assert f.request("/api/task/send-task/coord.run_todo", "POST", RUN_TODO, auth="")[0] == 403


def test_allow_control_is_explicit_and_loud(cluster: Cluster) -> None:
    cluster.write_catalog({"api": 1}, [T("TODO-001", "api", "true")])
    f = start_flower(cluster, "--allow-control")
    assert "WARNING" in f.log.read_text() and "CONTROL WORKERS" in f.log.read_text()
    r = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    # Open: Flower publishes (to a queue nobody consumes, so nothing runs).
    code, text = f.request("/api/task/send-task/coord.run_todo", "POST",
                           {"kwargs": {"sweep_id": "no-such-sweep", "plan_id": "P",
                                       "todo_id": "T", "repo": "api"}, "queue": NOBODY})
    assert code == 200, text[:300]
    assert r.llen(f"coord:celery:{NOBODY}") == 1


def test_a_worker_does_not_run_celery_map_sent_to_its_queue(cluster: Cluster) -> None:
    from celery.exceptions import NotRegistered

    from coordination.keys import Keys
    from coordination.settings import Settings
    from workers.app import create_app

    cluster.write_catalog({"api": 1}, [T("TODO-001", "api", "true")])
    w = cluster.start_worker("api")
    app = create_app(Settings(redis_url=cluster.redis_url))
    queue = Keys("coord").repo_queue("api")
    # celery.map would call coord.run_todo for a sweep nobody started inside the worker.
    task = app.signature("coord.run_todo")
    res = app.send_task("celery.map", kwargs={"task": dict(task),
                                              "it": [["no-such-sweep", "P", "T", "api"]]},
                        queue=queue, ignore_result=False)

    def ended() -> bool:
        return res.state in ("SUCCESS", "FAILURE")

    wait_until(ended, 30, "the celery.map message to be settled")
    assert res.state == "FAILURE", res.result
    assert isinstance(res.result, NotRegistered) or "NotRegistered" in repr(res.result)
    log = w.log_text()
    assert "Received unregistered task of type 'celery.map'" in log, log[-3000:]
    r = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    assert r.llen(f"coord:celery:{queue}") == 0  # rejected, not redelivered
    assert w.alive()
    # ... and still works: a real todo runs to completion afterwards.
    status = cluster.wait_sweep(cluster.start_sweep())
    assert status["status"] == "succeeded", status
