"""Start-up check of ``COORD_REDIS_URL``: fail fast, name the problem, never show a password.

Celery retries a broker it cannot reach forever, which is right once a worker
has started (a Redis restart must not end it) and wrong at start: a wrong
password or a ``rediss://`` URL aimed at a plain server never heals. So
``coord worker`` calls :func:`check_redis` before it builds its Celery app: a
short PING with short socket timeouts, retried for a few seconds only while the
failure could be transient (nothing listening yet, a timeout, a server still
loading its data), then :class:`~coordination.errors.RedisUnreachable` (exit 1)
with what is wrong:

- nothing listening at host:port (connection refused)
- wrong password or user (``WRONGPASS``), password required (``NOAUTH``)
- TLS handshake failed; ``rediss://`` to a plain server says so, and so does
  plain ``redis://`` to a TLS-only port; an unverifiable certificate names the
  ``ssl_ca_certs`` option
- the host name does not resolve (DNS), no answer in time (timeout)

A TLS file named in the URL that cannot be read is bad input (exit 2). The CLI
maps a Redis error escaping any command through :func:`unreachable`, so it says
the same things. Every message goes through :func:`redact_url` / ``scrub``.

Redis ACL: :data:`ACL_COMMANDS` lists the commands each part of coord runs (the
README's "Redis ACL" shows them as ``ACL SETUSER`` lines, :func:`acl_setuser`).
A starting worker then runs each of its commands once on scratch keys
(:func:`check_permissions`), so a user missing one is refused at start, the
command named, rather than killed later by a traceback from Celery's loop; a
CLI names the command it was refused (:func:`diagnose`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import socket
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis import exceptions as rexc
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError

from coordination.connection.sentinel import sentinel_master
from coordination.errors import RedisUnreachable, SettingsError
from coordination.keys import Keys
from coordination.redis_url import (
    TLS_FILE_PARAMS,
    endpoint,
    is_sentinel,
    is_tls,
    query_params,
    redact_url,
    scrub,
    sentinel_target,
    url_password,
)
from coordination.settings import Settings, get_settings

__all__ = ["ACL_COMMANDS", "ACL_OBSERVER", "ACL_PERSON_PREFIX", "ACL_SUPERVISOR",
           "ACL_WORKER_PREFIX", "DEFAULT_TIMEOUT", "Diagnosis", "acl_rules", "acl_setuser",
           "check_permissions", "check_redis", "denied_commands", "diagnose", "is_coord_acl_user",
           "redact_url",
           "unreachable"]

# Whole check, retries included; well inside the 10 s a failing `coord worker` may take.
DEFAULT_TIMEOUT = 4.0
ATTEMPT_TIMEOUT = 1.5  # each socket operation of one try: connect, TLS handshake, AUTH, PING
RETRY_PAUSE = 0.25
PROBE_TIMEOUT = 0.5  # the second look that tells TLS from plain

HINT_URL = "fix COORD_REDIS_URL (unset it to run embedded); see the docs' settings reference"
HINT_ACL = "docs/how-to/acl.md lists what a worker, a CLI and the web view need"


@dataclass(frozen=True)
class Diagnosis:
    problem: str
    hint: str
    transient: bool  # worth another try within the start-up budget
    refused: bool = False  # Redis answered, and refused a command (an ACL): not unreachable


def _message(url: str, d: Diagnosis) -> str:
    if d.refused:
        return f"Redis at {redact_url(url)} refused a command: {d.problem}"
    return f"cannot reach Redis at {redact_url(url)}: {d.problem}"


# -- Redis ACL: what each part of coord runs ------------------------------------------------
#: The web view and every reading command: reads only.
ACL_READ = ("ping", "get", "mget", "exists", "pttl", "hget", "hmget", "hgetall", "hexists",
            "llen", "lrange", "smembers", "zcard", "zscore", "zrange", "zrevrange",
            "zrangebyscore", "zrevrangebyscore", "zlexcount", "xrange", "xrevrange", "xread")
#: What a CLI adds: starting, steering and waiting on sweeps (a waiting CLI supervises
#: them too), through coord's scripts and Celery's sending side. ``scan``: opening a
#: runtime on a namespace coord 0.1 recorded finds its checkpoint hashes, once.
ACL_WRITE = ("set", "getdel", "incr", "del", "expire", "pexpire", "persist", "hset",
             "hsetnx", "hdel", "hincrby", "lpush", "ltrim", "sadd", "srem", "zadd", "zrem",
             "zremrangebyscore", "xadd", "xtrim", "publish", "eval", "evalsha",
             "script|load", "script|exists", "multi", "exec", "time", "blpop", "scan")
#: What a worker adds: consuming its queues, and Celery's remote control (Flower).
#: ``watch``/``unwatch``/``rpush``: kombu's redelivery, with COORD_VISIBILITY_TIMEOUT.
ACL_CONSUME = ("brpop", "rpop", "rpush", "watch", "unwatch", "psubscribe", "punsubscribe")
#: What a worker adds with a sentinel:// URL: a start, renewal and finish wait for every
#: replica online (``WAIT``; ``INFO replication`` counts them).
ACL_SENTINEL = ("wait", "info")
#: Welcome, not needed: without them a worker's warm shutdown waits up to a second for
#: its BRPOP to time out instead of ending it (CLIENT UNBLOCK).
ACL_OPTIONAL = ("client|id", "client|unblock")
ACL_COMMANDS: dict[str, tuple[str, ...]] = {
    "ui": ACL_READ,
    "cli": ACL_READ + ACL_WRITE,
    "worker": ACL_READ + ACL_WRITE + ACL_CONSUME,
}
ROLE_NAMES = {"ui": "the web view", "cli": "a CLI", "worker": "a worker"}


def url_db(url: str) -> int:
    """The database number a validated ``COORD_REDIS_URL`` selects."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return int(parse_qs(parts.query).get("db", ["0"])[0])
    return int(parts.path.strip("/") or 0)


def acl_rules(role: str, namespace: str = "coord", db: int = 0) -> list[str]:
    """The ACL rules (``ACL SETUSER`` arguments after the password) ``role`` needs:
    its keys (read-only for the web view), its channels, its commands."""
    keys = Keys(namespace)
    rules = ["resetkeys", "resetchannels", "-@all"]
    if role == "ui":
        rules.append(f"%R~{namespace}:*")
    else:
        rules += [f"~{namespace}:*", f"&{namespace}:*"]
    if role == "worker":
        rules.append("&" + keys.pidbox_channel(db))
    commands = ACL_COMMANDS[role] + (("select",) if db else ())
    return rules + [f"+{c}" for c in commands]


def acl_setuser(role: str, user: str, namespace: str = "coord", db: int = 0,
                width: int = 88) -> str:
    """``redis-cli ACL SETUSER ...`` for ``role``, wrapped as shell lines (the README's)."""
    words = ["redis-cli", "ACL", "SETUSER", user, "on", "'>PASSWORD'"]
    # quoted for a shell: ~ & % at the start, | (a subcommand) anywhere
    words += [f"'{r}'" if r[0] in "~&%" or "|" in r else r
              for r in acl_rules(role, namespace, db)]
    lines, line = [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width - 2:
            lines.append(line + " \\")
            line = "  " + w
        else:
            line = f"{line} {w}" if line else w
    return "\n".join([*lines, line])


_PROBE_SCRIPT = "return 1"


def _probes(keys: Keys, token: str, db: int) -> dict[str, tuple[str | int | float, ...]]:
    """One harmless call of every command coord needs, on scratch keys (ACL checks a
    command before running it, so a denied one answers NOPERM whatever its keys hold)."""
    def k(kind: str) -> str:
        return keys.acl_probe(token, kind)

    s, h, lst, st, z, x = k("s"), k("h"), k("l"), k("set"), k("z"), k("x")
    sha = hashlib.sha1(_PROBE_SCRIPT.encode()).hexdigest()
    probes: dict[str, tuple[str | int | float, ...]] = {
        "ping": ("PING",),
        "select": ("SELECT", db),
        "set": ("SET", s, "1", "PX", 60000), "get": ("GET", s), "mget": ("MGET", s),
        "exists": ("EXISTS", s), "pttl": ("PTTL", s), "expire": ("EXPIRE", s, 60),
        "pexpire": ("PEXPIRE", s, 60000), "persist": ("PERSIST", s),
        "getdel": ("GETDEL", s), "incr": ("INCR", s),
        "hset": ("HSET", h, "f", 1), "hsetnx": ("HSETNX", h, "g", 1), "hget": ("HGET", h, "f"),
        "hmget": ("HMGET", h, "f"), "hgetall": ("HGETALL", h), "hincrby": ("HINCRBY", h, "f", 1),
        "hdel": ("HDEL", h, "f"),
        "lpush": ("LPUSH", lst, "x", "y", "z"), "rpush": ("RPUSH", lst, "x"),
        "llen": ("LLEN", lst), "lrange": ("LRANGE", lst, 0, 0), "ltrim": ("LTRIM", lst, 0, 9),
        "rpop": ("RPOP", lst), "brpop": ("BRPOP", lst, 0.01), "blpop": ("BLPOP", lst, 0.01),
        "sadd": ("SADD", st, "x"), "smembers": ("SMEMBERS", st), "srem": ("SREM", st, "x"),
        "zadd": ("ZADD", z, 1, "x"), "zcard": ("ZCARD", z), "zrange": ("ZRANGE", z, 0, 0),
        "zrevrange": ("ZREVRANGE", z, 0, 0),
        "zrangebyscore": ("ZRANGEBYSCORE", z, "-inf", "+inf"),
        "zrevrangebyscore": ("ZREVRANGEBYSCORE", z, "+inf", "-inf"),
        "zlexcount": ("ZLEXCOUNT", z, "-", "+"), "zrem": ("ZREM", z, "x"),
        "zremrangebyscore": ("ZREMRANGEBYSCORE", z, 1, 0),
        "xadd": ("XADD", x, "MAXLEN", 10, "*", "f", "v"), "xtrim": ("XTRIM", x, "MAXLEN", 10),
        "xrange": ("XRANGE", x, "-", "+", "COUNT", 1),
        "xrevrange": ("XREVRANGE", x, "+", "-", "COUNT", 1),
        "xread": ("XREAD", "COUNT", 1, "STREAMS", x, "0-0"),
        "publish": ("PUBLISH", k("channel"), "probe"),
        "eval": ("EVAL", _PROBE_SCRIPT, 0), "evalsha": ("EVALSHA", sha, 0),
        "script|load": ("SCRIPT", "LOAD", _PROBE_SCRIPT),
        "script|exists": ("SCRIPT", "EXISTS", sha),
        "time": ("TIME",), "scan": ("SCAN", 0, "MATCH", k("*"), "COUNT", 10),
        "wait": ("WAIT", 0, 1), "info": ("INFO", "replication"),
        "watch": ("WATCH", s), "unwatch": ("UNWATCH",),
        "client|id": ("CLIENT", "ID"),
        # Last: a refused EXEC would leave the connection in MULTI (it is dropped after).
        "multi": ("MULTI",), "exec": ("EXEC",),
        "del": ("DEL", s, h, lst, st, z, x),
    }
    return probes


class _Connection(Protocol):
    """What a probe uses of a redis-py connection (untyped there)."""

    def pack_commands(self, commands: Sequence[tuple[str | int | float, ...]]) -> object: ...

    def send_packed_command(self, command: object) -> None: ...

    def send_command(self, *args: object) -> None: ...

    def read_response(self) -> object: ...

    def disconnect(self) -> None: ...


def _connection(r: redis.Redis) -> _Connection:
    """A new connection of ``r``'s pool, not from it: a probe leaves it in odd states."""
    conn = r.connection_pool.make_connection()
    # Connected here: a sentinel-managed connection learns the master's address in
    # connect(), which redis-py's send_packed_command does not call.
    conn.connect()  # type: ignore[no-untyped-call]
    return cast(_Connection, conn)


#: Commands a probe does not run: no harmless call (``client|unblock`` needs another
#: client), or the probe runs them apart (``psubscribe``/``punsubscribe``).
_NOT_PROBED = frozenset({"client|unblock", "psubscribe", "punsubscribe"})


def denied_commands(r: redis.Redis, namespace: str, commands: Iterable[str],
                    *, db: int = 0, channel_pattern: str | None = None) -> list[str]:
    """Which of ``commands`` (lower case, ``container|sub`` for subcommands) the user of
    ``r`` may not run, each tried once on scratch keys of ``namespace`` in one round trip
    over one connection (dropped after). ``keys`` or ``channels`` in the result: a key
    or channel of the namespace is out of the user's patterns. ``channel_pattern``: a
    PSUBSCRIBE to try too (Celery's remote control)."""
    keys = Keys(namespace)
    wanted = set(commands)
    table = _probes(keys, secrets.token_hex(6), db)
    order = [c for c in table if c in wanted and c not in _NOT_PROBED]
    if "del" not in order:
        order.append("del")  # clean up (when allowed)
    denied: list[str] = []
    conn = _connection(r)
    try:
        conn.send_packed_command(conn.pack_commands([table[c] for c in order]))
        for name in order:
            try:
                conn.read_response()
            except rexc.NoPermissionError as exc:
                if name in wanted:
                    denied.append(_denied_what(str(exc)) or name)
            except rexc.ResponseError:
                pass  # WRONGTYPE, NOSCRIPT, EXEC without MULTI...: allowed, just odd here
    finally:
        conn.disconnect()
    if channel_pattern is not None and wanted & {"psubscribe", "punsubscribe"}:
        denied += _denied_pattern(r, channel_pattern)
    return list(dict.fromkeys(denied))


def _denied_pattern(r: redis.Redis, pattern: str, timeout: float = ATTEMPT_TIMEOUT
                    ) -> list[str]:
    """A PSUBSCRIBE to ``pattern`` refused: ``psubscribe``, or ``channel PATTERN``."""
    sub = r.pubsub()  # type: ignore[no-untyped-call]
    try:
        sub.psubscribe(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # the confirmation, or the refusal
            if sub.get_message(timeout=max(0.0, deadline - time.monotonic())) is not None:
                break
        sub.punsubscribe(pattern)
    except rexc.NoPermissionError as exc:
        what = _denied_what(str(exc)) or "psubscribe"
        return [f"channel {pattern}" if what == "channels" else what]
    finally:
        sub.close()
    return []


_RUN = re.compile(r"permissions? to run the '([^']+)' command")


def _denied_what(text: str) -> str | None:
    """The command (``xadd``, ``client|id``), or ``keys``/``channels``, a NOPERM names."""
    m = _RUN.search(text)
    if m:
        return m.group(1).lower()
    low = text.lower()
    if "access one of the keys" in low or "no permissions to access a key" in low:
        return "keys"
    if "channel" in low:
        return "channels"
    return None


def _refusal(denied: Sequence[str], user: str, ep: str, namespace: str,
             role: str | None = None) -> Diagnosis:
    """What a user may not do, in words, with the ACL SETUSER that grants it."""
    who = f"user {user!r}" if user else "the default user"
    commands = [d for d in denied if d not in ("keys", "channels")
                and not d.startswith("channel ")]
    parts, grant = [], []
    if commands:
        parts.append(f"may not run {', '.join(c.upper() for c in commands)}")
        grant += [f"+{c}" for c in commands]
    if "keys" in denied:
        parts.append(f"may not use the keys {namespace}:*")
        grant.append(f"'{'%R' if role == 'ui' else ''}~{namespace}:*'")
    for d in denied:
        if d == "channels" or d.startswith("channel "):
            channel = d.removeprefix("channel ") if d != "channels" else f"{namespace}:*"
            parts.append(f"may not use the channel {channel}")
            grant.append(f"'&{channel}'")
    what = f" (what {ROLE_NAMES[role]} needs)" if role else ""
    hint = f"grant it: ACL SETUSER {user or 'default'} {' '.join(grant)}; {HINT_ACL}"
    if is_coord_acl_user(user):
        # (a grant of the whole namespace would undo what that user is for)
        hint = (f"{user} is a user `coord acl` writes, which keeps it to its own share of "
                f"{namespace}: write it again with this coord (coord acl --apply), or run "
                "this command as a user that may (coord-supervisor); do not grant "
                f"'~{namespace}:*', which would undo its isolation")
    return Diagnosis(f"{who} {' and '.join(parts)} on {ep}{what} (NOPERM)", hint, False,
                     refused=True)


#: The users ``coord acl`` writes (:mod:`coordination.runtime.acl`): the roles', and by
#: prefix a repo's workers' and a person's.
ACL_SUPERVISOR = "coord-supervisor"
ACL_OBSERVER = "coord-observer"
ACL_WORKER_PREFIX = "coord-worker-"
ACL_PERSON_PREFIX = "coord-person-"


def is_coord_acl_user(user: str) -> bool:
    """Whether ``user`` is one ``coord acl`` writes (and may rotate)."""
    return user in (ACL_SUPERVISOR, ACL_OBSERVER) or any(
        user.startswith(p) and len(user) > len(p) for p in (ACL_WORKER_PREFIX, ACL_PERSON_PREFIX))


def check_permissions(settings: Settings, role: str = "worker",
                      timeout: float = DEFAULT_TIMEOUT) -> None:
    """Raise :class:`RedisUnreachable` naming every command, key or channel pattern
    ``role`` needs and the URL's user may not use (see :func:`denied_commands`)."""
    url = settings.redis_url
    if not url:
        return
    db = url_db(url)
    client = one_shot_client(url, timeout)
    try:
        commands = ACL_COMMANDS[role] + (("select",) if db else ())
        if role == "worker" and is_sentinel(url):
            commands += ACL_SENTINEL
        pattern = Keys(settings.namespace).pidbox_channel(db) if role == "worker" else None
        denied = denied_commands(client, settings.namespace, commands, db=db,
                                 channel_pattern=pattern)
    except Exception as exc:  # noqa: BLE001 - reached a moment ago; say what went wrong
        d = diagnose(exc, url, waited=timeout)
        raise RedisUnreachable(_message(url, d), hint=d.hint) from None
    finally:
        client.close()
    if denied:
        user = unquote(urlsplit(url).username or "")
        d = _refusal(denied, user, endpoint(url), settings.namespace, role)
        raise RedisUnreachable(_message(url, d), hint=d.hint)


def check_redis(settings: Settings, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Return once the configured Redis answers PING; else raise within ~``timeout`` s.

    Raises :class:`SettingsError` (exit 2) for a TLS file that cannot be read
    and :class:`RedisUnreachable` (exit 1) for everything else. Embedded mode
    has nothing to check.
    """
    url = settings.redis_url
    if not url:
        return
    check_tls_files(url)
    deadline = time.monotonic() + timeout
    while True:
        per_try = min(ATTEMPT_TIMEOUT, max(0.2, deadline - time.monotonic()))
        try:
            ping(url, per_try)
            return
        except Exception as exc:  # anything a connect can raise: redis, socket, ssl errors
            probe = min(PROBE_TIMEOUT, max(0.1, deadline - time.monotonic()))
            d = diagnose(exc, url, waited=timeout, probe_timeout=probe)
            if not d.transient or time.monotonic() + RETRY_PAUSE + 0.2 >= deadline:
                raise RedisUnreachable(_message(url, d), hint=d.hint) from None
            time.sleep(RETRY_PAUSE)


def ping(url: str, timeout: float) -> None:
    """One connection (TLS and AUTH as the URL says), one PING, closed again; no retries."""
    client = one_shot_client(url, timeout)
    try:
        client.ping()
    finally:
        client.close()


def one_shot_client(url: str, timeout: float) -> redis.Redis:
    """A client of ``url`` that tries each command once (a sentinel:// URL: of the
    master its sentinels name now)."""
    opts = {"socket_connect_timeout": timeout, "socket_timeout": timeout,
            "retry": Retry(NoBackoff(), 0), "health_check_interval": 0}
    if is_sentinel(url):
        return sentinel_master(url, **opts)
    return redis.Redis.from_url(url, **opts)


def check_tls_files(url: str) -> None:
    """Every ssl_ca_certs/ssl_certfile/ssl_keyfile in a rediss:// URL is a readable file."""
    if not is_tls(url):
        return
    params = query_params(url)
    for name in TLS_FILE_PARAMS:
        path = params.get(name)
        if not path:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise SettingsError(
                f"bad setting: COORD_REDIS_URL: {name} file {path}: {exc.strerror or exc}",
                hint="give a readable PEM file; see the docs' settings reference",
            ) from None


def unreachable(exc: BaseException, url: str | None) -> RedisUnreachable:
    """The CLI's error for a Redis or broker exception that escaped a command."""
    if not url:
        return RedisUnreachable(f"cannot reach Redis: {scrub(str(exc), url)}", hint=HINT_URL)
    d = diagnose(exc, url, waited=None, namespace=_namespace())
    return RedisUnreachable(_message(url, d), hint=d.hint)


def _namespace() -> str | None:
    """The configured namespace, for a message (None if the settings are unreadable)."""
    try:
        return get_settings().namespace
    except SettingsError:
        return None


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _host_port(url: str) -> tuple[str, int]:
    if is_sentinel(url):
        return sentinel_target(url).sentinels[0]
    parts = urlsplit(url)
    return unquote(parts.hostname or "localhost"), parts.port or 6379


@dataclass(frozen=True)
class _Failure:
    """An exception raised connecting to ``url``, read once: its chain (causes and
    contexts), their text (password scrubbed) and the Redis error codes in it."""

    url: str
    chain: tuple[BaseException, ...]
    text: str
    codes: frozenset[object]

    @classmethod
    def of(cls, exc: BaseException, url: str) -> _Failure:
        chain = tuple(_chain(exc))
        text = scrub(" | ".join(f"{type(e).__name__}: {e}" for e in chain), url)
        return cls(url, chain, text, frozenset(getattr(e, "status_code", None) for e in chain))

    @property
    def low(self) -> str:
        return self.text.lower()

    @property
    def ep(self) -> str:
        return endpoint(self.url)

    def first(self, *types: type[BaseException]) -> BaseException | None:
        return next((e for e in self.chain if isinstance(e, types)), None)

    def says(self, *phrases: str) -> bool:
        return any(p in self.low for p in phrases)

    @property
    def timed_out(self) -> bool:
        return (self.first(TimeoutError, socket.timeout, rexc.TimeoutError) is not None
                or self.says("timed out", "timeout"))


def diagnose(
    exc: BaseException, url: str, *, waited: float | None = None,
    probe_timeout: float = PROBE_TIMEOUT, namespace: str | None = None,
) -> Diagnosis:
    """What ``exc`` (raised connecting to ``url``) means, in words a user can act on.

    May take a second look at the server (a plain PING, or a bare TLS
    handshake, at most ``probe_timeout`` s) to tell a TLS mismatch from a
    server that is simply slow or gone.
    """
    f = _Failure.of(exc, url)
    not_found = f.first(MasterNotFoundError)
    if not_found is not None and is_sentinel(url):
        return _sentinel_diagnosis(scrub(str(not_found), url), url)
    return (_credentials_diagnosis(f, namespace) or _tls_diagnosis(f, probe_timeout)
            or _reach_diagnosis(f, waited, probe_timeout))


def _credentials_diagnosis(f: _Failure, namespace: str | None) -> Diagnosis | None:
    """A password missing or refused, or an ACL refusing a command (NOPERM)."""
    user = unquote(urlsplit(f.url).username or "")  # unix://USER:PASSWORD@/path too
    noauth = "NOAUTH" in f.codes or f.says(
        "authentication required", "must be called with the client already authenticated")
    wrongpass = "WRONGPASS" in f.codes or f.says("invalid username-password pair",
                                                 "invalid password")
    if noauth and not wrongpass:
        if url_password(f.url) is not None:
            return Diagnosis(f"{f.ep} says authentication is required (NOAUTH) although the "
                             "URL gives a password", HINT_URL, False)
        return Diagnosis(
            f"{f.ep} requires a password and COORD_REDIS_URL gives none (NOAUTH: password "
            "required)",
            "put it in the URL: redis://:PASSWORD@HOST:PORT/DB, or redis://USER:PASSWORD@... for "
            "an ACL user (percent-encode @ : / # in it)", False)
    if wrongpass or f.first(rexc.AuthenticationError):
        who = f"user {user!r}" if user else "the default user"
        return Diagnosis(
            f"{f.ep} refused the credentials: wrong password for {who}, or the user does not "
            "exist or is disabled (WRONGPASS)",
            "fix the user name or password in COORD_REDIS_URL", False)
    noperm = f.first(rexc.NoPermissionError)
    if noperm is not None or "NOPERM" in f.codes:
        what = _denied_what(str(noperm or f.text)) or "ping"
        return _refusal([what], user, f.ep, namespace or "coord")
    return None


def _tls_diagnosis(f: _Failure, probe_timeout: float) -> Diagnosis | None:
    """A certificate that does not verify, a failed handshake, or TLS asked of a plain
    server (which answers a second look in plain Redis)."""
    ep, tls = f.ep, is_tls(f.url)
    verify = f.first(ssl.SSLCertVerificationError)
    if verify is not None:
        reason = getattr(verify, "verify_message", None) or str(verify)
        if "mismatch" in str(reason).lower():
            return Diagnosis(
                f"the TLS certificate of {ep} does not name that host ({reason})",
                "connect by a name or address the certificate lists, or add "
                "ssl_check_hostname=false to COORD_REDIS_URL", False)
        return Diagnosis(
            f"the TLS certificate of {ep} could not be verified ({reason})",
            "name the CA that signed it: rediss://HOST:PORT/DB?ssl_ca_certs=/path/to/ca.pem "
            "(ssl_cert_reqs=none skips verification: insecure)", False)
    ssl_err = f.first(ssl.SSLError)
    if tls and ssl_err is not None:
        reason = getattr(ssl_err, "reason", None) or str(ssl_err)
        if "certificate_required" in str(reason).lower() or f.says("certificate required"):
            return Diagnosis(f"{ep} requires a client certificate (TLS handshake refused)",
                             "add ssl_certfile=/path/client.pem&ssl_keyfile=/path/client.key "
                             "to COORD_REDIS_URL", False)
        plain = " (it answers plain Redis)" if _speaks_plain_redis(f.url, probe_timeout) else ""
        return Diagnosis(f"TLS handshake with {ep} failed ({reason}){plain}",
                         "is the server TLS-enabled? use redis:// for a plain server", False)
    if tls and f.timed_out and _speaks_plain_redis(f.url, probe_timeout):
        return Diagnosis(
            f"TLS handshake with {ep} failed: it answers plain Redis, not TLS",
            "is the server TLS-enabled? use redis:// for a plain server", False)
    return None


def _reach_diagnosis(f: _Failure, waited: float | None, probe_timeout: float) -> Diagnosis:
    """Reaching the host: DNS, nothing listening, plain Redis asked of a TLS-only port, a
    server still loading or not speaking Redis, a timeout; else the error as it is."""
    ep, url = f.ep, f.url
    unix = url.startswith("unix://")
    dns = f.first(socket.gaierror)
    if dns is not None or f.says("name or service not known", "nodename nor servname"):
        host = _host_port(url)[0]
        why = getattr(dns, "strerror", None) or "name or service not known"
        transient = isinstance(dns, socket.gaierror) and dns.errno == socket.EAI_AGAIN
        return Diagnosis(f"cannot resolve host {host!r} (DNS: {why})",
                         "check the host name in COORD_REDIS_URL", transient)
    missing = f.first(FileNotFoundError)
    if missing is not None:
        if unix:
            return Diagnosis(f"nothing is listening at {ep} (no such file)",
                             "start redis-server with that unixsocket, or fix the path in "
                             "COORD_REDIS_URL", True)
        return Diagnosis(f"a file named in COORD_REDIS_URL does not exist ({missing})",
                         HINT_URL, False)
    if f.first(ConnectionRefusedError) is not None or f.says("connection refused"):
        return Diagnosis(f"nothing is listening at {ep} (connection refused)",
                         "start redis-server there, or fix the host/port in COORD_REDIS_URL "
                         "(unset it to run embedded)", True)
    if f.first(PermissionError) is not None:
        return Diagnosis(f"permission denied connecting to {ep}", HINT_URL, False)
    closed = (f.first(ConnectionResetError, BrokenPipeError, rexc.InvalidResponse) is not None
              or f.says("connection closed by server", "connection reset"))
    if (not is_tls(url) and not unix and (closed or f.timed_out)
            and _speaks_tls(url, probe_timeout)):
        return Diagnosis(
            f"{ep} speaks TLS only, and the URL asks for plain redis://",
            "use rediss://HOST:PORT/DB (with ssl_ca_certs=/path/to/ca.pem for a private CA)",
            False)
    return _server_diagnosis(f, waited, closed)


def _server_diagnosis(f: _Failure, waited: float | None, closed: bool) -> Diagnosis:
    """A server reached that could not answer: loading, not Redis, slow, hung up."""
    ep = f.ep
    if f.first(rexc.BusyLoadingError) is not None:
        return Diagnosis(f"{ep} is still loading its data (LOADING)", "wait, then start again",
                         True)
    if f.first(rexc.InvalidResponse) is not None:
        return Diagnosis(f"{ep} does not speak the Redis protocol ({f.text})",
                         "check the host and port in COORD_REDIS_URL", False)
    if f.timed_out:
        within = f" within {waited:g} s" if waited else ""
        return Diagnosis(
            f"no answer from {ep}{within} (timeout): a firewall dropping packets, a wrong host or "
            "port, or a server too busy to answer", HINT_URL, True)
    if closed:
        return Diagnosis(f"{ep} closed the connection ({f.text})", HINT_URL, True)
    transient = f.first(OSError, rexc.ConnectionError) is not None
    return Diagnosis(f.text, HINT_URL, transient)


def _sentinel_diagnosis(text: str, url: str) -> Diagnosis:
    """What redis-py's "No master found" means: the sentinels refused our password, none
    answered, or they know no usable master by that name (a failover under way, or a
    wrong ``master=``)."""
    target = sentinel_target(url)
    hosts = ",".join(f"{h}:{p}" for h, p in target.sentinels)
    low = text.lower()
    if any(s in low for s in ("authenticationerror", "invalid username-password",
                              "invalid password", "authentication required", "noauth")):
        given = get_settings().sentinel_password is not None
        return Diagnosis(
            f"the sentinels at {hosts} refused " + ("COORD_SENTINEL_PASSWORD" if given else
                                                    "to answer without a password"),
            "set COORD_SENTINEL_PASSWORD to the sentinels' requirepass", False)
    if " - " in text:  # redis-py lists each sentinel that failed (with a long repr)
        return Diagnosis(f"no sentinel answered at {hosts} (refused, or no answer)",
                         "start the sentinels, or fix their hosts and ports in COORD_REDIS_URL",
                         True)
    return Diagnosis(
        f"the sentinels at {hosts} name no master {target.master!r} that is up (a failover "
        "under way, or no such name)",
        "check ?master= in COORD_REDIS_URL against the sentinels' 'sentinel monitor' line",
        True)


def _speaks_plain_redis(url: str, timeout: float) -> bool:
    """Does the server answer a plain inline PING (``+PONG`` or an ``-ERR``/``-NOAUTH``)?"""
    try:
        host, port = _host_port(url)
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16)[:1] in (b"+", b"-")
    except (OSError, ValueError):
        return False


def _speaks_tls(url: str, timeout: float) -> bool:
    """Does the server complete a TLS handshake (certificate not checked)?"""
    try:
        host, port = _host_port(url)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=host):
                return True
    except (OSError, ValueError):
        return False
