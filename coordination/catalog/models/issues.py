"""Issues: cross-repo problems todos may wait for."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

from pydantic import Field, field_validator

from coordination.catalog.enums import IssueStatus, Priority
from coordination.catalog.models.base import DATE_SCHEMA, CatalogModel, IssueId, RepoName


def _non_finite(value: object, depth: int = 0) -> str | None:
    """Where (``.key[0]``...) inside ``value`` a non-finite float is, or None."""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else None
    if depth > 100:  # the loader refuses deeper nesting anyway
        return None
    items: Iterable[tuple[object, object]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for k, v in items:
        where = _non_finite(v, depth + 1)
        if where is not None:
            return (f"[{k}]" if isinstance(k, int) else f".{k}") + where
    return None


class Issue(CatalogModel):
    id: IssueId
    """Unique id, ISSUE-<n>."""
    title: str = Field(min_length=1)
    """One line saying what the issue is."""
    description: str = ""
    """Free text about the issue."""
    status: IssueStatus = IssueStatus.open
    """Where the issue stands; a todo blocked by it waits until it is resolved or closed."""
    priority: Priority = Priority.medium
    """How urgent the issue is."""
    severity: str = ""
    """Free-form severity (sev1...)."""
    repos: list[RepoName] = Field(default_factory=list)
    """The repos the issue touches."""
    created: dt.date | None = Field(None, json_schema_extra=DATE_SCHEMA)
    """The day it was created (YYYY-MM-DD)."""
    updated: dt.date | None = Field(None, json_schema_extra=DATE_SCHEMA)
    """The day it was last updated (YYYY-MM-DD)."""
    target: dt.date | None = Field(None, json_schema_extra=DATE_SCHEMA)
    """The day it should be done by (YYYY-MM-DD)."""
    dependencies: list[IssueId] = Field(default_factory=list)
    """Issues this one depends on."""
    blocking: list[IssueId] = Field(default_factory=list)
    """Issues this one blocks."""
    assignee: str | None = None
    """Who works on it."""
    labels: list[str] = Field(default_factory=list)
    """Free-form labels."""
    metadata: dict[str, object] = Field(default_factory=dict)  # free-form, kept as written
    """Free-form data, kept as written (finite numbers only)."""

    @field_validator("metadata")
    @classmethod
    def _finite_metadata(cls, v: dict[str, object]) -> dict[str, object]:
        # Free-form, but printed by `issue show --json`: no number JSON cannot hold.
        if v:
            where = _non_finite(v)
            if where is not None:
                raise ValueError(f"metadata{where}: not a finite number; write a number "
                                 "(or quote it to keep it as text)")
        return v
