"""Waves: a plan's todos rolled out one part at a time (``waves:`` in the catalog).

A sweep of a plan with waves sends only its current wave's todos (:mod:`.sending`),
at most ``max_parallel`` at once. When every todo of the wave has ended, the wave
is judged: its success rate (todos succeeded / todos of the wave) must reach its
``require.success_rate``. Met: it soaks for ``soak`` seconds (the supervision pass
ends the soak), then the next wave starts. Missed: the sweep halts (``paused``,
the reason in its record; ``sweep unpause`` lets the next wave go) or, atomic, rolls
back. :func:`advance` moves a wave on; the progression calls it after each todo
(:class:`~coordination.sweeps.progress.AdvanceWaves`), the supervision pass every pass.

The wave's place lives in the sweep record (``wave``, ``wave_state``: running,
soaking, halted, done; ``wave_until``; ``wave_reason``), moved by compare-and-set
(``CheckpointStore.move_wave``), so each wave is started, soaked and ended once
however many processes see it end. Events: ``wave.started``, ``wave.soaking``,
``wave.done``, ``wave.halted``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from coordination.runtime.context import Runtime
from coordination.runtime.sweep_fields import accepted_waves
from coordination.status import (
    SUCCESSFUL,
    SWEEP_ACTIVE,
    TERMINAL,
    EventKind,
    SweepStatus,
    TodoStatus,
    todo_status,
)
from coordination.sweeps.reading import DONE, HALTED, RUNNING, SOAKING
from coordination.sweeps.sending import send_todos
from coordination.sweeps.spec import Mode, Strategy, SweepSpec

if TYPE_CHECKING:
    from coordination.runtime.events import Prepared

__all__ = ["DONE", "HALTED", "RUNNING", "SOAKING", "Tally", "advance",
           "halt_to_accept", "say_accepted", "start_wave", "tally", "top_up"]

log = logging.getLogger("coord.waves")


@dataclass(frozen=True)
class Tally:
    """A wave's todos now: have they all ended, how many succeeded, of how many."""

    ended: bool
    succeeded: int
    total: int
    ran: bool  # some of its todos are in this run (a resume may re-run none of them)

    @property
    def rate(self) -> float:
        return self.succeeded / self.total if self.total else 1.0

    def verdict(self, needed: float) -> str:
        return (f"{self.succeeded} of {self.total} succeeded ({self.rate:.0%}), "
                f"needs {needed:.0%}")


def statuses(rt: Runtime, spec: SweepSpec, todo_ids: list[str]) -> dict[str, TodoStatus]:
    cps = rt.checkpoints.get_fields_all(spec.sweep_id, todo_ids, ())
    return {t: todo_status(cps.get(t, {}).get("status", TodoStatus.pending)) for t in todo_ids}


def wave_statuses(rt: Runtime, spec: SweepSpec, k: int) -> dict[str, TodoStatus]:
    """The statuses of wave ``k``'s todos and of their predecessors, in one read."""
    wave = spec.waves[k]
    preds = {p for t in wave.todos for p in spec.todos[t].preds if p in spec.todos}
    return statuses(rt, spec, sorted(set(wave.todos) | preds))


def tally(rt: Runtime, spec: SweepSpec, k: int,
          st: dict[str, TodoStatus] | None = None) -> Tally:
    """Wave ``k`` now (``st``: its :func:`wave_statuses` if the caller read them)."""
    wave = spec.waves[k]
    st = statuses(rt, spec, wave.todos) if st is None else st
    in_run = spec.level_of()
    return Tally(ended=all(st[t] in TERMINAL for t in wave.todos),
                 succeeded=sum(1 for t in wave.todos if st[t] in SUCCESSFUL),
                 total=len(wave.todos), ran=any(t in in_run for t in wave.todos))


def top_up(rt: Runtime, spec: SweepSpec, k: int,
           st: dict[str, TodoStatus] | None = None) -> list[str]:
    """Send what wave ``k`` may start now: its pending todos whose predecessors all
    succeeded (levels strategy: of its first level with todos left), up to its cap
    (:func:`~coordination.sweeps.sending.send_todos` enforces it). ``st``: the
    wave's :func:`wave_statuses` if the caller read them."""
    wave = spec.waves[k]
    st = wave_statuses(rt, spec, k) if st is None else st
    level_of = spec.level_of()
    ready = [t for t in wave.todos if st[t] == TodoStatus.pending and t in level_of
             and all(st.get(p, TodoStatus.succeeded) in SUCCESSFUL
                     for p in spec.todos[t].preds if p in spec.todos)]
    if spec.strategy == Strategy.levels and ready:
        left = [level_of[t] for t in wave.todos if t in level_of and st[t] not in TERMINAL]
        first = min(left) if left else 0
        ready = [t for t in ready if level_of[t] == first]
    return send_todos(rt, spec, ready, reason=f"wave {wave.name}") if ready else []


def start_wave(rt: Runtime, spec: SweepSpec, k: int, *, reason: str,
               seen: tuple[int | None, str | None] | None = None) -> list[str]:
    """Make wave ``k`` current and send what it may start. ``seen``: where the caller
    saw the wave (moved only if it is still there); None: a run's start, whose record
    has no wave yet (a start's; a resume's clears it): made by the starter's
    :func:`~coordination.sweeps.steering.begin`, or by a supervision pass when the
    starter died first (:func:`advance`), once."""
    wave = spec.waves[k]
    fields: dict[str, object] = {"wave": k, "wave_state": RUNNING, "wave_until": None,
                                 "wave_reason": None}
    said = rt.events.prepare(EventKind.wave_started, sweep_id=spec.sweep_id, wave=wave.name,
                             index=k, waves=len(spec.waves), todos=len(wave.todos),
                             max_parallel=wave.max_parallel, reason=reason)
    if seen is None:  # (a new run: what an unpause accepted was the run before's)
        fields["waves_accepted"] = None
    if not rt.checkpoints.move_wave(spec.sweep_id, seen or (None, None), said, **fields):
        return []
    return top_up(rt, spec, k)


def advance(rt: Runtime, spec: SweepSpec, now: float, *, stop: Callable[[str], None]) -> None:
    """Move the sweep's current wave on as far as it may go now: top it up while it
    runs; once its todos ended, judge it (soak, next wave, or halt); end a soak that is
    over; start the next wave after a halt the user accepted (:func:`halt_to_accept`). A
    wave with nothing to run in this run (a resume) is done at once, without a soak.
    Each move is a compare-and-set: callers that race move a wave once. ``stop(why)``:
    stops an atomic sweep whose wave missed (the progression's, which rolls it back).
    Called after each todo (the progression's closing step) and by the supervision
    pass (soaks, lost sends)."""
    if not spec.waves or spec.mode != Mode.run:
        return
    for _ in range(len(spec.waves) + 1):
        if not _advance_wave(rt, spec, now, stop):
            return


def _advance_wave(rt: Runtime, spec: SweepSpec, now: float, stop: Callable[[str], None]) -> bool:
    """One move of :func:`advance`; True when it started the next wave."""
    rec = rt.checkpoints.get_sweep_fields(spec.sweep_id, (
        "run", "atomic", "wave", "wave_state", "wave_until", "wave_reason", "stopped_run"))
    if rec is None or rec.get("status") not in SWEEP_ACTIVE:
        return False
    if int(rec.get("run") or 0) != spec.run or rec.get("stopped_run") == spec.run:
        return False  # (stopped: it rolls back once its running todos ended)
    if rec.get("wave") is None:  # its starter died before its first wave: started here
        start_wave(rt, spec, 0, reason="resume" if spec.run else "start")
        return True  # (moved on from there: a first wave with nothing to run is done)
    k, state = int(rec.get("wave") or 0), str(rec.get("wave_state") or RUNNING)
    seen = (k, state)
    last = k == len(spec.waves) - 1
    wave = spec.waves[k]
    new: str | None = state
    if state == RUNNING:
        st = wave_statuses(rt, spec, k)  # (one read: the tally and the top-up)
        t = tally(rt, spec, k, st)
        if not t.ended:
            top_up(rt, spec, k, st)
            return False
        if t.rate + 1e-9 < wave.success_rate:
            halt_wave(rt, spec, k, t.verdict(wave.success_rate),
                      stop=stop if rec.get("atomic") else None)
            return False
        if wave.soak > 0 and t.ran and not last:
            until = now + wave.soak
            said = rt.events.prepare(EventKind.wave_soaking, sweep_id=spec.sweep_id,
                                     wave=wave.name, index=k, until=until, soak=wave.soak,
                                     succeeded=t.succeeded, todos=t.total)
            rt.checkpoints.move_wave(spec.sweep_id, seen, said, wave_state=SOAKING,
                                     wave_until=until)
            return False
        new = _wave_done(rt, spec, k, seen, succeeded=t.succeeded, todos=t.total)
    elif state == SOAKING:
        if now < float(rec.get("wave_until") or 0):
            return False
        new = _wave_done(rt, spec, k, seen)
    elif state == HALTED:
        # Halted on a sweep that runs: the halt's second write (the pause or the stop)
        # is not made yet, by a pass beside this one or one that died. Make it; never
        # start the next wave here (only an unpause accepts a halt: halt_to_accept).
        _halted(rt, spec, k, str(rec.get("wave_reason")
                                 or f"wave {wave.name} missed its criteria"),
                stop=stop if rec.get("atomic") else None)
        return False
    if new == DONE and not last:
        start_wave(rt, spec, k + 1, reason=f"wave {wave.name} done",
                         seen=(k, DONE))
        return True
    return False


def _wave_done(rt: Runtime, spec: SweepSpec, k: int, seen: tuple[int, str],
               **data: object) -> str | None:
    """Mark wave ``k`` done (from ``seen``) and say so in the same step; its new state,
    or None if another caller moved it first."""
    said = rt.events.prepare(EventKind.wave_done, sweep_id=spec.sweep_id, todo_id=None,
                             wave=spec.waves[k].name, index=k, **data)
    if not rt.checkpoints.move_wave(spec.sweep_id, seen, said, wave_state=DONE,
                                    wave_until=None):
        return None
    return DONE


def halt_wave(rt: Runtime, spec: SweepSpec, k: int, verdict: str, *,
              stop: Callable[[str], None] | None) -> None:
    """Wave ``k`` missed its criteria: halt the sweep (``paused`` with the reason), or,
    atomic (``stop`` given), stop it and roll it back. The last wave of a sweep that is
    not atomic halts nothing: the sweep ends."""
    wave = spec.waves[k]
    why = f"wave {wave.name} missed its criteria: {verdict}"
    last = k == len(spec.waves) - 1
    action = "rollback" if stop else ("none" if last else "pause")
    said = rt.events.prepare(EventKind.wave_halted, sweep_id=spec.sweep_id, todo_id=None,
                             wave=wave.name, index=k, reason=why, action=action)
    # Said with the wave's write; the sweep's pause or stop is a second write: a pass
    # that runs between them must finish the halt, never accept it
    # (tests/unit/sweeps/test_wave_halts.py runs one there).
    if not rt.checkpoints.move_wave(spec.sweep_id, (k, RUNNING), said, wave_state=HALTED,
                                    wave_reason=why):
        return
    log.warning("sweep %s: %s (%s)", spec.sweep_id, why, action)
    _halted(rt, spec, k, why, stop=stop)


def _halted(rt: Runtime, spec: SweepSpec, k: int, why: str, *,
            stop: Callable[[str], None] | None) -> None:
    """What a halt of wave ``k`` does to its sweep after the wave's state: stop it
    (atomic), or pause it (a wave before the last). Made by the halter and again by any
    pass that sees the wave halted on a sweep that runs; each is a compare-and-set
    (``stop`` stops a run once), so it is made once."""
    if stop is not None:
        stop(why)
    elif k < len(spec.waves) - 1:
        status = rt.checkpoints.sweep_status(spec.sweep_id)
        said = rt.events.prepare(EventKind.sweep_paused, sweep_id=spec.sweep_id, was=status,
                                 reason=why, wave=spec.waves[k].name)
        rt.checkpoints.set_sweep_status(spec.sweep_id, SweepStatus.paused, said,
                                        allowed_from=SWEEP_ACTIVE, paused_at=time.time(),
                                        paused_from=status, reason=why)


def halt_to_accept(rt: Runtime, spec: SweepSpec) -> tuple[int, dict[str, object]] | None:
    """The wave an unpause of the sweep accepts now, and the record's fields that say so:
    the wave that halted and paused it (None when none did; the last wave, or an atomic
    sweep's, paused nothing). The unpause writes them in the same compare-and-set that
    lets the sweep run, with the event that says so (:func:`say_accepted`): a pass that saw a wave
    halted on a running sweep would take the halt as not finished and pause it again.
    While the sweep is paused no pass moves its wave."""
    rec = rt.checkpoints.get_sweep_fields(spec.sweep_id, (
        "run", "atomic", "wave", "wave_state", "waves_accepted"))
    if (rec is None or rec.get("status") != SweepStatus.paused
            or rec.get("wave_state") != HALTED or rec.get("atomic")
            or int(rec.get("run") or 0) != spec.run):
        return None
    k = int(rec.get("wave") or 0)
    if k >= len(spec.waves) - 1:
        return None
    return k, {"wave_state": DONE, "wave_until": None,
               "waves_accepted": [*accepted_waves(rec), k]}


def say_accepted(rt: Runtime, spec: SweepSpec, k: int) -> Prepared:
    """Wave ``k``, accepted by an unpause, is done (``wave.done``, ``accepted``): the
    event, for the unpause's write to carry."""
    return rt.events.prepare(EventKind.wave_done, sweep_id=spec.sweep_id, todo_id=None,
                             wave=spec.waves[k].name, index=k, accepted=True)
