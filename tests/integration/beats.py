"""`coord beat` processes for the beat tests (test_beat.py, test_beat_keyless.py): the
catalog of a nightly plan, a beat on an injected clock, and the sweeps a schedule fired."""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.integration.helpers import ROOT, Cluster

BERLIN = ZoneInfo("Europe/Berlin")
#: Monday 2026-11-30, 03:00 in Berlin (a weekday, for "0 3 * * 1-5").
FIRING = dt.datetime(2026, 11, 30, 3, 0, tzinfo=BERLIN)
#: Seconds of the beats' clocks before the firing when they start: a schedule's first look
#: sets its last run to now, so the firing must come after the beats' start-up (a second
#: or more of imports each on a busy machine).
LEAD = 12


def catalog(c: Cluster, *, cron: str = "0 3 * * 1-5", catchup: bool = False) -> Path:
    (c.root / "repos" / "api").mkdir(parents=True, exist_ok=True)
    c.eco.write_text(f"""\
version: 1
repos:
  - {{name: api, path: repos/api, tags: [python]}}
coordination:
  plans:
    - id: PLAN-001
      title: nightly
      schedule: {{cron: "{cron}", timezone: Europe/Berlin, catchup: {str(catchup).lower()}}}
  todos:
    - {{id: TODO-001, task: check, repo: api, plan: PLAN-001, run: "echo checked"}}
""")
    return c.eco


def offset(at: dt.datetime) -> float:
    """The --clock-offset that makes a beat's clock read ``at`` now."""
    return at.timestamp() - time.time()


class Beat:
    """One `coord beat` process and its log."""

    def __init__(self, c: Cluster, name: str, clock: float) -> None:
        self.log = c.logs / f"beat-{name}.log"
        with open(self.log, "wb") as fh:
            self.proc = subprocess.Popen(
                c.argv("beat", "--max-interval", "1", "--clock-offset", repr(clock)),
                cwd=ROOT, env=c.env, stdout=fh, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        c.procs.append(self.proc)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def active(self) -> bool:
        assert self.proc.poll() is None, f"beat exited {self.proc.returncode}:\n{self.text()}"
        return "first look at the schedules done" in self.text()


def fired(c: Cluster) -> list[dict[str, Any]]:
    """The sweeps a schedule started (``sweep list``'s rows, with their triggers)."""
    rows = c.cli_json("sweep", "list")
    return [r for r in rows if r["trigger"] == "schedule"]
