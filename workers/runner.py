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
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


import redis

from coordination.retry import BACKOFF_BASE as BACKOFF_BASE  # re-exported
from coordination.retry import BACKOFF_MAX as BACKOFF_MAX
from coordination.retry import backoff_cap as backoff_cap
from coordination.retry import backoff_delay
from coordination.runtime.context import Runtime, worker_identity
from coordination.runtime.client import riding_out
from coordination.runtime.leases import Lease, new_token
from coordination.runtime.checkpoints import SweepRecord
from coordination.runtime.leases import Heartbeat
from coordination.runtime.transitions import StartVerdict, waiter_rank
from coordination.status import (
    NOT_STARTED,
    SUCCESSFUL,
    SWEEP_ACTIVE,
    SWEEP_LIVE,
    EventKind,
    TodoStatus,
)
from coordination.sweeps.lost import poisoned
from coordination.sweeps.progress import Change, end_todos, progress
from coordination.sweeps.spec import SweepSpec
from coordination.sweeps.spec_store import (
    cached_spec,
    level_index,
    load_spec,
    spec_refusal,
    sweep_head,
)
from workers.execute import run_command

log = logging.getLogger("coord.runner")

#: Seconds after which a waiter that stopped asking (its worker died) loses its
#: place in line; a live waiter asks at least every second.
WAITER_STALE = 5.0

#: Seconds a command runs before its lease heartbeat and cancel watcher start (see
#: ``_execute``; at most half the heartbeat interval, whose first renewal still comes
#: an interval after the grant).
WATCH_AFTER = 0.2

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
    held = "held"  # its repo's breaker is open: the supervisor sends it again later


@dataclass
class WorkerInfo:
    """Who is running todos: the repos this worker serves and their checkouts.

    ``repo``/``path``: a worker of one repo (``path`` overrides the spec's checkout);
    ``paths``: a worker of several repos, repo -> checkout. Neither: every repo
    (embedded workers), each todo in its spec's checkout."""

    repo: str | None = None
    path: str | None = None
    name: str = ""
    paths: dict[str, str] = field(default_factory=dict)

    @property
    def repos(self) -> frozenset[str]:
        """The repos served; empty: any."""
        return frozenset(self.paths) | ({self.repo} if self.repo else frozenset())

    def checkout(self, repo: str) -> str | None:
        if self.repo == repo and self.path:
            return self.path
        return self.paths.get(repo)


def _checkout(spec_path: str | None, repo: str, worker: WorkerInfo) -> str:
    return worker.checkout(repo) or spec_path or "."


def _current(rt: Runtime, sweep_id: str, todo_id: str, run: int | None
             ) -> tuple[SweepSpec | None, SweepRecord | None, str]:
    """The spec to run ``todo_id`` by, and the sweep's head if it was read; else why not.

    A message names its run: with that run's spec parsed in this process, nothing is
    read (the start script checks the sweep is still at that run and dispatching)."""
    spec = cached_spec(sweep_id, run) if type(run) is int else None
    if spec is not None:
        return (spec, None, "") if todo_id in spec.todos else (
            None, None, f"{todo_id} is not part of sweep {sweep_id}")
    head = sweep_head(rt, sweep_id)
    if head is None:
        return None, None, f"unknown sweep {sweep_id}"
    spec = load_spec(rt, sweep_id, head)
    if spec is None or todo_id not in spec.todos:
        return None, head, f"{todo_id} is not part of sweep {sweep_id}"
    if head.get("status") not in SWEEP_ACTIVE:
        # Paused: the todo stays queued and is sent again on unpause.
        return None, head, f"sweep is {head.get('status')}"
    return spec, head, ""


def run_todo(
    rt: Runtime, sweep_id: str, todo_id: str, worker: WorkerInfo, run: int | None = None
) -> tuple[Outcome, dict[str, object]]:
    """Run one todo of one sweep; see the module docstring. ``run``: the run its
    message was sent for (None: a message of before 0.2, read the sweep's)."""
    spec, head, why = _current(rt, sweep_id, todo_id, run)
    if spec is None:
        return Outcome.gone, {"reason": why}
    if rt.settings.signing_keys:
        refused = spec_refusal(rt, sweep_id, spec.run)
        if refused is not None:
            return _refuse(rt, spec, todo_id, refused)
    t = spec.todos[todo_id]
    host = worker.name or worker_identity()
    token = new_token()
    deadline: float | None = None  # read when first needed: only a todo that waits
    patience = time.monotonic() + rt.settings.lease_ttl
    delay = 0.05
    # Its place in line if the repo's or a resource's slots are all taken: the
    # spec's rank (priority, remaining critical path), then how long it has waited.
    rank = waiter_rank(t.rank, time.time(), sweep_id, todo_id)
    resources = spec.resources_of(todo_id)
    # A rollback the user asked for runs its undo: commands whatever the breaker says
    # (and they do not count against it: see finish below).
    breaker = None if spec.mode == "rollback" else spec.breaker(t.repo)
    # A half-open breaker's probe that never reports back frees the way after this.
    probe_for = t.timeout * (t.retries + 1) + backoff_cap(t.retries) + 2 * rt.settings.lease_ttl
    waited = False
    while True:
        # One round trip: sweep dispatching and at this run, predecessors succeeded,
        # breaker, first in line, repo and resource slots, claim, event. Retried with
        # the same token, a call whose reply was lost is answered 'started' again.
        st = riding_out(lambda: rt.transitions.start(
            sweep_id, todo_id, repo=t.repo, concurrency=spec.concurrency.get(t.repo, 1),
            preds=t.preds, worker=host, level=level_index(spec, todo_id),
            max_lost=rt.settings.max_lost_runs, token=token, resources=resources,
            breaker=breaker, rank=rank, probe_for=probe_for, waiter_stale=WAITER_STALE,
            waited=waited, run=spec.run,
        ), patience)
        if st.verdict == StartVerdict.run:
            # The sweep moved on (a resume or rollback) since this message was sent:
            # go by the spec of the run it is at now, as a message of that run would
            # (the script has taken this delivery out of any line it stood in).
            return run_todo(rt, sweep_id, todo_id, worker, None) if run is not None else (
                Outcome.gone, {"reason": f"sweep moved on to run {st.detail}"})
        if st.verdict != StartVerdict.wait:
            break
        waited = True
        # No slot for it yet: wait until a finishing holder wakes it (it is first
        # in line) or for the back-off, then ask again; each ask sees a pause or
        # cancel at once, and keeps its place in line alive.
        if deadline is None:
            deadline = _wait_deadline(rt, sweep_id, head)
        if time.monotonic() + delay > deadline:
            return Outcome.gone, {"reason": "no lease before the sweep ended"}
        pause = delay * random.uniform(0.5, 1.5)
        if rt.in_process:
            time.sleep(pause)
        else:
            try:
                rt.transitions.wait_turn(rank, pause)
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(pause)
        delay = min(delay * 2, 1.0)
        patience = time.monotonic() + rt.settings.lease_ttl
    if st.verdict == StartVerdict.gone:
        return Outcome.gone, {"reason": f"sweep is {st.detail}"}
    if st.verdict == StartVerdict.held:
        return Outcome.held, {"reason": f"the breaker of {t.repo} is open"}
    if st.verdict == StartVerdict.terminal:
        return Outcome.duplicate, {"status": st.detail}
    if st.verdict in (StartVerdict.busy, StartVerdict.stale):
        return Outcome.duplicate, {"claim": str(st.verdict)}
    if st.verdict == StartVerdict.premature:
        return Outcome.premature, {"waiting_for": sorted(st.waiting)}
    if st.verdict == StartVerdict.skipped:
        progress(rt, spec, [_ended(spec, todo_id, TodoStatus.skipped, st.level_done,
                                   st.terminal)])
        return Outcome.done, {"status": str(TodoStatus.skipped)}
    if st.verdict == StartVerdict.poisoned:
        # Its earlier holder was the max_lost_runs-th to die running it.
        poisoned(rt, spec, todo_id, level_done=st.level_done, terminal=st.terminal)
        return Outcome.done, {"status": str(TodoStatus.failed), "reason": "poison"}
    assert st.lease is not None, st
    lease = st.lease
    released = False
    try:
        outcome, detail, released = _execute(rt, spec, todo_id, lease, st.attempts, worker)
        return outcome, detail
    finally:
        if not released:
            try:
                rt.leases.release(lease)
            except redis.RedisError as exc:  # it expires on its own within the TTL
                log.warning("could not release %s: %s", lease.key, exc)


def _ended(spec: SweepSpec, todo_id: str, status: TodoStatus, level_done: bool | None,
           terminal: int | None, queued: list[str] | None = None) -> Change:
    """The change a transition script made ending ``todo_id``, for the progression."""
    level = level_index(spec, todo_id)
    return Change(todo_id, status, level_done=level_done, terminal=terminal,
                  levels=(level,) if level_done and level >= 0 else (),
                  queued=tuple(queued or ()))


def _wait_deadline(rt: Runtime, sweep_id: str, head: SweepRecord | None) -> float:
    """Monotonic time after which a todo waiting for a slot gives up: its sweep's
    deadline (an hour from now if it has none)."""
    if head is None:
        head = sweep_head(rt, sweep_id)
    left = float((head or {}).get("deadline") or time.time() + 3600) - time.time()
    return time.monotonic() + max(1.0, left)


def _refuse(rt: Runtime, spec: SweepSpec, todo_id: str, why: str) -> tuple[Outcome, dict[str, object]]:
    """End a todo ``failed`` without running anything (its spec cannot be trusted)."""
    log.error("%s/%s refused: %s", spec.sweep_id, todo_id, why)
    end_todos(rt, spec, [todo_id], TodoStatus.failed, NOT_STARTED,
              event={"reason": why, "refused": True})
    return Outcome.done, {"status": str(TodoStatus.failed), "reason": why}


def _execute(
    rt: Runtime, spec: SweepSpec, todo_id: str, lease: Lease, attempts: int, worker: WorkerInfo
) -> tuple[Outcome, dict[str, object], bool]:
    """Run the command under ``lease``; returns the outcome, its detail, and whether
    the lease was released (by the finishing write)."""
    t = spec.todos[todo_id]
    sweep_id = spec.sweep_id
    lost = threading.Event()
    hb = Heartbeat(rt.leases, lease, rt.settings.heartbeat_interval, on_lost=lost.set)
    # The cancel check reads Redis; over a cut network that read can block for the
    # client's socket timeout, and should_stop must never wait on it (the lease
    # deadline below is what keeps two runs apart). So a watcher thread reads the
    # sweep's status twice a second and should_stop only looks at flags and the clock.
    cancelled, done = threading.Event(), threading.Event()

    def sweep_stopped() -> bool:
        """Ended (cancelled, failed by its deadline, gone): kill a running command.
        A paused sweep lets running todos finish."""
        try:
            status = rt.checkpoints.sweep_status(sweep_id)
        except redis.RedisError as exc:
            # Redis away for a moment: not a reason to stop. The lease
            # heartbeat decides whether this worker may go on.
            log.warning("%s/%s: cannot read the sweep (%s); going on", sweep_id, todo_id, exc)
            return False
        return status not in SWEEP_LIVE

    def watch_cancel() -> None:
        while not done.wait(0.5):
            if sweep_stopped():
                cancelled.set()
                return

    # Both threads start once the command has run for WATCH_AFTER s: a renewal is due
    # only after heartbeat_interval (a third of the lease's TTL) and a cancel is looked
    # for every 0.5 s, so a command that ends sooner needs neither (two threads' start
    # and stop are a quarter of an embedded todo's own cost). The lease's deadline
    # (doomed) counts from its grant whether or not the heartbeat has started.
    began = time.monotonic()
    watching: list[threading.Thread] = []

    watch_after = min(WATCH_AFTER, rt.settings.heartbeat_interval / 2)

    def watch() -> None:
        if not watching and time.monotonic() - began >= watch_after:
            hb.start()
            watching.append(threading.Thread(target=watch_cancel, name=f"cancel-watch:{todo_id}",
                                             daemon=True))
            watching[0].start()

    def should_stop() -> str | None:
        watch()
        if lost.is_set() or hb.doomed():
            lost.set()  # from here on this run writes nothing
            return "lease lost"
        if cancelled.is_set():
            return "sweep cancelled"
        return None

    cwd = _checkout(t.path, t.repo, worker)
    env = dict(t.env)
    env.update(COORD_SWEEP_ID=sweep_id, COORD_TODO_ID=todo_id, COORD_REPO=t.repo)
    host = worker.name or worker_identity()
    result = None
    reason: str | None = None
    total = 0.0
    with _running_lock:
        _running.add(f"{sweep_id}/{todo_id}")
    # Everything from here on is inside the try: a heartbeat left running by an
    # exception would renew this lease forever and hold the todo 'running' for good.
    try:
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
                EventKind.todo_retrying, sweep_id=sweep_id, todo_id=todo_id, attempt=attempts,
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
            rt.events.emit(EventKind.todo_lost, sweep_id=sweep_id, todo_id=todo_id, worker=host,
                           reason="lease lost")
        except redis.RedisError as exc:
            log.warning("%s/%s: lease lost; event not recorded (%s)", sweep_id, todo_id, exc)
        return Outcome.lost, {"reason": "lease lost"}, False
    rollback = spec.mode == "rollback"
    if result is not None and result.outcome == "stopped" and result.reason == "sweep cancelled":
        status = TodoStatus.cancelled
    elif result is not None and result.ok:
        status = TodoStatus.compensated if rollback else TodoStatus.succeeded
    else:
        status = TodoStatus.compensation_failed if rollback else TodoStatus.failed
    exit_code = None if result is None else result.exit_code
    duration = round(total, 3)
    why = None if status in SUCCESSFUL else reason
    fields: dict[str, object] = {
        "attempts": attempts,
        "exit_code": exit_code,
        "finished_at": time.time(),
        "duration": duration,
        "reason": why,
        "output_tail": "" if result is None else result.output_tail(rt.settings.output_tail_bytes),
        "stdout_bytes": 0 if result is None else result.stdout_bytes,
        "stderr_bytes": 0 if result is None else result.stderr_bytes,
    }
    event = {"worker": host, "exit_code": exit_code, "attempts": attempts, "duration": duration,
             "reason": why}
    succs = [(s, spec.todos[s].queue) for s in t.succs if s in spec.todos] \
        if spec.strategy == "eager" else []
    # Redis may be restarting right now: the outcome is worth waiting for as
    # long as our lease could still be alive (the fenced write refuses it after).
    # One round trip: fenced write, lease released, counters, event, eager successors.
    patience = time.monotonic() + rt.settings.lease_ttl
    fin = riding_out(lambda: rt.transitions.finish(
        sweep_id, todo_id, lease=lease, status=status, fields=fields, event=event,
        level=level_index(spec, todo_id), successors=succs,
        breaker=None if rollback else spec.breaker(t.repo), resources=t.resources,
    ), patience)
    if not fin.ok:
        # Our fence is stale: someone else owns the todo now. Say so, write nothing.
        rt.events.emit(EventKind.todo_lost, sweep_id=sweep_id, todo_id=todo_id, worker=host,
                       reason="stale fence")
        return Outcome.lost, {"reason": "stale fence"}, False
    # Best effort from here: a lost dispatch or finish is made good by the
    # supervisor's next full pass.
    riding_out(lambda: progress(rt, spec, [_ended(spec, todo_id, status, fin.level_done,
                                                  fin.terminal, fin.queued)]), patience)
    return Outcome.done, {"status": str(status), "exit_code": exit_code}, True
