"""`history trends`: velocity (todos completed per ISO week, per repo and per plan) and
bottlenecks (repos by the time other repos' todos spent ready but blocked on theirs)."""

from __future__ import annotations

import datetime as dt

import pytest

from coordination.history.trends import trends
from coordination.runtime.history import HistoryStore
from coordination.stats.flow import week
from tests.unit.support.history import DAY, run, todo

pytestmark = pytest.mark.timeout(60)

#: Wednesday 2026-11-18 12:00 UTC: ISO week 2026-W47.
WED = dt.datetime(2026, 11, 18, 12, tzinfo=dt.timezone.utc).timestamp()


def test_iso_weeks() -> None:
    assert week(WED) == "2026-W47"
    assert week(WED - 7 * DAY) == "2026-W46"
    # 2027-01-01 is a Friday: ISO week 53 of 2026.
    assert week(dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc).timestamp()) == "2026-W53"


def test_velocity_counts_completed_todos_per_week_repo_and_plan(store: HistoryStore) -> None:
    # Week 45: api's TODO-1 done (plan P1). Week 46: nothing. Week 47: TODO-1 done twice
    # (counts once), TODO-2 (web) done, TODO-3 failed (not done), a P2 todo done.
    w45, w47 = WED - 14 * DAY, WED
    run(store, "S-A", [todo("S-A", "TODO-1", "api", "succeeded", 1.0, w45)], w45, plan="P1")
    run(store, "S-B", [todo("S-B", "TODO-1", "api", "succeeded", 1.0, w47),
                       todo("S-B", "TODO-2", "web", "succeeded", 1.0, w47),
                       todo("S-B", "TODO-3", "web", "failed", 1.0, w47)], w47, plan="P1")
    run(store, "S-C", [todo("S-C", "TODO-1", "api", "succeeded", 1.0, w47 + 60)], w47 + 60,
        plan="P1")
    run(store, "S-D", [todo("S-D", "TODO-9", "api", "succeeded", 1.0, w47 + 120)], w47 + 120,
        plan="P2")
    v = trends(store, days=30, now=WED + DAY)["velocity"]
    assert v["weeks"] == ["2026-W45", "2026-W46", "2026-W47"]
    assert v["total"] == {"2026-W45": 1, "2026-W46": 0, "2026-W47": 3}
    assert v["repos"] == {"api": {"2026-W45": 1, "2026-W46": 0, "2026-W47": 2},
                          "web": {"2026-W45": 0, "2026-W46": 0, "2026-W47": 1}}
    assert v["plans"] == {"P1": {"2026-W45": 1, "2026-W46": 0, "2026-W47": 2},
                          "P2": {"2026-W45": 0, "2026-W46": 0, "2026-W47": 1}}
    # the weeks run to the current one, with zeros
    later = trends(store, days=30, now=WED + 8 * DAY)["velocity"]
    assert later["weeks"][-1] == "2026-W48" and later["total"]["2026-W48"] == 0
    assert trends(store, days=30, now=WED + DAY, repo="web")["velocity"]["repos"] == {
        "web": {"2026-W47": 1}}


def test_bottlenecks_charge_the_wait_to_the_last_blocker_of_another_repo(
        store: HistoryStore) -> None:
    t0 = WED
    # Run 1 starts at t0. db's TODO-DB ends at t0+100; api's TODO-API (blocked by DB)
    # waits 100 s on db. web's TODO-WEB is blocked by TODO-API (ends t0+130) and
    # TODO-CFG (web, ends t0+10): ready but for api from t0+10 to t0+130: 120 s on api.
    # TODO-DB2 (db) blocked by TODO-DB: same repo, charged to nobody.
    run(store, "S-1", [
        todo("S-1", "TODO-DB", "db", "succeeded", 100.0, t0 + 100),
        todo("S-1", "TODO-CFG", "web", "succeeded", 10.0, t0 + 10),
        todo("S-1", "TODO-API", "api", "succeeded", 30.0, t0 + 130, blocked_by=["TODO-DB"]),
        todo("S-1", "TODO-WEB", "web", "succeeded", 5.0, t0 + 135,
             blocked_by=["TODO-API", "TODO-CFG"]),
        todo("S-1", "TODO-DB2", "db", "succeeded", 5.0, t0 + 105, blocked_by=["TODO-DB"]),
    ], t0 + 135, started=t0)
    # Run 2: db ends after 300 s; api waits 300 s. A failed blocker unblocked nothing.
    t1 = t0 + 1000
    run(store, "S-2", [
        todo("S-2", "TODO-DB", "db", "succeeded", 300.0, t1 + 300),
        todo("S-2", "TODO-API", "api", "succeeded", 1.0, t1 + 301, blocked_by=["TODO-DB"]),
        todo("S-2", "TODO-X", "x", "failed", 50.0, t1 + 50),
        todo("S-2", "TODO-Y", "y", "skipped", None, t1 + 50, blocked_by=["TODO-X"]),
    ], t1 + 301, started=t1)
    b = trends(store, days=30, now=t1 + 400)["bottlenecks"]
    assert b == [
        {"repo": "db", "wait_s": 400.0, "waits": 2, "dependents": 1, "worst_s": 300.0},
        {"repo": "api", "wait_s": 120.0, "waits": 1, "dependents": 1, "worst_s": 120.0}]
    assert [x["repo"] for x in trends(store, days=30, now=t1 + 400, repo="api")["bottlenecks"]
            ] == ["api"]
