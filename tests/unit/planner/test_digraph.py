"""coord's plan graph (coordination.planner.digraph) against networkx, its oracle: the
same nodes, edges and orders, the same topological generations, the same answer on
acyclicity, on random graphs with cycles and self-loops (a subgraph's order is the
graph's; networkx's view may iterate a small one in set order)."""

from __future__ import annotations

from typing import Any

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordination.planner.algorithms import find_cycles
from coordination.planner.digraph import (
    DiGraph,
    Unfeasible,
    is_directed_acyclic_graph,
    topological_generations,
)

pytestmark = pytest.mark.timeout(120)

SETTINGS = settings(max_examples=150, deadline=None)


@st.composite
def graphs(draw: Any, max_n: int = 14) -> tuple[list[str], list[tuple[str, str]]]:
    """Nodes in a drawn order, and edges (cycles, self-loops and repeats allowed)."""
    n = draw(st.integers(0, max_n))
    nodes = draw(st.permutations([f"T{i}" for i in range(n)]))
    edges = draw(st.lists(st.tuples(st.sampled_from(nodes), st.sampled_from(nodes)),
                          max_size=3 * n)) if n else []
    return list(nodes), edges


def both(nodes: list[str], edges: list[tuple[str, str]]) -> tuple[DiGraph, nx.DiGraph]:
    ours, theirs = DiGraph(), nx.DiGraph()
    for g in (ours, theirs):
        g.add_nodes_from((n, {"todo": n.lower()}) for n in nodes)
        g.add_edges_from(edges)
    return ours, theirs


def generations(g: Any, fn: Any) -> tuple[list[list[str]], bool]:
    """The generations given before a cycle stops them, and whether one did."""
    out: list[list[str]] = []
    try:
        for gen in fn(g):
            out.append(list(gen))
    except (Unfeasible, nx.NetworkXUnfeasible):
        return out, True
    return out, False


@SETTINGS
@given(graphs())
def test_the_same_graph_as_networkx_builds(graph: Any) -> None:
    ours, theirs = both(*graph)
    assert list(ours.nodes) == list(theirs.nodes)
    assert list(ours.edges) == list(theirs.edges)
    assert len(ours.edges) == theirs.number_of_edges() == ours.number_of_edges()
    assert ours.number_of_nodes() == theirs.number_of_nodes() == len(ours)
    for n in theirs.nodes:
        assert ours.nodes[n] == theirs.nodes[n]
        assert list(ours.successors(n)) == list(theirs.successors(n))
        assert list(ours.predecessors(n)) == list(theirs.predecessors(n))
        assert ours.in_degree(n) == theirs.in_degree(n)
    for u, v in graph[1]:
        assert ours.has_edge(u, v) and (u, v) in ours.edges
    assert not ours.has_edge("nope", "T0") and ("nope", "T0") not in ours.edges


@SETTINGS
@given(graphs())
def test_topological_generations_and_acyclicity_are_networkx_s(graph: Any) -> None:
    ours, theirs = both(*graph)
    assert generations(ours, topological_generations) == generations(
        theirs, nx.topological_generations)
    assert is_directed_acyclic_graph(ours) == nx.is_directed_acyclic_graph(theirs)


@SETTINGS
@given(graphs(), st.data())
def test_subgraph_and_removal_are_networkx_s(graph: Any, data: Any) -> None:
    nodes, _edges = graph
    ours, theirs = both(*graph)
    some = data.draw(st.lists(st.sampled_from(nodes), unique=True)) if nodes else []
    sub_ours, sub_theirs = ours.subgraph(some + ["not-a-node"]), theirs.subgraph(some)
    # networkx's view iterates a small subgraph in its node set's order: compare as sets;
    # ours keeps the graph's order (what callers sort anyway)
    assert set(sub_ours.nodes) == set(sub_theirs.nodes)
    assert list(sub_ours.nodes) == [n for n in ours.nodes if n in set(some)]
    assert set(sub_ours.edges) == set(sub_theirs.edges)
    assert [sorted(g) for g in generations(sub_ours, topological_generations)[0]] == [
        sorted(g) for g in generations(sub_theirs, nx.topological_generations)[0]]
    for n in some:
        assert sub_ours.nodes[n] is ours.nodes[n]  # shared, as networkx's view shares
    ours.remove_nodes_from([*some, "not-a-node"])
    theirs.remove_nodes_from(some)
    assert list(ours.nodes) == list(theirs.nodes)
    assert list(ours.edges) == list(theirs.edges)
    for n in theirs.nodes:
        assert list(ours.predecessors(n)) == list(theirs.predecessors(n))


def test_adding_twice_keeps_one_node_and_one_edge_and_merges_attributes() -> None:
    g = DiGraph()
    g.add_node("A", todo=1)
    g.add_nodes_from([("A", {"more": 2}), "B"])
    g.add_edge("A", "B")
    g.add_edges_from([("A", "B"), ("B", "C", {"w": 1})])
    assert g.nodes["A"] == {"todo": 1, "more": 2} and list(g.nodes) == ["A", "B", "C"]
    assert list(g.edges) == [("A", "B"), ("B", "C")]


def test_a_100_000_todo_chain_and_cycle_need_no_recursion() -> None:
    n = 100_000
    chain = DiGraph()
    chain.add_edges_from((f"T{i}", f"T{i + 1}") for i in range(n - 1))
    assert sum(1 for _ in topological_generations(chain)) == n
    assert is_directed_acyclic_graph(chain)
    chain.add_edge(f"T{n - 1}", "T0")
    assert not is_directed_acyclic_graph(chain)
    cycles, tangles = find_cycles(chain, limit=1)
    assert tangles == 1 and len(cycles[0]) == n and cycles[0][0] == "T0"
