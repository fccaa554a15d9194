"""A keyless Redis writer campaign: every coord process (CLI, workers) holds
``COORD_SIGNING_KEY`` and runs with ``COORD_REQUIRE_SIGNED=1``; a raw redis-py client,
which can write anything to Redis but holds no key, forges

1. a cache entry for a failing test, carrying a version for the deploy after it: the
   real worker refuses it (naming the entry), runs the test, which fails, and the deploy
   is skipped: the outcome of an honest run; `coord why` says why the entry was refused;
2. the outputs record of a build, between the build's finish and the deploy's start: the
   deploy fails before it runs, naming the record, and is never handed the forged value;
   `sweep status --json` keeps the outputs and says why they were refused.

(Forged verify records and votes are covered beside the landing and the gates.)
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import redis

from tests.integration.helpers import PLAN, Cluster, T, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

KEY = "integration-evidence-signing-key"


def keyed(cluster: Cluster) -> redis.Redis:
    """Every coord process of the cluster signs and requires signatures; the raw client
    the forger writes with (no key: it never goes through coord)."""
    cluster.env["COORD_SIGNING_KEY"] = KEY
    cluster.env["COORD_REQUIRE_SIGNED"] = "1"
    return redis.Redis.from_url(cluster.redis_url)


def git_checkout(cluster: Cluster, repo: str) -> None:
    d = cluster.repo_dir(repo)
    (d / "src.txt").write_text("one\n")
    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "i"]):
        subprocess.run(["git", *args], cwd=d, check=True, capture_output=True)


def test_a_forged_cache_entry_is_refused_and_the_failing_test_fails(cluster: Cluster) -> None:
    raw = keyed(cluster)
    deployed = cluster.root / "deployed"
    cluster.write_catalog({"check": 1, "deploy": 2}, [
        T("TODO-001", "check", "echo testing; test -f src.ok"),  # a test that fails
        T("TODO-002", "deploy", f'echo "$COORD_IN_TODO_001_VERSION" > {deployed}',
          blocked_by=["TODO-001"]),
    ])
    cluster.eco.write_text(cluster.eco.read_text().replace(
        "    concurrency: 1\n", "    concurrency: 1\n    cache: true\n"))  # check only
    git_checkout(cluster, "check")
    cluster.start_workers({"check": 1, "deploy": 1})

    honest = cluster.cli_json("plan", "sweep", PLAN, "--wait", "--no-sync", expect=1,
                              timeout=120)
    statuses = {t: v["status"] for t, v in honest["todos"].items()}
    assert statuses == {"TODO-001": "failed", "TODO-002": "skipped"}, honest
    key = cluster.cli_json("why", "TODO-001")["key"]
    assert key, "the worker computed the test's key"

    # The forger plants a success of the failing test under its key, with a version
    # for the deploy, exactly as an honest worker would store it but without a seal.
    forged = {"key": key, "exit_code": 0, "output_tail": "testing\nall passed\n",
              "duration": 0.5, "worker": "check@forger", "sweep_id": honest["sweep_id"],
              "run": 1, "todo_id": "TODO-001", "finished_at": 1.0, "parts": {},
              "outputs": {"VERSION": "6.6.6-evil"}}
    raw.set(cluster.rt.keys.cache_entry(key), json.dumps(forged))
    raw.lpush(cluster.rt.keys.cache_recent("TODO-001"), key)

    again = cluster.cli_json("plan", "sweep", PLAN, "--wait", "--no-sync", expect=1,
                             timeout=120)
    sid = again["sweep_id"]
    statuses = {t: v["status"] for t, v in again["todos"].items()}
    assert statuses == {"TODO-001": "failed", "TODO-002": "skipped"}, again  # as honest
    assert "testing" in again["todos"]["TODO-001"]["output_tail"]  # it really ran
    assert again["todos"]["TODO-001"]["outputs"] == {}
    assert not deployed.exists()  # the forged version reached no deploy
    assert not any(e["kind"] == "todo.cached" for e in cluster.events(sid))

    entry = f"cache entry {key[:12]} of TODO-001"
    doc = cluster.cli_json("why", "TODO-001", "--sweep", sid)
    assert doc["outcome"] == "refused", doc
    assert entry in doc["refused"] and "unsigned" in doc["refused"], doc
    assert doc["nearest"] is None, doc  # the planted entry is never shown as a success
    text = cluster.cli("why", "TODO-001", "--sweep", sid)
    assert text.returncode == 0 and "refused" in text.stdout and entry in text.stdout, text
    assert any(w.repo == "check" and entry in w.log_text() for w in cluster.workers)


def test_forged_outputs_never_reach_the_deploy(cluster: Cluster) -> None:
    from coordination.runtime.sweep_fields import todo_field

    raw = keyed(cluster)
    gate, deployed = cluster.root / "go", cluster.root / "deployed"
    cluster.write_catalog({"build": 1, "stage": 1, "deploy": 1}, [
        T("TODO-001", "build", "echo VERSION=1.0 > $COORD_OUTPUT"),
        # beside the build, holds the deploy back until the forger has written
        T("TODO-002", "stage", f"while [ ! -f {gate} ]; do sleep 0.05; done"),
        T("TODO-003", "deploy", f'echo "$COORD_IN_TODO_001_VERSION" > {deployed}',
          blocked_by=["TODO-001", "TODO-002"]),
    ])
    cluster.start_workers({"build": 1, "stage": 1, "deploy": 1})
    sid = cluster.start_sweep()
    built = cluster.wait_todo(sid, "TODO-001", {"succeeded"}, timeout=60)
    assert built["outputs"] == {"VERSION": "1.0"} and built.get("outputs_seal"), built

    # The forger rewrites the build's outputs in its checkpoint (its seal left as it was),
    # while the stage todo holds the deploy back.
    where, field = cluster.rt.keys.sweep(sid), todo_field("TODO-001")

    def forge(cp: dict[str, Any]) -> None:
        cp["outputs"] = {"VERSION": "6.6.6-evil"}
        raw.hset(where, field, json.dumps(cp))

    stored = raw.hget(where, field)
    assert stored is not None
    forge(json.loads(stored))
    gate.touch()

    st = cluster.wait_sweep(sid, timeout=60)
    record = f"outputs record of TODO-001 in sweep {sid}"
    deploy = st["todos"]["TODO-003"]
    assert st["status"] == "failed", st
    assert st["todos"]["TODO-002"]["status"] == "succeeded", st
    assert deploy["status"] == "failed" and deploy["exit_code"] is None, deploy  # not run
    assert "its inputs were refused" in deploy["reason"] and record in deploy["reason"], deploy
    assert "signature invalid" in deploy["reason"], deploy
    assert not deployed.exists()  # never ran, never saw the forged value

    doc = cluster.cli_json("sweep", "status", sid)
    build = doc["todos"]["TODO-001"]
    assert build["outputs"] == {"VERSION": "6.6.6-evil"}  # status keeps what is there...
    assert record in build["outputs_refused"], build  # ...and says why it is not handed on
    assert wait_until(lambda: any(w.repo == "deploy" and record in w.log_text()
                                  for w in cluster.workers), 10, "the deploy worker's log")


def gated(cluster: Cluster, gate: str) -> None:
    """a: TODO-001 (build) -> TODO-002 (the gate) -> TODO-003 (deploy: touches
    ``deployed``)."""
    cluster.write_catalog({"a": 2}, [
        T("TODO-001", "a", "touch built"),
        T("TODO-002", "a", "true", blocked_by=["TODO-001"]),
        T("TODO-003", "a", "touch deployed", blocked_by=["TODO-002"]),
    ])
    text = cluster.eco.read_text()
    head, tail = text.split("    - id: TODO-002\n", 1)
    tail = tail.replace('      run: "true"\n', f"      gate: {gate}\n", 1)
    cluster.eco.write_text(head + "    - id: TODO-002\n" + tail)


def forge_gate(raw: redis.Redis, cluster: Cluster, sid: str, todo: str,
               **fields: Any) -> None:
    """The keyless writer rewrites the gate's checkpoint (one field of the sweep's hash)."""
    from coordination.runtime.sweep_fields import todo_field

    where, field = cluster.rt.keys.sweep(sid), todo_field(todo)
    stored = raw.hget(where, field)
    assert stored is not None
    raw.hset(where, field, json.dumps({**json.loads(stored), **fields}))


def refused_gate(cluster: Cluster, sid: str) -> dict[str, Any]:
    """The sweep after the forged gate was refused: failed, saying which record and why;
    the gate failed, the deploy never ran, and a sync marks nothing of it completed."""
    st = cluster.wait_sweep(sid, timeout=60)
    record = f"decision record of gate TODO-002 in sweep {sid}"
    assert st["status"] == "failed", st
    assert record in st["reason"] and "nothing after the gate runs" in st["reason"], st
    gate = st["todos"]["TODO-002"]
    assert gate["status"] == "failed" and record in gate["reason"], gate
    assert gate["reason"].startswith("its decision was refused: "), gate
    assert st["todos"]["TODO-003"]["status"] != "succeeded", st["todos"]["TODO-003"]
    assert not (cluster.repo_dir("a") / "deployed").exists()  # never ran
    failed = [e for e in cluster.events(sid)
              if e["kind"] == "todo.failed" and e.get("todo_id") == "TODO-002"]
    assert failed and failed[-1].get("refused") is True and record in failed[-1]["reason"]
    synced = cluster.cli_json("sweep", "sync", sid)
    assert "TODO-002" not in synced["completed"] and "TODO-003" not in synced["completed"]
    assert synced["plan_completed"] is False, synced
    todos = {t["id"]: t for t in cluster.catalog()["coordination"]["todos"]}
    assert todos["TODO-002"]["status"] == "failed", todos["TODO-002"]
    return st


def test_a_gate_status_forged_by_a_keyless_writer_never_lets_what_follows_run(
        cluster: Cluster) -> None:
    """The gate waits for 2 of ana and bo; the writer sets its checkpoint succeeded,
    approved by ana and bo, with no vote behind it (as the audit of 0.4 did): the
    supervision pass does not send the deploy, the gate and the sweep end failed,
    naming the gate's decision record ("unsigned")."""
    raw = keyed(cluster)
    gated(cluster, "{approvals: 2, from: [ana, bo]}")
    cluster.start_workers({"a": 1})
    sid = cluster.start_sweep()
    cluster.wait_todo(sid, "TODO-002", {"awaiting_approval"}, timeout=60)
    forge_gate(raw, cluster, sid, "TODO-002", status="succeeded", approvals=["ana", "bo"],
               reason="approved by ana, bo (2 of 2)", finished_at=1.0)
    st = refused_gate(cluster, sid)
    assert "unsigned" in st["reason"], st
    assert "the supervision pass" in st["reason"], st


def test_approvals_added_without_votes_never_pass_a_gate(cluster: Cluster) -> None:
    """ana really approves (one of two); the writer adds bo to the approvals and passes
    the gate: refused the same way, naming the record. An honest sweep of the same plan
    then passes on two real approvals, and its deploy runs."""
    raw = keyed(cluster)
    gated(cluster, "{approvals: 2, from: [ana, bo]}")
    cluster.start_workers({"a": 1})
    sid = cluster.start_sweep()
    cluster.wait_todo(sid, "TODO-002", {"awaiting_approval"}, timeout=60)
    env = dict(cluster.env, COORD_USER="ana")
    res = subprocess.run(cluster.argv("approve", "TODO-002", "--sweep", sid, "--json"),
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and json.loads(res.stdout)["approvals"] == ["ana"], res.stderr
    forge_gate(raw, cluster, sid, "TODO-002", status="succeeded", approvals=["ana", "bo"])
    refused_gate(cluster, sid)

    honest = cluster.start_sweep()
    cluster.wait_todo(honest, "TODO-002", {"awaiting_approval"}, timeout=60)
    for who in ("ana", "bo"):
        res = subprocess.run(cluster.argv("approve", "TODO-002", "--sweep", honest),
                             env=dict(cluster.env, COORD_USER=who), capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 0, res.stderr
    st = cluster.wait_sweep(honest, timeout=60)
    assert st["status"] == "succeeded", st
    assert (cluster.repo_dir("a") / "deployed").exists()
    gate = cluster.checkpoint(honest, "TODO-002")
    assert gate["decision"]["sig"].startswith("v1:") and gate["decision"]["run"] == 0, gate
