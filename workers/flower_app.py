"""Module-level app for `celery -A workers.flower_app flower` (what `coord flower` runs),
with Flower locked down to monitoring.

Flower can also *act*: its API sends tasks (``/api/task/apply|async-apply|send-task``),
revokes and aborts them, changes time and rate limits, and controls workers (shutdown,
pool restart/grow/shrink/autoscale, add/cancel consumer). Anyone holding Flower's
credentials could queue ``coord.run_todo`` with ids of their choosing or stop the fleet.
coord's Flower is for watching; sweeps are steered with the coord CLI.

Two independent layers refuse every such request:

1. ``coord flower`` passes ``--read_only=True`` (Flower's own read-only mode: its
   handlers answer 403 and the UI hides the control buttons).
2. Importing this module, which ``celery -A workers.flower_app`` does before Flower builds
   its application, replaces every state-changing HTTP method (POST, PUT, PATCH, DELETE)
   of every Flower request handler with a 403 refusal (:func:`lock_down`). It does not
   depend on Flower's options (``FLOWER_READ_ONLY=false``, a ``flowerconfig.py`` or a
   command line cannot undo it) and it is deny-by-default: it is not a list of known
   endpoints but a scan of every handler class of the ``flower`` package and of Flower's
   route table, so a control endpoint added by a later Flower is refused without being
   named here. Only handlers known to be read-only keep a non-GET method
   (:data:`READ_ONLY_HANDLERS`). Patching the classes, not the routes, also covers
   ``--url_prefix``, which rebuilds the routes. The result is then verified against the
   route table Flower's application is built from; if anything is left open, or Flower no
   longer builds its routes the way this relies on, the import fails and Flower does not
   start (fail closed).

``coord flower --allow-control`` (which needs ``COORD_FLOWER_AUTH``) skips both layers
and says so loudly; it is the only way to get the control endpoints back.

Two more fittings (:func:`fit`), with or without the lockdown:

- **The broker page and ``/api/queues/length``.** Flower picks its broker client by the
  URL's scheme, and coord's guarded transport (``workers.broker:Transport``) is none it
  knows (404 "broker is not supported"). :class:`CoordBroker` answers instead, reading
  the lengths through coord's runtime (every priority list of each queue, one round
  trip; whatever URL coord itself accepts: TLS, unix socket), and Flower lists every
  repo queue of the catalog and the control queue, not only those a live worker
  consumes (a queue nobody consumes is the one worth seeing).
- **No cross-origin reads.** On localhost without ``COORD_FLOWER_AUTH``, `coord flower`
  turns on Flower's unauthenticated GET API (``FLOWER_UNAUTHENTICATED_API``), for
  ``curl`` and scripts on the machine; Flower would then also answer every web site
  with ``Access-Control-Allow-Origin: *``. Those headers are removed: a page of another
  site open in the user's browser cannot read the API.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import flower.app
import flower.command  # noqa: F401  (imports all Flower's handler modules)
import flower.urls
import flower.views
import tornado.web
from tornado.routing import URLSpec

from coordination.catalog.file.store import CatalogStore
from coordination.runtime.context import Runtime
from coordination.settings import FLOWER_ALLOW_CONTROL_ENV as ALLOW_CONTROL_ENV
from coordination.settings import get_settings
from workers.app import create_app

log = logging.getLogger("coord.flower")

#: HTTP methods that can change something; GET, HEAD and OPTIONS only read.
MUTATING_METHODS = ("post", "put", "patch", "delete")

#: Handlers whose non-GET methods only read (``module.Class``): the tasks page POSTs its
#: datatable query (``post`` calls ``get``); the catch-all 404 handler answers 404 to any
#: method.
READ_ONLY_HANDLERS = frozenset({
    "flower.views.tasks.TasksDataTable",
    "flower.views.error.NotFoundErrorHandler",
})

REFUSAL = (
    "Refused: coord's Flower is read-only. It monitors workers and tasks; it does not "
    "send tasks or control workers. Steer sweeps with the coord CLI "
    "(coord sweep pause|cancel|resume ...).\n"
)


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _refuse(self: tornado.web.RequestHandler, *args: object, **kwargs: object) -> None:
    """The replacement of every state-changing method: 403 with a short reason."""
    self.set_status(403)
    self.set_header("Content-Type", "text/plain; charset=UTF-8")
    self.finish(REFUSAL)


def _make_refusal() -> Callable[..., Awaitable[None] | None]:
    # Authenticate first (Flower's basic auth answers 401 to a wrong password), then refuse.
    refuse = tornado.web.authenticated(_refuse)
    setattr(refuse, "_coord_refused", True)  # how _is_open knows it is ours
    return refuse


def _route_class(route: object) -> type:
    """The handler class of one entry of Flower's route table (a URLSpec or a tuple)."""
    cls = route.handler_class if isinstance(route, URLSpec) else None
    if cls is None and isinstance(route, (tuple, list)):
        cls = route[1]
    if not isinstance(cls, type):
        raise RuntimeError(f"coord's Flower lockdown cannot read the route {route!r}")
    return cls


def _route_pattern(route: object) -> str:
    if isinstance(route, URLSpec):
        return route.regex.pattern
    return str(route[0]) if isinstance(route, (tuple, list)) else repr(route)


def _routes() -> list[object]:
    """The route table Flower's application is built from (fails closed if it moved)."""
    table: object = getattr(flower.app, "default_handlers", None)
    source: object = getattr(flower.urls, "handlers", None)
    if not isinstance(table, list) or table is not source:
        raise RuntimeError(
            "coord's Flower lockdown cannot find Flower's route table "
            "(flower.app.default_handlers); this Flower version is not supported"
        )
    return list(table)  # a copy: callers only read it


def _flower_handler_classes() -> set[type]:
    """Every request handler class of the flower package, and every class Flower routes to."""
    found: set[type] = set()
    stack: list[type] = [tornado.web.RequestHandler]
    while stack:
        subs: list[type] = stack.pop().__subclasses__()
        for sub in subs:
            if sub not in found:
                found.add(sub)
                stack.append(sub)
    ours = {c for c in found if c.__module__.split(".")[0] == "flower"}
    return ours | {_route_class(r) for r in _routes()}


def _is_open(cls: type, method: str) -> bool:
    """Whether ``cls`` answers ``method`` with something other than a refusal or a 405."""
    impl = getattr(cls, method, None)
    if impl is None or impl is getattr(tornado.web.RequestHandler, method):
        return False  # tornado's default: 405 Method Not Allowed
    return not getattr(impl, "_coord_refused", False)


def lock_down() -> list[str]:
    """Refuse every state-changing method of every Flower handler; return what was refused
    (``module.Class.method``)."""
    refuse = _make_refusal()
    refused = []
    for cls in sorted(_flower_handler_classes(), key=_qualname):
        if _qualname(cls) in READ_ONLY_HANDLERS:
            continue
        for method in MUTATING_METHODS:
            if _is_open(cls, method):
                setattr(cls, method, refuse)
                refused.append(f"{_qualname(cls)}.{method}")
    left = unlocked_routes()
    if left:
        raise RuntimeError(f"coord's Flower lockdown left routes open: {', '.join(left)}")
    return refused


def unlocked_routes() -> list[str]:
    """Routes of Flower's table that still accept a state-changing method
    (``"POST /api/..."``); empty once :func:`lock_down` ran."""
    left = []
    for route in _routes():
        cls = _route_class(route)
        if _qualname(cls) in READ_ONLY_HANDLERS:
            continue
        pattern = _route_pattern(route)
        for method in MUTATING_METHODS:
            if _is_open(cls, method):
                left.append(f"{method.upper()} {pattern}")
    return left


def control_allowed() -> bool:
    """Whether `coord flower --allow-control` asked for the control endpoints."""
    value = os.environ.get(ALLOW_CONTROL_ENV, "")
    if value not in ("", "0", "1"):
        raise RuntimeError(f"{ALLOW_CONTROL_ENV} must be 1 or 0, not {value!r}")
    return value == "1"


@functools.lru_cache(maxsize=1)
def _runtime() -> Runtime:
    # Without a catalog: Flower reads, it never claims the namespace for one.
    return Runtime.create()


def catalog_queues() -> list[str]:
    """Every repo queue of the catalog (COORD_ECOSYSTEM) and the control queue; the
    control queue alone when the catalog cannot be read."""
    settings = get_settings()
    rt = _runtime()
    names = [rt.keys.control_queue]
    try:
        names += [rt.keys.repo_queue(r.name) for r in CatalogStore(settings.ecosystem).load().repos]
    except Exception as exc:  # noqa: BLE001 - the page still lists the workers' queues
        log.warning("Flower: catalog %s not read (%s); listing the workers' queues only",
                    settings.ecosystem, exc)
    return names


class CoordBroker:
    """Flower's broker interface (``async queues(names)``) over coord's runtime."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt

    def read(self, names: list[str]) -> list[dict[str, object]]:
        lengths = self.rt.queue_lengths(names)
        per_repo = self.rt.workers.per_repo()
        consumers = {self.rt.keys.repo_queue(repo): n for repo, n in per_repo.items()}
        consumers[self.rt.keys.control_queue] = len(self.rt.workers.live())
        return [{"name": n, "messages": lengths.get(n, 0), "messages_ready": lengths.get(n, 0),
                 "consumers": consumers.get(n, 0)} for n in names]

    async def queues(self, names: Iterable[str]) -> list[dict[str, object]]:
        return await asyncio.get_running_loop().run_in_executor(None, self.read, list(names))


_flower_queue_names = flower.views.BaseHandler.get_active_queue_names
_flower_default_headers = flower.views.BaseHandler.set_default_headers
CORS_HEADERS = ("Access-Control-Allow-Origin", "Access-Control-Allow-Headers",
                "Access-Control-Allow-Methods")


def _get_broker(self: flower.views.BaseHandler) -> CoordBroker:
    return CoordBroker(_runtime())


def _queue_names(self: flower.views.BaseHandler) -> list[str]:
    return sorted(set(_flower_queue_names(self)) | set(catalog_queues()))


def _default_headers(self: flower.views.BaseHandler) -> None:
    _flower_default_headers(self)
    for name in CORS_HEADERS:
        self.clear_header(name)


def fit() -> None:
    """coord's broker reader, its queue list, and no cross-origin headers (see above)."""
    setattr(flower.views.BaseHandler, "get_broker", _get_broker)
    setattr(flower.views.BaseHandler, "get_active_queue_names", _queue_names)
    setattr(flower.views.BaseHandler, "set_default_headers", _default_headers)


fit()

if control_allowed():
    print(
        "WARNING: coord flower --allow-control: Flower can SEND TASKS and CONTROL WORKERS "
        "(shutdown, pool, consumers, revoke, rate and time limits) for anyone who can log in.",
        file=sys.stderr,
        flush=True,
    )
    log.warning("Flower control endpoints are enabled (--allow-control)")
else:
    lock_down()

app = create_app()
