"""Pydantic models of ecosystem.yaml, version 1 (see shared DESIGN.md).

Models check what one object can check alone (types, enums, id formats).
Checks that need the whole catalog (unique ids, references) live in
:mod:`coordination.catalog.rules.checks`.

One module per concept: :mod:`.base` (the base model, ids, limits), :mod:`.git_names`
(branches, remotes, clone URLs), :mod:`.repos` (repos, resources, pace, cache),
:mod:`.notify` (webhooks), :mod:`.issues`, :mod:`.plans` (milestones, criteria, changes),
:mod:`.todos`, :mod:`.forges` (a repo's ``forge:``), :mod:`.dependencies` (and ``order:``) and :mod:`.root` (the
:class:`Catalog`). Their enums are :mod:`coordination.catalog.enums` and the methods
they share with their views :mod:`coordination.catalog.model_methods` (both without
pydantic). This package is the public model API: import from it.
"""

from __future__ import annotations

from coordination.catalog.enums import (
    DependencyStatus,
    DependencyType,
    IssueStatus,
    PlanStatus,
    Priority,
    TodoStatus,
)
from coordination.catalog.model_methods import (
    MAX_RATE_PERIOD,
    RATE_UNITS,
    cache_of,
    checkout_path,
    criterion_checks,
    parse_rate,
)
from coordination.catalog.models.base import (
    BLOCKER_RE,
    DATE_SCHEMA,
    ID_PATTERNS,
    ID_PREFIX,
    INSTANCE_ID_RE,
    ISO_DATE_PATTERN,
    MAX_CONCURRENCY,
    MAX_HOURS,
    MAX_RETRIES,
    MAX_TODO_TIMEOUT,
    REPO_NAME_RE,
    TODO_REPO_RE,
    BlockerId,
    DepId,
    IssueId,
    MilestoneId,
    PlanId,
    RepoName,
    TodoId,
    TodoRepo,
    kind_of,
    next_id,
)
from coordination.catalog.models.dependencies import (
    Dependency,
    DependencySource,
    Order,
    Validation,
)
from coordination.catalog.models.forges import (
    FORGE_KINDS,
    RepoForge,
    forge_api,
    forge_project,
    is_loopback,
)
from coordination.catalog.models.git_names import (
    BRANCH_PATTERN,
    BRANCH_SCHEMA,
    CLONE_URL_SCHEMA,
    REMOTE_PATTERN,
    REMOTE_SCHEMA,
    Branch,
    git_branch,
    git_remote,
)
from coordination.catalog.models.issues import Issue
from coordination.catalog.models.notify import (
    DEFAULT_NOTIFY_EVENTS,
    GOVERNANCE_EVENTS,
    NOTIFY_SCHEMES,
    NOTIFY_URL_PATTERN,
    NotifyTarget,
    notify_event_names,
)
from coordination.catalog.models.plans import (
    Change,
    Criterion,
    Milestone,
    Plan,
    criterion_text,
)
from coordination.catalog.models.repos import (
    INPUT_GLOB_PATTERN,
    RATE_PATTERN,
    Breaker,
    Cache,
    EnvName,
    Pace,
    Repo,
    Resource,
)
from coordination.catalog.models.root import Approvers, Catalog, Coordination
from coordination.catalog.models.schedules import PushTrigger, Schedule, Triggers
from coordination.catalog.models.todos import (
    TEXT_VALUES_SCHEMA,
    TODO_REPO_OR_TEMPLATE,
    Todo,
)

__all__ = [
    "BLOCKER_RE", "BRANCH_PATTERN", "BRANCH_SCHEMA", "CLONE_URL_SCHEMA", "DATE_SCHEMA",
    "DEFAULT_NOTIFY_EVENTS", "GOVERNANCE_EVENTS", "ID_PATTERNS", "ID_PREFIX", "INPUT_GLOB_PATTERN",
    "INSTANCE_ID_RE", "ISO_DATE_PATTERN", "MAX_CONCURRENCY", "MAX_HOURS", "MAX_RATE_PERIOD",
    "MAX_RETRIES", "MAX_TODO_TIMEOUT", "NOTIFY_SCHEMES", "NOTIFY_URL_PATTERN", "RATE_PATTERN",
    "FORGE_KINDS", "RATE_UNITS", "REMOTE_PATTERN", "REMOTE_SCHEMA", "REPO_NAME_RE", "TEXT_VALUES_SCHEMA",
    "TODO_REPO_OR_TEMPLATE", "TODO_REPO_RE",
    "Approvers", "BlockerId", "Branch", "Breaker", "Cache", "Catalog", "Change", "Coordination",
    "Criterion", "DepId", "Dependency", "DependencySource", "DependencyStatus", "DependencyType",
    "EnvName", "Issue", "IssueId", "IssueStatus", "Milestone", "MilestoneId", "NotifyTarget",
    "Order", "Pace", "Plan", "PlanId", "PlanStatus", "Priority", "PushTrigger", "Repo",
    "RepoForge", "RepoName", "Resource", "Schedule", "Todo", "Triggers", "TodoId", "TodoRepo",
    "TodoStatus", "Validation",
    "cache_of", "checkout_path", "criterion_checks", "criterion_text", "forge_api", "forge_project",
    "git_branch", "git_remote", "is_loopback",
    "kind_of", "next_id", "notify_event_names", "parse_rate",
]
