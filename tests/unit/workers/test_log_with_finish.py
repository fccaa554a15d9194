"""A todo's last attempt's log end goes to Redis in the round trip of its finish
(issue #82: one round trip fewer between a command's end and its outcome), and the
faster path loses nothing: the end is written however the turn ends (finished, its
fence stale, its finish raising), and a finish tried again does not append it twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
from redis.client import Pipeline

from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from tests.unit.support.sweeps import PLAN, write_catalog
from workers.runner import Outcome, WorkerInfo, run_todo

pytestmark = [pytest.mark.timeout(120), pytest.mark.rt(stub=True)]

W = WorkerInfo(repo=None, name="test-worker")


def sweep(rt: Runtime, tmp_path: Path, run: str, **extra: Any) -> str:
    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": run,
                                            **extra}], repos=("api",))
    return SweepService(rt, cat).start(PLAN, ignore_blockers=True)


def ended(rt: Runtime, sid: str) -> list[dict[str, Any]]:
    """The attempts' records of TODO-001 and whether each one's stream has its end."""
    store = rt.logs()
    out = []
    for rec in store.attempts(sid, "TODO-001"):
        page = store.read(sid, "TODO-001", int(rec["attempt"]))
        out.append({**rec, "end_entry": page.end is not None,
                    "text": "".join(c.text for c in page.chunks)})
    return out


@pytest.fixture
def pipelines(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The command names of every pipeline sent, in order."""
    sent: list[list[str]] = []
    real = Pipeline.execute

    def execute(self: Pipeline, raise_on_error: bool = True) -> Any:
        sent.append([str(c[0][0]).upper() for c in self.command_stack])
        return real(self, raise_on_error)

    monkeypatch.setattr(Pipeline, "execute", execute)
    return sent


def test_the_log_end_and_the_outcome_go_in_one_round_trip(
        rt: Runtime, tmp_path: Path, pipelines: list[list[str]]) -> None:
    sid = sweep(rt, tmp_path, "echo hello")
    assert run_todo(rt, sid, "TODO-001", W)[0] is Outcome.done
    together = [p for p in pipelines if "EVALSHA" in p and "XADD" in p]
    assert len(together) == 1, pipelines
    assert together[0].index("XADD") < together[0].index("EVALSHA")  # the log end first
    alone = [p for p in pipelines if "XADD" in p and "EVALSHA" not in p]
    assert alone == [], f"the attempt's log was written apart from its finish: {pipelines}"
    [rec] = ended(rt, sid)
    assert rec["outcome"] == "exited" and rec["exit_code"] == 0 and rec["end_entry"]
    assert "hello" in rec["text"]
    assert (rt.checkpoints.get(sid, "TODO-001") or {})["status"] == "succeeded"


def test_a_failed_todo_with_retries_has_every_attempt_ended(
        rt: Runtime, tmp_path: Path, pipelines: list[list[str]]) -> None:
    sid = sweep(rt, tmp_path, "echo nope; exit 3", retries=1)
    run_todo(rt, sid, "TODO-001", W)
    recs = ended(rt, sid)
    assert [r["attempt"] for r in recs] == [1, 2]
    assert all(r["end_entry"] and r["exit_code"] == 3 for r in recs), recs
    # the first attempt's end is written when it ends (a retry follows), the last one's
    # with the outcome
    assert sum(1 for p in pipelines if "EVALSHA" in p and "XADD" in p) == 1


def test_a_finish_that_raises_still_leaves_the_log_ended(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sid = sweep(rt, tmp_path, "echo hello")
    from coordination.sweeps import turns

    real = turns.finish_run
    calls: list[bool] = []

    def refused(*a: Any, **k: Any) -> Any:
        calls.append(k.get("before") is not None)
        if len(calls) == 1:  # the outcome's write refused; the failure's (after) is not
            raise redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'")
        return real(*a, **k)

    monkeypatch.setattr(turns, "finish_run", refused)
    outcome, detail = run_todo(rt, sid, "TODO-001", W)
    assert calls[0], "the first finish did not carry the log end"
    assert outcome is Outcome.done and detail["status"] == "failed"  # said by coord
    [rec] = ended(rt, sid)
    assert rec["end_entry"] and rec["outcome"] == "exited"


def test_a_finish_tried_again_appends_the_log_end_once(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first try's connection drops after the pipeline was sent: the try after it
    sends the script alone."""
    sid = sweep(rt, tmp_path, "echo hello")
    real = Pipeline.execute
    dropped: list[bool] = []

    def execute(self: Pipeline, raise_on_error: bool = True) -> Any:
        names = [str(c[0][0]).upper() for c in self.command_stack]
        out = real(self, raise_on_error)
        if "EVALSHA" in names and not dropped:
            dropped.append(True)
            # the script ran, its answer lost: the finish is asked again
            raise redis.ConnectionError("Connection reset by peer (in the test)")
        return out

    monkeypatch.setattr(Pipeline, "execute", execute)
    outcome, _ = run_todo(rt, sid, "TODO-001", W)
    assert dropped and outcome is Outcome.done
    store = rt.logs()
    rows = store.r.xrange(rt.keys.attempt_log(sid, "TODO-001", 1))
    assert sum(1 for _id, f in rows if "end" in f) == 1, rows
    assert (rt.checkpoints.get(sid, "TODO-001") or {})["status"] == "succeeded"
