"""How long a plan's sweep would take under each strategy (`plan sweep --dry-run`).

Pure: the CLI gathers each todo's duration and hands it here. A todo's figure is its
``estimated_hours`` when set, else the p50 of its recorded runs (``coord history
trends``), else none: it counts 0 h and is listed in ``unknown``, so with any unknown
todo both figures are lower bounds.

- ``eager``: a todo starts as soon as its own blockers have succeeded, so the sweep
  lasts as long as its heaviest chain of todos (the critical path by duration).
- ``levels``: level k+1 starts when every todo of level k has ended, so each level lasts
  as long as its longest todo, and the sweep the sum of those.

Both assume a todo starts the moment its strategy lets it (enough worker slots per
repo); contended slots make either longer. eager is never longer than levels: a chain
holds at most one todo of each level, so its weight is at most the sum of the levels'
longest todos. The two are equal when every level's longest todo is on one chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, TypedDict

from coordination.planner.algorithms import critical_path
from coordination.planner.digraph import DiGraph

Source = Literal["estimate", "history"]


class StrategyEstimate(TypedDict):
    """``strategy_estimate`` of `plan sweep --dry-run --json`: hours to finish under each
    strategy, and where each todo's figure came from."""

    eager_hours: float
    levels_hours: float
    eager_path: list[str]  # the heaviest chain, first todo first
    levels_path: list[str]  # the longest todo of each level: what each level waits for
    hours: dict[str, float]  # each todo with a figure -> its hours
    source: dict[str, Source]  # ... and where that figure came from
    from_estimate: int
    from_history: int
    unknown: list[str]  # todos with no figure (counted 0 h)


def durations(todo_ids: Sequence[str], estimates: Mapping[str, float | None],
              p50_seconds: Mapping[str, float | None]
              ) -> tuple[dict[str, float], dict[str, Source], list[str]]:
    """Each todo's hours: its estimate, else its history p50 (seconds), else unknown.
    Returns (hours, source, unknown ids sorted)."""
    hours: dict[str, float] = {}
    source: dict[str, Source] = {}
    unknown: list[str] = []
    for tid in todo_ids:
        est = estimates.get(tid)
        p50 = p50_seconds.get(tid)
        if est is not None:
            hours[tid], source[tid] = float(est), "estimate"
        elif p50 is not None:
            hours[tid], source[tid] = round(float(p50) / 3600, 6), "history"
        else:
            unknown.append(tid)
    return hours, source, sorted(unknown)


def strategy_estimate(graph: DiGraph, levels: Sequence[Sequence[str]],
                      estimates: Mapping[str, float | None],
                      p50_seconds: Mapping[str, float | None]) -> StrategyEstimate:
    """Hours to finish ``graph`` (edges blocker -> blocked; ``levels`` its topological
    generations) under eager and under levels; see the module's docstring."""
    order = [t for level in levels for t in level]
    hours, source, unknown = durations(order, estimates, p50_seconds)
    weight = {t: hours.get(t, 0.0) for t in order}
    eager_path, eager_hours = critical_path(graph, order, weight)
    # Each level waits for its longest todo (ties: the smaller id, as critical_path).
    levels_path = [min(level, key=lambda t: (-weight[t], t)) for level in levels if level]
    return {
        "eager_hours": round(eager_hours, 6),  # a second is 0.000278 h
        "levels_hours": round(sum(weight[t] for t in levels_path), 6),
        "eager_path": eager_path,
        "levels_path": levels_path,
        "hours": hours,
        "source": source,
        "from_estimate": sum(s == "estimate" for s in source.values()),
        "from_history": sum(s == "history" for s in source.values()),
        "unknown": unknown,
    }
