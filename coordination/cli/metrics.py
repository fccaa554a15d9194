"""`coord metrics`: the Prometheus exporter (prometheus-client loads only here)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import click
from prometheus_client import make_wsgi_app
from prometheus_client.registry import CollectorRegistry

from coordination.cli.context import Context
from coordination.cli.options import listen_options
from coordination.cli.render import err_console
from coordination.errors import UsageError
from coordination.ops.metrics import guarded, local_names, registry
from coordination.runtime.context import get_runtime
from coordination.settings import get_settings

DEFAULT_PORT = 9808  # celery-exporter's


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a scrape in progress never holds the exit


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Quiet(WSGIRequestHandler):
    def log_message(self, *_: Any) -> None:
        pass


def serve(reg: CollectorRegistry, address: str, port: int, hosts: Sequence[str]
          ) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``reg`` on ``address:port`` (every path), answering only the ``Host``
    names ``hosts``; the server and its thread."""
    cls = _Server6 if ":" in address else _Server
    server = make_server(address, port, guarded(make_wsgi_app(reg), hosts), cls, _Quiet)
    thread = threading.Thread(target=server.serve_forever, name="coord-metrics", daemon=True)
    thread.start()
    return server, thread


@click.command()
@listen_options(click.IntRange(0, 65535), DEFAULT_PORT,
                "TCP port the exporter listens on (0: any free port).",
                "Interface to bind (0.0.0.0: every interface).")
@click.pass_obj
def metrics(obj: Context, port: int, address: str) -> None:
    """Serve coord's metrics for Prometheus on /metrics.

    Every scrape reads coord's Redis (COORD_REDIS_URL, else the catalog's embedded
    server): celery-exporter's names where they apply (celery_task_sent_total,
    celery_task_succeeded_total, celery_task_failed_total, celery_task_runtime,
    celery_worker_up, celery_queue_length) and coord_* for the rest. Counters live
    in Redis, so they survive restarts of workers and of this exporter.

    Only requests whose Host names localhost, the bound address or a name in
    COORD_UI_HOSTS are answered (others get 400: no web site can read the metrics
    through DNS rebinding). Port 0: any free port (the one taken is printed).

    \b
    Examples:
      COORD_REDIS_URL=redis://localhost:6379/0 coord metrics --port 9808
      curl -s localhost:9808/metrics | grep ^coord_todos
      COORD_UI_HOSTS=metrics.lan coord metrics --address 0.0.0.0
    """
    reg = registry(get_runtime(obj.file), obj.file)
    hosts = [*local_names(address), *get_settings().ui_host_names]
    try:
        server, thread = serve(reg, address, port, hosts)
    except OSError as exc:
        raise UsageError(f"could not serve metrics on {address}:{port}: {exc.strerror or exc}",
                         hint="is the port in use? pick another with --port") from exc
    host = f"[{address}]" if ":" in address else address
    err_console().print(f"coord metrics on http://{host}:{server.server_port}/metrics "
                        "(Ctrl-C stops it)")
    try:
        threading.Event().wait()
    finally:
        server.shutdown()
        thread.join(timeout=5)
