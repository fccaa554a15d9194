"""The Celery app: one factory, configured from settings and the catalog.

This app sends; a worker's (:func:`workers.app.create_app`) is the same with
coord's task registered on it.

Every setting that matters for "nothing lost, nothing twice" is set here on
purpose rather than left at Celery's defaults:

- JSON only, for tasks and results: only JSON crosses the broker.
- ``task_acks_late`` + ``task_reject_on_worker_lost``: a todo whose worker dies
  is delivered again rather than dropped.
- prefetch 1: a worker never hoards todos another worker could start.
- ``visibility_timeout`` above the longest todo budget, so Redis does not hand
  a long todo to a second worker while the first still runs it (our leases
  would stop it anyway; this keeps the noise down). Quick recovery after a
  worker dies does not wait for it: the supervisor re-dispatches a todo as
  soon as its lease has expired.
- no results: coord's task ignores its result (checkpoints are the truth) and
  there are no chords; no STARTED state, no task events unless Flower turns
  them on (it broadcasts ``enable_events``), so a todo costs Redis no more
  commands than it needs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, TypedDict

from celery import Celery

from coordination.dispatch.limits import DEFAULT_LONGEST_TODO as DEFAULT_LONGEST_TODO
from coordination.dispatch.limits import limits_from_catalog as limits_from_catalog
from coordination.dispatch.limits import todo_budget as todo_budget
from coordination.keys import Keys
from coordination.redis_url import celery_url, is_sentinel, sentinel_target, tls_options
from coordination.runtime.context import every_setting

if TYPE_CHECKING:
    # (types only: a forked embedded worker, which builds its app from the runtime's
    # settings, never imports pydantic's settings model for it)
    from coordination.settings import Settings

# Embedded mode: the in-memory transport polls; Celery's default (1 s) gives
# about 15 tasks/s here, 10 ms gives several hundred.
EMBEDDED_POLLING_INTERVAL = 0.01


#: coord's kombu transport (workers/broker.py), by path and under the alias a unix
#: socket URL names it by (``coord+socket:///path``): kombu reads a transport off a
#: URL's scheme before it looks at ``broker_transport``.
GUARDED_TRANSPORT = "workers.broker:Transport"
#: The same over the master a sentinel:// URL's sentinels name (kombu's sentinel channel).
SENTINEL_TRANSPORT = "workers.broker:SentinelTransport"
SOCKET_TRANSPORT = "coord"
#: The scheme each sentinel's URL is given to kombu under: an alias of
#: :data:`SENTINEL_TRANSPORT`. At a failover kombu's connection moves to the next
#: sentinel by parsing its URL again, and takes the transport from the URL's scheme
#: (``Connection.switch``), not from ``broker_transport``: under ``sentinel://`` a
#: worker went on, after its first failover, over kombu's own channel, without the
#: guards of workers/broker.py (seen: what it held and could not put back dumped by
#: kombu into files of the temporary directory, at each failover).
SENTINEL_SCHEME = "coord-sentinel"


#: Celery's settings that never vary (see the module's docstring): JSON only, acks late,
#: prefetch 1, no results, no events, reconnect forever.
FIXED_CONF: dict[str, object] = dict(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_create_missing_queues=True,
    redis_socket_timeout=10,
    redis_socket_connect_timeout=5,
    task_ignore_result=True,
    task_track_started=False,
    task_send_sent_event=False,
    worker_send_task_events=False,
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,
    worker_cancel_long_running_tasks_on_connection_loss=True,
    enable_utc=True,
    # coord tasks are idempotent per (sweep, todo); Celery's own retry is not used.
    task_default_retry_delay=1,
)


class AppOptions(TypedDict, total=False):
    """What sizes an app beside the settings (see :func:`celery_app`)."""

    url: str | None
    longest_todo: float
    longest_sweep: float | None


def celery_app(
    settings: Settings | None = None,
    *,
    url: str | None = None,
    longest_todo: float = DEFAULT_LONGEST_TODO,
    longest_sweep: float | None = None,
) -> Celery:
    """A configured Celery app (no task registered: see workers.app.create_app).

    ``url``: the Redis the runtime uses (embedded: the server beside the catalog);
    by default ``COORD_REDIS_URL``. With neither, Celery's in-memory transport, for
    a runtime on the in-process stand-in (the unit tests'). ``longest_todo`` /
    ``longest_sweep`` come from the catalog (see :func:`limits_from_catalog`) and
    size the visibility timeout and result expiry.
    """
    settings = settings or every_setting()
    keys = Keys(settings.namespace)
    longest_sweep = max(longest_sweep or settings.sweep_deadline, longest_todo)
    transport_options: dict[str, object] = {
        "visibility_timeout": _visibility(settings, longest_todo)}
    url = url or settings.redis_url
    if url is None:
        broker, backend = "memory://localhost/", "cache+memory://localhost/"
        transport_options["polling_interval"] = EMBEDDED_POLLING_INTERVAL
    else:
        broker, backend = _redis_endpoints(url, settings, keys, transport_options)
    # Current and default: Celery builds chain/chord callbacks from message
    # dicts with the *current* app; any other would publish to amqp://localhost.
    app = Celery(f"{settings.namespace}", broker=broker, backend=backend, set_as_current=True)
    app.set_default()
    app.conf.update(
        FIXED_CONF,
        task_default_queue=keys.control_queue,
        broker_transport_options=transport_options,
        result_backend_transport_options=dict(transport_options),
        result_expires=int(longest_sweep + 24 * 3600),
    )
    if url is not None:
        _guard_transport(app, url)
    return app


def _visibility(settings: Settings, longest_todo: float) -> int:
    """Seconds before Redis hands an unacked message out again: above the longest
    todo's budget, unless COORD_VISIBILITY_TIMEOUT says."""
    if settings.visibility_timeout is not None:
        # Rounded up: 0.5 must not become 0 (every unacked message handed out again at once).
        return math.ceil(settings.visibility_timeout)
    return int(max(longest_todo, DEFAULT_LONGEST_TODO) * 1.25 + 300)


def _redis_endpoints(url: str, settings: Settings, keys: Keys,
                     transport_options: dict[str, object]) -> tuple[str, str]:
    """The broker and result backend URLs of the Redis at ``url``, adding to
    ``transport_options`` how its transport reaches it."""
    # TLS options leave the URL and travel as broker_use_ssl/redis_backend_use_ssl (below).
    broker = backend = celery_url(url)
    if broker.startswith("redis+socket://"):
        # A socket URL names its transport ("redis+"), which would win over
        # broker_transport below: the guarded transport under its own alias.
        broker = SOCKET_TRANSPORT + broker.removeprefix("redis")
    # Keep coord's Celery keys apart from other apps on the same Redis.
    transport_options["global_keyprefix"] = keys.celery_prefix
    # Over a cut network a read must fail (and the consumer reconnect) rather
    # than hang for good; BRPOP itself blocks for only a second at a time.
    transport_options.update(socket_timeout=10, socket_connect_timeout=5,
                             socket_keepalive=True)
    # kombu's ack emulation (an unacked hash and index in Redis, 4 commands a
    # message) only when a visibility timeout is asked for: coord's supervisor
    # re-sends what a dead worker held (see workers/broker.py, point 5).
    transport_options["ack_emulation"] = settings.visibility_timeout is not None
    if is_sentinel(url):
        # kombu's sentinel channel: the master by name, asked of the sentinels at
        # each (re)connect; their password and TLS (a dict kombu hands to redis-py).
        from coordination.connection.sentinel import sentinel_kwargs  # lazy: sentinel only

        transport_options["master_name"] = sentinel_target(url).master
        transport_options["sentinel_kwargs"] = sentinel_kwargs(
            url, socket_timeout=10, socket_connect_timeout=5)
        # (the result backend keeps sentinel://: Celery's sentinel backend by its scheme)
        broker = ";".join(SENTINEL_SCHEME + one.removeprefix("sentinel")
                          for one in broker.split(";"))
    return broker, backend


def _guard_transport(app: Celery, url: str) -> None:
    """kombu's Redis transport with its two fatal paths guarded (broker restart,
    malformed message: see workers/broker.py), and TLS for all three clients."""
    app.conf.broker_transport = SENTINEL_TRANSPORT if is_sentinel(url) else GUARDED_TRANSPORT
    from kombu.transport import TRANSPORT_ALIASES  # lazy: kombu, only with celery

    TRANSPORT_ALIASES.setdefault(SOCKET_TRANSPORT, GUARDED_TRANSPORT)
    TRANSPORT_ALIASES.setdefault(SENTINEL_SCHEME, SENTINEL_TRANSPORT)
    # rediss://: one URL configures all three clients; CERT_REQUIRED unless it says otherwise.
    tls = tls_options(url)
    if tls:
        app.conf.broker_use_ssl = tls
        app.conf.redis_backend_use_ssl = dict(tls)
