"""Plans: what a sweep runs, with milestones, completion criteria, waves, a pace and,
for a cross-repo change, its branch and how it lands."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator

from coordination.catalog.enums import PlanStatus
from coordination.catalog.governance import Wave
from coordination.catalog.models.base import (
    DATE_SCHEMA,
    CatalogModel,
    Due,
    MilestoneId,
    PlanId,
    RepoName,
    TodoId,
)
from coordination.catalog.models.git_names import (
    BRANCH_SCHEMA,
    REMOTE_SCHEMA,
    Branch,
    git_branch,
    git_remote,
)
from coordination.catalog.models.repos import Pace
from coordination.catalog.models.schedules import Schedule, Triggers


class Criterion(CatalogModel):
    """A criterion with the command that checks it (a plain string is a criterion
    nobody checks)."""

    text: str = Field(min_length=1)
    """What must hold."""
    check: str = Field(min_length=1)
    """The shell command that checks it: exit 0 means it holds. A todo's runs in its
    repo's checkout after the todo's run succeeded (a failure ends the todo failed); a
    plan's runs in the catalog's directory (`coord plan status --check`, and the sync
    that would complete the plan)."""


def criterion_text(c: str | Criterion) -> str:
    """A criterion's text, checked or not."""
    return c if isinstance(c, str) else c.text


class Milestone(CatalogModel):
    id: MilestoneId
    """Unique id, MS-<n>."""
    title: str = ""
    """What the milestone marks."""
    due: dt.date | None = Field(None, json_schema_extra=DATE_SCHEMA)
    """The day it is due (YYYY-MM-DD)."""
    todos: list[TodoId] = Field(default_factory=list)
    """Todos the milestone covers (they belong to its plan)."""
    deliverables: list[str] = Field(default_factory=list)
    """Free-form deliverables."""


class Change(CatalogModel):
    """A plan that lands a cross-repo change: a branch per repo, verified together,
    landed all or none (``coordination/change/``). ``base`` and ``remote`` apply to
    every repo when given; else each repo's ``default_branch`` (else ``main``) and
    ``remote`` (else ``origin``)."""

    branch: Branch = Field(json_schema_extra=BRANCH_SCHEMA)
    """The change branch, created in every repo of the change (in a worktree)."""
    base: Branch | None = Field(None, json_schema_extra=BRANCH_SCHEMA)
    """The branch every repo's change starts from and lands on; else each repo's default_branch
    (else main)."""
    remote: str | None = Field(None, min_length=1, json_schema_extra=REMOTE_SCHEMA)
    """The remote of every repo; else each repo's remote (else origin)."""
    land: Literal["push", "command", "per-wave", "pr"] = "push"
    """How `coord change land` lands a repo: push the branch onto the base, run the repo's
    land_command, push one of the plan's `waves:` at a time, each soaked (per-wave), or merge
    the repo's pull request through its `forge:` (pr)."""
    merge_method: Literal["merge", "squash", "rebase"] = "merge"
    """With `land: pr`: how the forge merges each pull request (merge commit, squash, rebase),
    pinned to the head coord verified."""
    draft: bool = False
    """With `land: pr`: `coord change publish` opens the pull requests as drafts."""
    require_own_verify: bool = False
    """A repo of the change that no verify todo of its own (`repo:` it) checks blocks the
    landing; else it is only flagged (`coord change status`, `land --dry-run`)."""

    _git_branch = field_validator("branch", "base")(staticmethod(git_branch))
    _git_remote = field_validator("remote")(staticmethod(git_remote))


class Plan(CatalogModel):
    id: PlanId
    """Unique id, PLAN-<n>."""
    title: str = Field(min_length=1)
    """One line saying what the plan does."""
    description: str = ""
    """Free text about the plan."""
    status: PlanStatus = PlanStatus.draft
    """Where the plan stands; a sweep sets it completed when all its todos are."""
    repos: list[RepoName] = Field(default_factory=list)
    """The repos the plan touches."""
    milestones: list[Milestone] = Field(default_factory=list)
    """Milestones: due dates over some of the plan's todos."""
    completion_criteria: list[str | Criterion] = Field(default_factory=list)
    """Criteria for calling the plan done: free text, or ``{text, check}`` with the command
    that checks it (the plan is completed only when every check passes)."""
    waves: list[Wave] = Field(default_factory=list)  # rollout in waves (governance.py)
    """Rollout in waves: parts of the plan's todos (by repo or tag), each started after the one
    before ended, soaked and met its criteria. A change that lands per-wave lands them instead
    (each soaked before the next lands); its sweep runs every repo at once."""
    change: Change | None = None
    """Makes the plan a cross-repo change: a branch per repo, verified together, landed all or
    none."""
    pace: Pace | None = None
    """How fast the plan's todos may start, across sweeps and workers."""
    schedule: Schedule | None = None
    """When `coord beat` starts a sweep of the plan: {cron, timezone, catchup}."""
    on: Triggers | None = None
    """Events that start a sweep of the plan: {push: {repos, branch}} (`coord trigger push`)."""
    due: Due | None = None
    """When the plan must be finished: an instant with its zone (2026-12-01T12:00Z) or a
    day (its end, UTC); a sweep still running then emits plan.overdue."""
