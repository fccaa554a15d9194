"""Embedded mode: the workers inside the process that runs a sweep.

On the catalog's own Redis server (the runtime's ``url``) they are what a
multi-repo `coord worker` is: one Celery worker consuming every repo's queue over
kombu's Redis transport, with a thread per slot (each repo's lease keeps it to its
concurrency) and a liveness beat, so other terminals see it in `coord workers`.
(kombu's event loop is one per process: one worker, not one per repo.) On an
in-process stand-in (no ``url``: the unit tests') Celery's in-memory transport,
one worker per repo queue. The tasks and the events are those of the distributed
mode either way.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery
from celery.worker import WorkController

from coordination.dispatch import dispatcher_for
from coordination.errors import RuntimeFault
from coordination.runtime.context import Runtime
from workers.app import create_app
from coordination.sweeps.notify import NotifierThread
from workers.liveness import WorkerBeat, start_beat
from workers.runner import WorkerInfo
from workers.tasks import register_worker

log = logging.getLogger("coord.embedded")


READY_TIMEOUT = 30.0


def _start(app: Celery, hostname: str, queues: list[str], concurrency: int
           ) -> tuple[WorkController, threading.Thread]:
    """Start one in-process worker and wait until its consumer is bound.

    The memory transport drops a message sent to an exchange no queue is
    bound to yet, so nothing may be sent before every consumer is ready.
    """
    class _Ready(WorkController):  # type: ignore[misc]
        def __init__(self, *a: object, **kw: object) -> None:
            self.ready = threading.Event()
            super().__init__(*a, **kw)

        def on_consumer_ready(self, consumer: object) -> None:
            self.ready.set()

    worker = _Ready(
        app=app,
        hostname=hostname,
        queues=queues,
        pool="threads",
        concurrency=concurrency,
        loglevel="WARNING",
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        ready_callback=None,
    )
    t = threading.Thread(target=worker.start, name=f"worker-{hostname}", daemon=True)
    t.start()
    if not worker.ready.wait(READY_TIMEOUT):
        raise RuntimeFault(f"embedded worker {hostname} did not start within {READY_TIMEOUT:.0f} s")
    return worker, t


@contextmanager
def embedded_workers(rt: Runtime, repos: dict[str, int], *, control_concurrency: int = 2) -> Iterator[None]:
    """Run in-process workers for ``repos`` (name -> concurrency) while inside.

    One worker per repo queue; none on the control queue, which no todo uses."""
    if getattr(rt.dispatcher, "app", None) is None:
        rt.dispatcher = dispatcher_for(rt, app=create_app(rt.settings, url=rt.url))
    app = rt.app
    app.coord_runtime = rt  # tasks find their runtime here
    # One name for the checkpoints (who ran a todo) and the liveness beat, so a
    # status can tell whether a running todo's worker still beats.
    name = f"embedded@{socket.gethostname()}:{os.getpid()}"
    register_worker(WorkerInfo(repo=None, name=name))
    started: list[tuple[WorkController, threading.Thread]] = []
    beat: WorkerBeat | None = None
    notifier: NotifierThread | None = None
    try:
        if rt.url is not None:
            slots = sum(max(1, c) for c in repos.values())
            # One thread more than slots when it serves several repos (as `coord worker`).
            started.append(_start(app, name,
                                  [rt.keys.repo_queue(r) for r in sorted(repos)],
                                  slots + (1 if len(repos) > 1 else 0)))
        else:
            for repo, conc in sorted(repos.items()):
                host = f"{repo}@embedded"
                started.append(_start(app, host, [rt.keys.repo_queue(repo)], max(1, conc)))
        beat = start_beat(rt, name, sorted(repos))
        if rt.url is not None:
            # Webhooks are delivered while this process's workers run (what is left
            # waits in the outbox, in the embedded server, for the next one).
            notifier = NotifierThread(rt)
            notifier.start()
        yield
    finally:
        if notifier is not None:
            notifier.stop()
        if beat is not None:
            beat.stop()
        for worker, _ in started:
            try:
                worker.stop(in_sighandler=False, exitcode=0)
            except Exception:  # shutting down: report, keep stopping the others
                log.exception("stopping an embedded worker failed")
        for _, t in started:
            t.join(timeout=10)
