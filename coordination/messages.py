"""What the runtime sends, and the interface it sends it through.

The runtime (and the sweep engine above it) is *given* a :class:`Dispatcher`
by whoever wires the process (a worker, the CLI, the embedded runner); it
never imports one. :class:`coordination.dispatch.CeleryDispatcher` is the
implementation over Celery.

Types only, no state and no Redis: a base module, so that the runtime, which holds
a Dispatcher, and dispatch, which implements it, both import it from below.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


def todo_task_id(sweep_id: str, todo_id: str, run: int | None = None) -> str:
    """A todo's task id: ``<sweep>:<todo>[:<run>]`` (duplicate messages share it)."""
    return f"{sweep_id}:{todo_id}" + ("" if run is None else f":{run}")


#: A todo's priority as the broker's message priority (kombu's Redis transport
#: pops its lists 0, 3, 6, 9 in that order: a critical todo waiting in a repo's
#: queue is handed out before the medium ones queued ahead of it).
BROKER_PRIORITY = {"critical": 0, "high": 3, "medium": 6, "low": 9}


@dataclass(frozen=True)
class TodoMessage:
    """One todo of one run of a sweep, to be run on its repo's queue."""

    sweep_id: str
    plan_id: str
    todo_id: str
    repo: str
    run: int
    priority: int | None = None  # BROKER_PRIORITY of the todo's priority
    eta: float | None = None  # deliver no sooner than this (unix s): a paced todo

    @property
    def task_id(self) -> str:
        return todo_task_id(self.sweep_id, self.todo_id, self.run)


class Dispatcher(Protocol):
    """What the sweep engine needs from a message transport."""

    def send(self, messages: Iterable[TodoMessage]) -> None:
        """Publish one message per todo (duplicates are harmless: the claim lets one run)."""

    def revoke(self, task_ids: list[str]) -> None:
        """Ask workers to drop these messages if they see them (best effort)."""
