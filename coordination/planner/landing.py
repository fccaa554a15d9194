"""The order a change lands its repos in, as the catalog says it (pure: no git).

A plan with ``change:`` lands the repos of its todos (and its ``repos:``) providers
first: the catalog's dependencies (``consumer`` / ``provider``) among them order them,
ties by name. ``land: per-wave`` lands the plan's ``waves:`` one after the other: each
repo is in the first wave that names it (``repos:``) or one of its tags (``tags:``);
every repo must be in a wave, and no repo may wait for a provider of a later wave (it
would land before what it depends on). The landing order is wave by wave, each wave
providers first.

:func:`landing` is the one check: :func:`coordination.change.model.change_of` calls it
to build a change, and ``coord plan validate`` and the dry run call it (through
:mod:`coordination.planner.validate`) so that a plan that could never land says so
before its sweep starts, with the same message.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING

from coordination.errors import NotFoundError, PlanError
from coordination.names import some

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog, Change


@dataclass(frozen=True)
class ChangeWave:
    """One wave of a ``land: per-wave`` change: its repos (landing order) and soak."""

    name: str
    repos: tuple[str, ...]
    soak: float = 0.0


def landing_order(repos: list[str], edges: list[tuple[str, str]]) -> list[str]:
    """``repos`` providers first; ``edges`` are (provider, consumer). A cycle is refused
    with its repos named."""
    succs: dict[str, set[str]] = {r: set() for r in repos}
    indeg = dict.fromkeys(repos, 0)
    for p, c in edges:
        if p in succs and c in succs and p != c and c not in succs[p]:
            succs[p].add(c)
            indeg[c] += 1
    ready = [r for r in repos if indeg[r] == 0]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        r = heapq.heappop(ready)
        out.append(r)
        for c in sorted(succs[r]):
            indeg[c] -= 1
            if indeg[c] == 0:
                heapq.heappush(ready, c)
    if len(out) != len(repos):
        stuck = sorted(r for r in repos if r not in out)
        raise PlanError(f"the change's repos depend on each other in a cycle: {', '.join(stuck)}",
                        hint="a change lands providers first; break the cycle in dependencies:")
    return out


def change_repos(catalog: Catalog, plan_id: str) -> list[str]:
    """The repos a change lands: its plan's ``repos:`` and its todos' repos, sorted."""
    plan = catalog.plan(plan_id)
    if plan is None:
        raise NotFoundError(f"no plan {plan_id}")
    return sorted({*plan.repos, *(t.repo for t in catalog.plan_todos(plan_id))})


def change_spec(catalog: Catalog, plan_id: str) -> Change:
    """The ``change:`` of plan ``plan_id``: a NotFoundError without the plan, a PlanError
    (with the fix) when the plan is not a change."""
    plan = catalog.plan(plan_id)
    if plan is None:
        raise NotFoundError(f"no plan {plan_id}")
    if plan.change is None:
        raise PlanError(f"{plan_id} is not a change",
                        hint=f"add change: {{branch: NAME}} to {plan_id} in the catalog")
    return plan.change


def landing(catalog: Catalog, plan_id: str) -> tuple[list[str], tuple[ChangeWave, ...]]:
    """The landing order of the change of ``plan_id`` and its waves (none unless it lands
    per-wave); a PlanError saying why it could never land: a cycle among its repos, a
    repo no wave places or one landing before its provider, a repo not in the catalog,
    ``land: command`` with a repo without ``land_command``, ``land: pr`` with a repo
    without ``forge:``."""
    ch = change_spec(catalog, plan_id)
    repos = change_repos(catalog, plan_id)
    edges = [(d.provider, d.consumer) for d in catalog.coordination.dependencies]
    waves = change_waves(catalog, plan_id, repos, edges) if ch.land == "per-wave" else ()
    order = ([r for w in waves for r in w.repos] if waves else landing_order(repos, edges))
    lacking: list[str] = []  # land: command, and no command to land it with
    for name in order:
        repo = catalog.repo(name)
        if repo is None:
            raise PlanError(f"{plan_id}'s change names repo {name!r}, which is not in the catalog")
        if ch.land == "command" and not repo.land_command:
            lacking.append(name)
        if ch.land == "pr" and repo.forge is None:
            lacking.append(name)
    if ch.land == "pr" and lacking:
        raise PlanError(f"{plan_id} lands by pull request (land: pr) but repo"
                        f"{'s' if len(lacking) > 1 else ''} {some(lacking)} name"
                        f"{'' if len(lacking) > 1 else 's'} no forge",
                        hint="add forge: {kind: github|gitlab|gitea, project: owner/name} to "
                             "each (the forge holding its pull requests)")
    if len(lacking) == 1:
        raise PlanError(f"{plan_id} lands by command but repo {lacking[0]} has no land_command",
                        hint=f"add land_command: (e.g. \"gh pr merge --squash\") to repo "
                             f"{lacking[0]}")
    if lacking:
        raise PlanError(f"{plan_id} lands by command but {len(lacking):,} of its repos have no "
                        f"land_command: {some(lacking)}",
                        hint="add land_command: (e.g. \"gh pr merge --squash\") to each")
    return order, waves


def change_waves(catalog: Catalog, plan_id: str, repos: list[str],
                 edges: list[tuple[str, str]]) -> tuple[ChangeWave, ...]:
    """The waves of a ``land: per-wave`` change (waves naming none of its repos left
    out); a PlanError when there are none, a repo is in none, or a repo's provider
    lands in a later wave."""
    plan = catalog.plan(plan_id)
    assert plan is not None
    if not plan.waves:
        raise PlanError(f"{plan_id} lands per-wave but has no waves:",
                        hint=f"add waves: to {plan_id} (e.g. - {{name: canary, tags: [canary], "
                             "soak: 10m}} then - {name: rest, tags: [service]}), or land: push")
    wave_of: dict[str, int] = {}
    for name in repos:
        repo = catalog.repo(name)
        tags = list(repo.tags) if repo is not None else []
        for i, w in enumerate(plan.waves):
            if w.selects(name, tags):
                wave_of[name] = i
                break
    unplaced = sorted(set(repos) - set(wave_of))
    if unplaced:
        raise PlanError(f"{plan_id} lands per-wave but no wave names repos {some(unplaced)}",
                        hint=f"add them (repos: or tags:) to a wave of {plan_id}, e.g. a last "
                             "wave - {name: rest, repos: [...]}")
    late = sorted((p, c) for p, c in edges if p in wave_of and c in wave_of
                  and wave_of[p] > wave_of[c])
    if late:
        said = some([f"{c} (wave {_name(plan.waves[wave_of[c]].name, wave_of[c])}) depends "
                     f"on {p} (wave {_name(plan.waves[wave_of[p]].name, wave_of[p])})"
                     for p, c in late], sep="; ")  # a fleet's: ten, then a count
        raise PlanError(f"{plan_id}: a repo would land before its provider: {said}",
                        hint="put each provider in the same wave as its consumers or an "
                             "earlier one")
    out = []
    for i, w in enumerate(plan.waves):
        mine = [r for r in repos if wave_of[r] == i]
        if mine:
            out.append(ChangeWave(_name(w.name, i), tuple(landing_order(mine, edges)), w.soak))
    return tuple(out)


def _name(name: str, index: int) -> str:
    """A wave's name: its ``name:``, else ``wave-<n>`` (1-based, as sweeps say it)."""
    return name or f"wave-{index + 1}"
