"""A person's Redis user (`coord acl --person NAME --repos SEL --role operator`) bounded by
its repos, against the session's real redis-server 7 and real workers (issue 78, K):

- alice (``--repos lib``) starts a sweep of lib's plan as herself (the freeze record and
  what a start needs are granted), pauses it, unpauses it, cancels it and reads its logs;
- on a sweep of app's plan (started by the admin) the same are refused with exit 2 and a
  reason, by the CLI first and by Redis too (a raw HSET, the steering script itself, a
  read of its logs: NOPERM), and nothing changes: its status, its control fields and its
  events are as they were, and its todo runs on to success;
- creating and rotating a user writes an audit entry (never the password).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis

from tests.integration.helpers import ROOT, Cluster, T, wait_until

pytestmark = pytest.mark.timeout(240)

LIB_PLAN, APP_PLAN = "PLAN-001", "PLAN-002"
#: A todo that runs until its gate file appears (the test ends it: no fixed sleep).
HOLD = "echo started; while [ ! -e go ]; do sleep 0.1; done; echo finished"


def _url(cluster: Cluster, user: str, password: str) -> str:
    parts = urlsplit(cluster.redis_url)
    return f"redis://{user}:{password}@{parts.hostname}:{parts.port}{parts.path}"


@pytest.fixture
def alice(cluster: Cluster) -> Iterator[dict[str, str]]:
    admin = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    if int(admin.info("server")["redis_version"].split(".")[0]) < 7:
        pytest.skip("coord acl's users need redis-server 7")
    cluster.write_catalog({"lib": 1, "app": 1}, [
        T("TODO-001", "lib", HOLD, plan=LIB_PLAN, timeout=120),
        T("TODO-002", "app", HOLD, plan=APP_PLAN, timeout=120),
    ], plans=(LIB_PLAN, APP_PLAN))
    doc = cluster.cli_json("acl", "--person", "alice", "--repos", "lib", "--role",
                           "operator", "--apply")
    try:
        yield {"url": _url(cluster, "coord-person-alice",
                           doc["created"]["coord-person-alice"]), **doc}
    finally:  # the session's server outlives this test: leave no user behind
        for u in admin.acl_users():
            if u != "default":
                admin.acl_deluser(u)
        admin.close()


def _as_alice(cluster: Cluster, alice: dict[str, str], *args: str
              ) -> subprocess.CompletedProcess[str]:
    env = {**cluster.env, "COORD_REDIS_URL": alice["url"], "COORD_USER": "alice"}
    return subprocess.run(cluster.argv(*args), cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=90)


def _control(admin: redis.Redis, sweep_id: str) -> dict[str, str]:
    """The sweep's record less its todos' checkpoints and counters (which its running
    todo's worker moves): status, reason, pause and end fields."""
    rec = admin.hgetall(f"coord:sweep:{{{sweep_id}}}")
    return {k: v for k, v in rec.items()
            if k in ("status", "reason", "paused_at", "paused_from", "finished_at",
                     "deadline", "run", "paused_total")}


def _events(admin: redis.Redis, sweep_id: str) -> list[str]:
    return [f.get("kind", "") for _, f in admin.xrange(f"coord:sweep:{{{sweep_id}}}:events")]


def test_a_person_starts_pauses_and_cancels_its_repos_sweep(
        cluster: Cluster, alice: dict[str, str]) -> None:
    admin = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    cluster.start_workers(["lib"])
    # Alice starts lib's plan as herself (a person operator could start nothing before:
    # the freeze record was not hers to read).
    res = _as_alice(cluster, alice, "plan", "sweep", LIB_PLAN, "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    mine = json.loads(res.stdout)["sweep_id"]
    assert admin.hget(f"coord:sweep:{{{mine}}}", "started_by") == '"alice"'
    cluster.wait_todo(mine, "TODO-001", {"running"}, timeout=60)
    res = _as_alice(cluster, alice, "sweep", "pause", mine, "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["changed"], res.stderr
    assert admin.hget(f"coord:sweep:{{{mine}}}", "status") == '"paused"'
    res = _as_alice(cluster, alice, "sweep", "unpause", mine, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(admin.hget(f"coord:sweep:{{{mine}}}", "status")) in ("running", "queued")
    wait_until(lambda: "started" in _as_alice(cluster, alice, "logs", "TODO-001",
                                              "--sweep", mine).stdout,
               60, "alice to read her sweep's log")
    assert "started" in _as_alice(cluster, alice, "logs", "TODO-001").stdout  # (newest)
    res = _as_alice(cluster, alice, "sweep", "cancel", mine, "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["cancelled"], res.stderr
    assert cluster.wait_ended(mine)["status"] == "cancelled"
    # And one she waits on (a waiting CLI supervises it: as her user too).
    (cluster.repo_dir("lib") / "go").write_text("")
    res = _as_alice(cluster, alice, "plan", "sweep", LIB_PLAN, "--wait", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["status"] == "succeeded", \
        res.stdout[-2000:] + res.stderr[-2000:]
    assert "NOPERM" not in res.stderr and "failed" not in res.stderr, res.stderr[-2000:]
    # A plan that runs another repo's todos she may not start: refused before any write.
    before = admin.zcard("coord:sweeps")
    res = _as_alice(cluster, alice, "plan", "sweep", APP_PLAN)
    assert res.returncode == 2 and "may not start PLAN-002" in res.stderr, res.stderr
    assert "runs todos of app" in res.stderr and "Traceback" not in res.stderr
    assert admin.zcard("coord:sweeps") == before
    # Nor an ad-hoc run (its sweep names no plan): refused before its audit entry.
    audit = [p for p in cluster.eco.parent.glob(".*audit*")]
    size = sum(p.stat().st_size for p in audit)
    res = _as_alice(cluster, alice, "run", "--repos", "lib", "--", "echo", "hi")
    assert res.returncode == 2 and "coord run" in res.stderr, res.stderr
    assert admin.zcard("coord:sweeps") == before
    assert sum(p.stat().st_size for p in audit) == size
    admin.close()


def test_a_person_may_not_steer_or_read_another_repos_sweep(
        cluster: Cluster, alice: dict[str, str]) -> None:
    admin = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    cluster.start_workers(["app"])
    theirs = cluster.start_sweep(APP_PLAN)
    cluster.wait_todo(theirs, "TODO-002", {"running"}, timeout=60)
    wait_until(lambda: admin.exists(f"coord:sweep:{{{theirs}}}:log:TODO-002:1"), 60,
               "app's todo to write its log")

    # Every verb refused, exit 2, saying why; nothing changed.
    before, said = _control(admin, theirs), _events(admin, theirs)
    assert json.loads(before["status"]) == "running", before
    for verb in (("sweep", "pause", theirs), ("sweep", "cancel", theirs),
                 ("sweep", "unpause", theirs), ("sweep", "resume", theirs),
                 ("sweep", "rollback", theirs), ("logs", "TODO-002", "--sweep", theirs)):
        res = _as_alice(cluster, alice, *verb)
        assert res.returncode == 2, (verb, res.returncode, res.stdout, res.stderr)
        assert "coord-person-alice" in res.stderr and "app" in res.stderr, (verb, res.stderr)
        assert "Traceback" not in res.stderr, res.stderr
        assert "started" not in res.stdout  # not one line of app's output
        assert _control(admin, theirs) == before, verb
    assert _events(admin, theirs) == said
    assert admin.sismember("coord:sweeps:active", theirs)
    # `coord logs TODO` (the newest sweep it ran in) looks only in her sweeps.
    res = _as_alice(cluster, alice, "logs", "TODO-002")
    assert res.returncode == 2 and "started" not in res.stdout, res.stdout + res.stderr

    # Redis refuses it too, not only the CLI: her user may not write app's sweep, run
    # a script that declares it, nor read its logs.
    raw = redis.Redis.from_url(alice["url"], decode_responses=True)
    key = f"coord:sweep:{{{theirs}}}"
    refused = {
        "hset": lambda: raw.hset(key, "status", '"cancelled"'),
        "script": lambda: raw.eval("return redis.call('HSET', KEYS[1], 'status', ARGV[1])",
                                   1, key, '"cancelled"'),
        "noop-script": lambda: raw.eval("return 1", 1, key),
        "del": lambda: raw.delete(key),
        "xadd": lambda: raw.xadd(f"{key}:events", {"kind": "sweep.cancelled"}),
        "logs": lambda: raw.xrange(f"{key}:log:TODO-002:1"),
        "attempts": lambda: raw.hgetall(f"{key}:attempts:TODO-002"),
    }
    allowed = []
    for name, call in refused.items():
        try:
            call()
            allowed.append(name)
        except redis.exceptions.NoPermissionError:
            pass
    assert allowed == [], f"alice may {allowed} on app's sweep"
    assert raw.hget(key, "status") == '"running"'  # she reads its record (sweep list)
    assert _control(admin, theirs) == before and _events(admin, theirs) == said
    res = _as_alice(cluster, alice, "sweep", "list", "--json")
    assert res.returncode == 0 and theirs in res.stdout, res.stdout + res.stderr

    # App's sweep runs on, untouched, to success.
    (cluster.repo_dir("app") / "go").write_text("")
    assert cluster.wait_ended(theirs)["status"] == "succeeded"
    raw.close()
    admin.close()


def test_creating_and_rotating_a_user_is_audited(cluster: Cluster,
                                                 alice: dict[str, str]) -> None:
    cluster.env["COORD_USER"] = "root-admin"
    rotated = cluster.cli_json("acl", "--rotate", "coord-person-alice")
    rows = cluster.cli_json("audit")
    created = [e for e in rows if e.get("op") == "acl.apply"]
    rotations = [e for e in rows if e.get("op") == "acl.rotate"]
    assert created and rotations, [e.get("op") for e in rows]
    said = created[-1]["decision"]
    assert said["created"] == ["coord-person-alice"], said
    assert said["users"][0]["user"] == "coord-person-alice" and \
        said["users"][0]["repos"] == ["lib"], said
    assert rotations[-1]["who"] == "root-admin"
    assert rotations[-1]["decision"]["user"] == "coord-person-alice"
    # Never a password, in the entries nor anywhere in the log's file.
    logs = list(cluster.eco.parent.glob(".*audit*"))
    assert logs, list(cluster.eco.parent.iterdir())
    text = json.dumps(rows) + "".join(p.read_text() for p in logs)
    for secret in (alice["created"]["coord-person-alice"], rotated["password"]):
        assert secret not in text


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="no redis-cli")
def test_the_printed_lines_write_the_persons_record_too(cluster: Cluster,
                                                        alice: dict[str, str]) -> None:
    admin = redis.Redis.from_url(cluster.redis_url, decode_responses=True)
    text = cluster.cli("acl", "--person", "carol", "--repos", "lib", "--role",
                       "operator").stdout
    assert text.splitlines()[0].startswith("SET coord:acl:person:carol '"), text
    fed = subprocess.run(["redis-cli", "-u", cluster.redis_url],
                         input=text.replace("'>PASSWORD'", "'>pw-carol'"),
                         capture_output=True, text=True, timeout=30)
    assert fed.returncode == 0 and "ERR" not in fed.stdout, fed.stdout + fed.stderr
    record = json.loads(admin.get("coord:acl:person:carol"))
    assert (record["repos"], record["plans"], record["role"]) == (["lib"], [LIB_PLAN],
                                                                  "operator")
    env = {**cluster.env, "COORD_REDIS_URL": _url(cluster, "coord-person-carol", "pw-carol")}
    res = subprocess.run(cluster.argv("sweep", "list", "--json"), cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=90)
    assert res.returncode == 0, res.stderr
    # Without its record a person's CLI refuses (fail closed), saying how to fix it.
    admin.delete("coord:acl:person:carol")
    res = subprocess.run(cluster.argv("plan", "sweep", LIB_PLAN), cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=90)
    assert res.returncode == 2 and "coord acl --person carol" in res.stderr, res.stderr
    admin.close()
