"""Repos and what runs in them: a repo, its checkout, its circuit breaker, its pace,
its result cache, and the shared resources todos lease besides it."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints, field_validator

from coordination.catalog.model_methods import (
    MAX_RATE_PERIOD,
    RATE_UNITS,
    PaceMethods,
    RepoMethods,
    parse_rate,
)
from coordination.catalog.models.base import MAX_CONCURRENCY, CatalogModel, RepoName
from coordination.catalog.models.forges import RepoForge
from coordination.catalog.models.git_names import (
    BRANCH_SCHEMA,
    CLONE_URL_SCHEMA,
    REMOTE_SCHEMA,
    git_branch,
    git_remote,
)
from coordination.catalog.rules.patterns import END, any_case, at_most


class Breaker(CatalogModel):
    """A repo's circuit breaker: after ``failures`` consecutive failed or lost todos
    the repo's todos are held; after ``cooldown`` seconds one is let through."""

    failures: int = Field(ge=1, le=1000)
    """Consecutive failed or lost todos that open the breaker (1 to 1,000)."""
    cooldown: float = Field(300, gt=0, le=7 * 24 * 3600)
    """Seconds the breaker stays open before one todo is let through (at most 7 days)."""


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


class Pace(PaceMethods, CatalogModel):
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


class Resource(CatalogModel):
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


class Cache(CatalogModel):
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


class Repo(RepoMethods, CatalogModel):
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
    mask_env: list[EnvName] = Field(default_factory=list)
    """Environment variables whose values are masked as *** in everything its todos' runs leave
    (logs, output tails, results, events, webhooks, pages); values shorter than 4 characters
    are not masked."""
    forge: RepoForge | None = None
    """The forge holding the repo's pull requests (a change with `land: pr` merges through it):
    kind, project, and optionally api, token_env, webhook_secret_env."""

    _git_branch = field_validator("default_branch")(staticmethod(git_branch))
    _git_remote = field_validator("remote")(staticmethod(git_remote))

    @field_validator("url")
    @classmethod
    def _clone_url(cls, v: str | None) -> str | None:
        v = git_remote(v)
        if v is not None and "://" in v and urlsplit(v).password:
            raise ValueError("url holds a password, which a catalog shared in git would "
                             "publish; write it without (git's credential helper supplies it)")
        return v
