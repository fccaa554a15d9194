"""What `coord acl`'s users may do, each claim tried by connecting as that user to a real
redis-server 7 (the session's), and a real `coord worker` where a claim is about one:

- a repo's worker user may push onto another repo's queue and nothing else there (no
  DEL, LTRIM, LPOP, BRPOP, LRANGE...: the finding was DEL and LTRIM allowed);
- it may not send Celery's remote control: its broadcast of ``shutdown`` to another
  repo's real worker is refused, and that worker still answers the supervisor's ping;
- its remote-control queue patterns are exactly its own (``api``'s never match
  ``api-2``'s workers' queues);
- `coord context` works as that user (it needed ``~coord:*``);
- a Redis older than 7 (the embedded server's 6.2) is refused before anything is
  written, naming its version;
- a person's user (``--person``) reaches its repos and not another's; ``--rotate``
  makes the old password stop working (and ``--disconnect`` closes open connections).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from coordination.runtime.acl import PRIORITY_SEP
from tests.integration.helpers import Cluster, T, wait_until
from tests.servers import start_redis, stop_process

pytestmark = pytest.mark.timeout(180)

WEB_Q, API_Q = "coord:celery:coord.repo.web", "coord:celery:coord.repo.api"


def _url(cluster: Cluster, user: str, password: str) -> str:
    parts = urlsplit(cluster.redis_url)
    return f"redis://{user}:{password}@{parts.hostname}:{parts.port}{parts.path}"


def _as(cluster: Cluster, user: str, password: str) -> redis.Redis:
    return redis.Redis.from_url(_url(cluster, user, password), decode_responses=True)


@pytest.fixture
def written(cluster: Cluster) -> Iterator[dict]:
    admin = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    if int(admin.info("server")["redis_version"].split(".")[0]) < 7:
        pytest.skip("coord acl's users need redis-server 7")
    cluster.write_catalog({"api": 1, "web": 1, "api-2": 1}, [
        T("TODO-001", "api", "echo api > done-api"),
        T("TODO-002", "web", "echo web > done-web", blocked_by=["TODO-001"]),
    ])
    doc = cluster.cli_json("acl", "--apply")
    try:
        yield doc
    finally:  # the session's server outlives this test: leave no user behind
        for u in admin.acl_users():
            if u != "default":
                admin.acl_deluser(u)
        admin.close()


def _refused(call: object) -> bool:
    try:
        call()  # type: ignore[operator]
    except redis.exceptions.NoPermissionError:
        return True
    return False


def test_a_worker_user_may_only_push_onto_another_repos_queue(
        cluster: Cluster, written: dict) -> None:
    api = _as(cluster, "coord-worker-api", written["created"]["coord-worker-api"])
    admin = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    web_hi = WEB_Q + PRIORITY_SEP + "3"
    assert api.lpush(WEB_Q, "m1") == 1 and api.rpush(WEB_Q, "m2") == 2
    assert api.lpush(web_hi, "m3") == 1  # a priority's list too
    refused = {
        "del": lambda: api.delete(WEB_Q), "unlink": lambda: api.unlink(WEB_Q),
        "ltrim": lambda: api.ltrim(WEB_Q, 0, 0), "lpop": lambda: api.lpop(WEB_Q),
        "rpop": lambda: api.rpop(WEB_Q), "brpop": lambda: api.brpop([WEB_Q], timeout=1),
        "lrange": lambda: api.lrange(WEB_Q, 0, -1), "lrem": lambda: api.lrem(WEB_Q, 0, "m1"),
        "lset": lambda: api.lset(WEB_Q, 0, "x"), "expire": lambda: api.expire(WEB_Q, 1),
        "rename": lambda: api.rename(WEB_Q, API_Q), "del-priority": lambda: api.delete(web_hi),
        "lmove": lambda: api.lmove(WEB_Q, API_Q), "eval-del": lambda: api.eval(
            "return redis.call('DEL', KEYS[1])", 1, WEB_Q),
        "multi-del": lambda: api.pipeline(transaction=True).delete(WEB_Q).execute(),
    }
    allowed = [name for name, call in refused.items() if not _refused(call)]
    assert allowed == [], f"api's worker user may {allowed} on web's queue"
    assert admin.lrange(WEB_Q, 0, -1) == ["m1", "m2"]  # nothing taken, cut or removed
    assert admin.lrange(web_hi, 0, -1) == ["m3"]
    # Its own queue it reads, takes and trims as before.
    assert api.lpush(API_Q, "x") == 1 and api.ltrim(API_Q, 0, 0) and api.rpop(API_Q) == "x"
    # Another repo's keys stay out of reach, as before (leases, fence, breaker, line).
    for call in (lambda: api.get("coord:lease:web:0"), lambda: api.incr("coord:fence:web"),
                 lambda: api.hset("coord:breaker:web", "state", "open"),
                 lambda: api.zadd("coord:waiters:repo:web", {"x": 0})):
        assert _refused(call)
    admin.delete(WEB_Q, web_hi)
    api.close()
    admin.close()


def test_remote_control_queues_are_exactly_the_repos_own(cluster: Cluster,
                                                          written: dict) -> None:
    api = _as(cluster, "coord-worker-api", written["created"]["coord-worker-api"])
    mine = "coord:celery:api-4242@host.celery.pidbox"
    assert api.lpush(mine, "x") == 1 and api.delete(mine) == 1
    for other in ("coord:celery:api-2-4242@host.celery.pidbox",  # repo api-2's worker
                  "coord:celery:api-2-4242@host.celery.pidbox" + PRIORITY_SEP + "9",
                  "coord:celery:api-x@host.celery.pidbox"):
        assert _refused(lambda: api.lpush(other, "x")), other
    api.close()


def test_a_worker_user_cannot_shut_down_another_repos_worker(cluster: Cluster,
                                                             written: dict) -> None:
    from coordination.dispatch.app import celery_app
    from coordination.settings import Settings

    cluster.env["COORD_SUPERVISE"] = "0"
    created = written["created"]
    web = cluster.start_worker("web", redis_url=_url(cluster, "coord-worker-web",
                                                     created["coord-worker-web"]))
    name = f"{web.hostname_prefix}{os.uname().nodename}"
    # A raw PUBLISH on the remote-control channel, and Celery's own broadcast.
    api = _as(cluster, "coord-worker-api", created["coord-worker-api"])
    assert _refused(lambda: api.publish("coord:celery:/0.celery.pidbox", "{}"))
    api_url = _url(cluster, "coord-worker-api", created["coord-worker-api"])
    app = celery_app(Settings(redis_url=api_url), url=api_url)
    from kombu.exceptions import OperationalError

    with pytest.raises((redis.exceptions.NoPermissionError, OperationalError),
                       match="no permissions"):
        app.control.broadcast("shutdown", destination=[name])
    # The worker still listens and answers: the supervisor's ping (the remote control a
    # worker user may hear) comes back from it.
    sup_url = _url(cluster, "coord-supervisor", created["coord-supervisor"])
    sup = celery_app(Settings(redis_url=sup_url), url=sup_url)
    # (A broadcast is a PUBLISH: one sent before the worker's subscription reached the
    # server, though it said "ready", is heard by nobody; the supervisor pings again.)
    pongs = wait_until(lambda: sup.control.ping(destination=[name], timeout=1), 30,
                       "the worker to answer the supervisor's ping")
    assert pongs == [{name: {"ok": "pong"}}], (pongs, web.log_text()[-2000:])
    assert web.alive()
    assert "noperm" not in web.log_text().lower(), web.log_text()[-3000:]
    api.close()


def test_coord_context_works_as_a_repos_worker_user(cluster: Cluster, written: dict) -> None:
    cluster.env["COORD_REDIS_URL"] = _url(cluster, "coord-worker-api",
                                          written["created"]["coord-worker-api"])
    res = cluster.cli("context", "set", "build", '{"v": 1}', "--sweep", "S1", "--ttl", "60")
    assert res.returncode == 0, res.stderr
    got = cluster.cli_json("context", "get", "build", "--sweep", "S1")
    assert got["value"] == {"v": 1}
    assert [v["key"] for v in cluster.cli_json("context", "list", "--sweep", "S1")["values"]] \
        == ["build"]
    # A user written by an older coord (without the context's keys): the refusal says to
    # write it again, never to grant the whole namespace.
    admin = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    rules = written["users"][0]["rules"]
    assert written["users"][0]["user"] == "coord-worker-api"
    admin.execute_command("ACL", "SETUSER", "coord-worker-api",
                          *[r for r in rules if ":ctx" not in r])
    res = cluster.cli("context", "get", "build", "--sweep", "S1")
    assert res.returncode == 1 and "NOPERM" in res.stderr, res.stderr
    assert "coord acl --apply" in res.stderr and "grant it" not in res.stderr, res.stderr
    admin.close()


def test_a_redis_older_than_7_is_refused_before_anything_is_applied(
        cluster: Cluster, tmp_path: Path) -> None:
    from coordination.connection.embedded_server import redis_server_binary

    old = start_redis(str(redis_server_binary()), tmp_path)
    try:
        client = old.client()
        version = client.info("server")["redis_version"]
        assert version.startswith("6."), version
        cluster.write_catalog({"api": 1, "web": 1}, [T("TODO-001", "api", "true")])
        cluster.env["COORD_REDIS_URL"] = old.url
        res = cluster.cli("acl", "--apply")
        assert res.returncode == 2, (res.stdout, res.stderr)
        assert f"runs Redis {version}" in res.stderr and "nothing was applied" in res.stderr
        assert "cannot reach Redis" not in res.stderr, res.stderr
        assert client.acl_users() == ["default"]  # not one user written
        client.close()
    finally:
        stop_process(old.proc)


def test_a_persons_user_reaches_its_repos_only(cluster: Cluster, written: dict) -> None:
    doc = cluster.cli_json("acl", "--person", "alice", "--repos", "api", "--role",
                           "operator", "--apply")
    [user] = doc["users"]
    assert (user["user"], user["role"], user["repos"]) == (
        "coord-person-alice", "person-operator", ["api"])
    alice = _as(cluster, "coord-person-alice", doc["created"]["coord-person-alice"])
    assert alice.lpush(API_Q, "x") == 1 and alice.delete(API_Q) == 1
    assert alice.set("coord:lease:api:0", "t", px=1000)
    # Sweeps: those of the plans that run api's todos (by id), not another's.
    assert user["plans"] == ["PLAN-001"]
    assert alice.hset("coord:sweep:{PLAN-001-20261128120000-ab12}", "x", "1") == 1
    admin = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    admin.hset("coord:sweep:{S}", "x", "1")
    for call in (lambda: alice.lpush(WEB_Q, "x"), lambda: alice.get("coord:lease:web:0"),
                 lambda: alice.publish("coord:celery:/0.celery.pidbox", "{}"),
                 lambda: alice.hset("coord:sweep:{S}", "x", "2")):
        assert _refused(call)
    assert alice.hget("coord:sweep:{S}", "x") == "1"  # every sweep's record is read
    admin.close()
    doc = cluster.cli_json("acl", "--person", "bob", "--repos", "web", "--apply")
    bob = _as(cluster, "coord-person-bob", doc["created"]["coord-person-bob"])
    assert doc["users"][0]["role"] == "person-observer"  # the default: reads only
    assert bob.lrange(WEB_Q, 0, -1) == [] and bob.hget("coord:sweep:{S}", "x") == "1"
    for call in (lambda: bob.lpush(WEB_Q, "x"), lambda: bob.get("coord:lease:api:0"),
                 lambda: bob.hset("coord:sweep:{S}", "x", "2")):
        assert _refused(call)
    # The person's CLI: a reading command as bob works.
    cluster.env["COORD_REDIS_URL"] = _url(cluster, "coord-person-bob",
                                          doc["created"]["coord-person-bob"])
    assert cluster.cli_json("sweep", "list") is not None
    res = cluster.cli("acl", "--person", "x y", "--repos", "api")
    assert res.returncode == 2 and "bad person name" in res.stderr
    alice.close()
    bob.close()


def test_rotate_makes_the_old_password_stop_working(cluster: Cluster, written: dict) -> None:
    old = written["created"]["coord-worker-api"]
    held = _as(cluster, "coord-worker-api", old)
    assert held.ping()
    doc = cluster.cli_json("acl", "--rotate", "coord-worker-api")
    new = doc["password"]
    assert new != old and doc["user"] == "coord-worker-api"
    with pytest.raises(redis.exceptions.AuthenticationError):
        _as(cluster, "coord-worker-api", old).ping()
    assert _as(cluster, "coord-worker-api", new).ping()
    assert held.ping()  # a connection opened before keeps its own (said by the command)
    # --disconnect closes those too.
    doc = cluster.cli_json("acl", "--rotate", "coord-worker-api", "--disconnect")
    assert doc["disconnected"] >= 1
    with pytest.raises(redis.exceptions.RedisError):  # closed, and its password is gone
        held.ping()
    # The password is printed once (human output) and never a user coord did not make.
    text = cluster.cli("acl", "--rotate", "coord-worker-api").stdout
    assert "password" in text
    for bad, code in (("default", 2), ("coord-worker-nope", 2)):
        res = cluster.cli("acl", "--rotate", bad)
        assert res.returncode == code, (bad, res.stdout, res.stderr)
    held.close()


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="no redis-cli")
def test_printed_selectors_read_back_the_same_through_redis_cli(
        cluster: Cluster, written: dict) -> None:
    import subprocess

    admin = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    before = admin.acl_getuser("coord-worker-api")
    assert len(before["selectors"]) == 2
    text = cluster.cli("acl", "--repos", "api").stdout
    admin.execute_command("ACL", "SETUSER", "coord-worker-api", "resetkeys", "clearselectors")
    fed = subprocess.run(["redis-cli", "-u", cluster.redis_url],
                         input=text.replace(" '>PASSWORD'", ""), capture_output=True,
                         text=True, timeout=30)
    assert fed.returncode == 0 and "ERR" not in fed.stdout, fed.stdout + fed.stderr
    after = admin.acl_getuser("coord-worker-api")
    assert (after["keys"], after["selectors"], after["channels"]) == (
        before["keys"], before["selectors"], before["channels"])
    admin.close()
