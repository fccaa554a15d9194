"""A DAG laid out for the web view: one column per level, one lane per repo.

Pure and fast (linear in nodes and edges, plus one sort per cell): a 1,000-todo
sweep is laid out in milliseconds, so the browser only positions boxes and
draws edges. Within a lane, the todos of one level are stacked; each cell is
ordered by the mean position of its predecessors (one barycentre pass, left to
right), which keeps most edges short and uncrossed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TypedDict

NODE_W = 168
NODE_H = 26
GAP_X = 56
GAP_Y = 6
LANE_PAD = 10
LABEL_W = 96  # left margin holding the lane names


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
Edge = TypedDict("Edge", {"from": str, "to": str, "critical": bool})


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
    """Positions for every node of ``repo_of`` (todo -> repo).

    ``levels`` lists every node once (topological generations). Returns
    ``{"width", "height", "node_w", "node_h", "lanes": [{"repo", "y", "height"}],
    "nodes": [{"id", "repo", "level", "x", "y", "critical"}],
    "edges": [{"from", "to", "critical"}]}``.
    """
    lanes = sorted({repo_of[t] for t in repo_of})
    lane_index = {r: i for i, r in enumerate(lanes)}
    preds: dict[str, list[str]] = defaultdict(list)
    for u, v in edges:
        preds[v].append(u)
    cells: dict[tuple[str, int], list[str]] = defaultdict(list)
    level_of: dict[str, int] = {}
    for i, level in enumerate(levels):
        for t in level:
            level_of[t] = i
            cells[(repo_of[t], i)].append(t)
    # Rank within the lane: predecessors' ranks are known (lower levels come first).
    rank: dict[str, float] = {}
    for i in range(len(levels)):
        for repo in lanes:
            cell = cells.get((repo, i))
            if not cell:
                continue

            def key(t: str) -> tuple[float, str]:
                ps = [rank[p] + 1000.0 * lane_index[repo_of[p]] for p in preds[t] if p in rank]
                return (sum(ps) / len(ps) if ps else 1e12, t)

            cell.sort(key=key)
            for j, t in enumerate(cell):
                rank[t] = float(j)
    depth = {r: max((len(c) for (rr, _), c in cells.items() if rr == r), default=1) for r in lanes}
    lane_docs: list[Lane] = []
    y = 0
    top: dict[str, int] = {}
    for r in lanes:
        h = 2 * LANE_PAD + depth[r] * NODE_H + (depth[r] - 1) * GAP_Y
        lane_docs.append({"repo": r, "y": y, "height": h})
        top[r] = y
        y += h
    crit = set(critical_path)
    crit_edges = set(zip(critical_path, list(critical_path)[1:]))
    nodes: list[Node] = []
    for (repo, i), cell in sorted(cells.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        for j, t in enumerate(cell):
            nodes.append({"id": t, "repo": repo, "level": i,
                          "x": LABEL_W + i * (NODE_W + GAP_X),
                          "y": top[repo] + LANE_PAD + j * (NODE_H + GAP_Y),
                          "critical": t in crit})
    return {
        "width": LABEL_W + max(1, len(levels)) * (NODE_W + GAP_X),
        "height": max(y, NODE_H + 2 * LANE_PAD),
        "node_w": NODE_W,
        "node_h": NODE_H,
        "lanes": lane_docs,
        "nodes": nodes,
        "edges": [{"from": u, "to": v, "critical": (u, v) in crit_edges}
                  for u, v in edges if u in level_of and v in level_of],
    }
