"""The web view's Starlette app: pages, JSON documents, live events, basic auth.

Only GET routes exist (anything else is 405): the view reads, it never writes a
record or runs a command. JSON endpoints serve the CLI's ``--json`` documents
(see :mod:`coordination.ui.documents`); ``/api/sweeps/ID/events`` is a
server-sent event stream fed by the sweep's event ledger (an ``XREAD`` with a
block timeout, from the id the page's graph document was read at), which ends
when the sweep does.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from coordination.errors import CoordError, NotFoundError
from coordination.runtime.context import Runtime
from coordination.jsonable import JSONObject
from coordination.runtime.events import Event
from coordination.status import SWEEP_LIVE
from coordination.sweeps import SweepService, ended_by
from coordination.ui import documents
from coordination.ui.documents import BreakerReader

STATIC = Path(__file__).resolve().parent / "static"
PAGE = STATIC / "page.html"
# The page loads only its own script and stylesheet, and connects only to this server.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class BasicAuth:
    """Every request (pages, JSON, events, static files) needs ``user:password``."""

    def __init__(self, app: ASGIApp, credentials: str) -> None:
        self.app = app
        self.expected = credentials.encode()

    def allowed(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            given = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return secrets.compare_digest(given, self.expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.allowed(headers.get("authorization")):
            await self.app(scope, receive, send)
            return
        response = Response("authentication required\n", status_code=401,
                            headers={"WWW-Authenticate": 'Basic realm="coord", charset="UTF-8"'},
                            media_type="text/plain")
        await response(scope, receive, send)


def _error(exc: CoordError) -> JSONResponse:
    code = 404 if isinstance(exc, NotFoundError) else 400
    return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=code)


def _json(build: Callable[[], object]) -> Response:
    try:
        return JSONResponse(build())
    except CoordError as exc:
        return _error(exc)


def _sse(event: str, data: JSONObject, event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def create_app(rt: Runtime, catalog: str | Path | None, *, auth: str | None = None,
               breakers: BreakerReader | None = None, block_ms: int = 1000) -> ASGIApp:
    """The web view over ``rt`` (Redis, or the embedded server) and the catalog file.

    ``auth``: ``user:password`` every request must send (basic auth). ``breakers``:
    overrides how repo breaker states are read (default: as `coord repo list`). ``block_ms``:
    how long one read of the event stream waits for news.
    """
    svc = SweepService(rt, catalog)

    def page(request: Request) -> Response:
        return FileResponse(PAGE, media_type="text/html",
                            headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"})

    def api_overview(request: Request) -> Response:
        return _json(lambda: documents.overview(svc, rt, breakers=breakers))

    def api_sweeps(request: Request) -> Response:
        try:
            limit = max(1, min(10_000, int(request.query_params.get("limit", "50"))))
        except ValueError:
            return JSONResponse({"error": "limit must be a whole number"}, status_code=400)
        return _json(lambda: svc.list(limit=limit))

    def api_sweep(request: Request) -> Response:
        return _json(lambda: svc.status(request.path_params["sweep_id"]))

    def api_sweep_graph(request: Request) -> Response:
        return _json(lambda: documents.sweep_graph(svc, request.path_params["sweep_id"]))

    def api_todo(request: Request) -> Response:
        p = request.path_params
        return _json(lambda: documents.todo_detail(svc, p["sweep_id"], p["todo_id"]))

    def api_plan(request: Request) -> Response:
        return _json(lambda: documents.plan_status(svc, request.path_params["plan_id"]))

    def api_plan_graph(request: Request) -> Response:
        return _json(lambda: documents.plan_graph(svc, request.path_params["plan_id"]))

    def api_repos(request: Request) -> Response:
        return _json(lambda: documents.repo_list(svc, rt))

    def statuses(sweep_id: str, todo_ids: list[str]) -> dict[str, str]:
        cps = rt.checkpoints.get_fields_all(sweep_id, todo_ids, ("status",))
        return {t: str(cp["status"]) for t, cp in cps.items()}

    def read_batch(sweep_id: str, after: str) -> list[Event]:
        return rt.events.wait_sweep(sweep_id, after, block_ms=block_ms)

    async def api_events(request: Request) -> Response:
        sweep_id = request.path_params["sweep_id"]
        try:
            await anyio.to_thread.run_sync(svc.record, sweep_id)
        except CoordError as exc:
            return _error(exc)
        # A reconnecting EventSource sends the last id it saw; a first connect, the
        # id its graph document was read at.
        after = (request.headers.get("last-event-id") or request.query_params.get("after")
                 or "0-0")

        async def stream() -> AsyncIterator[str]:
            last = after
            yield "retry: 2000\n\n"
            while True:
                batch = await anyio.to_thread.run_sync(read_batch, sweep_id, last)
                if not batch:
                    status = await anyio.to_thread.run_sync(rt.checkpoints.sweep_status, sweep_id)
                    if status is None or status not in SWEEP_LIVE:
                        yield _sse("end", {"status": status}, last)
                        return
                    yield ": idle\n\n"  # keeps proxies from closing a quiet stream
                    continue
                ids = sorted({e.todo_id for e in batch if e.todo_id})
                now = await anyio.to_thread.run_sync(statuses, sweep_id, ids) if ids else {}
                over = False
                for ev in batch:
                    last = ev.id
                    if ev.todo_id:
                        yield _sse("todo", {"todo": ev.todo_id, "kind": ev.kind, "ts": ev.ts,
                                            "status": now.get(ev.todo_id)}, ev.id)
                    elif ev.kind == "sweep.queued" and ev.data.get("resumed"):
                        yield _sse("reload", {"kind": ev.kind}, ev.id)  # a new run
                    elif ev.kind.startswith("sweep."):
                        st = await anyio.to_thread.run_sync(rt.checkpoints.sweep_status, sweep_id)
                        yield _sse("sweep", {"kind": ev.kind, "ts": ev.ts, "status": st,
                                             "reason": ev.data.get("reason")}, ev.id)
                        over = over or await anyio.to_thread.run_sync(ended_by, rt, sweep_id, ev)
                if over:
                    yield _sse("end", {"status": await anyio.to_thread.run_sync(
                        rt.checkpoints.sweep_status, sweep_id)}, last)
                    return

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    routes = [
        Route("/", page),
        Route("/sweeps/{sweep_id}", page),
        Route("/plans/{plan_id}", page),
        Route("/api/overview", api_overview),
        Route("/api/sweeps", api_sweeps),
        Route("/api/sweeps/{sweep_id}", api_sweep),
        Route("/api/sweeps/{sweep_id}/graph", api_sweep_graph),
        Route("/api/sweeps/{sweep_id}/events", api_events),
        Route("/api/sweeps/{sweep_id}/todos/{todo_id}", api_todo),
        Route("/api/plans/{plan_id}", api_plan),
        Route("/api/plans/{plan_id}/graph", api_plan_graph),
        Route("/api/repos", api_repos),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    app: ASGIApp = Starlette(routes=routes)
    if auth:
        app = BasicAuth(app, auth)
    return app
