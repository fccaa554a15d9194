"""``COORD_REDIS_URL``: validation, redaction and TLS options, with the standard library only.

The settings module validates the URL through :func:`url_problem` at load, so
this module must stay cheap to import (no redis, kombu or Celery): every CLI
command may load the settings.

One URL configures three clients: coord's own redis-py client (which reads the
query string itself), the Celery broker (kombu) and the Celery result backend.
kombu and Celery do not read the query string the way redis-py does (kombu
refuses any parameter that is not ``ssl_*`` with a ``TypeError``; with coord's
broker transport it ignores the ``rediss`` scheme, and the backend insists on
``ssl_cert_reqs``), so :func:`celery_url` drops the TLS parameters from the URL
given to Celery and :func:`tls_options` hands the same options over as
``broker_use_ssl`` / ``redis_backend_use_ssl``. Nothing is passed twice.

Supported query parameters, ``rediss://`` only:

- ``ssl_cert_reqs``: ``required`` (default: the server's certificate must chain
  to a trusted CA), ``optional`` or ``none`` (no verification; insecure).
  ``CERT_REQUIRED``/``CERT_OPTIONAL``/``CERT_NONE`` are accepted too.
- ``ssl_ca_certs``: PEM file of the CA(s) to trust (default: the system's).
- ``ssl_certfile`` and ``ssl_keyfile``: client certificate and key, for a
  server that authenticates clients (``tls-auth-clients yes``).
- ``ssl_check_hostname``: ``true`` (default when verifying) or ``false``.

``unix:///path/to/redis.sock`` URLs (three slashes: no host) may carry a user and
password (``unix://USER:PASSWORD@/path``) and ``db``.

``sentinel://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]...][/DB]?master=NAME``: a
Redis managed by Sentinel. The hosts are the sentinels (port 26379 by default),
``master`` the name they monitor it by; the user and password are the data
nodes' (the sentinels' own password is ``COORD_SENTINEL_PASSWORD``). ``ssl=true``
speaks TLS to the sentinels and the data nodes alike, with the ``rediss://``
parameters above. Every client resolves the master through the sentinels at
each (re)connect (:func:`sentinel_target`). Anything else is refused at start
(exit 2).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, parse_qs, parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    import ssl

SCHEMES = ("redis", "rediss", "unix", "sentinel")
SENTINEL_PORT = 26379
TLS_FILE_PARAMS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
TLS_PARAMS = ("ssl_cert_reqs", *TLS_FILE_PARAMS, "ssl_check_hostname")
#: ``ssl_cert_reqs`` values -> the name of their ``ssl.CERT_*`` constant (ssl itself is
#: imported only for a TLS URL: every coord command reads the URL, few use TLS).
CERT_REQS = {"none": "CERT_NONE", "optional": "CERT_OPTIONAL", "required": "CERT_REQUIRED"}
DEFAULT_CERT_REQS = "required"
_TRUE = ("1", "true", "yes", "y", "on")
_FALSE = ("0", "false", "no", "n", "off")
MASK = "***"
_DIGITS = re.compile(r"[0-9]+")


def split_userinfo(url: str) -> tuple[str, str, str] | None:
    """``url`` as (scheme, user info, the rest): everything between ``://`` and the last
    ``@`` counts as user info (a malformed URL too: the port is never parsed); None
    when there is no ``://`` or no ``@``."""
    head, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not sep or not at:
        return None
    return head, userinfo, hostpart


def redact_url(url: str) -> str:
    """``url`` with the password (if any) replaced by ``***``; the rest unchanged.

    Works on malformed URLs too (it never parses the port). Errs on the side of
    hiding: everything between ``://`` and the last ``@`` counts as user info,
    and everything after its first ``:`` is masked.
    """
    parts = split_userinfo(url)
    if parts is None:
        return url
    head, userinfo, hostpart = parts
    user, colon, _password = userinfo.partition(":")
    if not colon:
        return url  # a user name alone is not a secret
    return f"{head}://{user}:{MASK}@{hostpart}"


def url_password(url: str) -> str | None:
    """The password in ``url`` as written (percent-encoded), or None."""
    parts = split_userinfo(url)
    if parts is None or ":" not in parts[1]:
        return None
    return parts[1].partition(":")[2] or None


def scrub(text: str, url: str | None) -> str:
    """``text`` with every occurrence of ``url``'s password (raw or decoded) masked."""
    if not url:
        return text
    text = text.replace(url, redact_url(url))
    pw = url_password(url)
    if pw:
        for form in {pw, unquote(pw)}:
            text = text.replace(f":{form}@", f":{MASK}@")
            # A very short password would mask half the text; it is never echoed bare.
            if len(form) >= 4:
                text = text.replace(form, MASK)
    return text


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable ``COORD_REDIS_URL`` (None: it is).

    The message names the part at fault and never contains the password.
    """
    shown = redact_url(url)
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme not in SCHEMES:
        return f"must start with redis://, rediss://, unix:// or sentinel:// (got {shown!r})"
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced [ in an IPv6 host
        return f"cannot be parsed ({exc}): {shown!r}"
    if parts.fragment:
        return f"must not contain '#' (percent-encode it as %23 in a password): {shown!r}"
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True) if parts.query else []
    except ValueError:
        return f"has a malformed query string (want name=value&name=value): {shown!r}"
    names = [k for k, _ in query]
    dupes = sorted({k for k in names if names.count(k) > 1})
    if dupes:
        return f"gives {', '.join(dupes)} more than once: {shown!r}"
    params = dict(query)

    if scheme == "sentinel":
        return _sentinel_problem(parts, params, shown)
    if scheme == "unix":
        if parts.netloc.rpartition("@")[2]:
            # redis-py would ignore the host and connect to the rest of the path:
            # unix://run/redis.sock means /redis.sock.
            return (f"unix:// takes no host: the socket's absolute path follows the '//', "
                    f"e.g. unix:///run/redis.sock or unix://:PASSWORD@/run/redis.sock: {shown!r}")
        if not parts.path or parts.path == "/":
            return f"unix:// needs the socket's path, e.g. unix:///run/redis.sock: {shown!r}"
        allowed: tuple[str, ...] = ("db",)
        if "db" in params and not _is_db(params["db"]):
            return f"db must be a number 0 or more (got {params['db']!r}): {shown!r}"
    else:
        problem = _host_problem(parts, shown)
        if problem:
            return problem
        db = parts.path[1:] if parts.path.startswith("/") else parts.path
        if db and not _is_db(db):
            return (f"database must be a number 0 or more after the last '/' "
                    f"(got {db!r}): {shown!r}")
        allowed = TLS_PARAMS if scheme == "rediss" else ()
        tls_given = [k for k in params if k in TLS_PARAMS]
        if scheme == "redis" and tls_given:
            return (f"{', '.join(tls_given)} given with redis://; TLS needs rediss://: {shown!r}")
        problem = _tls_problem(params, shown)
        if problem:
            return problem
    unknown = [k for k in params if k not in allowed]
    if unknown:
        takes = (f"{scheme}:// takes only {', '.join(allowed)}" if allowed else
                 "redis:// takes none: the database number goes in the path (/N), "
                 "TLS options need rediss://")
        return f"unsupported query parameter {', '.join(unknown)} ({takes}): {shown!r}"
    return None


def _sentinel_problem(parts: SplitResult, params: dict[str, str], shown: str) -> str | None:
    """What is wrong with a ``sentinel://`` URL (None: nothing)."""
    hosts = parts.netloc.rpartition("@")[2]
    if not hosts:
        return (f"sentinel:// needs at least one sentinel, e.g. "
                f"sentinel://s1:26379,s2:26379/0?master=mymaster: {shown!r}")
    for hostport in hosts.split(","):
        if not hostport:
            return f"sentinel:// has an empty host between commas: {shown!r}"
        try:
            one = urlsplit(f"//{hostport}")
        except ValueError as exc:
            return f"sentinel {hostport!r} cannot be parsed ({exc}): {shown!r}"
        if not one.hostname:
            return f"sentinel {hostport!r} has no host: {shown!r}"
        problem = _host_problem(one, shown)
        if problem:
            return problem
    db = parts.path[1:] if parts.path.startswith("/") else parts.path
    if db and not _is_db(db):
        return f"database must be a number 0 or more after the '/' (got {db!r}): {shown!r}"
    if not params.get("master"):
        return (f"sentinel:// needs ?master=NAME, the name the sentinels monitor the master "
                f"by (their 'sentinel monitor NAME ...' line): {shown!r}")
    allowed = ("master", "ssl", *TLS_PARAMS)
    unknown = [k for k in params if k not in allowed]
    if unknown:
        return (f"unsupported query parameter {', '.join(unknown)} (sentinel:// takes "
                f"{', '.join(allowed)}): {shown!r}")
    tls = params.get("ssl")
    if tls is not None and tls.lower() not in _TRUE + _FALSE:
        return f"ssl must be true or false (got {tls!r}): {shown!r}"
    tls_given = [k for k in params if k in TLS_PARAMS]
    if tls_given and not is_tls(parts.geturl()):
        return f"{', '.join(tls_given)} given without ssl=true: {shown!r}"
    return _tls_problem(params, shown)


def _tls_problem(params: dict[str, str], shown: str) -> str | None:
    reqs = params.get("ssl_cert_reqs")
    if reqs is not None and normal_cert_reqs(reqs) is None:
        return (f"ssl_cert_reqs must be required, optional or none "
                f"(got {reqs!r}): {shown!r}")
    hostname = params.get("ssl_check_hostname")
    if hostname is not None and hostname.lower() not in _TRUE + _FALSE:
        return f"ssl_check_hostname must be true or false (got {hostname!r}): {shown!r}"
    for name in TLS_FILE_PARAMS:
        if name in params and not params[name]:
            return f"{name} needs a file path: {shown!r}"
    return None


def _host_problem(parts: SplitResult, shown: str) -> str | None:
    """A problem with the port of a redis:// or rediss:// URL (no host means localhost)."""
    hostport = parts.netloc.rpartition("@")[2]
    port_text = hostport.rpartition("]")[2] if hostport.startswith("[") else hostport
    _, colon, raw_port = port_text.rpartition(":")
    if colon and not (_DIGITS.fullmatch(raw_port) and 1 <= int(raw_port) <= 65535):
        return f"port must be a number from 1 to 65535 (got {raw_port!r}): {shown!r}"
    try:
        parts.port
    except ValueError:
        return f"port must be a number from 1 to 65535: {shown!r}"
    return None


def _is_db(text: str) -> bool:
    return bool(_DIGITS.fullmatch(text))


def normal_cert_reqs(value: str) -> str | None:
    """``none``/``optional``/``required`` for any spelling kombu or redis-py accepts, else None."""
    v = value.strip().lower()
    if v.startswith("cert_"):
        v = v[len("cert_"):]
    return v if v in CERT_REQS else None


def query_params(url: str) -> dict[str, str]:
    """The URL's query as a dict (validated URLs have no repeated names)."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def is_tls(url: str | None) -> bool:
    if not url:
        return False
    if is_sentinel(url):
        return query_params(url).get("ssl", "").lower() in _TRUE
    return str(url).startswith("rediss://")


def is_sentinel(url: str | None) -> bool:
    return bool(url) and str(url).startswith("sentinel://")


@dataclass(frozen=True)
class SentinelTarget:
    """What a validated ``sentinel://`` URL names: where to ask, for whom, as whom."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int
    username: str | None
    password: str | None  # the data nodes' (decoded)
    #: redis-py keyword arguments for TLS (to the sentinels and the data nodes), or {}
    tls: dict[str, str | bool]


def sentinel_target(url: str) -> SentinelTarget:
    """The parts of a ``sentinel://`` URL :func:`url_problem` accepted."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":") if at else ("", "", "")
    sentinels = []
    for hostport in hosts.split(","):
        one = urlsplit(f"//{hostport}")
        sentinels.append((unquote(one.hostname or "localhost"), one.port or SENTINEL_PORT))
    params = query_params(url)
    tls: dict[str, str | bool] = {}
    if is_tls(url):
        tls = {"ssl": True, "ssl_cert_reqs": normal_cert_reqs(
            params.get("ssl_cert_reqs", DEFAULT_CERT_REQS)) or DEFAULT_CERT_REQS}
        for name in TLS_FILE_PARAMS:
            if params.get(name):
                tls[name] = params[name]
        if "ssl_check_hostname" in params:
            tls["ssl_check_hostname"] = params["ssl_check_hostname"].lower() in _TRUE
    db = parts.path.strip("/")
    return SentinelTarget(tuple(sentinels), params["master"], int(db or 0),
                          unquote(user) or None, unquote(password) or None, tls)


def tls_options(url: str | None) -> dict[str, ssl.VerifyMode | str | bool] | None:
    """kombu/Celery TLS options for a ``rediss://`` URL (None for any other).

    The shape kombu's ``broker_use_ssl`` and Celery's ``redis_backend_use_ssl``
    take: ``ssl_cert_reqs`` as an ``ssl.CERT_*`` constant (``CERT_REQUIRED``
    when the URL does not say: secure by default, as redis-py), file paths as
    given, ``ssl_check_hostname`` as a bool when the URL gives it.
    """
    if not url or not is_tls(url):
        return None
    params = query_params(url)
    reqs = normal_cert_reqs(params.get("ssl_cert_reqs", DEFAULT_CERT_REQS)) or DEFAULT_CERT_REQS
    import ssl  # lazy: every command reads the URL (catalog.reads.live), only TLS needs ssl

    opts: dict[str, ssl.VerifyMode | str | bool] = {
        "ssl_cert_reqs": getattr(ssl, CERT_REQS[reqs])}
    for name in TLS_FILE_PARAMS:
        if params.get(name):
            opts[name] = params[name]
    if "ssl_check_hostname" in params:
        opts["ssl_check_hostname"] = params["ssl_check_hostname"].lower() in _TRUE
    return opts


def client_url(url: str) -> str:
    """The URL for redis-py's ``from_url``: ``ssl_cert_reqs`` spelled the way redis-py
    reads it (it knows only none/optional/required), everything else unchanged."""
    return _rewrite_query(url, keep=lambda k: True,
                          value=lambda k, v: (normal_cert_reqs(v) or v) if k == "ssl_cert_reqs" else v)


def celery_url(url: str) -> str:
    """The URL for kombu and Celery's backend: the TLS parameters removed
    (they travel as :func:`tls_options`), so neither parses them a second time;
    ``unix://[USER:PASSWORD@]PATH?db=N`` spelled as kombu reads a socket:
    ``redis+socket://[USER:PASSWORD@]PATH`` with the database as ``virtual_host``.
    The credentials and the path stay as written (percent-encoded): kombu and Celery
    decode each once, as redis-py does, so a password is not lost (the broker would
    log in as the default user) and a path with ``%``, ``?`` or ``#`` stays one path."""
    parts = urlsplit(url)
    if parts.scheme == "sentinel":
        # kombu's form: one sentinel:// URL per sentinel, joined by ';' (the master's
        # name and TLS travel as transport options: see coordination.dispatch.app).
        userinfo, at, hosts = parts.netloc.rpartition("@")
        db = parts.path.strip("/") or "0"
        return ";".join(f"sentinel://{userinfo}{at}{hp}/{db}" for hp in hosts.split(","))
    if parts.scheme == "unix":
        db = parse_qs(parts.query).get("db", ["0"])[0]
        return (f"redis+socket://{parts.netloc}{parts.path}"
                + (f"?virtual_host={db}" if db != "0" else ""))
    return _rewrite_query(url, keep=lambda k: k not in TLS_PARAMS, value=lambda k, v: v)


def _rewrite_query(url: str, *, keep: Callable[[str], bool],
                   value: Callable[[str, str], str]) -> str:
    """``url`` with its raw ``name=value`` pairs filtered/rewritten, encoding left as written."""
    base, q, query = url.partition("?")
    if not q:
        return url
    out = []
    for pair in query.split("&"):
        if not pair:
            continue
        raw_name, eq, raw_value = pair.partition("=")
        name = unquote(raw_name.replace("+", " "))
        if not keep(name):
            continue
        if eq:
            new = value(name, unquote(raw_value.replace("+", " ")))
            if new != unquote(raw_value.replace("+", " ")):
                raw_value = new
        out.append(f"{raw_name}{eq}{raw_value}")
    return base + ("?" + "&".join(out) if out else "")


def endpoint(url: str) -> str:
    """``host:port`` (or the socket path) the URL points at, for messages."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return f"unix socket {unquote(parts.path)}"
        if parts.scheme == "sentinel":
            t = sentinel_target(url)
            hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in t.sentinels)
            return f"master {t.master!r} of sentinels {hosts}"
        host = parts.hostname or "localhost"
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{parts.port or 6379}"
    except ValueError:
        return redact_url(url)
