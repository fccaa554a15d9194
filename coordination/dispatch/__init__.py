"""Sending todos to workers: the one place that knows messages are Celery's.

The runtime is given a :class:`~coordination.messages.Dispatcher` (by
the worker, the CLI, the embedded runner); it never builds a Celery app itself.

- :class:`BrokerDispatcher`, whenever the broker is a Redis server (both modes):
  writes each todo's message itself (:mod:`coordination.dispatch.envelope`, the
  document Celery would send) and pushes a batch in one round trip
  (:func:`coordination.runtime.queues.push_messages`). Celery is imported only to
  revoke, or to send again through Celery's retrying path when a push fails.
- :class:`CeleryDispatcher`: ``app.send_task`` per message, in a kombu publish
  batch; the app comes from :func:`coordination.dispatch.app.celery_app`
  (configured for sending) or, in a worker, :func:`workers.app.create_app` (the
  same, with coord's task registered). Used on Celery's in-memory transport (the
  unit tier's runtime) and as the fallback above.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol

import redis

from coordination.dispatch.envelope import Envelopes
from coordination.dispatch.signatures import todo_signature
from coordination.keys import Keys
from coordination.messages import Dispatcher, TodoMessage, todo_task_id

if TYPE_CHECKING:
    from celery import Celery

    from coordination.runtime.context import Runtime

log = logging.getLogger("coord.dispatch")


class Push(Protocol):
    """Pushes ``(queue, priority, JSON text)`` broker messages, binding ``declare`` first."""

    def __call__(self, messages: list[tuple[str, int, str]], *,
                 declare: Iterable[str] = ()) -> None: ...

__all__ = ["BrokerDispatcher", "CeleryDispatcher", "Dispatcher", "TodoMessage", "dispatcher_for",
           "sender", "todo_task_id"]


def sender(rt: Runtime) -> Dispatcher:
    """``rt``'s dispatcher, made now over its broker (Celery's default time limits) if it
    was given none: what a process that starts, steers or carries sweeps on gives its
    runtime when neither a worker nor a launch wired it (``SweepService`` does, as it is
    made). No Celery app is built until one is needed."""
    if rt.dispatcher is None:
        def make_app() -> Celery:
            from coordination.dispatch.app import celery_app  # lazy: celery, only if needed

            return celery_app(rt.settings, url=rt.url)

        rt.dispatcher = dispatcher_for(rt, app_factory=make_app)
    return rt.dispatcher


def dispatcher_for(rt: Runtime, *, app: Celery | None = None,
                   app_factory: Callable[[], Celery] | None = None) -> Dispatcher:
    """The dispatcher for ``rt``'s broker: a :class:`BrokerDispatcher` on its Redis
    server (either mode), else (Celery's in-memory transport) a :class:`CeleryDispatcher`.
    Give the app, or a factory that makes it on first need."""
    if rt.url is not None:
        return BrokerDispatcher(rt.push_messages, rt.keys, app=app, app_factory=app_factory,
                                served=lambda: map(rt.keys.repo_queue, rt.workers.per_repo()))
    return CeleryDispatcher(app, rt.keys, app_factory=app_factory)


class AppSource:
    """A dispatcher's Celery app: the one given, or made by ``factory`` on first use."""

    def __init__(self, owner: str, app: Celery | None,
                 factory: Callable[[], Celery] | None) -> None:
        if app is None and factory is None:
            raise ValueError(f"{owner} needs an app or an app_factory")
        self.app = app
        self._factory = factory

    def __call__(self) -> Celery:
        if self.app is None:
            assert self._factory is not None
            self.app = self._factory()
        return self.app


class _AppDispatcher:
    """What both dispatchers hold: their Celery app (:class:`AppSource`) and the keys;
    a send of no message does nothing (no app made, no round trip)."""

    def __init__(self, app: Celery | None, keys: Keys,
                 app_factory: Callable[[], Celery] | None) -> None:
        self.source = AppSource(type(self).__name__, app, app_factory)
        self.keys = keys

    @property
    def app(self) -> Celery:
        return self.source()

    def send(self, messages: Iterable[TodoMessage]) -> None:
        batch = list(messages)
        if batch:
            self._send(batch)

    def _send(self, batch: list[TodoMessage]) -> None:
        raise NotImplementedError


class CeleryDispatcher(_AppDispatcher):
    """A :class:`Dispatcher` over a Celery app (or a factory that makes it on first use)."""

    def __init__(self, app: Celery | None, keys: Keys, *,
                 app_factory: Callable[[], Celery] | None = None) -> None:
        super().__init__(app, keys, app_factory)

    def _send(self, batch: list[TodoMessage]) -> None:
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


class BrokerDispatcher(_AppDispatcher):
    """A :class:`Dispatcher` writing todo messages straight onto the broker's Redis.

    ``push``: pushes ``(queue, priority, text)`` messages onto the Redis the broker uses
    (:meth:`coordination.runtime.context.Runtime.push_messages`: the same server and
    database, Sentinel's master included). ``app`` or ``app_factory``: the
    Celery app to revoke through and to fall back on (built on first use when only a
    factory is given, so a CLI that only sends never imports Celery). ``served``: the
    queues live workers consume, asked once for a batch that sends to a queue this
    process has not sent to yet: a worker bound its queues as it started consuming
    them, so only the others are bound here (two commands a queue: at 10,000 repos,
    two of a sweep's commands per todo).
    """

    def __init__(self, push: Push, keys: Keys, *, app: Celery | None = None,
                 app_factory: Callable[[], Celery] | None = None,
                 served: Callable[[], Iterable[str]] | None = None) -> None:
        super().__init__(app, keys, app_factory)
        self.push = push
        self.envelopes = Envelopes()
        self._declared: set[str] = set()
        self._served = served

    def _send(self, batch: list[TodoMessage]) -> None:
        items = []
        for m in batch:
            queue = self.keys.repo_queue(m.repo)
            items.append((queue, m.priority or 0, self.envelopes.encode(m, queue)))
        fresh = sorted({q for q, _, _ in items} - self._declared)
        if fresh and self._served is not None:
            try:
                bound = set(self._served())
            except (redis.RedisError, OSError):
                bound = set()  # bind them all: harmless, bindings are sets
            self._declared.update(q for q in fresh if q in bound)
            fresh = [q for q in fresh if q not in bound]
        try:
            self.push(items, declare=fresh)
        except (redis.RedisError, OSError) as exc:
            # Celery's path retries with its policy (a failover, a restart). Messages
            # this push may have delivered are sent again: harmless, the start script
            # lets one delivery run a todo, and the supervisor re-sends what is lost.
            log.warning("pushing %d messages failed (%s); sending them through Celery",
                        len(batch), exc)
            CeleryDispatcher(self.app, self.keys).send(batch)
            return
        self._declared.update(fresh)

    def revoke(self, task_ids: list[str]) -> None:
        if task_ids:
            CeleryDispatcher(self.app, self.keys).revoke(task_ids)
