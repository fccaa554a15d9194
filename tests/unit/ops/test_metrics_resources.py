"""`coord metrics`: shared resources' use (coord_resource_capacity, _used, _waiting,
_wait_seconds), read from the slots and lines todos take as workers do, and repos'
recovery times (coord_repo_recovery_seconds: first failure to next success) from the
history."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coordination.ops.metrics import exposition, registry
from coordination.runtime.context import Runtime
from coordination.stats.flow import recoveries
from tests.unit.support.metrics import parse, value
from tests.unit.support.fleet import ask, fleet_catalog, queued_spec
from tests.unit.support.history import run, todo

pytestmark = pytest.mark.timeout(60)


def test_a_resource_held_with_a_todo_in_line(rt: Runtime, tmp_path: Path) -> None:
    cat = fleet_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true", "resources": ["db"]},
        {"id": "TODO-002", "repo": "web", "run": "true", "resources": ["db"]},
    ], resources=[{"name": "db", "capacity": 1}, {"name": "cache", "capacity": 3}])
    spec = queued_spec(rt, cat)
    now = time.time()
    reg = registry(rt, cat)
    before = parse(exposition(reg).decode())
    assert value(before, "coord_resource_used", resource="db") == 0
    assert value(before, "coord_resource_wait_seconds", resource="db") == 0
    assert ask(rt, spec, "TODO-001", now=now).verdict == "started"
    assert ask(rt, spec, "TODO-002", now=now, since=now - 30).verdict == "wait"
    s = parse(exposition(reg).decode())
    assert value(s, "coord_resource_capacity", resource="db") == 1
    assert value(s, "coord_resource_used", resource="db") == 1
    assert value(s, "coord_resource_waiting", resource="db") == 1
    assert 30 <= value(s, "coord_resource_wait_seconds", resource="db") < 60
    assert (value(s, "coord_resource_capacity", resource="cache"),
            value(s, "coord_resource_used", resource="cache"),
            value(s, "coord_resource_wait_seconds", resource="cache")) == (3, 0, 0)


def test_recovery_is_a_repos_first_failure_to_its_next_success(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.ops import metrics

    monkeypatch.setattr(metrics, "RECOVERY_EVERY", 0.0)  # read the history at every scrape
    store = rt.history()
    t0 = time.time() - 5000
    # api: fails at t0 and t0+100, succeeds at t0+400 (400 s); fails at t0+1000,
    # succeeds at t0+1060 (60 s). web never fails: no recovery.
    for i, (at, status) in enumerate([(0, "failed"), (100, "failed"), (400, "succeeded"),
                                      (1000, "failed"), (1060, "succeeded")]):
        sid = f"S-{i}"
        run(store, sid, [todo(sid, "TODO-1", "api", status, 1.0, t0 + at),
                         todo(sid, "TODO-2", "web", "succeeded", 1.0, t0 + at)], t0 + at)
    reg = registry(rt, None)
    s = parse(exposition(reg).decode())
    assert value(s, "coord_repo_recovery_seconds", repo="api") == 60
    assert value(s, "coord_repo_recovery_mean_seconds", repo="api") == 230
    assert value(s, "coord_repo_recoveries", repo="api") == 2
    assert ("coord_repo_recovery_seconds", (("repo", "web"),)) not in s
    # A new failure and recovery is seen by the next scrape (the history changed).
    run(store, "S-9", [todo("S-9", "TODO-1", "api", "failed", 1.0, t0 + 2000)], t0 + 2000)
    run(store, "S-10", [todo("S-10", "TODO-1", "api", "succeeded", 1.0, t0 + 2010)], t0 + 2010)
    s = parse(exposition(reg).decode())
    assert value(s, "coord_repo_recovery_seconds", repo="api") == 10
    assert value(s, "coord_repo_recoveries", repo="api") == 3


def test_a_repo_fails_a_run_when_one_of_its_todos_fails() -> None:
    def row(repo: str, status: str, at: float) -> dict:
        return {"todo_id": f"T-{repo}-{at}", "repo": repo, "status": status, "finished_at": at}

    runs = [
        # run 1: api's two todos, one failed at 10 and one succeeded at 12: api failed
        ({"sweep_id": "S1"}, [row("api", "failed", 10.0), row("api", "succeeded", 12.0)]),
        # run 2: skipped only: says nothing
        ({"sweep_id": "S2"}, [row("api", "skipped", 20.0)]),
        # run 3: all green at 50 (the last success)
        ({"sweep_id": "S3"}, [row("api", "succeeded", 45.0), row("api", "succeeded", 50.0)]),
    ]
    assert recoveries(runs) == {"api": [40.0]}
    assert recoveries(runs[1:]) == {}


def test_recovery_times_are_read_again_at_most_once_a_minute(
        rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    store = rt.history()
    t0 = time.time() - 5000
    run(store, "S-1", [todo("S-1", "TODO-1", "api", "failed", 1.0, t0)], t0)
    run(store, "S-2", [todo("S-2", "TODO-1", "api", "succeeded", 1.0, t0 + 30)], t0 + 30)
    reg = registry(rt, None)
    assert value(parse(exposition(reg).decode()), "coord_repo_recoveries", repo="api") == 1
    reads: list[int] = []
    real = type(store).ended
    monkeypatch.setattr(type(store), "ended",
                        lambda self, **kw: reads.append(1) or real(self, **kw))
    run(store, "S-3", [todo("S-3", "TODO-1", "api", "failed", 1.0, t0 + 60)], t0 + 60)
    run(store, "S-4", [todo("S-4", "TODO-1", "api", "succeeded", 1.0, t0 + 70)], t0 + 70)
    # within the minute: the scrape says what it read before, without reading again
    assert value(parse(exposition(reg).decode()), "coord_repo_recoveries", repo="api") == 1
    assert reads == []
