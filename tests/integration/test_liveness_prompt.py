"""Liveness shown within seconds (issue #29, item 8), with real `coord worker` processes.

- A SIGKILLed worker's running todo is shown with its worker gone (`worker_gone: true`,
  "running (worker gone)") within two of the worker's beats, while the todo itself stays
  `running` until its lease expires (the lease is long here, so only liveness can say it).
- A worker stopped cleanly shows as stopping while its todo finishes (the todo never reads
  "worker gone"), then leaves `coord workers` as it exits, not three missed beats later.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from tests.integration.helpers import Cluster, T, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

BEAT = 1.0  # COORD_WORKER_HEARTBEAT for the kill test
# Polled through the library (the status document `sweep status --json` prints, read in
# milliseconds): slack for a loaded 2-core machine, not for CLI start-ups.
SLACK = 1.5


def _todo(cluster: Cluster, sid: str, todo: str = "TODO-001") -> dict[str, object]:
    st = cluster.cli_json("sweep", "status", sid)
    return st["todos"][todo]  # type: ignore[no-any-return]


def test_a_killed_workers_running_todo_shows_its_worker_gone_within_two_beats(
    cluster: Cluster,
) -> None:
    # A lease far longer than the test: the todo stays `running` (re-run semantics
    # untouched) and nothing but the liveness beat can tell that its worker died.
    cluster.env.update(COORD_WORKER_HEARTBEAT=str(BEAT), COORD_LEASE_TTL="60")
    cluster.write_catalog({"a": 1}, [T("TODO-001", "a", "sleep 30")])
    (w,) = cluster.start_workers(["a"])
    sid = cluster.start_sweep()
    cluster.wait_todo(sid, "TODO-001", {"running"})

    alive = _todo(cluster, sid)
    assert alive["status"] == "running" and alive["worker_gone"] is False, alive
    assert str(alive["worker"]).startswith(w.hostname_prefix), alive

    w.kill()  # SIGKILL, its todo's process group with it
    killed = time.monotonic()
    gone = wait_until(
        lambda: (lambda t: t if t["worker_gone"] else None)(cluster.status(sid)["todos"]["TODO-001"]),
        2 * BEAT + SLACK + 10, "the killed worker's todo to show it gone", interval=0.05)
    took = time.monotonic() - killed
    assert took <= 2 * BEAT + SLACK, f"worker shown gone {took:.1f} s after the kill"
    # Display only: the todo is still running by its checkpoint, its lease not expired.
    assert gone["status"] == "running", gone

    assert _todo(cluster, sid)["worker_gone"] is True  # the CLI's document says so too
    res = cluster.cli("sweep", "status", sid)
    assert res.returncode == 0, res.stderr
    row = next(line for line in res.stdout.splitlines() if line.startswith("TODO-001"))
    assert "running (worker gone)" in row, res.stdout


def test_a_cleanly_stopped_worker_is_stopping_then_leaves_workers_as_it_exits(
    cluster: Cluster,
) -> None:
    # Beats 10 s apart: its record would linger 30 s if it only expired.
    cluster.env["COORD_WORKER_HEARTBEAT"] = "10"
    # The todo runs until the test lets it end (a file in its checkout): no race with a
    # loaded machine's slow CLI calls.
    cluster.write_catalog({"a": 1, "b": 1}, [
        T("TODO-001", "a", "while [ ! -f go ]; do sleep 0.1; done")])
    wa, wb = cluster.start_workers(["a", "b"])
    wait_until(lambda: len(cluster.cli_json("workers")) == 2, 20, "two live workers")

    # Idle: SIGTERM, and it is off the list at the first look after it exited.
    wb.signal(signal.SIGTERM)
    assert wb.proc.wait(timeout=30) == 0, wb.log_text()[-3000:]
    assert [x["pid"] for x in cluster.cli_json("workers")] == [wa.pid]

    # Mid-todo: stopping while the todo finishes, never "worker gone"; off the list on exit.
    sid = cluster.start_sweep()
    cluster.wait_todo(sid, "TODO-001", {"running"})
    wa.signal(signal.SIGTERM)
    ws = wait_until(lambda: (lambda x: x if x and x[0]["stopping"] else None)(
        cluster.cli_json("workers")), 10, "the worker to show it is stopping", interval=0.1)
    assert ws[0]["pid"] == wa.pid, ws
    todo = _todo(cluster, sid)
    assert todo["status"] == "running" and todo["worker_gone"] is False, todo
    res = cluster.cli("workers")
    assert "(stopping)" in res.stdout, res.stdout
    (cluster.repo_dir("a") / "go").write_text("")
    try:
        assert wa.proc.wait(timeout=30) == 0, wa.log_text()[-3000:]
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker did not exit within 30 s of SIGTERM:\n{wa.log_text()[-3000:]}")
    assert cluster.cli_json("workers") == []
    assert cluster.wait_sweep(sid, timeout=20)["todos"]["TODO-001"]["status"] == "succeeded"
