"""The change of a plan, as the catalog says it (pure: no git, no Redis).

A plan with ``change: {branch, base, remote, land}`` is a change over the repos
of its todos (and its ``repos:``). Each repo's base is the change's ``base``,
else the repo's ``default_branch``, else ``main``; its remote the change's
``remote``, else the repo's, else ``origin``. Repos land providers first: the
catalog's dependencies (``consumer`` / ``provider``) among them order them,
ties by name.

``land: pr`` lands each repo by merging its pull request through the repo's
``forge:`` (``coord change publish`` opens them), providers first, each pinned to the
head coord verified (:mod:`coordination.change.pulls.pull_landing`).

``land: per-wave`` lands the plan's ``waves:`` one after the other: each repo is in
the first wave that names it (``repos:``) or one of its tags (``tags:``); every
repo must be in a wave, and no repo may wait for a provider of a later wave (it
would land before what it depends on). The landing order is wave by wave, each
wave providers first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from coordination.planner.landing import ChangeWave, change_spec, landing, landing_order

if TYPE_CHECKING:
    from coordination.catalog.governance import Gate
    from coordination.catalog.models import Catalog
    from coordination.forge.base import ForgeFields

__all__ = ["ChangePlan", "ChangeWave", "Target", "TodoChange", "change_of", "definition",
           "env_name", "gate_document", "landing_order"]

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
    #: repo -> its ``prepare:`` command (run once in each new worktree of it), if any
    prepare: NotRequired[dict[str, str]]
    #: repo -> its catalog ``url:``, if any (the only URL its worktree is fetched from,
    #: and where the freshness anchor may be pushed)
    urls: NotRequired[dict[str, str]]


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
    #: run once in each new worktree of the repo before its todos (``prepare:``)
    prepare: str | None = None
    #: where the catalog says the repo is (``url:``): the only URL coord fetches it from
    #: and lands it on (:func:`coordination.change.git.remote_refusal`); None: unchecked
    url: str | None = None
    #: the repo's ``forge:`` as the catalog says it (None: none): where its pull request
    #: is opened and merged (``land: pr``, ``coord change publish``)
    forge: ForgeFields | None = None

    @property
    def name(self) -> str:
        """(what :func:`coordination.forge.forge_for` reads of a repo: its name, ``forge``)"""
        return self.repo


@dataclass(frozen=True)
class ChangePlan:
    plan: str
    branch: str
    land: str  # "push" | "command" | "per-wave" | "pr"
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
    #: the catalog's directory (where the plan's freshness anchor is kept beside it:
    #: :mod:`coordination.change.anchor`); None: no anchor file is read
    base_dir: str | None = None
    #: ``change: {require_own_verify: true}``: a repo no verify todo of its own checks
    #: blocks the landing (else it is flagged: :func:`coordination.change.rule.unchecked`)
    require_own_verify: bool = False
    #: ``land: pr``: how each pull request is merged, and whether publish opens drafts
    merge_method: str = "merge"
    draft: bool = False
    #: the plan's title (what a pull request's title and body say the change is)
    title: str = ""
    #: repo -> its providers among the change's repos (the catalog's dependencies): a
    #: pull request's ``Depends-On:`` lines
    providers: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def order(self) -> list[str]:
        return list(self.targets)

    def todo_change(self, commit: str | None, verify: bool) -> TodoChange:
        tc = TodoChange(plan=self.plan, branch=self.branch, commit=commit, verify=verify,
                        repos={r: [t.checkout, t.base, t.remote]
                               for r, t in self.targets.items()})
        prepare = {r: t.prepare for r, t in self.targets.items() if t.prepare}
        if prepare:
            tc["prepare"] = prepare
        urls = {r: t.url for r, t in self.targets.items() if t.url}
        if urls:
            tc["urls"] = urls
        return tc


#: The fields of a todo a gate's approval is bound to (:func:`definition`), as the
#: spec digest of :mod:`coordination.sweeps.governance.gates` hashes them (with the edges).
BOUND = ("repo", "run", "undo", "env", "gate", "timeout", "retries", "resources")


def gate_document(gate: Gate | None) -> dict[str, Any] | None:
    """A catalog gate as a sweep spec freezes it (``GateSpec``)."""
    if gate is None:
        return None
    doc: dict[str, Any] = {"approvals": gate.approvals, "from": list(gate.from_),
                           "starter_may_approve": gate.starter_may_approve,
                           "expires": gate.expires, "on_expiry": gate.on_expiry}
    if gate.forge_reviews:  # (only when set: every other gate's spec, and binding, as before)
        doc["forge_reviews"] = True
    return doc


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


def change_of(catalog: Catalog, plan_id: str, base_dir: Path) -> ChangePlan:
    """The change of ``plan_id`` (a PlanError if it is not a change)."""
    ch = change_spec(catalog, plan_id)
    todos = catalog.plan_todos(plan_id)
    targets: dict[str, Target] = {}
    order, waves = landing(catalog, plan_id)  # the checks `plan validate` makes too
    for name in order:
        repo = catalog.repo(name)
        assert repo is not None  # landing() refused a repo not in the catalog
        targets[name] = Target(
            repo=name, checkout=str(repo.checkout(base_dir)),
            base=ch.base or repo.default_branch or DEFAULT_BASE,
            remote=ch.remote or repo.remote or DEFAULT_REMOTE,
            land_command=repo.land_command,
            revert_command=repo.revert_command, land_hooks=repo.land_hooks,
            prepare=repo.prepare, url=repo.url, forge=repo.forge,
        )
    plan = catalog.plan(plan_id)
    deps = catalog.coordination.dependencies
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
                      preds={t: tuple(sorted(p)) for t, p in preds.items()},
                      base_dir=str(base_dir),
                      require_own_verify=ch.require_own_verify,
                      merge_method=ch.merge_method, draft=ch.draft,
                      title=plan.title if plan is not None else "",
                      providers={r: tuple(sorted({d.provider for d in deps
                                                  if d.consumer == r and d.provider in targets
                                                  and d.provider != r}))
                                 for r in targets})
