"""The change of a plan, as the catalog says it (pure: no git, no Redis).

A plan with ``change: {branch, base, remote, land}`` is a change over the repos
of its todos (and its ``repos:``). Each repo's base is the change's ``base``,
else the repo's ``default_branch``, else ``main``; its remote the change's
``remote``, else the repo's, else ``origin``. Repos land providers first: the
catalog's dependencies (``consumer`` / ``provider``) among them order them,
ties by name.
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
class ChangePlan:
    plan: str
    branch: str
    land: str  # "push" | "command"
    #: repo -> target, in landing order (providers first)
    targets: dict[str, Target] = field(default_factory=dict)
    verify_todos: tuple[str, ...] = ()
    todos: tuple[str, ...] = ()
    #: the plan's todos with ``gate:`` (people approve them in the plan's sweep)
    gates: tuple[str, ...] = ()
    #: gate -> the approvals it needs (its ``gate: approvals:``)
    gate_needs: dict[str, int] = field(default_factory=dict)

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
    for name in landing_order(repos, edges):
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
                      gate_needs={t.id: t.gate.approvals for t in todos if t.gate is not None})
