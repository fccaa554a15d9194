"""Who starts first when a repo's (or a resource's) slots are contended.

Waiting todos start in order of ``priority`` (critical > high > medium > low),
then the longer remaining critical path (estimated hours from the todo to the
plan's end, itself included; todos without an estimate weigh 0), then the
longer chain of todos after it, then age (how long it has waited, added by the
runtime). The rank is text that sorts first for what should start first, so
Redis can keep a line in a sorted set ordered lexically.

The runtime imports this module (for :data:`DEFAULT_RANK`) in every process,
workers included: it only walks a graph's adjacency dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coordination.catalog.models import Todo
    from coordination.planner.digraph import DiGraph

#: Priority order: a contended slot goes to the lowest index first.
PRIORITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def start_rank(priority: str, remaining_hours: float, remaining_todos: int) -> str:
    """A todo's place in line as sortable text (see the module docstring)."""
    p = PRIORITY_ORDER.get(priority, 2)
    hours = max(0, min(int(round(remaining_hours * 100)), 10**10 - 1))
    chain = max(0, min(int(remaining_todos), 10**6 - 1))
    return f"{p}{10**10 - 1 - hours:010d}{10**6 - 1 - chain:06d}"


DEFAULT_RANK = start_rank("medium", 0.0, 0)


def ranks(graph: DiGraph, todo: Callable[[str], Todo | None]
          ) -> dict[str, tuple[str, float, int]]:
    """Todo id -> (rank, remaining hours, remaining todos) for every node of a plan
    graph; ``todo(id)`` gives the catalog todo (its priority and estimate)."""
    hours: dict[str, float] = {}
    prio: dict[str, str] = {}
    for n in graph.nodes:
        t = todo(n)
        hours[n] = float(getattr(t, "estimated_hours", None) or 0.0)
        p = getattr(t, "priority", "medium")
        prio[n] = str(getattr(p, "value", p))
    behind = remaining_paths(graph, hours)
    return {n: (start_rank(prio[n], *behind[n]), round(behind[n][0], 2), behind[n][1])
            for n in graph.nodes}


def remaining_paths(graph: DiGraph, weight: dict[str, float]) -> dict[str, tuple[float, int]]:
    """For each todo, the heaviest path from it to the plan's end: ``(hours, todos)``
    including itself. What a contended slot is given by (after priority): the
    todo with more of the plan still behind it starts first.

    Todos are taken from the plan's ends backwards, each once all its successors
    are done (linear, not recursive); ValueError when ``graph`` has a cycle."""
    succ, pred = graph._succ, graph._pred  # adjacency dicts: no view object per node
    waiting = {v: len(succ[v]) for v in succ}  # successors not done yet
    ready = [v for v, n in waiting.items() if not n]
    out: dict[str, tuple[float, int]] = {}
    for v in ready:  # grows while it is walked
        best = max((out[w] for w in succ[v]), default=(0.0, 0))
        out[v] = (best[0] + weight.get(v, 0.0), best[1] + 1)
        for u in pred[v]:
            waiting[u] -= 1
            if not waiting[u]:
                ready.append(u)
    if len(out) != len(waiting):
        raise ValueError("the graph has a cycle: no remaining path is defined")
    return out


def start_order(items: dict[str, str], repo_of: dict[str, str]) -> dict[str, list[str]]:
    """Repo -> its todos in the order they start when they all wait at once."""
    out: dict[str, list[str]] = {}
    for t in sorted(items, key=lambda t: (items[t], t)):
        out.setdefault(repo_of[t], []).append(t)
    return out
