"""One todo at a time, in DAG order (`plan sweep --sequential`): a topological order of
a sweep's todos, ties broken by a key the caller gives (the start rank: priority, then
the longer remaining critical path), so the todo the levels strategy would start first
among those free to start is the one that goes next (pure)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping


def sequential_order(todos: Iterable[str], preds: Mapping[str, Iterable[str]],
                     key: Callable[[str], tuple[object, ...]]) -> list[str]:
    """``todos`` in a topological order of the edges ``preds`` gives among them (edges
    to todos outside ``todos`` are ignored: those are not this run's to wait for);
    among the todos free at each step the one with the smallest ``key`` first.
    ValueError names the todos of a cycle (a validated plan has none)."""
    chosen = list(dict.fromkeys(todos))
    members = set(chosen)
    waiting = {t: 0 for t in chosen}
    after: dict[str, list[str]] = {t: [] for t in chosen}
    for t in chosen:
        for p in set(preds.get(t, ())):
            if p in members and p != t:
                waiting[t] += 1
                after[p].append(t)
    ready = [(key(t), t) for t in chosen if not waiting[t]]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        _, t = heapq.heappop(ready)
        out.append(t)
        for s in after[t]:
            waiting[s] -= 1
            if not waiting[s]:
                heapq.heappush(ready, (key(s), s))
    if len(out) != len(chosen):
        stuck = sorted(t for t in chosen if waiting[t])
        raise ValueError(f"no sequential order: a cycle among {', '.join(stuck)}")
    return out
