"""`milestone.completed` and `milestone.reopened` (issue 52, item 2): once each, in the
ledger, the webhooks and the history, through real `coord worker`s on a real
redis-server; syncing the same sweep again, or any later command, adds none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import ROOT, Cluster, wait_until, write_api_catalog
from tests.integration.receivers import Endpoint
from tests.servers import free_port

pytestmark = pytest.mark.timeout(240)


def _catalog(c: Cluster, port: int) -> None:
    write_api_catalog(c.root, [
        {"url": f"http://127.0.0.1:{port}/hook",
         "events": ["milestone.completed", "milestone.reopened"]}], """  plans:
    - id: PLAN-001
      title: milestones
      status: active
      milestones:
        - {id: MS-001, title: first, todos: [TODO-001, TODO-002]}
        - {id: MS-002, title: second, todos: [TODO-003]}
  todos:
    - {id: TODO-001, task: one, repo: api, plan: PLAN-001, run: "true", undo: "true"}
    - {id: TODO-002, task: two, repo: api, plan: PLAN-001, run: "true", undo: "true",
        blocked_by: [TODO-001]}
    - {id: TODO-003, task: three, repo: api, plan: PLAN-001, run: "exit 3",
        blocked_by: [TODO-002]}
""")


def _milestone_events(c: Cluster) -> list[dict[str, Any]]:
    return [e.to_dict() for e in c.rt.events.read()
            if str(e.kind).startswith("milestone.")]


def _delivered(endpoint: Endpoint) -> list[dict[str, Any]]:
    with endpoint.lock:
        bodies = [json.loads(r["body"]) for r in endpoint.requests]
    return [b for b in bodies if str(b.get("kind", "")).startswith("milestone.")]


def test_milestone_completed_and_reopened_once_each(cluster: Cluster) -> None:
    port = free_port()
    endpoint = Endpoint(port, fail_first=0)
    try:
        _catalog(cluster, port)
        cluster.start_workers(["api"])
        sid = cluster.start_sweep()
        assert cluster.wait_sweep(sid, timeout=90)["status"] == "failed"

        synced = cluster.cli_json("sweep", "sync", sid)
        assert [m["milestone"] for m in synced["milestones_completed"]] == ["MS-001"]
        # Synced again, and more commands: nothing new.
        again = cluster.cli_json("sweep", "sync", sid)
        assert again["milestones_completed"] == []
        cluster.cli_json("plan", "status", "PLAN-001")
        cluster.cli_json("todo", "list")

        events = _milestone_events(cluster)
        assert [(e["kind"], e["milestone"], e["sweep_id"]) for e in events] == [
            ("milestone.completed", "MS-001", sid)], events
        assert events[0]["todos"] == ["TODO-001", "TODO-002"] and events[0]["plan"] == "PLAN-001"
        wait_until(lambda: len(_delivered(endpoint)) >= 1, 60, "the milestone webhook")
        hist = cluster.cli_json("history", "search", "MS-001", "--kind", "edit")
        assert [r["op"] for r in hist if r.get("op", "").startswith("milestone.")] == [
            "milestone.completed"], hist

        # A rollback undoes MS-001's todos: reopened, once.
        cluster.cli_json("sweep", "rollback", sid, "--wait", timeout=120)
        cluster.cli_json("sweep", "sync", sid)
        events = _milestone_events(cluster)
        assert [(e["kind"], e["milestone"]) for e in events] == [
            ("milestone.completed", "MS-001"), ("milestone.reopened", "MS-001")], events
        wait_until(lambda: len(_delivered(endpoint)) >= 2, 60, "the reopened webhook")
        kinds = [(b["kind"], b.get("milestone") or b.get("data", {}).get("milestone"))
                 for b in _delivered(endpoint)]
        assert sorted(k for k, _ in kinds) == ["milestone.completed", "milestone.reopened"]
        assert endpoint.repeats == []
        hist = cluster.cli_json("history", "search", "MS-001", "--kind", "edit")
        assert sorted(r["op"] for r in hist if r.get("op", "").startswith("milestone.")) == [
            "milestone.completed", "milestone.reopened"], hist
    finally:
        endpoint.close()


def test_embedded_milestone_completed_delivered_once(tmp_path: Path) -> None:
    port = free_port()
    endpoint = Endpoint(port, fail_first=0)
    try:
        eco = write_api_catalog(tmp_path, [
            {"url": f"http://127.0.0.1:{port}/hook", "events": ["milestone.completed"]}],
            """  plans:
    - id: PLAN-001
      title: milestones
      status: active
      milestones:
        - {id: MS-001, title: first, todos: [TODO-001]}
  todos:
    - {id: TODO-001, task: one, repo: api, plan: PLAN-001, run: "true"}
""")
        env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
        env.update(COORD_USER="tester", PYTHONPATH=str(ROOT))
        argv = [sys.executable, "-m", "coordination.cli.main", "--file", str(eco)]
        res = subprocess.run([*argv, "plan", "sweep", "PLAN-001", "--wait", "--json"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert res.returncode == 0, res.stderr
        synced = json.loads(res.stdout)["synced"]
        assert [m["milestone"] for m in synced["milestones_completed"]] == ["MS-001"]
        wait_until(lambda: len(_delivered(endpoint)) >= 1, 30, "the embedded milestone webhook")
        again = subprocess.run([*argv, "sweep", "sync", json.loads(res.stdout)["sweep_id"],
                                "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                               timeout=120)
        assert again.returncode == 0 and json.loads(again.stdout)["milestones_completed"] == []
        events = subprocess.run([*argv, "events", "--json"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        kinds = [e["kind"] for e in json.loads(events.stdout)]
        assert kinds.count("milestone.completed") == 1, kinds
        assert [b["kind"] for b in _delivered(endpoint)] == ["milestone.completed"]
        assert endpoint.repeats == []
    finally:
        endpoint.close()


def test_by_hand_completion_announces_once(tmp_path: Path) -> None:
    """`todo complete` / `todo update --status` that complete (or undo) a milestone say
    so once, as a sweep's sync does (embedded: the catalog's own server)."""
    eco = write_api_catalog(tmp_path, (), """  plans:
    - id: PLAN-001
      title: by hand
      status: active
      milestones:
        - {id: MS-001, title: first, todos: [TODO-001, TODO-002]}
  todos:
    - {id: TODO-001, task: one, repo: api, plan: PLAN-001, run: "true"}
    - {id: TODO-002, task: two, repo: api, plan: PLAN-001, run: "true"}
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env.update(COORD_USER="tester", PYTHONPATH=str(ROOT))

    def run(*args: str) -> str:
        res = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file",
                              str(eco), *args], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120)
        assert res.returncode == 0 and "note:" not in res.stderr, res.stderr
        return res.stdout

    def milestone_kinds() -> list[str]:
        return [e["kind"] for e in json.loads(run("events", "--json"))
                if e["kind"].startswith("milestone.")]

    run("todo", "complete", "TODO-001")
    run("todo", "complete", "TODO-002")
    run("todo", "complete", "TODO-002")  # completed already: nothing moves
    assert milestone_kinds() == ["milestone.completed"]
    run("todo", "update", "TODO-001", "--status", "failed")
    run("todo", "update", "TODO-001", "--assignee", "ana")  # no status: nothing to say
    assert milestone_kinds() == ["milestone.completed", "milestone.reopened"]
    hist = json.loads(run("history", "search", "MS-001", "--kind", "edit", "--json"))
    assert sorted(r["op"] for r in hist) == ["milestone.completed", "milestone.reopened"]
