"""What started a sweep, and which plans a push starts.

Every sweep's record names its trigger (``trigger``: `sweep status --json`, `sweep
list`): a command (``{"kind": "cli"}``), a plan's schedule fired by `coord beat`
(``{"kind": "schedule", "firing": ISO, "catchup": bool}``) or a push
(``{"kind": "push", "repo", "branch", "sha"}``: `coord trigger push`, a forge's push
webhook). Starting them is :mod:`coordination.firing`'s (the same path as `coord plan
sweep`); this module only says which plans a push starts (:func:`plans_for_push`).

A plan's ``on: {push: {repos: SELECTOR, branch: B}}`` matches a push to a repo the
selector selects (coord's repo selectors: ``tag:python``, ``api``, ``...core`` for core
and what depends on it) on branch ``B`` (unset: the pushed repo's ``default_branch``,
else ``main``). A firing runs every todo of the plan, completed ones too (`plan sweep
--again`: a schedule or a push runs its plan each time); a cancelled plan is not
started (said as such).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict

from coordination.catalog.rules.checks import unknown
from coordination.catalog.enums import PlanStatus
from coordination.errors import UsageError

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog

TriggerKind = Literal["cli", "schedule", "push"]


class Trigger(TypedDict, total=False):
    """What started a sweep (a sweep record's ``trigger``; see the module)."""

    kind: TriggerKind
    firing: str  # schedule: the firing time it ran for (ISO, the schedule's zone)
    catchup: bool  # schedule: a firing missed while no beat ran, started late
    repo: str  # push: the repo pushed to
    branch: str  # push: its branch
    sha: str  # push: the commit pushed


#: A sweep started by a command (`plan sweep`, `todo run`, `coord run`, MCP, the web view).
CLI: Trigger = {"kind": "cli"}


def push_trigger(repo: str, branch: str, sha: str) -> Trigger:
    return {"kind": "push", "repo": repo, "branch": branch, "sha": sha}


def schedule_trigger(firing: str, *, catchup: bool = False) -> Trigger:
    return {"kind": "schedule", "firing": firing, "catchup": catchup}


@dataclass(frozen=True)
class PushMatch:
    """A plan a push starts: the plan, its trigger's selector and branch."""

    plan: str
    selector: str
    branch: str


@dataclass
class PushPlans:
    """What a push to ``repo``'s ``branch`` starts, and the plans with a push trigger it
    does not, each with why (branch, selector, plan status, a selector that fails)."""

    repo: str
    branch: str
    matches: list[PushMatch] = field(default_factory=list)
    unmatched: list[tuple[str, str]] = field(default_factory=list)


def default_branch(catalog: Catalog, repo: str) -> str:
    """The branch a push to ``repo`` is on when none is named: its default_branch, else main."""
    r = catalog.repo(repo)
    return (r.default_branch if r is not None and r.default_branch else None) or "main"


def plans_for_push(catalog: Catalog, repo: str, branch: str | None,
                   base_dir: Path) -> PushPlans:
    """The plans a push to ``repo`` (on ``branch``; None: its default branch) starts.
    An unknown repo is a NotFoundError (exit 2); a plan whose selector fails is not
    started, and says why in ``unmatched``."""
    from coordination.catalog.selection.selectors import select  # lazy: git for changed: selectors

    if catalog.repo(repo) is None:
        raise unknown(repo, [r.name for r in catalog.repos], "repo")
    pushed = branch or default_branch(catalog, repo)
    out = PushPlans(repo, pushed)
    for plan in catalog.coordination.plans:
        push = plan.on.push if plan.on is not None else None
        if push is None:
            continue
        wanted = push.branch or default_branch(catalog, repo)
        if pushed != wanted:
            out.unmatched.append((plan.id, f"its trigger is for branch {wanted}"))
            continue
        try:
            selected = select(catalog, push.repos, base_dir).names
        except UsageError as exc:
            out.unmatched.append((plan.id, f"its trigger's repos {push.repos!r} failed: "
                                           f"{exc.message}"))
            continue
        if repo not in selected:
            out.unmatched.append((plan.id, f"{push.repos!r} does not select {repo}"))
        elif plan.status == PlanStatus.cancelled:
            out.unmatched.append((plan.id, "it is cancelled"))
        else:
            out.matches.append(PushMatch(plan.id, push.repos, wanted))
    return out
