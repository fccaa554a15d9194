"""Resumed sweeps end to end, with real workers: what the CLI prints and keeps."""

from __future__ import annotations

import json

import pytest

from tests.integration.helpers import T, Cluster

pytestmark = pytest.mark.timeout(180)


def test_resumed_and_finished_sweep_follows_and_expires(cluster: Cluster) -> None:
    cluster.write_catalog({"api": 2}, [
        T("TODO-001", "api", "printf '%05000d' 0; test -f ok || exit 3"),
        T("TODO-002", "api", "test -f ok || exit 4"),
        T("TODO-003", "api", "true", blocked_by=["TODO-001", "TODO-002"]),
    ])
    cluster.start_workers(["api"])
    res = cluster.cli("plan", "sweep", "PLAN-001", "--wait", "--json")
    assert res.returncode == 1, res.stderr[-3000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]  # a failed sweep is no crash either
    sid = json.loads(res.stdout)["sweep_id"]
    rt = cluster.rt
    assert rt.redis.ttl(rt.keys.sweep(sid)) > 0  # ended: kept for the retention only

    (cluster.repo_dir("api") / "ok").write_text("")
    res = cluster.cli("sweep", "resume", sid, "--wait")
    # The resume sends a level of two (a chord) again: still no Celery result left for
    # interpreter shutdown.
    assert res.returncode == 0, res.stderr[-3000:]
    for bad in ("Traceback", "Exception ignored"):
        assert bad not in res.stderr, res.stderr[-3000:]
    assert rt.redis.ttl(rt.keys.sweep(sid)) > 0  # ended again: kept again for the retention

    # The current run ended before anyone followed: the replay holds both ends,
    # and following stops at the second, not at the first.
    follow = cluster.cli("events", "--sweep", sid, "--follow", "--json", timeout=60)
    assert follow.returncode == 0, follow.stderr[-3000:]
    ends = [e for e in map(json.loads, follow.stdout.splitlines()) if e["kind"] == "sweep.finished"]
    assert [(e["status"], e["run"]) for e in ends] == [("failed", 0), ("succeeded", 1)]

    st = cluster.cli_json("sweep", "status", sid)
    t1 = st["todos"]["TODO-001"]
    assert t1["status"] == "succeeded" and t1["stdout_bytes"] == 5000 and t1["stderr_bytes"] == 0
    assert t1["output_tail"].count("0") >= 5000  # all of it: more than the old 4 KiB


def test_worker_path_option_expands_home(cluster: Cluster) -> None:
    """`coord worker --path ~/x` (quoted, or `--path=~/x`: no shell expands it) is ~/x."""
    home = cluster.root / "home"
    (home / "work" / "api").mkdir(parents=True)
    cluster.env["HOME"] = str(home)
    cluster.write_catalog({"api": 1}, [T("TODO-001", "api", "pwd > where")])
    cluster.start_worker("api", extra=["--path", "~/work/api"])
    res = cluster.cli("plan", "sweep", "PLAN-001", "--wait")
    assert res.returncode == 0, res.stderr[-3000:]
    assert (home / "work" / "api" / "where").read_text().strip() == str(home / "work" / "api")
