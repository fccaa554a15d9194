"""Sweeps: a plan's DAG run on the workers.

    spec.py        SweepSpec: the frozen per-sweep plan (commands, paths, edges, levels)
    supervisor.py  what keeps a sweep moving: dispatch, skip, level advance, finish,
                   re-send lost todos, deadlines (idempotent; any process may run it)
    service.py     SweepService: start / status / list / wait / resume / pause / cancel / sync
    recording.py   an ended run's history (and, embedded, its keys beside the catalog)
"""

from __future__ import annotations

from coordination.sweeps.service import (
    RECENT,
    STRATEGIES,
    TERMINAL,
    SweepService,
    ended_by,
    iso,
    new_sweep_id,
    sweep_deadline,
    unattended,
)

__all__ = ["RECENT", "STRATEGIES", "TERMINAL", "SweepService", "ended_by", "iso", "new_sweep_id",
           "sweep_deadline", "unattended"]
