"""Sending todos to workers: the one place that knows messages are Celery's.

The runtime is given a :class:`~coordination.runtime.messages.Dispatcher` (by
the worker, the CLI, the embedded runner); it never builds a Celery app itself. :class:`CeleryDispatcher` is the implementation; its app comes
from :func:`coordination.dispatch.app.celery_app` (configured for sending) or,
in a worker, from :func:`workers.app.create_app` (the same, with coord's task
registered). Celery is imported on first send only: the CLI's read paths never
load it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from coordination.dispatch.signatures import todo_signature
from coordination.keys import Keys
from coordination.runtime.messages import Dispatcher, TodoMessage, todo_task_id

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger("coord.dispatch")

__all__ = ["CeleryDispatcher", "Dispatcher", "TodoMessage", "todo_task_id"]


class CeleryDispatcher:
    """A :class:`Dispatcher` over a Celery app."""

    def __init__(self, app: Celery, keys: Keys) -> None:
        self.app = app
        self.keys = keys

    def send(self, messages: Iterable[TodoMessage]) -> None:
        batch = list(messages)
        if not batch:
            return
        try:
            # kombu's publish batch: the LPUSHes go in one pipeline round trip when the
            # block ends, not one round trip per message (a third of the CPU per send).
            with self.app.producer_or_acquire() as producer, producer.batch():
                for m in batch:
                    self._send_one(m, producer=producer)
        except Exception as exc:  # noqa: BLE001 - a batch is sent without kombu's retries
            # A batch flush does not retry; sending each message again with Celery's
            # retry policy does. A message sent twice is harmless: the start script lets
            # one delivery run the todo, and a todo left queued without its message is
            # sent again by the supervisor.
            log.warning("batched send of %d messages failed (%s); sending one by one",
                        len(batch), exc)
            for m in batch:
                self._send_one(m)

    def _send_one(self, m: TodoMessage, *, producer: object = None) -> None:
        sig = todo_signature(m.todo_id, m.repo, sweep_id=m.sweep_id, plan_id=m.plan_id,
                             keys=self.keys, run=m.run, priority=m.priority)
        # send_task with the signature's own options: what apply_async would send,
        # without building the signature again; the reprs Flower shows are given,
        # not made by saferepr (two per message, a tenth of a send).
        options = dict(sig["options"])
        if m.eta is not None:
            options["eta"] = dt.datetime.fromtimestamp(m.eta, dt.timezone.utc)
        self.app.send_task(sig["task"], kwargs=sig["kwargs"], argsrepr="()",
                           kwargsrepr=repr(sig["kwargs"]), producer=producer,
                           **options)

    def revoke(self, task_ids: list[str]) -> None:
        if task_ids:
            self.app.control.revoke(task_ids)
