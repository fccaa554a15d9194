"""A worker's turn at one todo: a lease to run it (or why not), then its outcome recorded.

What a worker asks of the sweep around running one todo's command, each answer
safe under duplicate delivery:

1. The sweep is gone, over or paused, or the todo is not part of it: nothing to do.
2. The todo is terminal in its checkpoint: a duplicate; nothing to do.
3. A predecessor did not succeed: it is recorded ``skipped``. A predecessor not
   yet done: a premature delivery, dropped (the todo is sent again when ready).
4. A lease of one of the repo's ``concurrency`` slots (and of its resources'),
   with the checkpoint claimed, in one script call (``Transitions.start``);
   ``busy`` (a live holder runs it) or ``stale``: another delivery owns it.
   No free slot: wait in line until a finishing holder wakes it.
5. The command runs (the worker's part: :mod:`workers.runner`).
6. The outcome is recorded with a fenced write that also releases the lease
   (``Transitions.finish``), then the progression carries the sweep on.

Nothing here calls back into the worker: the worker calls :func:`take_turn`, runs
the command, and calls :meth:`Turn.finish`.
"""

from __future__ import annotations

import logging
import math
import random
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import redis

from coordination.connection.client import UNREACHABLE, riding_out
from coordination.retry import backoff_cap
from coordination.runtime.context import Runtime
from coordination.runtime.leases import Heartbeat, Lease
from coordination.runtime.sweep_fields import SweepRecord
from coordination.runtime.transitions import Started, StartVerdict, start_token, waiter_rank
from coordination.status import (
    SUCCESSFUL,
    SWEEP_ACTIVE,
    SWEEP_LIVE,
    EventKind,
    TodoStatus,
)
from coordination.sweeps.governance import decisions
from coordination.sweeps.governance.approvals import refuse_gates
from coordination.sweeps.lost import poisoned
from coordination.sweeps.outputs import gather_inputs, undo_inputs
from coordination.sweeps.progress import (
    Pass,
    after_script,
    end_refused,
    end_sweep,
    finish_run,
    progress,
    resend,
    start_run,
)
from coordination.sweeps.sending import send_paced
from coordination.sweeps.spec import Atomic, Mode, SweepSpec, TodoSpec
from coordination.sweeps.spec_store import (
    cached_checked,
    level_index,
    load_checked,
    sweep_head,
)

log = logging.getLogger("coord.runner")


#: Seconds after which a waiter that stopped asking (its worker died) loses its
#: place in line; a live waiter asks at least every second.
WAITER_STALE = 5.0


class Outcome(str, Enum):
    """How a delivery of a todo's message ended (the Celery task maps it)."""

    done = "done"  # ran (or was skipped) and recorded
    duplicate = "duplicate"  # already terminal or owned by another delivery
    premature = "premature"  # predecessors not done yet
    lost = "lost"  # lease lost while running; the supervisor re-sends it
    gone = "gone"  # sweep unknown or no longer active
    held = "held"  # its repo's breaker is open: the supervisor sends it again later
    paced = "paced"  # no pace token yet: sent again for when one is due
    unconfirmed = "unconfirmed"  # no replica confirmed its start: given back, sent again


#: A delivery that ends without running: how, and what to say about it.
Refusal = tuple[Outcome, dict[str, object]]


@dataclass
class Delivery:
    """A delivery of a todo's message with the facts of its turn, computed once when the
    delivery is made and handed down: the checked spec it runs by, who asks, the todo's
    level in that run, and the owner token of its start (a fresh one per delivery, the
    same on every ask of it)."""

    rt: Runtime
    spec: SweepSpec
    todo_id: str
    host: str
    level: int = field(init=False)
    token: str = field(init=False)

    def __post_init__(self) -> None:
        self.level = level_index(self.spec, self.todo_id)
        self.token = start_token(self.rt.keys, self.spec.sweep_id, self.todo_id)

    @property
    def todo(self) -> TodoSpec:
        return self.spec.todos[self.todo_id]

    @property
    def sweep_id(self) -> str:
        return self.spec.sweep_id


@dataclass
class Turn:
    """A delivery that holds the lease to run its todo."""

    rt: Runtime
    spec: SweepSpec
    todo_id: str
    lease: Lease
    attempts: int
    host: str
    #: the todo's level in this run (its delivery's: :attr:`Delivery.level`)
    level: int
    #: how many of the sweep's todos kept results when it started (0: no inputs)
    outputs: int = 0
    todo: TodoSpec = field(init=False)
    #: why :meth:`sweep_stopped` said stop, when it is not a plain cancel
    stopped_why: str | None = field(init=False, default=None)
    #: `--merge-chains`: the next todo of its chain, queued by this turn's finish and
    #: not sent: the worker runs it next, in the same task
    next_inline: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.todo = self.spec.todos[self.todo_id]

    @property
    def sweep_id(self) -> str:
        return self.spec.sweep_id

    def heartbeat(self, on_lost: Callable[[], None]) -> Heartbeat:
        """The lease's renewal (started by the caller when the command runs long)."""
        return Heartbeat(self.rt.leases, self.lease, self.rt.settings.heartbeat_interval,
                         on_lost=on_lost)

    def sweep_stopped(self) -> bool:
        """Ended (cancelled, failed by its deadline, gone), or an ``--atomic=stop``
        sweep stopped by its first failure (:class:`~coordination.sweeps.progress.AtomicStop`):
        kill a running command. A paused sweep lets running todos finish; Redis away
        is not a reason to stop (the lease heartbeat decides whether this worker may go on)."""
        spec = self.spec
        try:
            if spec.atomic == Atomic.stop and spec.mode == Mode.run:
                rec = self.rt.checkpoints.get_sweep_fields(self.sweep_id,
                                                           ("stopped_run", "stopped_by"))
                if rec is not None and rec.get("stopped_run") == spec.run:
                    self.stopped_why = f"atomic sweep stopped: {rec.get('stopped_by')}"
                    return True
                status = None if rec is None else rec.get("status")
            else:
                status = self.rt.checkpoints.sweep_status(self.sweep_id)
        except redis.RedisError as exc:
            log.warning("%s/%s: cannot read the sweep (%s); going on", self.sweep_id,
                        self.todo_id, exc)
            return False
        return status not in SWEEP_LIVE

    def inputs(self) -> dict[str, dict[str, str]]:
        """What the todo gets (todo -> key -> value): the results of the todos before
        it (:func:`~coordination.sweeps.outputs.gather_inputs`); an undo gets what its
        own change wrote (:func:`~coordination.sweeps.outputs.undo_inputs`)."""
        if self.spec.mode == Mode.rollback:
            return undo_inputs(self.rt, self.sweep_id, self.todo_id)
        return gather_inputs(self.rt, self.spec, self.todo_id, read=self.outputs > 0)

    def keep_outputs(self) -> None:
        """It is about to finish with results: count them first (see
        :meth:`~coordination.runtime.checkpoints.CheckpointStore.count_outputs`)."""
        riding_out(lambda: self.rt.checkpoints.count_outputs(self.sweep_id),
                   time.monotonic() + self.rt.settings.lease_ttl)

    def retrying(self, delay: float, reason: str | None) -> None:
        """Another attempt follows after ``delay`` s: say so, count it (fenced)."""
        self.attempts += 1
        self.rt.events.emit(EventKind.todo_retrying, sweep_id=self.sweep_id,
                            todo_id=self.todo_id, attempt=self.attempts,
                            delay=round(delay, 2), reason=reason)
        self.rt.checkpoints.write(self.sweep_id, self.todo_id, {"attempts": self.attempts},
                                  lease=self.lease)

    def lost(self, why: str) -> Refusal:
        """The lease was lost while running: write nothing; the event is best effort
        (Redis may be the reason it was lost)."""
        try:
            self.rt.events.emit(EventKind.todo_lost, sweep_id=self.sweep_id,
                                todo_id=self.todo_id, worker=self.host, reason=why)
        except redis.RedisError as exc:
            log.warning("%s/%s: %s; event not recorded (%s)", self.sweep_id, self.todo_id,
                        why, exc)
        return Outcome.lost, {"reason": why}

    def finish(self, status: TodoStatus, fields: dict[str, object],
               event: dict[str, object], *, before: Callable[[Any], None] | None = None
               ) -> tuple[Outcome, bool]:
        """Record the outcome (fenced; releases the lease) and carry the sweep on.
        ``before``: writes sent ahead of it in its round trip (the attempt's log end).
        Returns the outcome and whether the lease was released."""
        # Redis may be restarting right now: the outcome is worth waiting for as long
        # as our lease could still be alive (the fenced write refuses it after). One
        # round trip: sealed outcome, lease released, counters, event, eager successors.
        nxt = self.spec.chains.get(self.todo_id)
        fin = finish_run(self.rt, self.spec, self.todo_id, lease=self.lease, status=status,
                         fields=fields, event=event, level=self.level,
                         patience=time.monotonic() + self.rt.settings.lease_ttl, inline=nxt,
                         before=before)
        if not fin.ok:
            # Our fence is stale: someone else owns the todo now. Say so, write nothing.
            self.lost("stale fence")
            return Outcome.lost, False
        if nxt is not None and nxt in fin.queued and status in SUCCESSFUL:
            # a merged chain: its next todo goes to no queue; this worker runs it next
            # (should it die first, the todo, queued without a message, is sent again)
            self.next_inline = nxt
        return Outcome.done, True

    def release(self) -> None:
        """Give the lease back without recording anything (it expires on its own
        within the TTL should this fail)."""
        try:
            self.rt.leases.release(self.lease)
        except redis.RedisError as exc:
            log.warning("could not release %s: %s", self.lease.key, exc)


def outcome_status(spec: SweepSpec, ok: bool, cancelled: bool) -> TodoStatus:
    """The status a run ends with: a rollback's runs compensate."""
    if cancelled:
        return TodoStatus.cancelled
    if spec.mode == Mode.rollback:
        return TodoStatus.compensated if ok else TodoStatus.compensation_failed
    return TodoStatus.succeeded if ok else TodoStatus.failed


def take_turn(rt: Runtime, sweep_id: str, todo_id: str, run: int | None,
              host: str) -> Turn | Refusal:
    """Ask to run ``todo_id`` (its message was sent for ``run``; None: a message of
    before 0.2, read the sweep's): a :class:`Turn` holding its lease, or how this
    delivery ends without running.

    Redis out of reach (:data:`~coordination.connection.client.UNREACHABLE`) raises: the
    todo is sent again. Any other exception once the spec is read (a bug in coord, a
    script's error, OOM, NOPERM) ends the todo ``failed`` naming it (:func:`_fault`),
    even when it came after the start script recorded the start: never a lease left to
    expire, counted as a lost run as if its worker had died."""
    while True:
        spec, head, why, refused = _current(rt, sweep_id, todo_id, run)
        if refused is not None:
            return _refuse(rt, sweep_id, spec, todo_id, refused, host)
        if spec is None:
            return Outcome.gone, {"reason": why}
        if spec.todos[todo_id].gate:
            # A gate waits for people, never for a worker: no message is sent for one,
            # and a stray one (hand-made, or of a spec that had no gate) runs nothing.
            return Outcome.duplicate, {"reason": f"{todo_id} is a gate: people decide it"}
        d = Delivery(rt, spec, todo_id, host)
        try:
            st = _start(d, head)
        except UNREACHABLE:
            raise
        except Exception as exc:
            return _fault(d, exc)
        if isinstance(st, Started) and st.verdict == StartVerdict.run:
            # The sweep moved on (a resume or rollback) since this message was sent:
            # go by the spec of the run it is at now, as a message of that run would
            # (the script has taken this delivery out of any line it stood in).
            if run is None:
                return Outcome.gone, {"reason": f"sweep moved on to run {st.detail}"}
            run = None
            continue
        break
    if not isinstance(st, Started):
        return st
    try:
        return _answer(d, st)
    except UNREACHABLE:
        raise
    except Exception as exc:
        return _fault(d, exc)


def _answer(d: Delivery, st: Started) -> Turn | Refusal:
    """What the start script's verdict means for this delivery."""
    rt, spec, t = d.rt, d.spec, d.todo
    if st.verdict == StartVerdict.started:
        assert st.lease is not None, st
        if st.taken_over:  # the script found its last holder's lease gone: a lost run
            rt.metrics.count_lost(t.repo)
        turn = Turn(d.rt, spec, d.todo_id, st.lease, st.attempts, d.host, d.level,
                    outputs=st.outputs)
        # Checked holding the lease, after the start saw them passed: the script read
        # plain statuses; the gates' decisions and the outcomes' seals may say otherwise.
        refused = decisions.turn_refusals(rt, spec, d.todo_id)
        if refused.gates:
            return _after_refused_gate(turn, refused.gates)
        if refused.outcomes:
            return _after_refused_outcome(turn, refused.outcomes)
        return turn
    if st.verdict == StartVerdict.gone:
        return Outcome.gone, {"reason": f"sweep is {st.detail}"}
    if st.verdict == StartVerdict.held:
        return Outcome.held, {"reason": f"the breaker of {t.repo} is open"}
    if st.verdict == StartVerdict.paced:
        # Queued still, holding nothing: its message comes back when the token is due.
        due = float(st.detail)
        send_paced(rt, spec, d.todo_id, due)
        return Outcome.paced, {"until": due}
    if st.verdict == StartVerdict.unconfirmed:
        # No replica confirmed its start while a lease lives: given back, never run.
        if st.given_back:
            resend(rt, spec, [d.todo_id])
        return Outcome.unconfirmed, {"reason": st.detail}
    if st.verdict == StartVerdict.terminal:
        return Outcome.duplicate, {"status": st.detail}
    if st.verdict in (StartVerdict.busy, StartVerdict.stale):
        return Outcome.duplicate, {"claim": str(st.verdict)}
    if st.verdict == StartVerdict.premature:
        return Outcome.premature, {"waiting_for": sorted(st.waiting)}
    if st.verdict == StartVerdict.skipped:
        return _skipped(d, st)
    # poisoned: its earlier holder was the max_lost_runs-th to die running it.
    rt.metrics.count_lost(t.repo)
    poisoned(rt, spec, d.todo_id, level_done=st.level_done, terminal=st.terminal,
             level=d.level)
    return Outcome.done, {"status": str(TodoStatus.failed), "reason": "poison"}


def _skipped(d: Delivery, st: Started) -> Refusal:
    """A predecessor did not succeed: the script recorded the todo ``skipped``, sealed
    (:func:`~coordination.sweeps.progress.start_run`); carry the sweep on."""
    after_script(d.rt, d.spec, d.todo_id, TodoStatus.skipped, level=d.level,
                 level_done=st.level_done, terminal=st.terminal)
    return Outcome.done, {"status": str(TodoStatus.skipped)}


def _after_refused_gate(turn: Turn, refused: dict[str, str]) -> Refusal:
    """A todo after a gate whose decision failed its check: it ends ``failed`` unrun,
    saying which record and why, the gate ``failed``, the sweep ``failed``."""
    done = _failed_unrun(turn, f"not run: {sorted(refused.items())[0][1]}")
    refuse_gates(turn.rt, turn.spec, refused, by=f"worker {turn.host}, at {turn.todo_id}")
    return done


def _after_refused_outcome(turn: Turn, refused: dict[str, str]) -> Refusal:
    """A todo whose predecessor reads ended well on an outcome that fails its seal: it
    ends ``failed`` unrun, naming the record and why (``todo.failed``, ``refused:
    true``); what comes after it is skipped, so the sweep cannot end ``succeeded``."""
    return _failed_unrun(turn, "not run: a predecessor's outcome was refused: "
                         + sorted(refused.items())[0][1])


def _failed_unrun(turn: Turn, why: str) -> Refusal:
    """The todo ends ``failed`` without running, ``why`` its reason (``todo.failed``,
    ``refused: true``)."""
    log.error("%s/%s %s", turn.sweep_id, turn.todo_id, why)
    turn.finish(TodoStatus.failed, {"attempts": turn.attempts, "exit_code": None,
                                    "finished_at": time.time(), "reason": why},
                {"worker": turn.host, "reason": why, "refused": True})
    return Outcome.done, {"status": str(TodoStatus.failed), "reason": why}


#: The folders of coord's own code: where :func:`coord_error` says an error was raised.
_OWN = tuple(str(Path(__file__).resolve().parents[2] / d) + "/" for d in ("coordination",
                                                                           "workers"))


def coord_error(exc: BaseException) -> str:
    """How a todo's reason names an exception raised in coord's own code (not by its
    command): "coord error: ResponseError: OOM command not allowed ... in
    coordination/sweeps/turns.py:123 (finish)", the place being the last frame of
    coord's own in its traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f.filename.startswith(_OWN)]
    where = ""
    if ours or frames:
        f = (ours or frames)[-1]
        name = f.filename
        for root in _OWN:
            if name.startswith(root):
                name = Path(root).name + "/" + name[len(root):]
        where = f" in {name}:{f.lineno} ({f.name})"
    text = str(exc).strip() or "(no message)"
    return f"coord error: {type(exc).__name__}: {text}{where}"


def _fault(d: Delivery, exc: Exception) -> Refusal:
    """coord's own code raised while a delivery asked for its turn (the exception is
    not Redis out of reach): the todo ends ``failed`` naming the error. A start the
    script recorded under the delivery's token is given back first (its slots freed,
    no lost run counted: nothing ran), so the todo is never left ``running`` for its
    lease to expire and be counted lost. A todo another delivery runs (or ended) is
    left alone; when nothing could be recorded (Redis refuses the writes too), the
    error stands."""
    rt, spec, todo_id = d.rt, d.spec, d.todo_id
    why = coord_error(exc)
    log.error("%s/%s: %s", spec.sweep_id, todo_id, why, exc_info=exc)
    status = outcome_status(spec, ok=False, cancelled=False)  # (an undo: compensation_failed)
    p = Pass(rt, spec)
    try:
        rt.transitions.unstart(spec.sweep_id, todo_id, token=d.token, why=why)
        ended = p.end([todo_id], status, frozenset({TodoStatus.queued, TodoStatus.held}),
                      event={"reason": why, "worker": d.host, "coord_error": True},
                      cascade=False)
    except Exception:  # noqa: BLE001 - the first error is the one to report
        log.exception("%s/%s: could not record the failure", spec.sweep_id, todo_id)
        raise exc from None
    if todo_id not in ended:
        raise exc
    progress(rt, spec, p.work)
    return Outcome.done, {"status": str(status), "reason": why}


def _current(rt: Runtime, sweep_id: str, todo_id: str, run: int | None
             ) -> tuple[SweepSpec | None, SweepRecord | None, str, str | None]:
    """The spec to run ``todo_id`` by, and the sweep's head if it was read; else why not;
    and why the spec must not run at all (its signature: a refusal ends the sweep).

    A message names its run: with that run's spec checked in this process, nothing is
    read (the start script checks the sweep is still at that run and dispatching).
    The verdict always comes with the spec it was computed on (one read of both)."""
    checked = cached_checked(rt, sweep_id, run) if type(run) is int else None
    if checked is None:
        head = sweep_head(rt, sweep_id)
        if head is None:
            return None, None, f"unknown sweep {sweep_id}", None
        checked = load_checked(rt, sweep_id, head)
        if checked is not None and head.get("status") not in SWEEP_ACTIVE:
            # Paused: the todo stays queued and is sent again on unpause.
            return None, head, f"sweep is {head.get('status')}", None
    else:
        head = None
    if checked is None:
        return None, head, f"{todo_id} is not part of sweep {sweep_id}", None
    spec = checked.spec
    if checked.refusal is not None:  # before anything the spec says (which todos it has)
        return spec, head, "", checked.refusal
    if spec is None or todo_id not in spec.todos:
        return None, head, f"{todo_id} is not part of sweep {sweep_id}", None
    return spec, head, "", None


def _start(d: Delivery, head: SweepRecord | None) -> Started | Refusal:
    """The start script's answer, asked again while it says ``wait`` (no free slot):
    each ask sees a pause or cancel at once, and keeps the todo's place in line
    (every ask goes with the delivery's token)."""
    rt, spec, todo_id, t = d.rt, d.spec, d.todo_id, d.todo
    # Its place in line if the repo's or a resource's slots are all taken: the spec's
    # rank (priority, remaining critical path), then how long it has waited.
    rank = waiter_rank(t.rank, time.time(), spec.sweep_id, todo_id)
    breaker = spec.breaker_of_run(t.repo)
    # A half-open breaker's probe that never reports back frees the way after this.
    probe_for = t.timeout * (t.retries + 1) + backoff_cap(t.retries) + 2 * rt.settings.lease_ttl
    pace, resources = spec.pace_of(todo_id), spec.resources_of(todo_id)
    delay, waited = 0.05, False
    limit = spec.wait_timeout_of(todo_id)
    wait_limit = math.inf if limit is None else limit
    # When it first had to wait, and until when its sweep lets it (monotonic): read at
    # its first wait, since most todos never wait.
    began = deadline = 0.0
    while True:
        # One round trip: sweep dispatching and at this run, predecessors succeeded,
        # breaker, first in line, repo and resource slots, claim, event. Retried with
        # the same token, a call whose reply was lost is answered 'started' again.
        st = start_run(rt, spec, todo_id, worker=d.host, level=d.level, token=d.token,
                       rank=rank, waited=waited, probe_for=probe_for,
                       waiter_stale=WAITER_STALE, breaker=breaker, resources=resources,
                       pace=pace, patience=time.monotonic() + rt.settings.lease_ttl)
        if st.verdict != StartVerdict.wait:
            return st
        if not waited:
            began, deadline = time.monotonic(), _wait_deadline(rt, spec.sweep_id, head)
            waited = True
        if time.monotonic() - began >= wait_limit:
            break  # its wait_timeout is up
        if time.monotonic() + delay > deadline:
            return Outcome.gone, {"reason": "no lease before the sweep ended"}
        _pause(rt, rank, delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, 1.0)
    return _wait_expired(d, st.detail, wait_limit, rank)


def _pause(rt: Runtime, rank: str, pause: float) -> None:
    """Wait up to ``pause`` s before asking again: woken early by a finishing holder of
    the slot it waits for (a worker in this process only sleeps)."""
    if rt.in_process:
        time.sleep(pause)
        return
    try:
        rt.transitions.wait_turn(rank, pause)
    except (redis.ConnectionError, redis.TimeoutError):
        time.sleep(pause)


def _wait_expired(d: Delivery, what: str, limit: float, rank: str) -> Refusal:
    """A todo that waited its ``wait_timeout`` for a slot: it ends ``failed``, the
    reason naming what it waited for and who held it."""
    from coordination.sweeps.waits import describe_wait, fail_waiter  # lazy: a rare end

    rt, spec, todo_id = d.rt, d.spec, d.todo_id
    why = (f"wait timeout: waited {limit:g} s for {describe_wait(rt, spec, todo_id, what)}"
           " (wait_timeout)")
    ended = fail_waiter(rt, spec, todo_id, why, d.host)
    rt.leases.leave_lines([f"repo:{d.todo.repo}", *(f"resource:{r}" for r in d.todo.resources)],
                          rank)
    if not ended:
        return Outcome.duplicate, {"reason": "ended meanwhile"}
    return Outcome.done, {"status": str(TodoStatus.failed), "reason": why}


def _wait_deadline(rt: Runtime, sweep_id: str, head: SweepRecord | None) -> float:
    """Monotonic time after which a todo waiting for a slot gives up: its sweep's
    deadline (an hour from now if it has none)."""
    if head is None:
        head = sweep_head(rt, sweep_id)
    left = float((head or {}).get("deadline") or time.time() + 3600) - time.time()
    return time.monotonic() + max(1.0, left)


def _refuse(rt: Runtime, sweep_id: str, spec: SweepSpec | None, todo_id: str, why: str,
            host: str) -> Refusal:
    """Run nothing of a spec that cannot be trusted: the todo ends ``failed`` (a
    ``todo.failed`` event with ``refused: true``) and the sweep ends ``failed`` with
    the refusal as its reason (what has not started is cancelled; no rollback, whose
    undo commands would come from the same spec). Nothing here goes by the spec's
    successors or atomic mode: only its todo ids, to cancel them. The todo ends even
    when the spec does not name it (a spec copied from another sweep); so do the
    sweep's own todos that such a spec does not name, before the sweep ends (the
    sweep's end cancels only the spec's: it once ended with its own todo queued)."""
    log.error("%s/%s refused: %s", sweep_id, todo_id, why)
    level = level_index(spec, todo_id) if spec is not None and todo_id in spec.todos else -1
    reason = f"{why} (refused by worker {host}, at {todo_id})"
    end_refused(rt, sweep_id, todo_id, level, why, named=spec.todos if spec else (),
                sweep_reason=reason)
    end_sweep(rt, sweep_id, reason)
    return Outcome.done, {"status": str(TodoStatus.failed), "reason": why}
