"""Who starts first when a repo's (or a resource's) slots are contended.

Waiting todos start in order of ``priority`` (critical > high > medium > low),
then the longer remaining critical path (estimated hours from the todo to the
plan's end, itself included; todos without an estimate weigh 0), then the
longer chain of todos after it, then age (how long it has waited, added by the
runtime). The rank is text that sorts first for what should start first, so
Redis can keep a line in a sorted set ordered lexically.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import networkx as nx

#: Priority order: a contended slot goes to the lowest index first.
PRIORITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def start_rank(priority: str, remaining_hours: float, remaining_todos: int) -> str:
    """A todo's place in line as sortable text (see the module docstring)."""
    p = PRIORITY_ORDER.get(priority, 2)
    hours = max(0, min(int(round(remaining_hours * 100)), 10**10 - 1))
    chain = max(0, min(int(remaining_todos), 10**6 - 1))
    return f"{p}{10**10 - 1 - hours:010d}{10**6 - 1 - chain:06d}"


DEFAULT_RANK = start_rank("medium", 0.0, 0)


def ranks(graph: nx.DiGraph, todo: Any) -> dict[str, tuple[str, float, int]]:
    """Todo id -> (rank, remaining hours, remaining todos) for every node of a plan
    graph; ``todo(id)`` gives the catalog todo (its priority and estimate)."""
    import networkx as nx

    from coordination.planner.algorithms import remaining_paths

    hours: dict[str, float] = {}
    prio: dict[str, str] = {}
    for n in graph.nodes:
        t = todo(n)
        hours[n] = float(getattr(t, "estimated_hours", None) or 0.0)
        p = getattr(t, "priority", "medium")
        prio[n] = str(getattr(p, "value", p))
    behind = remaining_paths(graph, list(nx.topological_sort(graph)), hours)
    return {n: (start_rank(prio[n], *behind[n]), round(behind[n][0], 2), behind[n][1])
            for n in graph.nodes}


def start_order(items: dict[str, str], repo_of: dict[str, str]) -> dict[str, list[str]]:
    """Repo -> its todos in the order they start when they all wait at once."""
    out: dict[str, list[str]] = {}
    for t in sorted(items, key=lambda t: (items[t], t)):
        out.setdefault(repo_of[t], []).append(t)
    return out
