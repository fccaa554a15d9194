"""Retention of ended sweeps, the parts that must not hurt a sweep that runs again.

- The supervisor lock is a sub-second ``SET NX PX`` lock: making it live for the
  retention period (and PERSISTing it on resume) would leave a resumed sweep with
  no supervisor pass ever again (no lost todo re-sent, no deadline enforced).
- The ``sweeps`` index is trimmed by score when a sweep ends; a sweep that runs
  again (resume) must not be trimmed away while its record lives.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coordination.runtime.context import Runtime
from coordination.sweeps.supervision import supervise_once
from coordination.sweeps import SweepService
from tests.unit.support.sweeps import PLAN, write_catalog

pytestmark = [pytest.mark.timeout(60), pytest.mark.rt(stub=True)]

DAY = 86400.0


def one_todo_sweep(rt: Runtime, tmp_path: Path) -> tuple[SweepService, str]:
    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    svc = SweepService(rt, cat)
    return svc, svc.start(PLAN, ignore_blockers=True)


def fail_todo(rt: Runtime, sid: str) -> None:
    assert rt.checkpoints.set_status_if(sid, "TODO-001", "failed", {"pending", "queued"},
                                        finished_at=time.time(), reason="exit 1")
    rt.checkpoints.count_terminal(sid)


def test_a_sweep_ended_by_the_supervisor_is_supervised_again_after_resume(
    rt: Runtime, tmp_path: Path
) -> None:
    svc, sid = one_todo_sweep(rt, tmp_path)
    fail_todo(rt, sid)
    # The supervisor pass holds its lock while it finishes the sweep (and sets the TTLs).
    supervise_once(rt, sid)
    assert rt.checkpoints.get_sweep(sid)["status"] == "failed"
    lock = rt.keys.supervisor_lock(sid)
    # The lock keeps its own sub-second TTL: never the retention period.
    assert rt.redis.pttl(lock) <= rt.settings.supervise_interval * 1000, rt.redis.pttl(lock)
    assert rt.redis.ttl(rt.keys.sweep(sid)) > DAY  # while the record is kept for retention

    svc.resume(sid)
    assert rt.redis.pttl(lock) != -1, "resume made the supervisor lock permanent"
    # A supervisor pass works on the resumed sweep: past its deadline, it ends it.
    # (resume cleared the lock the finishing pass held a moment ago: supervised at once)
    rt.checkpoints.update_sweep(sid, deadline=time.time() - 1)
    supervise_once(rt, sid)
    rec = rt.checkpoints.get_sweep(sid)
    assert rec["status"] == "failed" and "deadline" in rec["reason"], rec


def test_resume_made_permanent_lock_would_block_supervision(rt: Runtime, tmp_path: Path) -> None:
    """The same, with a lock another process's pass holds at the moment the sweep ends."""
    svc, sid = one_todo_sweep(rt, tmp_path)
    fail_todo(rt, sid)
    lock = rt.keys.supervisor_lock(sid)
    assert rt.redis.set(lock, "1", nx=True, px=900)  # another worker's pass, in flight
    from coordination.sweeps.progress import finish_if_done as maybe_finish

    assert maybe_finish(rt, sid) == "failed"
    assert 0 < rt.redis.pttl(lock) <= 900
    svc.resume(sid)
    assert rt.redis.pttl(lock) != -1
    assert rt.redis.pttl(lock) <= 900


def test_index_keeps_sweeps_whose_record_may_still_live(rt: Runtime, tmp_path: Path) -> None:
    """Trimmed when a sweep ends: entries older than retention + the longest sweep,
    and only those. A resumed sweep counts from its resume."""
    svc, sid = one_todo_sweep(rt, tmp_path)
    retention = rt.settings.retention_days * DAY
    longest = rt.settings.sweep_deadline
    now = time.time()
    # Three old entries (records already gone) around the cut-off.
    rt.redis.zadd(rt.keys.sweeps, {
        "ancient": now - retention - longest - 3600,
        "just-ended": now - retention + 3600,  # its record may well still be there
        "long-sweep": now - retention - longest / 2,  # ran up to its deadline, ended later
    })
    fail_todo(rt, sid)
    supervise_once(rt, sid)
    left = set(rt.redis.zrange(rt.keys.sweeps, 0, -1))
    assert "ancient" not in left
    assert {"just-ended", "long-sweep", sid} <= left

    # A sweep created long ago but resumed now is scored by its resume: the next
    # trim (any sweep ending) cannot drop it while it runs or is kept.
    rt.redis.zadd(rt.keys.sweeps, {sid: now - retention - longest - 60})
    svc.resume(sid)
    assert rt.redis.zscore(rt.keys.sweeps, sid) >= now
