"""`coord events --follow` without --sweep prints only new events, no backlog (#50: 0.4
replayed the newest 10); `-n 10` the newest 10 first, then new ones (issue #29, item
10b). With --sweep: the sweep's own story. Embedded, real processes."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.unit.support.cli import ROOT, coord
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(180)

WAIT = 60.0  # seconds: the deadline of every read below (a loaded 2-core machine)


class Follower:
    """`coord events --follow --json ...` in the background; its lines, with deadlines."""

    def __init__(self, eco: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coordination.cli.main", "--file", str(eco), "events",
             "--follow", "--json", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
            start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def next(self) -> dict[str, Any]:
        try:
            return json.loads(self.lines.get(timeout=WAIT))  # type: ignore[no-any-return]
        except queue.Empty:
            err = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
            raise AssertionError(f"no event within {WAIT:.0f} s; stderr: {err}") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def test_follow_prints_only_new_events_and_n_10_the_last_ten_first(
        tmp_path: Path) -> None:
    eco = write_catalog(tmp_path / "eco", [
        {"id": f"TODO-00{i}", "repo": repo, "run": "true"}
        for i, repo in enumerate(("api", "web", "jobs", "api"), start=1)])
    r = coord(eco, "plan", "sweep", "PLAN-001", "--wait", "--json", "--no-sync")
    assert r.returncode == 0, r.stderr
    r = coord(eco, "events", "--json")
    assert r.returncode == 0, r.stderr
    backlog = json.loads(r.stdout)
    assert len(backlog) > 12, backlog  # enough that "the whole backlog" would show

    tail = Follower(eco, "-n", "10")
    fresh = Follower(eco)  # no backlog replayed
    try:
        got = [tail.next() for _ in range(10)]
        assert [e["id"] for e in got] == [e["id"] for e in backlog[-10:]]
        # Both followers are live (the first event read proves the tail one is); a new
        # run's events come next: nothing older than it is printed after the ten.
        r = coord(eco, "todo", "run", "TODO-001", "--wait", "--json", "--no-sync")
        assert r.returncode == 0, r.stderr
        new_sweep = json.loads(r.stdout)["sweep_id"]
        after_tail = tail.next()
        first_fresh = fresh.next()
        assert after_tail["sweep_id"] == new_sweep, after_tail
        assert first_fresh["sweep_id"] == new_sweep, first_fresh
        assert after_tail["id"] == first_fresh["id"]  # the new run's first event, for both
    finally:
        tail.close()
        fresh.close()

    # --sweep of an ended sweep with --limit: its last N, and the command ends.
    sid = backlog[-1]["sweep_id"]
    r = coord(eco, "events", "--sweep", sid, "--follow", "--limit", "3", "--json")
    assert r.returncode == 0, r.stderr
    # Against the sweep's own stream (`events --sweep`), not the merged view: a sweep's
    # own events are in its stream and in the global one, and the merged view orders
    # (and numbers) them by the global copy.
    r_all = coord(eco, "events", "--sweep", sid, "--json")
    assert r_all.returncode == 0, r_all.stderr
    assert [json.loads(line)["id"] for line in r.stdout.splitlines()] == \
        [e["id"] for e in json.loads(r_all.stdout)][-3:]
