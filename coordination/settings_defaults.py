"""Every setting's default, and what the settings say beyond their fields: without pydantic.

:class:`coordination.settings.Settings` takes each field's default from :data:`DEFAULTS`
(so there is one table of them: tests/unit/test_settings_defaults.py checks that every
field's default is this one) and its derived properties (``embedded``, ``signing_keys``,
``heartbeat_interval``, ``ui_host_names``) from :class:`Derived`.

The settings validate their defaults too, so a default is valid by construction: when
the environment sets no ``COORD_`` variable but the four where Redis is (read, and
checked, by :func:`coordination.settings_core.read_core`), every setting is known
without pydantic (:func:`read_plain`). Importing pydantic and building the model is
some 80-100 ms of a sweep's start (``Runtime.create``); any other variable set, or a
core value that reader leaves to the full settings, and the caller reads those instead,
whose error names a bad variable as ever.

Stdlib only (and :mod:`coordination.settings_core`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from coordination.settings_core import WhereRedisIs, read_core

if TYPE_CHECKING:
    from pydantic import SecretStr


class Derived(WhereRedisIs):
    """What the settings say beyond their fields (:class:`Settings
    <coordination.settings.Settings>` and :class:`PlainSettings` alike)."""

    if TYPE_CHECKING:
        lease_ttl: float
        heartbeat: float | None
        signing_key: SecretStr | None
        signing_key_previous: SecretStr | None
        ui_hosts: str | None

    @property
    def ui_host_names(self) -> tuple[str, ...]:
        """COORD_UI_HOSTS as names a Host header is compared with (IPv6 in brackets)."""
        return tuple(self.ui_hosts.split(",")) if self.ui_hosts else ()

    @property
    def signing_keys(self) -> list[str]:
        """Keys a worker accepts, the current one first (empty: signing is off)."""
        return [k.get_secret_value() for k in (self.signing_key, self.signing_key_previous)
                if k is not None and k.get_secret_value()]

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat if self.heartbeat is not None else self.lease_ttl / 3.0


@dataclass(frozen=True)
class PlainSettings(Derived):
    """Every setting, as plain values: each field of :class:`Settings
    <coordination.settings.Settings>` (see its descriptions), at its default here."""

    ecosystem: Path = Path("ecosystem.yaml")
    redis_url: str | None = None
    sentinel_password: SecretStr | None = None
    namespace: str = "coord"
    share_namespace: bool = False
    lease_ttl: float = 10.0
    heartbeat: float | None = None
    supervise_interval: float = 1.0
    supervise: bool = True
    sweep_deadline: float = 24 * 3600.0
    lost_after: float = 30.0
    max_lost_runs: int = 3
    unattended_after: float = 30.0
    worker_heartbeat: float = 2.0
    merge_queue_poll: float = 1.0
    retention_days: float = 30.0
    history_days: float = 90.0
    visibility_timeout: float | None = None
    max_catalog_bytes: int = 64 * 1024 * 1024
    embedded_processes: int | None = None
    edit_splice: bool = True
    events_maxlen: int = 100_000
    context_max_keys: int = 1000
    cache_days: float = 7.0
    output_tail_bytes: int = 64 * 1024
    log_max_bytes: int = 4 * 1024 * 1024
    signing_key: SecretStr | None = None
    signing_key_file: Path | None = None
    signing_key_previous: SecretStr | None = None
    accept_unsigned: bool = False
    require_signed: bool = False
    require_approvers: bool = False
    audit_key: SecretStr | None = None
    flower_auth: str | None = None
    ui_auth: str | None = None
    mcp_token: SecretStr | None = None
    approve_key: str | None = None
    ui_users: Path | None = None
    ui_hosts: str | None = None


#: Every setting's default (the defaults of :class:`coordination.settings.Settings`).
DEFAULTS = PlainSettings()


def read_plain(environ: Mapping[str, str] | None = None) -> PlainSettings | None:
    """Every setting without pydantic: where Redis is as the environment says, every other
    setting its default; None when the full settings must read them (the environment
    sets another ``COORD_`` variable, or a core value that
    :func:`~coordination.settings_core.read_core` leaves to them)."""
    core = read_core(environ, alone=True)
    if core is None:
        return None
    return dataclasses.replace(DEFAULTS, ecosystem=core.ecosystem, redis_url=core.redis_url,
                               namespace=core.namespace, share_namespace=core.share_namespace)
