"""Issue #29 end to end: real redis-server, one real `coord worker` per repo, the real CLI.

A rollback that failed half-way is finished by `coord sweep rollback` again (retrying
only what was left, in reverse order), `sweep resume` refuses to re-apply it; and
`--atomic=stop` kills a long-running sibling at the first failure, records it
cancelled, says why it rolls back on `--wait`'s output and keeps the trigger in the
sweep's reason."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.helpers import (
    PLAN,
    Cluster,
    T,
    read_lines,
    todo_processes,
    undoable_chain,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
REPOS = ("a", "b", "c", "d")
IDS = [f"TODO-00{i}" for i in range(1, 5)]


def test_a_failed_rollback_is_finished_by_rolling_back_again(cluster: Cluster,
                                                              tmp_path: Path) -> None:
    log, fixed = tmp_path / "undo.log", tmp_path / "fixed"
    undoable_chain(cluster, lambda tid: (f"test -f {fixed} && " if tid == IDS[2] else "")
                   + f"echo {tid} >> {log}")
    sid = cluster.cli_json("plan", "sweep", PLAN, "--wait")["sweep_id"]
    failed = cluster.cli_json("sweep", "rollback", sid, "--wait", expect=1, timeout=150)
    assert failed["status"] == "rollback_failed"
    assert read_lines(log) == [IDS[3]]

    refused = cluster.cli("sweep", "resume", sid)
    assert refused.returncode == 2, refused.stderr
    assert f"coord sweep rollback {sid}" in refused.stderr

    preview = cluster.cli_json("sweep", "rollback", sid, "--dry-run")
    assert preview["retry"] is True
    assert preview["levels"] == [[IDS[2]], [IDS[1]], [IDS[0]]]
    assert preview["was"] == {IDS[2]: "compensation_failed", IDS[1]: "skipped",
                              IDS[0]: "skipped"}
    assert read_lines(log) == [IDS[3]] and cluster.status(sid)["status"] == "rollback_failed"

    fixed.touch()
    done = cluster.cli_json("sweep", "rollback", sid, "--wait", timeout=150)
    assert done["status"] == "rolled_back", done.get("reason")
    assert read_lines(log) == list(reversed(IDS))  # the three left, after the first
    assert {t: v["status"] for t, v in done["todos"].items()} == dict.fromkeys(IDS, "compensated")
    assert done["reason"] == "rolled back by user (it had succeeded); 4 todos compensated"


def test_atomic_stop_kills_a_long_running_sibling_and_rolls_back(cluster: Cluster,
                                                                 tmp_path: Path) -> None:
    log = tmp_path / "undo.log"
    todos = [
        T(IDS[0], "a", "true", undo=f"echo {IDS[0]} >> {log}"),
        T(IDS[1], "b", "sleep 1; exit 1", blocked_by=[IDS[0]], undo=f"echo {IDS[1]} >> {log}"),
        T(IDS[2], "c", "sleep 60", blocked_by=[IDS[0]], undo=f"echo {IDS[2]} >> {log}",
          timeout=120),
        T(IDS[3], "d", "true", blocked_by=[IDS[2]], undo=f"echo {IDS[3]} >> {log}"),
    ]
    cluster.write_catalog(dict.fromkeys(REPOS, 1), todos)
    cluster.start_workers(REPOS)
    began = time.monotonic()
    # (a 60 s sibling that is not stopped makes this time out)
    res = cluster.cli("plan", "sweep", PLAN, "--atomic=stop", "--wait", timeout=45)
    took = time.monotonic() - began
    assert res.returncode == 1, res.stderr
    assert took < 40, f"took {took:.1f} s"
    sid = res.stdout.strip()
    why = f"rolled back after {IDS[1]} failed: exit 1; 1 todo compensated"
    # distributed too: the line saying why it rolls back, and the trigger in the reason
    assert f"rolling back after {IDS[1]} failed: exit 1" in res.stderr, res.stderr
    assert f"rolled_back - {why}" in res.stderr, res.stderr
    st = cluster.status(sid)
    assert st["reason"] == why
    status = {t: v["status"] for t, v in st["todos"].items()}
    assert status == {IDS[0]: "compensated", IDS[1]: "failed", IDS[2]: "cancelled",
                      IDS[3]: "cancelled"}
    assert st["todos"][IDS[2]]["reason"] == f"atomic sweep stopped: {IDS[1]} failed: exit 1"
    assert read_lines(log) == [IDS[0]]
    assert todo_processes(sid, IDS[2]) == []  # its process group is gone
