"""What every model of the catalog shares: the base model, the id formats and series,
the upper bounds of numbers, dates, and the priority issues and todos both take
(:mod:`coordination.catalog.enums`, where every enum of the catalog is)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints, WithJsonSchema
from pydantic.config import JsonDict

from coordination.catalog.due import DUE_PATTERN, parse_due
from coordination.catalog.rules.git_rules import REPO_NAME_RE as REPO_NAME_RE
from coordination.catalog.rules.patterns import END

ID_PATTERNS = {
    "issue": re.compile(r"^ISSUE-\d+$"),
    "plan": re.compile(r"^PLAN-\d+$"),
    "todo": re.compile(r"^TODO-\d+(\[[a-z0-9][a-z0-9._-]*\])?$"),
    "dependency": re.compile(r"^DEP-\d+$"),
    "milestone": re.compile(r"^MS-\d+$"),
}
ID_PREFIX = {"issue": "ISSUE", "plan": "PLAN", "todo": "TODO", "dependency": "DEP", "milestone": "MS"}

RepoName = Annotated[str, StringConstraints(pattern=REPO_NAME_RE)]
IssueId = Annotated[str, StringConstraints(pattern=r"^ISSUE-\d+$")]
PlanId = Annotated[str, StringConstraints(pattern=r"^PLAN-\d+$")]
TodoId = Annotated[str, StringConstraints(pattern=r"^TODO-\d+$")]
DepId = Annotated[str, StringConstraints(pattern=r"^DEP-\d+$")]
MilestoneId = Annotated[str, StringConstraints(pattern=r"^MS-\d+$")]
#: A template's instance: ``TODO-010[api]`` (the template's id, the repo in brackets).
INSTANCE_ID_RE = r"^TODO-\d+\[[a-z0-9][a-z0-9._-]*\]$"
# blocked_by may name an issue, a todo, a template's instance (``TODO-009[api]``) or, in
# a template, the same repo's instance of another template (``TODO-009[same]``)
BLOCKER_RE = r"^(ISSUE-\d+|TODO-\d+(\[[a-z0-9][a-z0-9._-]*\])?)$"
BlockerId = Annotated[str, StringConstraints(pattern=BLOCKER_RE)]
#: A todo's repo: a repo's name; empty only in a template (``for_each:``).
TODO_REPO_RE = r"^([a-z0-9][a-z0-9._-]*)?$"
TodoRepo = Annotated[str, StringConstraints(pattern=TODO_REPO_RE)]

#: Upper bounds of the catalog's numbers. Every number is also finite (no ``.inf``/``.nan``:
#: ``CatalogModel`` refuses them), so sums over a plan stay finite and every JSON document
#: holding them is strict JSON.
MAX_HOURS = 100_000  # estimated/actual hours of one todo: about eleven years of work
MAX_TODO_TIMEOUT = 7 * 24 * 3600  # seconds
MAX_RETRIES = 100
MAX_CONCURRENCY = 1024  # a repo's concurrency, a resource's capacity


#: A day as the catalog writes it (``created:``, ``due:``...); pydantic reads the date.
ISO_DATE_PATTERN = rf"^[0-9]{{4}}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]){END}"
#: What an editor is told of a date field (``coord schema``); the loader checks the day.
DATE_SCHEMA: JsonDict = {"pattern": ISO_DATE_PATTERN}
#: ``due:`` of a plan or todo: an instant with its zone, or a day (its end, UTC):
#: :mod:`coordination.catalog.due`.
DUE_SCHEMA: JsonDict = {"type": "string", "pattern": DUE_PATTERN}
Due = Annotated[dt.datetime, BeforeValidator(parse_due), WithJsonSchema(DUE_SCHEMA)]


def kind_of(id_: str) -> str | None:
    """``'todo'`` for ``TODO-7`` and so on; None for a malformed id."""
    for kind, pat in ID_PATTERNS.items():
        if pat.match(id_):
            return kind
    return None


class CatalogModel(BaseModel):
    # Unknown keys are refused: in a hand-edited file they are almost always typos.
    # Non-finite floats (YAML's .inf and .nan, 1e400) are refused: no sum, sort or JSON
    # document can hold them. A field's docstring is its description (the generated
    # reference and `coord schema` show it; tests/unit/test_docs_reference.py needs one),
    # read only when one is wanted (coordination.catalog.rules.schema.describe_fields).
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True,
                              allow_inf_nan=False)


def next_id(kind: str, existing: list[str] | set[str]) -> str:
    """The next free id of a series: one above the highest number in use.

    Keeps the width of the widest existing id (``TODO-009`` -> ``TODO-010``),
    at least three digits.
    """
    prefix = ID_PREFIX[kind]
    best, width = 0, 3
    for e in existing:
        m = re.match(rf"^{prefix}-(\d+)$", e)
        if m:
            best = max(best, int(m.group(1)))
            width = max(width, len(m.group(1)))
    return f"{prefix}-{best + 1:0{width}d}"
