"""Running the web view: who may bind where, in the foreground or beside a sweep."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from coordination.errors import UsageError
from coordination.ui import DEFAULT_PORT as DEFAULT_PORT

LOCAL_ADDRESSES = ("127.0.0.1", "localhost", "::1")


def check_bind(address: str, auth: str | None, users: Mapping[str, str] | None = None) -> None:
    """Refuse an unauthenticated bind off localhost, and credentials without a colon."""
    if address not in LOCAL_ADDRESSES and not auth and not users:
        raise UsageError(
            f"refusing to serve the web view on {address} without authentication",
            hint="set COORD_UI_AUTH=user:password, or bind --address 127.0.0.1",
        )
    if auth is not None and ":" not in auth:
        raise UsageError("COORD_UI_AUTH must look like user:password")


def load_users(path: Path | None) -> dict[str, str]:
    """The web view's users besides COORD_UI_AUTH's: one per ``user:password`` line of
    the COORD_UI_USERS file (blank lines and ``#`` comments skipped). A malformed line
    or an unreadable file is a UsageError naming the file and line."""
    users: dict[str, str] = {}
    if path is None:
        return users
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"COORD_UI_USERS: cannot read {path}: {exc}") from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, colon, password = line.partition(":")
        if not colon or not name.strip() or not password:
            raise UsageError(f"{path}:{n}: COORD_UI_USERS lines look like user:password")
        if name.strip() in users:
            raise UsageError(f"{path}:{n}: user {name.strip()!r} appears twice")
        users[name.strip()] = password
    return users


def raise_fd_limit(want: int = 8192) -> int:
    """Lift this process's soft open-file limit toward ``want`` (never past the hard
    limit): every open event stream holds a socket, and a common default of 1,024 would
    stop the server accepting anything at a thousand. Returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft)


def url(address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}/"


def _config(app: ASGIApp, address: str, port: int) -> uvicorn.Config:
    # No access log: a page open on a sweep asks often; errors still show.
    return uvicorn.Config(app, host=address, port=port, log_level="warning", access_log=False,
                          timeout_graceful_shutdown=2, lifespan="off")


def serve(app: ASGIApp, address: str, port: int) -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM)."""
    raise_fd_limit()
    server = uvicorn.Server(_config(app, address, port))
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind (it logged why)
        pass
    if not server.started:
        raise UsageError(f"could not serve on {address}:{port}",
                         hint="is the port in use? pick another with --port")


class Background:
    """The web view in a thread of this process (``coord plan sweep --ui``), for as
    long as the ``with`` block (the sweep) lasts."""

    def __init__(self, app: ASGIApp, address: str, port: int) -> None:
        self.address, self.port = address, port
        self.server = uvicorn.Server(_config(app, address, port))
        self.thread = threading.Thread(target=self.server.run, name="coord-ui", daemon=True)

    def __enter__(self) -> Background:
        raise_fd_limit()
        self.thread.start()
        deadline = time.monotonic() + 10.0
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise UsageError(f"could not serve the web view on {self.address}:{self.port}",
                                 hint="is the port in use? pick another with --ui-port")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5.0)
