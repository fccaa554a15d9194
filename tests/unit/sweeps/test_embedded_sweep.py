"""Embedded sweeps through the library: Runtime + SweepService + in-process workers.

No redis-server: the embedded fakeredis server holds leases, events and
checkpoints; Celery runs on the memory transport with worker threads in this
process. Every wait here is on the system (statuses, events) with a deadline.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.errors import NotFoundError, PlanError
from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from tests.waiting import wait_for
from tests.unit.support.sweeps import PLAN, counting, fresh_runtime, repos_of, run_sweep, runs, write_catalog  # noqa: F401

pytestmark = pytest.mark.timeout(120)


# -- helpers (also used by the other runtime test modules) -------------------------------


def kinds(rt: Runtime, sid: str, todo_id: str | None = None) -> list[str]:
    return [e.kind for e in rt.events.read(sweep_id=sid) if todo_id is None or e.todo_id == todo_id]


# -- the example plan --------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["levels", "eager"])
def test_example_plan_succeeds_in_dependency_order(
    rt: Runtime, example_catalog: Path, strategy: str
) -> None:
    svc, sid, st = run_sweep(rt, example_catalog, strategy=strategy)
    assert st["status"] == "succeeded", st
    assert st["strategy"] == strategy
    assert set(st["todos"]) == {"TODO-002", "TODO-003", "TODO-004", "TODO-005", "TODO-006"}
    assert all(v["status"] == "succeeded" and v["attempts"] == 1 and v["exit_code"] == 0
               for v in st["todos"].values()), st["todos"]
    spec = svc.plan_spec(PLAN, strategy=strategy, ignore_blockers=True)
    cps = rt.checkpoints.get_all(sid, list(spec.todos))
    for tid, t in spec.todos.items():
        for p in t.preds:
            assert cps[tid]["started_at"] >= cps[p]["finished_at"], (tid, p)
    ev = kinds(rt, sid)
    assert ev[0] == "sweep.queued" and ev.count("sweep.finished") == 1
    assert ev.count("todo.succeeded") == 5
    # The commands really ran in their checkouts.
    base = example_catalog.parent
    assert (base / "repos/web/api-client.txt").read_text() == "client regenerated\n"
    assert "libcore ready" in st["todos"]["TODO-002"]["output_tail"]


def test_status_has_every_design_field(rt: Runtime, example_catalog: Path) -> None:
    import datetime as dt
    import json

    _, sid, st = run_sweep(rt, example_catalog)
    st = json.loads(json.dumps(st))  # it is JSON as it is
    for key in ("sweep_id", "plan", "strategy", "status", "todos"):
        assert key in st
    assert st["sweep_id"] == sid and st["plan"] == PLAN and st["strategy"] == "levels"
    assert st["status"] in ("queued", "running", "succeeded", "failed", "cancelled")
    for tid, v in st["todos"].items():
        for key in ("status", "attempts", "exit_code", "worker", "started_at", "finished_at",
                    "output_tail"):
            assert key in v, (tid, key)
        assert v["status"] in ("pending", "queued", "running", "succeeded", "failed",
                               "skipped", "cancelled")
        assert isinstance(v["attempts"], int) and isinstance(v["exit_code"], int)
        assert isinstance(v["worker"], str) and v["worker"]
        assert isinstance(v["output_tail"], str)
        start = dt.datetime.fromisoformat(v["started_at"])
        end = dt.datetime.fromisoformat(v["finished_at"])
        assert start.tzinfo is not None and start <= end


def test_sync_writes_completed_and_hours_and_keeps_comments(
    rt: Runtime, example_catalog: Path
) -> None:
    from coordination.catalog.file.store import CatalogStore

    before = example_catalog.read_text()
    svc, sid, st = run_sweep(rt, example_catalog)
    assert st["status"] == "succeeded"
    out = svc.sync(sid)
    assert sorted(out["completed"]) == sorted(st["todos"]) and out["failed"] == []
    after = example_catalog.read_text()
    comments = [line.strip() for line in before.splitlines() if line.strip().startswith("#")]
    assert comments and all(c in after for c in comments)
    assert "# checkout, relative to this file" in after  # an end-of-line comment too
    cat = CatalogStore(example_catalog).load()
    for tid in st["todos"]:
        todo = cat.todo(tid)
        assert todo.status.value == "completed"
        assert todo.actual_hours is not None and 0 <= todo.actual_hours < 0.1
    assert cat.todo("TODO-001").actual_hours == 1.5  # not part of the sweep: untouched
    # A second sync changes nothing.
    again = svc.sync(sid)
    assert again["completed"] == [] and example_catalog.read_text() == after



def test_a_sync_rides_out_redis_away_just_after_the_sweep_ended(
        rt: Runtime, one_todo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failover just after the end (CI saw `plan sweep --wait` exit 1 on a reset
    connection while it synced): the sync's reads and its writes after the edit are
    tried again, and the outcome is written once."""
    import redis

    from coordination.sweeps import service

    svc, sid, st = run_sweep(rt, one_todo)
    assert st["status"] == "succeeded"
    cp = rt.checkpoints
    failures = {"get_sweep_fields": 2, "update_sweep": 2}
    for name in failures:
        real = getattr(cp, name)

        def flaky(*a: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            if failures[_name]:
                failures[_name] -= 1
                raise redis.ConnectionError("Error while reading from 127.0.0.1:6379 : "
                                            "(104, 'Connection reset by peer')")
            return _real(*a, **kw)

        monkeypatch.setattr(cp, name, flaky)
    assert svc.ran_from_here(sid)
    out = svc.sync(sid)
    assert out["completed"] == ["TODO-001"], out
    assert failures == {"get_sweep_fields": 0, "update_sweep": 0}
    assert cp.get_sweep_fields(sid, ("synced_at",))["synced_at"]
    assert yaml.safe_load(one_todo.read_text())["coordination"]["todos"][0]["status"] == "completed"
    # Away for longer than the patience: the error stands (the command says so, exit 1).
    monkeypatch.setattr(service, "SYNC_PATIENCE", 0.2)
    failures["get_sweep_fields"] = 10_000
    with pytest.raises(redis.ConnectionError):
        svc.ran_from_here(sid)

# -- failures ----------------------------------------------------------------------------
def test_failing_todo_skips_only_its_dependents(rt: Runtime, tmp_path: Path) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "api", "run": "echo boom >&2; exit 3", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "run": "true", "blocked_by": ["TODO-002"]},
        {"id": "TODO-004", "repo": "jobs", "run": "true", "blocked_by": ["TODO-003"]},
        {"id": "TODO-005", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
        {"id": "TODO-006", "repo": "jobs", "run": "true"},
    ])
    _, sid, st = run_sweep(rt, cat)
    s = {t: v["status"] for t, v in st["todos"].items()}
    assert s == {"TODO-001": "succeeded", "TODO-002": "failed", "TODO-003": "skipped",
                 "TODO-004": "skipped", "TODO-005": "succeeded", "TODO-006": "succeeded"}
    assert st["status"] == "failed"
    assert "TODO-002 failed" in st["reason"] and "exit 3" in st["reason"]
    assert st["todos"]["TODO-002"]["exit_code"] == 3
    assert "boom" in st["todos"]["TODO-002"]["output_tail"]
    assert "TODO-002" in st["todos"]["TODO-003"]["reason"]
    assert st["todos"]["TODO-003"]["attempts"] == 0  # never ran
    assert kinds(rt, sid).count("sweep.finished") == 1


def test_the_last_todos_failure_ends_its_level_before_the_sweep(rt: Runtime,
                                                                 tmp_path: Path) -> None:
    # The failing todo ends level 0 and strands the rest: every level.done comes before
    # sweep.finished, level 0's first (a watcher stops at sweep.finished).
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "exit 3"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "run": "true", "blocked_by": ["TODO-002"]},
    ])
    _, sid, st = run_sweep(rt, cat)
    assert st["status"] == "failed"
    evs = [(e.kind, e.data.get("level")) for e in rt.events.read(sweep_id=sid)
           if e.kind in ("level.done", "sweep.finished")]
    assert evs == [("level.done", 0), ("level.done", 1), ("level.done", 2),
                   ("sweep.finished", None)], evs


@pytest.mark.parametrize("strategy", ["levels", "eager"])
def test_retries_then_fail(rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                           strategy: str) -> None:
    import workers.runner

    monkeypatch.setattr(workers.runner, "backoff_delay", lambda attempt, base=1.0: 0.05)
    counts = tmp_path / "counts"
    counts.mkdir()
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": counting(counts, "TODO-001", "exit 4"), "retries": 2},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
    ])
    _, sid, st = run_sweep(rt, cat, strategy=strategy)
    v = st["todos"]["TODO-001"]
    assert v["status"] == "failed" and v["attempts"] == 3 and v["exit_code"] == 4
    assert runs(counts, "TODO-001") == 3
    ev = rt.events.read(sweep_id=sid)
    retrying = [e for e in ev if e.kind == "todo.retrying"]
    assert [e.data["attempt"] for e in retrying] == [2, 3]
    assert st["todos"]["TODO-002"]["status"] == "skipped"
    assert st["status"] == "failed"


def test_retry_that_succeeds(rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import workers.runner

    monkeypatch.setattr(workers.runner, "backoff_delay", lambda attempt, base=1.0: 0.05)
    counts = tmp_path / "counts"
    counts.mkdir()
    # Fails on its first run only.
    flaky = counting(counts, "TODO-001", f"test $(wc -l < {shlex.quote(str(counts / 'TODO-001'))}) -ge 2")
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": flaky, "retries": 3},
    ])
    _, sid, st = run_sweep(rt, cat)
    assert st["status"] == "succeeded"
    assert st["todos"]["TODO-001"]["attempts"] == 2 and runs(counts, "TODO-001") == 2
    assert kinds(rt, sid, "TODO-001").count("todo.retrying") == 1


def test_timeout_fails_the_todo(rt: Runtime, tmp_path: Path) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "sleep 30", "timeout": 1},
    ])
    t0 = time.monotonic()
    _, sid, st = run_sweep(rt, cat)
    assert time.monotonic() - t0 < 20
    v = st["todos"]["TODO-001"]
    assert v["status"] == "failed" and "timed out" in v["reason"]
    assert st["status"] == "failed" and "timed out" in st["reason"]


def test_missing_checkout_fails_with_its_path(rt: Runtime, tmp_path: Path) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
    ], checkouts=False)
    _, sid, st = run_sweep(rt, cat)
    v = st["todos"]["TODO-001"]
    missing = str((tmp_path / "eco" / "repos" / "api").resolve())
    assert v["status"] == "failed" and missing in v["reason"], v
    assert st["todos"]["TODO-002"]["status"] == "skipped"
    assert st["status"] == "failed" and "TODO-001" in st["reason"]


# -- resume and cancel -------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["levels", "eager"])
def test_resume_reruns_only_failed_and_skipped(rt: Runtime, tmp_path: Path, strategy: str) -> None:
    from coordination.catalog.file.store import CatalogStore
    from workers.embedded import embedded_workers

    counts = tmp_path / "counts"
    counts.mkdir()
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": counting(counts, "TODO-001")},
        {"id": "TODO-002", "repo": "api", "run": counting(counts, "TODO-002", "exit 1"),
         "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "run": counting(counts, "TODO-003"),
         "blocked_by": ["TODO-002"]},
        {"id": "TODO-004", "repo": "jobs", "run": counting(counts, "TODO-004")},
    ])
    svc = SweepService(rt, cat)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, strategy=strategy, ignore_blockers=True)
        st = svc.wait(sid, timeout=60)
        assert st["status"] == "failed"
        assert {t: v["status"] for t, v in st["todos"].items()} == {
            "TODO-001": "succeeded", "TODO-002": "failed", "TODO-003": "skipped",
            "TODO-004": "succeeded"}

        def fix(doc: Any) -> None:
            for item in doc["coordination"]["todos"]:
                if item["id"] == "TODO-002":
                    item["run"] = counting(counts, "TODO-002")

        CatalogStore(cat).update(fix)
        out = svc.resume(sid)
        assert out["rerun"] == ["TODO-002", "TODO-003"] and out["run"] == 1
        st = svc.wait(sid, timeout=60)
    assert st["status"] == "succeeded", st
    assert st["run"] == 1
    assert {t: runs(counts, t) for t in st["todos"]} == {
        "TODO-001": 1, "TODO-002": 2, "TODO-003": 1, "TODO-004": 1}
    assert kinds(rt, sid).count("sweep.finished") == 2  # one per run
    # Nothing left to resume.
    assert svc.resume(sid)["rerun"] == []


def test_cancel_kills_a_running_todo(rt: Runtime, tmp_path: Path) -> None:
    import psutil

    from workers.embedded import embedded_workers

    pidfile = tmp_path / "pid"
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": f"echo $$ > {pidfile}; sleep 30; echo late"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
    ])
    svc = SweepService(rt, cat)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, strategy="levels", ignore_blockers=True)
        wait_for(lambda: svc.status(sid)["todos"]["TODO-001"]["status"] == "running"
                 and pidfile.exists() and pidfile.read_text().strip(), what="TODO-001 running")
        pid = int(pidfile.read_text())
        t0 = time.monotonic()
        out = svc.cancel(sid, wait=10)
        elapsed = time.monotonic() - t0
        assert out["cancelled"] is True and out["still_running"] == [], out
        assert elapsed < 5
        st = svc.status(sid)

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(gone, timeout=5, what="the todo's shell to die")
    assert st["status"] == "cancelled" and "cancelled" in st["reason"]
    assert st["todos"]["TODO-001"]["status"] == "cancelled"
    assert st["todos"]["TODO-002"]["status"] == "cancelled"
    assert "late" not in st["todos"]["TODO-001"]["output_tail"]
    # Cancelling again is a no-op.
    assert svc.cancel(sid)["cancelled"] is False


# -- refusals: nothing is created --------------------------------------------------------
def _no_sweep(rt: Runtime) -> None:
    assert rt.checkpoints.list_sweeps() == []
    assert rt.redis.smembers(rt.keys.active_sweeps) == set()


def test_cycle_is_refused_before_anything_runs(rt: Runtime, tmp_path: Path) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true", "blocked_by": ["TODO-003"]},
        {"id": "TODO-002", "repo": "api", "run": "true", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "run": "true", "blocked_by": ["TODO-002"]},
    ])
    svc = SweepService(rt, cat)
    with pytest.raises(PlanError) as exc:
        svc.start(PLAN, strategy="levels", ignore_blockers=True)
    assert "cycle" in str(exc.value).lower() and "TODO-001" in str(exc.value)
    _no_sweep(rt)


def test_unknown_plan_is_not_found(rt: Runtime, example_catalog: Path) -> None:
    svc = SweepService(rt, example_catalog)
    with pytest.raises(NotFoundError) as exc:
        svc.start("PLAN-999", strategy="eager")
    assert "PLAN-999" in str(exc.value)
    _no_sweep(rt)


def test_blocked_plan_is_refused_unless_ignored(rt: Runtime, tmp_path: Path) -> None:
    from workers.embedded import embedded_workers

    issue = {"id": "ISSUE-001", "title": "open thing", "status": "open", "repos": ["api"]}
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true", "blocked_by": ["ISSUE-001"]},
    ], issues=[issue])
    svc = SweepService(rt, cat)
    with pytest.raises(PlanError) as exc:
        svc.start(PLAN)
    assert "ISSUE-001" in str(exc.value)
    _no_sweep(rt)
    with embedded_workers(rt, {"api": 1}):
        sid = svc.start(PLAN, ignore_blockers=True)
        assert svc.wait(sid, timeout=60)["status"] == "succeeded"


def test_unknown_strategy_and_sweep(rt: Runtime, example_catalog: Path) -> None:
    from coordination.errors import UsageError

    svc = SweepService(rt, example_catalog)
    with pytest.raises(UsageError):
        svc.start(PLAN, strategy="sideways")
    with pytest.raises(NotFoundError) as exc:
        svc.status("PLAN-001-nope")
    assert "kept beside the catalog" in (exc.value.hint or "")
    _no_sweep(rt)


def test_embedded_env_is_clean() -> None:
    assert "COORD_REDIS_URL" not in os.environ
