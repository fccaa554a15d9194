"""The process running an embedded sweep, recorded with the sweep (its ``runner``
field): host, pid and the process's start time, so a later process can tell that it
ended (SIGKILL, OOM, a reboot) without a chance of taking a reused pid for it.

An embedded sweep runs on the workers of the CLI that started (or resumed, or
adopted) it; when that process is gone the sweep stays ``running`` with nobody to run
it. ``coord sweep status`` then says it is orphaned, and ``coord sweep resume`` adopts
it (:func:`adopt`: a compare-and-set on the field, so two adopters never both run it).

Only a process on this host can be judged: one on another host (a catalog on a shared
disk) is never taken for gone, and neither is a sweep recorded before 0.4 (no runner).
"""

from __future__ import annotations

from coordination.processes import Runner, ended, start_time, this_process
from coordination.runtime.context import Runtime
from coordination.runtime.sweep_fields import SweepRecord
from coordination.status import SWEEP_LIVE

__all__ = ["Runner", "adopt", "ended", "orphaned", "record", "start_time", "this_process"]


def orphaned(rec: SweepRecord, embedded: bool) -> str | None:
    """Why a live embedded sweep has nobody running it, or None."""
    if not embedded or rec.get("status") not in SWEEP_LIVE:
        return None
    return ended(rec.get("runner"))


def record(rt: Runtime, sweep_id: str) -> None:
    """This process runs ``sweep_id`` now (embedded: its workers)."""
    rt.checkpoints.update_sweep(sweep_id, runner=this_process())


def adopt(rt: Runtime, rec: SweepRecord) -> bool:
    """Take over an orphaned sweep: its runner becomes this process if it is still the
    one found gone (False: another process adopted it first)."""
    return rt.checkpoints.swap_sweep_field(rec.get("id", ""), "runner", rec.get("runner"),
                                           this_process())
