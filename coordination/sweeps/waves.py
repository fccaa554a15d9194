"""Waves: a plan's todos rolled out one part at a time (``waves:`` in the catalog).

A sweep of a plan with waves sends only its current wave's todos (:mod:`.sending`),
at most ``max_parallel`` at once. When every todo of the wave has ended, the wave
is judged: its success rate (todos succeeded / todos of the wave) must reach its
``require.success_rate``. Met: it soaks for ``soak`` seconds (the supervision pass
ends the soak), then the next wave starts. Missed: the sweep halts (``paused``,
the reason in its record; ``sweep unpause`` lets the next wave go) or, atomic, rolls
back. What moves a wave on is in :mod:`.progress` (:class:`AdvanceWaves`); here are
the parts that only read and send.

The wave's place lives in the sweep record (``wave``, ``wave_state``: running,
soaking, halted, done; ``wave_until``; ``wave_reason``), moved by compare-and-set
(``CheckpointStore.move_wave``), so each wave is started, soaked and ended once
however many processes see it end. Events: ``wave.started``, ``wave.soaking``,
``wave.done``, ``wave.halted``.
"""

from __future__ import annotations

from dataclasses import dataclass

from coordination.runtime.context import Runtime
from coordination.status import SUCCESSFUL, TERMINAL, EventKind, TodoStatus, todo_status
from coordination.sweeps.reading import DONE, HALTED, RUNNING, SOAKING
from coordination.sweeps.sending import send_todos
from coordination.sweeps.spec import SweepSpec

__all__ = ["DONE", "HALTED", "RUNNING", "SOAKING", "Tally", "start_wave", "tally", "top_up"]


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


def tally(rt: Runtime, spec: SweepSpec, k: int) -> Tally:
    wave = spec.waves[k]
    st = statuses(rt, spec, wave.todos)
    in_run = spec.level_of()
    return Tally(ended=all(s in TERMINAL for s in st.values()),
                 succeeded=sum(1 for s in st.values() if s in SUCCESSFUL),
                 total=len(wave.todos), ran=any(t in in_run for t in wave.todos))


def top_up(rt: Runtime, spec: SweepSpec, k: int) -> list[str]:
    """Send what wave ``k`` may start now: its pending todos whose predecessors all
    succeeded (levels strategy: of its first level with todos left), up to its cap
    (:func:`~coordination.sweeps.sending.send_todos` enforces it)."""
    wave = spec.waves[k]
    preds = {p for t in wave.todos for p in spec.todos[t].preds if p in spec.todos}
    st = statuses(rt, spec, sorted(set(wave.todos) | preds))
    level_of = spec.level_of()
    ready = [t for t in wave.todos if st[t] == TodoStatus.pending and t in level_of
             and all(st.get(p, TodoStatus.succeeded) in SUCCESSFUL
                     for p in spec.todos[t].preds if p in spec.todos)]
    if spec.strategy == "levels" and ready:
        left = [level_of[t] for t in wave.todos if t in level_of and st[t] not in TERMINAL]
        first = min(left) if left else 0
        ready = [t for t in ready if level_of[t] == first]
    return send_todos(rt, spec, ready, reason=f"wave {wave.name}") if ready else []


def start_wave(rt: Runtime, spec: SweepSpec, k: int, *, reason: str,
               seen: tuple[int | None, str | None] | None = None) -> list[str]:
    """Make wave ``k`` current and send what it may start. ``seen``: where the caller
    saw the wave (moved only if it is still there); None: a run's start (its one
    caller sets it)."""
    wave = spec.waves[k]
    fields: dict[str, object] = {"wave": k, "wave_state": RUNNING, "wave_until": None,
                                 "wave_reason": None}
    if seen is None:
        rt.checkpoints.update_sweep(spec.sweep_id, **fields)
    elif not rt.checkpoints.move_wave(spec.sweep_id, seen, **fields):
        return []
    rt.events.emit(EventKind.wave_started, sweep_id=spec.sweep_id, wave=wave.name, index=k,
                   waves=len(spec.waves), todos=len(wave.todos),
                   max_parallel=wave.max_parallel, reason=reason)
    return top_up(rt, spec, k)
