"""Progress of a followed sweep run, as MCP progress notifications want it.

A call that follows a sweep to its end (``wait``, or embedded) may be given a
:data:`Progress`: it is called from the waiting thread each time another of the run's
todos ends, with the number ended, the number the run has and a line such as
``TODO-003 succeeded``. :class:`RunProgress` turns the sweep's events into those calls.
"""

from __future__ import annotations

from collections.abc import Callable

from coordination.runtime.events import Event
from coordination.status import TERMINAL, EventKind

#: Called as todos of a followed run end: (ended so far, todos of the run, "TODO-n status").
Progress = Callable[[int, int, str], None]

_ENDED_KINDS = {f"todo.{s.value}": s.value for s in TERMINAL}


class RunProgress:
    """Counts the todos of one run of a sweep as its events say they end, and reports
    each new count to ``progress`` (only ever increasing, as MCP wants).

    A resumed sweep's stream replays earlier runs first: only the events after the
    ``sweep.queued`` of run ``run`` count, and a todo queued again is not ended."""

    def __init__(self, progress: Progress, total: int, run: int = 0) -> None:
        self.progress, self.total, self.run = progress, total, run
        self.started = False
        self.ended: dict[str, str] = {}
        self.sent = 0

    def __call__(self, ev: Event) -> None:
        if ev.kind == EventKind.sweep_queued:
            self.started = int(ev.data.get("run") or 0) == self.run
            self.ended.clear()
            return
        if not self.started or ev.todo_id is None:
            return
        status = _ENDED_KINDS.get(ev.kind)
        if status is None:
            if ev.kind in (EventKind.todo_queued, EventKind.todo_started,
                           EventKind.todo_retrying):
                self.ended.pop(ev.todo_id, None)
            return
        self.ended[ev.todo_id] = status
        if len(self.ended) > self.sent:
            self.sent = len(self.ended)
            self.progress(self.sent, max(self.total, self.sent), f"{ev.todo_id} {status}")
