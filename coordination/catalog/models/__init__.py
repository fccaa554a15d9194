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
    JsonValue,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from coordination.catalog.governance import Duration, Gate, Wave
from coordination.catalog.patterns import END, any_case, at_most
from coordination.catalog.selector_syntax import SELECTOR_PATTERN
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


#: A day as the catalog writes it (``created:``, ``due:``...); pydantic reads the date.
ISO_DATE_PATTERN = rf"^[0-9]{{4}}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]){END}"
#: What an editor is told of a date field (``coord schema``); the loader checks the day.
DATE_SCHEMA: JsonDict = {"pattern": ISO_DATE_PATTERN}


def kind_of(id_: str) -> str | None:
    """``'todo'`` for ``TODO-7`` and so on; None for a malformed id."""
    for kind, pat in ID_PATTERNS.items():
        if pat.match(id_):
            return kind
    return None


class _Model(BaseModel):
    # Unknown keys are refused: in a hand-edited file they are almost always typos.
    # Non-finite floats (YAML's .inf and .nan, 1e400) are refused: no sum, sort or JSON
    # document can hold them. A field's docstring is its description (the generated
    # reference and `coord schema` show it; tests/unit/test_docs_reference.py needs one).
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True,
                              allow_inf_nan=False, use_attribute_docstrings=True)


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
    peer = "peer"
    optional = "optional"


class DependencyStatus(str, Enum):
    satisfied = "satisfied"
    unsatisfied = "unsatisfied"
    unknown = "unknown"


class Breaker(_Model):
    """A repo's circuit breaker: after ``failures`` consecutive failed or lost todos
    the repo's todos are held; after ``cooldown`` seconds one is let through."""

    failures: int = Field(ge=1, le=1000)
    """Consecutive failed or lost todos that open the breaker (1 to 1,000)."""
    cooldown: float = Field(300, gt=0, le=7 * 24 * 3600)
    """Seconds the breaker stays open before one todo is let through (at most 7 days)."""


#: Units a pace's rate may be given in, as seconds.
RATE_UNITS = {"s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60,
              "minutes": 60, "h": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400,
              "days": 86400}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$")
MAX_RATE_PERIOD = 30 * 86400  # a month: a longer period is a typo, not a pace


def _rate_pattern() -> str:
    """:func:`parse_rate`'s rule as one pattern, for `coord schema`: a count of at least
    1, then per unit of :data:`RATE_UNITS` (any case) a period above 0 that makes at
    most :data:`MAX_RATE_PERIOD`."""
    by_seconds: dict[int, list[str]] = {}
    for unit, secs in RATE_UNITS.items():
        by_seconds.setdefault(secs, []).append(unit)
    periods = []
    for secs, units in sorted(by_seconds.items()):
        names = "|".join(any_case(u) for u in sorted(units, key=len, reverse=True))
        periods.append(rf"(?:(?=[0-9.]*[1-9]){at_most(MAX_RATE_PERIOD // secs)})?\s*(?:{names})")
    return rf"^\s*0*[1-9][0-9]*\s*/\s*(?:{'|'.join(periods)})\s*{END}"


RATE_PATTERN = _rate_pattern()


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
    """What one token bucket is for: each repo, each of the repo's tags, or each code host."""
    rate: str = Field(json_schema_extra={"pattern": RATE_PATTERN})
    """How many todos may start per period: COUNT/PERIOD, like 10/hour, 5/10s, 100/day."""
    burst: int = Field(1, ge=1, le=10_000)
    """Tokens a bucket holds at most: todos that may start at once after a pause."""

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


_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_ENV_NAME_RE = re.compile(rf"^{_ENV_NAME}\Z")


def _events_schema(schema: JsonDict) -> None:
    """`coord schema`: the kinds ``events:`` may name (:func:`notify_event_names`), at
    least one."""
    names: list[JsonValue] = [*sorted(notify_event_names())]
    schema.update(items={"enum": names}, minItems=1)


#: The schemes a webhook's URL may have.
NOTIFY_SCHEMES = ("http", "https")
#: :class:`NotifyTarget`'s URL rule for `coord schema`: a scheme of :data:`NOTIFY_SCHEMES`
#: (any case; leading blanks are dropped as urlsplit does) and a host (the part of the
#: netloc after its last ``@``, before a ``:port``, not empty). (urlsplit also drops a
#: tab or line break anywhere, "ht\ttp://": not modelled.)
NOTIFY_URL_PATTERN = (r"^[\x00-\x20]*(?:" + "|".join(any_case(s) for s in NOTIFY_SCHEMES)
                      + r")://(?:[^/?#]*@)?(?![^/?#]*@)[^/?#@:\t\n\r]")


class NotifyTarget(_Model):
    """A webhook: where to POST which events, signed with the secret in ``secret_env``."""

    url: str = Field(json_schema_extra={"pattern": NOTIFY_URL_PATTERN})
    """The http:// or https:// URL POSTed to."""
    events: list[str] = Field(default_factory=lambda: list(DEFAULT_NOTIFY_EVENTS),
                              json_schema_extra=_events_schema)
    """Event kinds sent; default sweep.finished, todo.failed, gate.waiting, gate.expired,
    repo.breaker_open, repo.unattended."""
    secret_env: str | None = Field(None, json_schema_extra={"pattern": f"^{_ENV_NAME}{END}"})
    """The environment variable holding the secret the body is signed with (HMAC-SHA256)."""
    format: Literal["json", "slack"] = "json"
    """Body format: coord's JSON, or a Slack message."""

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        # urlsplit finds a host in "http://:[::1]" (an empty host with a port of "[::1]"):
        # a netloc whose host part is empty is no host, whatever brackets follow.
        if (parts.scheme not in NOTIFY_SCHEMES or not parts.hostname
                or parts.netloc.rpartition("@")[2].startswith(":")):
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
    """Unique name a todo's `resources:` refers to."""
    capacity: int = Field(1, ge=1, le=MAX_CONCURRENCY)
    """Todos that may hold the resource at once (1 to 1,024)."""
    description: str = ""
    """Free text about the resource."""


EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


#: A cache input: a glob relative to the checkout, never absolute nor through ``..``
#: (``Cache._relative_globs``; for `coord schema` as :data:`INPUT_GLOB_PATTERN`).
_UP = ".."
INPUT_GLOB_PATTERN = rf"^(?!/)(?!(?:[\s\S]*/)?{re.escape(_UP)}(?:/|{END}))"


class Cache(_Model):
    """``cache:`` on a todo or repo (``cache: true`` is this with nothing listed): reuse
    an earlier successful run whose key matches. The key always covers the checkout's
    tracked content, the command and its directory, the todo's ``env:`` and its
    predecessors' keys; these add what it cannot see."""

    env: list[EnvName] = Field(default_factory=list)  # variables whose values count (hashed)
    """Environment variables whose values count in the key (hashed, never stored)."""
    inputs: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=list,  # globs of untracked files that count (.env, downloads)
        json_schema_extra={"items": {"type": "string", "minLength": 1,
                                     "pattern": INPUT_GLOB_PATTERN}})
    """Globs of untracked files that count in the key (.env, downloads), in the checkout."""
    probes: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=list)  # commands whose output counts (python --version)
    """Commands whose output counts in the key (python --version)."""

    @field_validator("inputs")
    @classmethod
    def _relative_globs(cls, v: list[str]) -> list[str]:
        for g in v:
            if g.startswith("/") or _UP in g.split("/"):
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
_BRANCH_CHARS = r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}"
_BRANCH = re.compile(rf"^{_BRANCH_CHARS}\Z")
#: What a branch name never holds, and never ends with (:func:`git_branch`).
_BRANCH_NEVER_HOLDS = ("..", "//")
_BRANCH_NEVER_ENDS = ("/", ".lock", ".")
#: :func:`git_branch` as one pattern, for `coord schema`.
BRANCH_PATTERN = ("^" + "".join(rf"(?![\s\S]*{re.escape(x)})" for x in _BRANCH_NEVER_HOLDS)
                  + r"(?![\s\S]*(?:" + "|".join(re.escape(x) for x in _BRANCH_NEVER_ENDS)
                  + rf"){END})" + _BRANCH_CHARS + END)
BRANCH_SCHEMA: JsonDict = {"pattern": BRANCH_PATTERN}

#: ``<transport>::<address>``: git hands the address to ``git-remote-<transport>``
#: (``ext::`` runs it as a command, ``fd::`` reads file descriptors).
_TRANSPORT_RE = r"[A-Za-z0-9+._-]*::"
_TRANSPORT = re.compile("^" + _TRANSPORT_RE)
#: :func:`git_remote` as one pattern, for `coord schema`: no leading ``-``, no
#: ``<transport>::``, no whitespace or control character.
REMOTE_PATTERN = rf"^(?!-)(?!{_TRANSPORT_RE})[^\s\x00-\x1f\x7f]+{END}"
REMOTE_SCHEMA: JsonDict = {"pattern": REMOTE_PATTERN}
#: A clone URL: a remote's rules, and no password in a URL's user part (what urlsplit
#: reads as one: a ``:`` before the netloc's last ``@``).
CLONE_URL_SCHEMA: JsonDict = {
    "pattern": "^(?![\\s\\S]*://[^/?#]*:[^/?#]*@)" + REMOTE_PATTERN[1:]}


def git_branch(v: str | None) -> str | None:
    """A branch name (pattern: :data:`Branch`) without what git refuses in one."""
    if v is not None and not _BRANCH.match(v):
        raise ValueError(f"{v!r} is not a branch name coord accepts: letters, digits and "
                         "'._/-', not starting with '-' or '.' (write the branch's name)")
    if v is not None and (any(x in v for x in _BRANCH_NEVER_HOLDS)
                          or v.endswith(_BRANCH_NEVER_ENDS)):
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
    """Unique name of the repo, [a-z0-9][a-z0-9._-]*; its queue is <namespace>.repo.<name>."""
    path: str | None = None
    """Its checkout, relative to the catalog's directory (~ expanded); default the repo's name.
    `coord worker --path` overrides it."""
    description: str = ""
    """Free text about the repo."""
    role: str = ""
    """What the repo is (library, service...): selectable as role:R."""
    tags: list[str] = Field(default_factory=list)
    """Labels selectable as tag:T (selectors, waves, pace keys)."""
    concurrency: int = Field(1, ge=1, le=MAX_CONCURRENCY)
    """Todos of this repo running at once, across all its workers (1 to 1,024)."""
    breaker: Breaker | None = None
    """A circuit breaker holding the repo's todos after consecutive failures."""
    #: Changes (``change:`` on a plan): the base a change branches from and lands on,
    #: the remote it lands on, and what lands it with ``land: command``.
    default_branch: str | None = Field(None, min_length=1, json_schema_extra=BRANCH_SCHEMA)
    """The branch a change branches from and lands on (default main)."""
    remote: str | None = Field(None, min_length=1, json_schema_extra=REMOTE_SCHEMA)
    """The git remote a change fetches from and lands on (default origin)."""
    #: Where the checkout is cloned from: a catalog shared in git then says where each
    #: repo comes from, not only where this machine keeps it (``coord init`` writes it).
    url: str | None = Field(None, min_length=1, json_schema_extra=CLONE_URL_SCHEMA)
    """Where the repo is cloned from (its remote's URL, as `coord init` read it; no password):
    what a new machine clones (`coord init --from` takes such URLs). Changes fetch from and land
    on `remote`, and refuse to while that remote's URL is not this one."""
    land_command: str | None = Field(None, min_length=1)
    """What lands a change with `land: command` (e.g. `gh pr merge ...`), run in the change's
    worktree."""
    #: What reverts a landed change with ``land: command`` (``coord change revert``).
    revert_command: str | None = Field(None, min_length=1)
    """What reverts a landed change with `land: command` (`coord change revert`)."""
    #: Run once in each new change worktree of the repo, before its first todo there.
    prepare: str | None = Field(None, min_length=1)
    """What prepares a new change worktree of the repo (build a C extension, install node
    modules), run once in it before its first todo; its output is in `coord change status`,
    its failure a blocker of the change."""
    #: Run git hooks (pre-push...) on coord's own pushes and merges of this repo; off by
    #: default: a hook a todo wrote into a worktree would run with the lander's credentials.
    land_hooks: bool = False
    """Run git hooks on coord's own pushes and merges of this repo, and obey the programs its own
    git config names (core.sshCommand, credential helpers, upload/receive pack...); off by default,
    since a hook or config a todo wrote would run with the lander's credentials (a repo whose own
    config names such a program is then not landable, named)."""
    cache: bool | Cache | None = None  # every todo of the repo, unless it says otherwise
    """Reuse earlier successes for every todo of the repo, unless a todo says otherwise (true, or a
    Cache)."""
    pace: Pace | None = None
    """How fast the repo's todos may start, across sweeps and workers."""

    @field_validator("default_branch")
    @classmethod
    def _git_branch(cls, v: str | None) -> str | None:
        return git_branch(v)

    @field_validator("remote")
    @classmethod
    def _git_remote(cls, v: str | None) -> str | None:
        return git_remote(v)

    @field_validator("url")
    @classmethod
    def _clone_url(cls, v: str | None) -> str | None:
        v = git_remote(v)
        if v is not None and "://" in v and urlsplit(v).password:
            raise ValueError("url holds a password, which a catalog shared in git would "
                             "publish; write it without (git's credential helper supplies it)")
        return v

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


class Criterion(_Model):
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


def criterion_checks(criteria: list[str | Criterion]) -> list[Criterion]:
    """The criteria of a list that carry a check, in order."""
    return [c for c in criteria if isinstance(c, Criterion)]


class Milestone(_Model):
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




class Change(_Model):
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
    land: Literal["push", "command", "per-wave"] = "push"
    """How `coord change land` lands a repo: push the branch onto the base, run the repo's
    land_command, or push one of the plan's `waves:` at a time, each soaked (per-wave)."""
    require_own_verify: bool = False
    """A repo of the change that no verify todo of its own (`repo:` it) checks blocks the
    landing; else it is only flagged (`coord change status`, `land --dry-run`)."""

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


class Todo(_Model):
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
    if isinstance(v, _NUMBERS):
        return str(v)
    return v


class Validation(_Model):
    command: str = Field(min_length=1)
    """Shell command run in the consumer's checkout; exit 0 passes."""
    expected_pattern: str | None = None
    """A regular expression its output must match to pass."""
    timeout: float = Field(60, gt=0, le=3600)
    """Seconds the command may take (at most 3,600)."""

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
    """Unique id, DEP-<n>."""
    consumer: RepoName
    """The repo that depends on the provider."""
    provider: RepoName
    """The repo depended on; it comes first in landing and `deps: follow` orders."""
    type: DependencyType = DependencyType.runtime
    """What kind of dependency it is: runtime, build, dev, peer or optional (from the manifest's
    own sections); test and api are kept from 0.4 catalogs. Which types order work: `order.by`."""
    indirect: bool = False
    """A Go `// indirect` require (or another ecosystem's transitive pin): kept, never ordering."""
    version_constraint: str | None = None
    """The provider's versions the consumer accepts (free text, e.g. >=2.0)."""
    status: DependencyStatus = DependencyStatus.unknown
    """The last `coord dep check`'s verdict."""
    notes: str = ""
    """Free text about the dependency."""
    validation: Validation | None = None
    """A command that checks the dependency (`coord dep check`)."""
    #: Set by ``coord init`` on what it inferred from a manifest; ``coord init --check``
    #: drops such an entry when the manifest stops naming the provider.
    source: DependencySource | None = None
    """Where `coord init` read it (manifest and line); `coord init --check` drops it when the
    manifest stops naming the provider."""


class Coordination(_Model):
    issues: list[Issue] = Field(default_factory=list)
    """Cross-repo issues (ISSUE-n)."""
    plans: list[Plan] = Field(default_factory=list)
    """Plans (PLAN-n): the todos a sweep runs, with milestones, waves and an optional change."""
    todos: list[Todo] = Field(default_factory=list)
    """Todos (TODO-n): one task in one repo, with its command and its blockers."""
    dependencies: list[Dependency] = Field(default_factory=list)
    """Inter-repo dependencies (DEP-n): which repo consumes which (`coord dep check`)."""


class Approvers(_Model):
    """Who may approve gates, proven by SSH signatures (``approvers:``).

    ``allowed_signers``: a file in git's ``gpg.ssh.allowedSignersFile`` format
    (principals and their SSH public keys), relative to the catalog's directory. With
    it, a vote counts only with a signature (``ssh-keygen -Y sign -n coord-approval``)
    over the gate's binding that verifies for a principal the gate's ``from:`` names."""

    allowed_signers: str = Field(min_length=1)
    """A file in git's allowed-signers format (principals and SSH public keys), relative to the
    catalog's directory."""


class Order(_Model):
    """How dependency-ordered work is ordered (``order:``): which dependency types order it,
    and what a cycle among them does."""

    by: list[DependencyType] = Field(
        default_factory=lambda: [DependencyType.runtime, DependencyType.build, DependencyType.peer])
    """The dependency types that order work (default runtime, build, peer: dev, optional and
    indirect edges do not)."""
    cycles: Literal["group", "error"] = "group"
    """A cycle among ordering edges: `group` runs its repos as one group, one at a time in name
    order, with a warning; `error` refuses (exit 2)."""


class Catalog(_Model):
    version: Literal[1]
    """The catalog format's version; always 1."""
    repos: list[Repo] = Field(default_factory=list)
    """The repositories coord knows: each a name, its checkout and how its todos run."""
    resources: list[Resource] = Field(default_factory=list)
    """Shared things todos lease besides their repo (a staging database...)."""
    coordination: Coordination = Field(default_factory=Coordination)
    """The work: issues, plans, todos and inter-repo dependencies."""
    notify: list[NotifyTarget] = Field(default_factory=list)
    """Webhooks POSTed when the events they name happen."""
    approvers: Approvers | None = None
    """Who may approve gates, proven by SSH signatures (git's allowed-signers file)."""
    order: Order = Field(default_factory=Order)
    """Which dependency types order `coord run --order deps`, `deps: follow` and
    `repo list --order`, and what a cycle among them does."""
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
