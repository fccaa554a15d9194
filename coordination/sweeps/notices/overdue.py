"""``due:``: the supervision pass says what a live sweep has not finished in time.

A todo whose ``due:`` time has passed and that had not succeeded by then (still to run,
running, failed, or succeeded after it) is overdue: ``todo.overdue``, once per (sweep,
todo). A sweep still live when its plan's ``due:`` passes: ``plan.overdue``, once per
sweep. Once: the first pass to mark it in the sweep's hash (HSETNX,
:mod:`coordination.runtime.overdue`) emits it, whichever process runs that pass.

What it costs a pass: nothing until a due time in the spec has passed; then one read of
the marks and of those todos' status.

A todo past its ``due:`` that no sweep runs (nobody started it: the work a team forgets)
has no supervision pass: `coord beat` says it, ``todo.overdue`` without a sweep, once
per (todo, due time) (:func:`note_unswept_overdue`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING

from coordination.catalog.enums import TodoStatus
from coordination.runtime.context import Runtime
from coordination.runtime.overdue import PLAN
from coordination.status import DONE, EventKind, todo_status
from coordination.sweeps.spec import SweepSpec
from coordination.sweeps.spec_store import load_spec

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog


def iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def note_overdue(rt: Runtime, sid: str, spec: SweepSpec, record_terminal: int,
                 now: float) -> list[str]:
    """Emit what became overdue in the sweep ``sid`` of ``spec`` (``record_terminal``: its
    count of ended todos); returns what this call said overdue (todo ids, ``@plan``)."""
    due = {t: s.due for t, s in spec.todos.items() if s.due is not None and s.due <= now}
    plan_late = spec.plan_due is not None and spec.plan_due <= now
    if not due and not plan_late:
        return []
    marks = rt.overdue()
    said = marks.marked(sid, [*due, *([PLAN] if plan_late else [])])
    todo_ids = [t for t in due if t not in said]
    late: list[str] = []
    statuses: dict[str, str] = {}
    if todo_ids:
        cps = rt.checkpoints.get_fields_all(sid, todo_ids, ("status", "finished_at"))
        for t in todo_ids:
            cp = cps.get(t) or {}
            status = str(todo_status(cp.get("status", "pending")))
            statuses[t] = status
            done_at = cp.get("finished_at")
            if not (status in DONE and done_at is not None and float(done_at) <= (due[t] or 0)):
                late.append(t)
    # each event written with its mark (a pass dying after a mark has said it)
    out = marks.mark(sid, {t: rt.events.prepare(
        EventKind.todo_overdue, sweep_id=sid, todo_id=t, repo=spec.todos[t].repo,
        due=iso(due[t] or 0), status=statuses[t]) for t in late}, now)
    if plan_late and PLAN not in said:
        out += marks.mark(sid, {PLAN: rt.events.prepare(
            EventKind.plan_overdue, sweep_id=sid, plan=spec.plan, due=iso(spec.plan_due or 0),
            left=max(0, len(spec.todos) - record_terminal))}, now)
    return out


#: A todo with a ``due:`` as :func:`note_unswept_overdue` needs it: (id, due (Unix
#: time), its catalog status, its repo).
Due = tuple[str, float, str, str]


def catalog_dues(catalog: Catalog) -> list[Due]:
    """The catalog's todos with a ``due:`` not completed (``todo list``'s overdue ones,
    once their time has passed), in catalog order."""
    return [(t.id, t.due.timestamp(), t.status.value, t.repo) for t in catalog.coordination.todos
            if t.due is not None and t.status != TodoStatus.completed]


def running_todos(rt: Runtime, sweep_ids: Iterable[str]) -> set[str]:
    """The todos the live sweeps ``sweep_ids`` run (a template's instance
    ``TODO-010[api]`` also as its template, ``TODO-010``)."""
    out: set[str] = set()
    for sid in sweep_ids:
        spec = load_spec(rt, sid)
        if spec is not None:
            out.update(spec.todos)
            out.update(t.split("[", 1)[0] for t in spec.todos)
    return out


def note_unswept_overdue(rt: Runtime, dues: Iterable[Due], now: float,
                         running: Callable[[], Collection[str]]) -> list[str]:
    """Emit ``todo.overdue`` (no sweep) for each todo of ``dues`` whose due time has
    passed by ``now`` and that no live sweep runs (``running``: asked only when one is
    late), once per (todo, due time): `coord beat`'s look at the work nobody started,
    the work a sweep's supervision pass never sees. Returns the todos this call said."""
    late = {f"{tid}@{iso(at)}": (tid, at, status, repo) for tid, at, status, repo in dues
            if at <= now}
    if not late:
        return []
    marks = rt.overdue()
    said = marks.unswept_marked(list(late))
    late = {k: v for k, v in late.items() if k not in said}
    if not late:
        return []
    busy = running()
    out = marks.mark_unswept({k: rt.events.prepare(
        EventKind.todo_overdue, todo_id=tid, repo=repo or None, due=iso(at), status=status)
        for k, (tid, at, status, repo) in late.items() if tid not in busy}, now)
    return [k.rsplit("@", 1)[0] for k in out]
