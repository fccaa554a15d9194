"""A plan's ``schedule:`` and ``on: {push:}``, and ``due:`` on plans and todos: what the
loader accepts, what it refuses (located: file, line, field, how to fix), what a view
holds, and how a cron is stepped (DST, day fields, nicknames)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from coordination.catalog.cron import check_cron, last_runs, next_runs
from coordination.catalog.reads.cached import sweep_catalog
from coordination.catalog.file.store import CatalogStore
from coordination.errors import CatalogError

pytestmark = pytest.mark.timeout(30)

BERLIN = ZoneInfo("Europe/Berlin")
GOOD = """\
version: 1
repos:
  - {name: api, path: ./api, tags: [python]}
coordination:
  plans:
    - id: PLAN-001
      title: nightly
      schedule: {cron: "0 3 * * 1-5", timezone: Europe/Berlin, catchup: true}
      on: {push: {repos: "tag:python", branch: main}}
      due: 2026-12-01T12:00Z
  todos:
    - {id: TODO-001, task: t, repo: api, plan: PLAN-001, due: 2026-12-01}
    - {id: TODO-002, task: t, repo: api, plan: PLAN-001, due: "2026-12-01T13:00:00+01:00"}
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "ecosystem.yaml"
    path.write_text(text)
    return CatalogStore(path).load()


def test_the_fields_load_and_a_view_holds_the_same(tmp_path: Path) -> None:
    cat = load(tmp_path, GOOD)
    plan = cat.coordination.plans[0]  # type: ignore[attr-defined]
    assert (plan.schedule.cron, plan.schedule.timezone, plan.schedule.catchup) == (
        "0 3 * * 1-5", "Europe/Berlin", True)
    assert (plan.on.push.repos, plan.on.push.branch) == ("tag:python", "main")  # `on:`, not True
    utc = dt.timezone.utc
    assert plan.due == dt.datetime(2026, 12, 1, 12, 0, tzinfo=utc)
    t1, t2 = cat.coordination.todos  # type: ignore[attr-defined]
    assert t1.due == dt.datetime(2026, 12, 1, 23, 59, 59, tzinfo=utc)  # a day: its end, UTC
    assert t2.due == dt.datetime(2026, 12, 1, 12, 0, tzinfo=utc)
    CatalogStore(tmp_path / "ecosystem.yaml").load()  # warm the cache: the view reads it
    view = sweep_catalog(tmp_path / "ecosystem.yaml")
    vplan = view.coordination.plans[0]
    assert vplan.due == plan.due and vplan.schedule.cron == "0 3 * * 1-5"
    assert vplan.on.push.repos == "tag:python"
    assert [t.due for t in view.coordination.todos] == [t1.due, t2.due]


@pytest.mark.parametrize("old, new, where, says", [
    ('cron: "0 3 * * 1-5"', 'cron: "0 3 * *"', "plans[0].schedule.cron", "has 4 fields"),
    ('cron: "0 3 * * 1-5"', 'cron: "0 3 * * mon-fry"', "plans[0].schedule.cron",
     "is not a cron expression"),
    ('cron: "0 3 * * 1-5"', 'cron: "@reboot"', "plans[0].schedule.cron", "unknown cron nickname"),
    ('cron: "0 3 * * 1-5"', 'cron: "0 0 30 2 *"', "plans[0].schedule.cron", "never fires"),
    ('cron: "0 3 * * 1-5"', 'cron: "0 0 31 4,6 *"', "plans[0].schedule.cron", "never fires"),
    ("timezone: Europe/Berlin", "timezone: Europe/Berln", "plans[0].schedule.timezone",
     "unknown time zone 'Europe/Berln'"),
    ("due: 2026-12-01T12:00Z", "due: 2026-12-01T12:00", "plans[0].due", "has no time zone"),
    ("due: 2026-12-01T12:00Z", "due: tomorrow", "plans[0].due", "not a due time"),
    ('repos: "tag:python"', 'repos: "tag:python,,"', "plans[0].on.push.repos", "an empty term"),
    ("branch: main", "branch: 'ma..in'", "plans[0].on.push.branch", ""),
    ("catchup: true", "catchup: sometimes", "plans[0].schedule.catchup", ""),
    ("on: {push:", "on: {pull:", "plans[0].on", ""),
])
def test_a_bad_value_is_refused_where_it_is(tmp_path: Path, old: str, new: str, where: str,
                                            says: str) -> None:
    assert old in GOOD
    with pytest.raises(CatalogError) as got:
        load(tmp_path, GOOD.replace(old, new, 1))
    text = str(got.value)
    line = next(i for i, ln in enumerate(GOOD.splitlines(), 1) if old in ln)
    assert f"ecosystem.yaml:{line}: {where}" in text, text
    assert says in text, text


def test_cron_reads_as_cron_does() -> None:
    assert check_cron(" 0  3 * * 1-5 ") == "0 3 * * 1-5"
    assert check_cron("@Daily") == "@daily"
    # both day fields restricted: either matches (the 1st, and Mondays)
    start = dt.datetime(2026, 3, 28, 12, tzinfo=dt.timezone.utc)
    got = [t.date().isoformat() for t in next_runs("0 3 1 * 1", "UTC", start, 3)]
    assert got == ["2026-03-30", "2026-04-01", "2026-04-06"]


def test_dst_skips_and_repeats_run_once() -> None:
    # 2026-03-29: Berlin skips 02:00-03:00; 02:30 runs at the first instant after the gap
    spring = next_runs("30 2 * * *", "Europe/Berlin", dt.datetime(2026, 3, 28, 12, tzinfo=BERLIN), 2)
    assert [t.isoformat() for t in spring] == ["2026-03-29T03:00:00+02:00",
                                               "2026-03-30T02:30:00+02:00"]
    # 2026-10-25: 02:30 happens twice; it runs once
    fall = next_runs("30 2 * * *", "Europe/Berlin", dt.datetime(2026, 10, 24, 12, tzinfo=BERLIN), 2)
    assert [t.isoformat() for t in fall] == ["2026-10-25T02:30:00+02:00",
                                             "2026-10-26T02:30:00+01:00"]
    assert last_runs("30 2 * * *", "Europe/Berlin",
                     dt.datetime(2026, 10, 25, 3, 0, tzinfo=BERLIN), 1)[0].isoformat() == (
        "2026-10-25T02:30:00+02:00")
