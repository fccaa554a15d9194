"""What starts a plan without a person at a terminal: its ``schedule:`` (`coord beat`)
and its ``on: {push: ...}`` trigger (`coord trigger push`, a forge's push webhook).

    plans:
      - id: PLAN-010
        schedule: {cron: "0 3 * * 1-5", timezone: Europe/Berlin, catchup: false}
        on: {push: {repos: "tag:python", branch: main}}
"""

from __future__ import annotations

from pydantic import Field, field_validator

from coordination.catalog.models.base import CatalogModel
from coordination.catalog.models.git_names import BRANCH_SCHEMA, Branch, git_branch
from coordination.catalog.rules.selector_syntax import SELECTOR_PATTERN


class Schedule(CatalogModel):
    """When `coord beat` starts the plan (coordination/catalog/cron.py)."""

    cron: str = Field(min_length=1)
    """Five cron fields (minute hour day-of-month month day-of-week, e.g. "0 3 * * 1-5":
    03:00 on weekdays) or a nickname (@daily, @weekly...), in the schedule's time zone."""
    timezone: str = "UTC"
    """The IANA time zone the cron times are read in (Europe/Berlin); default UTC."""
    catchup: bool = False
    """A firing missed while no `coord beat` ran: true starts the plan once when a beat
    next runs; false skips it (logged, and shown by `coord schedule list`)."""

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        from coordination.catalog.cron import check_cron  # lazy: croniter, schedules only

        return check_cron(v)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        from coordination.catalog.cron import check_timezone  # lazy: zoneinfo, as above

        return check_timezone(v)


class PushTrigger(CatalogModel):
    """A push that starts the plan: to a repo ``repos`` selects, on ``branch``."""

    repos: str = Field(min_length=1, json_schema_extra={"pattern": SELECTOR_PATTERN})
    """A repo selector (tag:python, api, ...api): a push to a repo it selects starts the
    plan; with a graph form (...core: core and what depends on it) a push to any of those.
    The sweep runs the plan's todos of the pushed repo; with a dependents form (...R) those
    of what depends on the pushed repo too, of the repos the selector selects."""
    branch: Branch | None = Field(None, json_schema_extra=BRANCH_SCHEMA)
    """The branch whose pushes count; unset: each repo's default_branch (else main)."""

    _git_branch = field_validator("branch")(staticmethod(git_branch))
    # Its selector's syntax is checked with the catalog (checks.plan_references), as a
    # template's for_each: is: the selectors module imports the models.


class Triggers(CatalogModel):
    """Events that start the plan."""

    push: PushTrigger | None = None
    """A push to a selected repo's branch (`coord trigger push`, a forge's push webhook)."""
