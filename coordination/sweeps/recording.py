"""What a sweep run leaves behind when it ends: its retention, its history records and
the word of its end.

:func:`ended` runs where a run's final status was just written (by the one caller whose
compare-and-set won: a run that ends, fails, is cancelled or has nothing to roll back),
or, if that caller died first, in a supervision pass: it keeps the run (:func:`keep`),
then takes the sweep off the active ones and says its end in one step. The store
records a run once (keyed by sweep and run), and the metrics fold moves a run's counts
once, so a second call records nothing. Nothing here may fail the sweep: a history that
cannot be written is logged and skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from coordination.runtime.context import Runtime
from coordination.runtime.history import tail
from coordination.sweeps.notices import commit_status
from coordination.status import SWEEP_LIVE, TodoStatus
from coordination.sweeps.spec_store import load_spec

log = logging.getLogger("coord.history")


def ended(rt: Runtime, sweep_id: str, run: int) -> bool:
    """Run ``run``'s end was written (its final status, and its end event as the
    record's ``ending``, in the move that ended it): keep what it leaves (:func:`keep`),
    then take the sweep off the active ones, saying that event, in one step
    (``lua/sweep_delist.lua``). Whoever takes it off says it, once: its ender right after
    its move, or a supervision pass for an ender that died first (it stays listed
    until then). True if this call said it.

    Between the two, a sweep a push started posts its final commit status on the pushed
    commit (:func:`coordination.sweeps.notices.commit_status.run_ended`): before the
    sweep leaves the active ones, so an ender that dies first leaves it to the pass that
    says the end (posted at least once, the same word each time; never raises)."""
    keep(rt, sweep_id, run)
    try:
        commit_status.run_ended(rt, sweep_id, run)
    except Exception:  # noqa: BLE001 - nothing here may fail the sweep (Redis: said below)
        log.exception("sweep %s: its commit status was not posted", sweep_id)
    return rt.checkpoints.deactivate(sweep_id, rt.events.sweep_streams(sweep_id))


def end_unsaid(rt: Runtime, sweep_id: str, record: Mapping[str, object] | None = None
               ) -> None:
    """Before an ended run of the sweep is followed by another (a resume, a rollback):
    if that run's end is not said yet (its ender died after its move, and no pass came
    by since), keep it and say it now (:func:`ended`); the next run's move would leave it
    unsaid, and unrecorded, for good. ``record``: the sweep's, read with ``ending``."""
    if record is None:
        record = rt.checkpoints.get_sweep_fields(sweep_id, ("ending", "run"))
    if record is not None and record.get("ending") is not None:
        ended(rt, sweep_id, int(str(record.get("run") or 0)))


def keep(rt: Runtime, sweep_id: str, run: int | None = None) -> None:
    """An ended sweep stays readable for COORD_RETENTION_DAYS, then Redis drops it.

    Called by :func:`ended`; its history is recorded here, and its own metric counts are
    folded into the namespace's (never raises; a second call for a run does nothing).
    ``run``: the run that ended; nothing is done if the sweep moved on from it since
    (an ender slower than a resume: the resume kept that run first, :func:`end_unsaid`,
    and the next run's rows, live and without expiry, are not this run's)."""
    if run is not None:
        now = rt.checkpoints.get_sweep_fields(sweep_id, ("run",))
        if now is None or now.get("status") in SWEEP_LIVE or int(str(now.get("run") or 0)) != run:
            return
    record_run(rt, sweep_id)
    rt.metrics.fold(sweep_id)
    rt.checkpoints.expire_sweep(sweep_id, rt.settings.retention_days * 86400,
                                longest_sweep=rt.settings.sweep_deadline)


def rows(rt: Runtime, sweep_id: str,
         ) -> tuple[dict[str, object], list[dict[str, object]]] | None:
    """The sweep row and the todo rows of the sweep's current run."""
    rec = rt.checkpoints.get_sweep(sweep_id)
    if rec is None:
        return None
    spec = load_spec(rt, sweep_id, rec)
    if spec is None:
        return None
    cps = rt.checkpoints.get_all(sweep_id, list(spec.todos))
    run = int(rec.get("run") or 0)
    finished = float(rec.get("finished_at") or time.time())
    todos = []
    for tid, t in spec.todos.items():
        cp = cps.get(tid) or {}
        todos.append({
            "sweep_id": sweep_id, "run": run, "plan": spec.plan, "todo_id": tid,
            "repo": t.repo, "title": t.title, "status": cp.get("status", TodoStatus.pending),
            "attempts": int(cp.get("attempts") or 0), "exit_code": cp.get("exit_code"),
            "duration": cp.get("duration"), "worker": cp.get("worker"),
            "reason": cp.get("reason"), "output_tail": tail(cp.get("output_tail")),
            "finished_at": float(cp.get("finished_at") or finished),
            "started_at": cp.get("started_at"), "blocked_by": list(t.preds),
        })
    sweep = {
        "sweep_id": sweep_id, "run": run, "plan": spec.plan,
        "sweep_kind": rec.get("kind") or "plan", "status": rec.get("status"),
        "reason": rec.get("reason"), "started_at": rec.get("started_at") or rec.get("created_at"),
        "finished_at": finished, "counts": _counts(todos), "todos": len(todos),
    }
    return sweep, todos


def _counts(todos: list[dict[str, object]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in todos:
        out[str(t["status"])] = out.get(str(t["status"]), 0) + 1
    return out


def record_run(rt: Runtime, sweep_id: str) -> bool:
    """Record the run that just ended in the history; True if this call recorded it."""
    try:
        got = rows(rt, sweep_id)
        if got is None:
            return False
        sweep, todos = got
        store = rt.history()
        try:
            return store.record(sweep, todos)
        finally:
            store.close()
    except Exception:  # noqa: BLE001 - history must never fail or hang a sweep's end
        log.exception("sweep %s: its history could not be recorded", sweep_id)
        return False
