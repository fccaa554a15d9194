"""Todos: one task in one repo (or, a template, one per selected repo), its command,
its blockers and what it leases, caches, gates and commits."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from coordination.catalog.enums import Priority, TodoStatus
from coordination.catalog.governance import Duration, Gate
from coordination.catalog.model_methods import TodoMethods
from coordination.catalog.models.base import (
    MAX_HOURS,
    MAX_RETRIES,
    MAX_TODO_TIMEOUT,
    BlockerId,
    CatalogModel,
    Due,
    PlanId,
    RepoName,
    TodoId,
    TodoRepo,
)
from coordination.catalog.models.plans import Criterion
from coordination.catalog.models.repos import Cache, EnvName
from coordination.catalog.rules.selector_syntax import SELECTOR_PATTERN


#: What ``Todo._repo_or_template`` refuses, in JSON Schema (2020-12) for `coord schema`:
#: a template (``for_each:`` a selector) has no ``repo``; any other todo has one, and no
#: ``deps`` or ``instances``. Editors then flag it as it is typed, as the loader would.
TODO_REPO_OR_TEMPLATE: JsonDict = {
    "if": {"required": ["for_each"], "properties": {"for_each": {"type": "string"}}},
    "then": {"properties": {"repo": {
        "maxLength": 0,
        "description": "A template (for_each:) has no repo: each instance's repo comes from "
                       "the selector."}}},
    "else": {
        "required": ["repo"],
        "properties": {
            "repo": {"minLength": 1,
                     "description": "A todo needs a repo, unless it is a template "
                                    "(for_each: SELECTOR)."},
            "deps": {"type": "null", "description": "deps: belongs to a template (for_each:)."},
            "instances": {"type": "null",
                          "description": "instances: belongs to a template (for_each:)."},
        },
    },
}


#: Scalars ``env:`` and ``outputs:`` take as their text (:func:`_scalar_text`); in the
#: schema, the JSON types they are.
_NUMBERS = (int, float)
TEXT_VALUES_SCHEMA: JsonDict = {"additionalProperties": {"type": ["string", "number", "boolean"]}}


class Todo(TodoMethods, CatalogModel):
    model_config = ConfigDict(json_schema_extra=TODO_REPO_OR_TEMPLATE)

    id: TodoId
    """Unique id, TODO-<n>."""
    task: str = Field(min_length=1)
    """One line saying what the todo does."""
    description: str = ""
    """Free text about the todo."""
    repo: TodoRepo = ""
    """The repo whose worker runs it, in that repo's checkout (required, except in a
    template, whose instances each get one selected repo)."""
    plan: PlanId | None = None
    """The plan it belongs to (its plan's milestones may list it too)."""
    for_each: str | None = Field(None, min_length=1, json_schema_extra={"pattern": SELECTOR_PATTERN})
    """A template: one instance per repo this selector selects (`TODO-010[api]`), expanded
    at plan time."""
    deps: Literal["follow"] | None = None
    """`follow`: a template's instances wait for the instances of their repo's providers."""
    instances: dict[RepoName, TodoStatus] | None = None
    """A template's instances' outcomes, written by a sync (repo -> status)."""
    run: str | None = None
    """Shell command run in the repo's checkout; exit 0 is success. Without it the todo is tracked,
    not run."""
    undo: str | None = None
    """Shell command that undoes a successful run (`coord sweep rollback`, `--atomic` sweeps)."""
    timeout: float = Field(3600, gt=0, le=MAX_TODO_TIMEOUT)
    """Seconds the run may take before it is killed (at most 7 days)."""
    retries: int = Field(0, ge=0, le=MAX_RETRIES)
    """Extra attempts after a failure, with exponential backoff and jitter (at most 100)."""
    wait_timeout: Duration | None = None
    """How long it may wait for a slot of its repo or of a shared resource (seconds, or
    10m, 1h...) before it ends failed, naming what it waited for; unset: its sweep's
    `--wait-timeout`, else until the sweep's deadline."""
    env: dict[str, str] = Field(default_factory=dict, json_schema_extra=TEXT_VALUES_SCHEMA)
    """Environment variables the run gets (a number or true/false is taken as its text)."""
    mask_env: list[EnvName] = Field(default_factory=list)
    """Environment variables whose values are masked as *** in everything its run leaves (logs,
    output tail, results, events, webhooks, pages), beside the repo's and the catalog's
    mask_env; values shorter than 4 characters are not masked."""
    # What its last synced successful run wrote to $COORD_OUTPUT (kept by `sweep sync`;
    # given to the todos after it in later sweeps).
    outputs: dict[str, str] = Field(default_factory=dict, json_schema_extra=TEXT_VALUES_SCHEMA)
    """What its last synced successful run wrote to $COORD_OUTPUT, given to the todos after it in
    later sweeps (kept by `sweep sync`)."""
    # Shared things leased besides the repo while it runs (top-level `resources:`).
    resources: list[str] = Field(default_factory=list)
    """Shared resources (top-level `resources:`) leased besides the repo while it runs."""
    cache: bool | Cache | None = None  # reuse an earlier success with the same key (Cache)
    """Reuse an earlier success with the same key instead of running (true, false to turn the
    repo's off, or a Cache)."""
    status: TodoStatus = TodoStatus.pending
    """Where the todo stands; a sweep's outcome is written here by a sync."""
    priority: Priority = Priority.medium
    """How urgent the todo is."""
    estimated_hours: float | None = Field(None, ge=0, le=MAX_HOURS)
    """Estimated effort in hours (at most 100,000)."""
    actual_hours: float | None = Field(None, ge=0, le=MAX_HOURS)
    """Effort spent in hours (at most 100,000)."""
    blocked_by: list[BlockerId] = Field(default_factory=list)
    """Issues (resolved or closed) and todos (completed, or run before it in the sweep) it waits
    for."""
    blocking: list[TodoId] = Field(default_factory=list)
    """Todos it blocks: the other side of their blocked_by (optional, kept mirrored)."""
    assignee: str | None = None
    """Who owns it."""
    labels: list[str] = Field(default_factory=list)
    """Free-form labels."""
    acceptance_criteria: list[str | Criterion] = Field(default_factory=list)
    """Criteria for calling it done: free text, or ``{text, check}`` with the command that
    checks it after its run succeeded (a failing check ends it failed)."""
    gate: Gate | None = None  # waits for people's approval; no run: (governance.py)
    """Makes the todo an approval gate (no run:): what follows it waits for people's approval."""
    #: In a change's plan: commit what this todo changed on the change branch, with
    #: this message; ``verify``: run against every repo's candidate.
    commit: str | None = Field(None, min_length=1)
    """In a change's plan: commit what the todo changed on the change branch, this message."""
    verify: bool = False
    """In a change's plan: run against every repo's candidate (COORD_CANDIDATE_<REPO>_PATH/_SHA);
    its result is recorded against that set."""
    due: Due | None = None
    """When the todo must be finished: an instant with its zone (2026-12-01T12:00Z) or a
    day (its end, UTC); one not finished by then is overdue (todo.overdue, todo list)."""

    @model_validator(mode="after")
    def _repo_or_template(self) -> Todo:  # in the schema: TODO_REPO_OR_TEMPLATE
        if self.for_each is None:
            if not self.repo:
                raise ValueError(f"{self.id} has no repo: give it 'repo: NAME', or make it a "
                                 "template with 'for_each: SELECTOR' (one instance per repo)")
            for name, given in (("deps", self.deps), ("instances", self.instances)):
                if given is not None:
                    raise ValueError(f"{self.id}: '{name}:' belongs to a template; add "
                                     f"'for_each: SELECTOR' or remove '{name}:'")
        elif self.repo:
            raise ValueError(f"{self.id} is a template (for_each: {self.for_each!r}): each "
                             f"instance's repo comes from the selector; remove 'repo: {self.repo}'")
        return self

    @field_validator("env", "outputs", mode="before")
    @classmethod
    def _env_values_as_text(cls, v: object) -> object:
        # YAML turns `PYTHON: 3.13` into a float; an environment only holds text.
        if isinstance(v, dict):
            return {k: (v2 if isinstance(v2, str) else _scalar_text(v2)) for k, v2 in v.items()}
        return v


def _scalar_text(v: object) -> object:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, _NUMBERS):
        return str(v)
    return v
