"""The periodic supervision pass: what keeps a sweep moving when the fast path fails.

Any process may run it (every worker's thread, any CLI that waits); one pass per
sweep at a time, everything idempotent. A pass over a sweep:

- ends it ``failed`` once its deadline passed;
- finds runs whose holder's lease expired and lost messages (:mod:`.lost`);
- skips what a failure stranded (a skip that failed half-way);
- sends held todos again once their repo's breaker lets them;
- says which repos have queued todos and no live worker (``repo.unattended``);
- sends todos whose predecessors all succeeded a while ago but that were never
  queued (a sender that died between the status change and the publish); not one
  after a gate whose decision fails its check (:mod:`.governance.decisions`: the gate and the
  sweep end ``failed``, saying which record and why);
- expires gates nobody decided in time, ends waves' soaks, starts the next wave
  (:mod:`.governance.approvals`, :func:`~.progress.advance_waves`);
- says once which todos, and whether the plan, are past their ``due:`` (:mod:`.notices.overdue`);
- finishes the sweep if every todo is terminal;
- says the end of an ended sweep whose ender died before it did (a grace after its
  move: :func:`.recording.ended`), and takes it off the active sweeps.

Each change it makes goes through the progression (:mod:`.progress`).
"""

from __future__ import annotations

import logging
import random
import threading
import time

from coordination.connection.client import UNREACHABLE
from coordination.runtime.breakers import release_count
from coordination.runtime.context import Runtime
from coordination.runtime.events import Prepared
from coordination.runtime.sweep_fields import Checkpoint, SweepRecord
from coordination.status import (
    NOT_STARTED,
    SUCCESSFUL,
    SWEEP_ACTIVE,
    TERMINAL,
    UNSUCCESSFUL,
    EventKind,
    SweepStatus,
    TodoStatus,
    todo_status,
)
from coordination.sweeps import recording
from coordination.sweeps.governance.approvals import refuse_gates, watch_gates
from coordination.sweeps.governance.decisions import gate_preds, gate_refusals
from coordination.sweeps.lost import LOOK_FIELDS, lease_lost, resend_lost_messages
from coordination.sweeps.notices.overdue import note_overdue
from coordination.sweeps.progress import (
    advance_waves,
    end_sweep,
    end_todos,
    finish_if_done,
    say_level,
)
from coordination.sweeps.sending import in_start_order, send_todos
from coordination.sweeps.spec import Strategy, SweepSpec
from coordination.sweeps.spec_store import load_spec
from coordination.sweeps.waits import supervise_waits

log = logging.getLogger("coord.supervisor")

#: Checkpoints a moving sweep's full passes read per second, on average, at most.
#: A full pass reads all n of them: at a fixed period the passes of a sweep that
#: lasts in proportion to n would cost it n^2 reads. So a big sweep's period grows
#: with n (10,000 todos: every 10 s rather than every lease_ttl / 2).
FULL_PASS_RATE = 1000.0

#: The checkpoint fields a full pass reads (lease checks, lost messages, level
#: barriers): not the output tails, which would make a pass's memory and traffic
#: grow with what the todos print.
PASS_FIELDS = ("status", "lease_key", "token", "worker", "lost_runs", "queued_at", "lost_at",
               "suspect_at", "finished_at", "paced_until")

#: The record fields a pass reads.
PASS_RECORD = ("status", "run", "deadline", "created_at", "started_at", "terminal",
               "full_pass_terminal", "full_pass_at", "finished_at", "ending", *LOOK_FIELDS)


def full_pass_period(rt: Runtime, todos: int) -> float:
    """Seconds between two full passes over a moving sweep of ``todos`` todos."""
    return max(rt.settings.lease_ttl / 2, todos / FULL_PASS_RATE)


def needs_full_pass(rt: Runtime, sweep_id: str, record: SweepRecord, now: float,
                    todos: int = 0) -> bool:
    """Whether a periodic pass must read every checkpoint now.

    Not while the sweep is visibly moving (its terminal count grew since the
    last full pass, by any process) and that pass is recent: the fast path is
    working, and a dead worker's lease cannot be seen expired before its TTL
    anyway. So a full pass runs at least every :func:`full_pass_period` and at
    every pass once nothing has ended since the last full one. The last full pass
    is noted in the sweep record, so all processes share it.
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
                   throttle: bool = False) -> bool:
    """One pass over one sweep (see the module docstring), if this process has the
    sweep's turn; False when another process has it now. ``throttle``: the periodic
    pass, which skips reading checkpoints while the sweep is visibly moving."""
    interval = rt.settings.supervise_interval
    if not rt.checkpoints.take_supervise_turn(sweep_id, int(interval * 900)):
        return False
    _pass(rt, sweep_id, grace=grace if grace is not None else max(2.0, 3 * interval),
          throttle=throttle)
    return True


def _pass(rt: Runtime, sweep_id: str, *, grace: float, throttle: bool) -> None:
    now = time.time()
    record = rt.checkpoints.get_sweep_fields(sweep_id, PASS_RECORD)
    if record is not None and record.get("status") == SweepStatus.paused:
        return  # nothing is dispatched, re-sent or timed out while paused
    if record is None or record.get("status") not in SWEEP_ACTIVE:
        if record is None or record.get("ending") is None:
            rt.checkpoints.deactivate(sweep_id)  # (gone, or its end said: nothing to say)
        elif now - float(record.get("finished_at") or 0) >= grace:
            # Ended, its end not said after a grace: its ender died after its move.
            recording.ended(rt, sweep_id, int(record.get("run") or 0))
        return
    deadline = record.get("deadline")
    if deadline and now > float(deadline):
        started = float(record.get("created_at") or now)
        end_sweep(rt, sweep_id, f"deadline passed ({int(now - started)} s)")
        return
    spec = load_spec(rt, sweep_id, record)  # parsed once per run per process
    if spec is None:
        return
    # People and soaks keep time of their own: a gate's expiry, a wave's soak (each a
    # read of a few fields, so every pass, throttled or not).
    watch_gates(rt, spec, now)
    advance_waves(rt, spec, now)
    note_overdue(rt, sweep_id, spec, int(record.get("terminal") or 0), now)  # due: times
    if throttle and not needs_full_pass(rt, sweep_id, record, now, len(spec.todos)):
        return
    cps = rt.checkpoints.get_fields_all(sweep_id, list(spec.todos), PASS_FIELDS)
    status = {t: todo_status(cp.get("status", TodoStatus.pending)) for t, cp in cps.items()}
    say_unsaid_levels(rt, spec)
    for tid in rt.checkpoints.orphaned(cps):
        lease_lost(rt, spec, tid, cps[tid], now)
    skipped = 0
    for tid, stranded_ids in stranded(spec, status).items():
        end_todos(rt, spec, stranded_ids, TodoStatus.skipped, NOT_STARTED,
                  event={"reason": f"{tid} {status[tid]}"}, cascade=True)
        skipped += len(stranded_ids)
    held = [t for t, st in status.items() if st == TodoStatus.held]
    if held:
        release_held(rt, spec, held, now)
    if not rt.settings.embedded:
        note_unattended(rt, spec, status, now)
    resend_lost_messages(rt, spec, cps, now, record)
    # (waves: advance_waves above tops the current wave up, the only one that may send)
    ready = [] if spec.waves else ready_todos(spec, status, cps, record, now, grace)
    gates = sorted({g for t in ready for g in gate_preds(spec, t)})
    refused = gate_refusals(rt, spec, gates) if gates else {}
    if refused:  # a gate read passed on a decision that fails its check: none follows it
        refuse_gates(rt, spec, refused, by="the supervision pass")
        return
    if ready:
        sent = send_todos(rt, spec, ready, reason="supervisor")
        if sent:
            log.info("sweep %s: supervisor dispatched %s", sweep_id, ", ".join(sent))
    # Every checkpoint was just read: read them all again only when they said the
    # sweep may be over (its terminal count may lag then: a count lost to a crash);
    # else the count decides, as after each todo.
    left = sum(1 for st in status.values() if st not in TERMINAL) - skipped
    finish_if_done(rt, sweep_id, spec, full=left <= 0)


def say_unsaid_levels(rt: Runtime, spec: SweepSpec) -> list[int]:
    """Levels strategy: say the levels of the run that ended and were never said (the
    process that ended one died before it said it), before anything this pass ends;
    those said now."""
    if spec.strategy != Strategy.levels or not spec.levels:
        return []
    unsaid = rt.checkpoints.unsaid_levels(spec.sweep_id, len(spec.levels))
    return [k for k, ok in sorted(unsaid.items()) if say_level(rt, spec, k, ok)]


def ready_todos(spec: SweepSpec, status: dict[str, TodoStatus], cps: dict[str, Checkpoint],
                record: SweepRecord, now: float, grace: float) -> list[str]:
    """Pending todos whose predecessors all succeeded ``grace`` s ago or more (and, for
    the levels strategy, every todo of the levels before theirs ended): a sender
    that should have sent them did not."""
    level_of = {t: i for i, lvl in enumerate(spec.levels) for t in lvl}
    # Prefix over levels (all earlier ended?, when the last of them ended), once.
    earlier_done, earlier_last = [True], [0.0]
    for lvl in spec.levels:
        ended = earlier_done[-1] and all(status.get(t) in TERMINAL for t in lvl)
        last = max([earlier_last[-1]] + [float(cps.get(t, {}).get("finished_at") or 0)
                                          for t in lvl])
        earlier_done.append(ended)
        earlier_last.append(last)
    started = float(record.get("started_at") or record.get("created_at") or now)
    ready = []
    for tid, st in status.items():
        if st != TodoStatus.pending:
            continue
        preds = spec.todos[tid].preds
        if any(status.get(p, TodoStatus.succeeded) not in SUCCESSFUL for p in preds):
            continue
        last = max((float(cps[p].get("finished_at") or 0) for p in preds if p in cps),
                   default=0.0)
        if spec.strategy == Strategy.levels and tid in level_of:
            i = level_of[tid]
            if not earlier_done[i]:
                continue
            last = max(last, earlier_last[i])
        if now - max(last, started) >= grace:
            ready.append(tid)
    return sorted(ready)


def stranded(spec: SweepSpec, status: dict[str, TodoStatus]) -> dict[str, list[str]]:
    """Todo that did not succeed -> its descendants that have not started (by
    ``status``), each under the first such todo that reaches it: what a pass skips.

    One walk over the graph for all of them (a node is visited once), and only
    todos still to skip are named, so a pass over a sweep whose failures were
    handled long ago costs no script call."""
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
    """Send held todos again as far as their repo's breaker lets them
    (:func:`coordination.runtime.breakers.release_count`); returns those sent."""
    by_repo: dict[str, list[str]] = {}
    for t in in_start_order(spec, held):
        by_repo.setdefault(spec.todos[t].repo, []).append(t)
    sent: list[str] = []
    for repo, todos in by_repo.items():
        cfg = spec.breaker(repo)
        if cfg is None:
            let, via = todos, "breaker closed"
        else:
            b = rt.breakers.read(repo)
            n = release_count(b, cfg[1], now)
            let, via = (todos if n is None else todos[:n]), f"breaker {b.state}"
        if let:
            sent += send_todos(rt, spec, let, reason=via, allowed_from=(TodoStatus.held,))
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
    marks = rt.checkpoints.unattended_marks(spec.sweep_id, waiting)
    said: list[str] = []
    saying: Prepared | None = None  # (written with the marks: said once)
    queued: dict[str, int] = {}
    changes: dict[str, tuple[float, bool] | None] = {}
    for repo in waiting:
        mark = marks.get(repo)  # (since, said)
        if live.get(repo):
            if mark is not None:
                changes[repo] = None
            continue
        if mark is None:
            changes[repo] = (now, False)
        elif not mark[1] and now - mark[0] >= rt.settings.unattended_after:
            changes[repo] = (mark[0], True)
            todos = sorted(t for t, st in status.items()
                           if spec.todos[t].repo == repo and st == TodoStatus.queued)
            ev = rt.events.prepare(EventKind.repo_unattended, sweep_id=spec.sweep_id,
                                   repo=repo, waiting_for=round(now - mark[0], 1),
                                   todos=todos[:20], queued=len(todos),
                                   hint=f"start one: coord worker --repo {repo}")
            saying = ev if saying is None else saying.then(ev)
            said.append(repo)
            queued[repo] = len(todos)
    if changes:
        rt.checkpoints.set_unattended_marks(spec.sweep_id, changes, saying)
    for repo in said:
        log.warning("sweep %s: %d queued todo(s) of %s and no live worker serves it",
                    spec.sweep_id, queued[repo], repo)
    return said


def supervise_all(rt: Runtime) -> int:
    """One pass over every active sweep; errors are logged, never raised. Returns how
    many of them this process had the turn of (the others: another process has it)."""
    try:
        active = rt.checkpoints.active_sweeps()
    except Exception as exc:  # Redis away: the next pass tries again
        log.warning("supervisor cannot list active sweeps: %s", exc)
        return 0
    turns = 0
    for sweep_id in active:
        try:
            turns += supervise_once(rt, sweep_id, throttle=True)
        except UNREACHABLE as exc:  # an outage, a failover (READONLY): not the sweep's
            turns += 1
            log.warning("supervising sweep %s paused, Redis unreachable: %s", sweep_id, exc)
        except Exception:  # a supervisor must outlive a bad sweep
            turns += 1  # (it had the turn)
            log.exception("supervising sweep %s failed", sweep_id)
    if active:
        try:  # waits across sweeps: holders that are gone, cycles (sweeps.waits)
            supervise_waits(rt)
        except UNREACHABLE as exc:  # as above: the next pass tries again
            log.warning("supervising the waits paused, Redis unreachable: %s", exc)
        except Exception:
            log.exception("supervising the waits failed")
    return turns


#: A process that had no sweep's turn at its last look (another process supervises them,
#: or none is active) looks again after twice as long, up to this many intervals: one
#: process supervises at a time, so of 50 workers 49 looked every second for nothing
#: (two Redis commands each: ~100 a second). The one that has a turn keeps the interval,
#: and so keeps its turns; if it dies, the others take over within IDLE_LOOKS intervals.
IDLE_LOOKS = 5


def next_look(wait: float, turns: int, interval: float) -> float:
    """Seconds until a process's next look, after one that took ``turns`` turns and
    came ``wait`` s after the one before (see :data:`IDLE_LOOKS`); a little spread, so
    that workers started together do not look together."""
    if turns:
        return interval
    return min(2 * wait, IDLE_LOOKS * interval) * random.uniform(0.8, 1.0)


class SupervisorThread(threading.Thread):
    """Runs :func:`supervise_all` every ``supervise_interval`` seconds while it has a
    sweep's turn, less often while it has none (:data:`IDLE_LOOKS`)."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(name="coord-supervisor", daemon=True)
        self.rt = rt
        # Not ``_stop``: threading.Thread.join() calls a method of that name.
        self._halt = threading.Event()

    def run(self) -> None:
        interval = self.rt.settings.supervise_interval
        wait = interval
        while not self._halt.wait(wait):
            try:
                turns = supervise_all(self.rt)
            except Exception:  # never let the thread die: sweeps need it
                log.exception("supervisor pass failed")
                turns = 0
            wait = next_look(wait, turns, interval)

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=5)
