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
password (``unix://USER:PASSWORD@/path``) and ``db``. Anything else is refused at
start (exit 2).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from urllib.parse import SplitResult, parse_qs, parse_qsl, unquote, urlsplit

SCHEMES = ("redis", "rediss", "unix")
TLS_FILE_PARAMS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
TLS_PARAMS = ("ssl_cert_reqs", *TLS_FILE_PARAMS, "ssl_check_hostname")
CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
DEFAULT_CERT_REQS = "required"
_TRUE = ("1", "true", "yes", "y", "on")
_FALSE = ("0", "false", "no", "n", "off")
MASK = "***"
_DIGITS = re.compile(r"[0-9]+")


def redact_url(url: str) -> str:
    """``url`` with the password (if any) replaced by ``***``; the rest unchanged.

    Works on malformed URLs too (it never parses the port). Errs on the side of
    hiding: everything between ``://`` and the last ``@`` counts as user info,
    and everything after its first ``:`` is masked.
    """
    head, sep, rest = url.partition("://")
    if not sep:
        return url
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        return url
    user, colon, _password = userinfo.partition(":")
    if not colon:
        return url  # a user name alone is not a secret
    return f"{head}://{user}:{MASK}@{hostpart}"


def url_password(url: str) -> str | None:
    """The password in ``url`` as written (percent-encoded), or None."""
    _head, sep, rest = url.partition("://")
    userinfo, at, _ = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return None
    return userinfo.partition(":")[2] or None


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
        return f"must start with redis://, rediss:// or unix:// (got {shown!r})"
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
    unknown = [k for k in params if k not in allowed]
    if unknown:
        takes = (f"{scheme}:// takes only {', '.join(allowed)}" if allowed else
                 "redis:// takes none: the database number goes in the path (/N), "
                 "TLS options need rediss://")
        return f"unsupported query parameter {', '.join(unknown)} ({takes}): {shown!r}"
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
    return bool(url) and str(url).startswith("rediss://")


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
    opts: dict[str, ssl.VerifyMode | str | bool] = {"ssl_cert_reqs": CERT_REQS[reqs]}
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
        host = parts.hostname or "localhost"
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{parts.port or 6379}"
    except ValueError:
        return redact_url(url)
