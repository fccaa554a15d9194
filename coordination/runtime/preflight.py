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
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import redis
from redis import exceptions as rexc
from redis.backoff import NoBackoff
from redis.retry import Retry

from coordination.errors import RedisUnreachable, SettingsError
from coordination.redis_url import (
    TLS_FILE_PARAMS,
    endpoint,
    is_tls,
    query_params,
    redact_url,
    scrub,
    url_password,
)

if TYPE_CHECKING:
    from coordination.settings import Settings

__all__ = ["DEFAULT_TIMEOUT", "Diagnosis", "check_redis", "diagnose", "redact_url", "unreachable"]

# Whole check, retries included; well inside the 10 s a failing `coord worker` may take.
DEFAULT_TIMEOUT = 4.0
ATTEMPT_TIMEOUT = 1.5  # each socket operation of one try: connect, TLS handshake, AUTH, PING
RETRY_PAUSE = 0.25
PROBE_TIMEOUT = 0.5  # the second look that tells TLS from plain

HINT_URL = "fix COORD_REDIS_URL (unset it to run embedded); see README 'Settings'"


@dataclass(frozen=True)
class Diagnosis:
    problem: str
    hint: str
    transient: bool  # worth another try within the start-up budget


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
                raise RedisUnreachable(
                    f"cannot reach Redis at {redact_url(url)}: {d.problem}", hint=d.hint
                ) from None
            time.sleep(RETRY_PAUSE)


def ping(url: str, timeout: float) -> None:
    """One connection (TLS and AUTH as the URL says), one PING, closed again; no retries."""
    client = redis.Redis.from_url(
        url, socket_connect_timeout=timeout, socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0), health_check_interval=0,
    )
    try:
        client.ping()
    finally:
        client.close()


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
                hint="give a readable PEM file; see README 'Settings'",
            ) from None


def unreachable(exc: BaseException, url: str | None) -> RedisUnreachable:
    """The CLI's error for a Redis or broker exception that escaped a command."""
    if not url:
        return RedisUnreachable(f"cannot reach Redis: {scrub(str(exc), url)}", hint=HINT_URL)
    d = diagnose(exc, url, waited=None)
    return RedisUnreachable(f"cannot reach Redis at {redact_url(url)}: {d.problem}", hint=d.hint)


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in out and len(out) < 10:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return unquote(parts.hostname or "localhost"), parts.port or 6379


def diagnose(
    exc: BaseException, url: str, *, waited: float | None = None,
    probe_timeout: float = PROBE_TIMEOUT,
) -> Diagnosis:
    """What ``exc`` (raised connecting to ``url``) means, in words a user can act on.

    May take a second look at the server (a plain PING, or a bare TLS
    handshake, at most ``probe_timeout`` s) to tell a TLS mismatch from a
    server that is simply slow or gone.
    """
    chain = _chain(exc)
    ep = endpoint(url)
    tls = is_tls(url)
    unix = url.startswith("unix://")
    text = scrub(" | ".join(f"{type(e).__name__}: {e}" for e in chain), url)
    low = text.lower()
    codes = {getattr(e, "status_code", None) for e in chain}

    def first(*types: type[BaseException]) -> BaseException | None:
        return next((e for e in chain if isinstance(e, types)), None)

    user = unquote(urlsplit(url).username or "") if not unix else ""
    has_password = url_password(url) is not None

    # -- credentials ------------------------------------------------------------------
    noauth = ("NOAUTH" in codes or "authentication required" in low
              or "must be called with the client already authenticated" in low)
    wrongpass = ("WRONGPASS" in codes or "invalid username-password pair" in low
                 or "invalid password" in low)
    if noauth and not wrongpass:
        if has_password:
            return Diagnosis(f"{ep} says authentication is required (NOAUTH) although the URL "
                             "gives a password", HINT_URL, False)
        return Diagnosis(
            f"{ep} requires a password and COORD_REDIS_URL gives none (NOAUTH: password required)",
            "put it in the URL: redis://:PASSWORD@HOST:PORT/DB, or redis://USER:PASSWORD@... for "
            "an ACL user (percent-encode @ : / # in it)", False)
    if wrongpass or first(rexc.AuthenticationError):
        who = f"user {user!r}" if user else "the default user"
        return Diagnosis(
            f"{ep} refused the credentials: wrong password for {who}, or the user does not exist "
            "or is disabled (WRONGPASS)",
            "fix the user name or password in COORD_REDIS_URL", False)
    if first(rexc.NoPermissionError) or "NOPERM" in codes:
        who = f"user {user!r}" if user else "the default user"
        return Diagnosis(f"{who} may not run PING on {ep} (NOPERM)",
                         "grant the user coord's commands in the server's ACL", False)

    # -- TLS --------------------------------------------------------------------------
    verify = first(ssl.SSLCertVerificationError)
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
    ssl_err = first(ssl.SSLError)
    if tls and ssl_err is not None:
        reason = getattr(ssl_err, "reason", None) or str(ssl_err)
        if "certificate_required" in str(reason).lower() or "certificate required" in low:
            return Diagnosis(f"{ep} requires a client certificate (TLS handshake refused)",
                             "add ssl_certfile=/path/client.pem&ssl_keyfile=/path/client.key "
                             "to COORD_REDIS_URL", False)
        plain = " (it answers plain Redis)" if _speaks_plain_redis(url, probe_timeout) else ""
        return Diagnosis(f"TLS handshake with {ep} failed ({reason}){plain}",
                         "is the server TLS-enabled? use redis:// for a plain server", False)

    timed_out = first(TimeoutError, socket.timeout, rexc.TimeoutError) is not None or "timed out" in low \
        or "timeout" in low
    if tls and timed_out and _speaks_plain_redis(url, probe_timeout):
        return Diagnosis(
            f"TLS handshake with {ep} failed: it answers plain Redis, not TLS",
            "is the server TLS-enabled? use redis:// for a plain server", False)

    # -- reaching the host --------------------------------------------------------------
    dns = first(socket.gaierror)
    if dns is not None or "name or service not known" in low or "nodename nor servname" in low:
        host = _host_port(url)[0]
        why = getattr(dns, "strerror", None) or "name or service not known"
        transient = isinstance(dns, socket.gaierror) and dns.errno == socket.EAI_AGAIN
        return Diagnosis(f"cannot resolve host {host!r} (DNS: {why})",
                         "check the host name in COORD_REDIS_URL", transient)
    missing = first(FileNotFoundError)
    if missing is not None:
        if unix:
            return Diagnosis(f"nothing is listening at {ep} (no such file)",
                             "start redis-server with that unixsocket, or fix the path in "
                             "COORD_REDIS_URL", True)
        return Diagnosis(f"a file named in COORD_REDIS_URL does not exist ({missing})", HINT_URL, False)
    if first(ConnectionRefusedError) is not None or "connection refused" in low:
        return Diagnosis(f"nothing is listening at {ep} (connection refused)",
                         "start redis-server there, or fix the host/port in COORD_REDIS_URL "
                         "(unset it to run embedded)", True)
    if first(PermissionError) is not None:
        return Diagnosis(f"permission denied connecting to {ep}", HINT_URL, False)

    closed = (first(ConnectionResetError, BrokenPipeError, rexc.InvalidResponse) is not None
              or "connection closed by server" in low or "connection reset" in low)
    if not tls and not unix and (closed or timed_out) and _speaks_tls(url, probe_timeout):
        return Diagnosis(
            f"{ep} speaks TLS only, and the URL asks for plain redis://",
            "use rediss://HOST:PORT/DB (with ssl_ca_certs=/path/to/ca.pem for a private CA)",
            False)
    if first(rexc.BusyLoadingError) is not None:
        return Diagnosis(f"{ep} is still loading its data (LOADING)", "wait, then start again", True)
    if first(rexc.InvalidResponse) is not None:
        return Diagnosis(f"{ep} does not speak the Redis protocol ({text})",
                         "check the host and port in COORD_REDIS_URL", False)
    if timed_out:
        within = f" within {waited:g} s" if waited else ""
        return Diagnosis(
            f"no answer from {ep}{within} (timeout): a firewall dropping packets, a wrong host or "
            "port, or a server too busy to answer", HINT_URL, True)
    if closed:
        return Diagnosis(f"{ep} closed the connection ({text})", HINT_URL, True)
    transient = first(OSError, rexc.ConnectionError) is not None
    return Diagnosis(text, HINT_URL, transient)


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
