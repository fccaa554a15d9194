"""Running one todo of one sweep on a worker: its command, under its lease.

Free of Celery so it can be tested on its own: the task in :mod:`workers.tasks`
maps the returned :class:`Outcome` onto Celery. The sweep's side of a turn (a
lease to run it or why not, the outcome recorded, what follows) is
:mod:`coordination.sweeps.turns`; here is the worker's side:

1. :func:`~coordination.sweeps.turns.take_turn` answers with a turn holding the
   repo's lease, or how this delivery ends (gone, duplicate, premature, held,
   skipped, poisoned, refused).
2. The command runs in the repo's checkout with a heartbeat renewing the lease;
   if renewal fails the process group is killed and nothing more is written
   (the fence would refuse it anyway): the supervisor runs the todo again.
3. :meth:`Turn.finish` records the outcome with a fenced write that releases the
   lease, and the progression carries the sweep on.

Redis out of reach (:data:`~coordination.connection.client.UNREACHABLE`) is the one
error left to the lease's expiry (the run is found lost and sent again); anything
else raised in coord's own code, Redis errors such as OOM or NOPERM included, ends
the todo failed naming it (``coord error: ...``), never "its worker died".
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from coordination.connection.client import UNREACHABLE
from coordination.retry import BACKOFF_BASE as BACKOFF_BASE  # re-exported
from coordination.retry import BACKOFF_MAX as BACKOFF_MAX
from coordination.retry import backoff_delay
from coordination.runtime.context import Runtime, worker_identity
from coordination.status import SUCCESSFUL, TodoStatus
from coordination.sweeps.outputs import (
    OUTPUT_CAP,
    InputsRefused,
    OutputsRefused,
    inputs_env,
    outputs_fields,
    outputs_refusal,
    parse_outputs,
    too_big,
)
from coordination.sweeps.spec import TodoSpec
from coordination.sweeps.turns import Outcome as Outcome  # re-exported for the task
from coordination.sweeps.turns import Turn, coord_error, outcome_status, take_turn
from workers.caching import TodoCache
from workers.changes import ChangeTurn
from workers.execute import ExecResult, run_command

log = logging.getLogger("coord.runner")

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


def run_todo(
    rt: Runtime, sweep_id: str, todo_id: str, worker: WorkerInfo, run: int | None = None
) -> tuple[Outcome, dict[str, object]]:
    """Run one todo of one sweep; see the module docstring. ``run``: the run its
    message was sent for (None: a message of before 0.2, read the sweep's).

    A sweep with ``--merge-chains``: when the todo succeeds and its finish queued the
    next todo of its chain, that todo runs next here, in the same task, taking its own
    turn (start script, lease, checkpoint, events, retries, outcome) as a delivery of
    its message would; the first todo's outcome is what is returned."""
    first: tuple[Outcome, dict[str, object]] | None = None
    nxt: tuple[str, str] | None = (todo_id, "")
    while nxt is not None:
        if first is not None:
            rt.metrics.count_sent([nxt[1]])  # as its message would have counted
        outcome, detail, nxt = _run_one(rt, sweep_id, nxt[0], worker, run)
        first = first or (outcome, detail)
    assert first is not None
    return first


def _run_one(rt: Runtime, sweep_id: str, todo_id: str, worker: WorkerInfo, run: int | None
             ) -> tuple[Outcome, dict[str, object], tuple[str, str] | None]:
    """One todo's turn: its outcome, detail, and the next todo of its chain to run here
    (with its repo), if its finish queued one."""
    got = take_turn(rt, sweep_id, todo_id, run, worker.name or worker_identity())
    if not isinstance(got, Turn):
        return got[0], got[1], None
    released = False
    try:
        outcome, detail, released = _execute(got, worker)
        nxt = got.next_inline
        return outcome, detail, None if nxt is None else (nxt, got.spec.todos[nxt].repo)
    except UNREACHABLE:
        raise  # Redis out of reach: the lease expires, the run is found lost and sent again
    except Exception as exc:
        # coord's own code raised (a bug, a full disk) or Redis answered with an error
        # (OOM, NOPERM, a script's): the todo ends failed saying so, never left for the
        # supervisor to find "lost", as if its worker had died.
        done = _failed_by(got, exc)
        if done is None:
            raise
        released = True
        return done[0], done[1], None
    finally:
        if not released:
            got.release()


def _failed_by(turn: Turn, exc: Exception) -> tuple[Outcome, dict[str, object]] | None:
    """Record ``turn``'s todo failed (an undo: compensation_failed) by an exception in
    coord's own code (:func:`~coordination.sweeps.turns.coord_error` names it); None
    when it cannot be (not running under this turn's lease any more, or Redis refuses)."""
    why = coord_error(exc) + " (while running it; see the worker's log)"
    log.error("%s/%s: %s", turn.sweep_id, turn.todo_id, why, exc_info=exc)
    status = outcome_status(turn.spec, ok=False, cancelled=False)
    try:
        cp = turn.rt.checkpoints.get(turn.sweep_id, turn.todo_id) or {}
        if cp.get("status") != TodoStatus.running or cp.get("token") != turn.lease.token:
            return None  # recorded already (the error came after), or not ours
        outcome, _released = turn.finish(
            status,
            {"attempts": turn.attempts, "exit_code": None, "finished_at": time.time(),
             "reason": why, "output_tail": ""},
            {"worker": turn.host, "exit_code": None, "attempts": turn.attempts, "reason": why,
             "coord_error": True})
    except Exception:  # noqa: BLE001 - the first error is the one to report
        log.exception("%s/%s: could not record the failure", turn.sweep_id, turn.todo_id)
        return None
    if outcome is not Outcome.done:
        return None
    return outcome, {"status": str(status), "reason": why}


def _execute(turn: Turn, worker: WorkerInfo) -> tuple[Outcome, dict[str, object], bool]:
    """Run the command under the turn's lease; returns the outcome, its detail, and
    whether the lease was released (by the finishing write)."""
    rt, t, sweep_id, todo_id = turn.rt, turn.todo, turn.sweep_id, turn.todo_id
    cwd = _checkout(t.path, t.repo, worker)
    env = dict(t.env)
    env.update(COORD_SWEEP_ID=sweep_id, COORD_TODO_ID=todo_id, COORD_REPO=t.repo)
    # `coord context` inside the todo: its plan's scope (--plan "$COORD_PLAN_ID"), and
    # the sweep's catalog, so an embedded sweep's todo finds the same server.
    env["COORD_PLAN_ID"] = turn.spec.plan
    if turn.spec.catalog and "COORD_ECOSYSTEM" not in os.environ:
        env.setdefault("COORD_ECOSYSTEM", turn.spec.catalog)
    # An ancestor's outputs that fail their seal (forged, copied): this todo fails
    # before it runs, naming the record; no value of it is handed on.
    refused_inputs: str | None = None
    try:
        env.update(inputs_env(_inputs(turn)))
    except InputsRefused as exc:
        refused_inputs = f"its inputs were refused, so it did not run: {exc}"
        log.warning("%s/%s: %s", sweep_id, todo_id, refused_inputs)
    fd, out_path = tempfile.mkstemp(prefix=f"coord-{todo_id}-", suffix=".out")
    os.close(fd)
    env["COORD_OUTPUT"] = out_path
    lost = threading.Event()
    hb = turn.heartbeat(on_lost=lost.set)
    # A change's todo runs in its branch's worktree, not the checkout (workers/changes.py).
    change = ChangeTurn.of(rt, t.change, t.repo, cwd, hb)
    if change is not None:
        cwd = change.cwd
        env.update(change.env_over(env))
    # The cancel check reads Redis; over a cut network that read can block for the
    # client's socket timeout, and should_stop must never wait on it (the lease
    # deadline below is what keeps two runs apart). So a watcher thread reads the
    # sweep's status twice a second and should_stop only looks at flags and the clock.
    cancelled, done = threading.Event(), threading.Event()

    def watch_cancel() -> None:
        while not done.wait(0.5):
            if turn.sweep_stopped():
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

    def should_stop() -> str | None:
        if not watching and time.monotonic() - began >= watch_after:
            hb.start()
            watching.append(threading.Thread(target=watch_cancel, name=f"cancel-watch:{todo_id}",
                                             daemon=True))
            watching[0].start()
        if lost.is_set() or hb.doomed():
            lost.set()  # from here on this run writes nothing
            return "lease lost"
        if cancelled.is_set():
            return "sweep cancelled"
        return None

    result: ExecResult | None = None
    reason: str | None = None
    failed_check: tuple[str, ExecResult] | None = None  # the acceptance check that failed
    total = 0.0
    # cache: a success with the same key is reused (workers/caching.py); never a change's
    # todo (its run commits to the change branch, which a reused run would not)
    cache = (TodoCache(turn, cwd, env, should_stop)
             if t.cache is not None and turn.spec.mode == "run" and change is None
             and refused_inputs is None else None)
    hit = None
    with _running_lock:
        _running.add(f"{sweep_id}/{todo_id}")
    # Everything from here on is inside the try: a heartbeat left running by an
    # exception would renew this lease forever and hold the todo 'running' for good.
    try:
        hit = cache.lookup() if cache is not None and Path(cwd).is_dir() else None
        for attempt in range(t.retries + 1 if hit is None else 0):
            os.truncate(out_path, 0)  # what an earlier attempt wrote is not this one's
            if refused_inputs is not None:
                result, reason = None, refused_inputs
                break
            if change is not None and change.error:
                result, reason = None, change.error
                break
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
            turn.retrying(delay, reason)
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and should_stop() is None:
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        if result is not None and result.ok and t.checks and turn.spec.mode == "run":
            failed_check = _accept(t, cwd, env, should_stop, rt.settings.output_tail_bytes)
    finally:
        done.set()
        hb.stop()
        with _running_lock:
            _running.discard(f"{sweep_id}/{todo_id}")
        outputs, refused = _read_outputs(out_path, result is not None and result.ok
                                         and turn.spec.mode == "run")
    if lost.is_set() or hb.lost or hb.doomed():
        outcome, detail = turn.lost("lease lost")
        return outcome, detail, False
    if cache is not None and hit is not None:
        outcome, released = turn.finish(TodoStatus.cached, *cache.hit_fields(hit))
        return outcome, {"status": str(TodoStatus.cached)}, released
    stopped = (result is not None and result.outcome == "stopped"
               and result.reason == "sweep cancelled")
    if stopped and turn.stopped_why:
        reason = turn.stopped_why  # an --atomic=stop sweep's first failure: say which
    ok = result is not None and result.ok and refused is None
    if refused is not None:
        reason = f"exit 0, but its results were refused: {refused}"
    check_tail = ""
    if failed_check is not None and ok:
        text, checked = failed_check
        ok = False
        reason = (f"acceptance check failed: {text!r} "
                  f"({checked.reason or f'exit {checked.exit_code}'})")
        check_tail = (f"\n--- acceptance check {text!r} ---\n"
                      + checked.output_tail(rt.settings.output_tail_bytes))
    if change is not None:
        ok, reason = change.leave(t.id, ok, reason, sweep=sweep_id, run=turn.spec.run,
                                  undo=turn.spec.mode != "run",
                                  exit_code=None if result is None else result.exit_code,
                                  output=None if result is None else result.output_tail(
                                      rt.settings.output_tail_bytes))
    status = outcome_status(turn.spec, ok, stopped)
    exit_code = None if result is None else result.exit_code
    duration = round(total, 3)
    why = None if status in SUCCESSFUL else reason
    fields: dict[str, object] = {
        "attempts": turn.attempts,
        "exit_code": exit_code,
        "finished_at": time.time(),
        "duration": duration,
        "reason": why,
        "output_tail": _tail(result, check_tail, rt.settings.output_tail_bytes),
        "stdout_bytes": 0 if result is None else result.stdout_bytes,
        "stderr_bytes": 0 if result is None else result.stderr_bytes,
    }
    if outputs and status in SUCCESSFUL:
        fields.update(outputs_fields(rt.settings.signing_keys, sweep_id, todo_id, outputs,
                                     run=turn.spec.run))
        turn.keep_outputs()
    event: dict[str, object] = {"worker": turn.host, "exit_code": exit_code,
                                "attempts": turn.attempts, "duration": duration, "reason": why}
    if outputs and status in SUCCESSFUL:
        event["outputs"] = sorted(outputs)
    if cache is not None:
        cache.finished(status, fields)  # a success stored before its outcome is recorded
    outcome, released = turn.finish(status, fields, event)
    if outcome is not Outcome.done:
        return outcome, {"reason": "stale fence"}, released
    return outcome, {"status": str(status), "exit_code": exit_code}, released


def _accept(t: TodoSpec, cwd: str, env: dict[str, str], should_stop: Callable[[], str | None],
            tail_bytes: int) -> tuple[str, ExecResult] | None:
    """Run the todo's acceptance checks (commands from the catalog, frozen in the
    signed spec) in its checkout with its environment, in order, after its run
    succeeded; the first that fails (with its result), or None when all pass."""
    for text, command in t.checks:
        checked = run_command(command, cwd=cwd, env=env, timeout=t.timeout,
                              tail_bytes=tail_bytes, should_stop=should_stop)
        if not checked.ok:
            return text, checked
    return None


def _inputs(turn: Turn) -> dict[str, dict[str, str]]:
    """What the todo gets from the todos before it; an undo gets what its own change
    wrote (the version it published, say), as ``COORD_IN_<ITSELF>_<KEY>``."""
    if turn.spec.mode == "rollback":
        kept = turn.rt.checkpoints.get_change_run(turn.sweep_id, turn.todo_id) or {}
        why = outputs_refusal(turn.rt.settings, turn.sweep_id, turn.todo_id, kept)
        if why is not None:
            raise InputsRefused(why)
        own = kept.get("outputs")
        return {turn.todo_id: dict(own)} if isinstance(own, dict) and own else {}
    return turn.inputs()


def _read_outputs(path: str, keep: bool) -> tuple[dict[str, str], str | None]:
    """The results a successful run wrote to ``$COORD_OUTPUT`` (removing the file), or
    why they are refused; nothing read unless ``keep``."""
    try:
        if not keep:
            return {}, None
        try:
            with open(path, "rb") as fh:
                data = fh.read(OUTPUT_CAP + 1)
                if len(data) > OUTPUT_CAP:  # never read all of it: name its size
                    return {}, too_big(os.fstat(fh.fileno()).st_size)
        except OSError as exc:
            return {}, f"cannot read $COORD_OUTPUT ({exc.strerror or exc})"
        try:
            return parse_outputs(data), None
        except OutputsRefused as exc:
            return {}, str(exc)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


def _tail(result: ExecResult | None, check_tail: str, limit: int) -> str:
    """The todo's output tail as its run left it (each stream's last ``limit`` characters
    under a label saying of how many bytes), and a failed acceptance check's after it:
    only then is the whole cut to its last ``limit`` characters (the run's label may go,
    the check's, which says why the todo failed, stays)."""
    tail = "" if result is None else result.output_tail(limit)
    if not check_tail:
        return tail
    return (tail + check_tail)[-max(1, limit):]
