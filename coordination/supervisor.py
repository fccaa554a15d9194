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

from coordination.runtime.context import Runtime
from coordination.spec import NOT_STARTED, SWEEP_ACTIVE, SWEEP_LIVE, TERMINAL, SweepSpec

log = logging.getLogger("coord.supervisor")

_spec_cache: OrderedDict[tuple[str, int], SweepSpec] = OrderedDict()
_spec_lock = threading.Lock()


def load_spec(rt: Runtime, sweep_id: str, record: dict[str, Any] | None = None) -> SweepSpec | None:
    """The sweep's spec, parsed once per (sweep, run) per process."""
    if record is None:
        record = rt.checkpoints.get_sweep(sweep_id)
        if record is None:
            return None
    key = (sweep_id, int(record.get("run", 0)))
    with _spec_lock:
        spec = _spec_cache.get(key)
        if spec is not None:
            _spec_cache.move_to_end(key)
            return spec
    spec = SweepSpec.from_json(record["spec"])
    with _spec_lock:
        _spec_cache[key] = spec
        while len(_spec_cache) > 32:
            _spec_cache.popitem(last=False)
    return spec


def todo_sig(rt: Runtime, spec: SweepSpec, todo_id: str) -> Any:
    """The planner's signature for one todo of this run (id ``<sweep>:<todo>:<run>``)."""
    from coordination.planner.canvas import todo_signature

    t = spec.todos[todo_id]
    return todo_signature(
        todo_id, t.repo, sweep_id=spec.sweep_id, plan_id=spec.plan, keys=rt.keys, run=spec.run
    )


def level_sig(rt: Runtime, spec: SweepSpec, level: int) -> Any:
    """Level ``level`` of this run as one applicable signature (chord, or todo then barrier).

    Levels are enqueued one at a time, level k+1 by the barrier of level k:
    each message stays O(width) and no plan is too deep for Celery.
    """
    from coordination.planner.canvas import LevelSpec, barrier_signature

    ids = spec.levels[level]
    barrier = barrier_signature(
        level, ids, sweep_id=spec.sweep_id, plan_id=spec.plan, keys=rt.keys, run=spec.run
    )
    return LevelSpec(level, list(ids), [todo_sig(rt, spec, t) for t in ids], barrier).signature()


def dispatch_held(rt: Runtime, sweep_id: str) -> bool:
    """True while the sweep is paused: nothing new is sent (the supervisor sends
    what became ready once it is unpaused)."""
    rec = rt.checkpoints.get_sweep(sweep_id) or {}
    return rec.get("status") == "paused"


def send_level(rt: Runtime, spec: SweepSpec, level: int, *, reason: str) -> None:
    """Mark a level's pending todos ``queued`` and enqueue the level."""
    if dispatch_held(rt, spec.sweep_id):
        return
    for tid in spec.levels[level]:
        if rt.checkpoints.set_status_if(spec.sweep_id, tid, "queued", {"pending"}, queued_at=time.time()):
            rt.events.emit("todo.queued", sweep_id=spec.sweep_id, todo_id=tid,
                           queue=spec.todos[tid].queue, via=reason)
    apply(rt, level_sig(rt, spec, level))


def apply(rt: Runtime, sig: Any) -> None:
    """Send an app-less (planner-built) signature or canvas through this runtime's app."""
    rt.app.signature(dict(sig)).apply_async()
    release_results(rt.app)


def release_results(app: Any) -> None:
    """Stop Celery's result backend from waiting on what we sent.

    Sending a chord makes the Redis backend hold its header results as pending
    and subscribe to them, for a caller that might wait; coord never waits on
    Celery results (checkpoints are the truth). Held until interpreter
    shutdown, they unsubscribed from ``__del__`` with the import system gone:
    two tracebacks at the end of every succeeding `plan sweep --wait`, and a
    subscription per todo for as long as the process lived.
    """
    backend: Any = getattr(app, "backend", None)
    pending = getattr(backend, "_pending_results", None)  # Celery's async backends
    if not pending:
        return
    held = [r for mapping in pending for waiters in list(mapping.values())
            for r in list(waiters.values())]
    for r in held:
        try:
            backend.remove_pending_result(r)
        except Exception as exc:  # best effort: only tidiness is at stake
            log.debug("could not release result %s: %s", getattr(r, "id", "?"), exc)


def send_todos(rt: Runtime, spec: SweepSpec, todo_ids: list[str], *, reason: str) -> list[str]:
    """Mark not-yet-started todos ``queued`` and send them; returns those sent.

    The compare-and-set makes concurrent callers send each todo once.
    """
    sent: list[str] = []
    if dispatch_held(rt, spec.sweep_id):
        return sent
    for tid in todo_ids:
        if not rt.checkpoints.set_status_if(
            spec.sweep_id, tid, "queued", {"pending"}, queued_at=time.time()
        ):
            continue
        apply(rt, todo_sig(rt, spec, tid))
        rt.events.emit("todo.queued", sweep_id=spec.sweep_id, todo_id=tid,
                       queue=spec.todos[tid].queue, via=reason)
        sent.append(tid)
    return sent


def redispatch(rt: Runtime, spec: SweepSpec, todo_id: str) -> None:
    """Send a todo again that is already ``queued`` (its previous holder was lost)."""
    apply(rt, todo_sig(rt, spec, todo_id))


def count_terminal(rt: Runtime, sweep_id: str, n: int = 1) -> None:
    """Count todos that reached a terminal status (each does once per run).

    Lets :func:`maybe_finish` skip reading every checkpoint after each todo; a
    count lost to a crash only delays the end to the next supervisor pass,
    which always checks in full.
    """
    rt.redis.hincrby(rt.keys.sweep(sweep_id), "terminal", n)


def skip_dependents(rt: Runtime, spec: SweepSpec, todo_id: str, why: str) -> list[str]:
    """Skip every not-yet-started descendant of a todo that did not succeed."""
    skipped = []
    for d in spec.descendants(todo_id):
        if rt.checkpoints.set_status_if(
            spec.sweep_id, d, "skipped", set(NOT_STARTED), reason=why, finished_at=time.time()
        ):
            count_terminal(rt, spec.sweep_id)
            rt.events.emit("todo.skipped", sweep_id=spec.sweep_id, todo_id=d, reason=why)
            skipped.append(d)
    return skipped


def on_todo_done(rt: Runtime, spec: SweepSpec, todo_id: str, status: str) -> None:
    """After a todo reached a terminal status: skip, dispatch (eager), maybe finish."""
    if status != "succeeded":
        skip_dependents(rt, spec, todo_id, f"{todo_id} {status}")
    elif spec.strategy == "eager":
        ready = []
        for s in spec.todos[todo_id].succs:
            # Atomic counter: exactly one finishing predecessor sees it reach zero.
            if s in spec.todos and rt.redis.hincrby(rt.keys.remaining(spec.sweep_id), s, -1) == 0:
                ready.append(s)
        if ready:
            send_todos(rt, spec, ready, reason=f"eager after {todo_id}")
    maybe_finish(rt, spec.sweep_id, spec)


def summarize(cps: dict[str, dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for cp in cps.values():
        s = (cp or {}).get("status", "pending")
        out[s] = out.get(s, 0) + 1
    return out


def maybe_finish(
    rt: Runtime, sweep_id: str, spec: SweepSpec | None = None, *, full: bool = False
) -> str | None:
    """Finalise the sweep if every todo is terminal; returns the final status if it did.

    Unless ``full``, the terminal counter must say so before any checkpoint is read.
    """
    record = rt.checkpoints.get_sweep(sweep_id)
    if record is None or record.get("status") not in SWEEP_ACTIVE:
        return None
    spec = spec or load_spec(rt, sweep_id, record)
    if spec is None:
        return None
    if not full and int(record.get("terminal") or 0) < len(spec.todos):
        return None
    cps = rt.checkpoints.get_all(sweep_id, list(spec.todos))
    if any((cp or {}).get("status") not in TERMINAL for cp in cps.values()):
        return None
    counts = summarize(cps)
    failed = sorted(t for t, cp in cps.items() if cp.get("status") == "failed")
    if counts.get("succeeded", 0) == len(cps):
        final, reason = "succeeded", f"{len(cps)} todos succeeded"
    elif counts.get("cancelled") and not failed:
        final, reason = "cancelled", "cancelled"
    else:
        final = "failed"
        parts = []
        for t in failed[:5]:
            cp = cps[t]
            parts.append(f"{t} failed ({cp.get('reason') or 'exit ' + str(cp.get('exit_code'))})")
        if len(failed) > 5:
            parts.append(f"and {len(failed) - 5} more failed")
        if counts.get("skipped"):
            parts.append(f"{counts['skipped']} skipped")
        reason = "; ".join(parts) or "not every todo succeeded"
    if rt.checkpoints.set_sweep_status(
        sweep_id, final, allowed_from=set(SWEEP_ACTIVE), finished_at=time.time(), reason=reason
    ):
        rt.redis.srem(rt.keys.active_sweeps, sweep_id)
        rt.events.emit("sweep.finished", sweep_id=sweep_id, status=final, reason=reason,
                       counts=counts, run=int(record.get("run") or 0))
        keep(rt, sweep_id, list(spec.todos))
        return final
    return None


def fail_sweep(rt: Runtime, sweep_id: str, reason: str, *, status: str = "failed") -> bool:
    """End an active sweep now (deadline, cancel): stop what has not started."""
    if not rt.checkpoints.set_sweep_status(
        sweep_id, status, allowed_from=set(SWEEP_LIVE), finished_at=time.time(), reason=reason
    ):
        return False
    rt.redis.srem(rt.keys.active_sweeps, sweep_id)
    spec = load_spec(rt, sweep_id)
    if spec is not None:
        for tid in spec.todos:
            if rt.checkpoints.set_status_if(
                sweep_id, tid, "cancelled", set(NOT_STARTED), reason=reason, finished_at=time.time()
            ):
                count_terminal(rt, sweep_id)
                rt.events.emit("todo.cancelled", sweep_id=sweep_id, todo_id=tid, reason=reason)
    kind = "sweep.cancelled" if status == "cancelled" else "sweep.finished"
    run = int((rt.checkpoints.get_sweep(sweep_id) or {}).get("run") or 0)
    rt.events.emit(kind, sweep_id=sweep_id, status=status, reason=reason, run=run)
    keep(rt, sweep_id, list(spec.todos) if spec is not None else [])
    return True


def keep(rt: Runtime, sweep_id: str, todo_ids: list[str]) -> None:
    """An ended sweep stays readable for COORD_RETENTION_DAYS, then Redis drops it."""
    rt.checkpoints.expire_sweep(sweep_id, todo_ids, rt.settings.retention_days * 86400,
                                longest_sweep=rt.settings.sweep_deadline)


def supervise_once(rt: Runtime, sweep_id: str, *, grace: float | None = None) -> None:
    """One pass over one sweep (see the module docstring)."""
    now = time.time()
    interval = rt.settings.supervise_interval
    grace = grace if grace is not None else max(2.0, 3 * interval)
    # One supervisor at a time per sweep: all of this is idempotent anyway, the
    # lock only saves duplicate messages when many workers supervise at once.
    if not rt.redis.set(rt.keys.supervisor_lock(sweep_id), "1", nx=True, px=int(interval * 900)):
        return
    record = rt.checkpoints.get_sweep(sweep_id)
    if record is not None and record.get("status") == "paused":
        return  # nothing is dispatched, re-sent or timed out while paused
    if record is None or record.get("status") not in SWEEP_ACTIVE:
        rt.redis.srem(rt.keys.active_sweeps, sweep_id)
        return
    if record.get("deadline") and now > float(record["deadline"]):
        fail_sweep(rt, sweep_id, f"deadline passed ({int(now - float(record['created_at']))} s)")
        return
    spec = load_spec(rt, sweep_id, record)
    if spec is None:
        return
    cps = rt.checkpoints.get_all(sweep_id, list(spec.todos))
    status = {t: (cp or {}).get("status", "pending") for t, cp in cps.items()}
    for tid, cp in cps.items():
        st = status[tid]
        if st == "running":
            lease_key, token = cp.get("lease_key"), cp.get("token")
            if lease_key and token and rt.redis.get(lease_key) != token:
                # The holder's lease expired: its worker died or froze. Its late
                # writes will be refused (fence), so run the todo again now,
                # unless this was its max_lost_runs-th lost run (a poison todo).
                _lease_lost(rt, spec, tid, cp, now)
        elif st in ("failed", "skipped", "cancelled"):
            skip_dependents(rt, spec, tid, f"{tid} {st}")
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
        if st != "pending":
            continue
        preds = spec.todos[tid].preds
        if any(status.get(p, "succeeded") != "succeeded" for p in preds):
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
    maybe_finish(rt, sweep_id, spec, full=True)


def _lease_lost(rt: Runtime, spec: SweepSpec, tid: str, cp: dict[str, Any], now: float) -> None:
    sweep_id = spec.sweep_id
    verdict = rt.checkpoints.mark_lost(
        sweep_id, tid, token=str(cp.get("token")), max_lost=rt.settings.max_lost_runs,
        now=now, why="lease expired",
    )
    if verdict == "requeued":
        rt.events.emit("todo.lost", sweep_id=sweep_id, todo_id=tid, worker=cp.get("worker"),
                       reason="lease expired", lost_runs=int(cp.get("lost_runs") or 0) + 1)
        redispatch(rt, spec, tid)
        rt.events.emit("supervisor.redispatched", sweep_id=sweep_id, todo_id=tid,
                       reason="lease expired")
    elif verdict == "failed":
        poisoned(rt, spec, tid, worker=cp.get("worker"))


def poisoned(rt: Runtime, spec: SweepSpec, tid: str, *, worker: Any = None) -> None:
    """Bookkeeping after a todo ended ``failed`` for having lost too many runs."""
    cp = rt.checkpoints.get(spec.sweep_id, tid) or {}
    count_terminal(rt, spec.sweep_id)
    rt.events.emit("todo.lost", sweep_id=spec.sweep_id, todo_id=tid, worker=worker,
                   reason="lease expired", lost_runs=cp.get("lost_runs"))
    rt.events.emit("todo.failed", sweep_id=spec.sweep_id, todo_id=tid, worker=worker,
                   reason=cp.get("reason"), attempts=cp.get("attempts"), poison=True)
    log.warning("sweep %s: %s failed: %s", spec.sweep_id, tid, cp.get("reason"))
    on_todo_done(rt, spec, tid, "failed")


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
    if rt.settings.embedded or rt.workers is None:
        return []  # in-process queues cannot lose a message
    after = rt.settings.lost_after
    candidates = [
        t for t, cp in cps.items()
        if (cp or {}).get("status") == "queued"
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
        if rt.checkpoints.set_status_if(sid, t, "queued", {"queued"}, queued_at=now,
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
    """The Celery task id of a todo in this run (what todo_sig stamps)."""
    from coordination.planner.canvas import todo_task_id as planner_task_id

    return planner_task_id(spec.sweep_id, todo_id, spec.run)


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
            supervise_once(rt, sweep_id)
        except Exception:  # a supervisor must outlive a bad sweep
            log.exception("supervising sweep %s failed", sweep_id)


class SupervisorThread(threading.Thread):
    """Runs :func:`supervise_all` every ``supervise_interval`` seconds."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(name="coord-supervisor", daemon=True)
        self.rt = rt
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.rt.settings.supervise_interval):
            try:
                supervise_all(self.rt)
            except Exception:  # never let the thread die: sweeps need it
                log.exception("supervisor pass failed")

    def stop(self) -> None:
        self._stop.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=5)
