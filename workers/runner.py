"""Running one todo of one sweep on a worker: claim, lease, execute, record.

Free of Celery so it can be tested on its own: the task in
:mod:`workers.tasks` maps the returned :class:`Outcome` onto Celery.

The steps, each safe under duplicate delivery:

1. The sweep is gone, over, or cancelled: nothing to do.
2. The todo is terminal in its checkpoint: a duplicate; nothing to do.
3. A predecessor failed/was skipped: record ``skipped``. A predecessor not
   yet done: a premature delivery; drop it (the todo is sent again when ready).
4. Take a lease of the repo (at most ``concurrency`` holders), then claim the
   checkpoint with it. ``busy`` (a live holder runs it) or ``stale`` means
   another delivery owns the todo: drop this one.
5. Run the command with a heartbeat renewing the lease; if renewal fails the
   process group is killed and nothing more is written (the fence would
   refuse it anyway): the supervisor runs the todo again.
6. Record the outcome with a fenced write, release the lease, and let the
   supervisor logic skip dependents / dispatch successors / finish the sweep.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import redis

from coordination.runtime.context import Runtime, worker_identity
from coordination.spec import TERMINAL, SweepSpec
from coordination.supervisor import count_terminal, load_spec, on_todo_done, poisoned

log = logging.getLogger("coord.runner")

BACKOFF_BASE = 1.0
BACKOFF_MAX = 60.0


def backoff_delay(attempt: int, base: float = BACKOFF_BASE) -> float:
    """Exponential backoff with full jitter before retry ``attempt`` (1-based)."""
    return random.uniform(0, min(BACKOFF_MAX, base * (2 ** (attempt - 1))))


def backoff_cap(retries: int, base: float = BACKOFF_BASE) -> float:
    """Longest total backoff ``retries`` retries can take."""
    return sum(min(BACKOFF_MAX, base * (2 ** (a - 1))) for a in range(1, retries + 1))


_running: set[str] = set()
_running_lock = threading.Lock()


def running_todos() -> list[str]:
    """``<sweep>/<todo>`` of every todo whose command this process runs now."""
    with _running_lock:
        return sorted(_running)


class Outcome(str, Enum):
    done = "done"  # ran (or was skipped) and recorded
    duplicate = "duplicate"  # already terminal or owned by another delivery
    premature = "premature"  # predecessors not done yet
    lost = "lost"  # lease lost while running; the supervisor re-sends it
    gone = "gone"  # sweep unknown or no longer active


@dataclass
class WorkerInfo:
    """Who is running todos: the repo this worker serves and its checkout override."""

    repo: str | None = None  # None: serves every repo (embedded control worker)
    path: str | None = None
    name: str = ""


def _checkout(spec_path: str | None, worker: WorkerInfo) -> str:
    if worker.path:
        return worker.path
    return spec_path or "."


def run_todo(
    rt: Runtime, sweep_id: str, todo_id: str, worker: WorkerInfo
) -> tuple[Outcome, dict[str, Any]]:
    """Run one todo of one sweep; see the module docstring."""
    record = rt.checkpoints.get_sweep(sweep_id)
    if record is None:
        return Outcome.gone, {"reason": f"unknown sweep {sweep_id}"}
    spec = load_spec(rt, sweep_id, record)
    if spec is None or todo_id not in spec.todos:
        return Outcome.gone, {"reason": f"{todo_id} is not part of sweep {sweep_id}"}
    if record.get("status") not in ("queued", "running"):
        # Paused: the todo stays queued and is sent again on unpause.
        return Outcome.gone, {"reason": f"sweep is {record.get('status')}"}
    if rt.settings.signing_keys:
        from coordination.runtime.signing import verify

        why = verify(record, rt.settings.signing_keys)
        if why is not None:
            return _refuse(rt, spec, todo_id, why)
    t = spec.todos[todo_id]
    cp = rt.checkpoints.get(sweep_id, todo_id) or {}
    if cp.get("status") in TERMINAL:
        return Outcome.duplicate, {"status": cp.get("status")}

    pred_status = {
        p: (c or {}).get("status") for p, c in rt.checkpoints.get_all(sweep_id, t.preds).items()
    }
    bad = [p for p, s in pred_status.items() if s in ("failed", "skipped", "cancelled")]
    if bad:
        why = f"{bad[0]} {pred_status[bad[0]]}"
        if rt.checkpoints.set_status_if(
            sweep_id, todo_id, "skipped", {"pending", "queued"}, reason=why, finished_at=time.time()
        ):
            count_terminal(rt, sweep_id)
            rt.events.emit("todo.skipped", sweep_id=sweep_id, todo_id=todo_id, reason=why)
            on_todo_done(rt, spec, todo_id, "skipped")
        return Outcome.done, {"status": "skipped"}
    if any(s != "succeeded" for s in pred_status.values()):
        return Outcome.premature, {"waiting_for": sorted(p for p, s in pred_status.items() if s != "succeeded")}

    def sweep_status() -> str | None:
        try:
            rec = rt.checkpoints.get_sweep(sweep_id)
        except redis.RedisError as exc:
            # Redis away for a moment: not a reason to stop. The lease
            # heartbeat decides whether this worker may go on.
            log.warning("%s/%s: cannot read the sweep (%s); going on", sweep_id, todo_id, exc)
            return "running"
        return None if rec is None else str(rec.get("status"))

    def sweep_stopped() -> bool:
        """Ended (cancelled, failed by its deadline, gone): kill a running command.
        A paused sweep lets running todos finish."""
        return sweep_status() not in ("queued", "running", "paused")

    def not_dispatching() -> bool:
        """No lease wait for a sweep that is paused or ended (re-sent on unpause)."""
        return sweep_status() not in ("queued", "running")

    lease = rt.leases.acquire(
        t.repo,
        spec.concurrency.get(t.repo, 1),
        timeout=max(1.0, float(record.get("deadline", time.time() + 3600)) - time.time()),
        should_stop=not_dispatching,
    )
    if lease is None:
        return Outcome.gone, {"reason": "no lease before the sweep ended"}
    try:
        if not_dispatching():  # paused (or ended) while we waited for the lease
            return Outcome.gone, {"reason": "sweep paused or ended"}
        claim = rt.checkpoints.claim(
            sweep_id, todo_id, lease=lease, worker=worker.name or worker_identity(),
            now=time.time(), max_lost=rt.settings.max_lost_runs,
        )
        if claim in ("terminal", "busy", "stale"):
            return Outcome.duplicate, {"claim": claim}
        if claim == "poisoned":
            # Its earlier holder was the max_lost_runs-th to die running it.
            poisoned(rt, spec, todo_id)
            return Outcome.done, {"status": "failed", "reason": "poison"}
        if claim == "taken_over":
            rt.events.emit("todo.lost", sweep_id=sweep_id, todo_id=todo_id, reason="taken over")
        rt.checkpoints.set_sweep_status(
            sweep_id, "running", allowed_from={"queued"}, started_at=time.time()
        )
        return _execute(rt, spec, todo_id, lease, worker, sweep_stopped)
    finally:
        try:
            rt.leases.release(lease)
        except redis.RedisError as exc:  # it expires on its own within the TTL
            log.warning("could not release %s: %s", lease.key, exc)


def _refuse(rt: Runtime, spec: SweepSpec, todo_id: str, why: str) -> tuple[Outcome, dict[str, Any]]:
    """End a todo ``failed`` without running anything (its spec cannot be trusted)."""
    log.error("%s/%s refused: %s", spec.sweep_id, todo_id, why)
    if rt.checkpoints.set_status_if(
        spec.sweep_id, todo_id, "failed", {"pending", "queued"}, reason=why, finished_at=time.time()
    ):
        count_terminal(rt, spec.sweep_id)
        rt.events.emit("todo.failed", sweep_id=spec.sweep_id, todo_id=todo_id, reason=why,
                       refused=True)
        on_todo_done(rt, spec, todo_id, "failed")
    return Outcome.done, {"status": "failed", "reason": why}


def _execute(
    rt: Runtime, spec: SweepSpec, todo_id: str, lease: Any, worker: WorkerInfo, sweep_stopped: Any
) -> tuple[Outcome, dict[str, Any]]:
    from coordination.runtime.leases import Heartbeat
    from workers.execute import run_command

    t = spec.todos[todo_id]
    sweep_id = spec.sweep_id
    lost = threading.Event()
    hb = Heartbeat(rt.leases, lease, rt.settings.heartbeat_interval, on_lost=lost.set)
    hb.start()
    # The cancel check reads Redis; over a cut network that read can block for the
    # client's socket timeout, and should_stop must never wait on it (the lease
    # deadline below is what keeps two runs apart). So a watcher thread reads the
    # sweep twice a second and should_stop only looks at flags and the clock.
    cancelled, done = threading.Event(), threading.Event()

    def watch_cancel() -> None:
        while not done.wait(0.5):
            if sweep_stopped():
                cancelled.set()
                return

    threading.Thread(target=watch_cancel, name=f"cancel-watch:{todo_id}", daemon=True).start()

    def should_stop() -> str | None:
        if lost.is_set() or hb.doomed():
            lost.set()  # from here on this run writes nothing
            return "lease lost"
        if cancelled.is_set():
            return "sweep cancelled"
        return None

    cwd = _checkout(t.path, worker)
    env = dict(t.env)
    env.update(COORD_SWEEP_ID=sweep_id, COORD_TODO_ID=todo_id, COORD_REPO=t.repo)
    host = worker.name or worker_identity()
    result = None
    reason: str | None = None
    total = 0.0
    attempts = 1
    with _running_lock:
        _running.add(f"{sweep_id}/{todo_id}")
    # Everything from here on is inside the try: a heartbeat left running by an
    # exception would renew this lease forever and hold the todo 'running' for good.
    try:
        patience = time.monotonic() + rt.settings.lease_ttl
        _persist(lambda: rt.events.emit("todo.started", sweep_id=sweep_id, todo_id=todo_id,
                                        worker=host, fence=lease.fence), patience)
        cp = _persist(lambda: rt.checkpoints.get(sweep_id, todo_id), patience) or {}
        attempts = int(cp.get("attempts") or 1)
        for attempt in range(t.retries + 1):
            if not Path(cwd).is_dir():
                result = None
                reason = f"checkout {cwd} does not exist (clone the repo there or pass --path)"
                break
            result = run_command(
                t.run, cwd=cwd, env=env, timeout=t.timeout,
                tail_bytes=rt.settings.output_tail_bytes, should_stop=should_stop,
            )
            total += result.duration
            reason = result.reason or (None if result.ok else f"exit {result.exit_code}")
            if result.ok or result.outcome in ("stopped", "error") or attempt == t.retries:
                break
            delay = backoff_delay(attempt + 1)
            attempts += 1
            rt.events.emit(
                "todo.retrying", sweep_id=sweep_id, todo_id=todo_id, attempt=attempts,
                delay=round(delay, 2), reason=reason,
            )
            rt.checkpoints.write(sweep_id, todo_id, {"attempts": attempts}, lease=lease)
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and should_stop() is None:
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
    finally:
        done.set()
        hb.stop()
        with _running_lock:
            _running.discard(f"{sweep_id}/{todo_id}")

    if lost.is_set() or hb.lost or hb.doomed():
        try:  # Redis may be the reason the lease was lost: the event is best effort
            rt.events.emit("todo.lost", sweep_id=sweep_id, todo_id=todo_id, worker=host,
                           reason="lease lost")
        except redis.RedisError as exc:
            log.warning("%s/%s: lease lost; event not recorded (%s)", sweep_id, todo_id, exc)
        return Outcome.lost, {"reason": "lease lost"}
    if result is not None and result.outcome == "stopped" and result.reason == "sweep cancelled":
        status = "cancelled"
    elif result is not None and result.ok:
        status = "succeeded"
    else:
        status = "failed"
    fields: dict[str, Any] = {
        "status": status,
        "attempts": attempts,
        "exit_code": None if result is None else result.exit_code,
        "finished_at": time.time(),
        "duration": round(total, 3),
        "reason": None if status == "succeeded" else reason,
        "output_tail": "" if result is None else result.output_tail(rt.settings.output_tail_bytes),
        "stdout_bytes": 0 if result is None else result.stdout_bytes,
        "stderr_bytes": 0 if result is None else result.stderr_bytes,
    }
    # Redis may be restarting right now: the outcome is worth waiting for as
    # long as our lease could still be alive (the fenced write refuses it after).
    patience = time.monotonic() + rt.settings.lease_ttl
    if not _persist(lambda: rt.checkpoints.write(sweep_id, todo_id, fields, lease=lease), patience):
        # Our fence is stale: someone else owns the todo now. Say so, write nothing.
        rt.events.emit("todo.lost", sweep_id=sweep_id, todo_id=todo_id, worker=host, reason="stale fence")
        return Outcome.lost, {"reason": "stale fence"}
    # Best effort from here: a lost count, event or dispatch is made good by the
    # supervisor's next full pass.
    _persist(lambda: count_terminal(rt, sweep_id), patience)
    _persist(lambda: rt.events.emit(
        f"todo.{status}", sweep_id=sweep_id, todo_id=todo_id, worker=host,
        exit_code=fields["exit_code"], attempts=attempts, duration=fields["duration"],
        reason=fields["reason"],
    ), patience)
    _persist(lambda: on_todo_done(rt, spec, todo_id, status), patience)
    return Outcome.done, {"status": status, "exit_code": fields["exit_code"]}


def _persist(write: Any, until: float) -> Any:
    """Run ``write``, retrying on Redis connection errors until ``until`` (monotonic)."""
    delay = 0.05
    while True:
        try:
            return write()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if time.monotonic() + delay > until:
                raise
            log.warning("Redis unreachable (%s); retrying in %.2f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
