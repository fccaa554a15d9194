"""An error in coord's own code is never "its worker died" (issue #39 items 1 and 16).

0.3 let any Redis error escape the worker's task (``except redis.RedisError: raise``):
OOM, NOPERM or a script's error left the todo ``running`` until its lease expired, the
supervisor counted a lost run, and the third time failed it "as poison: its worker
died 3 times while running it". Only Redis out of reach (a connection error, a
timeout, READONLY) is left to the lease's expiry; anything else ends the todo failed
naming the error and where coord raised it, with no lost run counted. The same holds
for an exception after the start script recorded the start but before the worker got
its turn (outside the runner's try)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis

from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from coordination.sweeps import turns as turns_mod
from coordination.sweeps.supervision import supervise_once
from tests.unit.support.sweeps import PLAN, counting, runs, write_catalog
from workers import runner as runner_mod
from workers.runner import Outcome, WorkerInfo, run_todo

pytestmark = [pytest.mark.timeout(60), pytest.mark.rt(stub=True)]

W = WorkerInfo(repo=None, name="test-worker")
OOM = "OOM command not allowed when used memory > 'maxmemory'."


def _sweep(rt: Runtime, tmp_path: Path, run: str = "true") -> str:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": run},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]}])
    return SweepService(rt, cat).start(PLAN, ignore_blockers=True)


def _failed_honestly(rt: Runtime, sid: str, error: str) -> dict[str, Any]:
    """TODO-001 failed naming ``error``, no lost run, its slot free, and the sweep
    carried on (TODO-002 skipped, the sweep failed); the supervisor finds nothing lost."""
    supervise_once(rt, sid, grace=0)
    cp = dict(rt.checkpoints.get(sid, "TODO-001") or {})
    assert cp.get("status") == "failed", cp
    assert str(cp.get("reason")).startswith(f"coord error: {error}"), cp
    assert "died" not in str(cp.get("reason")) and "poison" not in str(cp.get("reason"))
    assert not cp.get("lost_runs"), cp
    assert rt.redis.keys(rt.keys.lease("api", 0)) == []
    assert (rt.checkpoints.get(sid, "TODO-002") or {}).get("status") == "skipped"
    assert rt.checkpoints.sweep_status(sid) == "failed"
    kinds = [e.kind for e in rt.events.read(sweep_id=sid) if e.todo_id == "TODO-001"]
    assert "todo.lost" not in kinds and "todo.failed" in kinds, kinds
    return cp


def test_a_redis_error_answer_while_running_fails_the_todo_naming_it(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = _sweep(rt, tmp_path)

    def oom(*_a: Any, **_kw: Any) -> Any:
        raise redis.ResponseError(OOM)

    monkeypatch.setattr(runner_mod, "run_command", oom)
    outcome, detail = run_todo(rt, sid, "TODO-001", W)
    assert outcome is Outcome.done and detail["status"] == "failed", detail
    cp = _failed_honestly(rt, sid, f"ResponseError: {OOM} in workers/runner.py:")
    assert "(_execute)" in str(cp["reason"]), cp


def test_redis_out_of_reach_is_still_left_to_the_lease(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection error is an outage, not an answer: the delivery gives up, the todo
    stays running for the supervisor to find lost and send again (nothing recorded)."""
    sid = _sweep(rt, tmp_path)

    def cut(*_a: Any, **_kw: Any) -> Any:
        raise redis.ConnectionError("Connection reset by peer")

    monkeypatch.setattr(runner_mod, "run_command", cut)
    with pytest.raises(redis.ConnectionError):
        run_todo(rt, sid, "TODO-001", W)
    cp = rt.checkpoints.get(sid, "TODO-001") or {}
    assert cp.get("status") == "running" and not cp.get("reason"), cp


def test_an_exception_after_the_start_is_recorded_fails_the_todo(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The start script granted the lease and recorded the start; coord raised before the
    worker had its turn (outside the runner's try). The start is given back (its slot
    freed at once) and the todo ends failed, never left running to be found lost."""
    counts = tmp_path / "counts"
    counts.mkdir()
    sid = _sweep(rt, tmp_path, counting(counts, "TODO-001"))

    def broken(*_a: Any, **_kw: Any) -> Any:
        raise KeyError("a bug between the start and the turn")

    monkeypatch.setattr(turns_mod, "Turn", broken)
    outcome, detail = run_todo(rt, sid, "TODO-001", W)
    assert outcome is Outcome.done and detail["status"] == "failed", detail
    cp = _failed_honestly(rt, sid, "KeyError: 'a bug between the start and the turn' in "
                                   "coordination/sweeps/turns.py:")
    assert runs(counts, "TODO-001") == 0  # nothing ran


def test_a_start_scripts_error_fails_the_todo(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The start script itself answered an error (NOPERM here): the todo, still queued,
    ends failed naming it rather than waiting to be found with its message lost."""
    sid = _sweep(rt, tmp_path)

    def noperm(*_a: Any, **_kw: Any) -> Any:
        raise redis.exceptions.NoPermissionError(
            "this user has no permissions to run the 'evalsha' command")

    monkeypatch.setattr(rt.transitions, "start", noperm)
    outcome, detail = run_todo(rt, sid, "TODO-001", W)
    assert outcome is Outcome.done and detail["status"] == "failed", detail
    _failed_honestly(rt, sid, "NoPermissionError: this user has no permissions")
