"""After a todo's state changes: what follows, as one ordered list of steps.

Every path that changes a todo's state hands the change here, to
:func:`progress`: a worker that finished a todo or was told to skip it, a
poisoned or refused todo, a lost run put back in its queue, the supervision
pass skipping what a failure stranded, a cancel or a deadline ending what has
not started, an atomic sweep stopping. So a reader finds what happens after a
todo ends in this file, in order.

Each step is a small class that declares which todo statuses it reacts to (as
Prefect's orchestration rules declare their FROM and TO states); a policy is
the ordered list :data:`POLICY`. Changes go through a work list, not recursion:
a step that ends more todos (skips, an atomic stop's cancels) appends their
changes, which the same policy then handles. Then the closing steps run once:

==================  ====================  =========================================
step                reacts to             does
==================  ====================  =========================================
SendSuccessors      succeeded,            send the eager successors its finish
                    compensated           script queued
Resend              queued                send again a todo put back in its queue
                                          (its holder was lost, or its message)
CountTerminal       terminal, uncounted   count a todo ended outside a script
CountOutcome        terminal, unmetered   note it for the durable metrics counters
AtomicStop          failed (run mode)     an atomic sweep's first failure cancels
                                          what has not started (``--atomic=stop``:
                                          and has the running ones killed)
LevelDone           terminal              ``level.done`` for each level it ended
SkipDependents      unsuccessful          skip the descendants not yet started
                    (not a cascade)
WaveCheck           terminal (waves)      the current wave may have ended, or has room
-- closing --
FlushCounts         outcomes noted        the metrics counters, one round trip
AdvanceWaves        a wave's todo ended   top the wave up; an ended wave soaks, starts
                                          the next, or halts the sweep (pause, or an
                                          atomic one's rollback)
AdvanceLevels       a level ended         send the next level with todos left
Finish              all may be terminal   end the sweep (an atomic one rolls back),
                                          keep it and record its history
==================  ====================  =========================================

``awaiting_approval`` (a gate waiting for people) has no step: gates are opened by
the sending path (:mod:`.sending`), and what people decide comes back here as the
gate's ``succeeded`` or ``failed`` (:mod:`.governance.approvals`).
``held`` (its repo's breaker is open) has no step: the breaker's decisions are
in :mod:`coordination.runtime.breakers`, counted by the transition scripts in
the same step as each outcome, and the supervision pass sends held todos again.
Adding a status or a step is one edit here: a class and its place in the list.

Everything here is idempotent compare-and-set on checkpoints, so any number of
callers may run it at once without double-sending or double-finishing anything.

And every way a todo ENDS is one function here, "the door" (below :func:`progress`):
its outcome sealed, the script that ends it, its :class:`Change`, then :func:`progress`,
in that order; nothing else seals an outcome or runs an ending script (a test walks the
source: ``tests/unit/sweeps/test_one_door.py``).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from coordination.connection.client import riding_out
from coordination.runtime.context import Runtime
from coordination.runtime.leases import Lease
from coordination.runtime.metrics import Outcome
from coordination.runtime.sweep_fields import Checkpoint
from coordination.runtime.transitions import (
    Ended, Finished, LostVerdict, Started, SweepMove)
from coordination.status import (
    DONE,
    NOT_STARTED,
    SUCCESSFUL,
    SWEEP_ACTIVE,
    SWEEP_LIVE,
    TERMINAL,
    UNSUCCESSFUL,
    EventKind,
    SweepStatus,
    TodoStatus,
)
from coordination.lazy import LazyModule
from coordination.sweeps import waves
from coordination.sweeps.governance import decisions
from coordination.sweeps.reading import summarize as summarize  # re-exported
from coordination.sweeps.sending import send, send_level
from coordination.sweeps.spec import Mode, Strategy, SweepSpec
from coordination.sweeps.spec_store import level_index, load_spec, sweep_head
from coordination.trust.signing import SpecRefused

if TYPE_CHECKING:
    from coordination.runtime.events import Prepared
    from coordination.sweeps import recording, rollback as rollbacks
else:
    # Loaded on first use: what ends a sweep (its history record, an atomic sweep's
    # rollback). A sweep's start loads this module (its approvals do) and records the
    # sweep long before a todo ends.
    recording = LazyModule("coordination.sweeps.recording")
    rollbacks = LazyModule("coordination.sweeps.rollback")

log = logging.getLogger("coord.progress")


@dataclass(frozen=True)
class Change:
    """One todo's move to ``status``, with what the script that made it answered.

    ``level_done``/``terminal``: did it end its level, the sweep's count of ended
    todos after it (None: unknown, look). ``levels``: the levels it ended, for
    their events. ``queued``: eager successors its finish queued. ``counted``: a
    script counted it in ``terminal``. ``cascade``: ended with a batch whose
    dependents are handled with it (a skip's descendants, a stop's cancels)."""

    todo_id: str
    status: TodoStatus
    level_done: bool | None = None
    terminal: int | None = None
    levels: tuple[int, ...] = ()
    queued: tuple[str, ...] = ()
    counted: bool = True
    cascade: bool = False
    metered: bool = False  # its finish script counted it for the metrics already


@dataclass
class Pass:
    """One run of the policy: the work list and what the closing steps need."""

    rt: Runtime
    spec: SweepSpec
    work: deque[Change] = field(default_factory=deque)
    advance: bool = False  # a level may have ended: look for the next one to send
    finish: bool = False  # every todo may be terminal: look
    unsuccessful: bool = False  # a run that saw a failure may have moved on (rollback)
    waves: bool = False  # a todo of a sweep with waves ended: its wave may have moved
    outcomes: list[Outcome] = field(default_factory=list)  # for the metrics counters

    def end(self, todo_ids: list[str], status: TodoStatus, allowed_from: frozenset[TodoStatus],
            *, event: dict[str, object], cascade: bool, said: Prepared | None = None
            ) -> list[str]:
        """End not-running todos in one script call and put their changes on the list;
        ``said``: an event of one of them, written in that call if it ended it."""
        return self.ended(todo_ids, status, allowed_from, event=event, cascade=cascade,
                          said=said).todos

    def ended(self, todo_ids: list[str], status: TodoStatus,
              allowed_from: frozenset[TodoStatus], *, event: dict[str, object],
              cascade: bool, sweep_to: SweepMove | None = None,
              said: Prepared | None = None) -> Ended:
        """As :meth:`end`, with the sweep's own move (``sweep_to``) in the same script
        call: refused, nothing is ended (``moved`` False)."""
        spec = self.spec
        # each todo's outcome sealed by the runtime for this run (the landing rule reads them)
        ended = self.rt.transitions.end(
            spec.sweep_id, [(t, level_index(spec, t)) for t in todo_ids], status, allowed_from,
            event=event, run=spec.run, sweep_to=sweep_to, said=said)
        for i, t in enumerate(ended.todos):
            first = i == 0
            self.work.append(Change(
                t, status, level_done=bool(ended.levels_done) if first else False,
                terminal=ended.terminal, levels=tuple(ended.levels_done) if first else (),
                cascade=cascade))
        return ended


class Step:
    """A step of the policy: it reacts to changes to the statuses in ``reacts_to``."""

    reacts_to: ClassVar[frozenset[TodoStatus]] = frozenset()
    #: The runs it applies to (``run``: a sweep's todos; ``rollback``: their undos).
    modes: ClassVar[frozenset[Mode]] = frozenset(Mode)
    #: Whether it looks at changes made with a batch (see :attr:`Change.cascade`).
    cascades: ClassVar[bool] = True

    def applies(self, p: Pass, c: Change) -> bool:
        return (c.status in self.reacts_to and p.spec.mode in self.modes
                and (self.cascades or not c.cascade))

    def apply(self, p: Pass, c: Change) -> None:
        raise NotImplementedError


class SendSuccessors(Step):
    """Eager: the finish script queued the successors whose last predecessor this
    was; send them."""

    reacts_to = SUCCESSFUL

    def apply(self, p: Pass, c: Change) -> None:
        send(p.rt, p.spec, c.queued)


class Resend(Step):
    """A todo put back to ``queued`` (its holder's lease expired, its message was
    lost): send it again."""

    reacts_to = frozenset({TodoStatus.queued})

    def apply(self, p: Pass, c: Change) -> None:
        send(p.rt, p.spec, [c.todo_id])


class CountTerminal(Step):
    """A todo ended outside the transition scripts (a cancel finding its worker gone):
    count it, so the sweep's end is seen without reading every checkpoint. A count
    lost to a crash only delays the end to the next full supervision pass."""

    reacts_to = TERMINAL

    def applies(self, p: Pass, c: Change) -> bool:
        return super().applies(p, c) and not c.counted

    def apply(self, p: Pass, c: Change) -> None:
        p.rt.checkpoints.count_terminal(p.spec.sweep_id)
        p.finish = True


def stop_run(p: Pass, by: str, *, what: str = "sweep stopped") -> bool:
    """Stop the pass's run and have it roll back once its running todos ended: what
    has not started is cancelled, ``stopped_run``/``stopped_by`` recorded (the
    trigger the rollback's reason names; ``--atomic=stop`` workers kill what runs).
    False if this run was stopped already."""
    spec, rt = p.spec, p.rt
    rec = rt.checkpoints.get_sweep_fields(spec.sweep_id, ("run", "stopped_run"))
    if (not rec or rec.get("status") not in rollbacks.RUN_ACTIVE
            or int(rec.get("run") or 0) != spec.run):
        return False
    if rec.get("stopped_run") == spec.run:
        return False
    # Written before anything else: the running todos' workers kill them from here on.
    rt.checkpoints.update_sweep(spec.sweep_id, stopped_run=spec.run, stopped_by=by)
    log.info("sweep %s: %s: stopping and rolling back", spec.sweep_id, by)
    p.end(list(spec.todos), TodoStatus.cancelled, NOT_STARTED, cascade=True,
          event={"reason": f"{what}: {by}"})
    p.finish = True
    return True


class CountOutcome(Step):
    """Note an end no finish script counted (skips, cancels, poison) for the durable
    metrics counters (``coord metrics``), written once for the whole pass by
    :class:`FlushCounts`: a cascade of 10,000 skips is one round trip."""

    reacts_to = TERMINAL

    def applies(self, p: Pass, c: Change) -> bool:
        return super().applies(p, c) and not c.metered

    def apply(self, p: Pass, c: Change) -> None:
        todo = p.spec.todos.get(c.todo_id)
        if todo is not None:
            p.outcomes.append(Outcome(todo.repo, str(c.status)))


class AtomicStop(Step):
    """An atomic sweep's first failure stops it: what has not started is cancelled;
    running todos finish (``--atomic``), or with ``--atomic=stop`` their workers,
    which look at the record's ``stopped_run`` while they run (as they look for a
    cancel), kill them and record them ``cancelled``. Once all have ended the sweep
    rolls itself back (:class:`Finish`), its trigger (``stopped_by``: "TODO-018
    failed: exit 1") kept for its reason. First, so that no level is sent in between."""

    reacts_to = frozenset({TodoStatus.failed})
    modes = frozenset({Mode.run})

    def applies(self, p: Pass, c: Change) -> bool:
        # With waves, a wave that misses its criteria stops an atomic sweep, not the
        # first failure (AdvanceWaves).
        return super().applies(p, c) and not p.spec.waves

    def apply(self, p: Pass, c: Change) -> None:
        spec, rt = p.spec, p.rt
        rec = rt.checkpoints.get_sweep_fields(spec.sweep_id, ("atomic", "run", "stopped_run"))
        if not rec or not rec.get("atomic") or rec.get("status") not in rollbacks.RUN_ACTIVE:
            return
        if int(rec.get("run") or 0) != spec.run:
            return  # already rolling back
        if rec.get("stopped_run") == spec.run:
            return  # an earlier failure stopped this run: it is the trigger
        cp = rt.checkpoints.get_fields_all(spec.sweep_id, [c.todo_id], ("reason", "exit_code"))
        by = rollbacks.failed_text(c.todo_id, cp.get(c.todo_id) or Checkpoint(status=c.status))
        stop_run(p, by, what="atomic sweep stopped")


class LevelDone(Step):
    """Levels strategy: say which levels ended (``level.done``), before any skip that
    may end the sweep, so a sweep's levels end before it does."""

    reacts_to = TERMINAL

    def apply(self, p: Pass, c: Change) -> None:
        if c.level_done is None or c.level_done:
            p.advance = True
        if p.spec.strategy != Strategy.levels:
            return
        for level in c.levels:
            if level >= 0:
                say_level(p.rt, p.spec, level, p.rt.checkpoints.level_succeeded(
                    p.spec.sweep_id, level))


def say_level(rt: Runtime, spec: SweepSpec, level: int, succeeded: int) -> bool:
    """Say ``level.done`` of a level of ``spec``'s run, once: by the process that ended
    it, or (it died first) the supervision pass that finds it ended and not said."""
    return rt.checkpoints.say_level(spec.sweep_id, spec.run, level, rt.events.prepare(
        EventKind.level_done, sweep_id=spec.sweep_id, level=level, succeeded=succeeded,
        todos=len(spec.levels[level])))


class SkipDependents(Step):
    """Skip every not-yet-started descendant of a todo that did not succeed.

    A todo this process already handed to a skip is not walked again: many failures
    sharing one big subtree cost the subtree once, not once per failure (per run: a
    resume parses a new spec). Should a skip fail, the supervision pass skips what
    it left (:func:`coordination.sweeps.supervision.stranded`)."""

    reacts_to = UNSUCCESSFUL
    cascades = False

    def apply(self, p: Pass, c: Change) -> None:
        p.unsuccessful = True
        walked = p.spec.skip_walked
        todo_ids = p.spec.descendants(c.todo_id, stop=walked)
        walked.update(todo_ids)
        if todo_ids:
            p.end(todo_ids, TodoStatus.skipped, NOT_STARTED, cascade=True,
                  event={"reason": f"{c.todo_id} {c.status}"})


class WaveCheck(Step):
    """A todo of a sweep with waves ended: its wave may have room for another todo, or
    may have ended (:class:`AdvanceWaves` looks, once per pass)."""

    reacts_to = TERMINAL
    modes = frozenset({Mode.run})

    def applies(self, p: Pass, c: Change) -> bool:
        return bool(p.spec.waves) and super().applies(p, c)

    def apply(self, p: Pass, c: Change) -> None:
        p.waves = True


class Closing:
    """A step that runs once, after the work list is empty."""

    def apply(self, p: Pass) -> None:
        raise NotImplementedError


class AdvanceWaves(Closing):
    """Waves: top the current wave up, or move on from it once it ended
    (:func:`advance_waves`)."""

    def apply(self, p: Pass) -> None:
        if p.waves:
            if p.unsuccessful and not is_current(p.rt, p.spec):
                return
            advance_waves(p.rt, p.spec)


def advance_waves(rt: Runtime, spec: SweepSpec, now: float | None = None) -> None:
    """Move the sweep's current wave on as far as it may go now
    (:func:`coordination.sweeps.waves.advance`); a wave that halts an atomic sweep stops
    it here (:func:`stop_run`), to roll back once its running todos ended."""

    def stop(why: str) -> None:
        p = Pass(rt, spec)
        if stop_run(p, why):
            progress(rt, spec, p.work, finish=True)

    waves.advance(rt, spec, time.time() if now is None else now, stop=stop)


class FlushCounts(Closing):
    """The outcomes the pass noted, into the metrics counters (never raises)."""

    def apply(self, p: Pass) -> None:
        if p.outcomes:
            outcomes, p.outcomes = p.outcomes, []
            p.rt.metrics.count_outcomes(outcomes)


class AdvanceLevels(Closing):
    """Levels strategy: send the first level with todos left once every level before
    it has ended. Idempotent: only pending todos are queued, so callers that race
    send each todo once."""

    def apply(self, p: Pass) -> None:
        spec = p.spec
        if not p.advance or spec.strategy != Strategy.levels or not spec.levels or spec.waves:
            return  # (waves: each wave sends its own levels, AdvanceWaves)
        if p.unsuccessful and not is_current(p.rt, spec):
            return  # the failure ended this run (an atomic sweep rolls back): not ours
        left = p.rt.checkpoints.levels_left(spec.sweep_id, [len(lv) for lv in spec.levels])
        for i, n in enumerate(left):
            if n > 0:
                if i > 0:
                    send_level(p.rt, spec, i, reason=f"level {i - 1} done")
                return


class Finish(Closing):
    """End the sweep when every todo is terminal (:func:`finish_if_done`)."""

    def apply(self, p: Pass) -> None:
        if p.finish:
            if p.unsuccessful and not is_current(p.rt, p.spec):
                return
            finish_if_done(p.rt, p.spec.sweep_id, p.spec)


#: What follows a change, in order: each change goes through every step that
#: reacts to it, then (work list empty) the closing steps run.
POLICY: tuple[Step, ...] = (SendSuccessors(), Resend(), CountTerminal(), CountOutcome(),
                            AtomicStop(), LevelDone(), SkipDependents(), WaveCheck())
CLOSING: tuple[Closing, ...] = (FlushCounts(), AdvanceWaves(), AdvanceLevels(), Finish())


def progress(rt: Runtime, spec: SweepSpec, changes: Iterable[Change], *,
             finish: bool = False) -> Pass:
    """The one entry after todos changed state: apply the policy to every change and
    to every change its steps make, then the closing steps. Returns the pass.
    ``finish``: look whether the sweep ended even if no change says it may have."""
    p = Pass(rt, spec, deque(changes), finish=finish)
    n = len(spec.todos)
    while p.work:
        c = p.work.popleft()
        if c.status in TERMINAL and (c.terminal is None or c.terminal >= n):
            p.finish = True
        for step in POLICY:
            if step.applies(p, c):
                step.apply(p, c)
    for closing in CLOSING:
        closing.apply(p)
    return p


# -- the door: every way a todo ends -----------------------------------------------
# Each ending is one function here, doing script -> Change -> progress in that order
# (as Prefect's ``set_task_run_state`` is the one way a task run's state moves); the
# script's runtime (``runtime/transitions.py``) seals each ending it writes, for the
# run the door names, so no ending can go unsealed by forgetting to ask.
# ``tests/unit/sweeps/test_one_door.py`` walks the source: no other module runs the
# scripts that end todos (``Transitions.start``, ``.lost``, ``.finish``, ``.end``),
# writes ``outcome_seal`` (the runtime aside), moves a todo to an ended status with
# ``set_status_if``, or builds a :class:`Change`; none but the runtime calls
# ``outcome_stamp``.
#
# ====================  ===========================================================
# door                  the ending
# ====================  ===========================================================
# Pass.end, end_todos   todos not running: skip, cancel, refuse, wait timeout, a
#                       fault before its run, a deadline, a gate expired
# start_run             the start script, which may end the todo itself: skipped (a
#                       predecessor did not succeed) or failed (poisoned by its lost
#                       runs), both sealed before it runs and written with its answer
# finish_run            a worker's run ended (``todo_finish.lua``, fenced)
# lose_run              the lost-run script, which ends a todo at its last allowed lost
#                       run (failed, poison): sealed before it runs, written with it
# after_script          a todo another script ended, sealed, carried on: the start
#                       script's skip or poison, the lost-run script's poison, a gate's
#                       decision (its decision is its seal)
# cancel_orphans        running todos whose worker is gone when the sweep is cancelled
# fail_gate             a gate read passed on a decision that fails its check
# end_refused           a todo of a spec that fails its check: nothing of it sealed
# resend                not an ending: todos put back in their queue, sent again
# ====================  ===========================================================


def start_run(rt: Runtime, spec: SweepSpec, todo_id: str, *, worker: str, level: int,
              token: str, rank: str, waited: bool, probe_for: float, waiter_stale: float,
              breaker: tuple[int, float] | None, resources: Sequence[tuple[str, int]],
              pace: Sequence[tuple[str, float, int]], patience: float) -> Started:
    """The start script's answer for a delivery of ``todo_id`` (:meth:`Transitions.start`:
    a lease to run it, or why not). Two of its answers end the todo there and then:
    ``skipped`` (a predecessor did not succeed) and ``poisoned`` (``failed``: taking over
    a dead holder's run was the last its lost runs allowed). Lua cannot seal, so the
    runtime seals both endings for this run before it runs, and the one it decides is
    written with its status in the same step: no ending it makes is ever left unsealed,
    not even by a worker that dies right after. The caller carries the sweep on
    (:func:`after_script`). Asked again, with the same token, while Redis is restarting
    and ``patience`` (monotonic) lasts: a call whose reply was lost is answered
    ``started`` again."""
    t = spec.todos[todo_id]
    return rt.transitions.start(
        spec.sweep_id, todo_id, repo=t.repo, concurrency=spec.concurrency.get(t.repo, 1),
        preds=t.preds, worker=worker, level=level, max_lost=rt.settings.max_lost_runs,
        token=token, resources=resources, breaker=breaker, rank=rank, probe_for=probe_for,
        waiter_stale=waiter_stale, waited=waited, run=spec.run, pace=pace, patience=patience)


def end_todos(rt: Runtime, spec: SweepSpec, todo_ids: list[str], status: TodoStatus,
              allowed_from: frozenset[TodoStatus], *, event: dict[str, object],
              cascade: bool = False) -> list[str]:
    """End not-running todos (skip, cancel, refuse) in one step, then carry the sweep
    on (:func:`progress`); returns those ended."""
    p = Pass(rt, spec)
    ended = p.end(todo_ids, status, allowed_from, event=event, cascade=cascade)
    progress(rt, spec, p.work)
    return ended


def finish_run(rt: Runtime, spec: SweepSpec, todo_id: str, *, lease: Lease,
               status: TodoStatus, fields: dict[str, object], event: dict[str, object],
               level: int, patience: float, inline: str | None = None,
               before: Callable[[Any], None] | None = None) -> Finished:
    """A worker's run of ``todo_id`` ended ``status``: its outcome sealed (status, exit
    code, run) in the same fenced write that releases the lease (the landing rule trusts
    "no todo of the last run failed" only sealed), then the sweep carried on. Redis may
    be restarting: each step is retried while ``patience`` (monotonic) lasts, as long as
    the lease could live. ``inline``: the next todo of a merged chain, run next by the
    same worker: not sent. ``before``: writes sent ahead of the outcome in its round
    trip (the attempt's log end). Returns the script's answer (``ok`` False: the fence
    was stale, nothing written)."""
    t = spec.todos[todo_id]
    # The spec's facts first (what the script sends on, the breaker it reports to),
    # then the one write of the outcome with its seal (the runtime's, for this run).
    # Recorded on a master that no replica confirmed while the lease lived, it is
    # answered as recorded: carry on by it.
    successors = spec.sent_on_finish(todo_id)
    breaker = spec.breaker_of_run(t.repo)
    fin = rt.transitions.finish(
        spec.sweep_id, todo_id, lease=lease, status=status, fields=fields, event=event,
        level=level, successors=successors, breaker=breaker, resources=t.resources,
        run=spec.run, patience=patience, before=before)
    if not fin.ok:
        return fin
    # Best effort from here: a lost send or finish is made good by the supervision pass.
    queued = tuple(q for q in fin.queued if q != inline or status not in SUCCESSFUL)
    change = Change(todo_id, status, level_done=fin.level_done, terminal=fin.terminal,
                    levels=(level,) if fin.level_done and level >= 0 else (),
                    queued=queued, metered=True)
    riding_out(lambda: progress(rt, spec, [change]), patience)
    return fin


def lose_run(rt: Runtime, spec: SweepSpec, todo_id: str, *, token: str, now: float,
             why: str) -> LostVerdict:
    """The lost-run script's verdict on ``todo_id``, running under ``token`` with its
    lease gone (:meth:`Transitions.lost`): queued again, or, at its last allowed lost
    run, ended ``failed`` as poison, sealed before the script runs and written with it
    (Lua cannot seal). The caller carries the sweep on (:func:`after_script`)."""
    repo = spec.todos[todo_id].repo
    return rt.transitions.lost(spec.sweep_id, todo_id, repo=repo, token=token,
                               max_lost=rt.settings.max_lost_runs, now=now, why=why,
                               level=level_index(spec, todo_id),
                               breaker=spec.breaker_of_run(repo), run=spec.run)


def after_script(rt: Runtime, spec: SweepSpec, todo_id: str, status: TodoStatus, *,
                 level: int, level_done: bool | None, terminal: int | None,
                 queued: Iterable[str] = ()) -> None:
    """A script other than the ending ones ended ``todo_id`` ``status``, sealed: carry
    the sweep on. Sealed by the start script with its skip or poison (:func:`start_run`),
    by the lost-run script with its poison (:func:`lose_run`); a gate's decision is its
    own seal."""
    progress(rt, spec, [Change(todo_id, status, level_done=level_done, terminal=terminal,
                               levels=(level,) if level_done and level >= 0 else (),
                               queued=tuple(queued))])


def cancel_orphans(rt: Runtime, sweep_id: str, spec: SweepSpec | None,
                   tokens: dict[str, str | None]) -> list[str]:
    """A cancelled sweep's running todos whose worker is gone (todo -> the token of the
    run they read): ``cancelled``, sealed, then counted and carried on. Returns those
    ended (one that moved meanwhile is left alone), each said ``todo.cancelled`` in
    the step that ends it."""
    why = "cancelled; its worker was gone"
    ended = [t for t, token in sorted(tokens.items()) if rt.checkpoints.set_status_if(
        sweep_id, t, TodoStatus.cancelled, {TodoStatus.running}, expect_token=token,
        said=rt.events.prepare(EventKind.todo_cancelled, sweep_id=sweep_id, todo_id=t,
                               reason=why, exit_code=None),
        reason=why, finished_at=time.time(), exit_code=None,
        outcome_seal=rt.transitions.seal(sweep_id, t, spec.run if spec else 0,
                                         TodoStatus.cancelled))]
    if ended and spec is not None:
        progress(rt, spec, [Change(t, TodoStatus.cancelled, counted=False) for t in ended])
    return ended


def fail_gate(rt: Runtime, spec: SweepSpec, todo_id: str, why: str) -> bool:
    """End gate ``todo_id``, read passed on a decision that failed its check, ``failed``
    with why (``todo.failed``, ``refused: true``); False if it no longer read passed.
    The caller ends the sweep (nothing after the gate may run)."""
    reason = f"its decision was refused: {why}"
    said = rt.events.prepare(EventKind.todo_failed, sweep_id=spec.sweep_id, todo_id=todo_id,
                             reason=reason, refused=True)
    if not rt.checkpoints.set_status_if(spec.sweep_id, todo_id, TodoStatus.failed,
                                        {TodoStatus.succeeded}, said=said, reason=reason,
                                        finished_at=time.time(), **{decisions.FIELD: None}):
        return False
    log.error("sweep %s: gate %s %s", spec.sweep_id, todo_id, reason)
    return True


def end_refused(rt: Runtime, sweep_id: str, todo_id: str, level: int, why: str, *,
                named: Iterable[str] = (), sweep_reason: str = "") -> None:
    """A todo whose sweep's spec fails its check ends ``failed`` (``refused: true``),
    unsealed: nothing is taken from that spec (its run included). The caller ends the
    sweep (:func:`end_sweep`), which cancels what the spec names that has not started;
    the sweep's own todos the spec does not name (``named``: a spec copied from another
    sweep names that sweep's) are cancelled here first, with ``sweep_reason``, so the
    sweep never ends with one of its todos still queued."""
    rt.transitions.end(sweep_id, [(todo_id, level)], TodoStatus.failed, NOT_STARTED,
                       event={"reason": why, "refused": True})
    known = set(named) | {todo_id}
    unnamed = [t for t in rt.checkpoints.own_todos(sweep_id) if t not in known]
    if unnamed:
        rt.transitions.end(sweep_id, [(t, -1) for t in unnamed], TodoStatus.cancelled,
                           NOT_STARTED, event={"reason": sweep_reason or why})


def resend(rt: Runtime, spec: SweepSpec, todo_ids: Iterable[str]) -> None:
    """Todos put back to ``queued`` (a lost run, a lost message, a start given back, a
    sweep unpaused): send them again."""
    progress(rt, spec, [Change(t, TodoStatus.queued) for t in todo_ids])


def is_current(rt: Runtime, spec: SweepSpec) -> bool:
    """Is ``spec`` still the sweep's current run (not replaced by a resume or rollback)?"""
    rec = rt.checkpoints.get_sweep_fields(spec.sweep_id, ("run",))
    return rec is not None and int(rec.get("run") or 0) == spec.run


def failure_reason(cps: dict[str, Checkpoint], counts: dict[str, int]) -> str:
    """Why a run failed: its first failed todos with theirs, and how many were skipped."""
    failed = sorted(t for t, cp in cps.items() if cp.get("status") == TodoStatus.failed)
    parts = []
    for t in failed[:5]:
        cp = cps[t]
        parts.append(f"{t} failed ({cp.get('reason') or 'exit ' + str(cp.get('exit_code'))})")
    if len(failed) > 5:
        parts.append(f"and {len(failed) - 5} more failed")
    if counts.get(TodoStatus.skipped):
        parts.append(f"{counts[TodoStatus.skipped]} skipped")
    return "; ".join(parts) or "not every todo succeeded"


def finish_if_done(rt: Runtime, sweep_id: str, spec: SweepSpec | None = None, *,
                   full: bool = False) -> SweepStatus | None:
    """Finalise the sweep if every todo is terminal; returns the final status if it did.

    Unless ``full``, the terminal counter must say so before any checkpoint is read.
    An atomic sweep that failed goes straight on to its rollback run (it never shows
    as ended in between, so no follower stops at a failure it will undo)."""
    record = rt.checkpoints.get_sweep_fields(sweep_id, ("status", "run", "terminal", "atomic",
                                                       "rollback_reason", "stopped_run",
                                                       "stopped_by"))
    if record is None or record.get("status") not in SWEEP_ACTIVE:
        return None
    run = int(record.get("run") or 0)
    if spec is None or spec.run != run:
        spec = load_spec(rt, sweep_id, record)  # (a caller's spec of an earlier run)
    if spec is None:
        return None
    if not full and int(record.get("terminal") or 0) < len(spec.todos):
        return None
    cps = rt.checkpoints.get_all(sweep_id, list(spec.todos))
    if any(cp.get("status") not in TERMINAL for cp in cps.values()):
        return None
    counts = summarize(cps)
    final: SweepStatus
    if spec.mode == Mode.rollback:
        trigger = record.get("rollback_reason")
        final, reason = rollbacks.rollback_outcome(spec, cps, str(trigger) if trigger else None)
    elif sum(counts.get(s, 0) for s in DONE) == len(cps):
        final, reason = SweepStatus.succeeded, f"{len(cps)} todos succeeded" + (
            f" ({counts[TodoStatus.cached]} cached)" if counts.get(TodoStatus.cached) else "")
    elif counts.get(TodoStatus.cancelled) and not counts.get(TodoStatus.failed):
        final, reason = SweepStatus.cancelled, "cancelled"
    else:
        final, reason = SweepStatus.failed, failure_reason(cps, counts)
    passed = [g for g in spec.gates() if cps.get(g, {}).get("status") == TodoStatus.succeeded]
    refused = decisions.gate_refusals(rt, spec, passed) if spec.mode == Mode.run and passed else {}
    if refused:  # a gate passed on a decision that fails its check: not a success
        for g, why in sorted(refused.items()):
            fail_gate(rt, spec, g, why)
        final = SweepStatus.failed
        reason = "; ".join(refused[g] for g in sorted(refused))
    elif final == SweepStatus.succeeded:
        forged = decisions.ended_refusals(rt, spec, cps)
        if forged:  # a success read on an outcome that fails its seal: said, not taken
            final = SweepStatus.failed
            reason = "not a success: " + "; ".join(forged[t] for t in sorted(forged))
    stopped = record.get("stopped_run") == run
    # Rolled back: an atomic sweep that failed (with waves: whose wave missed its
    # criteria, which stops it), or a run stopped to be rolled back (a gate expired
    # with on_expiry: rollback; then its end may read cancelled).
    if spec.mode == Mode.run and (
            (final == SweepStatus.failed and record.get("atomic") and not spec.waves)
            or (stopped and final in (SweepStatus.failed, SweepStatus.cancelled))):
        # the trigger: the failure that stopped it (not every failure that followed)
        by = (record.get("stopped_by") if stopped else None) \
            or rollbacks.failed_first(cps) or reason
        try:
            if rollbacks.start_rollback(rt, sweep_id, reason=f"after {by}",
                                        from_active=True) is not None:
                return SweepStatus.rolling_back
        except SpecRefused as exc:  # its stored spec fails its check: no undo is signed
            reason = f"{reason}; not rolled back: {exc.message}"
    ending = rt.events.prepare(EventKind.sweep_finished, sweep_id=sweep_id, status=str(final),
                               reason=reason, counts=counts, run=run)
    if rt.checkpoints.set_sweep_status(sweep_id, final, allowed_from=SWEEP_ACTIVE,
                                       finished_at=time.time(), reason=reason,
                                       ending=ending.text):
        recording.ended(rt, sweep_id, run)
        return final
    return None


def end_sweep(rt: Runtime, sweep_id: str, reason: str, *,
              status: SweepStatus = SweepStatus.failed) -> bool:
    """End a live sweep now (its deadline passed, a user cancelled it): what has not
    started is cancelled; running todos see it and stop. False if it had ended."""
    head = sweep_head(rt, sweep_id)
    if head is None:
        return False
    if status == SweepStatus.failed and head.get("status") == SweepStatus.rolling_back:
        status = SweepStatus.rollback_failed
    kind = EventKind.sweep_cancelled if status == SweepStatus.cancelled else EventKind.sweep_finished
    # Its end event goes into the record with the move, and is said when the sweep is
    # taken off the active ones (recording.ended): after the level.done events the
    # cancels' progression writes, and by a pass if this process dies first.
    run = int(head.get("run") or 0)
    ending = rt.events.prepare(kind, sweep_id=sweep_id, status=str(status), reason=reason,
                               run=run)
    move = SweepMove(status, SWEEP_LIVE, {"finished_at": time.time(), "reason": reason,
                                          "ending": ending.text})
    spec = load_spec(rt, sweep_id, head)
    if spec is None:
        if not rt.checkpoints.set_sweep_status(sweep_id, status, allowed_from=SWEEP_LIVE,
                                               **move.fields):
            return False
    else:
        # The move and the cancel of what had not started in one step: nobody reads the
        # sweep ended with todos still pending, and an ender dying here leaves none so.
        p = Pass(rt, spec)
        if not p.ended(list(spec.todos), TodoStatus.cancelled, NOT_STARTED,
                       event={"reason": reason}, cascade=True, sweep_to=move).moved:
            return False
        progress(rt, spec, p.work)
    recording.ended(rt, sweep_id, run)
    return True
