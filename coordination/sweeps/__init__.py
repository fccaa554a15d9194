"""Sweeps: a plan's DAG run on the workers.

    spec.py        SweepSpec: the frozen per-sweep plan (commands, paths, edges, levels)
    supervisor.py  what keeps a sweep moving: dispatch, skip, level advance, finish,
                   re-send lost todos, deadlines (idempotent; any process may run it)
    service.py     SweepService: start / status / list / wait / resume / pause / cancel / sync
"""

from __future__ import annotations

from coordination.sweeps.service import (
    STRATEGIES,
    TERMINAL,
    SweepService,
    ended_by,
    iso,
    new_sweep_id,
    sweep_deadline,
    unattended,
)

__all__ = ["STRATEGIES", "TERMINAL", "SweepService", "ended_by", "iso", "new_sweep_id",
           "sweep_deadline", "unattended"]
