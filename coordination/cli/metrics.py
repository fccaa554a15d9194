"""`coord metrics`: the Prometheus exporter (prometheus-client loads only here)."""

from __future__ import annotations

import threading

import click
from prometheus_client import start_http_server

from coordination.cli.context import Context
from coordination.cli.render import err_console
from coordination.errors import UsageError
from coordination.ops.metrics import registry
from coordination.runtime.context import get_runtime

DEFAULT_PORT = 9808  # celery-exporter's


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True)
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Interface to bind (0.0.0.0: every interface).")
@click.pass_obj
def metrics(obj: Context, port: int, address: str) -> None:
    """Serve coord's metrics for Prometheus on /metrics.

    Every scrape reads coord's Redis (COORD_REDIS_URL, else the catalog's embedded
    server): celery-exporter's names where they apply (celery_task_sent_total,
    celery_task_succeeded_total, celery_task_failed_total, celery_task_runtime,
    celery_worker_up, celery_queue_length) and coord_* for the rest. Counters live
    in Redis, so they survive restarts of workers and of this exporter.

    \b
    Examples:
      COORD_REDIS_URL=redis://localhost:6379/0 coord metrics --port 9808
      curl -s localhost:9808/metrics | grep ^coord_todos
    """
    reg = registry(get_runtime(obj.file), obj.file)
    try:
        server, thread = start_http_server(port, addr=address, registry=reg)
    except OSError as exc:
        raise UsageError(f"could not serve metrics on {address}:{port}: {exc.strerror or exc}",
                         hint="is the port in use? pick another with --port") from exc
    host = f"[{address}]" if ":" in address else address
    err_console().print(f"coord metrics on http://{host}:{port}/metrics (Ctrl-C stops it)")
    try:
        threading.Event().wait()
    finally:
        server.shutdown()
        thread.join(timeout=5)
