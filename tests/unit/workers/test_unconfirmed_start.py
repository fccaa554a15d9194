"""A start no replica confirmed while a lease lives (issue #39 item 16): the worker
gives it back instead of leaving its lease to expire. 0.3 let the lease expire and
the supervisor count a lost run for a todo that never ran: two of those (with
COORD_MAX_LOST_RUNS=3) and a third failed it "as poison": "its worker died 3 times
while running it", though no worker died and nothing ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coordination.connection.client import NotReplicated
from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from coordination.sweeps.supervision import supervise_once
from tests.unit.support.sweeps import PLAN, counting, write_catalog
from workers.runner import Outcome, WorkerInfo, run_todo

# the start's patience: a lease's life
pytestmark = [pytest.mark.timeout(60), pytest.mark.rt(stub=True, env={"COORD_LEASE_TTL": "1"})]

W = WorkerInfo(repo=None, name="test-worker")


def test_an_unconfirmed_start_is_given_back_and_never_counted_lost(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = tmp_path / "counts"
    counts.mkdir()
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": counting(counts, "TODO-001", "true")}])
    sid = SweepService(rt, cat).start(PLAN, ignore_blockers=True)
    real = rt.transitions._start  # one call of the start script
    calls: list[str] = []

    def unconfirmed(*a: Any, **kw: Any) -> Any:
        st = real(*a, **kw)  # recorded on the master...
        calls.append(str(st.verdict))
        raise NotReplicated("no replica confirmed the start of TODO-001 within 75 ms")

    monkeypatch.setattr(rt.transitions, "_start", unconfirmed)
    outcome, detail = run_todo(rt, sid, "TODO-001", W)
    assert outcome is Outcome.unconfirmed, (outcome, detail)
    assert "not confirmed by a replica" in str(detail["reason"])
    assert calls and calls[0] == "started"
    cp = rt.checkpoints.get(sid, "TODO-001") or {}
    assert cp.get("status") == "queued", cp
    assert not cp.get("lost_runs") and not cp.get("attempts") and not cp.get("lease_key"), cp
    assert not list(counts.iterdir())  # nothing ran
    assert rt.redis.keys(rt.keys.lease("api", 0)) == []  # its slot is free at once
    # The lease is gone already (as it would be once expired): the supervisor finds
    # nothing lost.
    supervise_once(rt, sid, grace=0)
    cp = rt.checkpoints.get(sid, "TODO-001") or {}
    assert cp.get("status") == "queued" and not cp.get("lost_runs"), cp
    kinds = [e.kind for e in rt.events.read(sweep_id=sid) if e.todo_id == "TODO-001"]
    assert "todo.lost" not in kinds, kinds
    # Confirmed again: it runs, once.
    monkeypatch.setattr(rt.transitions, "_start", real)
    outcome, _ = run_todo(rt, sid, "TODO-001", W)
    assert outcome is Outcome.done
    cp = rt.checkpoints.get(sid, "TODO-001") or {}
    assert cp.get("status") == "succeeded" and cp.get("attempts") == 1, cp
    assert not cp.get("lost_runs"), cp


def test_an_exception_in_the_workers_code_fails_the_todo_saying_so(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """0.3 let it escape with the lease given back: the supervisor then found the run
    lost and, the third time, failed it "as poison: its worker died 3 times"."""
    import workers.runner as runner_mod

    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    sid = SweepService(rt, cat).start(PLAN, ignore_blockers=True)

    def broken(*_a: Any, **_kw: Any) -> Any:
        raise RuntimeError("boom in coord's code")

    monkeypatch.setattr(runner_mod, "run_command", broken)
    outcome, detail = run_todo(rt, sid, "TODO-001", W)
    assert outcome is Outcome.done and detail["status"] == "failed", detail
    cp = rt.checkpoints.get(sid, "TODO-001") or {}
    assert cp.get("status") == "failed" and not cp.get("lost_runs"), cp
    assert str(cp.get("reason")).startswith(
        "coord error: RuntimeError: boom in coord's code in workers/runner.py:"), cp
    assert "died" not in str(cp.get("reason"))
    assert rt.redis.keys(rt.keys.lease("api", 0)) == []
