"""Sweep bookkeeping shared by tasks, workers and the waiting CLI.

Checkpoints are the source of truth. The Celery canvas dispatches todos on
the fast path; everything here is idempotent compare-and-set on checkpoints,
so any number of callers (a todo task that just finished, a level barrier,
the supervisor thread of every worker, a CLI waiting on a sweep) may run it
at once without double-dispatching or double-finishing anything.

The supervisor pass closes the gaps the canvas can leave:

- a todo running under a lease that expired (its worker died or froze) is
  put back to ``queued`` and sent again, as soon as the lease is gone rather
  than after the broker's visibility timeout;
- a todo whose predecessors all succeeded a while ago but that was never
  queued (a chord body that never fired, a chain that stopped) is sent;
- dependents of failed todos are skipped;
- a sweep past its deadline ends ``failed`` with the reason;
- a sweep whose todos are all terminal is finalised.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from coordination.dispatch import CeleryDispatcher
from coordination.runtime.context import Runtime
from coordination.runtime.messages import BROKER_PRIORITY, Dispatcher, TodoMessage
from coordination.sweeps.sagas import RollbackPlan
from coordination.sweeps.spec import SweepSpec
from coordination.status import (
    NOT_STARTED,
    SWEEP_ACTIVE,
    SWEEP_LIVE,
    TERMINAL,
    SUCCESSFUL,
    UNSUCCESSFUL,
    BreakerState,
    EventKind,
    SweepStatus,
    TodoStatus,
    todo_status,
)

log = logging.getLogger("coord.supervisor")

_spec_cache: OrderedDict[tuple[str, int], SweepSpec] = OrderedDict()
_spec_lock = threading.Lock()
#: Held while a spec is read and parsed: a worker's threads that all get their
#: first message of a sweep at once wait for one parse instead of each reading
#: and parsing the spec (3.6 MB of JSON and ~20 MB of objects at 10,000 todos).
_spec_load_lock = threading.Lock()
_verified: dict[tuple[str, int], str | None] = {}

#: Record fields a worker needs per todo; the spec itself is read once per run.
HEAD_FIELDS = ("status", "run", "deadline")


def sweep_head(rt: Runtime, sweep_id: str) -> dict[str, Any] | None:
    """The small fields of a sweep record (not its spec): one HMGET."""
    return rt.checkpoints.get_sweep_fields(sweep_id, HEAD_FIELDS)


def load_spec(rt: Runtime, sweep_id: str, record: dict[str, Any] | None = None) -> SweepSpec | None:
    """The sweep's spec, parsed once per (sweep, run) per process. ``record`` needs
    only its ``run``; the spec is read from Redis when not cached."""
    if record is None:
        record = sweep_head(rt, sweep_id)
        if record is None:
            return None
    key = (sweep_id, int(record.get("run") or 0))
    spec = _cached_spec(key)
    if spec is not None:
        return spec
    with _spec_load_lock:
        spec = _cached_spec(key)  # parsed by another thread while this one waited
        if spec is not None:
            return spec
        text = record.get("spec")
        if text is None:
            text = rt.checkpoints.get_sweep_fields(sweep_id, ("spec",)) or {}
            text = text.get("spec")
            if text is None:
                return None
        spec = SweepSpec.from_json(text)
        with _spec_lock:
            _spec_cache[key] = spec
            while len(_spec_cache) > 32:
                _spec_cache.popitem(last=False)
        return spec


def cached_spec(sweep_id: str, run: int) -> SweepSpec | None:
    """The spec of this run of the sweep if this process has parsed it (no Redis)."""
    return _cached_spec((sweep_id, int(run)))


def _cached_spec(key: tuple[str, int]) -> SweepSpec | None:
    with _spec_lock:
        spec = _spec_cache.get(key)
        if spec is not None:
            _spec_cache.move_to_end(key)
        return spec


def spec_refusal(rt: Runtime, sweep_id: str, run: int) -> str | None:
    """Why this run's spec must not run (COORD_SIGNING_KEY), checked once per run."""
    from coordination.runtime.signing import verify

    key = (sweep_id, int(run))
    if key not in _verified:
        record = rt.checkpoints.get_sweep(sweep_id)
        _verified[key] = "sweep record vanished" if record is None else verify(
            record, rt.settings.signing_keys)
        while len(_verified) > 256:
            _verified.pop(next(iter(_verified)))
    return _verified[key]


def level_index(spec: SweepSpec, todo_id: str) -> int:
    """The todo's level in this run for the level counters (-1: eager, or not in this run)."""
    if spec.strategy != "levels":
        return -1
    return spec.level_of().get(todo_id, -1)


def message(spec: SweepSpec, todo_id: str) -> TodoMessage:
    """The message of one todo of this run (task id ``<sweep>:<todo>:<run>``)."""
    t = spec.todos[todo_id]
    return TodoMessage(spec.sweep_id, spec.plan, todo_id, t.repo, spec.run,
                       priority=BROKER_PRIORITY.get(t.priority, BROKER_PRIORITY["medium"]))


def dispatcher(rt: Runtime) -> Dispatcher:
    """The runtime's dispatcher; a sender over the configured broker if it was given none."""
    if rt.dispatcher is None:
        from coordination.dispatch.app import celery_app

        rt.dispatcher = CeleryDispatcher(celery_app(rt.settings), rt.keys)
    return rt.dispatcher


def send_level(rt: Runtime, spec: SweepSpec, level: int, *, reason: str) -> list[str]:
    """Queue a level's pending todos and send them, one message each; returns those sent.

    Nothing is sent while the sweep is paused or over (the queue script reads its
    status in the same step), and each todo is queued by one sender only."""
    return send_todos(rt, spec, spec.levels[level], reason=reason)


def send_todos(rt: Runtime, spec: SweepSpec, todo_ids: list[str], *, reason: str) -> list[str]:
    """Queue not-yet-started todos and send them; returns those sent.

    The queue script makes concurrent callers send each todo once, and sends
    nothing while the sweep is paused or over."""
    # In start order: a repo's queue hands them out in the order they were sent.
    todo_ids = sorted(todo_ids, key=lambda t: (spec.todos[t].rank, t))
    queued = rt.transitions.queue(
        spec.sweep_id, [(t, spec.todos[t].queue) for t in todo_ids], via=reason)
    dispatcher(rt).send(message(spec, t) for t in queued)
    return queued


def redispatch(rt: Runtime, spec: SweepSpec, todo_id: str) -> None:
    """Send a todo again that is already ``queued`` (its previous holder was lost)."""
    dispatcher(rt).send([message(spec, todo_id)])


def count_terminal(rt: Runtime, sweep_id: str, n: int = 1) -> None:
    """Count todos that reached a terminal status outside the transition scripts.

    Lets :func:`maybe_finish` skip reading every checkpoint after each todo; a
    count lost to a crash only delays the end to the next supervisor pass,
    which always checks in full.
    """
    rt.redis.hincrby(rt.keys.sweep(sweep_id), "terminal", n)


def end_todos(rt: Runtime, spec: SweepSpec, todo_ids: list[str], status: TodoStatus,
              allowed_from: frozenset[TodoStatus], *, event: dict[str, Any]) -> list[str]:
    """End not-running todos (skip, cancel, refuse) in one step; carries the sweep on."""
    ended = rt.transitions.end(
        spec.sweep_id, [(t, level_index(spec, t)) for t in todo_ids], status, allowed_from,
        event=event)
    if ended.todos and status != TodoStatus.cancelled:
        if status != TodoStatus.skipped and spec.mode == "run":
            stop_if_atomic(rt, spec, ended.todos[0], status)
        for level in ended.levels_done:  # before skips that may end the sweep
            _level_done_event(rt, spec, level)
        if status != TodoStatus.skipped:
            for t in ended.todos:
                skip_dependents(rt, spec, t, f"{t} {status}")
        if ended.levels_done:
            advance_levels(rt, spec)
        if ended.terminal >= len(spec.todos):
            maybe_finish(rt, spec.sweep_id, spec)
    return ended.todos


def skip_dependents(rt: Runtime, spec: SweepSpec, todo_id: str, why: str) -> list[str]:
    """Skip every not-yet-started descendant of a todo that did not succeed.

    A todo this process already handed to a skip (with all that follows it) is not
    walked again: many failures sharing one big subtree cost the subtree once, not once
    per failure. Per run (a resume parses a new spec); should that skip have failed,
    the supervisor's pass skips what it left (see :func:`stranded`)."""
    walked: set[str] = spec.__dict__.setdefault("_skip_walked", set())
    todo_ids = spec.descendants(todo_id, stop=walked)
    walked.update(todo_ids)
    return end_todos(rt, spec, todo_ids, TodoStatus.skipped, NOT_STARTED, event={"reason": why})


def advance_levels(rt: Runtime, spec: SweepSpec) -> None:
    """Levels strategy: send the first level with todos left once every level before
    it has ended; say which levels ended (``level.done``). Idempotent: only pending
    todos are queued, so callers that race send each todo once."""
    if spec.strategy != "levels" or not spec.levels:
        return
    fields = [f"level_left:{i}" for i in range(len(spec.levels))]
    values = rt.redis.hmget(rt.keys.sweep(spec.sweep_id), fields)
    left = [int(v) if v is not None else len(spec.levels[i]) for i, v in enumerate(values)]
    for i in range(len(left)):
        if left[i] > 0:
            if i > 0:
                send_level(rt, spec, i, reason=f"level {i - 1} done")
            return


def after_end(rt: Runtime, spec: SweepSpec, todo_id: str, status: TodoStatus, *,
              level_done: bool | None = None, terminal: int | None = None,
              queued: list[str] | None = None) -> None:
    """After a todo reached a terminal status in a transition script: send eager
    successors it queued, skip dependents, start the next level, maybe finish.

    ``level_done`` / ``terminal`` are what the script answered (None: unknown, look)."""
    if queued:
        queued = sorted(queued, key=lambda t: (spec.todos[t].rank, t))
        dispatcher(rt).send(message(spec, t) for t in queued)
    failed = status not in SUCCESSFUL
    if failed and status != TodoStatus.cancelled and spec.mode == "run":
        # First, so that no level is sent in between: nothing new starts.
        stop_if_atomic(rt, spec, todo_id, status)
    if level_done and spec.strategy == "levels":
        # Before the skips below: they may end the sweep, and its levels end first.
        _level_done_event(rt, spec, level_index(spec, todo_id))
    if failed:
        skip_dependents(rt, spec, todo_id, f"{todo_id} {status}")
        if not is_current(rt, spec):
            return  # the skips ended the run (an atomic sweep is rolling back): done here
    if level_done is None or level_done:
        advance_levels(rt, spec)
    if terminal is None or terminal >= len(spec.todos):
        maybe_finish(rt, spec.sweep_id, spec)


def _level_done_event(rt: Runtime, spec: SweepSpec, level: int) -> None:
    if level < 0:
        return
    ok = rt.redis.hget(rt.keys.sweep(spec.sweep_id), f"level_ok:{level}")
    rt.events.emit(EventKind.level_done, sweep_id=spec.sweep_id, level=level,
                   succeeded=int(ok or 0), todos=len(spec.levels[level]))


def on_todo_done(rt: Runtime, spec: SweepSpec, todo_id: str, status: str) -> None:
    """After a todo reached a terminal status by some other path: carry the sweep on."""
    after_end(rt, spec, todo_id, TodoStatus(status))


def summarize(cps: dict[str, dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for cp in cps.values():
        s = (cp or {}).get("status", TodoStatus.pending)
        out[s] = out.get(s, 0) + 1
    return out


def maybe_finish(
    rt: Runtime, sweep_id: str, spec: SweepSpec | None = None, *, full: bool = False
) -> str | None:
    """Finalise the sweep if every todo is terminal; returns the final status if it did.

    Unless ``full``, the terminal counter must say so before any checkpoint is read.
    """
    record = rt.checkpoints.get_sweep_fields(sweep_id, ("status", "run", "terminal", "atomic"))
    if record is None or record.get("status") not in SWEEP_ACTIVE:
        return None
    if spec is None or spec.run != int(record.get("run") or 0):
        spec = load_spec(rt, sweep_id, record)  # (a caller's spec of an earlier run)
    if spec is None:
        return None
    if not full and int(record.get("terminal") or 0) < len(spec.todos):
        return None
    cps = rt.checkpoints.get_all(sweep_id, list(spec.todos))
    if any((cp or {}).get("status") not in TERMINAL for cp in cps.values()):
        return None
    counts = summarize(cps)
    failed = sorted(t for t, cp in cps.items() if cp.get("status") == TodoStatus.failed)
    final: SweepStatus
    if spec.mode == "rollback":
        final, reason = _rollback_outcome(spec, cps)
    elif counts.get(TodoStatus.succeeded, 0) == len(cps):
        final, reason = SweepStatus.succeeded, f"{len(cps)} todos succeeded"
    elif counts.get(TodoStatus.cancelled) and not failed:
        final, reason = SweepStatus.cancelled, "cancelled"
    else:
        final = SweepStatus.failed
        parts = []
        for t in failed[:5]:
            cp = cps[t]
            parts.append(f"{t} failed ({cp.get('reason') or 'exit ' + str(cp.get('exit_code'))})")
        if len(failed) > 5:
            parts.append(f"and {len(failed) - 5} more failed")
        if counts.get(TodoStatus.skipped):
            parts.append(f"{counts['skipped']} skipped")
        reason = "; ".join(parts) or "not every todo succeeded"
    if final == SweepStatus.failed and spec.mode == "run" and record.get("atomic"):
        # An atomic sweep undoes what it did: straight on to its rollback run (it never
        # shows as ended in between, so no follower stops at a failure it will undo).
        if start_rollback(rt, sweep_id, reason=f"atomic sweep failed: {reason}",
                          from_active=True) is not None:
            return SweepStatus.rolling_back
    if rt.checkpoints.set_sweep_status(
        sweep_id, final, allowed_from=set(SWEEP_ACTIVE), finished_at=time.time(), reason=reason
    ):
        rt.redis.srem(rt.keys.active_sweeps, sweep_id)
        rt.events.emit(EventKind.sweep_finished, sweep_id=sweep_id, status=str(final), reason=reason,
                       counts=counts, run=int(record.get("run") or 0))
        keep(rt, sweep_id)
        return final
    return None


def _rollback_outcome(spec: SweepSpec, cps: dict[str, dict[str, Any]]) -> tuple[SweepStatus, str]:
    """rolled_back when every undo of the rollback run succeeded, else rollback_failed."""
    ran = [t for level in spec.levels for t in level]
    bad = [t for t in ran if (cps.get(t) or {}).get("status") != TodoStatus.compensated]
    if not bad:
        return SweepStatus.rolled_back, f"{len(ran)} todos compensated"
    parts = []
    for t in bad[:5]:
        cp = cps.get(t) or {}
        why = cp.get("reason") or ("exit " + str(cp.get("exit_code")))
        parts.append(f"{t} {cp.get('status')} ({why})")
    if len(bad) > 5:
        parts.append(f"and {len(bad) - 5} more not compensated")
    return SweepStatus.rollback_failed, "; ".join(parts)


def is_current(rt: Runtime, spec: SweepSpec) -> bool:
    """Is ``spec`` still the sweep's current run (not replaced by a resume or rollback)?"""
    rec = rt.checkpoints.get_sweep_fields(spec.sweep_id, ("run",))
    return rec is not None and int(rec.get("run") or 0) == spec.run


def stop_if_atomic(rt: Runtime, spec: SweepSpec, todo_id: str, status: str) -> None:
    """An atomic sweep's first failure stops it: nothing new starts (what has not
    started is cancelled), running todos finish; once all have ended the sweep rolls
    itself back (see :func:`maybe_finish`)."""
    rec = rt.checkpoints.get_sweep_fields(spec.sweep_id, ("atomic", "run"))
    if not rec or not rec.get("atomic") or rec.get("status") not in RUN_ACTIVE:
        return
    if int(rec.get("run") or 0) != spec.run:
        return  # already rolling back (the skips ended the run)
    log.warning("sweep %s: atomic, %s %s: stopping and rolling back", spec.sweep_id, todo_id,
                status)
    end_todos(rt, spec, list(spec.todos), TodoStatus.cancelled, NOT_STARTED,
              event={"reason": f"atomic sweep stopped: {todo_id} {status}"})
    maybe_finish(rt, spec.sweep_id, spec)


#: A sweep running its todos (not rolling back).
RUN_ACTIVE = SWEEP_ACTIVE - {SweepStatus.rolling_back}
#: Sweep statuses a rollback may start from (a run that ended).
ROLLBACK_FROM = frozenset({SweepStatus.succeeded, SweepStatus.failed, SweepStatus.cancelled})


def start_rollback(rt: Runtime, sweep_id: str, *, reason: str,
                   undo: dict[str, str | None] | None = None,
                   from_active: bool = False) -> RollbackPlan | None:
    """Start the rollback run of an ended sweep (see :mod:`coordination.sweeps.sagas`);
    ``from_active``: of an atomic sweep whose every todo just ended, one failed.

    Returns its plan, or None when the sweep is not in a state to roll back (another
    caller started it first). Needs no catalog: the undo: commands are in the spec."""
    from coordination.sweeps.sagas import rollback_plan, rollback_spec
    from coordination.sweeps.spec import sweep_deadline

    allowed = RUN_ACTIVE if from_active else ROLLBACK_FROM
    record = rt.checkpoints.get_sweep(sweep_id)
    if record is None or record.get("status") not in allowed:
        return None
    spec = load_spec(rt, sweep_id, record)
    if spec is None or spec.mode != "run":
        return None
    cps = rt.checkpoints.get_all(sweep_id, list(spec.todos))
    plan = rollback_plan(spec, {t: str(cp.get("status")) for t, cp in cps.items()}, undo)
    rb = rollback_spec(spec, plan, undo)
    now = time.time()
    # Checkpoints first, while the sweep is still ended (nothing looks at them), then
    # the status: a supervisor never sees a rolling-back sweep whose todos to
    # compensate still read 'succeeded' (it would call the rollback done).
    rt.checkpoints.reset_todos(sweep_id, plan.compensate, status=TodoStatus.pending,
                               reason=None, finished_at=None, exit_code=None, queued_at=None,
                               token=None, lease_key=None)
    rt.checkpoints.persist_sweep(sweep_id)
    signature: dict[str, Any] = {"spec_sig": None, "spec_key_id": None}
    if rt.settings.signing_keys:
        from coordination.runtime.signing import sign

        signature = dict(sign(rb.to_json(), rt.settings.signing_keys[0]))
    status = SweepStatus.rolling_back if plan.compensate else SweepStatus.rolled_back
    fields: dict[str, Any] = {
        "run": rb.run, "spec": rb.to_json(), **signature, "finished_at": None, "todos": len(rb.todos),
        "terminal": len(rb.todos) - len(plan.compensate), "full_pass_terminal": None,
        "deadline": now + sweep_deadline(rb, rt.settings.sweep_deadline),
        "reason": None if plan.compensate else "nothing to compensate",
        "rollback_of": SweepStatus.failed if from_active else record.get("status"),
        "rollback_reason": reason,
        "not_compensable": plan.not_compensable, **rb.counters(),
    }
    if not plan.compensate:
        fields["finished_at"] = now
    if not rt.checkpoints.set_sweep_status(sweep_id, status, allowed_from=set(allowed), **fields):
        return None
    rt.events.emit(EventKind.sweep_rolling_back, sweep_id=sweep_id, run=rb.run, reason=reason,
                   compensate=len(plan.compensate), not_compensable=plan.not_compensable)
    if not plan.compensate:
        rt.events.emit(EventKind.sweep_finished, sweep_id=sweep_id, status=str(status),
                       reason="nothing to compensate", run=rb.run)
        keep(rt, sweep_id)
        return plan
    rt.checkpoints.clear_remaining(sweep_id, rb.todos)
    rt.redis.sadd(rt.keys.active_sweeps, sweep_id)
    send_level(rt, rb, 0, reason="rollback")
    if from_active:
        log.warning("sweep %s: %s; rolling back %s", sweep_id, reason, ", ".join(plan.compensate))
    return plan


def fail_sweep(rt: Runtime, sweep_id: str, reason: str, *,
               status: SweepStatus = SweepStatus.failed) -> bool:
    """End an active sweep now (deadline, cancel): stop what has not started."""
    if status == SweepStatus.failed and rt.checkpoints.sweep_status(sweep_id) == SweepStatus.rolling_back:
        status = SweepStatus.rollback_failed
    if not rt.checkpoints.set_sweep_status(
        sweep_id, status, allowed_from=set(SWEEP_LIVE), finished_at=time.time(), reason=reason
    ):
        return False
    rt.redis.srem(rt.keys.active_sweeps, sweep_id)
    head = sweep_head(rt, sweep_id)
    spec = None if head is None else load_spec(rt, sweep_id, head)
    if spec is not None:
        end_todos(rt, spec, list(spec.todos), TodoStatus.cancelled, NOT_STARTED,
                  event={"reason": reason})
    kind = EventKind.sweep_cancelled if status == SweepStatus.cancelled else EventKind.sweep_finished
    run = int((head or {}).get("run") or 0)
    rt.events.emit(kind, sweep_id=sweep_id, status=status, reason=reason, run=run)
    keep(rt, sweep_id)
    return True


def keep(rt: Runtime, sweep_id: str) -> None:
    """An ended sweep stays readable for COORD_RETENTION_DAYS, then Redis drops it.

    Called once per run, by whoever wrote its final status; its history is recorded here."""
    record_history(rt, sweep_id)
    rt.checkpoints.expire_sweep(sweep_id, rt.settings.retention_days * 86400,
                                longest_sweep=rt.settings.sweep_deadline)


def record_history(rt: Runtime, sweep_id: str) -> None:
    """The ended run's history (and, embedded, its keys beside the catalog); never raises."""
    from coordination.sweeps.recording import record_run

    record_run(rt, sweep_id, load_spec)


#: Checkpoints a moving sweep's full passes read per second, on average, at most.
#: A full pass reads all n of them: at a fixed period the passes of a sweep that
#: lasts in proportion to n would cost it n^2 reads. So a big sweep's period grows
#: with n (10,000 todos: every 10 s rather than every lease_ttl / 2).
FULL_PASS_RATE = 1000.0


def full_pass_period(rt: Runtime, todos: int) -> float:
    """Seconds between two full passes over a moving sweep of ``todos`` todos."""
    return max(rt.settings.lease_ttl / 2, todos / FULL_PASS_RATE)


#: The checkpoint fields a full pass reads (lease checks, lost messages, level
#: barriers): not the output tails, which would make a pass's memory and traffic
#: grow with what the todos print.
PASS_FIELDS = ("status", "lease_key", "token", "worker", "lost_runs", "queued_at", "lost_at",
               "suspect_at", "finished_at")


def needs_full_pass(rt: Runtime, sweep_id: str, record: dict[str, Any], now: float,
                    todos: int = 0) -> bool:
    """Whether a periodic pass must read every checkpoint now.

    Not while the sweep is visibly moving (its terminal count grew since the
    last full pass, by any process) and that pass is recent: the fast path is
    working, and a dead worker's lease cannot be seen expired before its TTL
    anyway. So a full pass runs at least every :func:`full_pass_period` (``lease_ttl
    / 2``, longer for a sweep of more than a few thousand ``todos``) and at every
    pass once nothing has ended since the last full one; reading 10,000 checkpoints a
    second (and once more in each new worker process) is what this saves. The
    last full pass is noted in the sweep record, so all processes share it.
    """
    terminal = int(record.get("terminal") or 0)
    seen = record.get("full_pass_terminal")
    if seen is None:
        # A sweep's first look: nothing can be stuck yet (a lease outlives this
        # pass, a ready todo waits out a grace): note it and look next time.
        rt.checkpoints.update_sweep(sweep_id, full_pass_terminal=terminal, full_pass_at=now)
        return False
    at = float(record.get("full_pass_at") or 0)
    if terminal <= int(seen) or now - at >= full_pass_period(rt, todos):
        rt.checkpoints.update_sweep(sweep_id, full_pass_terminal=terminal, full_pass_at=now)
        return True
    return False


def supervise_once(rt: Runtime, sweep_id: str, *, grace: float | None = None,
                   throttle: bool = False) -> None:
    """One pass over one sweep (see the module docstring). ``throttle``: the periodic
    pass, which skips reading checkpoints while the sweep is visibly moving."""
    now = time.time()
    interval = rt.settings.supervise_interval
    grace = grace if grace is not None else max(2.0, 3 * interval)
    # One supervisor at a time per sweep: all of this is idempotent anyway, the
    # lock only saves duplicate messages when many workers supervise at once.
    if not rt.redis.set(rt.keys.supervisor_lock(sweep_id), "1", nx=True, px=int(interval * 900)):
        return
    record = rt.checkpoints.get_sweep_fields(
        sweep_id, ("status", "run", "deadline", "created_at", "started_at", "terminal",
                   "full_pass_terminal", "full_pass_at"))
    if record is not None and record.get("status") == SweepStatus.paused:
        return  # nothing is dispatched, re-sent or timed out while paused
    if record is None or record.get("status") not in SWEEP_ACTIVE:
        rt.redis.srem(rt.keys.active_sweeps, sweep_id)
        return
    if record.get("deadline") and now > float(record["deadline"]):
        fail_sweep(rt, sweep_id, f"deadline passed ({int(now - float(record['created_at']))} s)")
        return
    spec = load_spec(rt, sweep_id, record)  # parsed once per run per process
    if spec is None:
        return
    if throttle and not needs_full_pass(rt, sweep_id, record, now, len(spec.todos)):
        return
    cps = rt.checkpoints.get_fields_all(sweep_id, list(spec.todos), PASS_FIELDS)
    status = {t: todo_status((cp or {}).get("status", TodoStatus.pending)) for t, cp in cps.items()}
    for tid, cp in cps.items():
        if status[tid] == TodoStatus.running:
            lease_key, token = cp.get("lease_key"), cp.get("token")
            if lease_key and token and rt.redis.get(lease_key) != token:
                # The holder's lease expired: its worker died or froze. Its late
                # writes will be refused (fence), so run the todo again now,
                # unless this was its max_lost_runs-th lost run (a poison todo).
                _lease_lost(rt, spec, tid, cp, now)
    skipped = 0
    for tid, stranded_ids in stranded(spec, status).items():
        end_todos(rt, spec, stranded_ids, TodoStatus.skipped, NOT_STARTED,
                  event={"reason": f"{tid} {status[tid]}"})
        skipped += len(stranded_ids)
    held = [t for t, st in status.items() if st == TodoStatus.held]
    if held:
        release_held(rt, spec, held, now)
    if not rt.settings.embedded:
        note_unattended(rt, spec, status, now)
    resend_lost_messages(rt, spec, cps, now)
    ready = []
    # A level starts when its barrier fires: after every todo of the earlier
    # levels ended, not just this todo's own predecessors. Prefix over levels
    # (all earlier ended?, when the last of them ended), computed once.
    level_of = {t: i for i, lvl in enumerate(spec.levels) for t in lvl}
    earlier_done, earlier_last = [True], [0.0]
    for lvl in spec.levels:
        ended = earlier_done[-1] and all(status.get(t) in TERMINAL for t in lvl)
        last = max([earlier_last[-1]] + [float(cps.get(t, {}).get("finished_at") or 0) for t in lvl])
        earlier_done.append(ended)
        earlier_last.append(last)
    started = float(record.get("started_at") or record.get("created_at") or now)
    for tid, st in status.items():
        if st != TodoStatus.pending:
            continue
        preds = spec.todos[tid].preds
        if any(status.get(p, TodoStatus.succeeded) not in SUCCESSFUL for p in preds):
            continue
        last = max((float(cps[p].get("finished_at") or 0) for p in preds if p in cps), default=0.0)
        if spec.strategy == "levels" and tid in level_of:
            i = level_of[tid]
            if not earlier_done[i]:
                continue
            last = max(last, earlier_last[i])
        if now - max(last, started) >= grace:
            ready.append(tid)
    if ready:
        sent = send_todos(rt, spec, sorted(ready), reason="supervisor")
        if sent:
            log.info("sweep %s: supervisor dispatched %s", sweep_id, ", ".join(sent))
    # Every checkpoint was just read: read them all again only when they said the
    # sweep may be over (its terminal count may lag then: a count lost to a crash);
    # else the count decides, as after each todo.
    left = sum(1 for st in status.values() if st not in TERMINAL) - skipped
    maybe_finish(rt, sweep_id, spec, full=left <= 0)


def stranded(spec: SweepSpec, status: dict[str, TodoStatus]) -> dict[str, list[str]]:
    """Todo that did not succeed -> its descendants that have not started (by
    ``status``), each under the first such todo that reaches it: what a pass skips.

    One walk over the graph for all of them (a node is visited once), and only
    todos still to skip are named, so a pass over a sweep whose failures were
    handled long ago costs no script call (walking each failure's descendants
    apart was quadratic on a long chain with a failure at its head)."""
    seen: set[str] = set()
    out: dict[str, list[str]] = {}
    for root, st in status.items():
        if st not in UNSUCCESSFUL or root not in spec.todos:
            continue
        stack = list(spec.todos[root].succs)
        mine: list[str] = []
        while stack:
            t = stack.pop()
            if t in seen or t not in spec.todos:
                continue
            seen.add(t)
            if status.get(t, TodoStatus.pending) in NOT_STARTED:
                mine.append(t)
            stack.extend(spec.todos[t].succs)
        if mine:
            out[root] = mine
    return out


def release_held(rt: Runtime, spec: SweepSpec, held: list[str], now: float) -> list[str]:
    """Send held todos again once their repo's breaker lets them: all of them when
    it is closed (a probe succeeded, or ``coord repo reset``), the first in line
    when its cooldown has passed (that one becomes the half-open probe)."""
    by_repo: dict[str, list[str]] = {}
    for t in sorted(held, key=lambda t: (spec.todos[t].rank, t)):
        by_repo.setdefault(spec.todos[t].repo, []).append(t)
    sent: list[str] = []
    for repo, todos in by_repo.items():
        cfg = spec.breaker(repo)
        b = rt.redis.hgetall(rt.keys.breaker(repo)) if cfg else {}
        state = str(b.get("state") or BreakerState.closed)
        if cfg is None or state == BreakerState.closed:
            let = todos
        elif state == BreakerState.open and now - float(b.get("opened_at") or 0) >= cfg[1]:
            let = todos[:1]
        elif state == BreakerState.half_open and now > float(b.get("probe_until") or 0):
            let = todos[:1]
        else:
            continue
        queued = rt.transitions.queue(
            spec.sweep_id, [(t, spec.todos[t].queue) for t in let], via=f"breaker {state}",
            allowed_from=(TodoStatus.held,))
        dispatcher(rt).send(message(spec, t) for t in queued)
        sent += queued
    return sent


def note_unattended(rt: Runtime, spec: SweepSpec, status: dict[str, TodoStatus],
                    now: float) -> list[str]:
    """Say (once per sweep and repo, in a ``repo.unattended`` event) that todos of a
    repo have waited ``unattended_after`` s with no live worker serving it; a
    worker coming back starts the count again. Returns the repos said now."""
    waiting = sorted({spec.todos[t].repo for t, st in status.items()
                      if st == TodoStatus.queued})
    if not waiting:
        return []
    live = rt.workers.per_repo()
    fields = tuple(f"unattended:{r}" for r in waiting)
    rec = rt.checkpoints.get_sweep_fields(spec.sweep_id, fields) or {}
    said: list[str] = []
    changes: dict[str, Any] = {}
    for repo in waiting:
        mark = rec.get(f"unattended:{repo}")  # [since, said]
        if live.get(repo):
            if mark is not None:
                changes[f"unattended:{repo}"] = None
            continue
        if mark is None:
            changes[f"unattended:{repo}"] = [now, False]
        elif not mark[1] and now - float(mark[0]) >= rt.settings.unattended_after:
            changes[f"unattended:{repo}"] = [mark[0], True]
            todos = sorted(t for t, st in status.items()
                           if spec.todos[t].repo == repo and st == TodoStatus.queued)
            rt.events.emit(EventKind.repo_unattended, sweep_id=spec.sweep_id, repo=repo,
                           waiting_for=round(now - float(mark[0]), 1), todos=todos[:20],
                           queued=len(todos),
                           hint=f"start one: coord worker --repo {repo}")
            log.warning("sweep %s: %d queued todo(s) of %s and no live worker serves it",
                        spec.sweep_id, len(todos), repo)
            said.append(repo)
    if changes:
        rt.checkpoints.update_sweep(spec.sweep_id, **changes)
    return said


def _lease_lost(rt: Runtime, spec: SweepSpec, tid: str, cp: dict[str, Any], now: float) -> None:
    sweep_id = spec.sweep_id
    repo = spec.todos[tid].repo
    verdict = rt.transitions.lost(
        sweep_id, tid, repo=repo, token=str(cp.get("token")), max_lost=rt.settings.max_lost_runs,
        now=now, why="lease expired", level=level_index(spec, tid),
        breaker=None if spec.mode == "rollback" else spec.breaker(repo),
    )
    if verdict == "requeued":
        rt.events.emit(EventKind.todo_lost, sweep_id=sweep_id, todo_id=tid,
                       worker=cp.get("worker"), reason="lease expired",
                       lost_runs=int(cp.get("lost_runs") or 0) + 1)
        redispatch(rt, spec, tid)
        rt.events.emit(EventKind.supervisor_redispatched, sweep_id=sweep_id, todo_id=tid,
                       reason="lease expired")
    elif verdict == "poisoned":
        poisoned(rt, spec, tid, worker=cp.get("worker"))


def poisoned(rt: Runtime, spec: SweepSpec, tid: str, *, worker: Any = None,
             level_done: bool | None = None, terminal: int | None = None) -> None:
    """Bookkeeping after a todo ended ``failed`` for having lost too many runs (the
    script that ended it also counted it)."""
    cp = rt.checkpoints.get(spec.sweep_id, tid) or {}
    rt.events.emit(EventKind.todo_lost, sweep_id=spec.sweep_id, todo_id=tid, worker=worker,
                   reason="lease expired", lost_runs=cp.get("lost_runs"))
    rt.events.emit(EventKind.todo_failed, sweep_id=spec.sweep_id, todo_id=tid, worker=worker,
                   reason=cp.get("reason"), attempts=cp.get("attempts"), poison=True)
    log.warning("sweep %s: %s failed: %s", spec.sweep_id, tid, cp.get("reason"))
    after_end(rt, spec, tid, TodoStatus.failed, level_done=level_done, terminal=terminal)


# -- lost messages ---------------------------------------------------------------------
# A todo can be 'queued' with no message anywhere: removed from its queue,
# prefetched by a worker that was SIGKILLed (kombu would hand it out again only
# after the visibility timeout), or never sent by a sender that crashed between
# the status change and the publish. Such a todo is sent again once it has been
# queued for ``lost_after`` seconds, no live worker holds its task id (reserved
# or running, from the workers' heartbeats) and its id is in none of its
# queue's lists. A worker's heartbeat lags what it holds by up to one beat, so
# a todo is re-sent only when two looks, two beats apart, both find it lost.
# Duplicates are harmless (the claim lets one run); this only bounds the wait.

_last_message_scan: dict[str, float] = {}


def resend_lost_messages(
    rt: Runtime, spec: SweepSpec, cps: dict[str, dict[str, Any]], now: float
) -> list[str]:
    """Re-send queued todos whose message is gone; returns those re-sent."""
    if rt.settings.embedded:
        return []  # in-process queues cannot lose a message
    after = rt.settings.lost_after
    candidates = [
        t for t, cp in cps.items()
        if (cp or {}).get("status") == TodoStatus.queued
        and now - float(cp.get("queued_at") or cp.get("lost_at") or 0) >= after
    ]  # fmt: skip
    if not candidates:
        return []
    # Reading every queue is O(queue length): at most a few times per lost_after.
    sid = spec.sweep_id
    if now - _last_message_scan.get(sid, 0.0) < min(after / 3, 2 * rt.settings.worker_heartbeat):
        return []
    _last_message_scan[sid] = now
    held = rt.workers.held()
    ids = {t: todo_task_id(spec, t) for t in candidates}
    unheld = [t for t in candidates if ids[t] not in held]
    if not unheld:
        return []
    queued = queued_task_ids(rt, {spec.todos[t].queue for t in unheld})
    confirm = 2 * rt.settings.worker_heartbeat
    resent = []
    for t in candidates:
        cp = cps[t]
        lost = t in unheld and ids[t] not in queued
        suspect = cp.get("suspect_at")
        if not lost:
            if suspect is not None:
                rt.checkpoints.set_fields(sid, t, suspect_at=None)
            continue
        if suspect is None or now - float(suspect) < confirm:
            if suspect is None:
                rt.checkpoints.set_fields(sid, t, suspect_at=now)
            continue
        if rt.checkpoints.set_status_if(sid, t, TodoStatus.queued, {TodoStatus.queued},
                                        queued_at=now,
                                        suspect_at=None, lost_at=now):
            rt.events.emit("todo.lost", sweep_id=sid, todo_id=t, reason="message lost",
                           queued_for=round(now - float(cp.get("queued_at") or now), 1))
            redispatch(rt, spec, t)
            rt.events.emit("supervisor.redispatched", sweep_id=sid, todo_id=t,
                           reason="message lost")
            resent.append(t)
    if resent:
        log.warning("sweep %s: re-sent %s (message lost)", sid, ", ".join(resent))
    return resent


def todo_task_id(spec: SweepSpec, todo_id: str) -> str:
    """The Celery task id of a todo in this run (what its message carries)."""
    return message(spec, todo_id).task_id


def queued_task_ids(rt: Runtime, queues: set[str]) -> set[str]:
    """Task ids of the messages waiting in these broker queues (every priority list)."""
    import json

    pipe = rt.redis.pipeline(transaction=False)
    for q in sorted(queues):
        for pri in BROKER_PRIORITIES:
            pipe.lrange(rt.keys.broker_queue(q, pri), 0, -1)
    out: set[str] = set()
    for items in pipe.execute():
        for raw in items or ():
            try:
                tid = json.loads(raw)["headers"]["id"]
            except (ValueError, KeyError, TypeError):
                continue
            out.add(str(tid))
    return out


BROKER_PRIORITIES = (0, 3, 6, 9)  # kombu's Redis priority_steps (default)


def supervise_all(rt: Runtime) -> None:
    """One pass over every active sweep; errors are logged, never raised."""
    try:
        active = sorted(rt.redis.smembers(rt.keys.active_sweeps))
    except Exception as exc:  # Redis away: the next pass tries again
        log.warning("supervisor cannot list active sweeps: %s", exc)
        return
    for sweep_id in active:
        try:
            supervise_once(rt, str(sweep_id), throttle=True)
        except Exception:  # a supervisor must outlive a bad sweep
            log.exception("supervising sweep %s failed", sweep_id)


class SupervisorThread(threading.Thread):
    """Runs :func:`supervise_all` every ``supervise_interval`` seconds."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(name="coord-supervisor", daemon=True)
        self.rt = rt
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.rt.settings.supervise_interval):
            try:
                supervise_all(self.rt)
            except Exception:  # never let the thread die: sweeps need it
                log.exception("supervisor pass failed")

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=5)
