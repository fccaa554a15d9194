"""What the web view's two graphs share: a layered drawing in the manner of Graphviz's dot
and ELK's layered algorithm (Sugiyama et al.), sized for pages of a thousand boxes.

Nodes sit in columns (layers) given by the caller. An edge that spans more than one
column is drawn through a **dummy node** in each column it crosses: a slot of its own in
that column's stack, which no box takes, so the edge's straight run across the column
passes between boxes, never under one. Between two columns an edge is one cubic curve
with horizontal tangents, which stays inside the gap (its control points' x lie between
its ends' x), where no box is. So no part of an edge passes through a node's box: the
property ``tests/unit/ui/test_layered.py`` checks of both graphs.

Within a column, nodes and dummies are ordered by the barycentre of their predecessors'
positions (one pass left to right, then right to left and left to right again: dot's
median heuristic, simplified), which keeps most edges short and uncrossed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

#: A dummy node's id: never a todo's or repo's (those have no NUL).
DUMMY = "\x00"

Point = tuple[float, float]


def is_dummy(node: str) -> bool:
    return node.startswith(DUMMY)


def chains(level: Mapping[str, int], edges: Sequence[tuple[str, str]]
           ) -> tuple[list[list[str]], dict[str, int]]:
    """Each edge ``(u, v)`` (``level[u] < level[v]``) as its chain of nodes, ``u``, a dummy
    per column between, ``v``; and every dummy's column."""
    out: list[list[str]] = []
    dummies: dict[str, int] = {}
    for i, (u, v) in enumerate(edges):
        chain = [u]
        for col in range(level[u] + 1, level[v]):
            d = f"{DUMMY}{i}:{col}"
            dummies[d] = col
            chain.append(d)
        chain.append(v)
        out.append(chain)
    return out, dummies


def order(columns: list[list[str]], chain_list: list[list[str]],
          group: Callable[[str], int] = lambda n: 0, passes: int = 3) -> list[list[str]]:
    """``columns`` (nodes and dummies) each ordered by the barycentre of its neighbours in
    the column before (odd passes: after), kept within ``group`` (a lane's index)."""
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    for chain in chain_list:
        for a, b in zip(chain, chain[1:]):
            preds[b].append(a)
            succs[a].append(b)
    cols = [list(c) for c in columns]
    pos: dict[str, float] = {n: float(i) for c in cols for i, n in enumerate(c)}
    for p in range(passes):
        forward = p % 2 == 0
        seq = range(len(cols)) if forward else range(len(cols) - 1, -1, -1)
        near = preds if forward else succs
        for k in seq:
            col = cols[k]

            def key(n: str) -> tuple[int, float, str]:
                ns = [pos[m] for m in near[n] if m in pos]
                return (group(n), sum(ns) / len(ns) if ns else pos[n], n)

            col.sort(key=key)
            for i, n in enumerate(col):
                pos[n] = float(i)
    return cols


def curve(points: Sequence[Point]) -> str:
    """An SVG path through ``points``: exit, entry, exit, ... entry (pairs across gaps),
    each gap a cubic with horizontal tangents, each column crossed by a straight line."""
    (x, y), rest = points[0], points[1:]
    d = [f"M{_n(x)} {_n(y)}"]
    for i, (x2, y2) in enumerate(rest):
        if i % 2 == 0:  # across a gap
            mx = (x + x2) / 2
            d.append(f"C{_n(mx)} {_n(y)} {_n(mx)} {_n(y2)} {_n(x2)} {_n(y2)}")
        else:  # along a dummy's slot, through its column
            d.append(f"L{_n(x2)} {_n(y2)}")
        x, y = x2, y2
    return "".join(d)


def loop(x: float, y1: float, y2: float, bulge: float) -> str:
    """A path from ``(x, y1)`` to ``(x, y2)`` bulging ``bulge`` px to the right of ``x``
    (two boxes of one column: it stays in the gap on their right)."""
    if abs(y1 - y2) < 1:
        y1, y2 = y1 - 5, y2 + 5
    return (f"M{_n(x)} {_n(y1)}C{_n(x + bulge)} {_n(y1)} {_n(x + bulge)} {_n(y2)} "
            f"{_n(x)} {_n(y2)}")


def middle(points: Sequence[Point]) -> Point:
    """Where an edge's label goes: the middle of its middle gap's curve."""
    gaps = len(points) // 2
    i = 2 * (gaps // 2)
    (x1, y1), (x2, y2) = points[i], points[i + 1]
    return ((x1 + x2) / 2, (y1 + y2) / 2)


def _n(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")
