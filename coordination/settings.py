"""Settings, read once from the environment (``COORD_*``).

Bad values fail at start with a message naming the variable.

The environment is read here as pydantic-settings reads it for these fields (it was
this model's base until 0.5): ``COORD_<FIELD>`` in any case (of one name set in two
cases, the one later in the environment wins), an empty value passed on as it is,
every value as text for pydantic to validate; values given to ``Settings(...)`` win
over the environment. Only pydantic itself is imported: pydantic-settings loads
asyncio, ssl, dotenv and its cloud providers, some 30 ms of every command's start.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from coordination.errors import SettingsError
from coordination.redis_url import client_url, url_problem
from coordination.settings_core import ENV_PREFIX, from_environment, namespace_problem
from coordination.settings_defaults import DEFAULTS, Derived

_LABEL = r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?"
_UI_HOST_RE = re.compile(rf"^(\*\.)?{_LABEL}(\.{_LABEL})*$")


#: Set (to 1) by `coord flower --allow-control` for the Flower process it starts.
FLOWER_ALLOW_CONTROL_ENV = "COORD_FLOWER_ALLOW_CONTROL"


def _ui_host(name: str) -> str:
    """One COORD_UI_HOSTS entry: a host name (``*.example.com`` for its subdomains) or an
    IP address, without a port; lowercased, IPv6 bracketed as a Host header has it."""
    name = name.strip().lower()
    try:
        ip = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        if name == "*" or not _UI_HOST_RE.match(name):
            raise ValueError(f"{name!r} is not a host name (no scheme, port or path; "
                             "'*.example.com' for subdomains, never '*')") from None
        return name
    return f"[{ip}]" if ip.version == 6 else str(ip)


class Settings(BaseModel, Derived):
    """All of coord's knobs. Each field is the env var ``COORD_<NAME>``; its default is
    :data:`~coordination.settings_defaults.DEFAULTS`' (what the settings say beyond their
    fields: :class:`~coordination.settings_defaults.Derived`)."""

    # Every number finite: COORD_LEASE_TTL=inf would pass a gt=0 bound (#23). Defaults
    # are validated too, and variables that name no field are no error.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, validate_default=True)

    def __init__(self, **values: Any) -> None:
        """The environment's settings, then ``values`` (by field name), which win."""
        super().__init__(**{**from_environment(type(self).model_fields), **values})

    ecosystem: Path = Field(DEFAULTS.ecosystem,
                            description="Catalog file to use (`coord --file` wins).")
    redis_url: str | None = Field(
        DEFAULTS.redis_url,
        description="Redis URL (broker, backend, leases, events). Unset: embedded mode. "
        "`redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]`, `rediss://...` for TLS, "
        "`unix://[[USER]:PASSWORD@]/path/to/redis.sock[?db=N]` for a unix socket, or "
        "`sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][/DB]?master=NAME` for a "
        "Redis managed by Sentinel. Checked in full at start: a malformed URL exits 2 "
        "naming the variable."
    )
    sentinel_password: SecretStr | None = Field(
        DEFAULTS.sentinel_password,
        description="Password of the sentinels of a sentinel:// COORD_REDIS_URL (their "
        "requirepass; the URL's password is the data nodes')."
    )
    namespace: str = Field(
        DEFAULTS.namespace, description="Prefix of every Redis key and queue name.")
    share_namespace: bool = Field(
        DEFAULTS.share_namespace,
        description="Use the namespace although another catalog (another path or host) "
        "claimed it first: for the same catalog copied to another machine or a container. "
        "Otherwise workers and CLIs of a second catalog refuse it.",
    )
    lease_ttl: float = Field(
        DEFAULTS.lease_ttl, gt=0.5, description="Seconds a repo lease lives without a heartbeat."
    )
    heartbeat: float | None = Field(
        DEFAULTS.heartbeat, gt=0,
        description="Seconds between lease renewals (default lease_ttl/3)."
    )
    supervise_interval: float = Field(
        DEFAULTS.supervise_interval, gt=0,
        description="Seconds between two supervisor passes over running sweeps."
    )
    supervise: bool = Field(
        DEFAULTS.supervise,
        description="Whether a worker runs the supervision passes (its supervisor thread). "
        "0 for a worker under a per-repo ACL user (`coord acl`), which may not touch other "
        "repos' queues and keys: the passes are then made by processes under the "
        "coord-supervisor user.",
    )
    sweep_deadline: float = Field(
        DEFAULTS.sweep_deadline, gt=0, description="Upper bound in seconds on any sweep's run time."
    )
    lost_after: float = Field(
        DEFAULTS.lost_after, gt=0,
        description="Seconds after which a queued todo whose message no live worker holds "
        "and that is not in its queue is sent again.",
    )
    max_lost_runs: int = Field(
        DEFAULTS.max_lost_runs, ge=1,
        description="Runs of one todo lost to a dying worker before the todo ends failed "
        "(a poison todo).",
    )
    unattended_after: float = Field(
        DEFAULTS.unattended_after, gt=0,
        description="Seconds a running sweep may have queued todos of a repo no live worker "
        "serves before it says so (a repo.unattended event, shown by watch).",
    )
    worker_heartbeat: float = Field(
        DEFAULTS.worker_heartbeat, gt=0,
        description="Seconds between a worker's liveness beats; a running todo's worker "
        "silent for two beats is shown as gone, and after three it leaves `coord workers`.",
    )
    merge_queue_poll: float = Field(
        DEFAULTS.merge_queue_poll, gt=0,
        description="Seconds a landing waits before it first asks a forge's merge queue "
        "(or merge train) about a pull request it added; each wait after is twice the one "
        "before, up to 15 times this. Shorter answers sooner and asks the forge more often "
        "(the test suite sets 0.1).",
    )
    retention_days: float = Field(
        DEFAULTS.retention_days, gt=0,
        description="Days a finished sweep's record, checkpoints and events are kept in Redis.",
    )
    history_days: float = Field(
        DEFAULTS.history_days, gt=0,
        description="Days the history of ended sweeps (coord history) is kept; older runs "
        "are trimmed as new ones are recorded.",
    )
    visibility_timeout: float | None = Field(
        DEFAULTS.visibility_timeout, gt=0,
        description="When set, kombu's ack emulation is on and the broker hands an "
        "unacknowledged message out again after this many seconds; unset (the default), "
        "coord's supervisor alone re-sends what a dead worker held.",
    )
    max_catalog_bytes: int = Field(
        DEFAULTS.max_catalog_bytes, ge=1024,
        description="Largest catalog file coord reads (bytes); a bigger file is refused.",
    )
    embedded_processes: int | None = Field(
        DEFAULTS.embedded_processes, ge=0, le=1024,
        description="Embedded mode: worker processes forked by the coord process that runs "
        "a sweep (at most one per repo); unset: one per core on Linux, 0 elsewhere; 0: "
        "worker threads inside that process.",
    )
    edit_splice: bool = Field(
        DEFAULTS.edit_splice,
        description="Edits rewrite only the catalog items they touch (fast on big "
        "catalogs); 0 forces a full round trip of the file.",
    )
    events_maxlen: int = Field(
        DEFAULTS.events_maxlen, gt=100, description="Cap of the global event stream.")
    context_max_keys: int = Field(
        DEFAULTS.context_max_keys, ge=1, le=10_000_000,
        description="Keys a shared-context scope (a sweep's, a plan's: coord context) holds; "
        "setting one more evicts the least recently used.",
    )
    cache_days: float = Field(
        DEFAULTS.cache_days, gt=0,
        description="Days a successful run stays reusable by a todo with `cache:` (and what "
        "`coord why` compares a miss with); each run stored again starts its days afresh.",
    )
    output_tail_bytes: int = Field(
        DEFAULTS.output_tail_bytes, ge=1024,
        description="Bytes of each of stdout/stderr kept per todo."
    )
    log_max_bytes: int = Field(
        DEFAULTS.log_max_bytes, ge=1024,
        description="Bytes of a todo's output kept per attempt for `coord logs` (stdout and "
        "stderr together; the first ones: the log then says where it was cut). Default 4 MiB."
    )
    signing_key: SecretStr | None = Field(
        DEFAULTS.signing_key,
        description="When set, the CLI signs every sweep spec and workers refuse specs not "
        "signed with it (or with COORD_SIGNING_KEY_PREVIOUS).",
    )
    signing_key_file: Path | None = Field(
        DEFAULTS.signing_key_file,
        description="A file holding the signing key (read once at start; one line, "
        "surrounding whitespace dropped): the way to give coord's processes the key "
        "without it sitting in their environment. Readable by coord's user only; not "
        "with COORD_SIGNING_KEY too.",
    )
    signing_key_previous: SecretStr | None = Field(
        DEFAULTS.signing_key_previous,
        description="A retired signing key workers still accept during a rotation."
    )
    accept_unsigned: bool = Field(
        DEFAULTS.accept_unsigned,
        description="A worker without COORD_SIGNING_KEY runs signed sweep specs it cannot "
        "check (by default it refuses them: 'spec signed but this worker has no key').",
    )
    require_signed: bool = Field(
        DEFAULTS.require_signed,
        description="Workers refuse unsigned sweep specs, key or no key (with a key they "
        "always do); wins over COORD_ACCEPT_UNSIGNED.",
    )
    require_approvers: bool = Field(
        DEFAULTS.require_approvers,
        description="Refuse to start a sweep with a gate that names `from:` or needs more "
        "than one approval while the catalog has no `approvers:` (whose approvals would be "
        "self-declared names).",
    )
    audit_key: SecretStr | None = Field(
        DEFAULTS.audit_key,
        description="When set, each catalog edit's audit entry is chained by HMAC-SHA256 "
        "under this key instead of plain sha256, so entries forged with recomputed hashes "
        "fail `coord audit --verify` (which then needs the key too).",
    )
    flower_auth: str | None = Field(
        DEFAULTS.flower_auth,
        description="user:password for Flower's basic auth (required off localhost)."
    )
    ui_auth: str | None = Field(
        DEFAULTS.ui_auth,
        description="user:password for `coord ui`'s basic auth (required off localhost)."
    )
    mcp_token: SecretStr | None = Field(
        DEFAULTS.mcp_token,
        description="The bearer token `coord mcp --http` requires of every request "
        "(it refuses to start without one)."
    )
    approve_key: str | None = Field(
        DEFAULTS.approve_key,
        description="The SSH key `coord approve` signs approvals with when the "
        "catalog sets approvers: (a private key, or a .pub whose private key ssh-agent "
        "holds); unset: the ssh-agent's key.",
    )
    ui_users: Path | None = Field(
        DEFAULTS.ui_users, description="A file of user:password lines: more `coord ui` users (each "
        "approves gates as itself), besides COORD_UI_AUTH's.",
    )
    ui_hosts: str | None = Field(
        DEFAULTS.ui_hosts,
        description="Host names (comma-separated) `coord ui` answers besides localhost; a "
        "request naming any other Host is refused (DNS rebinding).",
    )

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, v: str) -> str:
        problem = namespace_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("redis_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        # Scheme, port, db and query checked in full; the message never shows a password.
        problem = url_problem(v)
        if problem:
            raise ValueError(problem)
        return client_url(v)  # ssl_cert_reqs=CERT_REQUIRED -> required (redis-py's spelling)

    @model_validator(mode="after")
    def _key_from_file(self) -> Settings:
        # COORD_SIGNING_KEY_FILE: the key read once, now; never both ways at once
        if self.signing_key_file is None:
            return self
        if self.signing_key is not None:
            raise ValueError("COORD_SIGNING_KEY and COORD_SIGNING_KEY_FILE are both set: "
                             "give the key one way (unset COORD_SIGNING_KEY)")
        key = read_key_file(self.signing_key_file)
        self.signing_key = SecretStr(key)
        return self

    @field_validator("ui_hosts")
    @classmethod
    def _check_ui_hosts(cls, v: str | None) -> str | None:
        names = [_ui_host(n) for n in (v or "").split(",") if n.strip()]
        return ",".join(names) or None


def read_key_file(path: Path) -> str:
    """The signing key in the file at ``path`` (COORD_SIGNING_KEY_FILE): its text without
    surrounding whitespace; ValueError naming what is wrong (never the key)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"COORD_SIGNING_KEY_FILE: cannot read {path}: {reason}") from None
    key = text.strip()
    if not key:
        raise ValueError(f"COORD_SIGNING_KEY_FILE: {path} is empty: put the key in it")
    if "\n" in key:
        raise ValueError(f"COORD_SIGNING_KEY_FILE: {path} holds more than one line: "
                         "the key is one line")
    return key


def load_settings() -> Settings:
    """Read the settings from the environment, with errors naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        msgs = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if not err["loc"]:  # a check of several settings: its message names them
                msgs.append(msg)
                continue
            name = "COORD_" + "_".join(str(p) for p in err["loc"]).upper()
            msgs.append(f"{name}: {msg}")
        raise SettingsError(
            "bad setting: " + "; ".join(msgs),
            hint="fix or unset the variable; see the docs' settings reference",
        ) from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
