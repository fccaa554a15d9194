"""Honest endings (issue #39: 4, 5, 6, 17): what a waiting command shows last, and what
the sync writes, say what the latest run did. Real redis-server, one real `coord worker`
per repo, the real CLI, each command its own process as a user's terminals are.

* a todo a `plan sweep --again` skips (its blocker failed now) is `pending` in the
  catalog, not the `completed` of the run before (4);
* `--atomic --wait` (and `sweep rollback --wait`) ends on a line naming the outcome and
  its trigger, after the catalog's line (5);
* a compensated todo keeps its change's `output_tail` beside its undo's
  `undo_output_tail`, in `sweep status --json` and in the human `sweep status` (6);
* cancelled from another terminal, the waiting command's last table shows the todo
  that ran as it ended (`cancelled`, not `running`); the sync leaves the todo that never
  started `pending` and marks the one that ran `skipped` (17).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import PLAN, Cluster, T, todo_processes, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def catalog_statuses(cluster: Cluster) -> dict[str, str]:
    doc = cluster.catalog()["coordination"]
    out = {t["id"]: str(t.get("status") or "pending") for t in doc["todos"]}
    out.update({p["id"]: str(p.get("status") or "draft") for p in doc["plans"]})
    return out


def last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1].strip()


def test_a_todo_skipped_by_a_run_again_is_pending_not_the_completed_of_before(
        cluster: Cluster, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    cluster.write_catalog({"a": 1, "b": 1}, [
        T("TODO-001", "a", f"test ! -e {broken}"),
        T("TODO-002", "b", "true", blocked_by=["TODO-001"]),
    ])
    cluster.start_workers(["a", "b"])
    assert cluster.cli_json("plan", "sweep", PLAN, "--wait")["status"] == "succeeded"
    assert catalog_statuses(cluster) == {"TODO-001": "completed", "TODO-002": "completed",
                                         PLAN: "completed"}
    broken.touch()  # upstream moved: run everything again; TODO-001 fails now
    out = cluster.cli_json("plan", "sweep", PLAN, "--again", "--wait", expect=1)
    assert {t: v["status"] for t, v in out["todos"].items()} == {
        "TODO-001": "failed", "TODO-002": "skipped"}
    assert out["synced"]["unrun"] == ["TODO-002"] and out["synced"]["failed"] == ["TODO-001"]
    assert out["synced"]["reopened"] is True
    # what the latest run left: TODO-002 did not run, so it is not done
    assert catalog_statuses(cluster) == {"TODO-001": "failed", "TODO-002": "pending",
                                         PLAN: "active"}
    # the human ending says so
    broken.unlink()
    cluster.cli_json("plan", "sweep", PLAN, "--wait")
    broken.touch()
    human = cluster.cli("plan", "sweep", PLAN, "--again", "--wait", timeout=120)
    assert human.returncode == 1, human.stderr
    assert "1 not run this time (pending again)" in human.stderr, human.stderr
    # ... and so does `sweep sync` of a sweep that was not synced when it ended
    broken.unlink()
    cluster.cli_json("plan", "sweep", PLAN, "--wait")
    broken.touch()
    r = cluster.cli("plan", "sweep", PLAN, "--again", "--wait", "--no-sync", timeout=120)
    assert r.returncode == 1, r.stderr
    assert catalog_statuses(cluster)["TODO-002"] == "completed"  # not synced yet
    synced = cluster.cli("sweep", "sync", r.stdout.strip())
    assert synced.returncode == 0, synced.stderr
    assert "not run this time (pending again) TODO-002" in synced.stderr, synced.stderr
    assert catalog_statuses(cluster)["TODO-002"] == "pending"


def test_atomic_wait_ends_on_the_outcome_and_keeps_both_output_tails(
        cluster: Cluster, tmp_path: Path) -> None:
    cluster.write_catalog({"a": 1, "b": 1}, [
        T("TODO-001", "a", "echo change of TODO-001", undo="echo undo of TODO-001"),
        T("TODO-002", "b", "echo broken >&2; exit 1", blocked_by=["TODO-001"]),
    ])
    cluster.start_workers(["a", "b"])
    r = cluster.cli("plan", "sweep", PLAN, "--atomic", "--wait", timeout=150)
    assert r.returncode == 1, r.stderr
    sid = r.stdout.strip()
    assert "rolled_back" in r.stderr and "catalog " in r.stderr
    # not the catalog's line: the outcome and its trigger
    assert last_line(r.stderr) == "rolled back: TODO-002 failed (exit 1)", r.stderr

    st = cluster.cli_json("sweep", "status", sid)
    assert st["rollback_reason"] == "after TODO-002 failed: exit 1"
    undone = st["todos"]["TODO-001"]
    assert undone["status"] == "compensated"
    assert "change of TODO-001" in undone["output_tail"], undone
    assert "undo of TODO-001" in undone["undo_output_tail"], undone
    assert "undo of" not in undone["output_tail"]
    assert "undo_output_tail" not in st["todos"]["TODO-002"]  # never undone: one tail

    # an undo that fails: --wait ends on it and the trigger; `sweep status` shows the
    # undo's output (why it failed) and the change's
    cluster.write_catalog({"a": 1, "b": 1}, [
        T("TODO-001", "a", "echo change of TODO-001",
          undo="echo undo of TODO-001 broke >&2; exit 4"),
        T("TODO-002", "b", "echo broken >&2; exit 1", blocked_by=["TODO-001"]),
    ])
    r = cluster.cli("plan", "sweep", PLAN, "--atomic", "--wait", timeout=150)
    assert r.returncode == 1, r.stderr
    sid = r.stdout.strip()
    assert last_line(r.stderr) == (
        "rollback failed: TODO-001 compensation_failed (exit 4); it rolled back after "
        "TODO-002 failed (exit 1)"), r.stderr
    human = cluster.cli("sweep", "status", sid)
    assert human.returncode == 0, human.stderr
    text = human.stdout
    assert "last 5 lines of its undo's output" in text, text
    assert "undo of TODO-001 broke" in text and "change of TODO-001" in text, text
    assert text.index("undo of TODO-001 broke") < text.index("change of TODO-001"), text
    st = cluster.cli_json("sweep", "status", sid)
    failed = st["todos"]["TODO-001"]
    assert failed["status"] == "compensation_failed"
    assert "undo of TODO-001 broke" in failed["undo_output_tail"]
    assert "change of TODO-001" in failed["output_tail"]


#: Dies a moment after it is told to (its TERM trap takes 1.5 s, within the worker's
#: 2 s grace): a cancel ends the sweep before the todo records how it ended.
SLOW_TO_DIE = "trap 'sleep 1.5; exit 143' TERM; echo started; sleep 60 & wait"


def test_a_cancel_from_another_terminal_ends_the_wait_on_settled_todos(
        cluster: Cluster) -> None:
    cluster.write_catalog({"a": 1, "b": 1}, [
        T("TODO-001", "a", SLOW_TO_DIE),
        T("TODO-002", "b", "true", blocked_by=["TODO-001"]),
    ])
    cluster.start_workers(["a", "b"])
    waiting = cluster.popen("plan", "sweep", PLAN, "--wait")
    assert waiting.stdout is not None
    sid = waiting.stdout.readline().strip()  # its first line, as soon as it is queued
    cluster.wait_todo(sid, "TODO-001", {"running"})
    wait_until(lambda: todo_processes(sid, "TODO-001"), 10, "TODO-001's process")

    cancelled = cluster.cli_json("sweep", "cancel", sid, timeout=60)
    assert cancelled["cancelled"] is True
    _, err = waiting.communicate(timeout=90)
    assert waiting.returncode == 1, err
    table = [line.split() for line in err.splitlines() if line.startswith("TODO-")]
    rows = {cells[0]: cells[2] for cells in table}
    # the last table shows how TODO-001 ended, not the `running` of a moment before
    assert rows == {"TODO-001": "cancelled", "TODO-002": "cancelled"}, err
    # TODO-001 ran and was stopped: skipped; TODO-002 never started: still pending
    assert catalog_statuses(cluster) == {"TODO-001": "skipped", "TODO-002": "pending",
                                         PLAN: "active"}
    assert "0 todos completed, 0 failed, 1 skipped" in err, err
