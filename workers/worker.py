"""`coord worker --repo NAME`: a Celery worker for one repo's queue.

It consumes ``<ns>.repo.<NAME>`` and the control queue, runs todos as shell
commands in the repo's checkout, and runs a supervisor thread so sweeps keep
moving (lost todos re-sent, deadlines enforced) as long as any worker lives.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from coordination.errors import NotFoundError, UsageError
from coordination.settings import get_settings


def worker_hostname(repo: str) -> str:
    """Unique per process, so two workers of one repo on one host differ in Flower."""
    return f"{repo}-{os.getpid()}@{socket.gethostname()}"


def build_worker(
    file: Path,
    repo: str,
    *,
    path: str | None = None,
    concurrency: int | None = None,
    loglevel: str = "INFO",
    preflight: bool = True,
) -> Any:
    """A ready-to-start Celery worker (``.start()`` blocks until shutdown).

    With ``preflight`` (the default; off only to inspect the configuration) it
    first checks that Redis answers and raises ``RedisUnreachable`` if not.
    """
    from celery import signals

    from coordination.catalog.store import CatalogStore
    from coordination.runtime.context import get_runtime
    from coordination.sweeps.supervisor import SupervisorThread
    from workers.app import create_app, limits_from_catalog
    from workers.runner import WorkerInfo
    from workers.tasks import register_worker

    settings = get_settings()
    if settings.embedded:
        raise UsageError(
            "coord worker needs a Redis shared with the CLI",
            hint="set COORD_REDIS_URL=redis://HOST:6379/0 (embedded sweeps run their own workers)",
        )
    catalog = CatalogStore(file).load()
    spec = catalog.repo(repo)
    if spec is None:
        known = ", ".join(r.name for r in catalog.repos) or "none"
        raise NotFoundError(f"unknown repo {repo!r} in {file} (known: {known})")
    from coordination.catalog.models import checkout_path

    base = Path(file).resolve().parent
    checkout = checkout_path(path, Path.cwd()) if path else spec.checkout(base)
    if not checkout.is_dir():
        raise UsageError(
            f"checkout {checkout} of repo {repo} does not exist",
            hint="clone the repo there, or pass --path DIR",
        )
    concurrency = concurrency or spec.concurrency
    if concurrency < 1:
        raise UsageError("--concurrency must be at least 1")

    if preflight:
        from coordination.runtime.preflight import check_redis

        # Bad input first (exit 2, above); then fail fast (exit 1, the problem named)
        # instead of Celery's retry-forever at start. Once started, the worker
        # reconnects forever, as it should.
        check_redis(settings)
    longest_todo, longest_sweep = limits_from_catalog(catalog)
    app = create_app(settings, longest_todo=longest_todo, longest_sweep=longest_sweep)
    rt = get_runtime()
    from coordination.dispatch import CeleryDispatcher

    rt.dispatcher = CeleryDispatcher(app, rt.keys)
    app.coord_runtime = rt
    hostname = worker_hostname(repo)
    register_worker(WorkerInfo(repo=repo, path=str(checkout.resolve()), name=hostname))

    supervisor = SupervisorThread(rt)

    beat: list[Any] = []

    @signals.worker_ready.connect(weak=False)
    def _start_supervisor(**_: Any) -> None:
        from workers.liveness import start_beat

        supervisor.start()
        beat.append(start_beat(rt, hostname, [repo]))

    @signals.worker_shutting_down.connect(weak=False)
    def _stop_supervisor(**_: Any) -> None:
        supervisor.stop()
        for b in beat:
            b.stop()

    return app.Worker(
        hostname=hostname,
        queues=[rt.keys.repo_queue(repo), rt.keys.control_queue],
        pool="threads",
        # one more thread than todos may run, so barriers never wait behind a long todo
        concurrency=concurrency + 1,
        loglevel=loglevel,
        without_mingle=True,
        without_gossip=True,
        optimization="fair",
    )
