"""Hostile input through Flower and through the broker: coord's Flower only monitors, and
coord's apps register only coord's tasks.

The HTTP tests build Flower's real tornado application in-process (Flower 2.2's handler
classes, coord's Celery app, basic auth) with Flower's own ``read_only`` mode *off*, so
what they see is coord's lockdown alone (workers/flower_app.py). The real `coord flower`
process against a real Redis and worker is tests/integration/test_flower.py.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from coordination.settings import Settings

pytestmark = pytest.mark.timeout(120)

COORD_TASKS = {"coord.run_todo"}
CELERY_BUILTINS = {
    "celery.map", "celery.starmap", "celery.chunks", "celery.group", "celery.chain",
    "celery.chord", "celery.chord_unlock", "celery.accumulate", "celery.backend_cleanup",
}
URL = "redis://127.0.0.1:1/0"  # never connected to

# Every route of Flower 2.2 that sends tasks or controls workers: refused.
REFUSED = {
    "POST /api/worker/shutdown/(.+)",
    "POST /api/worker/pool/restart/(.+)",
    "POST /api/worker/pool/grow/(.+)",
    "POST /api/worker/pool/shrink/(.+)",
    "POST /api/worker/pool/autoscale/(.+)",
    "POST /api/worker/queue/add-consumer/(.+)",
    "POST /api/worker/queue/cancel-consumer/(.+)",
    "POST /api/task/apply/(.+)",
    "POST /api/task/async-apply/(.+)",
    "POST /api/task/send-task/(.+)",
    "POST /api/task/abort/(.+)",
    "POST /api/task/timeout/(.+)",
    "POST /api/task/rate-limit/(.+)",
    "POST /api/task/revoke/(.+)",
}
# Non-GET methods left open, each read-only: the tasks page's datatable query, the 404 page.
OPEN_NON_GET = {"POST /tasks/datatable$", "POST .*"}
# Flower 2.2's whole route table. A Flower upgrade that adds a route fails here, so that
# someone looks at what it does before it is served (a GET that acts would not be caught
# by the method-based lockdown).
FLOWER_ROUTES = {
    "/$", "/workers$", "/worker/(.+)$", "/task/(.+)$", "/tasks$", "/tasks/datatable$",
    "/broker$", "/api/workers", "/api/tasks", "/api/task/types", "/api/queues/length",
    "/api/task/info/(.*)", "/api/task/result/(.+)", "/metrics", "/healthcheck",
    "/static/(.*)", "/login/?", "/logout$", ".*",
} | {r.split(" ", 1)[1] for r in REFUSED}


# -- registered tasks -----------------------------------------------------------------------
@pytest.mark.parametrize("redis_url", [None, URL], ids=["embedded", "redis"])
def test_the_app_registers_only_coords_tasks(redis_url: str | None) -> None:
    from workers.app import create_app
    from workers.tasks import TASK_NAMES

    app = create_app(Settings(redis_url=redis_url))
    assert set(app.tasks) == COORD_TASKS == TASK_NAMES
    assert not CELERY_BUILTINS & set(app.tasks)


def test_a_sending_app_made_to_serve_registers_coords_task_once_and_only_it() -> None:
    """What an embedded run does to the app a sender wired (coordination.dispatch.sender):
    the same app serves, coord's task registered once, Celery's built-ins dropped."""
    from coordination.dispatch.app import celery_app
    from workers.app import serving

    app = celery_app(Settings(redis_url=URL))
    assert "coord.run_todo" not in app.tasks
    assert serving(app) is app
    assert set(app.tasks) == COORD_TASKS
    task = app.tasks["coord.run_todo"]
    assert serving(app) is app and app.tasks["coord.run_todo"] is task  # not again


def test_a_shared_task_imported_before_the_app_is_not_registered_either() -> None:
    from celery import shared_task

    from workers.app import create_app

    @shared_task(name="evil.shell")
    def evil() -> None:  # pragma: no cover - never runs
        raise AssertionError("ran")

    assert set(create_app(Settings()).tasks) == COORD_TASKS


# -- the route table ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flower_app_module() -> Any:
    import workers.flower_app as module

    return module


def _routes() -> list[tuple[str, type]]:
    import flower.urls

    out = []
    for r in flower.urls.handlers:
        cls = getattr(r, "handler_class", None) or r[1]
        out.append((r.regex.pattern if hasattr(r, "regex") else r[0], cls))
    return out


def _classify(method: str, cls: type) -> str:
    import tornado.web

    impl = getattr(cls, method)
    if impl is getattr(tornado.web.RequestHandler, method):
        return "405"
    return "refused" if getattr(impl, "_coord_refused", False) else "open"


def test_every_route_that_sends_or_controls_is_refused(flower_app_module: Any) -> None:
    routes = _routes()
    assert {p for p, _ in routes} == FLOWER_ROUTES
    seen: dict[str, set[str]] = {"refused": set(), "open": set()}
    for pattern, cls in routes:
        for m in ("post", "put", "patch", "delete"):
            kind = _classify(m, cls)
            if kind != "405":
                seen[kind].add(f"{m.upper()} {pattern}")
    assert seen["refused"] == REFUSED
    assert seen["open"] == OPEN_NON_GET
    assert flower_app_module.unlocked_routes() == []


def test_lockdown_is_deny_by_default(flower_app_module: Any) -> None:
    """A handler coord has never heard of, routed by Flower, gets refused too."""
    import flower.urls
    from flower.api import BaseApiHandler

    class NewControl(BaseApiHandler):
        async def post(self, name: str) -> None:  # pragma: no cover - refused
            raise AssertionError("ran")

        async def delete(self, name: str) -> None:  # pragma: no cover - refused
            raise AssertionError("ran")

    NewControl.__module__, NewControl.__qualname__ = "flower.api.future", "NewControl"
    flower.urls.handlers.insert(0, (r"/api/future/(.+)", NewControl))
    try:
        assert flower_app_module.unlocked_routes() == ["POST /api/future/(.+)", "DELETE /api/future/(.+)"]
        refused = flower_app_module.lock_down()
        assert refused == ["flower.api.future.NewControl.post", "flower.api.future.NewControl.delete"]
        assert flower_app_module.unlocked_routes() == []
    finally:
        flower.urls.handlers.remove((r"/api/future/(.+)", NewControl))


def test_a_flower_without_the_expected_route_table_does_not_start(
    flower_app_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flower.app

    monkeypatch.setattr(flower.app, "default_handlers", list(flower.app.default_handlers))
    with pytest.raises(RuntimeError, match="route table"):
        flower_app_module.lock_down()


def test_control_env_accepts_only_0_or_1(flower_app_module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.cli.worker import ALLOW_CONTROL_ENV

    monkeypatch.setenv(ALLOW_CONTROL_ENV, "yes")
    with pytest.raises(RuntimeError, match=ALLOW_CONTROL_ENV):
        flower_app_module.control_allowed()
    monkeypatch.setenv(ALLOW_CONTROL_ENV, "1")
    assert flower_app_module.control_allowed()
    monkeypatch.delenv(ALLOW_CONTROL_ENV)
    assert not flower_app_module.control_allowed()


# -- the command line -----------------------------------------------------------------------
def test_flower_argv_is_read_only_unless_control_is_asked_for_with_auth() -> None:
    from coordination.cli.worker import flower_argv
    from coordination.errors import UsageError

    locked = flower_argv(port=5555, address="127.0.0.1", auth=None)
    assert locked[:6] == [sys.executable, "-m", "celery", "-A", "workers.flower_app", "flower"]
    assert "--read_only=True" in locked
    with pytest.raises(UsageError, match="authentication"):
        flower_argv(port=5555, address="127.0.0.1", auth=None, allow_control=True)
    opened = flower_argv(port=5555, address="127.0.0.1", auth="u:p", allow_control=True)
    assert "--read_only=True" not in opened and "--basic-auth=u:p" in opened


# -- Flower's application, in-process -------------------------------------------------------
AUTH = "user:pass"
WORKER = "api-1@host"

# (path, JSON body) of every refused endpoint, with arguments that would work.
DANGEROUS = [
    ("/api/task/async-apply/coord.run_todo",
     {"kwargs": {"sweep_id": "S", "plan_id": "P", "todo_id": "T", "repo": "api"}}),
    ("/api/task/apply/coord.run_todo",
     {"kwargs": {"sweep_id": "S", "plan_id": "P", "todo_id": "T", "repo": "api"}}),
    ("/api/task/send-task/celery.map", {"kwargs": {"task": {}, "it": []}}),
    ("/api/task/revoke/some-task-id?terminate=true", None),
    ("/api/task/abort/some-task-id", None),
    (f"/api/task/timeout/coord.run_todo?workername={WORKER}&hard=1", None),
    (f"/api/task/rate-limit/coord.run_todo?workername={WORKER}&ratelimit=1/m", None),
    (f"/api/worker/shutdown/{WORKER}", None),
    (f"/api/worker/pool/restart/{WORKER}", None),
    (f"/api/worker/pool/grow/{WORKER}?n=4", None),
    (f"/api/worker/pool/shrink/{WORKER}?n=1", None),
    (f"/api/worker/pool/autoscale/{WORKER}?min=1&max=9", None),
    (f"/api/worker/queue/add-consumer/{WORKER}?queue=coord.repo.web", None),
    (f"/api/worker/queue/cancel-consumer/{WORKER}?queue=coord.repo.api", None),
]


class Spy:
    """Records every attempt to publish a task or broadcast a control command."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, what: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(what)
            raise RuntimeError(f"{what} must not be reached")

        return record


@pytest.fixture(params=["", "flower"], ids=["root", "url_prefix"])
def flower_http(
    flower_app_module: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """(fetch, spy): an HTTP client on an in-process Flower with basic auth, read_only off,
    served at / or under ``--url_prefix`` (which makes Flower rebuild its routes)."""
    prefix = f"/{request.param}" if request.param else ""
    from flower.app import Flower
    from flower.options import options
    from flower.urls import settings
    from tornado.httpclient import HTTPClientError
    from tornado.testing import AsyncHTTPTestCase

    from workers.app import create_app

    capp = create_app(Settings())  # embedded: in-memory broker, nothing to connect to
    spy = Spy()
    monkeypatch.setattr(capp, "send_task", spy("send_task"))
    monkeypatch.setattr(capp.control, "broadcast", spy("broadcast"))
    monkeypatch.setattr(capp.control, "revoke", spy("revoke"))
    # tornado's global options (no monkeypatch: OptionParser does not support delattr)
    saved = (list(options.basic_auth or []), options.read_only, options.url_prefix)
    options.basic_auth = [AUTH]
    options.read_only = False
    options.url_prefix = request.param

    class Case(AsyncHTTPTestCase):
        def get_app(self) -> Any:
            return Flower(capp=capp, options=options, io_loop=self.io_loop, **settings)

        def runTest(self) -> None:  # pragma: no cover - unittest plumbing
            pass

    case = Case()
    case.setUp()

    def fetch(path: str, method: str = "GET", body: Any = None, auth: str = AUTH) -> tuple[int, str]:
        headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
        if method == "POST":
            headers["Content-Type"] = "application/json"
            data = json.dumps(body) if body is not None else ""
        else:
            data = None
        try:
            resp = case.fetch(prefix + path, method=method, body=data, headers=headers,
                              raise_error=False)
        except HTTPClientError as exc:  # pragma: no cover
            return exc.code, ""
        return resp.code, resp.body.decode(errors="replace")

    try:
        yield fetch, spy
    finally:
        case.tearDown()
        options.basic_auth, options.read_only, options.url_prefix = saved


@pytest.mark.parametrize("path,body", DANGEROUS, ids=[p.split("?")[0] for p, _ in DANGEROUS])
def test_dangerous_endpoints_answer_403_and_send_nothing(
    flower_http: Any, path: str, body: Any
) -> None:
    fetch, spy = flower_http
    code, text = fetch(path, "POST", body)
    assert code == 403, text
    assert "coord's Flower is read-only" in text
    assert spy.calls == []


def test_a_wrong_password_is_still_401_before_any_refusal(flower_http: Any) -> None:
    fetch, spy = flower_http
    code, _ = fetch("/api/task/async-apply/coord.run_todo", "POST", {}, auth="user:wrong")
    assert code == 401 and spy.calls == []


def test_monitoring_keeps_working(flower_http: Any) -> None:
    fetch, _ = flower_http
    for path in ("/api/tasks", "/api/task/types", "/healthcheck", "/tasks", "/workers"):
        code, text = fetch(path)
        assert code == 200, (path, text[:500])
    assert json.loads(fetch("/api/task/types")[1]) == {"task-types": []}
    code, text = fetch("/tasks/datatable?draw=1&start=0&length=10&search[value]=&order[0][column]=0"
                       "&order[0][dir]=asc&columns[0][data]=name", "POST", None)
    assert code == 200, text[:500]
    assert json.loads(text)["recordsTotal"] == 0
