"""`coord beat` (Celery beat with celery-redbeat) on a real redis-server: real beat
processes, two at once and one SIGKILLed, a firing started once; catch-up after a gap
with and without ``catchup``; a worker runs what fired.

Time: each beat runs on an injected clock (``--clock-offset``, hidden) set a few
seconds before a firing, so a 03:00 firing comes in seconds; the beats tick every
second (``--max-interval 1``: the lock's timeout is 5 s, a standby takes over within
it). Nothing waits a fixed time: the tests wait for what the beats log and what Redis
holds, with deadlines.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.beats import FIRING, LEAD, Beat, catalog, fired, offset
from tests.integration.helpers import ROOT, Cluster
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

def trigger_of(c: Cluster, sweep_id: str) -> dict[str, Any]:
    doc = c.cli_json("sweep", "status", sweep_id)
    trig: dict[str, Any] = doc["trigger"]
    return trig


def test_two_beats_fire_once_and_a_standby_takes_over_a_killed_one(cluster: Cluster) -> None:
    """A and B run at once (B a standby on the lock); A fires 03:00 and is SIGKILLed;
    B takes the lock, does not fire 03:00 again, and fires 03:01 (its clock is 55 s
    ahead of A's, so its next firing comes right after it took over). A worker runs
    what fired."""
    c = cluster
    catalog(c, cron="0,1 3 * * *", catchup=True)
    clock = offset(FIRING - dt.timedelta(seconds=LEAD))
    a = Beat(c, "a", clock)
    wait_for(a.active, 60, "beat A to hold the lock and look at the schedules")
    b = Beat(c, "b", clock + 55)
    wait_for(lambda: "waiting for the lock" in b.text(), 60, "beat B to start as a standby")
    first = wait_for(lambda: fired(c), 60, "the 03:00 firing's sweep")
    assert len(first) == 1, first
    assert not b.active(), "B looked at the schedules while A held the lock:\n" + b.text()
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(timeout=10)
    wait_for(b.active, 30, "B to take the lock over")
    both = wait_for(lambda: len(fired(c)) >= 2 and fired(c), 30, "the 03:01 firing's sweep")
    times = sorted(trigger_of(c, s["sweep_id"])["firing"] for s in both)
    assert times == [FIRING.isoformat(), FIRING.replace(minute=1).isoformat()], (
        times, b.text())
    c.start_worker("api")
    for s in both:
        assert c.wait_sweep(s["sweep_id"])["status"] == "succeeded"
    # one claim per firing, the last one naming its sweep
    last = c.cli_json("schedule", "list")["schedules"][0]["last_fired"]
    assert last["due"] == FIRING.replace(minute=1).isoformat() and last["sweep"] in {
        s["sweep_id"] for s in both}
    assert len(fired(c)) == 2, b.text()
    audit = [e for e in c.cli_json("audit") if e["op"] == "sweep.start"]
    assert sorted(e["decision"]["trigger"]["firing"] for e in audit) == times


@pytest.mark.parametrize("catchup", [False, True])
def test_a_firing_missed_while_no_beat_ran(cluster: Cluster, catchup: bool) -> None:
    """A beat fires Monday 03:00 and stops; the next beat starts Wednesday 03:30:
    Tuesday's and Wednesday's firings passed while no beat ran. catchup: true starts
    the plan once (one sweep for both); false skips them, logged and listed."""
    c = cluster
    catalog(c, catchup=catchup)
    a = Beat(c, "a", offset(FIRING - dt.timedelta(seconds=LEAD)))
    wait_for(lambda: fired(c), 60, "Monday's firing")
    a.proc.send_signal(signal.SIGTERM)  # gives the lock back
    assert a.proc.wait(timeout=30) is not None
    assert "Releasing lock" in a.text()
    later = Beat(c, "later", offset(FIRING + dt.timedelta(days=2, minutes=30)))
    wait_for(later.active, 60, "the later beat's first look")
    if catchup:
        got = wait_for(lambda: len(fired(c)) == 2 and fired(c), 30, "the caught-up sweep")
        trig = trigger_of(c, got[0]["sweep_id"])  # newest first
        assert trig == {"kind": "schedule", "catchup": True,
                        "firing": (FIRING + dt.timedelta(days=2)).isoformat()}
        assert "caught up" in later.text()
    else:
        skipped = wait_for(lambda: c.cli_json("schedule", "list")["schedules"][0]["last_skipped"],
                           30, "the skipped firing in `schedule list`")
        assert skipped["due"] == (FIRING + dt.timedelta(days=2)).isoformat()
        assert skipped["missed"] == 2
        assert "was skipped" in later.text() and "catchup: false" in later.text()
        kinds = [e["kind"] for e in c.cli_json("events")]
        assert kinds.count("schedule.skipped") == 1
    assert len(fired(c)) == (2 if catchup else 1), later.text()


def test_a_frozen_fleet_refuses_a_firing_and_says_so(cluster: Cluster) -> None:
    c = cluster
    catalog(c)
    res = c.cli("freeze", "--reason", "incident 7")
    assert res.returncode == 0, res.stderr
    a = Beat(c, "a", offset(FIRING - dt.timedelta(seconds=LEAD)))
    wait_for(lambda: "not started" in a.text(), 60, "the refusal in the beat's log")
    rec = c.cli_json("schedule", "list")["schedules"][0]["last_fired"]
    assert rec["sweep"] is None and "frozen" in rec["error"] and "incident 7" in rec["error"]
    assert fired(c) == []


def test_embedded_a_beat_fires_into_a_plan_sweep_process_of_its_own(tmp_path: Path) -> None:
    """No COORD_REDIS_URL: the beat runs beside the catalog's embedded server and the
    firing is a `coord plan sweep` process with its own workers: it runs and syncs."""
    import os
    import sys

    c = Cluster(tmp_path, "unused")
    c.env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    c.env.update(COORD_USER="tester", PYTHONUNBUFFERED="1")
    catalog(c)
    try:
        a = Beat(c, "embedded", offset(FIRING - dt.timedelta(seconds=LEAD)))
        wait_for(lambda: "PLAN-001: fired" in a.text(), 120, "the embedded firing")
        sid = a.text().split("PLAN-001: fired ", 1)[1].split("sweep ", 1)[1].split()[0]

        def ended() -> dict[str, Any] | None:
            res = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file",
                                  str(c.eco), "sweep", "status", sid, "--json"], cwd=ROOT,
                                 env=c.env, capture_output=True, text=True, timeout=60)
            doc: dict[str, Any] = json.loads(res.stdout) if res.returncode == 0 else {}
            return doc if doc.get("status") in ("succeeded", "failed", "cancelled") else None

        doc = wait_for(ended, 120, f"embedded sweep {sid} to end")
        assert doc["status"] == "succeeded" and doc["trigger"]["kind"] == "schedule"
        wait_for(lambda: "completed" in c.eco.read_text(), 60, "the sync into the catalog")
    finally:
        c.close()


def test_a_beat_says_a_todo_past_due_that_no_sweep_runs_once(cluster: Cluster) -> None:
    """TODO-002 was due in 2020 and nobody started it: the beat says `todo.overdue` (no
    sweep) once, though it ticks every second and a second beat takes over; TODO-001
    (due in 2999) and TODO-003 (completed) are not said."""
    c = cluster
    (c.root / "repos" / "api").mkdir(parents=True, exist_ok=True)
    c.eco.write_text("""\
version: 1
repos:
  - {name: api, path: repos/api}
coordination:
  plans:
    - {id: PLAN-001, title: forgotten}
  todos:
    - {id: TODO-001, task: later, repo: api, plan: PLAN-001, run: "true", due: 2999-01-01}
    - {id: TODO-002, task: forgotten, repo: api, plan: PLAN-001, run: "true", due: 2020-01-01T12:00Z}
    - {id: TODO-003, task: done, repo: api, status: completed, due: 2020-01-01}
""")

    def said() -> list[dict[str, Any]]:
        return [e for e in c.cli_json("events") if e["kind"] == "todo.overdue"]

    a = Beat(c, "a", 0.0)
    got = wait_for(said, 60, "the beat to say TODO-002 overdue")
    assert [(e["todo_id"], e.get("sweep_id"), e["due"], e["status"]) for e in got] == [
        ("TODO-002", None, "2020-01-01T12:00:00Z", "pending")], got
    assert "TODO-002 is overdue and no sweep runs it" in a.text()
    a.proc.send_signal(signal.SIGTERM)  # gives the lock back
    assert a.proc.wait(timeout=30) is not None
    b = Beat(c, "b", 0.0)
    # Its first look logged after its first look at the due times (the same tick).
    wait_for(b.active, 60, "the second beat's first look")
    assert len(said()) == 1 and "is overdue" not in b.text(), b.text()
