"""Live catalog state (issue 52, item 1): a second `coord` process sees a running todo
``in_progress`` while it runs, embedded and distributed (real redis-server, real
`coord worker`), without the file being written; and a distributed sweep nobody
watched reaches the file at the next `coord` command, in one audited sync."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coordination.catalog.audit import log as audit
from coordination.catalog.reads.live import marker_dir
from tests.integration.helpers import PLAN, ROOT, Cluster, T, catalog_text, wait_until

pytestmark = pytest.mark.timeout(240)

# Runs until the test creates ``go`` in its checkout (no fixed sleep on either side).
HOLD = "while [ ! -f go ]; do sleep 0.05; done; echo held"


def _status(todos: list[dict[str, Any]], tid: str) -> str:
    return next(str(t["status"]) for t in todos if t["id"] == tid)


def _file_status(eco: Path, tid: str) -> str:
    import yaml

    doc = yaml.safe_load(eco.read_text())
    item = next(t for t in doc["coordination"]["todos"] if t["id"] == tid)
    return str(item.get("status") or "pending")


def _syncs(eco: Path) -> list[dict[str, Any]]:
    log = audit.log_path(eco)
    return [e for e in audit.read(log) if "sync" in str(e.get("op"))] if log.exists() else []


def _reads_show_running(run: Any, repo: str) -> None:
    """Every read a user has shows TODO-001 in_progress (the plan's other todo pending)."""
    listed = run("todo", "list", "--json")
    assert _status(listed, "TODO-001") == "in_progress", listed
    assert _status(listed, "TODO-002") == "pending", listed
    assert run("todo", "list", "--status", "in_progress", "--json")[0]["id"] == "TODO-001"
    assert run("todo", "show", "TODO-001", "--json")["status"] == "in_progress"
    st = run("plan", "status", PLAN, "--json")
    assert st["todos"]["in_progress"] == 1 and st["todos"]["pending"] == 1, st
    assert not st["complete"]
    repo_st = json.dumps(run("repo", "status", repo, "--json"))
    assert "in_progress" in repo_st, repo_st


def _web_view_and_mcp_show_running(cluster: Cluster, eco: Path) -> None:
    """The web view's and the MCP tools' reads (in this process, on the same Redis)."""
    from starlette.testclient import TestClient

    from coordination.catalog.reads import live
    from coordination.mcp_server.operations import Operations
    from coordination.ui.app import create_app

    try:
        client = TestClient(create_app(cluster.rt, eco), base_url="http://localhost")
        plan = client.get(f"/api/plans/{PLAN}").json()
        assert plan["todos"]["in_progress"] == 1, plan
        ops = Operations(eco)
        assert ops.get_todo("TODO-001")["status"] == "in_progress"  # type: ignore[index]
        listed = ops.list_todos()
        assert _status(listed, "TODO-001") == "in_progress"  # type: ignore[arg-type]
        assert ops.plan_status(PLAN)["todos"]["in_progress"] == 1  # type: ignore[index]
    finally:
        live.set_overlay(eco, {})


def test_distributed_running_todo_is_in_progress_and_unwatched_sweep_reaches_file(
        cluster: Cluster) -> None:
    eco = cluster.write_catalog({"api": 1}, [T("TODO-001", "api", HOLD),
                                             T("TODO-002", "api", "true",
                                               blocked_by=["TODO-001"])])
    cluster.start_worker("api")
    sid = cluster.start_sweep()
    assert (marker_dir(eco) / sid).exists()
    cluster.wait_todo(sid, "TODO-001", {"running"}, timeout=60)

    _reads_show_running(cluster.cli_json, "api")
    _web_view_and_mcp_show_running(cluster, eco)
    # Nothing was written to the file by those reads.
    assert _file_status(eco, "TODO-001") == "pending"
    assert _syncs(eco) == []

    (cluster.repo_dir("api") / "go").touch()
    st = cluster.wait_sweep(sid, timeout=90)
    assert st["status"] == "succeeded", st
    assert _file_status(eco, "TODO-001") == "pending"  # nobody watched it: not synced yet

    # The next command (any read) brings the file up to date, in one audited sync.
    listed = cluster.cli_json("todo", "list")
    assert [_status(listed, t) for t in ("TODO-001", "TODO-002")] == ["completed", "completed"]
    assert _file_status(eco, "TODO-001") == _file_status(eco, "TODO-002") == "completed"
    assert cluster.catalog()["coordination"]["plans"][0]["status"] == "completed"
    assert not (marker_dir(eco) / sid).exists()
    assert cluster.rt.checkpoints.get_sweep_fields(sid, ("synced_at",)).get("synced_at")
    cluster.cli_json("plan", "status", PLAN)
    cluster.cli_json("todo", "list")
    assert len(_syncs(eco)) == 1, _syncs(eco)  # once, not at every command


def _embedded_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env.update(COORD_USER="tester", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return env


def test_embedded_running_todo_is_in_progress_in_another_process(tmp_path: Path) -> None:
    (tmp_path / "repos" / "api").mkdir(parents=True)
    eco = tmp_path / "ecosystem.yaml"
    eco.write_text(catalog_text({"api": 1}, [
        T("TODO-001", "api", HOLD), T("TODO-002", "api", "true", blocked_by=["TODO-001"])]))
    env = _embedded_env()
    argv = [sys.executable, "-m", "coordination.cli.main", "--file", str(eco)]

    def run(*args: str) -> Any:
        res = subprocess.run([*argv, *args], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120)
        assert res.returncode == 0, f"coord {' '.join(args)}: {res.stdout}\n{res.stderr}"
        return json.loads(res.stdout)

    sweep = subprocess.Popen([*argv, "plan", "sweep", PLAN, "--wait", "--json"], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    seen: list[str] = []

    def running() -> bool:
        # A sweep that ended (or failed to start) is reported with what it said, not
        # waited on to the deadline.
        assert sweep.poll() is None, f"the sweep ended ({sweep.returncode})"
        seen.append(_status(run("todo", "list", "--json"), "TODO-001"))
        return seen[-1] == "in_progress"

    try:
        try:
            wait_until(running, 90, "the embedded sweep's running todo to read in_progress")
        except AssertionError as exc:
            if sweep.poll() is None:
                os.killpg(sweep.pid, 9)
            out, err = sweep.communicate(timeout=10)
            raise AssertionError(f"{exc}; TODO-001 read {seen[-3:]}; the sweep's output: "
                                 f"{out[-2000:]!r} {err[-4000:]!r}") from None
        _reads_show_running(run, "api")
        assert _file_status(eco, "TODO-001") == "pending"
        (tmp_path / "repos" / "api" / "go").touch()
        out, err = sweep.communicate(timeout=120)
        assert sweep.returncode == 0, err
        assert json.loads(out)["synced"]["plan_completed"] is True  # its own sync, intact
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, 9)
            sweep.communicate(timeout=10)
    listed = run("todo", "list", "--json")
    assert [_status(listed, t) for t in ("TODO-001", "TODO-002")] == ["completed", "completed"]
    assert _file_status(eco, "TODO-001") == "completed"
    assert len(_syncs(eco)) == 1, _syncs(eco)
    assert list(marker_dir(eco).iterdir()) == []
