"""What the catalog's models and their read-only views both do, without pydantic:
lookups by name and id, a todo's template test, a repo's checkout, a pace's interval,
a wave's selection, a todo's cache settings, a list's checked criteria.

Each class here is a mixin of one model (:mod:`coordination.catalog.models`) and of
its view (:mod:`coordination.catalog.reads.views`), so both faces run the same body. A mixin
reads only fields, by name. Stdlib only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

M = TypeVar("M")

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


def checkout_path(path: str | Path, base_dir: Path, *, resolved: bool = False) -> Path:
    """``path`` with ``~`` expanded, made absolute against ``base_dir`` (resolved here,
    unless the caller says it did: `coord init` asks for a fleet's every repo against
    one directory, resolved once), normalised."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = (Path(base_dir) if resolved else Path(base_dir).resolve()) / p
    return Path(os.path.normpath(p))


@dataclass(frozen=True)
class CacheDefaults:
    """``cache: true``: a cache with nothing listed, as the ``Cache`` model holds it by
    default (a unit test keeps the two equal), for the models and their views alike."""

    env: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)


C = TypeVar("C")  # a ``Cache``: a model, or its view
C_co = TypeVar("C_co", covariant=True)
K = TypeVar("K")  # a ``Criterion``: a model, or its view


class _Cached(Protocol[C_co]):  # a todo or a repo
    @property
    def cache(self) -> bool | C_co | None: ...


def cache_of(todo: _Cached[C], repo: _Cached[C] | None) -> C | CacheDefaults | None:
    """A todo's cache settings: its own ``cache:`` (``false`` turns its repo's off),
    else its repo's; None when off (a model or a view of one, or ``cache: true``'s
    :class:`CacheDefaults`)."""
    c = todo.cache if todo.cache is not None else (repo.cache if repo is not None else None)
    if c is None or c is False:
        return None
    return CacheDefaults() if c is True else c


def criterion_checks(criteria: Sequence[str | K]) -> list[K]:
    """The criteria of a list that carry a check, in order (a model or a view of one:
    anything but text)."""
    return [c for c in criteria if not isinstance(c, str)]


class PaceMethods:
    if TYPE_CHECKING:  # fields the class has (as annotations, pydantic would take them)
        rate: str

    @property
    def interval(self) -> float:
        """Seconds between two tokens."""
        count, period = parse_rate(self.rate)
        return period / count


class RepoMethods:
    if TYPE_CHECKING:  # fields the class has (as annotations, pydantic would take them)
        name: str
        path: str | None

    def checkout(self, base_dir: Path, *, resolved: bool = False) -> Path:
        """Where this repo's checkout is: ``path`` (``~`` expanded) relative to the
        catalog's directory ``base_dir`` (``resolved``: already, see
        :func:`checkout_path`), default the repo's name. Every reader of a checkout
        (sweeps, workers, dep check, repo list, the demo) asks here."""
        return checkout_path(self.path or self.name, base_dir, resolved=resolved)


class TodoMethods:
    if TYPE_CHECKING:  # fields the class has (as annotations, pydantic would take them)
        for_each: str | None

    @property
    def is_template(self) -> bool:
        return self.for_each is not None


class WaveMethods:
    if TYPE_CHECKING:  # fields the class has (as annotations, pydantic would take them)
        repos: list[str]
        tags: list[str]

    def selects(self, repo: str, tags: list[str]) -> bool:
        return repo in self.repos or bool(set(tags) & set(self.tags))


class _Listing(Protocol):  # a milestone
    @property
    def todos(self) -> Sequence[str]: ...


class _Planned(Protocol):  # a plan
    @property
    def milestones(self) -> Sequence[_Listing]: ...


class _Planning(Protocol):  # a todo
    @property
    def id(self) -> str: ...
    @property
    def plan(self) -> str | None: ...


R = TypeVar("R")
I = TypeVar("I")  # noqa: E741 - the issue's type, beside R, P, T, D
P = TypeVar("P", bound=_Planned)
T = TypeVar("T", bound=_Planning)
D = TypeVar("D")


I_co = TypeVar("I_co", covariant=True)
P_co = TypeVar("P_co", covariant=True)
T_co = TypeVar("T_co", covariant=True)
D_co = TypeVar("D_co", covariant=True)


class _Work(Protocol[I_co, P_co, T_co, D_co]):  # ``coordination:``
    @property
    def issues(self) -> Sequence[I_co]: ...
    @property
    def plans(self) -> Sequence[P_co]: ...
    @property
    def todos(self) -> Sequence[T_co]: ...
    @property
    def dependencies(self) -> Sequence[D_co]: ...


class CatalogMethods(Generic[R, I, P, T, D]):
    """Lookups by name or id, each built on first use (a catalog is treated as
    immutable), in the private attributes ``_repos``, ``_issues``, ``_plans``,
    ``_todos`` and ``_deps`` (None until built) the class provides. Generic in the
    types of its repos, issues, plans, todos and dependencies: the model's, which a
    view is typed as. (A model class lists it after ``BaseModel``, as pydantic wants
    of a generic base.)"""

    if TYPE_CHECKING:  # fields the class has (as annotations, pydantic would take them)
        @property
        def repos(self) -> Sequence[R]: ...
        @property
        def coordination(self) -> _Work[I, P, T, D]: ...

    def repo(self, name: str) -> R | None:
        return self._lookup("_repos", self.repos, "name").get(name)

    def issue(self, id_: str) -> I | None:
        return self._lookup("_issues", self.coordination.issues).get(id_)

    def plan(self, id_: str) -> P | None:
        return self._lookup("_plans", self.coordination.plans).get(id_)

    def todo(self, id_: str) -> T | None:
        return self._lookup("_todos", self.coordination.todos).get(id_)

    def dependency(self, id_: str) -> D | None:
        return self._lookup("_deps", self.coordination.dependencies).get(id_)

    def _lookup(self, attr: str, items: Sequence[M], key: str = "id") -> dict[str, M]:
        """The lookup held in the private attribute ``attr``: ``items`` by ``key``,
        built on first use (one read: a private attribute goes through __getattr__)."""
        found: dict[str, M] | None = getattr(self, attr)
        if found is None:
            found = {getattr(x, key): x for x in items}
            setattr(self, attr, found)
        return found

    def plan_todos(self, plan_id: str) -> list[T]:
        """The plan's todos: those naming it in ``plan`` or listed in its milestones.

        Catalog order, each once.
        """
        plan = self.plan(plan_id)
        listed: set[str] = set()
        if plan is not None:
            for ms in plan.milestones:
                listed.update(ms.todos)
        return [t for t in self.coordination.todos if t.plan == plan_id or t.id in listed]
