"""Property-based tests of the planner over random graphs (hypothesis).

Random DAGs are built from pairs (i, j), i < j, renamed through a random
permutation so edges do not follow id order; random digraphs (any pairs)
exercise cycle detection.
"""

from __future__ import annotations

from typing import Any

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordination.planner import analyze, build_plan_graph, find_cycles, validate_plan
from coordination.planner.digraph import DiGraph
from tests.unit.support.catalogs import catalog_from_edges, tid
from tests.unit.support.planner import dags


def as_networkx(g: DiGraph) -> nx.DiGraph:
    """The plan's graph as networkx's (the oracle these properties check against)."""
    out = nx.DiGraph()
    out.add_nodes_from(g.nodes)
    out.add_edges_from(g.edges)
    return out

pytestmark = pytest.mark.timeout(120)
SETTINGS = settings(max_examples=50, deadline=None)


@st.composite
def digraphs(draw: Any, max_n: int = 16) -> tuple[int, list[tuple[int, int]]]:
    n = draw(st.integers(1, max_n))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                          max_size=3 * n))
    return n, sorted({(a, b) for a, b in pairs if a != b})


def _weight(pg: Any, t: str) -> float:
    return pg.graph.nodes[t]["todo"].estimated_hours or 0.0


@SETTINGS
@given(dags())
def test_every_edge_goes_from_a_lower_level_to_a_higher_one(dag: Any) -> None:
    n, edges, hours = dag
    pg = build_plan_graph(catalog_from_edges(n, edges, hours=hours), "PLAN-1")
    a = analyze(pg)
    level = a.level_of
    assert sorted(level) == sorted(tid(i) for i in range(n))  # each todo in one level
    assert all(level[u] < level[v] for u, v in pg.graph.edges)
    for t, k in level.items():  # generations are tight: something holds each todo back
        preds = [level[p] for p in pg.graph.predecessors(t)]
        assert (k == 0 and not preds) or (k > 0 and max(preds) == k - 1)
    assert all(lv == sorted(lv) for lv in a.levels)
    assert a.widths == [len(lv) for lv in a.levels]


@SETTINGS
@given(dags(max_n=12))
def test_critical_path_is_a_path_at_least_as_long_as_every_path(dag: Any) -> None:
    n, edges, hours = dag
    pg = build_plan_graph(catalog_from_edges(n, edges, hours=hours), "PLAN-1")
    a = analyze(pg)
    cp = a.critical_path
    assert cp and all(pg.graph.has_edge(u, v) for u, v in zip(cp, cp[1:]))
    assert a.critical_hours == pytest.approx(sum(_weight(pg, t) for t in cp))
    g = as_networkx(pg.graph)
    sources = [t for t in g if g.in_degree(t) == 0]
    sinks = [t for t in g if g.out_degree(t) == 0]
    for s in sources:
        for e in sinks:
            paths = [[s]] if s == e else nx.all_simple_paths(g, s, e)
            for p in paths:
                assert sum(_weight(pg, t) for t in p) <= a.critical_hours + 1e-9
    assert a.total_hours == pytest.approx(sum(_weight(pg, t) for t in g))


@SETTINGS
@given(dags())
def test_levels_hold_every_todo_once_after_all_its_predecessors(dag: Any) -> None:
    """What the runtime sends level by level: every todo once, each after its preds."""
    n, edges, hours = dag
    pg = build_plan_graph(catalog_from_edges(n, edges, hours=hours), "PLAN-1")
    ids = [t for level in analyze(pg).levels for t in level]
    assert sorted(ids) == sorted(tid(i) for i in range(n)) and len(set(ids)) == n
    level = {t: i for i, lvl in enumerate(analyze(pg).levels) for t in lvl}
    assert all(level[u] < level[v] for u, v in pg.graph.edges)


@SETTINGS
@given(digraphs())
def test_a_reported_cycle_is_a_real_cycle(graph: Any) -> None:
    n, edges = graph
    cat = catalog_from_edges(n, edges)
    g = build_plan_graph(cat, "PLAN-1").graph
    cycles, total = find_cycles(g, limit=1000)
    assert len(cycles) == total
    assert (total == 0) == nx.is_directed_acyclic_graph(as_networkx(g))
    for c in cycles:
        assert len(set(c)) == len(c)
        assert all(g.has_edge(u, v) for u, v in zip(c, c[1:] + c[:1]))
    # tangles are disjoint: independent cycles share no todo
    seen: set[str] = set()
    for c in cycles:
        assert not seen & set(c)
        seen |= set(c)
    for f in validate_plan(cat, "PLAN-1"):
        if f.code == "cycle":
            assert all(g.has_edge(u, v) for u, v in zip(f.ids, f.ids[1:] + f.ids[:1]))


@SETTINGS
@given(dags(max_n=16))
def test_redundant_edges_are_exactly_those_implied_by_another_path(dag: Any) -> None:
    n, edges, hours = dag
    cat = catalog_from_edges(n, edges, hours=hours)
    g = build_plan_graph(cat, "PLAN-1").graph
    reported = {tuple(f.ids) for f in validate_plan(cat, "PLAN-1") if f.code == "redundant-edge"}
    expected = set(g.edges) - set(nx.transitive_reduction(as_networkx(g)).edges)
    assert reported == expected
