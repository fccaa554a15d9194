"""`coord mcp --http PORT`: the SDK's streamable HTTP transport, on localhost, behind a
bearer token.

The server runs todos' commands and writes the catalog, so nothing reaches the SDK's
app before :class:`Guard` has checked, in this order (a request failing one learns
nothing of the next):

1. ``Host`` names this server: ``127.0.0.1``, ``localhost`` or ``[::1]`` with its port
   (else 421). Without it any web site its user visits could point a name of its own at
   127.0.0.1 (DNS rebinding) and drive the tools from the user's browser: the lesson of
   the web view (:mod:`coordination.ui.app`).
2. ``Origin``, when sent (browsers do), is that same server (else 403).
3. ``Authorization: Bearer <COORD_MCP_TOKEN>``, compared in constant time (else 401).

The socket is bound to 127.0.0.1 only. ``--repo`` and ``--read-only`` scope the tools
exactly as on stdio: it is the same server object.
"""

from __future__ import annotations

import hmac
import socket
from collections.abc import Callable

import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from coordination.errors import UsageError
from coordination.mcp_server.toolkit import CoordServer

ADDRESS = "127.0.0.1"
PATH = "/mcp"
#: The shortest token accepted: it guards a server that runs commands.
MIN_TOKEN = 16


def local_names(port: int) -> list[str]:
    """The ``Host`` values this server answers to (on port 80 a client names no port)."""
    names = ("127.0.0.1", "localhost", "[::1]")
    return [f"{name}:{port}" for name in names] + (list(names) if port == 80 else [])


def require_token(token: str) -> str:
    """``token`` (COORD_MCP_TOKEN) if it may guard the server; a usage error otherwise."""
    if len(token) < MIN_TOKEN:
        raise UsageError(
            "refusing to serve MCP over HTTP without COORD_MCP_TOKEN" if not token else
            f"COORD_MCP_TOKEN is too short ({len(token)} characters; at least {MIN_TOKEN})",
            hint="set COORD_MCP_TOKEN to a long random secret, e.g. $(openssl rand -hex 32)")
    return token


class Guard:
    """Host, Origin and bearer token checks in front of ``app`` (see the module)."""

    def __init__(self, app: ASGIApp, *, token: str, port: int) -> None:
        self.app = app
        self.token = token.encode()
        self.hosts = set(local_names(port))
        self.origins = {f"http://{h}" for h in self.hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan: the SDK's session manager starts there
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self.refuse(headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refuse(self, headers: Headers) -> PlainTextResponse | None:
        if headers.get("host", "").lower() not in self.hosts:
            return PlainTextResponse("Invalid Host header", status_code=421)
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in self.origins:
            return PlainTextResponse("Invalid Origin header", status_code=403)
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 self.token):
            return PlainTextResponse("Unauthorized: send Authorization: Bearer "
                                     "$COORD_MCP_TOKEN", status_code=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="coord"'})
        return None


def app(server: CoordServer, *, token: str, port: int) -> ASGIApp:
    """The guarded ASGI app serving ``server`` at ``/mcp``."""
    hosts = local_names(port)
    inner = server.streamable_http_app(
        streamable_http_path=PATH, host=ADDRESS,
        # The SDK's own check too, as strict as the guard's (its default takes any port).
        transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=True, allowed_hosts=hosts,
            allowed_origins=[f"http://{h}" for h in hosts]))
    return Guard(inner, token=token, port=port)


class _Announced(uvicorn.Server):
    """uvicorn's server, calling ``ready`` once it listens (not before: the port may be
    taken)."""

    def __init__(self, config: uvicorn.Config, ready: Callable[[str], None]) -> None:
        super().__init__(config)
        self.ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready(f"http://{ADDRESS}:{self.config.port}{PATH}")


async def serve_http(server: CoordServer, *, port: int, token: str,
                     ready: Callable[[str], None] = lambda url: None) -> None:
    """Serve ``server`` on http://127.0.0.1:PORT/mcp until interrupted; ``ready`` is
    told the URL once it listens."""
    config = uvicorn.Config(app(server, token=token, port=port), host=ADDRESS, port=port,
                            log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=2)
    http = _Announced(config, ready)
    try:
        await http.serve()
    except SystemExit:  # uvicorn exits when it cannot bind (it logged why)
        pass
    if not http.started:
        raise UsageError(f"could not serve on {ADDRESS}:{port}",
                         hint="is the port in use? pick another with --http")
