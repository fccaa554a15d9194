"""Webhooks (``notify:``): where to POST which events, and how they are signed."""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, JsonValue, field_validator
from pydantic.config import JsonDict

from coordination.catalog.models.base import CatalogModel
from coordination.catalog.rules.patterns import END, any_case
from coordination.status import EventKind

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


class NotifyTarget(CatalogModel):
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
