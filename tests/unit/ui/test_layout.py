"""The web view's DAG layout: levels left to right, one lane per repo, no overlap."""

from __future__ import annotations

import random

import pytest

from coordination.ui.layout import NODE_H, NODE_W, layout

pytestmark = pytest.mark.timeout(30)


def random_dag(n: int, repos: int, seed: int = 7) -> tuple[dict[str, str], list[tuple[str, str]],
                                                           list[list[str]]]:
    import networkx as nx

    rnd = random.Random(seed)
    ids = [f"TODO-{i:04d}" for i in range(n)]
    repo_of = {t: f"repo{rnd.randrange(repos)}" for t in ids}
    edges = [(ids[j], ids[i]) for i in range(1, n) for j in rnd.sample(range(max(0, i - 40), i),
                                                                       min(i, 2))]
    g = nx.DiGraph(edges)
    g.add_nodes_from(ids)
    return repo_of, edges, [sorted(gen) for gen in nx.topological_generations(g)]


def test_every_node_placed_once_in_its_lane_without_overlap() -> None:
    repo_of, edges, levels = random_dag(300, 4)
    doc = layout(repo_of, edges, levels, critical_path=levels and [levels[0][0]])
    nodes = doc["nodes"]
    assert sorted(n["id"] for n in nodes) == sorted(repo_of)
    lanes = {lane["repo"]: lane for lane in doc["lanes"]}
    assert list(lanes) == sorted(set(repo_of.values()))
    boxes = set()
    for n in nodes:
        lane = lanes[repo_of[n["id"]]]
        assert lane["y"] <= n["y"] and n["y"] + NODE_H <= lane["y"] + lane["height"]
        assert n["x"] + NODE_W <= doc["width"] and n["y"] + NODE_H <= doc["height"]
        boxes.add((n["x"], n["y"]))
    assert len(boxes) == len(nodes), "two todos share a box"
    pos = {n["id"]: n for n in nodes}
    assert all(pos[u]["x"] < pos[v]["x"] for u, v in edges), "an edge goes backwards"
    assert len(doc["edges"]) == len(edges)


def test_critical_path_marks_nodes_and_consecutive_edges() -> None:
    repo_of = {"A": "api", "B": "web", "C": "web", "D": "api"}
    edges = [("A", "B"), ("B", "C"), ("A", "D")]
    doc = layout(repo_of, edges, [["A"], ["B", "D"], ["C"]], critical_path=["A", "B", "C"])
    assert {n["id"] for n in doc["nodes"] if n["critical"]} == {"A", "B", "C"}
    assert {(e["from"], e["to"]) for e in doc["edges"] if e["critical"]} == {("A", "B"), ("B", "C")}


def test_a_thousand_todos_lay_out() -> None:
    """A thousand todos lay out whole (how fast is bench/'s to say: no wall time here)."""
    repo_of, edges, levels = random_dag(1000, 8)
    doc = layout(repo_of, edges, levels)
    assert len(doc["nodes"]) == 1000
