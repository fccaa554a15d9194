"""Sweeps: a plan's DAG run on the workers. One module per concept:

    spec.py         SweepSpec: the frozen per-run plan (commands, paths, edges, levels)
    spec_store.py   reading, caching and verifying a run's spec
    planning.py     freezing a spec from the catalog (a plan, one todo, a resume)
    sending.py      what may be sent now, and sending it
    progress.py     after a todo's state changes: the ordered steps, one entry
    rollback.py     sagas and atomic sweeps: what to undo, in which order
    lost.py         runs whose holder died, poison todos, lost messages
    supervision.py  the periodic pass only: what keeps a sweep moving when the fast path fails
    steering.py     start, pause, unpause, cancel, resume, rollback
    reading.py      the status and list documents
    waiting.py      following a sweep to its end
    recording.py    an ended run's retention and history
    service.py      SweepService: the thin facade the CLI, MCP and web view call

and the parts around the engine, in folders of their own:

    governance/     gates, votes, decisions, approvals, forge reviews, the freeze,
                    steering's audit log, who holds what
    notices/        webhook notifications, milestones, overdue todos
    runlogs/        a todo's output kept and read (attempt_log, logs, masking)
    starts/         triggers and schedules
    writeback/      a sweep's outcome into the catalog (sync, sealed outcomes, catch-up)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coordination.lazy import lazy_exports

if TYPE_CHECKING:
    from coordination.sweeps.reading import RECENT, iso
    from coordination.sweeps.service import TERMINAL, SweepService, sweep_deadline, unattended
    from coordination.sweeps.spec import STRATEGIES
    from coordination.sweeps.waiting import ended_by, over

# Loaded on first use: importing one submodule (``sweeps.reading`` for ``sweep status``)
# runs this file first, and the facade would pull in every other module with it.
__getattr__, __dir__ = lazy_exports(__name__, {
    "RECENT": "reading", "iso": "reading", "TERMINAL": "service",
    "SweepService": "service", "sweep_deadline": "service", "unattended": "service",
    "STRATEGIES": "spec", "ended_by": "waiting", "over": "waiting"})


def new_sweep_id(plan_id: str) -> str:
    """A new sweep's id (see :func:`coordination.sweeps.planning.new_sweep_id`)."""
    # lazy: the planner, needed only to start, not to read
    from coordination.sweeps.planning import new_sweep_id as make

    return make(plan_id)

__all__ = ["RECENT", "STRATEGIES", "TERMINAL", "SweepService", "ended_by", "iso", "new_sweep_id",
           "over", "sweep_deadline", "unattended"]
