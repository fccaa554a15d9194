"""The web view's Starlette app: pages, JSON documents, live events, basic auth.

The view reads; what it writes is a person's: an authenticated user (the user name of
COORD_UI_AUTH's basic auth) approves or rejects a waiting gate, pauses, resumes or
cancels a sweep, or retries a failed todo, with a POST that carries the page's CSRF token
(``X-CSRF-Token``, from ``/api/session``; an HMAC of the user under a key made when the
server starts, so a page of another site, which cannot read it, cannot forge the request)
and, when the browser sends one, an ``Origin`` of this server. Each calls the
SweepService method the CLI calls, and is in the audit log as that user ``via: web``.
Without basic auth there is no authenticated user: no buttons, and such a POST is refused
(403). Every other route is GET only (anything else is 405). JSON endpoints serve the CLI's ``--json`` documents
(see :mod:`coordination.ui.documents`; a change's, ``coord change status --json``, see
:mod:`coordination.ui.changes`; issues, the dependency graph and trends, see
:mod:`coordination.ui.insight`); ``/api/sweeps/ID/events`` is a
server-sent event stream fed by the sweep's event ledger (from the id the page's
graph document was read at, through :mod:`coordination.ui.feeds`: no thread per
stream), which ends when the sweep does.

A request by nobody signed in (no COORD_UI_AUTH, or none sent) runs nothing in a
repository: no git process starts while it is served (:class:`NoGitForStrangers`;
any web site its user visits can make the browser send a GET to localhost), and a
``?repos=`` selector that needs git (``changed:REF``) is refused with 403.

Every request must name this server in its ``Host`` header (localhost, or a name of
COORD_UI_HOSTS): without that check any web site its user visits could point a name of
its own at 127.0.0.1 (DNS rebinding) and read sweeps and output tails with the user's
browser.

``POST /hooks/<kind>`` takes a forge's webhook deliveries (:mod:`coordination.ui.hooks`):
their signature is their authentication (a forge sends no basic auth), so they pass by
it, and by nothing else: a delivery whose signature does not hold is refused (401).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path

import anyio
import redis
from starlette.applications import Starlette
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from coordination import gitsafe
from coordination.errors import CoordError, NotFoundError, UsageError
from coordination.runtime.context import Runtime
from coordination.jsonable import JSONObject
from coordination.catalog.reads import live
from coordination.sweeps.writeback.live import catch_up
from coordination.runtime.events import stream_id_key
from coordination.status import TodoStatus
from coordination.sweeps import SweepService, over
from coordination.sweeps.governance import control_log
from coordination.ui import changes, documents, insight
from coordination.ui import logs as todo_logs
from coordination.ui.documents import BreakerReader
from coordination.ui.hooks import Hooks
from coordination.ui.feeds import PAGE as READ_PAGE
from coordination.ui.feeds import (
    DEFAULT_MAX_STREAMS,
    EventHub,
    Overflow,
    Subscriber,
    effective_cap,
    parse_event_id,
    render,
)

log = logging.getLogger("coord.ui")

STATIC = Path(__file__).resolve().parent / "static"
PAGE = STATIC / "page.html"
# The page loads only its own script and stylesheet, and connects only to this server.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


#: The web view's steering actions, and what each is called in a refusal.
STEERING = {"pause": "pausing", "resume": "resuming", "cancel": "cancelling"}
#: Seconds a cancel from the page waits for running todos to stop (as the CLI's 30, shorter).
CANCEL_WAIT = 10.0
#: The statuses a todo may be retried from.
RETRYABLE = {TodoStatus.failed, TodoStatus.skipped, TodoStatus.cancelled}

#: Why the view runs no git for a request by nobody signed in.
STRANGER = ("a request to the web view by nobody signed in runs nothing in a repository "
            "(serve the view with COORD_UI_AUTH=user:password and sign in)")


class NoGitForStrangers:
    """Serves a request by nobody signed in with no git process allowed
    (:func:`coordination.gitsafe.forbidden`): a page of another web site can make its
    visitor's browser send the view a GET, and must not make it run git in a checkout."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not (scope.get("state") or {}).get("user"):
            with gitsafe.forbidden(STRANGER):
                await self.app(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BasicAuth:
    """Every request (pages, JSON, events, static files) needs one of the users'
    ``user:password``; the user is then in ``request.state.user`` (who approves a gate
    from the page)."""

    def __init__(self, app: ASGIApp, users: Mapping[str, str]) -> None:
        self.app = app
        self.users = {u.encode(): p.encode() for u, p in users.items()}

    def allowed(self, header: str | None) -> str | None:
        """The user the header's credentials are of, or None."""
        if not header or not header.lower().startswith("basic "):
            return None
        try:
            given = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        name, _, password = given.partition(b":")
        expected = self.users.get(name)
        # (compared whatever the name, so an unknown user takes as long as a known one)
        ok = secrets.compare_digest(password, expected if expected is not None else b"\0" * 64)
        return name.decode("utf-8", "replace") if ok and expected is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        user = self.allowed(headers.get("authorization"))
        if user is not None:
            scope.setdefault("state", {})["user"] = user
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


class _EventStream(StreamingResponse):
    """A streaming response that calls ``closed`` however it ends: done, cut by the
    client, or cancelled before its body was ever started (a generator's own ``finally``
    would not run then)."""

    def __init__(self, body: AsyncIterator[str], closed: Callable[[], None]) -> None:
        super().__init__(body, media_type="text/event-stream",
                         headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        self.closed = closed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.closed()


async def _events(rt: Runtime, sweep_id: str, after: str, sub: Subscriber,
                  keepalive: float) -> AsyncIterator[str]:
    """A sweep's event stream: what came after ``after`` (read here, by pages), then what
    its feed brings (``sub`` has joined it already), until the sweep ends."""
    last = after
    yield "retry: 2000\n\n"
    try:
        # Over before the reads (ended, its end said): its end is in them.
        ended = await anyio.to_thread.run_sync(over, rt, sweep_id)
        while True:
            batch = await anyio.to_thread.run_sync(rt.events.read, sweep_id, last, READ_PAGE)
            messages, said = await anyio.to_thread.run_sync(render, rt, sweep_id, batch)
            for m in messages:
                yield _sse(m.event, m.data, m.id or last)
                last = m.id or last
            if said:
                return
            if len(batch) < READ_PAGE:
                break
        if ended:
            status = await anyio.to_thread.run_sync(rt.checkpoints.sweep_status, sweep_id)
            yield _sse("end", {"status": status}, last)
            return
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        log.warning("web view: sweep %s's events unreachable: %s", sweep_id, exc)
        return  # the browser reconnects from its last id
    while True:
        try:
            messages = await sub.next(keepalive)
        except Overflow:
            return  # fell behind: the browser reconnects and reads from its last id
        if not messages:
            yield ": idle\n\n"  # keeps proxies from closing a quiet stream
            continue
        for m in messages:
            if m.id is None:
                yield _sse(m.event, m.data, last)
                return
            if stream_id_key(m.id) <= stream_id_key(last):
                continue  # sent while catching up
            last = m.id
            yield _sse(m.event, m.data, m.id)


def local_hosts(address: str | None = None) -> list[str]:
    """Host names the view answers to without COORD_UI_HOSTS: localhost's, and the
    address it binds when that is one address (named by its user: no other site's)."""
    names = ["localhost", "127.0.0.1", "[::1]"]
    if address and address not in ("0.0.0.0", "::", ""):
        names.append(f"[{address}]" if ":" in address else address.lower())
    return names


class _Gate:
    """Who may decide a gate from the page: the signed-in user, the page's CSRF token (an
    HMAC of the user under a key made when the server starts), this server's origin."""

    def __init__(self) -> None:
        self.key = secrets.token_bytes(32)  # per server: a restart invalidates open pages' tokens

    @staticmethod
    def user_of(request: Request) -> str | None:
        user = getattr(request.state, "user", None)
        return user if isinstance(user, str) and user else None

    def token(self, user: str) -> str:
        return hmac.new(self.key, user.encode(), hashlib.sha256).hexdigest()

    def refusal(self, request: Request, what: str = "approving") -> JSONResponse | None:
        """Why ``request`` may not decide a gate, or steer (``what``), (a 403), or None."""
        user = self.user_of(request)
        if user is None:
            return JSONResponse({"error": f"{what} needs a signed-in user",
                                 "hint": "serve the view with COORD_UI_AUTH=user:password"},
                                status_code=403)
        given = request.headers.get("x-csrf-token") or ""
        if not secrets.compare_digest(given.encode(), self.token(user).encode()):
            return JSONResponse({"error": "missing or wrong CSRF token",
                                 "hint": "reload the page"}, status_code=403)
        origin = request.headers.get("origin")
        if origin and origin.split("://", 1)[-1] != request.headers.get("host"):
            return JSONResponse({"error": f"cross-origin request from {origin[:80]}"},
                                status_code=403)
        return None


class _View:
    """The view's endpoints over one runtime and catalog: pages, JSON documents, the
    events stream, a gate's decision and /metrics (see :func:`create_app`)."""

    def __init__(self, rt: Runtime, catalog: str | Path | None, breakers: BreakerReader | None,
                 block_ms: int, max_streams: int, keepalive: float) -> None:
        self.rt = rt
        self.svc = SweepService(rt, catalog)
        self.breakers = breakers
        self.keepalive = keepalive
        self.gate = _Gate()
        self.hub = EventHub(rt, block_ms=block_ms, max_streams=max_streams)
        # lazy: prometheus-client, only for an app that is built (the view's /metrics)
        from coordination.ops.metrics import CONTENT_TYPE, exposition, registry
        self.metrics_registry = registry(rt, Path(catalog) if catalog is not None else None)
        self.exposition, self.metrics_type = exposition, CONTENT_TYPE

    def fresh(self, build: Callable[[], object]) -> Callable[[], object]:
        """``build`` with the catalog's live sweeps' running todos shown in_progress, as
        at a CLI command's start; a GET writes nothing (an ended sweep nobody synced is
        left to the next CLI command: its sync may run the plan's checks)."""
        svc = self.svc

        def caught_up() -> object:
            if svc.catalog_path is not None:
                if live.of_this_redis(svc.catalog_path):
                    catch_up(svc.catalog_path, sync=False)
                else:
                    live.set_overlay(svc.catalog_path, {})
            return build()
        return caught_up

    # -- pages and documents ---------------------------------------------------------

    def page(self, request: Request) -> Response:
        return FileResponse(PAGE, media_type="text/html",
                            headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"})

    def api_session(self, request: Request) -> Response:
        user = self.gate.user_of(request)
        return JSONResponse({"user": user, "csrf": self.gate.token(user) if user else None},
                            headers={"Cache-Control": "no-store"})

    def api_overview(self, request: Request) -> Response:
        selector = request.query_params.get("repos")  # ?repos=SEL: `repo list --repos`
        if selector and "changed:" in selector and self.gate.user_of(request) is None:
            return JSONResponse({"error": f"?repos={selector[:80]} runs git in the checkouts "
                                          "(changed:REF): it needs a signed-in user",
                                 "hint": "serve the view with COORD_UI_AUTH=user:password"},
                                status_code=403)
        return _json(lambda: documents.overview(self.svc, self.rt, breakers=self.breakers,
                                                selector=selector))

    def api_sweeps(self, request: Request) -> Response:
        try:
            limit = max(1, min(10_000, int(request.query_params.get("limit", "50"))))
        except ValueError:
            return JSONResponse({"error": "limit must be a whole number"}, status_code=400)
        return _json(lambda: self.svc.list(limit=limit))

    def api_sweep(self, request: Request) -> Response:
        return _json(lambda: self.svc.status(request.path_params["sweep_id"]))

    def api_sweep_graph(self, request: Request) -> Response:
        return _json(lambda: documents.sweep_graph(self.svc, request.path_params["sweep_id"]))

    def api_todo(self, request: Request) -> Response:
        p = request.path_params
        return _json(lambda: documents.todo_detail(self.svc, p["sweep_id"], p["todo_id"]))

    def api_todo_logs(self, request: Request) -> Response:
        p = request.path_params
        raw = request.query_params.get("attempt")
        if raw is not None and not raw.isdigit():
            return JSONResponse({"error": f"attempt must be a whole number, not {raw[:40]!r}"},
                                status_code=400)
        return _json(lambda: todo_logs.todo_logs(self.rt, p["sweep_id"], p["todo_id"],
                                                 int(raw) if raw is not None else None))

    def api_plan(self, request: Request) -> Response:
        plan_id = request.path_params["plan_id"]
        return _json(self.fresh(lambda: documents.plan_status(self.svc, plan_id)))

    def api_plan_graph(self, request: Request) -> Response:
        plan_id = request.path_params["plan_id"]
        return _json(self.fresh(lambda: documents.plan_graph(self.svc, plan_id)))

    def api_repos(self, request: Request) -> Response:
        return _json(self.fresh(lambda: documents.repo_list(self.svc, self.rt)))

    def api_changes(self, request: Request) -> Response:
        return _json(lambda: changes.changes_list(self.svc, self.rt))

    def api_change(self, request: Request) -> Response:
        plan_id = request.path_params["plan_id"]
        return _json(lambda: changes.change_document(self.svc, self.rt, plan_id))

    def api_issues(self, request: Request) -> Response:
        status = request.query_params.get("status")
        return _json(lambda: insight.issues(self.svc.catalog(), status=status))

    def api_dependencies(self, request: Request) -> Response:
        return _json(lambda: insight.dependencies(self.svc.catalog()))

    def api_trends(self, request: Request) -> Response:
        days = request.query_params.get("days")
        return _json(lambda: insight.trends(self.rt.history, days))

    # -- what writes or streams ------------------------------------------------------

    async def api_decide(self, request: Request) -> Response:
        """Approve or reject a gate: an authenticated user, the page's CSRF token, this
        server's origin (see the module docstring)."""
        refused = self.gate.refusal(request)
        if refused is not None:
            return refused
        user = self.gate.user_of(request)
        try:
            body = await request.json()
        except ValueError:
            body = {}
        comment = body.get("comment") if isinstance(body, dict) else None
        p = request.path_params
        if p["action"] not in ("approve", "reject"):
            return JSONResponse({"error": f"no such action {p['action'][:40]!r}"},
                                status_code=404)
        decision = str(p["action"])

        def decide() -> object:
            # (the view votes for its signed-in user: with approvers:, a principal of
            # the allowed-signers file; the vote is sealed with via: web)
            return self.svc.decide(p["sweep_id"], p["todo_id"], decision, who=user,
                                   comment=str(comment or "")[:500], via="web")

        try:
            return JSONResponse(await anyio.to_thread.run_sync(decide))
        except CoordError as exc:
            return _error(exc)

    async def api_steer(self, request: Request) -> Response:
        """Pause, resume (unpause) or cancel a sweep, as `coord sweep pause|unpause|cancel`
        (the same SweepService calls, audited as the signed-in user via web); signed in,
        with the page's CSRF token, from this server's origin (as a gate's decision)."""
        action = str(request.path_params["action"])
        if action not in STEERING:
            return JSONResponse({"error": f"no such action {action[:40]!r}",
                                 "hint": "pause, resume or cancel"}, status_code=404)
        refused = self.gate.refusal(request, f"{STEERING[action]} a sweep")
        if refused is not None:
            return refused
        user = self.gate.user_of(request)
        assert user is not None
        sweep_id = request.path_params["sweep_id"]

        def steer() -> object:
            with control_log.acting(user, "web"):
                if action == "pause":
                    return self.svc.pause(sweep_id)
                if action == "resume":
                    return self.svc.unpause(sweep_id)
                return self.svc.cancel(sweep_id, wait=CANCEL_WAIT)

        try:
            return JSONResponse(await anyio.to_thread.run_sync(steer))
        except CoordError as exc:
            return _error(exc)

    async def api_retry(self, request: Request) -> Response:
        """Run a failed (skipped, cancelled) todo of an ended sweep again: `coord sweep
        resume ID --only TODO` (SweepService.resume), as the signed-in user via web."""
        refused = self.gate.refusal(request, "retrying a todo")
        if refused is not None:
            return refused
        user = self.gate.user_of(request)
        assert user is not None
        sweep_id, todo_id = request.path_params["sweep_id"], request.path_params["todo_id"]
        if self.rt.settings.embedded:
            return JSONResponse({
                "error": "this view runs no workers (embedded: no COORD_REDIS_URL), so it "
                         "cannot run a todo again",
                "hint": f"coord sweep resume {sweep_id} --only {todo_id} --wait"},
                status_code=409)

        def retry() -> object:
            status = self.rt.checkpoints.get_fields_all(sweep_id, [todo_id], ())
            now = (status.get(todo_id) or {}).get("status")
            if now not in RETRYABLE:
                self.svc.record(sweep_id)  # unknown sweep: 404 first
                raise UsageError(f"{todo_id} is {now or 'not a todo of ' + sweep_id}: only a "
                                 "failed, skipped or cancelled todo is retried")
            with control_log.acting(user, "web"):
                return self.svc.resume(sweep_id, only=[todo_id])

        try:
            return JSONResponse(await anyio.to_thread.run_sync(retry))
        except CoordError as exc:
            return _error(exc)

    async def api_log_stream(self, request: Request) -> Response:
        """An attempt's output as it is written (server-sent events: ``chunk``, ``end``),
        from ``Last-Event-ID`` or ``?after=``; the attempt is ``?attempt=N``."""
        p = request.path_params
        raw = request.query_params.get("attempt") or ""
        given = request.headers.get("last-event-id") or request.query_params.get("after")
        after = parse_event_id(given) if given else "0-0"
        if not raw.isdigit() or after is None:
            return JSONResponse({"error": "?attempt=N (a whole number) and, if given, an "
                                          "event id to go on after"}, status_code=400)
        hub = self.hub
        if not hub.admit():
            return PlainTextResponse("too many open streams; close some pages and reload\n",
                                     status_code=503, headers={"Retry-After": "5"})
        try:
            await anyio.to_thread.run_sync(self.svc.record, p["sweep_id"])
        except CoordError as exc:
            hub.release()
            return _error(exc)
        except BaseException:
            hub.release()
            raise
        body = todo_logs.follow(self.rt, p["sweep_id"], p["todo_id"], int(raw), after)
        return _EventStream(body, hub.release)

    async def api_events(self, request: Request) -> Response:
        sweep_id = request.path_params["sweep_id"]
        # A reconnecting EventSource sends the last id it saw; a first connect, the
        # id its graph document was read at. Either, when present, must be a stream id.
        given = {"Last-Event-ID": request.headers.get("last-event-id"),
                 "after": request.query_params.get("after")}
        for name, raw in given.items():
            if raw and parse_event_id(raw) is None:
                return JSONResponse({"error": f"bad event id in {name}: {raw[:40]!r}",
                                     "hint": "an event id looks like 1700000000000-0"},
                                    status_code=400)
        after = parse_event_id(given["Last-Event-ID"] or given["after"] or "0-0") or "0-0"
        hub = self.hub
        if not hub.admit():
            return PlainTextResponse(
                f"too many open event streams (the cap is {effective_cap(hub.max_streams)}); "
                "close some pages and reload\n", status_code=503, headers={"Retry-After": "5"})
        sub: Subscriber | None = None
        try:
            await anyio.to_thread.run_sync(self.svc.record, sweep_id)
            sub = Subscriber(asyncio.get_running_loop())
            await anyio.to_thread.run_sync(hub.join, sweep_id, sub)
        except BaseException as exc:
            if sub is not None:
                hub.leave(sweep_id, sub)
            hub.release()
            if isinstance(exc, CoordError):
                return _error(exc)
            if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
                return PlainTextResponse("Redis is unreachable; retry later\n",
                                         status_code=503, headers={"Retry-After": "5"})
            raise

        def closed() -> None:
            hub.leave(sweep_id, sub)
            hub.release()

        return _EventStream(_events(self.rt, sweep_id, after, sub, self.keepalive), closed)

    async def metrics(self, request: Request) -> Response:
        # The same exposition as `coord metrics`, behind the same Host check and auth.
        try:
            body = await anyio.to_thread.run_sync(self.exposition, self.metrics_registry)
        except CoordError as exc:
            return _error(exc)
        return Response(body, media_type=self.metrics_type, headers={"Cache-Control": "no-store"})

    def routes(self) -> list[Route | Mount]:
        pages = ["/", "/sweeps/{sweep_id}", "/plans/{plan_id}", "/changes", "/changes/{plan_id}",
                 "/issues", "/deps", "/trends"]
        api = {
            "/api/overview": self.api_overview,
            "/api/sweeps": self.api_sweeps,
            "/api/sweeps/{sweep_id}": self.api_sweep,
            "/api/sweeps/{sweep_id}/graph": self.api_sweep_graph,
            "/api/sweeps/{sweep_id}/events": self.api_events,
            "/api/sweeps/{sweep_id}/todos/{todo_id}": self.api_todo,
            "/api/sweeps/{sweep_id}/todos/{todo_id}/logs": self.api_todo_logs,
            "/api/sweeps/{sweep_id}/todos/{todo_id}/logs/stream": self.api_log_stream,
            "/api/session": self.api_session,
            "/api/plans/{plan_id}": self.api_plan,
            "/api/plans/{plan_id}/graph": self.api_plan_graph,
            "/api/repos": self.api_repos,
            "/api/changes": self.api_changes,
            "/api/changes/{plan_id}": self.api_change,
            "/api/issues": self.api_issues,
            "/api/dependencies": self.api_dependencies,
            "/api/trends": self.api_trends,
        }
        return [
            *(Route(path, self.page) for path in pages),
            Route("/metrics", self.metrics),
            *(Route(path, endpoint) for path, endpoint in api.items()),
            Route("/api/sweeps/{sweep_id}/steer/{action:str}", self.api_steer, methods=["POST"]),
            Route("/api/sweeps/{sweep_id}/todos/{todo_id}/retry", self.api_retry,
                  methods=["POST"]),
            Route("/api/sweeps/{sweep_id}/todos/{todo_id}/{action:str}", self.api_decide,
                  methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        ]


class HooksFirst:
    """``/hooks/...`` to the forge webhook endpoint (its deliveries carry signatures, not
    basic auth), everything else to the view."""

    def __init__(self, hooks: ASGIApp, view: ASGIApp) -> None:
        self.hooks, self.view = hooks, view

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/hooks/"):
            await self.hooks(scope, receive, send)
            return
        await self.view(scope, receive, send)


def create_app(rt: Runtime, catalog: str | Path | None, *, auth: str | None = None,
               users: Mapping[str, str] | None = None,
               breakers: BreakerReader | None = None, block_ms: int = 1000,
               hosts: Sequence[str] | None = None, max_streams: int = DEFAULT_MAX_STREAMS,
               keepalive: float = 15.0, hooks: Hooks | None = None) -> ASGIApp:
    """The web view over ``rt`` (Redis, or the embedded server) and the catalog file.

    ``auth``: ``user:password`` every request must send (basic auth); ``users``: more
    users and their passwords (COORD_UI_USERS), any of whom may sign in. ``breakers``:
    overrides how repo breaker states are read (default: as `coord repo list`). ``block_ms``:
    how long one read of the event streams waits for news. ``hosts``: the ``Host`` names
    answered (default: localhost's and COORD_UI_HOSTS); any other gets 400, so that no
    other web site can read the view through DNS rebinding. ``max_streams``: open event
    streams at most (then 503); ``keepalive``: seconds between comments on a quiet stream.
    ``hooks``: the forge webhook endpoint at ``/hooks/<kind>`` (default: one over ``rt``
    and the catalog, its secrets from the environment).
    """
    view = _View(rt, catalog, breakers, block_ms, max_streams, keepalive)
    app: ASGIApp = NoGitForStrangers(Starlette(routes=view.routes()))
    everyone = dict(users or {})
    if auth:
        name, _, password = auth.partition(":")
        everyone[name] = password
    if everyone:
        app = BasicAuth(app, everyone)
    app = HooksFirst((hooks or Hooks(rt, catalog)).app(), app)
    # Outermost: a request naming another host learns nothing, not even the auth realm.
    allowed = list(hosts) if hosts is not None else [*local_hosts(), *rt.settings.ui_host_names]
    return TrustedHostMiddleware(app, allowed_hosts=allowed, www_redirect=False)
