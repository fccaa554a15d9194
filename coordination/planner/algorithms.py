"""Graph algorithms the planner needs, written to stay linear-ish and non-recursive.

Plans reach 10,000 todos (and cycle detection is checked on 100,000), so
nothing here recurses per node (Python's recursion limit is ~1,000) and
nothing is quadratic in the number of todos except the redundant-edge check,
which is bounded and says so when it skips.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

from coordination.planner.digraph import DiGraph, topological_generations

# Beyond this the reachability bitsets (n * n / 8 bytes in the worst case) are
# too big to be worth a warning-level finding.
REDUNDANCY_MAX_NODES = 30_000


def find_cycles(graph: DiGraph, limit: int = 20) -> tuple[list[list[str]], int]:
    """Up to ``limit`` cycles, one per tangle, and the number of tangles.

    A tangle is a strongly connected component with a cycle in it; separate
    tangles are independent cycles, so each is reported. Within a tangle we
    report the shortest cycle through its smallest id: enough to say where to
    cut, deterministic, and found by BFS in time linear in the tangle.
    Each cycle is a node list without the closing repetition.

    networkx finds the components (Tarjan's, without recursion); it is imported here
    only, for a plan known to have a cycle (validation checks that first).
    """
    import networkx as nx  # lazy: only a plan with a cycle needs its components

    tangles: list[set[str]] = []
    nxg: nx.DiGraph = nx.DiGraph()
    nxg.add_nodes_from(graph._succ)
    nxg.add_edges_from(graph.edges)
    for comp in nx.strongly_connected_components(nxg):
        if len(comp) > 1:
            tangles.append(comp)
        else:
            (node,) = comp
            if graph.has_edge(node, node):
                tangles.append(comp)
    tangles.sort(key=min)
    cycles = [_shortest_cycle_through(graph, min(c), c) for c in tangles[:limit]]
    return cycles, len(tangles)


def _shortest_cycle_through(graph: DiGraph, start: str, within: set[str]) -> list[str]:
    if graph.has_edge(start, start):
        return [start]
    parent: dict[str, str] = {}
    queue: deque[str] = deque([start])
    seen = {start}
    while queue:
        u = queue.popleft()
        for v in sorted(graph.successors(u)):
            if v == start:
                path = [u]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                path.reverse()
                return path
            if v in within and v not in seen:
                seen.add(v)
                parent[v] = u
                queue.append(v)
    raise AssertionError("a strongly connected component always closes a cycle")


def topological_levels(graph: DiGraph) -> list[list[str]]:
    """Topological generations, each sorted by id; raises digraph.Unfeasible on a cycle."""
    return [sorted(gen) for gen in topological_generations(graph)]


def redundant_edges(graph: DiGraph, order: list[str]) -> list[tuple[str, str]]:
    """Edges implied by a longer path (u -> v when u reaches v another way).

    ``order`` is a topological order. Reachability is kept as one Python int
    bitset per node, built in reverse order, so the work is one big-int OR per
    edge; an edge u -> v is redundant when another successor of u reaches v.
    """
    index = {n: i for i, n in enumerate(order)}
    reach: dict[Hashable, int] = {}
    succ = graph._succ  # adjacency dicts: avoids a view object per node
    out: list[tuple[str, str]] = []
    for u in reversed(order):
        bits = 0
        for s in succ[u]:
            bits |= reach[s] | (1 << index[s])
        reach[u] = bits
        kids = list(succ[u])
        if len(kids) < 2:
            continue
        for v in kids:
            bit = 1 << index[v]
            for w in kids:
                if w != v and reach[w] & bit:
                    out.append((u, v))
                    break
    out.sort()
    return out


def critical_path(
    graph: DiGraph, order: list[str], weight: dict[str, float]
) -> tuple[list[str], float]:
    """Heaviest path by ``weight`` (hours), ties broken by more todos, then smaller ids.

    Breaking ties by length keeps the path meaningful when nothing is
    estimated (all weights 0): it is then the longest chain of todos.
    """
    pred = graph._pred
    best: dict[str, tuple[float, int]] = {}
    back: dict[str, str | None] = {}
    for v in order:
        choice: str | None = None
        key = (0.0, 0)
        for u in pred[v]:
            k = best[u]
            if choice is None or k > key or (k == key and u < choice):
                choice, key = u, k
        best[v] = (key[0] + weight[v], key[1] + 1)
        back[v] = choice
    if not best:
        return [], 0.0
    end = order[0]
    for v in order:
        if best[v] > best[end] or (best[v] == best[end] and v < end):
            end = v
    path: list[str] = []
    cur: str | None = end
    while cur is not None:
        path.append(cur)
        cur = back[cur]
    path.reverse()
    return path, best[end][0]

