"""Issues: cross-repo problems todos may wait for."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable

from pydantic import Field, field_validator

from coordination.catalog.enums import IssueStatus, Priority
from coordination.catalog.models.base import DATE_SCHEMA, CatalogModel, IssueId, RepoName
from coordination.catalog.rules.patterns import END

#: A forge issue's web page: http(s), a host, a project path, ``/issues/N`` (GitLab's
#: ``/-/issues/N`` too); whether it is an issue of a repo's forge is `issue link`'s check.
FORGE_ISSUE_RE = r"[hH][tT][tT][pP][sS]?://[^\s/?#]+(/[^\s/?#]+)+/issues/[1-9][0-9]{0,9}"
FORGE_ISSUE_PATTERN = f"^{FORGE_ISSUE_RE}{END}"


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
    forge_issue: str | None = Field(None, max_length=2048,
                                    json_schema_extra={"pattern": FORGE_ISSUE_PATTERN})
    """The forge issue it is mirrored to (`coord issue link`): the issue's web page, on the
    forge project of one of its repos. Its title and state follow this issue's, the
    forge's webhook brings the forge's back, and it gets a comment when a plan of the
    issue completes."""
    metadata: dict[str, object] = Field(default_factory=dict)  # free-form, kept as written
    """Free-form data, kept as written (finite numbers only)."""

    @field_validator("forge_issue")
    @classmethod
    def _forge_issue_url(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(FORGE_ISSUE_RE, v):
            raise ValueError(f"{v[:200]!r} is not a forge issue's page (https://HOST/PROJECT/"
                             "issues/N); link one with coord issue link ID --forge-issue URL")
        return v

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
