"""The worker's Celery app: the sending app of :mod:`coordination.dispatch.app`
with coord's one task registered, and nothing else."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Unpack

from celery import Celery
from kombu.connection import Connection as KombuConnection

from coordination.dispatch.app import DEFAULT_LONGEST_TODO as DEFAULT_LONGEST_TODO
from coordination.dispatch.app import EMBEDDED_POLLING_INTERVAL as EMBEDDED_POLLING_INTERVAL
from coordination.dispatch.app import AppOptions, celery_app
from coordination.dispatch.app import limits_from_catalog as limits_from_catalog
from coordination.dispatch.app import todo_budget as todo_budget
from coordination.dispatch.signatures import TASK_NAME
from coordination.redis_url import url_password
from workers import tasks

if TYPE_CHECKING:
    from coordination.settings import Settings


class Connection(KombuConnection):
    """kombu's connection, but its URL (the worker's banner, its "Connected to" line)
    shows a password mask only over a password: kombu writes ``:**@`` into every URL
    it shows, a password or not. A unix socket's password is not in ``password``: it
    stays in the ``socket://`` URL kombu keeps as the host name."""

    def as_uri(self, include_password: Any = False, mask: Any = "**", *args: Any,
               **kw: Any) -> str:
        if not self.password and url_password(str(self.hostname or "")) is None:
            include_password = True  # nothing to hide, so no mask either
        return str(super().as_uri(include_password, mask, *args, **kw))


class _RunsOn(logging.Filter):
    """Celery's words at a broker connection loss for each todo still running (it is set
    to cancel them: ``worker_cancel_long_running_tasks_on_connection_loss``): "Terminating
    it instead", then, as the threads pool cannot stop a thread, "Failed to cancel active
    request" with a NotImplementedError's traceback, a traceback per todo at every
    failover. Neither is what happens: the todo runs on, and its lease keeps any other
    delivery of it from running it meanwhile. One line says that instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        # lazy: a record of that logger means its module is loaded; Flower's start and a
        # sending app's need none of Celery's worker
        from celery.worker.consumer.consumer import (
            TERMINATING_TASK_ON_RESTART_AFTER_A_CONNECTION_LOSS as TERMINATING,
        )

        if record.msg == TERMINATING:
            return False
        exc = record.exc_info[1] if record.exc_info else None
        if (isinstance(record.msg, str) and record.msg.startswith("Failed to cancel active")
                and isinstance(exc, NotImplementedError)):
            request = record.args[0] if isinstance(record.args, tuple) and record.args else None
            kwargs = getattr(request, "kwargs", None) or {}
            if "todo_id" in kwargs:  # (coord's task: say which todo, not its whole request)
                record.args = (kwargs.get("sweep_id"), kwargs["todo_id"])
                record.msg = "%s/%s"
            else:
                record.msg = "%r"
            record.msg += (" runs on after the broker connection was lost (a thread is not "
                           "stopped; its lease keeps another delivery from running it)")
            record.exc_info = record.exc_text = None
        return True


_RUNS_ON = _RunsOn()


def create_app(settings: Settings | None = None, **options: Unpack[AppOptions]) -> Celery:
    """A configured Celery app with coord's task registered (see celery_app)."""
    return serving(celery_app(settings, **options))


def serving(app: Celery) -> Celery:
    """``app`` (a sending app of :func:`celery_app`) made to serve: coord's task
    registered, once, and no other. What an embedded run does to the app its runtime was
    wired with to send (:func:`coordination.dispatch.sender`)."""
    if TASK_NAME in app.tasks:
        return app
    tasks.register(app)
    app.amqp.Connection = Connection  # how its banner and logs show the broker's URL
    consumer_log = logging.getLogger("celery.worker.consumer.consumer")
    if _RUNS_ON not in consumer_log.filters:
        consumer_log.addFilter(_RUNS_ON)
    # Only coord's task: no Celery built-in (celery.map runs any task) is served.
    tasks.drop_foreign_tasks(app)
    return app
