"""One POST to a webhook: signed by the caller, bounded as a whole, never redirected.

``post`` is what :mod:`coordination.sweeps.notices.notify` sends each delivery with, and
``coord notify test`` too. Two rules a webhook client must keep:

- **The timeout bounds the whole POST** (connect, send, the answer's headers and
  body), not each read: the request runs on a thread of its own and, at the
  deadline, its socket is shut. A receiver trickling one header byte every 2 s held
  urllib's per-read timeout for 91 s.
- **A redirect is never followed**: it would carry the URL's basic auth, the
  ``X-Coord-Signature`` and the ``X-Coord-Delivery`` to wherever it points. A 3xx is a
  failed delivery, its status and Location (redacted) named.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import re
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

#: Seconds one POST may take at most, all of it; less under a short lease
#: (COORD_LEASE_TTL: the outbox's lease is renewed before each POST, and lasts that
#: long without renewal).
TIMEOUT = 10.0
#: Bytes of an endpoint's answer read at most (it is not used).
MAX_ANSWER = 64 * 1024
MASK = "***"
_TOKENISH = re.compile(r"^(?=.*\d)[A-Za-z0-9_-]{16,}$")


def redact(url: str) -> str:
    """``url`` fit to print: user info, query values and token-like path segments (a
    Slack hook's path is its secret) masked."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return MASK
    netloc = host if ":" not in host else f"[{host}]"
    try:
        if parts.port:
            netloc += f":{parts.port}"
    except ValueError:
        pass
    if parts.username or parts.password:
        netloc = f"{MASK}@{netloc}"
    path = "/".join(MASK if _TOKENISH.match(seg) else seg for seg in parts.path.split("/"))
    query = urlencode([(k, MASK) for k, _v in parse_qsl(parts.query, keep_blank_values=True)],
                      safe="*")
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Coord-Signature`` header's value."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _location(resp: http.client.HTTPResponse) -> str:
    where = resp.getheader("Location")
    return redact(where) if where else "no Location"


def post(url: str, body: bytes, headers: Mapping[str, str], timeout: float = TIMEOUT
         ) -> tuple[int | None, str | None]:
    """POST ``body``; ``(status, None)`` on a 2xx, else ``(status or None, error)``.

    ``timeout`` bounds the whole POST (connecting, sending, the answer's headers and
    body), not each read: a receiver trickling its answer a byte at a time is cut off
    at the deadline. A redirect is never followed (it would carry the URL's basic
    auth, the signature and the delivery id to wherever it points): a 3xx is a
    failed delivery, its status and Location named."""
    headers = dict(headers)
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        # Credentials in the URL go as basic auth, never in the request line.
        who = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(who.encode()).decode()
    try:
        host, port = parts.hostname or "", parts.port
    except ValueError as exc:
        return None, f"ValueError: {exc}"
    path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl.create_default_context())
    elif parts.scheme == "http":
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    else:
        return None, f"not an http(s) URL: {redact(url)}"
    got: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read(MAX_ANSWER)  # the answer is not used; a bounded read ends the exchange
            got["status"], got["location"] = int(resp.status), _location(resp)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            got["error"] = exc
        finally:
            done.set()

    started = time.monotonic()
    worker = threading.Thread(target=run, name="coord-notify-post", daemon=True)
    worker.start()
    if not done.wait(timeout):
        # The deadline: the socket is shut, which ends the worker's blocked read or
        # write at once (its outcome is not used).
        _abort(conn)
        done.wait(1.0)
        return None, (f"timed out after {timeout:g} s (the whole POST: connect, send, "
                      "answer; the endpoint had not answered in full)")
    conn.close()
    failure = got.get("error")
    if failure is not None:
        if isinstance(failure, TimeoutError):
            return None, (f"timed out after {time.monotonic() - started:.3g} s (the whole "
                          f"POST may take {timeout:g} s: connect, send, answer)")
        reason = getattr(failure, "reason", None) or failure
        return None, f"{type(failure).__name__}: {reason}".replace(url, redact(url))
    status = int(got["status"])
    if 200 <= status < 300:
        return status, None
    if 300 <= status < 400:
        return status, (f"HTTP {status} redirect to {got['location']}, not followed (a "
                        "webhook's URL must be its final address: set it to that)")
    return status, f"HTTP {status}"


def _abort(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    conn.close()
