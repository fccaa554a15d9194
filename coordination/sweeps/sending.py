"""What may be sent now, and sending it.

A todo is sent in two moves: the queue script (``Transitions.queue``) moves it
``pending`` -> ``queued`` (nothing while the sweep is paused or over, and each
todo by one caller only, however many race), then one message per queued todo
goes to its repo's queue, in start order (a repo's queue hands them out in the
order they were sent). A sender that dies between the two leaves a ``queued``
todo with no message: the supervision pass sends it again
(:mod:`coordination.sweeps.lost`). Duplicates are harmless: the start script
lets one delivery run it.
"""

from __future__ import annotations

from collections.abc import Iterable

from coordination.dispatch import CeleryDispatcher
from coordination.runtime.context import Runtime
from coordination.runtime.messages import BROKER_PRIORITY, Dispatcher, TodoMessage
from coordination.status import TodoStatus
from coordination.sweeps.spec import SweepSpec


def message(spec: SweepSpec, todo_id: str) -> TodoMessage:
    """The message of one todo of this run (task id ``<sweep>:<todo>:<run>``)."""
    t = spec.todos[todo_id]
    return TodoMessage(spec.sweep_id, spec.plan, todo_id, t.repo, spec.run,
                       priority=BROKER_PRIORITY.get(t.priority, BROKER_PRIORITY["medium"]))


def todo_task_id(spec: SweepSpec, todo_id: str) -> str:
    """The Celery task id of a todo in this run (what its message carries)."""
    return message(spec, todo_id).task_id


def dispatcher(rt: Runtime) -> Dispatcher:
    """The runtime's dispatcher; a sender over the configured broker if it was given none."""
    if rt.dispatcher is None:
        from coordination.dispatch.app import celery_app  # lazy: celery, only to send

        rt.dispatcher = CeleryDispatcher(celery_app(rt.settings, url=rt.url), rt.keys)
    return rt.dispatcher


def in_start_order(spec: SweepSpec, todo_ids: Iterable[str]) -> list[str]:
    """Higher priority first, then the longer remaining critical path (the rank)."""
    return sorted(todo_ids, key=lambda t: (spec.todos[t].rank, t))


def send(rt: Runtime, spec: SweepSpec, todo_ids: Iterable[str]) -> None:
    """Send one message per todo, already ``queued`` (by a script, or lost and re-queued)."""
    ids = in_start_order(spec, todo_ids)
    if ids:
        dispatcher(rt).send(message(spec, t) for t in ids)


def send_todos(rt: Runtime, spec: SweepSpec, todo_ids: Iterable[str], *, reason: str,
               allowed_from: tuple[TodoStatus, ...] = (TodoStatus.pending,)) -> list[str]:
    """Queue todos (``allowed_from``: not yet started) and send them; returns those sent."""
    ids = in_start_order(spec, todo_ids)
    queued = rt.transitions.queue(spec.sweep_id, [(t, spec.todos[t].queue) for t in ids],
                                  via=reason, allowed_from=allowed_from)
    send(rt, spec, queued)
    return queued


def send_level(rt: Runtime, spec: SweepSpec, level: int, *, reason: str) -> list[str]:
    """Queue and send a level's pending todos; returns those sent."""
    return send_todos(rt, spec, spec.levels[level], reason=reason)


def first_todos(rt: Runtime, spec: SweepSpec) -> list[str]:
    """Send what a new run starts with: its first level, or (eager) every todo with no
    predecessor left to succeed, after recording each todo's count of those."""
    sid = spec.sweep_id
    if spec.levels:
        rt.checkpoints.set_counters(sid, spec.counters())
    if spec.strategy != "eager":
        return send_level(rt, spec, 0, reason="start") if spec.levels else []
    preds = {p for s in spec.todos.values() for p in s.preds if p in spec.todos}
    done = {t for t, cp in rt.checkpoints.get_fields_all(sid, sorted(preds), ()).items()
            if cp.get("status") == TodoStatus.succeeded}
    remaining = {t: len([p for p in s.preds if p in spec.todos and p not in done])
                 for t, s in spec.todos.items()}
    rt.checkpoints.set_remaining(sid, remaining)
    return send_todos(rt, spec, sorted(t for t, n in remaining.items() if n == 0),
                      reason="start")
