"""Where coord's Redis is, read without pydantic: what a read of a sweep needs first.

`coord sweep status` of a big sweep is a few Redis reads; importing pydantic and
building :class:`coordination.settings.Settings` costs more than all of them (~80 ms).
:func:`read_core` reads the four settings a runtime is built from (``COORD_REDIS_URL``,
``COORD_NAMESPACE``, ``COORD_SHARE_NAMESPACE``, ``COORD_ECOSYSTEM``) as the settings
read them (names in any case) and checks them by the same rules (the validators of
:class:`~coordination.settings.Settings` call the ones here). It never judges a value
itself: anything it is not sure of (a malformed URL, an unknown boolean spelling, a
name set twice in two cases) makes it return None, and the caller reads the full
settings, whose error names the variable. Every other setting is read, and checked,
when it is first used (``Runtime.settings``); so a read-only status does not fail on a
bad setting it never uses, where every other command still fails at start.

Stdlib only (and :mod:`coordination.redis_url`, stdlib only too).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from coordination.redis_url import client_url, url_problem

NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
#: How pydantic reads a boolean from text (case-insensitive); any other text is an error.
_TRUE = frozenset({"1", "true", "yes", "on", "t", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "f", "n"})
_PREFIX = "coord_"
#: The prefix of every setting's variable: field ``lease_ttl`` is ``COORD_LEASE_TTL``.
ENV_PREFIX = "COORD_"


def from_environment(fields: Iterable[str], environ: Mapping[str, str] | None = None
                     ) -> dict[str, str]:
    """Each of ``fields`` that the environment sets, as the text it holds, as
    :class:`coordination.settings.Settings` reads it: the variable ``COORD_<FIELD>`` in
    any case; of one set in two cases, the later one."""
    env = {name.lower(): value for name, value in
           (os.environ if environ is None else environ).items()}
    return {f: env[_PREFIX + f] for f in fields if _PREFIX + f in env}


def namespace_problem(value: str) -> str | None:
    """Why ``value`` is not a namespace (None: it is)."""
    return None if NAMESPACE_RE.match(value) else "must match [a-z0-9][a-z0-9._-]*"


class WhereRedisIs:
    """The mode a ``redis_url`` says (for :class:`Core` and every settings object)."""

    if TYPE_CHECKING:
        redis_url: str | None

    @property
    def embedded(self) -> bool:
        """Embedded mode: no ``COORD_REDIS_URL``, the catalog's own server."""
        return self.redis_url is None


@dataclass(frozen=True)
class Core(WhereRedisIs):
    """The settings a runtime is built from."""

    ecosystem: Path
    redis_url: str | None  # as redis-py reads it (client_url); None: embedded mode
    namespace: str
    share_namespace: bool


#: The variables of :class:`Core` (lowercased, as :func:`read_core` compares names).
CORE_VARIABLES = frozenset(_PREFIX + f.name for f in fields(Core))


def read_core(environ: Mapping[str, str] | None = None, *, alone: bool = False
              ) -> Core | None:
    """The :class:`Core` settings from the environment, or None when the full settings
    must say (see the module docstring). ``alone``: None also when the environment sets
    any other ``COORD_`` variable (then it does not say every other setting is its
    default: :func:`coordination.settings_defaults.read_plain`)."""
    env: dict[str, str] = {}
    for name, value in (os.environ if environ is None else environ).items():
        key = name.lower()
        if key.startswith(_PREFIX):
            if key in env:
                return None  # one name set twice, in two cases: which wins is theirs to say
            if alone and key not in CORE_VARIABLES:
                return None  # another setting: the full settings read (and judge) it
            env[key] = value
    namespace = env.get("coord_namespace", "coord")
    if namespace_problem(namespace):
        return None
    raw_url = env.get("coord_redis_url") or None
    if raw_url is not None and url_problem(raw_url):
        return None
    share = env.get("coord_share_namespace", "false").lower()
    if share not in _TRUE | _FALSE:
        return None
    ecosystem = env.get("coord_ecosystem", "ecosystem.yaml")
    if not ecosystem:
        return None
    return Core(ecosystem=Path(ecosystem),
                redis_url=client_url(raw_url) if raw_url is not None else None,
                namespace=namespace, share_namespace=share in _TRUE)
