"""Sagas end to end: real redis-server, one real `coord worker` per repo, the real CLI.

Undo commands append their todo id to one evidence file, so the order they ran in,
across four worker processes, is read back from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import CHAIN_IDS, PLAN, Cluster, T, read_lines, undoable_chain

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
REPOS = ("a", "b", "c", "d")


def undo(log: Path, tid: str) -> str:
    return f"echo {tid} >> {log}"


def test_rollback_across_four_repos_undoes_in_reverse_order(cluster: Cluster,
                                                             tmp_path: Path) -> None:
    log = tmp_path / "undo.log"
    ids = undoable_chain(cluster, lambda tid: undo(log, tid))
    done = cluster.cli_json("plan", "sweep", PLAN, "--wait")
    sid = done["sweep_id"]
    assert done["status"] == "succeeded"
    preview = cluster.cli_json("sweep", "rollback", sid, "--dry-run")
    assert preview["levels"] == [[ids[3]], [ids[2]], [ids[1]], [ids[0]]]
    assert read_lines(log) == []  # a dry run runs nothing
    out = cluster.cli_json("sweep", "rollback", sid, "--wait", timeout=150)
    assert out["status"] == "rolled_back", out.get("reason")
    assert read_lines(log) == list(reversed(ids))
    assert {t: v["status"] for t, v in out["todos"].items()} == dict.fromkeys(ids, "compensated")
    kinds = [e["kind"] for e in cluster.events(sid)]
    assert "sweep.rolling_back" in kinds and kinds.count("todo.compensated") == 4


def test_atomic_sweep_failing_in_its_second_level_rolls_itself_back(cluster: Cluster,
                                                                    tmp_path: Path) -> None:
    log = tmp_path / "undo.log"
    todos = [
        T("TODO-001", "a", "true", undo=undo(log, "TODO-001")),
        # fails late: TODO-003, in the same level on another repo, has run by then
        T("TODO-002", "b", "sleep 2 && false", blocked_by=["TODO-001"],
          undo=undo(log, "TODO-002")),
        T("TODO-003", "c", "true", blocked_by=["TODO-001"], undo=undo(log, "TODO-003")),
        T("TODO-004", "d", "true", blocked_by=["TODO-003"], undo=undo(log, "TODO-004")),
    ]
    cluster.write_catalog(dict.fromkeys(REPOS, 1), todos)
    cluster.start_workers(REPOS)
    out = cluster.cli_json("plan", "sweep", PLAN, "--atomic", "--wait", expect=1, timeout=150)
    assert out["status"] == "rolled_back", out.get("reason")
    status = {t: v["status"] for t, v in out["todos"].items()}
    assert status == {"TODO-001": "compensated", "TODO-002": "failed",
                      "TODO-003": "compensated", "TODO-004": "cancelled"}
    assert read_lines(log) == ["TODO-003", "TODO-001"]


def test_a_failing_undo_ends_the_rollback_failed_and_stops_what_comes_after(
        cluster: Cluster, tmp_path: Path) -> None:
    log = tmp_path / "undo.log"
    ids = undoable_chain(
        cluster, lambda tid: undo(log, tid) + (" && false" if tid == CHAIN_IDS[2] else ""))
    sid = cluster.cli_json("plan", "sweep", PLAN, "--wait")["sweep_id"]
    out = cluster.cli_json("sweep", "rollback", sid, "--wait", expect=1, timeout=150)
    assert out["status"] == "rollback_failed"
    assert f"{ids[2]} compensation_failed" in out["reason"]
    status = {t: v["status"] for t, v in out["todos"].items()}
    assert status == {ids[3]: "compensated", ids[2]: "compensation_failed",
                      ids[1]: "skipped", ids[0]: "skipped"}
    assert read_lines(log) == [ids[3], ids[2]]  # the undos after the failed one never ran


def test_pause_during_a_running_level_holds_the_next_one(cluster: Cluster) -> None:
    """Level 0 runs while the sweep is paused: it finishes and is recorded, level 1 is
    not sent; on unpause the sweep goes on to the end."""
    go = cluster.root / "go"  # level 0 runs until the test has paused the sweep
    wait_go = f"while [ ! -e {go} ]; do sleep 0.05; done"
    todos = [T("TODO-001", "a", wait_go), T("TODO-002", "b", wait_go),
             T("TODO-003", "c", "true", blocked_by=["TODO-001", "TODO-002"])]
    cluster.write_catalog(dict.fromkeys(REPOS, 1), todos)
    cluster.start_workers(REPOS[:3])
    sid = cluster.start_sweep()
    cluster.wait_todo(sid, "TODO-001", {"running"})
    paused = cluster.cli_json("sweep", "pause", sid)
    assert paused["status"] == "paused" and paused["changed"] is True
    go.touch()
    for t in ("TODO-001", "TODO-002"):
        cluster.wait_todo(sid, t, {"succeeded"})
    # The level ended while paused: whoever ended it would have queued level 1 at once.
    st = cluster.status(sid)
    assert st["status"] == "paused"
    assert st["todos"]["TODO-003"]["status"] == "pending"
    assert "TODO-003" not in [e.get("todo_id") for e in cluster.events(sid)
                              if e["kind"] == "todo.queued"]
    assert cluster.cli_json("sweep", "unpause", sid)["status"] in ("running", "queued")
    assert cluster.wait_sweep(sid)["status"] == "succeeded"
