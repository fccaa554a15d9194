"""The directed graph a plan is built on: the part of networkx's ``DiGraph`` coord uses.

Why not networkx's own: ``import networkx`` loads every algorithm it has (its package
``__init__`` imports them all, and importing any submodule runs it), about 50-90 ms of
CPU, and every command that plans paid it: `plan validate`, `plan sweep` (the waiting
CLI), `todo run`, a resume. coord needs a container (nodes with a ``todo`` attribute,
edges, successors, predecessors, a subgraph), Kahn's topological generations and an
acyclicity check, all a few lines each. networkx stays for what is not: the strongly
connected components a cycle report needs (:func:`coordination.planner.algorithms.find_cycles`),
imported only when a plan has a cycle, and it is the tests' oracle
(``tests/unit/planner/test_digraph.py`` compares these with networkx's on random graphs).

Same names and behaviour as networkx's for what is here: nodes and adjacency keep
insertion order, ``nodes[n]`` is the node's attribute dict, ``edges`` yields ``(u, v)``
pairs by node then by successor insertion, a subgraph keeps the graph's node order and
shares the nodes' attribute dicts, and :func:`topological_generations` yields the same
generations in the same order and raises :class:`Unfeasible` on a cycle, after the
generations before it, as ``nx.topological_generations`` raises ``NetworkXUnfeasible``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

#: A node is a todo id (coord's graphs have no other kind).
Node = str


class Unfeasible(ValueError):
    """The graph has a cycle: it has no topological order."""


class NodeView(Mapping[Node, dict[str, Any]]):
    """``graph.nodes``: iterate the nodes, ``nodes[n]`` is ``n``'s attribute dict."""

    __slots__ = ("_node",)

    def __init__(self, node: dict[Node, dict[str, Any]]) -> None:
        self._node = node

    def __getitem__(self, n: Node) -> dict[str, Any]:
        return self._node[n]

    def __iter__(self) -> Iterator[Node]:
        return iter(self._node)

    def __len__(self) -> int:
        return len(self._node)

    def __contains__(self, n: object) -> bool:
        return n in self._node


class EdgeView:
    """``graph.edges``: the ``(u, v)`` pairs, by node then by successor insertion."""

    __slots__ = ("_succ",)

    def __init__(self, succ: dict[Node, dict[Node, dict[str, Any]]]) -> None:
        self._succ = succ

    def __iter__(self) -> Iterator[tuple[Node, Node]]:
        for u, nbrs in self._succ.items():
            for v in nbrs:
                yield u, v

    def __len__(self) -> int:
        return sum(len(nbrs) for nbrs in self._succ.values())

    def __contains__(self, edge: object) -> bool:
        if not (isinstance(edge, tuple) and len(edge) == 2):
            return False
        u, v = edge
        return u in self._succ and v in self._succ[u]


class DiGraph:
    """A directed graph without parallel edges (adding an edge twice keeps one)."""

    def __init__(self) -> None:
        self._node: dict[Node, dict[str, Any]] = {}
        self._succ: dict[Node, dict[Node, dict[str, Any]]] = {}
        self._pred: dict[Node, dict[Node, dict[str, Any]]] = {}

    # -- building -----------------------------------------------------------------------
    def add_node(self, n: Node, **attr: Any) -> None:
        if n not in self._node:
            self._node[n] = dict(attr)
            self._succ[n] = {}
            self._pred[n] = {}
        else:
            self._node[n].update(attr)

    def add_nodes_from(self, nodes: Iterable[Any], **attr: Any) -> None:
        """Each item a node, or ``(node, attribute dict)``."""
        for item in nodes:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], dict):
                self.add_node(item[0], **{**attr, **item[1]})
            else:
                self.add_node(item, **attr)

    def add_edge(self, u: Node, v: Node, **attr: Any) -> None:
        for n in (u, v):
            if n not in self._node:
                self.add_node(n)
        data = self._succ[u].get(v)
        if data is None:
            data = {}
            self._succ[u][v] = data
            self._pred[v][u] = data
        data.update(attr)

    def add_edges_from(self, edges: Iterable[tuple[Any, ...]]) -> None:
        """Each item ``(u, v)`` or ``(u, v, attribute dict)``."""
        for e in edges:
            if len(e) == 3:
                self.add_edge(e[0], e[1], **e[2])
            else:
                u, v = e
                self.add_edge(u, v)

    def remove_nodes_from(self, nodes: Iterable[Node]) -> None:
        """Remove these nodes and their edges; a node not in the graph is ignored."""
        for n in list(nodes):
            if n not in self._node:
                continue
            for v in self._succ.pop(n):
                if v != n:
                    del self._pred[v][n]
            for u in self._pred.pop(n):
                if u != n:
                    del self._succ[u][n]
            del self._node[n]

    # -- reading ------------------------------------------------------------------------
    @property
    def nodes(self) -> NodeView:
        return NodeView(self._node)

    @property
    def edges(self) -> EdgeView:
        return EdgeView(self._succ)

    def successors(self, n: Node) -> Iterator[Node]:
        return iter(self._succ[n])

    def predecessors(self, n: Node) -> Iterator[Node]:
        return iter(self._pred[n])

    def has_node(self, n: Node) -> bool:
        return n in self._node

    def has_edge(self, u: Node, v: Node) -> bool:
        return u in self._succ and v in self._succ[u]

    def number_of_nodes(self) -> int:
        return len(self._node)

    def number_of_edges(self) -> int:
        return len(self.edges)

    def in_degree(self, n: Node) -> int:
        return len(self._pred[n])

    def __contains__(self, n: object) -> bool:
        return n in self._node

    def __iter__(self) -> Iterator[Node]:
        return iter(self._node)

    def __len__(self) -> int:
        return len(self._node)

    def subgraph(self, nodes: Iterable[Node]) -> DiGraph:
        """The graph induced by ``nodes`` (those in this graph), in this graph's node
        order; the nodes' attribute dicts are shared, as in networkx's subgraph view."""
        keep = {n for n in nodes if n in self._node}
        sub = DiGraph()
        for n, data in self._node.items():
            if n in keep:
                sub._node[n] = data
                sub._succ[n] = {}
                sub._pred[n] = {}
        for u in sub._node:
            for v, data in self._succ[u].items():
                if v in keep:
                    sub._succ[u][v] = data
                    sub._pred[v][u] = data
        return sub


def topological_generations(g: DiGraph) -> Iterator[list[Node]]:
    """Kahn's algorithm, a generation at a time: the nodes with no predecessor, then
    those whose predecessors are all in earlier generations... As networkx's: raises
    :class:`Unfeasible` after the last generation it could give when there is a cycle."""
    indegree = {v: len(p) for v, p in g._pred.items() if p}
    zero = [v for v, p in g._pred.items() if not p]
    while zero:
        generation, zero = zero, []
        for node in generation:
            for child in g._succ[node]:
                left = indegree[child] - 1
                if left:
                    indegree[child] = left
                else:
                    del indegree[child]
                    zero.append(child)
        yield generation
    if indegree:
        raise Unfeasible("the graph has a cycle")


def is_directed_acyclic_graph(g: DiGraph) -> bool:
    """Whether ``g`` has no cycle (a self-loop is one)."""
    try:
        for _ in topological_generations(g):
            pass
    except Unfeasible:
        return False
    return True
