"""A keyless Redis writer against `coord beat` (issue 78): real beat processes on a real
redis-server, the attack mounted with `redis-cli` as such a writer would (no signing
key, no catalog: only the Redis URL).

- An entry planted in celery-redbeat's schedule for a plan the catalog does not
  schedule, and the catalog's own entry rewritten to another cron: the beat reads the
  catalog at firing time and fires neither (each refused: its log, ``schedule.refused``);
  `coord schedule list` reports the planted entry.
- An entry that cannot be read and one whose cron never fires: the beat says each and
  goes on firing the catalog's own schedule.
- A cron that never fires in the catalog is refused by validation (exit 2, where).

The beats run on an injected clock as in tests/integration/test_beat.py.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from typing import Any

import pytest

from tests.integration.helpers import Cluster
from tests.integration.beats import FIRING, LEAD, Beat, fired, offset
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240),
              pytest.mark.skipif(shutil.which("redis-cli") is None, reason="no redis-cli")]


def catalog(c: Cluster, cron: str) -> None:
    """PLAN-001 scheduled (``cron``); PLAN-002 not scheduled: the planted one's target."""
    (c.root / "repos" / "api").mkdir(parents=True, exist_ok=True)
    c.eco.write_text(f"""\
version: 1
repos:
  - {{name: api, path: repos/api, tags: [python]}}
coordination:
  plans:
    - id: PLAN-001
      title: nightly
      schedule: {{cron: "{cron}", timezone: Europe/Berlin}}
    - {{id: PLAN-002, title: deploy, description: never scheduled}}
  todos:
    - {{id: TODO-001, task: check, repo: api, plan: PLAN-001, run: "echo checked"}}
    - {{id: TODO-002, task: deploy, repo: api, plan: PLAN-002, run: "echo deployed"}}
""")


def keyless(c: Cluster, *args: str) -> str:
    """One command as a writer with the Redis URL alone (`redis-cli`)."""
    res = subprocess.run(["redis-cli", "-u", c.redis_url, *args], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0 and not res.stdout.startswith("(error)"), res
    return res.stdout.strip()


def prefix(c: Cluster) -> str:
    return c.rt.keys.beat_prefix  # type: ignore[no-any-return]


def definition(plan: str, cron: str, *, catchup: bool = True) -> str:
    """An entry as coord writes one (beat.PlanEntry.save), for ``plan`` on ``cron``."""
    return json.dumps({"name": f"plan:{plan}", "task": "coord.schedule", "args": [],
                       "kwargs": {"plan": plan}, "options": {}, "enabled": True,
                       "schedule": {"__type__": "coord-cron", "cron": cron,
                                    "timezone": "UTC", "catchup": catchup}})


#: A last run long ago: a catchup entry is due at once.
LONG_AGO = json.dumps({"last_run_at": {"__type__": "datetime", "year": 2020, "month": 1,
                                       "day": 1, "hour": 0, "minute": 0, "second": 0,
                                       "microsecond": 0, "timezone": "UTC"}})


def plant(c: Cluster, name: str, text: str, meta: str | None = LONG_AGO) -> str:
    key = prefix(c) + name
    keyless(c, "HSET", key, "definition", text, *(("meta", meta) if meta else ()))
    keyless(c, "ZADD", prefix(c) + ":schedule", "0", key)
    return key


def refusals(c: Cluster) -> list[dict[str, Any]]:
    return [e for e in c.cli_json("events") if e["kind"] == "schedule.refused"]


def test_a_planted_entry_and_a_rewritten_cron_never_fire(cluster: Cluster) -> None:
    c = cluster
    catalog(c, "0 3 1 1 *")  # 03:00 on January 1st: not in this test
    beat = Beat(c, "a", 0.0)
    wait_for(beat.active, 60, "the beat to hold the lock and look at the schedules")
    own = prefix(c) + "plan:PLAN-001"
    assert json.loads(keyless(c, "HGET", own, "definition"))["schedule"]["cron"] == "0 3 1 1 *"
    # the attack: PLAN-002 (never scheduled) planted, every minute, due now; PLAN-001's
    # own entry rewritten to every minute, due now
    planted = plant(c, "plan:PLAN-002", definition("PLAN-002", "* * * * *"))
    keyless(c, "HSET", own, "definition", definition("PLAN-001", "* * * * *"), "meta", LONG_AGO)
    keyless(c, "ZADD", prefix(c) + ":schedule", "0", own)

    def outcome() -> bool:
        return bool(fired(c)) or beat.text().count("refused, not fired") >= 2

    wait_for(outcome, 60, "the beat to fire or refuse the planted entries")
    assert fired(c) == [], beat.text()
    log = beat.text()
    assert f"schedule entry {planted} (plan PLAN-002) refused, not fired" in log, log
    assert "the catalog schedules no plan PLAN-002" in log
    assert "(plan PLAN-001) refused" in log and "is not the catalog's" in log
    said = {e["entry"]: e for e in wait_for(lambda: len(refusals(c)) >= 2 and refusals(c), 30,
                                               "two schedule.refused events")}
    assert said[planted]["plan"] == "PLAN-002" and said[own]["plan"] == "PLAN-001"
    # PLAN-001's own entry is written again from the catalog
    wait_for(lambda: json.loads(keyless(c, "HGET", own, "definition"))["schedule"]["cron"]
             == "0 3 1 1 *", 30, "PLAN-001's entry written again from the catalog")
    # `schedule list` reports the planted entry (and lists the catalog's plan alone)
    doc = c.cli_json("schedule", "list")
    assert [r["plan"] for r in doc["schedules"]] == ["PLAN-001"]
    assert [(f["entry"], f["plan"], f["cron"]) for f in doc["refused"]] == [
        (planted, "PLAN-002", "* * * * *")], doc
    shown = c.cli("schedule", "list")
    assert shown.returncode == 0, shown.stderr
    assert "the catalog does not name" in shown.stdout and planted in shown.stdout
    assert "the catalog schedules no plan PLAN-002" in shown.stdout
    # still nothing fired, and the beat goes on (said once, not every tick)
    assert fired(c) == [] and beat.proc.poll() is None
    assert beat.text().count(f"schedule entry {planted} ") == 1, beat.text()


def test_a_bad_entry_is_said_and_skipped_and_the_catalogs_schedule_still_fires(
        cluster: Cluster) -> None:
    c = cluster
    catalog(c, "0 3 * * 1-5")
    beat = Beat(c, "a", offset(FIRING - dt.timedelta(seconds=LEAD)))
    wait_for(beat.active, 60, "the beat to hold the lock and look at the schedules")
    # (after its first look, which leaves only the catalog's entries)
    unreadable = plant(c, "plan:PLAN-008", "{not json", meta=None)
    never = plant(c, "plan:PLAN-002", definition("PLAN-002", "0 0 30 2 *"))
    wait_for(lambda: beat.text().count("refused, not fired") >= 2, 60,
             "the beat to say both entries")
    got = wait_for(lambda: fired(c), 90, "the catalog's 03:00 firing")
    assert [row["plan"] for row in got] == ["PLAN-001"], got
    assert beat.proc.poll() is None, beat.text()
    log = beat.text()
    assert f"schedule entry {unreadable} (plan PLAN-008) refused" in log, log
    assert f"schedule entry {never} (plan PLAN-002) refused" in log, log
    assert {e["entry"] for e in refusals(c)} == {unreadable, never}


def test_a_cron_that_never_fires_is_refused_by_validation(cluster: Cluster) -> None:
    c = cluster
    catalog(c, "0 0 30 2 *")
    res = c.cli("schedule", "list")
    assert res.returncode == 2, res.stdout + res.stderr
    assert "plans[0].schedule.cron" in res.stderr and "never fires" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
