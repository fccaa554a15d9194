"""A plan's schedule: when a firing is due, on time, missed (caught up or skipped), and
`coord schedule list`'s rows; the claim that starts a firing once."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from coordination.catalog.models import Schedule
from coordination.runtime.context import Runtime
from coordination.sweeps.starts.schedules import decide

pytestmark = pytest.mark.timeout(30)

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = Schedule(cron="0 3 * * 1-5", timezone="Europe/Berlin", catchup=False)
CATCHUP = Schedule(cron="0 3 * * 1-5", timezone="Europe/Berlin", catchup=True)
MON = dt.datetime(2026, 11, 30, 3, 0, tzinfo=BERLIN)
MISSED_AFTER = 35.0


def at(base: dt.datetime, seconds: float) -> dt.datetime:
    return base + dt.timedelta(seconds=seconds)


def test_a_schedule_never_seen_fires_nothing_first() -> None:
    assert decide(WEEKDAYS, None, MON, MISSED_AFTER).kind == "first"


def test_it_waits_until_its_time_then_fires_on_time() -> None:
    d = decide(WEEKDAYS, at(MON, -60), at(MON, -10), MISSED_AFTER)
    assert (d.kind, d.seconds) == ("wait", 10.0)
    d = decide(WEEKDAYS, at(MON, -60), at(MON, 2), MISSED_AFTER)
    assert (d.kind, d.firing, d.catchup, d.missed) == ("fire", MON, False, 0)
    # fired (its last run is now): nothing until Tuesday
    d = decide(WEEKDAYS, at(MON, 2), at(MON, 30), MISSED_AFTER)
    assert d.kind == "wait" and d.seconds == pytest.approx(86400 - 30)


def test_a_standby_taking_over_within_the_lock_s_timeout_is_on_time() -> None:
    d = decide(WEEKDAYS, at(MON, -60), at(MON, MISSED_AFTER - 1), MISSED_AFTER)
    assert (d.kind, d.catchup) == ("fire", False)


@pytest.mark.parametrize("schedule, kind", [(WEEKDAYS, "skip"), (CATCHUP, "fire")])
def test_missed_while_no_beat_ran(schedule: Schedule, kind: str) -> None:
    # last run Monday 03:00, now Wednesday 03:30: Tuesday's and Wednesday's passed unseen
    d = decide(schedule, at(MON, 1), at(MON, 2 * 86400 + 1800), MISSED_AFTER)
    assert (d.kind, d.firing, d.missed) == (kind, at(MON, 2 * 86400), 1)
    assert d.catchup is (kind == "fire")
    # just past the takeover time: missed too
    d = decide(schedule, at(MON, -60), at(MON, MISSED_AFTER + 1), MISSED_AFTER)
    assert (d.kind, d.firing, d.missed) == (kind, MON, 0)


def test_weekends_do_not_fire() -> None:
    fri = at(MON, -3 * 86400)  # Friday 03:00
    d = decide(WEEKDAYS, at(fri, 1), at(fri, 2 * 86400 + 3600), MISSED_AFTER)  # Sunday 04:00
    assert d.kind == "wait" and d.seconds == pytest.approx(23 * 3600)


def test_a_firing_is_claimed_once_and_never_backwards(rt: Runtime) -> None:
    store = rt.schedules()
    assert store.claim("PLAN-001", 100.0, {"by": "a"})
    assert not store.claim("PLAN-001", 100.0, {"by": "b"})  # the same firing: once
    assert not store.claim("PLAN-001", 40.0, {"by": "b"})  # an older one: never
    assert store.claim("PLAN-002", 100.0, {"by": "b"})  # another plan's: its own
    store.fired("PLAN-001", 100.0, sweep="S1")
    assert store.claim("PLAN-001", 160.0, {"by": "b"})
    store.fired("PLAN-001", 100.0, sweep="late")  # not the last claim: left alone
    got = store.read(["PLAN-001"])["PLAN-001"]["fired"]
    assert got == {"by": "b", "at": 160.0}


def test_a_skipped_firing_is_said_with_its_record_however_soon_the_beat_dies(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """``schedule.skipped`` is written with the record `coord schedule list` shows: a
    beat killed where it would write the event alone has said it, once (written after
    the record, it was lost: a firing listed skipped that no webhook told of)."""
    from types import SimpleNamespace

    from coordination.beat import CoordScheduler, CronSchedule
    from coordination.runtime.events import EventLog

    now = at(MON, 2 * 86400 + 1800)
    d = decide(WEEKDAYS, at(MON, 1), now, MISSED_AFTER)
    assert d.kind == "skip"
    beat = SimpleNamespace(coord=SimpleNamespace(rt=rt, now=lambda: now, who="beat@a",
                                                 missed_after=MISSED_AFTER))

    def dies(*_: object, **__: object) -> str:
        raise RuntimeError("the beat died where it would write an event alone")

    monkeypatch.setattr(EventLog, "emit", dies)
    try:
        CoordScheduler.skip(beat, "PLAN-001",
                            CronSchedule(WEEKDAYS.cron, WEEKDAYS.timezone, False), d)
    except RuntimeError:
        pass  # died after the record: the event must be there
    skipped = rt.schedules().read(["PLAN-001"])["PLAN-001"]["skipped"]
    assert skipped is not None and skipped["due"] == d.firing.isoformat()
    [ev] = [e for e in rt.events.read() if e.kind == "schedule.skipped"]
    assert ev.data["firing"] == skipped["due"] and "catchup: false" in ev.data["reason"]


def _definition(plan: str, cron: str = "0 3 * * 1-5", zone: str = "Europe/Berlin",
                catchup: bool = False, **over: object) -> dict[str, object]:
    d: dict[str, object] = {"name": f"plan:{plan}", "task": "coord.schedule", "args": [],
                            "kwargs": {"plan": plan}, "options": {}, "enabled": True,
                            "schedule": {"__type__": "coord-cron", "cron": cron,
                                         "timezone": zone, "catchup": catchup}}
    d.update(over)
    return d


def test_only_the_catalogs_own_entry_may_fire() -> None:
    from coordination.sweeps.starts.schedules import entry_refusal

    wanted = {"PLAN-001": WEEKDAYS}
    assert entry_refusal("plan:PLAN-001", _definition("PLAN-001"), wanted) is None
    refused = {
        "a plan the catalog does not schedule": entry_refusal(
            "plan:PLAN-002", _definition("PLAN-002"), wanted),
        "another cron": entry_refusal("plan:PLAN-001", _definition("PLAN-001", "* * * * *"),
                                      wanted),
        "another zone": entry_refusal("plan:PLAN-001", _definition("PLAN-001", zone="UTC"),
                                      wanted),
        "catchup turned on": entry_refusal("plan:PLAN-001",
                                           _definition("PLAN-001", catchup=True), wanted),
        "another plan in its kwargs": entry_refusal(
            "plan:PLAN-001", _definition("PLAN-001", kwargs={"plan": "PLAN-002"}), wanted),
        "another task": entry_refusal("plan:PLAN-001", _definition("PLAN-001", task="x"),
                                      wanted),
        "not a plan's entry": entry_refusal("other", _definition("PLAN-001"), wanted),
        "unreadable": entry_refusal("plan:PLAN-001", None, wanted),
        "an interval, not a cron": entry_refusal(
            "plan:PLAN-001", _definition("PLAN-001", schedule={"__type__": "interval",
                                                               "every": 1}), wanted),
    }
    assert [k for k, why in refused.items() if why is None] == []
    assert "the catalog schedules no plan PLAN-002" in str(refused["a plan the catalog does "
                                                               "not schedule"])


def test_schedule_list_reports_every_entry_the_catalog_does_not_name() -> None:
    import json

    from coordination.sweeps.starts.schedules import foreign_entries

    p = "coord:beat:"
    got = foreign_entries({p + "plan:PLAN-001": json.dumps(_definition("PLAN-001")),
                           p + "plan:PLAN-002": json.dumps(_definition("PLAN-002", "* * * * *")),
                           p + "plan:PLAN-003": "{not json",
                           p + "plan:PLAN-004": None,
                           "elsewhere:plan:PLAN-001": json.dumps(_definition("PLAN-001"))},
                          p, {"PLAN-001": WEEKDAYS})
    assert [(f["entry"], f["plan"], f["cron"]) for f in got] == [
        (p + "plan:PLAN-002", "PLAN-002", "* * * * *"), (p + "plan:PLAN-003", "PLAN-003", None),
        (p + "plan:PLAN-004", "PLAN-004", None), ("elsewhere:plan:PLAN-001", None, "0 3 * * 1-5")]
    assert all(f["why"] for f in got)
