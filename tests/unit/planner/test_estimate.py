"""The strategy estimate of `plan sweep --dry-run` (coordination/planner/estimate.py):
eager = the heaviest chain, levels = the sum of each level's longest todo; figures from
estimated_hours, else the history p50, else unknown."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordination.planner import analyze, build_plan_graph
from coordination.planner.documents import dry_run_document
from coordination.planner.estimate import strategy_estimate
from coordination.planner.digraph import DiGraph
from tests.unit.support.planner import dags
from tests.unit.support.catalogs import catalog_from_edges, tid

pytestmark = pytest.mark.timeout(120)


def estimate(n: int, edges: list[tuple[int, int]], hours: list[float | None],
             p50: dict[str, float | None] | None = None) -> Any:
    pg = build_plan_graph(catalog_from_edges(n, edges, hours=hours), "PLAN-1")
    a = analyze(pg)
    return strategy_estimate(pg.graph, a.levels,
                             {t: pg.todo(t).estimated_hours for t in a.order}, p50 or {})


def test_a_second_is_not_rounded_away() -> None:
    est = estimate(1, [], [None], {"TODO-0": 1.0})
    assert est["eager_hours"] == est["levels_hours"] == round(1 / 3600, 6)


def test_uneven_chains_eager_is_the_longest_chain_levels_waits_for_each_level() -> None:
    # Two chains: 0 -> 1 (1h then 8h) and 2 -> 3 (8h then 1h). Levels: [0, 2], [1, 3].
    # eager: the longest chain, 9h. levels: level 0 waits for 2 (8h), level 1 for 1 (8h).
    est = estimate(4, [(0, 1), (2, 3)], [1, 8, 8, 1])
    assert est["eager_hours"] == 9.0 and est["levels_hours"] == 16.0
    assert est["eager_path"] in (["TODO-0", "TODO-1"], ["TODO-2", "TODO-3"])
    assert est["levels_path"] == ["TODO-2", "TODO-1"]
    assert est["from_estimate"] == 4 and est["from_history"] == 0 and est["unknown"] == []


def test_even_levels_cost_nothing() -> None:
    est = estimate(3, [(0, 1), (0, 2)], [2, 3, 3])
    assert est["eager_hours"] == est["levels_hours"] == 5.0


def test_history_p50_stands_in_for_a_missing_estimate_and_the_rest_is_unknown() -> None:
    # TODO-1 has no estimate but ran (p50 1800 s = 0.5 h); TODO-2 neither: unknown, 0 h.
    # An estimate wins over history (TODO-0's p50 is ignored).
    est = estimate(3, [(0, 1), (1, 2)], [2, None, None],
                   {"TODO-0": 99_999.0, "TODO-1": 1800.0, "TODO-2": None})
    assert est["hours"] == {"TODO-0": 2.0, "TODO-1": 0.5}
    assert est["source"] == {"TODO-0": "estimate", "TODO-1": "history"}
    assert est["unknown"] == ["TODO-2"]
    assert (est["from_estimate"], est["from_history"]) == (1, 1)
    assert est["eager_hours"] == est["levels_hours"] == 2.5


def test_nothing_known() -> None:
    est = estimate(2, [(0, 1)], [None, None])
    assert est["hours"] == {} and est["unknown"] == ["TODO-0", "TODO-1"]
    assert est["eager_hours"] == est["levels_hours"] == 0.0


def test_empty_plan() -> None:
    est = strategy_estimate(DiGraph(), [], {}, {})
    assert est["eager_path"] == est["levels_path"] == [] and est["eager_hours"] == 0.0


@settings(max_examples=60, deadline=None)
@given(dags(), st.data())
def test_eager_never_longer_than_levels_and_levels_is_the_sum_of_maxima(
        dag: tuple[int, list[tuple[int, int]], list[float | None]], data: Any) -> None:
    n, edges, hours = dag
    p50 = {tid(i): data.draw(st.one_of(st.none(), st.floats(0, 360_000)))
           for i in range(n)}
    pg = build_plan_graph(catalog_from_edges(n, edges, hours=hours), "PLAN-1")
    a = analyze(pg)
    est = strategy_estimate(pg.graph, a.levels,
                            {t: pg.todo(t).estimated_hours for t in a.order}, p50)
    w = {t: est["hours"].get(t, 0.0) for t in a.order}
    near = {"rel": 1e-9, "abs": 1e-5}  # figures are rounded to 6 places of an hour
    assert est["eager_hours"] <= est["levels_hours"] + 1e-6
    assert est["levels_hours"] == pytest.approx(
        sum(max(w[t] for t in lv) for lv in a.levels), **near)
    # eager is the weight of its path, a real chain, and no chain is heavier
    path = est["eager_path"]
    assert all(pg.graph.has_edge(u, v) for u, v in zip(path, path[1:]))
    assert est["eager_hours"] == pytest.approx(sum(w[t] for t in path), **near)
    assert est["eager_hours"] == pytest.approx(max(heaviest(pg.graph, w), default=0.0), **near)
    assert sorted(est["unknown"] + list(est["hours"])) == sorted(a.order)


def heaviest(g: DiGraph, w: dict[str, float]) -> list[float]:
    """The weight of the heaviest path starting at each todo (by brute recursion)."""
    memo: dict[str, float] = {}

    def best(v: str) -> float:
        if v not in memo:
            memo[v] = w[v] + max((best(s) for s in g.successors(v)), default=0.0)
        return memo[v]

    return [best(v) for v in g.nodes]


def test_dry_run_document_carries_the_estimate_and_again() -> None:
    cat = catalog_from_edges(3, [(0, 1)], hours=[1, 4, None],
                             overrides={0: {"status": "completed"}})
    doc = dry_run_document(cat, "PLAN-1", p50_seconds={"TODO-2": 7200.0})
    assert doc["again"] is False and doc["skipped"] == ["TODO-0"]
    assert doc["strategy_estimate"]["hours"] == {"TODO-1": 4.0, "TODO-2": 2.0}
    again = dry_run_document(cat, "PLAN-1", again=True, p50_seconds={"TODO-2": 7200.0})
    assert again["again"] is True and again["skipped"] == [] and again["todos"] == 3
    assert again["levels"] == [["TODO-0", "TODO-2"], ["TODO-1"]]
    est = again["strategy_estimate"]
    assert (est["eager_hours"], est["levels_hours"]) == (5.0, 6.0)


def test_again_leaves_a_step_done_by_hand_done() -> None:
    """--again reruns completed todos that have a command; a completed one without (a
    manual step) cannot run: it stays done, and its dependents no longer wait on it."""
    cat = catalog_from_edges(3, [(0, 1), (1, 2)],
                             overrides={0: {"status": "completed", "run": None},
                                        1: {"status": "completed"}})
    doc = dry_run_document(cat, "PLAN-1", again=True)
    assert doc["skipped"] == ["TODO-0"] and doc["levels"] == [["TODO-1"], ["TODO-2"]]
    assert dry_run_document(cat, "PLAN-1")["levels"] == [["TODO-2"]]
