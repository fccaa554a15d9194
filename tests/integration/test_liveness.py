"""Worker liveness: `coord workers`, workers per repo, and the sweep pre-flight."""

from __future__ import annotations

import signal
import time

import pytest

from coordination.messages import BROKER_PRIORITY

from tests.integration.helpers import Cluster, T, wait_until

pytestmark = pytest.mark.timeout(120)


def test_workers_list_shows_live_workers_and_drops_a_dead_one(cluster: Cluster) -> None:
    cluster.env["COORD_WORKER_HEARTBEAT"] = "0.5"
    # Long enough to be seen running by `coord workers` polls that take seconds each on
    # a loaded machine (with `sleep 2` they missed it); the teardown kills it.
    cluster.write_catalog({"api": 1, "web": 1}, [T("TODO-001", "api", "sleep 30")])
    wa, wb = cluster.start_workers(["api", "web"])
    ws = wait_until(lambda: (lambda x: x if len(x) == 2 else None)(cluster.cli_json("workers")),
                    20, "two live workers")
    by_pid = {w["pid"]: w for w in ws}
    assert set(by_pid) == {wa.pid, wb.pid}
    assert by_pid[wa.pid]["repos"] == ["api"] and by_pid[wa.pid]["name"].startswith("api-")
    assert {"name", "host", "pid", "repos", "running", "last_seen"} <= set(by_pid[wa.pid])
    sid = cluster.start_sweep()
    running = wait_until(
        lambda: [w for w in cluster.cli_json("workers") if w["running"]], 20, "a running todo")
    assert running[0]["pid"] == wa.pid and running[0]["running"] == [f"{sid}/TODO-001"]
    repos = {r["name"]: r["workers"] for r in cluster.cli_json("repo", "list")}
    assert repos == {"api": 1, "web": 1}
    wb.signal(signal.SIGKILL)
    killed = time.time()
    wait_until(lambda: [w["pid"] for w in cluster.cli_json("workers")] == [wa.pid], 10,
               "the killed worker to leave the list")
    assert time.time() - killed < 3 * 0.5 + 3  # three missed beats, and a CLI start or two


def test_sweep_warns_about_repos_without_a_worker_and_can_refuse(cluster: Cluster) -> None:
    cluster.write_catalog({"api": 1, "web": 1}, [
        T("TODO-001", "api", "true"), T("TODO-002", "web", "true")])
    cluster.start_workers(["api"])
    key = cluster.rt.keys.broker_queue(cluster.rt.keys.repo_queue("web"),
                                       BROKER_PRIORITY["medium"])
    res = cluster.cli("plan", "sweep", "PLAN-001", "--require-workers")
    assert res.returncode == 2 and "no live worker for repo(s) web" in res.stderr, res.stderr
    assert "coord worker --repo web" in res.stderr
    assert cluster.rt.checkpoints.list_sweeps() == [] and cluster.rt.redis.llen(key) == 0
    res = cluster.cli("plan", "sweep", "PLAN-001")
    assert res.returncode == 0 and "warning: no live worker for repo(s) web" in res.stderr
    assert "api" not in res.stderr.split("warning:")[1].split(":")[0]
