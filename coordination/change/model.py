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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from coordination.catalog.governance import Gate
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
    #: the catalog's ``approvers:`` allowed-signers file, resolved (None: approvers
    #: declare themselves): the landing rule checks the SSH signatures of gates' votes
    allowed_signers: str | None = None
    #: gate -> its ``gate:`` as the catalog says it now (as a sweep spec freezes it)
    gate_specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: todo -> what it runs as the catalog says it now (:func:`definition`), and its
    #: predecessors among the plan's todos: what a gate's approval is bound to
    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)
    preds: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def order(self) -> list[str]:
        return list(self.targets)

    def todo_change(self, commit: str | None, verify: bool) -> TodoChange:
        return TodoChange(plan=self.plan, branch=self.branch, commit=commit, verify=verify,
                          repos={r: [t.checkout, t.base, t.remote]
                                 for r, t in self.targets.items()})


#: The fields of a todo a gate's approval is bound to (:func:`definition`), as the
#: spec digest of :mod:`coordination.sweeps.gates` hashes them (with the edges).
BOUND = ("repo", "run", "undo", "env", "gate", "timeout", "retries", "resources")


def gate_document(gate: Gate | None) -> dict[str, Any] | None:
    """A catalog gate as a sweep spec freezes it (``GateSpec``)."""
    if gate is None:
        return None
    return {"approvals": gate.approvals, "from": list(gate.from_),
            "starter_may_approve": gate.starter_may_approve, "expires": gate.expires,
            "on_expiry": gate.on_expiry}


def definition(todo: Mapping[str, Any]) -> dict[str, Any]:
    """What a todo runs, normalised so that a catalog todo and the spec a sweep froze of
    it compare equal when nothing that counts changed: :data:`BOUND` (a gate's
    approval is for exactly this, every todo of the plan, and the edges)."""
    gate = todo.get("gate")
    env = todo.get("env")
    return {
        "repo": str(todo.get("repo") or ""),
        "run": str(todo.get("run") or ""),
        "undo": todo.get("undo") or None,
        "env": {str(k): str(v) for k, v in sorted((env or {}).items())},
        "gate": None if not gate else {
            "approvals": int(gate.get("approvals") or 1),
            "from": sorted(str(u) for u in gate.get("from") or []),
            "starter_may_approve": gate.get("starter_may_approve") is not False,
            "expires": None if gate.get("expires") is None else float(gate["expires"]),
            "on_expiry": gate.get("on_expiry") or "cancel"},
        "timeout": float(todo.get("timeout") or 0),
        "retries": int(todo.get("retries") or 0),
        "resources": sorted({str(r) for r in todo.get("resources") or []}),
    }


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
    in_plan = {t.id for t in todos}
    preds: dict[str, set[str]] = {t.id: {b for b in t.blocked_by if b in in_plan}
                                  for t in todos}
    for t in todos:  # the other side of the relation (as the plan's graph has it)
        for b in t.blocking:
            if b in preds:
                preds[b].add(t.id)
    allowed = None
    if catalog.approvers is not None:
        found = Path(catalog.approvers.allowed_signers).expanduser()
        allowed = str(found if found.is_absolute() else base_dir / found)
    return ChangePlan(plan=plan_id, branch=ch.branch, land=ch.land, targets=targets,
                      verify_todos=tuple(t.id for t in todos if t.verify),
                      todos=tuple(t.id for t in todos),
                      gates=tuple(t.id for t in todos if t.gate is not None),
                      gate_needs={t.id: t.gate.approvals for t in todos if t.gate is not None},
                      waves=waves, allowed_signers=allowed,
                      gate_specs={t.id: g for t in todos
                                  for g in [gate_document(t.gate)] if g is not None},
                      definitions={t.id: definition({
                          "repo": t.repo, "run": t.run, "undo": t.undo, "env": t.env,
                          "gate": gate_document(t.gate), "timeout": t.timeout,
                          "retries": t.retries, "resources": t.resources}) for t in todos},
                      preds={t: tuple(sorted(p)) for t, p in preds.items()})


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
