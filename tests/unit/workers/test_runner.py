"""workers.runner.run_todo on the embedded server, without Celery.

The runner is what a todo task does; these tests call it directly, as a
duplicate or early delivery would, and check that nothing runs twice and that
an overtaken holder writes nothing.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from coordination.runtime.context import Runtime
from coordination.runtime.transitions import Started
from coordination.sweeps import SweepService
from tests.unit.support.sweeps import PLAN, counting, runs, write_catalog
from tests.waiting import wait_for
from workers.runner import Outcome, WorkerInfo, run_todo

# Short leases so a lost lease is noticed within a second.
pytestmark = [pytest.mark.timeout(120), pytest.mark.rt(stub=True, env={"COORD_LEASE_TTL": "1"})]

W = WorkerInfo(repo=None, name="test-worker")


def test_the_short_leases_beat_within_half_a_second(rt: Runtime) -> None:
    """What every test here leans on (COORD_LEASE_TTL=1 above)."""
    assert rt.settings.heartbeat_interval < 0.5


@pytest.fixture
def counts(tmp_path: Path) -> Path:
    d = tmp_path / "counts"
    d.mkdir()
    return d


def sweep(rt: Runtime, tmp_path: Path, todos: list[dict[str, Any]], *,
          repos: tuple[str, ...] = ("api", "web"), strategy: str = "levels") -> str:
    cat = write_catalog(tmp_path / "eco", todos, repos=repos)
    return SweepService(rt, cat).start(PLAN, strategy=strategy, ignore_blockers=True)


def cp(rt: Runtime, sid: str, tid: str) -> dict[str, Any]:
    return rt.checkpoints.get(sid, tid) or {}


def kinds(rt: Runtime, sid: str, tid: str) -> list[str]:
    return [e.kind for e in rt.events.read(sweep_id=sid) if e.todo_id == tid]


def take(rt: Runtime, sid: str, tid: str, worker: str) -> Started:
    """Another delivery of ``tid`` on ``worker``, started as workers start it."""
    st = rt.transitions.start(sid, tid, repo="api", concurrency=1, preds=[], worker=worker,
                              now=time.time())
    assert st.verdict == "started" and st.lease is not None, st
    return st


def test_runs_records_and_finishes(rt: Runtime, tmp_path: Path, counts: Path) -> None:
    sid = sweep(rt, tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": counting(counts, "TODO-001", "echo hello $COORD_TODO_ID")},
    ])
    outcome, detail = run_todo(rt, sid, "TODO-001", W)
    assert outcome is Outcome.done and detail == {"status": "succeeded", "exit_code": 0}
    c = cp(rt, sid, "TODO-001")
    assert c["status"] == "succeeded" and c["attempts"] == 1 and c["worker"] == "test-worker"
    assert "hello TODO-001" in c["output_tail"]
    assert (rt.checkpoints.get_sweep(sid) or {})["status"] == "succeeded"
    assert rt.leases.holders("api", 1) == [None]  # released
    assert runs(counts, "TODO-001") == 1


def test_duplicate_delivery_of_a_terminal_todo_does_not_run(
    rt: Runtime, tmp_path: Path, counts: Path
) -> None:
    sid = sweep(rt, tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": counting(counts, "TODO-001")},
        {"id": "TODO-002", "repo": "api", "run": "true"},
    ])
    assert run_todo(rt, sid, "TODO-001", W)[0] is Outcome.done
    before = cp(rt, sid, "TODO-001")
    outcome, detail = run_todo(rt, sid, "TODO-001", W)
    assert outcome is Outcome.duplicate and detail == {"status": "succeeded"}
    assert runs(counts, "TODO-001") == 1 and cp(rt, sid, "TODO-001") == before
    assert kinds(rt, sid, "TODO-001").count("todo.started") == 1


def test_delivery_while_a_live_holder_runs_it_is_a_duplicate(
    rt: Runtime, tmp_path: Path, counts: Path
) -> None:
    # concurrency 2, so the second delivery gets a lease and reaches the claim.
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": counting(counts, "TODO-001", "sleep 2")},
    ], repos=("api",))
    text = cat.read_text().replace("path: repos/api", "path: repos/api\n  concurrency: 2")
    cat.write_text(text)
    sid = SweepService(rt, cat).start(PLAN, ignore_blockers=True)
    first: list[Any] = []
    t = threading.Thread(target=lambda: first.append(run_todo(rt, sid, "TODO-001", W)))
    t.start()
    wait_for(lambda: cp(rt, sid, "TODO-001").get("status") == "running", what="first holder")
    outcome, detail = run_todo(rt, sid, "TODO-001", W)
    assert outcome is Outcome.duplicate and detail == {"claim": "busy"}
    t.join(30)
    assert first[0][0] is Outcome.done
    assert runs(counts, "TODO-001") == 1 and cp(rt, sid, "TODO-001")["attempts"] == 1


def test_premature_delivery_does_not_run(rt: Runtime, tmp_path: Path, counts: Path) -> None:
    sid = sweep(rt, tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": counting(counts, "TODO-002"),
         "blocked_by": ["TODO-001"]},
    ])
    before = cp(rt, sid, "TODO-002")
    outcome, detail = run_todo(rt, sid, "TODO-002", W)
    assert outcome is Outcome.premature and detail == {"waiting_for": ["TODO-001"]}
    assert runs(counts, "TODO-002") == 0 and cp(rt, sid, "TODO-002") == before
    assert rt.leases.holders("web", 1) == [None]  # no lease was taken


def test_delivery_after_a_failed_pred_records_skipped(rt: Runtime, tmp_path: Path, counts: Path) -> None:
    sid = sweep(rt, tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "exit 2"},
        {"id": "TODO-002", "repo": "web", "run": counting(counts, "TODO-002"),
         "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "api", "run": "true"},  # keeps the sweep going
    ])
    assert run_todo(rt, sid, "TODO-001", W) == (Outcome.done, {"status": "failed", "exit_code": 2})
    assert cp(rt, sid, "TODO-002")["status"] == "skipped"  # by the failing todo's runner
    # Had that skip been missed, the dependent's own delivery records it without running.
    rt.checkpoints.set_fields(sid, "TODO-002", status="queued", reason=None)
    assert run_todo(rt, sid, "TODO-002", W) == (Outcome.done, {"status": "skipped"})
    assert cp(rt, sid, "TODO-002")["reason"] == "TODO-001 failed"
    assert run_todo(rt, sid, "TODO-002", W)[0] is Outcome.duplicate
    assert runs(counts, "TODO-002") == 0
    assert run_todo(rt, sid, "TODO-003", W)[0] is Outcome.done
    rec = rt.checkpoints.get_sweep(sid) or {}
    assert rec["status"] == "failed" and "TODO-001 failed (exit 2)" in rec["reason"]
    assert run_todo(rt, sid, "TODO-002", W)[0] is Outcome.gone  # the sweep is over


def test_unknown_or_ended_sweep_is_gone(rt: Runtime, tmp_path: Path, counts: Path) -> None:
    sid = sweep(rt, tmp_path, [{"id": "TODO-001", "repo": "api", "run": counting(counts, "TODO-001")}])
    assert run_todo(rt, "PLAN-001-nope", "TODO-001", W)[0] is Outcome.gone
    assert run_todo(rt, sid, "TODO-999", W)[0] is Outcome.gone
    rt.checkpoints.set_sweep_status(sid, "cancelled")
    assert run_todo(rt, sid, "TODO-001", W)[0] is Outcome.gone
    assert runs(counts, "TODO-001") == 0


def test_eager_success_dispatches_successors(rt: Runtime, tmp_path: Path) -> None:
    sid = sweep(rt, tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "run": "true", "blocked_by": ["TODO-001", "TODO-002"]},
    ], strategy="eager")
    assert rt.app.todos_sent() == ["TODO-001"]
    run_todo(rt, sid, "TODO-001", W)
    assert rt.app.todos_sent() == ["TODO-001", "TODO-002"]  # TODO-003 still waits for TODO-002
    run_todo(rt, sid, "TODO-002", W)
    assert rt.app.todos_sent() == ["TODO-001", "TODO-002", "TODO-003"]


# -- fencing -----------------------------------------------------------------------------
def test_stale_fence_write_is_refused(rt: Runtime, tmp_path: Path) -> None:
    sid = sweep(rt, tmp_path, [{"id": "TODO-001", "repo": "api", "run": "true"}])
    first = take(rt, sid, "TODO-001", "a")
    assert not first.taken_over and first.lease is not None
    old = first.lease
    assert rt.checkpoints.write(sid, "TODO-001", {"attempts": 1}, lease=old)
    rt.redis.delete(old.key)  # old holder froze past its TTL
    second = take(rt, sid, "TODO-001", "b")
    assert second.taken_over and second.lease is not None
    new = second.lease
    assert new.fence > old.fence
    assert not rt.checkpoints.write(sid, "TODO-001", {"status": "failed"}, lease=old)
    c = cp(rt, sid, "TODO-001")
    assert c["status"] == "running" and c["token"] == new.token and c["fence"] == new.fence
    # Even if the old holder got its slot back, its fence is older than the stored one.
    rt.leases.release(new)
    again = rt.redis.set(old.key, old.token)
    assert again
    assert not rt.checkpoints.write(sid, "TODO-001", {"status": "failed"}, lease=old)
    assert cp(rt, sid, "TODO-001")["status"] == "running"


def test_overtaken_runner_kills_its_command_and_writes_nothing(
    rt: Runtime, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    sid = sweep(rt, tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": f"echo $$ > {pidfile}; sleep 30; echo late"},
    ])
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(run_todo(rt, sid, "TODO-001", W)))
    t.start()
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the command to start")
    holder = cp(rt, sid, "TODO-001")
    assert holder["status"] == "running"
    # Another worker takes the todo over: the first one's lease is gone.
    rt.redis.delete(holder["lease_key"])
    taken = take(rt, sid, "TODO-001", "b")
    assert taken.taken_over and taken.lease is not None
    new = taken.lease
    t0 = time.monotonic()
    t.join(20)
    assert not t.is_alive() and time.monotonic() - t0 < 5
    assert result[0] == (Outcome.lost, {"reason": "lease lost"})
    c = cp(rt, sid, "TODO-001")
    assert c["status"] == "running" and c["token"] == new.token and c["worker"] == "b"
    assert "late" not in (c.get("output_tail") or "")
    ks = kinds(rt, sid, "TODO-001")
    assert "todo.succeeded" not in ks and "todo.failed" not in ks
    # one todo.lost from the takeover, one from the overtaken runner
    lost = [str(e.data.get("reason")) for e in rt.events.read(sweep_id=sid)
            if e.todo_id == "TODO-001" and e.kind == "todo.lost"]
    assert sorted(lost) == ["lease lost", "taken over"], lost
    assert rt.leases.holders("api", 1) == [new.token]  # the loser released nothing of ours


def test_a_crash_after_the_lease_is_taken_never_leaves_it_renewed(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis dropping just as a todo starts made the runner raise with its lease
    heartbeat still running: the lease was renewed forever and the todo stayed
    'running' for good. Whatever raises, the heartbeat stops and the lease expires."""
    import redis as redis_mod

    from tests.waiting import wait_for

    sid = sweep(rt, tmp_path, [{"id": "TODO-001", "repo": "api", "run": "true"}])

    def down(*_: Any, **__: Any) -> Any:
        raise redis_mod.ConnectionError("Redis is restarting")

    monkeypatch.setattr(rt.events, "emit", down)
    # the carrying on after its finish: where the level it ended is said
    monkeypatch.setattr(rt.checkpoints, "say_level", down)
    monkeypatch.setattr(rt.leases, "release", down)  # so only its TTL can free the lease
    with pytest.raises(redis_mod.ConnectionError):
        run_todo(rt, sid, "TODO-001", W)
    key = cp(rt, sid, "TODO-001")["lease_key"]
    wait_for(lambda: rt.redis.get(key) is None, 5, "the abandoned lease to expire")


def test_a_quick_todo_starts_no_heartbeat_or_cancel_thread(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both only matter once a command has run for a while (a renewal is due after
    heartbeat_interval, a cancel is looked for every 0.5 s): a todo that ends sooner
    costs no thread start."""
    from coordination.runtime.leases import Heartbeat

    started: list[str] = []
    real = Heartbeat.start
    monkeypatch.setattr(Heartbeat, "start", lambda self: started.append(self.lease.key) or real(self))
    before = {t.name for t in threading.enumerate()}
    sid = sweep(rt, tmp_path, [{"id": "TODO-001", "repo": "api", "run": "true"}])
    assert run_todo(rt, sid, "TODO-001", W)[0] is Outcome.done
    assert started == []
    assert not [t.name for t in threading.enumerate()
                if t.name not in before and t.name.startswith(("heartbeat:", "cancel-watch:"))]


def test_a_todo_running_past_its_lease_ttl_is_kept_by_the_late_started_heartbeat(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat starts once the command has run a little, and renews an interval
    after the grant all the same: a todo running 1.5 lease TTLs is never lost."""
    from coordination.runtime.leases import Heartbeat

    started: list[str] = []
    real = Heartbeat.start
    monkeypatch.setattr(Heartbeat, "start", lambda self: started.append(self.lease.key) or real(self))
    ttl = rt.settings.lease_ttl
    sid = sweep(rt, tmp_path, [{"id": "TODO-001", "repo": "api", "run": f"sleep {1.5 * ttl}"}])
    assert run_todo(rt, sid, "TODO-001", W) == (Outcome.done, {"status": "succeeded", "exit_code": 0})
    assert len(started) == 1
    c = cp(rt, sid, "TODO-001")
    assert c["attempts"] == 1 and "todo.lost" not in kinds(rt, sid, "TODO-001")


def test_a_message_of_an_earlier_run_goes_by_the_sweeps_current_run(
    rt: Runtime, tmp_path: Path
) -> None:
    """A worker that has that run's spec parsed reads nothing before its start script;
    when the sweep has moved on (resumed) since the message was sent, the script says
    so and the todo runs by the current run's spec, as before the fast path."""
    from coordination.sweeps.spec_store import cached_spec

    flag = tmp_path / "fixed"
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": f"test -e {flag}"}])
    svc = SweepService(rt, cat)
    sid = svc.start(PLAN, ignore_blockers=True)
    assert run_todo(rt, sid, "TODO-001", W, 0) == (Outcome.done, {"status": "failed", "exit_code": 1})
    assert cached_spec(sid, 0) is not None  # run 0's spec is parsed in this process
    flag.touch()
    assert svc.resume(sid)["run"] == 1
    # A late message of run 0 (say, redelivered): not run by run 0's spec, not dropped.
    assert run_todo(rt, sid, "TODO-001", W, 0) == (Outcome.done, {"status": "succeeded", "exit_code": 0})
    assert cached_spec(sid, 1) is not None
    assert (rt.checkpoints.get_sweep(sid) or {})["status"] == "succeeded"


def test_a_message_whose_runs_spec_is_parsed_reads_no_sweep_record(
    rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path: with its run's spec parsed in this process, a todo goes to its
    start script without reading the sweep's record first."""
    import coordination.sweeps.turns as runner
    from coordination.sweeps.spec_store import load_spec

    sid = sweep(rt, tmp_path, [{"id": "TODO-001", "repo": "api", "run": "true"},
                               {"id": "TODO-002", "repo": "api", "run": "true"}])
    assert load_spec(rt, sid) is not None  # parsed, as the first todo of a run does

    def no_read(*_a: object) -> None:
        raise AssertionError("read the sweep's record on the fast path")

    monkeypatch.setattr(runner, "sweep_head", no_read)
    assert run_todo(rt, sid, "TODO-002", W, 0) == (Outcome.done, {"status": "succeeded", "exit_code": 0})
