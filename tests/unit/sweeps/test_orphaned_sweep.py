"""An embedded sweep whose process was SIGKILLed (issue #39 item 3): `sweep status`
says it is orphaned, not running, and `sweep resume ID --wait` adopts it and finishes
it (0.3: "still running ... cancel it first", so it could never be resumed)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coordination.runtime.context import Runtime
from coordination.sweeps import runner
from tests.unit.support.cli import coord
from tests.unit.support.sweeps import PLAN, write_catalog
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[3]


def test_a_runner_is_gone_only_when_known_to_be() -> None:
    me = runner.this_process()
    assert me["pid"] == os.getpid() and me["host"] == socket.gethostname()
    assert runner.ended(me) is None  # this very process
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = runner.ended({**me, "pid": dead.pid})
    assert gone == f"its process ended (pid {dead.pid} on {me['host']})"
    # A pid reused by another process (another start time) is not the runner.
    assert runner.ended({**me, "started": "1"}) is not None
    # Never guessed: another host, nothing recorded (a sweep of before 0.4).
    assert runner.ended({**me, "pid": dead.pid, "host": "elsewhere"}) is None
    assert runner.ended(None) is None and runner.ended({}) is None


def test_two_adopters_of_one_orphan_one_wins(rt: Runtime) -> None:
    rt.checkpoints.create_sweep("S1", {"status": "running", "plan": "PLAN-001"})
    dead = {"host": socket.gethostname(), "pid": 1 << 30, "started": "5"}
    rt.checkpoints.update_sweep("S1", runner=dead)
    rec = rt.checkpoints.get_sweep_fields("S1", ("runner",))
    assert rec is not None and runner.orphaned(rec, embedded=True)
    assert runner.orphaned(rec, embedded=False) is None  # distributed: workers run it
    assert runner.adopt(rt, rec) is True
    assert runner.adopt(rt, rec) is False  # the second saw the same dead runner: too late
    now = rt.checkpoints.get_sweep_fields("S1", ("runner",))
    assert now is not None and now.get("runner") == runner.this_process()
    assert runner.orphaned(now, embedded=True) is None
    assert rt.checkpoints.swap_sweep_field("nope", "runner", None, dead) is False


def _env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("COORD_")}, **extra}


def _status(eco: Path, sid: str, *args: str) -> subprocess.CompletedProcess[str]:
    r = coord(eco, "sweep", "status", sid, *args)
    assert r.returncode == 0, r.stderr
    return r


def _gated(tmp_path: Path) -> tuple[Path, Path]:
    """A catalog whose TODO-001 runs until the gate file exists, TODO-002 after it."""
    gate = tmp_path / "go"
    eco = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": f"while [ ! -e {gate} ]; do sleep 0.05; done"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
    ])
    return eco, gate


def _sweep_then_sigkill(eco: Path, **env: str) -> tuple[str, int]:
    """An embedded `plan sweep` SIGKILLed while TODO-001 runs: its sweep id and pid
    (checked on the way: while the process lives, the sweep is running, not orphaned,
    and a resume is refused)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(eco), "plan", "sweep",
         PLAN, "--json"], cwd=ROOT, env=_env(**env), text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        def running() -> str | None:
            rows = json.loads(coord(eco, "sweep", "list", "--json").stdout)
            if not rows:
                return None
            sid = str(rows[0]["sweep_id"])
            doc = json.loads(_status(eco, sid, "--json").stdout)
            return sid if doc["todos"]["TODO-001"]["status"] == "running" else None

        sid = str(wait_for(running, timeout=60))
        # While its process lives: running, not orphaned; a resume is refused.
        doc = json.loads(_status(eco, sid, "--json").stdout)
        assert doc["status"] == "running" and "orphaned" not in doc, doc
        r = coord(eco, "sweep", "resume", sid, "--json")
        assert r.returncode == 2 and "still running" in r.stderr, r.stderr
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return sid, proc.pid


def test_a_killed_processs_sweep_reads_orphaned_and_resume_adopts_it(tmp_path: Path) -> None:
    eco, gate = _gated(tmp_path)
    sid, pid = _sweep_then_sigkill(eco)
    doc = json.loads(_status(eco, sid, "--json").stdout)
    assert doc["status"] == "running", doc  # the contract's status stays; it is marked
    assert doc["orphaned"] == f"its process ended (pid {pid} on {socket.gethostname()})"
    text = _status(eco, sid).stdout
    assert "orphaned: its process ended" in text and ": running" not in text, text
    assert f"coord sweep resume {sid}" in text
    # `sweep list` (--json and for people) and the web view's documents say it too
    # (0.4.0: only `sweep status` did; the others said running, its duration growing).
    _listed_orphaned(eco, sid, pid)
    gate.touch()
    # The next process adopts it: the dead holder's lease expires, TODO-001 runs again,
    # TODO-002 after it; the outcome is synced.
    r = coord(eco, "sweep", "resume", sid, "--wait", "--json", env={"COORD_LEASE_TTL": "2"},
              timeout=110)
    assert r.returncode == 0, r.stderr
    assert f"sweep {sid} was orphaned (its process ended" in r.stderr, r.stderr
    doc = json.loads(r.stdout)
    assert doc["status"] == "succeeded", doc
    assert doc["synced"]["completed"] == ["TODO-001", "TODO-002"], doc
    assert "orphaned" not in doc


def _listed_orphaned(eco: Path, sid: str, pid: int) -> None:
    why = f"its process ended (pid {pid} on {socket.gethostname()})"
    rows = json.loads(coord(eco, "sweep", "list", "--json").stdout)
    row = next(r for r in rows if r["sweep_id"] == sid)
    assert row["status"] == "running" and row["orphaned"] == why, row
    human = coord(eco, "sweep", "list")
    assert human.returncode == 0, human.stderr
    line = next(x for x in human.stdout.splitlines() if x.startswith(sid))
    assert f"orphaned: {why}" in line and " running " not in line, human.stdout
    # The web view, over the catalog's embedded server as `coord ui` reads it.
    from starlette.testclient import TestClient

    from coordination.connection.embedded_server import release
    from coordination.settings import Settings
    from coordination.ui.app import create_app

    # (as the CLI's subprocesses run it: no COORD_ variable of this process's)
    rt = Runtime.create(Settings(redis_url=None, namespace="coord"), catalog=eco)
    assert rt.settings.embedded and rt.url is not None
    try:
        web = TestClient(create_app(rt, eco), base_url="http://localhost")
        listed = next(r for r in web.get("/api/sweeps").json() if r["sweep_id"] == sid)
        assert listed["orphaned"] == why, listed
        shown = next(r for r in web.get("/api/overview").json()["sweeps"]
                     if r["sweep_id"] == sid)
        assert shown["orphaned"] == why and shown["status"] == "running", shown
        assert web.get(f"/api/sweeps/{sid}").json()["orphaned"] == why
        assert web.get(f"/api/sweeps/{sid}/graph").json()["sweep"]["orphaned"] == why
    finally:
        release(rt.url)


def test_sweep_watch_adopts_an_orphan_and_finishes_it(tmp_path: Path) -> None:
    """`coord sweep watch ID` of an orphaned embedded sweep takes it over (recorded as
    its runner: not orphaned while it watches, so a resume elsewhere is refused), runs
    it on its workers and ends with its outcome, synced."""
    eco, gate = _gated(tmp_path)
    sid, pid = _sweep_then_sigkill(eco, COORD_LEASE_TTL="3")  # its lease expires soon
    before = json.loads(_status(eco, sid, "--json").stdout)
    assert before["orphaned"]
    killed_run = before["todos"]["TODO-001"]["started_at"]

    def todo_001() -> dict[str, Any]:
        return dict(json.loads(_status(eco, sid, "--json").stdout)["todos"]["TODO-001"])

    watch = subprocess.Popen(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(eco), "sweep", "watch",
         sid, "--json"], cwd=ROOT, env=_env(COORD_LEASE_TTL="2"), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: "orphaned" not in json.loads(_status(eco, sid, "--json").stdout),
                 timeout=30, what="the watcher to adopt the sweep")
        r = coord(eco, "sweep", "resume", sid, "--json")
        assert r.returncode == 2 and "still running" in r.stderr, r.stderr
        # TODO-001 runs again on the watcher's workers once the dead holder's lease expired.
        wait_for(lambda: (t := todo_001())["status"] == "running"
                 and t["started_at"] != killed_run, timeout=60, what="TODO-001 running again")
        gate.touch()
        out, err = watch.communicate(timeout=60)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.communicate()
    assert watch.returncode == 0, err
    assert f"sweep {sid} was orphaned (its process ended (pid {pid}" in err, err
    doc = json.loads(out)
    assert doc["status"] == "succeeded", doc
    assert doc["synced"]["completed"] == ["TODO-001", "TODO-002"], doc
    assert "orphaned" not in doc
