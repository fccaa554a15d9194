"""No todo holds a key (#59): a real `coord worker` runs todos whose code is the attacker's.

Every coord process holds ``COORD_SIGNING_KEY`` and requires signatures; the worker's
environment also holds a Redis password (its URL names an ACL user of the session's
server), forge tokens, the audit key and the forge webhook secret. A script committed in
the repo, run by an ordinary todo:

1. finds none of them in its environment (the Redis URL has no password), only
   ``COORD_RUN_TOKEN``, the key derived for its own run;
2. forges the gate decision coord's count would seal (the binding, the spec digest, two
   approvers, every field computed as coord computes it) with the best key it has, and
   writes it over the waiting gate with redis-py: the gate's decision is refused
   ("signature invalid"), the deploy after it never runs, the sweep fails, a sync marks
   nothing of it completed. (On 0.5, whose todos held the signing key, the forged gate
   passed and the deploy ran.)

And a todo's context value, which it sets through its worker sealed with its run's key,
is bound to that run: another todo reads it; set again by a later run, the older sealed
value put back by a keyless writer is refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import redis

from tests.integration.contexts import context_plan, raw_value
from tests.integration.helpers import PLAN, Cluster, T

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

KEY = "integration-todo-secrets-signing-key"
SECRETS = {"COORD_SIGNING_KEY": KEY, "GITHUB_TOKEN": "ghp_secret", "GITLAB_TOKEN": "glpat-x",
           "GITEA_TOKEN": "gitea-x", "COORD_AUDIT_KEY": "audit-secret",
           "COORD_FORGE_WEBHOOK_SECRET": "hook-secret", "COORD_DEPLOY_TOKEN": "mine"}
PASSWORD = "worker-redis-password"

# The attacker's script, committed in the repo: it uses coord's own library to make the
# record exactly as coord's count makes it, with whatever key its environment holds.
ATTACK = r'''
import json, os, sys, time
import redis
from coordination.keys import Keys
from coordination.runtime.sweep_fields import todo_field
from coordination.trust import evidence

env = dict(os.environ)
with open("env.json", "w") as f:
    json.dump(env, f)
key = env.get("COORD_SIGNING_KEY") or env.get("COORD_SIGNING_KEY_PREVIOUS") \
    or env.get("COORD_RUN_TOKEN")
r = redis.Redis.from_url(env["COORD_REDIS_URL"], decode_responses=True)
sid, gate = env["COORD_SWEEP_ID"], sys.argv[1]
where = Keys(env.get("COORD_NAMESPACE", "coord")).sweep(sid)
deadline = time.time() + 60
while time.time() < deadline:
    cp = json.loads(r.hget(where, todo_field(gate)) or "{}")
    if cp.get("status") == "awaiting_approval":
        break
    time.sleep(0.05)
spec = json.loads(r.hget(where, "spec"))
spec = json.loads(spec) if isinstance(spec, str) else spec  # (a record field: JSON)
todos = spec["todos"]
digest = evidence.spec_digest_of(spec["plan"], todos)
preds = {p: json.loads(r.hget(where, todo_field(p)) or "{}") for p in todos[gate]["preds"]}
binding = evidence.binding_of(digest, preds)
who = ["ana", "bo"]
decision = evidence.decision_stamp((key,), sid, gate, digest, binding, int(spec["run"]),
                                   who, {})
decision.pop("kid")  # (a key id would name which key sealed it: say none)
cp.update(status="succeeded", approvals=who, binding=binding, decision=decision,
          reason="approved by ana, bo (2 of 2)", finished_at=time.time())
r.hset(where, todo_field(gate), json.dumps(cp))
print("forged with", "the signing key" if key == env.get("COORD_SIGNING_KEY") else "a run token")
'''


def worker_user(cluster: Cluster) -> str:
    """An ACL user with a password on the session's server: the workers' Redis URL."""
    admin = redis.Redis.from_url(cluster.redis_url)
    admin.acl_setuser("coord-todo-secrets", enabled=True, passwords=[f"+{PASSWORD}"],
                      keys=["*"], channels=["*"], commands=["+@all"], reset=True)
    head, _, rest = cluster.redis_url.partition("://")
    return f"{head}://coord-todo-secrets:{PASSWORD}@{rest}"


def committed(cluster: Cluster, repo: str, files: dict[str, str]) -> None:
    d = cluster.repo_dir(repo)
    for name, text in files.items():
        (d / name).write_text(text)
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "i"]):
        subprocess.run(["git", *args], cwd=d, check=True, capture_output=True)


def test_a_script_in_the_repo_holds_no_secret_and_cannot_pass_a_gate(cluster: Cluster) -> None:
    url = worker_user(cluster)
    cluster.env.update(SECRETS, COORD_REQUIRE_SIGNED="1", COORD_REDIS_URL=url)
    cluster.write_catalog({"a": 3}, [
        T("TODO-001", "a", f"{sys.executable} attack.py TODO-002"),
        T("TODO-010", "a", "true"),
        T("TODO-002", "a", "true", blocked_by=["TODO-010"]),
        T("TODO-003", "a", "touch deployed", blocked_by=["TODO-002"]),
    ])
    text = cluster.eco.read_text()
    head, tail = text.split("    - id: TODO-002\n", 1)
    tail = tail.replace('      run: "true"\n', "      gate: {approvals: 2, from: [ana, bo]}\n", 1)
    cluster.eco.write_text(head + "    - id: TODO-002\n" + tail)
    committed(cluster, "a", {"attack.py": ATTACK})
    cluster.start_workers(["a"])
    sid = cluster.start_sweep(strategy="eager")  # the gate opens while the attack runs
    attack = cluster.wait_todo(sid, "TODO-001", {"succeeded", "failed"}, timeout=90)
    assert attack["status"] == "succeeded", attack.get("output_tail")  # it wrote its forgery

    st = cluster.wait_sweep(sid, timeout=90)
    record = f"decision record of gate TODO-002 in sweep {sid}"
    assert st["status"] == "failed", st
    gate = st["todos"]["TODO-002"]
    assert gate["status"] == "failed" and record in gate["reason"], gate
    assert "signature invalid" in gate["reason"], gate
    assert st["todos"]["TODO-003"]["status"] != "succeeded", st["todos"]["TODO-003"]
    assert not (cluster.repo_dir("a") / "deployed").exists()  # never ran
    synced = cluster.cli_json("sweep", "sync", sid)
    assert "TODO-002" not in synced["completed"] and "TODO-003" not in synced["completed"]
    assert "forged with a run token" in attack.get("output_tail", ""), attack
    seen: dict[str, str] = json.loads((cluster.repo_dir("a") / "env.json").read_text())
    for name, value in SECRETS.items():
        assert name not in seen, name
        assert not any(value in v for v in seen.values()), name
    assert PASSWORD not in seen["COORD_REDIS_URL"] and "@" not in seen["COORD_REDIS_URL"]
    assert seen["COORD_REDIS_URL"].split("://")[1] == cluster.redis_url.split("://")[1]
    assert len(seen["COORD_RUN_TOKEN"]) == 64 and seen["COORD_CONTEXT_SOCKET"]


def test_a_todos_context_value_is_bound_to_its_run(cluster: Cluster) -> None:
    cluster.env.update(COORD_SIGNING_KEY=KEY, COORD_REQUIRE_SIGNED="1")
    flag, got = cluster.root / "go", cluster.root / "got.json"
    context_plan(cluster, flag, got)
    cluster.start_workers(["a"])
    first = cluster.cli_json("plan", "sweep", PLAN, "--wait", "--no-sync", expect=1,
                             timeout=120)
    sid = first["sweep_id"]
    assert first["todos"]["TODO-001"]["status"] == "failed", first
    old = raw_value(cluster, sid)
    record: dict[str, Any] = json.loads(old)
    assert record["by"] == {"sweep": sid, "todo": "TODO-001", "run": 0, "plan": PLAN}, record
    assert record["sig"].startswith("v1:") and json.loads(record["value"]) == {"n": 1}

    flag.touch()
    again = cluster.cli_json("sweep", "resume", sid, "--wait", "--no-sync", timeout=120)
    assert again["status"] == "succeeded", again
    assert json.loads(got.read_text()) == {"n": 2}  # TODO-002 read run 1's, through its worker
    assert json.loads(raw_value(cluster, sid))["by"]["run"] == 1

    doc = cluster.cli_json("context", "get", "build", "--sweep", sid)
    assert doc["value"] == {"n": 2}, doc
    # The keyless writer puts run 0's sealed value back: genuine, and refused.
    redis.Redis.from_url(cluster.redis_url).set(
        cluster.rt.keys.context_value(f"sweep:{sid}", "build"), old)
    res = cluster.cli("context", "get", "build", "--sweep", sid)
    assert res.returncode == 1, res
    assert f"context value 'build' of sweep:{sid}" in res.stderr, res.stderr
    assert "set in run 0, but run 1 ran it again" in res.stderr, res.stderr
    assert '"n": 1' not in res.stdout and "{\"n\":1}" not in res.stdout
