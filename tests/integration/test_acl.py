"""`coord acl --apply` on the session's real redis-server: a user per repo's workers.

A client authenticated as api's worker user is refused (NOPERM) on web's queue (read,
take) and on web's keys (its lease slots, fence, breaker, line), and may still put a
message in web's queue (a finish sends the todos that follow); real `coord worker
--repo api` and `--repo web` processes under their own users (COORD_SUPERVISE=0) run
an eager sweep in which api's todo is followed by web's, to success."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis

from tests.integration.helpers import Cluster, T

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def applied(cluster: Cluster) -> Iterator[dict]:
    cluster.write_catalog({"api": 1, "web": 1}, [
        T("TODO-001", "api", "echo api > done-api"),
        T("TODO-002", "web", "echo web > done-web", blocked_by=["TODO-001"]),
    ])
    doc = cluster.cli_json("acl", "--apply")
    admin = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    try:
        yield doc
    finally:  # the session's server outlives this test: leave no user behind
        for u in doc["users"]:
            admin.execute_command("ACL", "DELUSER", u["user"])
        admin.close()


def _url(cluster: Cluster, user: str, password: str) -> str:
    parts = urlsplit(cluster.redis_url)
    return f"redis://{user}:{password}@{parts.hostname}:{parts.port}{parts.path}"


def test_a_worker_user_is_refused_on_another_repos_queue_and_keys(
        cluster: Cluster, applied: dict) -> None:
    users = {u["user"]: u for u in applied["users"]}
    assert {"coord-worker-api", "coord-worker-web", "coord-supervisor",
            "coord-observer"} <= set(users)
    assert set(applied["created"]) == set(users)  # new users: a password each, shown once
    api = redis.Redis.from_url(_url(cluster, "coord-worker-api",
                                    applied["created"]["coord-worker-api"]))
    web_q, api_q = "coord:celery:coord.repo.web", "coord:celery:coord.repo.api"
    for refused in (lambda: api.lrange(web_q, 0, -1), lambda: api.rpop(web_q),
                    lambda: api.brpop([web_q], timeout=1), lambda: api.get("coord:lease:web:0"),
                    lambda: api.set("coord:lease:web:0", "mine"),
                    lambda: api.execute_command("INCR", "coord:fence:web"),
                    lambda: api.hset("coord:breaker:web", "state", "open"),
                    lambda: api.zadd("coord:waiters:repo:web", {"x": 0}),
                    lambda: api.lrange("coord:celery:coord.repo.webx", 0, -1)):
        with pytest.raises(redis.exceptions.NoPermissionError):
            refused()
    # Its own queue and keys, and what every worker shares.
    assert api.lrange(api_q, 0, -1) == []
    assert api.set("coord:lease:api:0", "t", px=1000) and api.execute_command("INCR", "coord:fence:api")
    assert api.hset("coord:sweep:{S}", "x", "1") == 1
    # Another repo's queue: write only (the progression sends the todos that follow).
    assert api.lpush(web_q, "m") == 1
    api.close()
    # The observer reads and never writes.
    obs = redis.Redis.from_url(_url(cluster, "coord-observer",
                                    applied["created"]["coord-observer"]))
    assert obs.get("coord:lease:api:0") is not None
    with pytest.raises(redis.exceptions.NoPermissionError):
        obs.set("coord:lease:api:0", "x")
    obs.close()
    redis.Redis.from_url(cluster.redis_url).delete(web_q)
    # Printed lines name every user (the password left to whoever runs them).
    text = cluster.cli("acl", "--repos", "api").stdout
    assert "ACL SETUSER coord-worker-api on" in text and "coord-worker-web" not in text
    if shutil.which("redis-cli") is None:
        return
    # ... and redis-cli reads them as they are (quoting, the priority lists' two bytes):
    # the user they make has exactly the key patterns --apply gave it.
    admin = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    before = admin.acl_getuser("coord-worker-api")
    admin.execute_command("ACL", "SETUSER", "coord-worker-api", "resetkeys")
    fed = subprocess.run(["redis-cli", "-u", cluster.redis_url],
                         input=text.replace(" '>PASSWORD'", ""), capture_output=True,
                         text=True, timeout=30)
    assert fed.returncode == 0 and "ERR" not in fed.stdout, fed.stdout + fed.stderr
    after = admin.acl_getuser("coord-worker-api")
    assert after["keys"] == before["keys"] and after["selectors"] == before["selectors"]
    admin.close()


def test_real_workers_under_their_repo_users_run_a_sweep(cluster: Cluster,
                                                          applied: dict) -> None:
    cluster.env["COORD_SUPERVISE"] = "0"
    for repo in ("api", "web"):
        user = f"coord-worker-{repo}"
        cluster.start_worker(repo, redis_url=_url(cluster, user, applied["created"][user]))
    env_user = _url(cluster, "coord-supervisor", applied["created"]["coord-supervisor"])
    cluster.env["COORD_REDIS_URL"] = env_user  # the sweeping, waiting CLI: the supervisor
    doc = cluster.cli_json("plan", "sweep", "PLAN-001", "--strategy", "eager", "--wait",
                           timeout=150)
    assert doc["status"] == "succeeded", doc
    assert (cluster.repo_dir("api") / "done-api").read_text().strip() == "api"
    assert (cluster.repo_dir("web") / "done-web").read_text().strip() == "web"
    logs = "".join(w.log_text() for w in cluster.workers).lower()
    assert "noperm" not in logs and "no permissions" not in logs, logs[-3000:]
    # api's worker sent web's todo (an eager successor) to web's queue itself.
    sent = [e for e in cluster.events(doc["sweep_id"]) if e["kind"] == "todo.queued"
            and e.get("todo_id") == "TODO-002"]
    assert sent and sent[0].get("via") == "eager after TODO-001", sent
