"""The change of a plan, as the catalog says it (pure: no git, no Redis).

A plan with ``change: {branch, base, remote, land}`` is a change over the repos
of its todos (and its ``repos:``). Each repo's base is the change's ``base``,
else the repo's ``default_branch``, else ``main``; its remote the change's
``remote``, else the repo's, else ``origin``. Repos land providers first: the
catalog's dependencies (``consumer`` / ``provider``) among them order them,
ties by name.

``land: per-wave`` lands the plan's ``waves:`` one after the other: each repo is in
the first wave that names it (``repos:``) or one of its tags (``tags:``); every
repo must be in a wave, and no repo may wait for a provider of a later wave (it
would land before what it depends on). The landing order is wave by wave, each
wave providers first.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from coordination.catalog.models import Catalog
from coordination.errors import NotFoundError, PlanError

DEFAULT_BASE = "main"
DEFAULT_REMOTE = "origin"


class TodoChange(TypedDict):
    """What a sweep spec carries for a todo of a change (frozen with the spec)."""

    plan: str
    branch: str
    commit: str | None
    verify: bool
    #: every repo of the change: [checkout, base, remote]
    repos: dict[str, list[str]]


@dataclass(frozen=True)
class Target:
    """One repo of a change: where its checkout is, what it lands on, and how."""

    repo: str
    checkout: str
    base: str
    remote: str
    land_command: str | None = None
    revert_command: str | None = None
    #: run git hooks on coord's pushes and merges of this repo (``land_hooks: true``)
    land_hooks: bool = False


@dataclass(frozen=True)
class ChangeWave:
    """One wave of a ``land: per-wave`` change: its repos (landing order) and soak."""

    name: str
    repos: tuple[str, ...]
    soak: float = 0.0


@dataclass(frozen=True)
class ChangePlan:
    plan: str
    branch: str
    land: str  # "push" | "command" | "per-wave"
    #: repo -> target, in landing order (providers first)
    targets: dict[str, Target] = field(default_factory=dict)
    verify_todos: tuple[str, ...] = ()
    todos: tuple[str, ...] = ()
    #: the plan's todos with ``gate:`` (people approve them in the plan's sweep)
    gates: tuple[str, ...] = ()
    #: gate -> the approvals it needs (its ``gate: approvals:``)
    gate_needs: dict[str, int] = field(default_factory=dict)
    #: ``land: per-wave``: the waves, in order, each with repos (empty: one landing)
    waves: tuple[ChangeWave, ...] = ()

    @property
    def order(self) -> list[str]:
        return list(self.targets)

    def todo_change(self, commit: str | None, verify: bool) -> TodoChange:
        return TodoChange(plan=self.plan, branch=self.branch, commit=commit, verify=verify,
                          repos={r: [t.checkout, t.base, t.remote]
                                 for r, t in self.targets.items()})


def env_name(repo: str) -> str:
    """``api-v2.x`` -> ``API_V2_X`` (the ``<REPO>`` of ``COORD_CANDIDATE_<REPO>_PATH``)."""
    return re.sub(r"[^A-Z0-9]", "_", repo.upper())


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


def change_of(catalog: Catalog, plan_id: str, base_dir: Path) -> ChangePlan:
    """The change of ``plan_id`` (a UsageError if it is not a change)."""
    plan = catalog.plan(plan_id)
    if plan is None:
        raise NotFoundError(f"no plan {plan_id}")
    ch = plan.change
    if ch is None:
        raise PlanError(f"{plan_id} is not a change",
                        hint=f"add change: {{branch: NAME}} to {plan_id} in the catalog")
    todos = catalog.plan_todos(plan_id)
    repos = sorted({*plan.repos, *(t.repo for t in todos)})
    targets: dict[str, Target] = {}
    edges = [(d.provider, d.consumer) for d in catalog.coordination.dependencies]
    waves = _waves(catalog, plan_id, repos, edges) if ch.land == "per-wave" else ()
    order = ([r for w in waves for r in w.repos] if waves else landing_order(repos, edges))
    for name in order:
        repo = catalog.repo(name)
        if repo is None:
            raise PlanError(f"{plan_id}'s change names repo {name!r}, which is not in the catalog")
        if ch.land == "command" and not repo.land_command:
            raise PlanError(f"{plan_id} lands by command but repo {name} has no land_command",
                            hint=f"add land_command: (e.g. \"gh pr merge --squash\") to repo {name}")
        targets[name] = Target(
            repo=name, checkout=str(repo.checkout(base_dir)),
            base=ch.base or repo.default_branch or DEFAULT_BASE,
            remote=ch.remote or repo.remote or DEFAULT_REMOTE,
            land_command=repo.land_command,
            revert_command=repo.revert_command, land_hooks=repo.land_hooks,
        )
    return ChangePlan(plan=plan_id, branch=ch.branch, land=ch.land, targets=targets,
                      verify_todos=tuple(t.id for t in todos if t.verify),
                      todos=tuple(t.id for t in todos),
                      gates=tuple(t.id for t in todos if t.gate is not None),
                      gate_needs={t.id: t.gate.approvals for t in todos if t.gate is not None},
                      waves=waves)


def _waves(catalog: Catalog, plan_id: str, repos: list[str],
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
        raise PlanError(f"{plan_id} lands per-wave but no wave names repos {', '.join(unplaced)}",
                        hint=f"add them (repos: or tags:) to a wave of {plan_id}, e.g. a last "
                             "wave - {name: rest, repos: [...]}")
    late = sorted((p, c) for p, c in edges if p in wave_of and c in wave_of
                  and wave_of[p] > wave_of[c])
    if late:
        said = "; ".join(f"{c} (wave {_name(plan.waves[wave_of[c]].name, wave_of[c])}) depends "
                         f"on {p} (wave {_name(plan.waves[wave_of[p]].name, wave_of[p])})"
                         for p, c in late)
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
