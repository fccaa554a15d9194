"""`history trends` figures on a known data set; retention."""

from __future__ import annotations

import pytest

from coordination.history.search import search
from coordination.history.trends import percentile, trends
from coordination.runtime.history import HistoryStore
from tests.unit.support.history import DAY, now, run, todo

pytestmark = pytest.mark.timeout(60)

FIGURES = {"runs", "succeeded", "failed", "success_rate", "p50_s", "p95_s"}


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 50) == 10.0 and percentile(values, 95) == 19.0
    assert percentile([7.0], 95) == 7.0 and percentile([], 50) is None


@pytest.fixture
def twenty_sweeps(store: HistoryStore) -> HistoryStore:
    t = now() - DAY
    # 20 sweeps. TODO-A (api): 1..20 s, all succeed. TODO-F (api): alternates
    # succeeded/failed (flaky), 1 s. TODO-B (web): fails 5 of 20 in a row (not
    # flipping much), 30 s. TODO-S (web): skipped every time (never ran).
    for i in range(20):
        sid = f"S-{i:02d}"
        at = t + i * 60
        run(store, sid, [
            todo(sid, "TODO-A", "api", "succeeded", float(i + 1), at),
            todo(sid, "TODO-F", "api", "failed" if i % 2 else "succeeded", 1.0, at),
            todo(sid, "TODO-B", "web", "failed" if i >= 15 else "succeeded", 30.0, at),
            todo(sid, "TODO-S", "web", "skipped", None, at),
        ], at)
    # Long ago: outside any window below.
    run(store, "S-OLD", [todo("S-OLD", "TODO-A", "api", "failed", 999.0, now() - 60 * DAY)],
        now() - 60 * DAY)
    return store


def test_figures_per_repo_and_per_todo(twenty_sweeps: HistoryStore) -> None:
    doc = trends(twenty_sweeps, days=30)
    assert set(doc) == {"repos", "todos", "flakiest", "slowest", "velocity", "bottlenecks"}
    assert all(set(f) == FIGURES for f in [*doc["repos"].values(), *doc["todos"].values()])
    assert doc["todos"]["TODO-A"] == {"runs": 20, "succeeded": 20, "failed": 0,
                                      "success_rate": 1.0, "p50_s": 10.0, "p95_s": 19.0}
    assert doc["todos"]["TODO-F"]["success_rate"] == 0.5
    assert doc["todos"]["TODO-B"] == {"runs": 20, "succeeded": 15, "failed": 5,
                                      "success_rate": 0.75, "p50_s": 30.0, "p95_s": 30.0}
    # A todo that never ran (skipped) counts no run.
    assert doc["todos"]["TODO-S"]["runs"] == 0 and doc["todos"]["TODO-S"]["success_rate"] is None
    api = doc["repos"]["api"]
    assert (api["runs"], api["succeeded"], api["failed"]) == (40, 30, 10)
    assert api["success_rate"] == 0.75
    # api durations: A's 1..20 and F's twenty 1s -> 40 values, twenty-one of them 1.0,
    # then 2..20: p50 = the 20th = 1.0, p95 = the 38th = 18.0.
    assert (api["p50_s"], api["p95_s"]) == (1.0, 18.0)


def test_flakiest_has_mixed_outcomes_most_flips_first_and_slowest_is_by_p95(twenty_sweeps: HistoryStore) -> None:
    doc = trends(twenty_sweeps, days=30)
    assert [x["todo"] for x in doc["flakiest"]] == ["TODO-F", "TODO-B"]  # A never failed
    assert doc["flakiest"][0]["flips"] == 19 and doc["flakiest"][1]["flips"] == 1
    assert [x["todo"] for x in doc["slowest"]] == ["TODO-B", "TODO-A", "TODO-F"]
    assert doc["slowest"][0] == {"todo": "TODO-B", "repo": "web", "runs": 20, "p50_s": 30.0,
                                 "p95_s": 30.0}


def test_window_and_repo(twenty_sweeps: HistoryStore) -> None:
    wide = trends(twenty_sweeps, days=90)
    assert wide["todos"]["TODO-A"]["runs"] == 21 and wide["todos"]["TODO-A"]["p95_s"] == 20.0
    web = trends(twenty_sweeps, repo="web", days=30)
    assert set(web["repos"]) == {"web"} and set(web["todos"]) == {"TODO-B", "TODO-S"}
    assert trends(twenty_sweeps, days=0.5) == {
        "repos": {}, "todos": {}, "flakiest": [], "slowest": [], "bottlenecks": [],
        "velocity": {"weeks": [], "total": {}, "repos": {}, "plans": {}}}


def test_a_run_is_recorded_once(store: HistoryStore) -> None:
    t = now()
    rows = [todo("S-1", "TODO-A", "api", "succeeded", 1.0, t)]
    assert run(store, "S-1", rows, t) is True
    assert run(store, "S-1", rows, t) is False
    rerun = [todo("S-1", "TODO-A", "api", "succeeded", 1.0, t, run=1)]
    assert run(store, "S-1", rerun, t, run_no=1) is True  # a resume's run is another run
    assert len(search(store, "", kind="todo", limit=100)) == 2
    assert trends(store, days=1)["todos"]["TODO-A"]["runs"] == 2


def test_retention_trims_old_runs_when_a_new_one_is_recorded(store: HistoryStore) -> None:
    t = now()
    old = t - 50 * DAY  # the stores keep 90 days
    run(store, "S-OLD", [todo("S-OLD", "TODO-A", "api", "succeeded", 1.0, old, tail="ancient")], old)
    assert [r["sweep_id"] for r in search(store, "ancient")] == ["S-OLD"]
    store.days = 30  # type: ignore[attr-defined]  # COORD_HISTORY_DAYS=30
    run(store, "S-NEW", [todo("S-NEW", "TODO-A", "api", "succeeded", 1.0, t)], t)
    assert search(store, "ancient") == []
    assert {r["sweep_id"] for r in search(store, "", limit=100)} == {"S-NEW"}
    assert store.trim(t + 1) == 1  # explicit trim: the rest
    assert search(store, "", limit=100) == []
