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

import atexit
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING


from coordination.connection.client import UNREACHABLE
from coordination.processes import worker_identity
from coordination.retry import BACKOFF_BASE as BACKOFF_BASE  # re-exported
from coordination.retry import BACKOFF_MAX as BACKOFF_MAX
from coordination.retry import backoff_delay
from coordination.runtime.context import Runtime
from coordination.status import SUCCESSFUL, TodoStatus
from coordination.sweeps.runlogs.attempt_log import AttemptLog
from coordination.sweeps.runlogs.masking import Masker, secret_values
from coordination.sweeps.outputs import (
    OUTPUT_CAP,
    InputsRefused,
    OutputsRefused,
    inputs_env,
    outputs_fields,
    parse_outputs,
    too_big,
)
from coordination.sweeps.spec import Mode, TodoSpec
from coordination.sweeps.turns import Outcome as Outcome  # re-exported for the task
from coordination.sweeps.turns import Turn, coord_error, outcome_status, take_turn
from coordination.trust.runkeys import RunId
from coordination.trust.secrets import held_names, held_secret_values
from workers.caching import TodoCache
from workers.changes import ChangeTurn
from workers.context_proxy import PROXY
from workers.execute import ExecResult, run_command
from workers.pushes import PushTurn
from workers.results_file import ResultFiles, empty

if TYPE_CHECKING:
    from coordination.runtime.cache import Entry
    from coordination.runtime.leases import Heartbeat

log = logging.getLogger("coord.runner")

#: Seconds a command runs before its lease heartbeat and cancel watcher start (see
#: ``_Run.should_stop``; at most half the heartbeat interval, whose first renewal still comes
#: an interval after the grant).
WATCH_AFTER = 0.2

#: ``$COORD_OUTPUT`` of each run: this process's private directory, removed at its exit
#: (a forked worker's: when its worker stops, workers/worker.py, workers/embedded.py).
RESULTS = ResultFiles()
atexit.register(RESULTS.remove_all)


def leave_files() -> None:
    """What this process keeps in the temporary directory removed (its results directory,
    its context service's socket), for a worker process that ends by ``os._exit``: a
    forked one, where no exit handler runs."""
    RESULTS.remove_all()
    PROXY.leave()

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
            rt.metrics.count_chained([nxt[1]])  # dispatched, with no message sent
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
        outcome, detail, released = _run_turn(got, worker)
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


@dataclass
class _Run:
    """One run of a turn's command: where and with what environment it runs, the file
    its results go to, the lease's heartbeat, and the flags its watchers set."""

    turn: Turn
    cwd: str
    env: dict[str, str]
    out_path: str
    hb: Heartbeat
    lost: threading.Event
    change: ChangeTurn | None
    refused_inputs: str | None
    context_token: str
    #: ``mask_env:``'s values, masked in all its run leaves (sweeps/runlogs/masking.py)
    masker: Masker = field(default_factory=Masker)
    #: a push's todo of the pushed repo: its worktree at the pushed commit (workers/pushes.py)
    push: PushTurn | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    #: the last attempt's log, its end held for the finish's round trip (:meth:`end_log`)
    log_end: AttemptLog | None = None
    watching: list[threading.Thread] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)

    def _watch_cancel(self) -> None:
        # The cancel check reads Redis; over a cut network that read can block for the
        # client's socket timeout, and should_stop must never wait on it (the lease
        # deadline is what keeps two runs apart). So this watcher thread reads the
        # sweep's status twice a second and should_stop only looks at flags and the clock.
        while not self.done.wait(0.5):
            if self.turn.sweep_stopped():
                self.cancelled.set()
                return

    def should_stop(self) -> str | None:
        """Why the command must stop now (None: go on). The heartbeat and the cancel
        watcher start once the command has run for WATCH_AFTER s: a renewal is due only
        after heartbeat_interval (a third of the lease's TTL) and a cancel is looked for
        every 0.5 s, so a command that ends sooner needs neither (two threads' start and
        stop are a quarter of an embedded todo's own cost). The lease's deadline
        (doomed) counts from its grant whether or not the heartbeat has started."""
        watch_after = min(WATCH_AFTER, self.turn.rt.settings.heartbeat_interval / 2)
        if not self.watching and time.monotonic() - self.began >= watch_after:
            self.hb.start()
            self.watching.append(threading.Thread(
                target=self._watch_cancel, name=f"cancel-watch:{self.turn.todo_id}",
                daemon=True))
            self.watching[0].start()
        if self.lost.is_set() or self.hb.doomed():
            self.lost.set()  # from here on this run writes nothing
            return "lease lost"
        if self.cancelled.is_set():
            return "sweep cancelled"
        return None

    def lease_lost(self) -> bool:
        return self.lost.is_set() or self.hb.lost or self.hb.doomed()

    def end_log(self) -> None:
        """The last attempt's log end, written alone if the finish did not take it."""
        if self.log_end is not None:
            self.log_end.end()


@dataclass
class _Ran:
    """What a run left: the command's last result (None: it never ran) and why it
    failed, its attempts' time, a failed acceptance check, a reused cache entry, and
    the results it wrote (or why they are refused)."""

    result: ExecResult | None
    reason: str | None
    total: float
    failed_check: tuple[str, ExecResult] | None
    hit: Entry | None
    outputs: dict[str, str]
    refused: str | None


def _run_turn(turn: Turn, worker: WorkerInfo) -> tuple[Outcome, dict[str, object], bool]:
    """Run the command under the turn's lease; returns the outcome, its detail, and
    whether the lease was released (by the finishing write)."""
    run = _prepare(turn, worker)
    # cache: a success with the same key is reused (workers/caching.py); never a change's
    # todo (its run commits to the change branch, which a reused run would not)
    cache = (TodoCache(turn, run.cwd, run.env, run.should_stop)
             if turn.todo.cache is not None and turn.spec.mode == Mode.run and run.change is None
             and run.refused_inputs is None else None)
    ran = _run_watched(run, cache)
    try:
        if run.lease_lost():
            run.end_log()
            outcome, detail = turn.lost("lease lost")
            return outcome, detail, False
        if cache is not None and ran.hit is not None:
            outcome, released = turn.finish(TodoStatus.cached, *cache.hit_fields(ran.hit))
            return outcome, {"status": str(TodoStatus.cached)}, released
        return _record(run, ran, cache)
    finally:
        run.end_log()  # whatever happened, the attempt's log has its end
        if run.push is not None:
            run.push.leave()  # the pushed commit's worktree goes, whatever happened


def _prepare(turn: Turn, worker: WorkerInfo) -> _Run:
    """Where and with what the command runs: its checkout (a change's todo: its
    branch's worktree, workers/changes.py), the todo's environment with its inputs, a
    file for its results, and the lease's heartbeat (started once it runs long)."""
    t = turn.todo
    cwd = _checkout(t.path, t.repo, worker)
    env = dict(t.env)
    env.update(COORD_SWEEP_ID=turn.sweep_id, COORD_TODO_ID=turn.todo_id, COORD_REPO=t.repo)
    # `coord context` inside the todo: its plan's scope (--plan "$COORD_PLAN_ID"), and
    # the sweep's catalog, so an embedded sweep's todo finds the same server.
    env["COORD_PLAN_ID"] = turn.spec.plan
    if turn.spec.catalog and "COORD_ECOSYSTEM" not in os.environ:
        env.setdefault("COORD_ECOSYSTEM", turn.spec.catalog)
    # An ancestor's outputs that fail their seal (forged, copied): this todo fails
    # before it runs, naming the record; no value of it is handed on.
    refused_inputs: str | None = None
    try:
        env.update(inputs_env(turn.inputs()))
    except InputsRefused as exc:
        refused_inputs = f"its inputs were refused, so it did not run: {exc}"
        log.warning("%s/%s: %s", turn.sweep_id, turn.todo_id, refused_inputs)
    out_path = RESULTS.new(turn.todo_id)
    env["COORD_OUTPUT"] = out_path
    # `coord context` inside the todo: through this worker, proving its run with a key
    # derived for it (the todo holds no signing key): workers/context_proxy.py
    context_token, context_env = PROXY.serve(turn.rt, RunId(
        turn.sweep_id, turn.todo_id, turn.spec.run, str(turn.spec.plan or "")))
    env.update(context_env)
    lost = threading.Event()
    hb = turn.heartbeat(on_lost=lost.set)
    change = ChangeTurn.of(turn.rt, t.change, t.repo, cwd, hb)
    if change is not None:
        cwd = change.cwd
        env.update(change.env_over(env))
    masker = _masker(turn.rt, secret_values(t.mask_env, env) if t.mask_env else ())
    push = _push(turn, t, cwd, hb)
    if push is not None:
        cwd = push.cwd
        env.update(push.env)
    return _Run(turn, cwd, env, out_path, hb, lost, change, refused_inputs, context_token,
                masker, push=push)


def _push(turn: Turn, t: TodoSpec, checkout: str, hb: Heartbeat) -> PushTurn | None:
    """A push's todo of the pushed repo: its worktree at the pushed commit (a fetch,
    maybe: the lease renewed once after it, as a change's first worktree is)."""
    push = PushTurn.of(turn.spec, t, checkout, turn.rt.own_catalog)
    if push is not None and push.wt is not None:
        hb.renew_now()
    return push


def _masker(rt: Runtime, own: tuple[str, ...]) -> Masker:
    """What masks a todo's run: the values of its ``mask_env:`` (``own``) and of every
    secret this process holds (the signing keys, a Redis password, every variable the
    catalog names as a secret: :func:`~coordination.trust.secrets.held_secret_values`),
    which no todo is given but a todo may find elsewhere."""
    names, keys = held_names(), tuple(rt.settings.signing_keys)
    if not own:
        return _held_masker(names, keys)
    return Masker((*own, *_held_values(names, keys)))


@functools.lru_cache(maxsize=4)
def _held_values(_names: frozenset[str], keys: tuple[str, ...]) -> tuple[str, ...]:
    # (per held names and keys: the environment is the process's, read once)
    return held_secret_values(extra=keys)


@functools.lru_cache(maxsize=4)
def _held_masker(names: frozenset[str], keys: tuple[str, ...]) -> Masker:
    return Masker(_held_values(names, keys))


def _run_watched(run: _Run, cache: TodoCache | None) -> _Ran:
    """The command run (or a cached success reused), then its acceptance checks,
    listed among this process's running todos; its watchers stopped and its results
    read whatever happens."""
    turn, t = run.turn, run.turn.todo
    name = f"{turn.sweep_id}/{turn.todo_id}"
    result: ExecResult | None = None
    reason: str | None = None
    failed_check: tuple[str, ExecResult] | None = None  # the acceptance check that failed
    total = 0.0
    hit: Entry | None = None
    with _running_lock:
        _running.add(name)
    # Everything from here on is inside the try: a heartbeat left running by an
    # exception would renew this lease forever and hold the todo 'running' for good.
    try:
        hit = cache.lookup() if cache is not None and Path(run.cwd).is_dir() else None
        if hit is None:
            result, reason, total = _execute(run)
        if result is not None and result.ok and t.checks and turn.spec.mode == Mode.run:
            failed_check = _accept(t, run.cwd, run.env, run.should_stop,
                                   turn.rt.settings.output_tail_bytes)
    finally:
        run.done.set()
        run.hb.stop()
        PROXY.forget(run.context_token)
        with _running_lock:
            _running.discard(name)
        outputs, refused = _read_outputs(run.out_path, result is not None and result.ok
                                         and turn.spec.mode == Mode.run)
        outputs = {k: run.masker.text(v) for k, v in outputs.items()}
    return _Ran(result, reason, total, failed_check, hit, outputs, refused)


def _execute(run: _Run) -> tuple[ExecResult | None, str | None, float]:
    """The command run up to its retries + 1 times, with a backoff between attempts:
    its last result (None: it could not run), why it failed, and the attempts' time."""
    turn, t = run.turn, run.turn.todo
    result: ExecResult | None = None
    reason: str | None = None
    total = 0.0
    for attempt in range(t.retries + 1):
        if attempt:
            empty(run.out_path)  # what an earlier attempt wrote is not this one's
        blocked = _cannot_run(run)
        if blocked is not None:
            return None, blocked, total
        # Its whole output into its log as it runs, masked and batched (`coord logs`)
        output = AttemptLog(turn.rt.logs(), turn.sweep_id, turn.todo_id, turn.attempts,
                            run=turn.spec.run, worker=turn.host, masker=run.masker,
                            cap=turn.rt.settings.log_max_bytes)
        result = None
        try:
            result = run_command(
                t.run, cwd=run.cwd, env=run.env, timeout=t.timeout,
                tail_bytes=turn.rt.settings.output_tail_bytes,
                should_stop=output.watching(run.should_stop), on_output=output.add,
            )
        finally:
            # The last attempt's end goes with the todo's finish, in its round trip, when
            # nothing else runs in between (an acceptance check, a change's commit).
            defer = (result is not None and _final(result, attempt, t.retries)
                     and run.change is None
                     and not (result.ok and t.checks and turn.spec.mode == Mode.run))
            output.close(*(("error", None) if result is None
                           else (result.outcome, result.exit_code)), defer=defer)
            if defer:
                run.log_end = output
        total += result.duration
        reason = result.reason or (None if result.ok else f"exit {result.exit_code}")
        if _final(result, attempt, t.retries):
            break
        delay = backoff_delay(attempt + 1)
        turn.retrying(delay, reason)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and run.should_stop() is None:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
    return result, reason, total


def _final(result: ExecResult, attempt: int, retries: int) -> bool:
    """Whether this attempt is the last: it succeeded, was stopped or could not run, or
    no retry is left."""
    return result.ok or result.outcome in ("stopped", "error") or attempt == retries


def _cannot_run(run: _Run) -> str | None:
    """Why the command cannot run at all: its inputs refused, its change's worktree not
    ready, or no checkout (None: it can)."""
    if run.refused_inputs is not None:
        return run.refused_inputs
    if run.change is not None and run.change.error:
        return run.change.error
    if run.push is not None and run.push.error:
        return run.push.error
    if not os.path.isdir(run.cwd):
        # Said of every run (`coord run`, a sweep, embedded or not): only a worker has
        # --path, so the hint names the command it belongs to.
        repo = run.turn.todo.repo
        return (f"checkout {run.cwd} does not exist (clone {repo} there, or set its path: "
                f"in the catalog; a worker started with `coord worker --path {repo}=DIR` "
                "runs its todos in DIR)")
    return None


def _status(run: _Run, ran: _Ran) -> tuple[TodoStatus, str | None, str]:
    """The status the run ends with, why (when it did not succeed), and the output of
    an acceptance check that failed (to follow the run's own)."""
    turn, result, reason = run.turn, ran.result, ran.reason
    tail_bytes = turn.rt.settings.output_tail_bytes
    stopped = (result is not None and result.outcome == "stopped"
               and result.reason == "sweep cancelled")
    if stopped and turn.stopped_why:
        reason = turn.stopped_why  # an --atomic=stop sweep's first failure: say which
    ok = result is not None and result.ok and ran.refused is None
    if ran.refused is not None:
        reason = f"exit 0, but its results were refused: {ran.refused}"
    check_tail = ""
    if ran.failed_check is not None and ok:
        text, checked = ran.failed_check
        ok = False
        reason = (f"acceptance check failed: {text!r} "
                  f"({checked.reason or f'exit {checked.exit_code}'})")
        check_tail = f"\n--- acceptance check {text!r} ---\n" + checked.output_tail(tail_bytes)
    if run.change is not None:
        ok, reason = run.change.leave(
            turn.todo_id, ok, reason, sweep=turn.sweep_id, run=turn.spec.run,
            undo=turn.spec.mode != Mode.run,
            exit_code=None if result is None else result.exit_code,
            output=None if result is None else run.masker.tail_text(result.output_tail(tail_bytes)))
    return outcome_status(turn.spec, ok, stopped), reason, check_tail


def _record(run: _Run, ran: _Ran, cache: TodoCache | None
            ) -> tuple[Outcome, dict[str, object], bool]:
    """Record how the run ended (its results kept with a success; a success stored in
    the cache first): the outcome, its detail, and whether the lease was released."""
    turn, result = run.turn, ran.result
    status, reason, check_tail = _status(run, ran)
    exit_code = None if result is None else result.exit_code
    duration = round(ran.total, 3)
    why = None if status in SUCCESSFUL or reason is None else run.masker.text(reason)
    fields: dict[str, object] = {
        "attempts": turn.attempts,
        "exit_code": exit_code,
        "finished_at": time.time(),
        "duration": duration,
        "reason": why,
        "output_tail": run.masker.tail_text(
            _tail(result, check_tail, turn.rt.settings.output_tail_bytes)),
        "stdout_bytes": 0 if result is None else result.stdout_bytes,
        "stderr_bytes": 0 if result is None else result.stderr_bytes,
    }
    keep = bool(ran.outputs) and status in SUCCESSFUL
    if keep:
        fields.update(outputs_fields(turn.rt.settings.signing_keys, turn.sweep_id,
                                     turn.todo_id, ran.outputs, run=turn.spec.run))
        turn.keep_outputs()
    event: dict[str, object] = {"worker": turn.host, "exit_code": exit_code,
                                "attempts": turn.attempts, "duration": duration, "reason": why}
    if keep:
        event["outputs"] = sorted(ran.outputs)
    if cache is not None:
        cache.finished(status, fields)  # a success stored before its outcome is recorded
    log_end = None if run.log_end is None else run.log_end.queue_end
    outcome, released = turn.finish(status, fields, event, before=log_end)
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


def _read_outputs(path: str, keep: bool) -> tuple[dict[str, str], str | None]:
    """The results a successful run wrote to ``$COORD_OUTPUT`` (the file then removed,
    or kept for the thread's next run when it is empty: :meth:`ResultFiles.done`), or why
    they are refused; nothing read unless ``keep``."""
    empty = False
    try:
        try:
            empty = os.stat(path, follow_symlinks=False).st_size == 0
        except OSError:
            pass
        if not keep:
            return {}, None
        try:
            if empty:
                return {}, None  # what most todos write: no open, no read
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
        RESULTS.done(path, empty=empty)


def _tail(result: ExecResult | None, check_tail: str, limit: int) -> str:
    """The todo's output tail as its run left it (each stream's last ``limit`` characters
    under a label saying of how many bytes), and a failed acceptance check's after it:
    only then is the whole cut to its last ``limit`` characters (the run's label may go,
    the check's, which says why the todo failed, stays)."""
    tail = "" if result is None else result.output_tail(limit)
    if not check_tail:
        return tail
    return (tail + check_tail)[-max(1, limit):]
