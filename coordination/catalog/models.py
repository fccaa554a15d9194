"""Pydantic models of ecosystem.yaml, version 1 (see shared DESIGN.md).

Models check what one object can check alone (types, enums, id formats).
Checks that need the whole catalog (unique ids, references) live in
:mod:`coordination.catalog.checks`.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import Annotated, Literal

from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

from coordination.catalog.governance import Gate, Wave
from coordination.status import EventKind

REPO_NAME_RE = r"^[a-z0-9][a-z0-9._-]*$"
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
#: ``_Model`` refuses them), so sums over a plan stay finite and every JSON document
#: holding them is strict JSON.
MAX_HOURS = 100_000  # estimated/actual hours of one todo: about eleven years of work
MAX_TODO_TIMEOUT = 7 * 24 * 3600  # seconds
MAX_RETRIES = 100
MAX_CONCURRENCY = 1024  # a repo's concurrency, a resource's capacity


def kind_of(id_: str) -> str | None:
    """``'todo'`` for ``TODO-7`` and so on; None for a malformed id."""
    for kind, pat in ID_PATTERNS.items():
        if pat.match(id_):
            return kind
    return None


class _Model(BaseModel):
    # Unknown keys are refused: in a hand-edited file they are almost always typos.
    # Non-finite floats (YAML's .inf and .nan, 1e400) are refused: no sum, sort or JSON
    # document can hold them.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True,
                              allow_inf_nan=False)


class IssueStatus(str, Enum):
    open = "open"
    in_progress = "in_progress"
    resolved = "resolved"
    closed = "closed"


class Priority(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class PlanStatus(str, Enum):
    draft = "draft"
    active = "active"
    completed = "completed"
    cancelled = "cancelled"


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


class DependencyStatus(str, Enum):
    satisfied = "satisfied"
    unsatisfied = "unsatisfied"
    unknown = "unknown"


class Breaker(_Model):
    """A repo's circuit breaker: after ``failures`` consecutive failed or lost todos
    the repo's todos are held; after ``cooldown`` seconds one is let through."""

    failures: int = Field(ge=1, le=1000)
    cooldown: float = Field(300, gt=0, le=7 * 24 * 3600)


#: Units a pace's rate may be given in, as seconds.
RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60,
              "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400,
              "days": 86400}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$")
MAX_RATE_PERIOD = 30 * 86400  # a month: a longer period is a typo, not a pace


def parse_rate(text: str) -> tuple[int, float]:
    """``"10/hour"`` -> ``(10, 3600.0)``; ``"5/10s"`` -> ``(5, 10.0)``: how many todos may
    start per how many seconds. Raises ValueError saying what a rate looks like."""
    m = _RATE_RE.match(str(text).lower())
    if m is None or m.group(3) not in RATE_UNITS:
        raise ValueError(f"rate {text!r} is not COUNT/PERIOD: write it like '10/hour', "
                         "'5/10s' or '100/day' (units: s, m, h, d or second, minute, hour, day)")
    count = int(m.group(1))
    period = float(m.group(2) or 1) * RATE_UNITS[m.group(3)]
    if count < 1:
        raise ValueError(f"rate {text!r} lets nothing start: the count must be at least 1")
    if not 0 < period <= MAX_RATE_PERIOD:
        raise ValueError(f"rate {text!r}: the period must be more than 0 and at most 30 days")
    return count, period


class Pace(_Model):
    """How fast the todos of a plan or repo may start, across sweeps and workers: a
    token bucket per ``key`` value (each repo, each of the repo's tags, or each code
    host) refilled at ``rate`` and holding up to ``burst`` tokens."""

    key: Literal["repo", "tag", "host"] = "repo"
    rate: str
    burst: int = Field(1, ge=1, le=10_000)

    @field_validator("rate")
    @classmethod
    def _rate(cls, v: str) -> str:
        parse_rate(v)
        return v

    @property
    def interval(self) -> float:
        """Seconds between two tokens."""
        count, period = parse_rate(self.rate)
        return period / count


#: Events a webhook's ``events:`` may name: every kind the runtime emits, and the
#: governance kinds of DESIGN.md Version 0.3 (approval gates, waves), whoever emits them.
GOVERNANCE_EVENTS = frozenset({
    "gate.waiting", "gate.approved", "gate.rejected", "gate.expired",
    "wave.started", "wave.soaking", "wave.done", "wave.halted",
})
#: What a webhook without ``events:`` is sent (DESIGN.md Version 0.3, Governance).
DEFAULT_NOTIFY_EVENTS = ("sweep.finished", "todo.failed", "gate.waiting", "gate.expired",
                         "repo.breaker_open", "repo.unattended")


def notify_event_names() -> frozenset[str]:
    return frozenset(k.value for k in EventKind) | GOVERNANCE_EVENTS


_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class NotifyTarget(_Model):
    """A webhook: where to POST which events, signed with the secret in ``secret_env``."""

    url: str
    events: list[str] = Field(default_factory=lambda: list(DEFAULT_NOTIFY_EVENTS))
    secret_env: str | None = None
    format: Literal["json", "slack"] = "json"

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http:// or https:// URL with a host")
        return v

    @field_validator("events")
    @classmethod
    def _events(cls, v: list[str]) -> list[str]:
        known = notify_event_names()
        bad = [e for e in v if e not in known]
        if bad:
            raise ValueError(f"unknown event {bad[0]!r}; events are: {', '.join(sorted(known))}")
        if not v:
            raise ValueError("events is empty: leave it out to get the default events")
        return v

    @field_validator("secret_env")
    @classmethod
    def _secret_env(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME_RE.match(v):
            raise ValueError(f"secret_env {v!r} is not an environment variable name "
                             "(it names the variable holding the secret, not the secret)")
        return v


class Resource(_Model):
    """A shared thing todos lease besides their repo (a staging database...)."""

    name: RepoName
    capacity: int = Field(1, ge=1, le=MAX_CONCURRENCY)
    description: str = ""


EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class Cache(_Model):
    """``cache:`` on a todo or repo (``cache: true`` is this with nothing listed): reuse
    an earlier successful run whose key matches. The key always covers the checkout's
    tracked content, the command and its directory, the todo's ``env:`` and its
    predecessors' keys; these add what it cannot see."""

    env: list[EnvName] = Field(default_factory=list)  # variables whose values count (hashed)
    inputs: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=list)  # globs of untracked files that count (.env, downloads)
    probes: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=list)  # commands whose output counts (python --version)

    @field_validator("inputs")
    @classmethod
    def _relative_globs(cls, v: list[str]) -> list[str]:
        for g in v:
            if g.startswith("/") or ".." in g.split("/"):
                raise ValueError(f"input {g!r}: a glob relative to the checkout, without '..'")
        return v


def cache_of(todo: Todo, repo: Repo | None) -> Cache | None:
    """A todo's cache settings: its own ``cache:`` (``false`` turns its repo's off),
    else its repo's; None when off."""
    c = todo.cache if todo.cache is not None else (repo.cache if repo is not None else None)
    if c is None or c is False:
        return None
    return Cache() if c is True else c


#: A git branch name coord accepts for a change (a subset of git's rules: no leading
#: ``-``, no whitespace or control character; ``..``, ``//``, a trailing ``/``, ``.``
#: or ``.lock`` are refused by :func:`git_branch`).
Branch = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$",
                                          max_length=200)]
_BRANCH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}\Z")

#: ``<transport>::<address>``: git hands the address to ``git-remote-<transport>``
#: (``ext::`` runs it as a command, ``fd::`` reads file descriptors).
_TRANSPORT = re.compile(r"^[A-Za-z0-9+._-]*::")


def git_branch(v: str | None) -> str | None:
    """A branch name (pattern: :data:`Branch`) without what git refuses in one."""
    if v is not None and not _BRANCH.match(v):
        raise ValueError(f"{v!r} is not a branch name coord accepts: letters, digits and "
                         "'._/-', not starting with '-' or '.' (write the branch's name)")
    if v is not None and (".." in v or "//" in v or v.endswith(("/", ".lock", "."))):
        raise ValueError(f"{v!r} is not a branch name git accepts")
    return v


def git_remote(v: str | None) -> str | None:
    """A remote coord may hand to git: a remote's name, a URL or a path; never an
    option (``--upload-pack=CMD`` runs CMD) nor a ``<transport>::`` address."""
    if v is None:
        return v
    if v.startswith("-"):
        raise ValueError(f"{v!r} starts with '-', which git reads as an option "
                         "(--upload-pack=CMD runs CMD); write the remote's name or URL")
    if _TRANSPORT.match(v):
        raise ValueError(f"{v!r} is a <transport>:: address (ext:: and fd:: run commands); "
                         "write the remote's name or URL (https://, ssh://, a path)")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in v):
        raise ValueError(f"{v!r} holds whitespace or a control character; write the "
                         "remote's name or URL")
    return v


class Repo(_Model):
    name: RepoName
    path: str | None = None
    description: str = ""
    role: str = ""
    tags: list[str] = Field(default_factory=list)
    concurrency: int = Field(1, ge=1, le=MAX_CONCURRENCY)
    breaker: Breaker | None = None
    #: Changes (``change:`` on a plan): the base a change branches from and lands on,
    #: the remote it lands on, and what lands it with ``land: command``.
    default_branch: str | None = Field(None, min_length=1)
    remote: str | None = Field(None, min_length=1)
    land_command: str | None = Field(None, min_length=1)
    #: What reverts a landed change with ``land: command`` (``coord change revert``).
    revert_command: str | None = Field(None, min_length=1)
    #: Run git hooks (pre-push...) on coord's own pushes and merges of this repo; off by
    #: default: a hook a todo wrote into a worktree would run with the lander's credentials.
    land_hooks: bool = False
    cache: bool | Cache | None = None  # every todo of the repo, unless it says otherwise
    pace: Pace | None = None

    @field_validator("default_branch")
    @classmethod
    def _git_branch(cls, v: str | None) -> str | None:
        return git_branch(v)

    @field_validator("remote")
    @classmethod
    def _git_remote(cls, v: str | None) -> str | None:
        return git_remote(v)

    def checkout(self, base_dir: Path) -> Path:
        """Where this repo's checkout is: ``path`` (``~`` expanded) relative to the
        catalog's directory ``base_dir``, default the repo's name. Every reader of
        a checkout (sweeps, workers, dep check, repo list, the demo) asks here."""
        return checkout_path(self.path or self.name, base_dir)


def checkout_path(path: str | Path, base_dir: Path) -> Path:
    """``path`` with ``~`` expanded, made absolute against ``base_dir``, normalised."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = Path(base_dir).resolve() / p
    return Path(os.path.normpath(p))


class Issue(_Model):
    id: IssueId
    title: str = Field(min_length=1)
    description: str = ""
    status: IssueStatus = IssueStatus.open
    priority: Priority = Priority.medium
    severity: str = ""
    repos: list[RepoName] = Field(default_factory=list)
    created: dt.date | None = None
    updated: dt.date | None = None
    target: dt.date | None = None
    dependencies: list[IssueId] = Field(default_factory=list)
    blocking: list[IssueId] = Field(default_factory=list)
    assignee: str | None = None
    labels: list[str] = Field(default_factory=list)
    metadata: dict[str, object] = Field(default_factory=dict)  # free-form, kept as written

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


class Milestone(_Model):
    id: MilestoneId
    title: str = ""
    due: dt.date | None = None
    todos: list[TodoId] = Field(default_factory=list)
    deliverables: list[str] = Field(default_factory=list)




class Change(_Model):
    """A plan that lands a cross-repo change: a branch per repo, verified together,
    landed all or none (``coordination/change/``). ``base`` and ``remote`` apply to
    every repo when given; else each repo's ``default_branch`` (else ``main``) and
    ``remote`` (else ``origin``)."""

    branch: Branch
    base: Branch | None = None
    remote: str | None = Field(None, min_length=1)
    #: per-wave: pushed as with push, one of the plan's ``waves:`` at a time, each soaked
    land: Literal["push", "command", "per-wave"] = "push"

    @field_validator("branch", "base")
    @classmethod
    def _git_branch(cls, v: str | None) -> str | None:
        return git_branch(v)

    @field_validator("remote")
    @classmethod
    def _git_remote(cls, v: str | None) -> str | None:
        return git_remote(v)


class Plan(_Model):
    id: PlanId
    title: str = Field(min_length=1)
    description: str = ""
    status: PlanStatus = PlanStatus.draft
    repos: list[RepoName] = Field(default_factory=list)
    milestones: list[Milestone] = Field(default_factory=list)
    completion_criteria: list[str] = Field(default_factory=list)
    waves: list[Wave] = Field(default_factory=list)  # rollout in waves (governance.py)
    change: Change | None = None
    pace: Pace | None = None


class Todo(_Model):
    id: TodoId
    task: str = Field(min_length=1)
    description: str = ""
    #: Required, except in a template, whose instances each get one selected repo.
    repo: TodoRepo = ""
    plan: PlanId | None = None
    #: A template: one instance per repo this selector selects (``TODO-010[api]``),
    #: expanded at plan time (:mod:`coordination.catalog.templates`).
    for_each: str | None = Field(None, min_length=1)
    #: ``follow``: a template's instances wait for their repo's providers' instances.
    deps: Literal["follow"] | None = None
    #: A template's instances' outcomes, written by a sync (repo -> status).
    instances: dict[RepoName, TodoStatus] | None = None
    run: str | None = None
    undo: str | None = None
    timeout: float = Field(3600, gt=0, le=MAX_TODO_TIMEOUT)
    retries: int = Field(0, ge=0, le=MAX_RETRIES)
    env: dict[str, str] = Field(default_factory=dict)
    # What its last synced successful run wrote to $COORD_OUTPUT (kept by `sweep sync`;
    # given to the todos after it in later sweeps).
    outputs: dict[str, str] = Field(default_factory=dict)
    # Shared things leased besides the repo while it runs (top-level `resources:`).
    resources: list[str] = Field(default_factory=list)
    cache: bool | Cache | None = None  # reuse an earlier success with the same key (Cache)
    status: TodoStatus = TodoStatus.pending
    priority: Priority = Priority.medium
    estimated_hours: float | None = Field(None, ge=0, le=MAX_HOURS)
    actual_hours: float | None = Field(None, ge=0, le=MAX_HOURS)
    blocked_by: list[BlockerId] = Field(default_factory=list)
    blocking: list[TodoId] = Field(default_factory=list)
    assignee: str | None = None
    labels: list[str] = Field(default_factory=list)
    acceptance_criteria: list[str] = Field(default_factory=list)
    gate: Gate | None = None  # waits for people's approval; no run: (governance.py)
    #: In a change's plan: commit what this todo changed on the change branch, with
    #: this message; ``verify``: run against every repo's candidate.
    commit: str | None = Field(None, min_length=1)
    verify: bool = False

    @model_validator(mode="after")
    def _repo_or_template(self) -> Todo:
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

    @property
    def is_template(self) -> bool:
        return self.for_each is not None

    @field_validator("env", "outputs", mode="before")
    @classmethod
    def _env_values_as_text(cls, v: object) -> object:
        # YAML turns `PYTHON: 3.13` into a float; an environment only holds text.
        if isinstance(v, dict):
            return {k: (v2 if isinstance(v2, str) else _scalar_text(v2)) for k, v2 in v.items()}
        return v


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


def _scalar_text(v: object) -> object:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return v


class Validation(_Model):
    command: str = Field(min_length=1)
    expected_pattern: str | None = None
    timeout: float = Field(60, gt=0, le=3600)

    @field_validator("expected_pattern")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return v


class DependencySource(_Model):
    """Where an inferred dependency was read (``coord init``): the consumer's manifest,
    relative to its checkout, and the 1-based line naming the provider."""

    file: str = Field(min_length=1, description="The manifest, relative to the consumer's "
                      "checkout (pyproject.toml, package.json, go.mod...).")
    line: int = Field(ge=1, description="The 1-based line of the manifest naming the provider.")


class Dependency(_Model):
    id: DepId
    consumer: RepoName
    provider: RepoName
    type: DependencyType = DependencyType.runtime
    version_constraint: str | None = None
    status: DependencyStatus = DependencyStatus.unknown
    notes: str = ""
    validation: Validation | None = None
    #: Set by ``coord init`` on what it inferred from a manifest; ``coord init --check``
    #: drops such an entry when the manifest stops naming the provider.
    source: DependencySource | None = None


class Coordination(_Model):
    issues: list[Issue] = Field(default_factory=list)
    plans: list[Plan] = Field(default_factory=list)
    todos: list[Todo] = Field(default_factory=list)
    dependencies: list[Dependency] = Field(default_factory=list)


class Approvers(_Model):
    """Who may approve gates, proven by SSH signatures (``approvers:``).

    ``allowed_signers``: a file in git's ``gpg.ssh.allowedSignersFile`` format
    (principals and their SSH public keys), relative to the catalog's directory. With
    it, a vote counts only with a signature (``ssh-keygen -Y sign -n coord-approval``)
    over the gate's binding that verifies for a principal the gate's ``from:`` names."""

    allowed_signers: str = Field(min_length=1)


class Catalog(_Model):
    version: Literal[1]
    repos: list[Repo] = Field(default_factory=list)
    resources: list[Resource] = Field(default_factory=list)
    coordination: Coordination = Field(default_factory=Coordination)
    notify: list[NotifyTarget] = Field(default_factory=list)
    approvers: Approvers | None = None
    # Lookups by name or id, each built on first use (a Catalog is treated as immutable).
    _repos: dict[str, Repo] | None = PrivateAttr(None)
    _issues: dict[str, Issue] | None = PrivateAttr(None)
    _plans: dict[str, Plan] | None = PrivateAttr(None)
    _todos: dict[str, Todo] | None = PrivateAttr(None)
    _deps: dict[str, Dependency] | None = PrivateAttr(None)

    def repo(self, name: str) -> Repo | None:
        found = self._repos  # one read: a private attribute goes through __getattr__
        if found is None:
            found = self._repos = {r.name: r for r in self.repos}
        return found.get(name)

    def issue(self, id_: str) -> Issue | None:
        found = self._issues
        if found is None:
            found = self._issues = {i.id: i for i in self.coordination.issues}
        return found.get(id_)

    def plan(self, id_: str) -> Plan | None:
        found = self._plans
        if found is None:
            found = self._plans = {p.id: p for p in self.coordination.plans}
        return found.get(id_)

    def todo(self, id_: str) -> Todo | None:
        found = self._todos
        if found is None:
            found = self._todos = {t.id: t for t in self.coordination.todos}
        return found.get(id_)

    def dependency(self, id_: str) -> Dependency | None:
        found = self._deps
        if found is None:
            found = self._deps = {d.id: d for d in self.coordination.dependencies}
        return found.get(id_)

    def plan_todos(self, plan_id: str) -> list[Todo]:
        """The plan's todos: those naming it in ``plan`` or listed in its milestones.

        Catalog order, each once.
        """
        plan = self.plan(plan_id)
        listed: set[str] = set()
        if plan is not None:
            for ms in plan.milestones:
                listed.update(ms.todos)
        return [t for t in self.coordination.todos if t.plan == plan_id or t.id in listed]


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
