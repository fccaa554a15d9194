"""The catalog sync writes sealed outcomes of a sweep whose spec verifies, nothing else (#59).

Every coord process holds ``COORD_SIGNING_KEY``; a keyless writer (redis-py) acts on an
ended sweep nobody synced yet (``--no-sync``), before the next `coord todo list`, whose
catch-up syncs it:

1. it rewrites the failed tests' checkpoint ``succeeded``: the sync does not mark them
   completed (it reports their outcome refused), and `coord todo run` of the release
   after them is still refused, its blocker never having passed;
2. it rewrites the sweep's spec to name another plan's todo, with that todo's checkpoint
   ``succeeded``: the spec fails its check, nothing of the sweep is written, another plan
   is never touched, and `coord todo list` still answers (saying why on stderr).

(0.5 marked both completed, and the release ran.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from tests.integration.helpers import PLAN, Cluster, T

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

KEY = "integration-sealed-sync-signing-key"


def plans(cluster: Cluster) -> None:
    cluster.env.update(COORD_SIGNING_KEY=KEY, COORD_REQUIRE_SIGNED="1")
    cluster.write_catalog({"a": 1}, [
        T("TODO-001", "a", "exit 1"),  # the tests: they fail
        T("TODO-002", "a", "touch released", blocked_by=["TODO-001"]),
        T("TODO-003", "a", "touch other", plan="PLAN-002"),
        T("TODO-004", "a", "touch after-other", plan="PLAN-002", blocked_by=["TODO-003"]),
    ], plans=(PLAN, "PLAN-002"))


def statuses(cluster: Cluster) -> dict[str, Any]:
    return {t["id"]: t.get("status") for t in cluster.catalog()["coordination"]["todos"]}


def rewrite(raw: redis.Redis, cluster: Cluster, sid: str, todo: str, **fields: Any) -> None:
    from coordination.runtime.sweep_fields import todo_field

    where, field = cluster.rt.keys.sweep(sid), todo_field(todo)
    cp = json.loads(raw.hget(where, field) or "{}")
    raw.hset(where, field, json.dumps({**cp, **fields}))


def swept_unsynced(cluster: Cluster) -> str:
    """The plan swept, no process waiting for it: ended, and not synced yet (the next
    command's catch-up syncs it)."""
    cluster.start_workers(["a"])
    sid = cluster.start_sweep()
    st = cluster.wait_sweep(sid, timeout=120)
    assert {t: v["status"] for t, v in st["todos"].items()} == {
        "TODO-001": "failed", "TODO-002": "skipped"}, st
    assert not (cluster.rt.checkpoints.get_sweep_fields(sid, ("synced_at",)) or {}).get(
        "synced_at")
    return sid


def test_a_forged_success_is_not_synced_and_its_dependent_stays_blocked(
        cluster: Cluster) -> None:
    plans(cluster)
    sid = swept_unsynced(cluster)
    raw = redis.Redis.from_url(cluster.redis_url)
    rewrite(raw, cluster, sid, "TODO-001", status="succeeded", exit_code=0)
    rewrite(raw, cluster, sid, "TODO-002", status="succeeded", exit_code=0)

    listed = cluster.cli("todo", "list")  # its catch-up syncs the sweep
    assert listed.returncode == 0, listed.stderr
    assert f"sweep {sid} synced, but not the outcome of TODO-001 (outcome record of " \
        f"TODO-001 in sweep {sid}" in listed.stderr, listed.stderr
    assert statuses(cluster)["TODO-001"] != "completed", statuses(cluster)
    assert statuses(cluster)["TODO-002"] != "completed", statuses(cluster)
    assert (cluster.rt.checkpoints.get_sweep_fields(sid, ("synced_at",)) or {}).get(
        "synced_at"), "the catch-up synced it"

    ran = cluster.cli("todo", "run", "TODO-002", "--wait")
    assert ran.returncode != 0, ran.stdout
    assert "TODO-001" in ran.stderr, ran.stderr  # refused: its blocker never passed
    assert not (cluster.repo_dir("a") / "released").exists()


def test_sweep_sync_reports_each_refused_outcome(cluster: Cluster) -> None:
    plans(cluster)
    sid = swept_unsynced(cluster)
    raw = redis.Redis.from_url(cluster.redis_url)
    rewrite(raw, cluster, sid, "TODO-001", status="succeeded", exit_code=0)
    doc = cluster.cli_json("sweep", "sync", sid)
    assert doc["completed"] == [], doc
    assert f"outcome record of TODO-001 in sweep {sid}" in doc["refused"]["TODO-001"], doc
    assert "signature invalid" in doc["refused"]["TODO-001"], doc
    assert "TODO-002" not in doc["refused"] and doc["skipped"] == ["TODO-002"], doc
    text = cluster.cli("sweep", "sync", sid)  # (again: the same, said in words)
    assert "not written (their outcome was refused): TODO-001" in text.stdout + text.stderr


def test_a_rewritten_spec_syncs_nothing_and_never_another_plan(cluster: Cluster) -> None:
    plans(cluster)
    sid = swept_unsynced(cluster)
    raw = redis.Redis.from_url(cluster.redis_url)
    where = cluster.rt.keys.sweep(sid)
    spec = json.loads(json.loads(raw.hget(where, "spec")))
    spec["todos"]["TODO-003"] = {**spec["todos"]["TODO-002"], "preds": []}
    raw.hset(where, "spec", json.dumps(json.dumps(spec)))
    rewrite(raw, cluster, sid, "TODO-003", status="succeeded", exit_code=0)
    rewrite(raw, cluster, sid, "TODO-001", status="succeeded", exit_code=0)

    listed = cluster.cli("todo", "list", "--json")
    assert listed.returncode == 0, listed.stderr  # the list still answers...
    assert "spec fails its check" in listed.stderr, listed.stderr  # ...saying why
    after = statuses(cluster)
    assert after["TODO-003"] != "completed" and after["TODO-001"] != "completed", after
    res = cluster.cli("sweep", "sync", sid)
    assert res.returncode == 1 and "nothing of it is written" in res.stderr, res.stderr
    ran = cluster.cli("todo", "run", "TODO-004", "--wait")
    assert ran.returncode != 0 and "TODO-003" in ran.stderr, ran.stderr
    assert not (cluster.repo_dir("a") / "after-other").exists()
