"""What a succeeding distributed `coord plan sweep --wait` prints: its summary, no traceback."""

from __future__ import annotations

import pytest

from tests.integration.helpers import T, Cluster

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("strategy", ["levels", "eager"])
def test_waited_sweep_exits_without_tracebacks(cluster: Cluster, strategy: str) -> None:
    cluster.write_catalog({"api": 2, "web": 1}, [
        T("TODO-001", "api", "true"),
        T("TODO-002", "api", "true"),
        T("TODO-003", "web", "true", blocked_by=["TODO-001", "TODO-002"]),
        T("TODO-004", "web", "true", blocked_by=["TODO-003"]),
    ])
    cluster.start_workers(["api", "web"])
    res = cluster.cli("plan", "sweep", "PLAN-001", "--wait", "--strategy", strategy)
    assert res.returncode == 0, res.stderr[-3000:]
    for bad in ("Traceback", "Exception ignored", "Error"):
        assert bad not in res.stderr, res.stderr[-3000:]


def test_worker_and_sweep_find_a_checkout_under_home(cluster: Cluster) -> None:
    home = cluster.root / "home"
    (home / "src" / "api").mkdir(parents=True)
    cluster.env["HOME"] = str(home)
    cluster.write_catalog({"api": 1}, [T("TODO-001", "api", "pwd > where")])
    cluster.eco.write_text(cluster.eco.read_text().replace("path: repos/api", "path: ~/src/api"))
    cluster.start_workers(["api"])
    res = cluster.cli("plan", "sweep", "PLAN-001", "--wait")
    assert res.returncode == 0, res.stderr[-3000:]
    assert (home / "src" / "api" / "where").read_text().strip() == str(home / "src" / "api")


def test_events_follow_of_a_resumed_sweep_waits_for_its_current_run(cluster: Cluster) -> None:
    import json

    cluster.write_catalog({"api": 1}, [T("TODO-001", "api", "test -f ok || exit 3")])
    cluster.start_workers(["api"])
    res = cluster.cli("plan", "sweep", "PLAN-001", "--wait", "--json")
    assert res.returncode == 1, res.stderr[-3000:]
    sid = json.loads(res.stdout)["sweep_id"]
    (cluster.repo_dir("api") / "ok").write_text("")
    assert cluster.cli_json("sweep", "resume", sid)["rerun"] == ["TODO-001"]
    follow = cluster.cli("events", "--sweep", sid, "--follow", "--json", timeout=60)
    assert follow.returncode == 0, follow.stderr[-3000:]
    ends = [e for e in map(json.loads, follow.stdout.splitlines()) if e["kind"] == "sweep.finished"]
    # It used to stop at the replayed end of the first run (failed).
    assert [e["status"] for e in ends] == ["failed", "succeeded"]


def test_resume_dry_run_and_only_from_the_cli(cluster: Cluster) -> None:
    import json

    cluster.write_catalog({"api": 1, "web": 1}, [
        T("TODO-001", "api", "test -f ok"),
        T("TODO-002", "web", "true", blocked_by=["TODO-001"]),
        T("TODO-003", "web", "false"),
    ])
    cluster.start_workers(["api", "web"])
    res = cluster.cli("plan", "sweep", "PLAN-001", "--wait", "--json")
    sid = json.loads(res.stdout)["sweep_id"]
    preview = cluster.cli_json("sweep", "resume", sid, "--dry-run", "--only", "TODO-001")
    assert preview["rerun"] == ["TODO-001", "TODO-002"] and preview["dependents"] == ["TODO-002"]
    human = cluster.cli("sweep", "resume", sid, "--dry-run")
    assert human.returncode == 0 and "TODO-003" in human.stdout and "TODO-002" in human.stdout
    assert cluster.status(sid)["run"] == 0  # nothing was re-run
    (cluster.repo_dir("api") / "ok").write_text("")
    res = cluster.cli("sweep", "resume", sid, "--only", "TODO-001", "--wait", "--json")
    st = json.loads(res.stdout)
    assert {t: v["status"] for t, v in st["todos"].items()} == {
        "TODO-001": "succeeded", "TODO-002": "succeeded", "TODO-003": "failed"}


def test_todo_run_distributed(cluster: Cluster) -> None:
    import json

    cluster.write_catalog({"api": 1, "web": 1}, [
        T("TODO-001", "api", "echo $COORD_TODO_ID > ran"),
        T("TODO-002", "web", "true", blocked_by=["TODO-001"]),
    ])
    cluster.start_workers(["api"])
    out = cluster.cli_json("todo", "run", "TODO-001")  # without --wait: queued, returns
    sid = out["sweep_id"]
    assert sid.startswith("TODO-001-") and out["todos"] == 1
    st = cluster.wait_sweep(sid)
    assert st["status"] == "succeeded" and list(st["todos"]) == ["TODO-001"]
    assert (cluster.repo_dir("api") / "ran").read_text().strip() == "TODO-001"
    # Nobody synced TODO-001's sweep: the next coord command does (0.5: the catalog
    # catches up without `sweep watch`), so its dependent is not refused as blocked.
    assert cluster.cli_json("todo", "show", "TODO-001")["status"] == "completed"
    cluster.start_workers(["web"])
    res = cluster.cli("todo", "run", "TODO-002", "--wait", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["status"] == "succeeded", res.stderr
    assert cluster.cli_json("todo", "show", "TODO-001")["status"] == "completed"
