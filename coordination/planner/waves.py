"""A plan's ``waves:``: which wave each todo of the plan belongs to (pure).

A todo belongs to the first wave that names its repo (``repos:``) or one of its
repo's tags (``tags:``). A plan with waves must place every todo of a sweep, and
no todo may wait for one of a later wave (the earlier wave could never end).

A plan whose change lands per-wave (``change: {land: per-wave}``) lands its waves
(:mod:`coordination.change.waves`); its sweep runs in none (:func:`sweep_waves`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coordination.planner.digraph import DiGraph

if TYPE_CHECKING:
    from coordination.catalog.governance import Wave
    from coordination.catalog.models import Catalog, Plan


def wave_name(plan: Plan, index: int) -> str:
    """A wave's name: its ``name:``, else ``wave-<n>`` (1-based)."""
    return plan.waves[index].name or f"wave-{index + 1}"


def sweep_waves(plan: Plan | None) -> list[Wave]:
    """The waves a sweep of ``plan`` runs in: its ``waves:``, none when its change lands
    per-wave. Those waves are the landing's: the sweep only makes candidates (nothing
    reaches a remote before the landing), and a verify todo checks every repo's
    candidate, so it waits for the edits of every wave: a sweep in waves would refuse
    a verify todo in an early wave's repo (it waits for a later wave) or, without that
    edge, verify a set a later wave then changes."""
    if plan is None or (plan.change is not None and plan.change.land == "per-wave"):
        return []
    return list(plan.waves)


def assign(catalog: Catalog, plan: Plan, todo_ids: list[str]) -> tuple[dict[str, int], list[str]]:
    """``(todo -> wave index, todos no wave places)`` of ``todo_ids``."""
    out: dict[str, int] = {}
    unplaced: list[str] = []
    for tid in todo_ids:
        todo = catalog.todo(tid)
        if todo is None:
            continue
        repo = catalog.repo(todo.repo)
        tags = list(repo.tags) if repo is not None else []
        for i, wave in enumerate(plan.waves):
            if wave.selects(todo.repo, tags):
                out[tid] = i
                break
        else:
            unplaced.append(tid)
    return out, sorted(unplaced)


def backward_edges(graph: DiGraph, wave_of: dict[str, int]) -> list[tuple[str, str]]:
    """Edges ``(blocker, todo)`` whose blocker is in a later wave than the todo."""
    return sorted((u, v) for u, v in graph.edges
                  if u in wave_of and v in wave_of and wave_of[u] > wave_of[v])
