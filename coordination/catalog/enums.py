"""The catalog's enumerations, without pydantic: what a field of an issue, plan, todo or
dependency may say (``status: pending``, ``priority: high``, ``type: runtime``...).

The models (:mod:`coordination.catalog.models`) and their read-only views
(:mod:`coordination.catalog.reads.views`) both hold these very members, so code comparing
``todo.status == TodoStatus.completed`` reads either. Stdlib only.
"""

from __future__ import annotations

from enum import Enum


class Priority(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class IssueStatus(str, Enum):
    open = "open"
    in_progress = "in_progress"
    resolved = "resolved"
    closed = "closed"


class PlanStatus(str, Enum):
    draft = "draft"
    active = "active"
    completed = "completed"
    cancelled = "cancelled"


# A todo's status in the catalog (a sweep's own, per run, is coordination.status.TodoStatus).
# No docstring on these classes: `coord schema` would print it as the enum's description.
class TodoStatus(str, Enum):
    pending = "pending"
    in_progress = "in_progress"
    completed = "completed"
    failed = "failed"
    skipped = "skipped"
    blocked = "blocked"


class DependencyType(str, Enum):
    runtime = "runtime"
    build = "build"
    dev = "dev"
    test = "test"
    api = "api"
    peer = "peer"
    optional = "optional"


class DependencyStatus(str, Enum):
    satisfied = "satisfied"
    unsatisfied = "unsatisfied"
    unknown = "unknown"
