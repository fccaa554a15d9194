"""`coord plan optimize PLAN`: a plan's redundant edges removed (transitive reduction).

An edge ``u -> v`` (``v`` waits for ``u``) is redundant when a longer path already
makes ``v`` wait for ``u``: removing it changes no order any sweep may take. Only
edges between todos of the plan are judged, as written in the catalog (a template's
bracketed references and ``deps: follow`` edges are not plain edges: kept), and
issue blockers and edges to todos of other plans are never touched. Completed todos
count: their edges are structure, and a later ``--again`` sweep runs them.

One edit, so one audit entry: the edges are worked out again on the document the
edit changes (under the catalog's lock), and each goes from both sides, the waiting
todo's ``blocked_by`` and its blocker's mirrored ``blocking``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import TypedDict

from ruamel.yaml.comments import CommentedMap

from coordination.catalog.edits.document import plan_todo_items, remove_from
from coordination.catalog.models import Catalog
from coordination.errors import PlanError
from coordination.planner.dag import require_plan
from coordination.planner.algorithms import find_cycles, redundant_edges, topological_levels
from coordination.planner.digraph import DiGraph, is_directed_acyclic_graph

#: Redundant edges past which their implying paths are not looked for (one walk each).
MAX_PATHS = 2000


class RemovedEdge(TypedDict):
    todo: str  # the todo that waited
    blocked_by: str  # the blocker it no longer names
    via: list[str]  # a longer path from the blocker to it ([] past MAX_PATHS)


class Optimized(TypedDict):
    plan: str
    dry_run: bool
    removed: list[RemovedEdge]
    edges_before: int
    edges_after: int


#: A todo as the reduction sees it: (id, blocked_by, blocking).
Row = tuple[str, Iterable[object], Iterable[object]]


def plan_graph(rows: Iterable[Row]) -> DiGraph:
    """The plain edges among ``rows`` (a plan's todos), from either side."""
    rows = list(rows)
    ids = {r[0] for r in rows}
    g = DiGraph()
    g.add_nodes_from(sorted(ids))
    for tid, blocked_by, blocking in rows:
        g.add_edges_from((str(u), tid) for u in blocked_by if u in ids and u != tid)
        g.add_edges_from((tid, str(v)) for v in blocking if v in ids and v != tid)
    return g


def _path(g: DiGraph, u: str, v: str) -> list[str]:
    """A path ``u -> ... -> v`` of at least two edges (breadth first)."""
    back: dict[str, str] = {}
    todo = deque(w for w in sorted(g.successors(u)) if w != v)
    for w in todo:
        back[w] = u
    while todo:
        w = todo.popleft()
        if w == v:
            break
        for x in sorted(g.successors(w)):
            if x not in back and x != u:
                back[x] = w
                todo.append(x)
    if v not in back:
        return []
    out = [v]
    while out[-1] != u:
        out.append(back[out[-1]])
    return out[::-1]


def reduce(plan_id: str, rows: Iterable[Row]) -> tuple[list[RemovedEdge], int]:
    """The redundant edges of a plan (each with a path implying it) and its edge
    count; PlanError on a cycle (no reduction is defined: `plan validate` names it)."""
    g = plan_graph(rows)
    if not is_directed_acyclic_graph(g):
        cycles, _ = find_cycles(g, limit=1)
        where = " -> ".join([*cycles[0], cycles[0][0]]) if cycles else "a cycle"
        raise PlanError(f"plan {plan_id} has a cycle ({where}): no edge is redundant in a "
                        "cycle", hint=f"`coord plan validate {plan_id}` names every cycle; "
                        "break it first")
    order = [t for level in topological_levels(g) for t in level]
    found = redundant_edges(g, order)
    if len(found) > MAX_PATHS:
        return [{"todo": v, "blocked_by": u, "via": []} for u, v in found], g.number_of_edges()
    kept = DiGraph()  # the reduced graph: each path named is one that stays
    kept.add_nodes_from(g.nodes)
    gone = set(found)
    kept.add_edges_from(e for e in g.edges if e not in gone)
    return ([{"todo": v, "blocked_by": u, "via": _path(kept, u, v)} for u, v in found],
            g.number_of_edges())


def preview(catalog: Catalog, plan_id: str) -> Optimized:
    """What :func:`edit` would remove now, from a loaded catalog (``--dry-run``)."""
    require_plan(catalog, plan_id)
    removed, n = reduce(plan_id, ((t.id, t.blocked_by, t.blocking)
                                  for t in catalog.plan_todos(plan_id)))
    return {"plan": plan_id, "dry_run": True, "removed": removed, "edges_before": n,
            "edges_after": n - len(removed)}


def edit(plan_id: str) -> Callable[[CommentedMap], Optimized]:
    """The catalog edit removing the plan's redundant edges (both sides of each)."""

    def apply(doc: CommentedMap) -> Optimized:
        items = plan_todo_items(doc, plan_id)
        by_id = {str(i.get("id")): i for i in items}
        removed, n = reduce(plan_id, ((tid, i.get("blocked_by") or (), i.get("blocking") or ())
                                      for tid, i in by_id.items()))
        for r in removed:
            remove_from(by_id[r["todo"]], "blocked_by", r["blocked_by"])
            remove_from(by_id[r["blocked_by"]], "blocking", r["todo"])
        return {"plan": plan_id, "dry_run": False, "removed": removed, "edges_before": n,
                "edges_after": n - len(removed)}

    return apply
