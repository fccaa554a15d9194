"""A DAG laid out for the web view: one column per level, one lane per repo.

Pure and fast (linear in nodes, edges and the columns long edges cross, plus a sort per
column and pass): a 1,000-todo sweep is laid out in well under a second, so the browser
only positions boxes and draws the paths given. Within a lane, the todos of one level are
stacked; an edge that skips levels runs through a dummy slot of its own in each column it
crosses (in its source's lane), so it never passes under a todo
(:mod:`coordination.ui.layered`: ordering by barycentre, paths between columns).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TypedDict

from coordination.ui.layered import chains, curve, is_dummy, order

NODE_W = 168
NODE_H = 26
GAP_X = 56
GAP_Y = 6
LANE_PAD = 10
LABEL_W = 96  # left margin holding the lane names
DUMMY_H = 8  # the slot a long edge takes in a column it crosses


class Lane(TypedDict):
    repo: str
    y: int
    height: int


class Node(TypedDict):
    id: str
    repo: str
    level: int
    x: int
    y: int
    critical: bool


#: ``from`` is a keyword: the functional form.
Edge = TypedDict("Edge", {"from": str, "to": str, "critical": bool, "d": str})


class Layout(TypedDict):
    width: int
    height: int
    node_w: int
    node_h: int
    lanes: list[Lane]
    nodes: list[Node]
    edges: list[Edge]


def layout(
    repo_of: Mapping[str, str],
    edges: Sequence[tuple[str, str]],
    levels: Sequence[Sequence[str]],
    critical_path: Sequence[str] = (),
) -> Layout:
    """Positions for every node of ``repo_of`` (todo -> repo), and each edge's path.

    ``levels`` lists every node once (topological generations). Returns
    ``{"width", "height", "node_w", "node_h", "lanes": [{"repo", "y", "height"}],
    "nodes": [{"id", "repo", "level", "x", "y", "critical"}],
    "edges": [{"from", "to", "critical", "d"}]}`` (``d``: an SVG path).
    """
    lanes = sorted({repo_of[t] for t in repo_of})
    lane_index = {r: i for i, r in enumerate(lanes)}
    level_of = {t: i for i, level in enumerate(levels) for t in level}
    kept = [(u, v) for u, v in edges if u in level_of and v in level_of]
    chain_list, dummies = chains(level_of, kept)
    lane_of = dict(repo_of)
    for chain in chain_list:
        for d in chain[1:-1]:
            lane_of[d] = repo_of[chain[0]]  # a long edge runs in its source's lane
    columns: list[list[str]] = [list(level) for level in levels]
    for d, col in dummies.items():
        columns[col].append(d)
    cols = order(columns, chain_list, lambda n: lane_index[lane_of[n]])
    # Each cell (lane, level) stacks its todos and dummies; a lane is as tall as its
    # tallest cell.
    offset: dict[str, int] = {}
    tallest: dict[str, int] = defaultdict(int)
    for stack in cols:
        used: dict[str, int] = defaultdict(int)
        for n in stack:
            lane = lane_of[n]
            offset[n] = used[lane]
            used[lane] += (DUMMY_H if is_dummy(n) else NODE_H) + GAP_Y
        for lane, h in used.items():
            tallest[lane] = max(tallest[lane], h - GAP_Y)
    lane_docs: list[Lane] = []
    top: dict[str, int] = {}
    y = 0
    for r in lanes:
        h = 2 * LANE_PAD + max(NODE_H, tallest[r])
        lane_docs.append({"repo": r, "y": y, "height": h})
        top[r] = y
        y += h

    def x_of(col: int) -> int:
        return LABEL_W + col * (NODE_W + GAP_X)

    def y_of(n: str) -> int:
        return top[lane_of[n]] + LANE_PAD + offset[n]

    crit = set(critical_path)
    crit_edges = set(zip(critical_path, list(critical_path)[1:]))
    nodes: list[Node] = []
    for i, stack in enumerate(cols):
        for t in stack:
            if not is_dummy(t):
                nodes.append({"id": t, "repo": repo_of[t], "level": i, "x": x_of(i),
                              "y": y_of(t), "critical": t in crit})
    out_edges: list[Edge] = []
    for (u, v), chain in zip(kept, chain_list):
        points: list[tuple[float, float]] = [(x_of(level_of[u]) + NODE_W, y_of(u) + NODE_H / 2)]
        for d in chain[1:-1]:
            mid = y_of(d) + DUMMY_H / 2
            points += [(x_of(dummies[d]), mid), (x_of(dummies[d]) + NODE_W, mid)]
        points.append((x_of(level_of[v]), y_of(v) + NODE_H / 2))
        out_edges.append({"from": u, "to": v, "critical": (u, v) in crit_edges,
                          "d": curve(points)})
    return {
        "width": LABEL_W + max(1, len(levels)) * (NODE_W + GAP_X),
        "height": max(y, NODE_H + 2 * LANE_PAD),
        "node_w": NODE_W,
        "node_h": NODE_H,
        "lanes": lane_docs,
        "nodes": nodes,
        "edges": out_edges,
    }
