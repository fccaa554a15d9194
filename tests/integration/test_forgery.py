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
    from coordination.runtime.checkpoints import todo_field

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
