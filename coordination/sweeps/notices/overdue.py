"""``due:``: the supervision pass says what a live sweep has not finished in time.

A todo whose ``due:`` time has passed and that had not succeeded by then (still to run,
running, failed, or succeeded after it) is overdue: ``todo.overdue``, once per (sweep,
todo). A sweep still live when its plan's ``due:`` passes: ``plan.overdue``, once per
sweep. Once: the first pass to mark it in the sweep's hash (HSETNX,
:mod:`coordination.runtime.overdue`) emits it, whichever process runs that pass.

What it costs a pass: nothing until a due time in the spec has passed; then one read of
the marks and of those todos' status.
"""

from __future__ import annotations

import datetime as dt

from coordination.runtime.context import Runtime
from coordination.runtime.overdue import PLAN
from coordination.status import DONE, EventKind, todo_status
from coordination.sweeps.spec import SweepSpec


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
