"""Bookkeeping that must stay linear in a sweep's size (issue #13: sweeps of
10,000 todos). Counted in calls and Redis work, never timed: bench/scale.py
has the timings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordination.runtime.context import Runtime
from coordination.sweeps.supervision import supervise_once
from tests.unit.support.sweeps import fresh_runtime, start, status, unlock, write_catalog

pytestmark = [pytest.mark.timeout(60), pytest.mark.rt(stub=True)]

CHAIN = 40


def chain(tmp_path: Path, n: int = CHAIN) -> Path:
    """TODO-001 -> TODO-002 -> ... -> TODO-<n> in one repo, and TODO-900 on its own
    (never run here: it keeps the sweep active across passes)."""
    return write_catalog(tmp_path / "eco", [
        {"id": f"TODO-{i:03d}", "repo": "api", "run": "true",
         "blocked_by": [f"TODO-{i - 1:03d}"] if i > 1 else []}
        for i in range(1, n + 1)] + [{"id": "TODO-900", "repo": "web", "run": "true"}],
        repos=("api", "web"))


class EndCalls:
    """Wraps ``rt.transitions.end``: how often it ran and how many todos it was given."""

    def __init__(self, rt: Runtime) -> None:
        self.calls: list[int] = []
        inner = rt.transitions.end

        def end(sweep_id: str, todos: Any, *a: Any, **kw: Any) -> Any:
            todos = list(todos)
            self.calls.append(len(todos))
            return inner(sweep_id, todos, *a, **kw)

        rt.transitions.end = end  # type: ignore[method-assign]


def test_one_pass_skips_a_failed_heads_whole_chain_in_one_step(rt: Runtime, tmp_path: Path) -> None:
    sid = start(rt, chain(tmp_path))
    rt.checkpoints.set_fields(sid, "TODO-001", status="failed", finished_at=time.time(), exit_code=1)
    ends = EndCalls(rt)
    unlock(rt, sid)
    supervise_once(rt, sid)
    assert ends.calls == [CHAIN - 1]
    assert all(status(rt, sid, f"TODO-{i:03d}") == "skipped" for i in range(2, CHAIN + 1))
    assert (rt.checkpoints.get(sid, f"TODO-{CHAIN:03d}") or {})["reason"] == "TODO-001 failed"


def test_a_pass_over_failures_already_handled_ends_nothing(rt: Runtime, tmp_path: Path) -> None:
    """Each skipped todo is itself unsuccessful: walking every one's descendants and
    asking the end script about them again was n^2/2 todos per pass on a chain."""
    sid = start(rt, chain(tmp_path))
    rt.checkpoints.set_fields(sid, "TODO-001", status="failed", finished_at=time.time(), exit_code=1)
    unlock(rt, sid)
    supervise_once(rt, sid)
    ends = EndCalls(rt)
    for _ in range(3):
        unlock(rt, sid)
        supervise_once(rt, sid)
    assert (rt.checkpoints.get_sweep(sid) or {})["status"] == "queued"  # TODO-900 to run
    assert ends.calls == []


def test_two_failures_share_their_descendants_once(rt: Runtime, tmp_path: Path) -> None:
    sid = start(rt, chain(tmp_path))
    now = time.time()
    rt.checkpoints.set_fields(sid, "TODO-001", status="failed", finished_at=now, exit_code=1)
    rt.checkpoints.set_fields(sid, "TODO-010", status="failed", finished_at=now, exit_code=1)
    ends = EndCalls(rt)
    unlock(rt, sid)
    supervise_once(rt, sid)
    assert sum(ends.calls) == CHAIN - 2  # every not-started todo named once
    assert (rt.checkpoints.get(sid, "TODO-005") or {})["reason"] == "TODO-001 failed"
    assert status(rt, sid, f"TODO-{CHAIN:03d}") == "skipped"


def test_failures_sharing_a_subtree_walk_it_once(rt: Runtime, tmp_path: Path) -> None:
    """After each failure the fast path skips what follows it: ten failures in front of
    one chain name the chain's todos once in all, not once per failure."""
    from coordination.status import TodoStatus
    from coordination.sweeps.progress import Change, progress
    from coordination.sweeps.spec_store import load_spec

    heads = [{"id": f"TODO-{i:03d}", "repo": "web", "run": "true"} for i in range(1, 11)]
    tail = [{"id": f"TODO-{i:03d}", "repo": "api", "run": "true",
             "blocked_by": [f"TODO-{i - 1:03d}"] if i > 100 else [h["id"] for h in heads]}
            for i in range(100, 100 + CHAIN)]
    sid = start(rt, write_catalog(tmp_path / "eco", heads + tail, repos=("api", "web")))
    spec = load_spec(rt, sid)
    assert spec is not None
    ends = EndCalls(rt)
    for h in heads:
        progress(rt, spec, [Change(h["id"], TodoStatus.failed, level_done=False, terminal=0)])
    assert sum(ends.calls) == CHAIN
    assert status(rt, sid, f"TODO-{99 + CHAIN:03d}") == "skipped"


def test_a_full_pass_reads_the_checkpoints_once(rt: Runtime, tmp_path: Path) -> None:
    """It used to read every checkpoint again to see whether the sweep had ended."""
    sid = start(rt, chain(tmp_path))
    reads: list[int] = []
    inner, inner_fields = rt.checkpoints.get_all, rt.checkpoints.get_fields_all

    def get_all(sweep_id: str, todo_ids: list[str]) -> Any:
        reads.append(len(todo_ids))
        return inner(sweep_id, todo_ids)

    def get_fields_all(sweep_id: str, todo_ids: list[str], fields: Any) -> Any:
        reads.append(len(todo_ids))
        return inner_fields(sweep_id, todo_ids, fields)

    rt.checkpoints.get_all = get_all  # type: ignore[method-assign]
    rt.checkpoints.get_fields_all = get_fields_all  # type: ignore[method-assign]
    unlock(rt, sid)
    supervise_once(rt, sid)
    assert reads == [CHAIN + 1]


def test_a_full_pass_reads_no_output(rt: Runtime, tmp_path: Path) -> None:
    """A pass reads the few fields it decides on, not the output tails a checkpoint
    also holds: its memory and traffic do not grow with what todos print."""
    sid = start(rt, chain(tmp_path, 3), strategy="eager")
    tail = "x" * 60_000
    rt.checkpoints.set_fields(sid, "TODO-001", status="succeeded", finished_at=time.time(),
                              stdout_tail=tail, stderr_tail=tail)
    read: list[int] = []
    inner = rt.checkpoints.get_fields_all

    def get_fields_all(sweep_id: str, todo_ids: list[str], fields: Any) -> Any:
        out = inner(sweep_id, todo_ids, fields)
        read.append(sum(len(str(v)) for cp in out.values() for v in cp.values()))
        assert not {"stdout_tail", "stderr_tail"} & set(fields)
        return out

    rt.checkpoints.get_fields_all = get_fields_all  # type: ignore[method-assign]
    unlock(rt, sid)
    supervise_once(rt, sid, grace=0)
    assert read and read[0] < 2_000, read  # 4 checkpoints' deciding fields, no tails
    assert (rt.checkpoints.get(sid, "TODO-002") or {}).get("status") == "queued"  # it acted


def test_a_pass_that_sees_every_todo_ended_still_finishes_without_the_count(
        rt: Runtime, tmp_path: Path) -> None:
    """Statuses written outside the scripts (a count lost): the pass's own read ends it."""
    sid = start(rt, chain(tmp_path, 3))
    for t in ("TODO-001", "TODO-002", "TODO-003", "TODO-900"):
        rt.checkpoints.set_fields(sid, t, status="succeeded", finished_at=time.time())
    unlock(rt, sid)
    supervise_once(rt, sid)
    assert (rt.checkpoints.get_sweep(sid) or {})["status"] == "succeeded"


def test_planning_resolves_each_repos_checkout_once(rt: Runtime, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Not once per todo: resolving a path is file system work (60% of planning
    a 10,000-todo plan on 100 repos)."""
    from coordination.catalog.model_methods import RepoMethods
    from coordination.sweeps import SweepService

    calls: list[str] = []
    inner = RepoMethods.checkout

    # The method a repo's model and its view share (the planning reads either)
    def checkout(self: RepoMethods, base: Path) -> Path:
        calls.append(self.name)
        return inner(self, base)

    monkeypatch.setattr(RepoMethods, "checkout", checkout)
    spec = SweepService(rt, chain(tmp_path)).plan_spec("PLAN-001", strategy="levels",
                                                        ignore_blockers=True)
    assert sorted(calls) == ["api", "web"]
    assert spec.todos["TODO-040"].path == str((tmp_path / "eco" / "repos" / "api").resolve())


def test_threads_that_need_a_new_spec_at_once_parse_it_once(rt: Runtime, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's threads all get their first message of a sweep together; each used
    to read and parse the whole spec (a worker's peak memory grew with it)."""
    import threading

    from coordination.sweeps import spec_store as supervisor
    from coordination.sweeps.spec import SweepSpec
    from tests.waiting import wait_for

    sid = start(rt, chain(tmp_path))
    supervisor._spec_cache.clear()
    parses: list[int] = []
    release = threading.Event()
    inner = SweepSpec.from_json.__func__  # type: ignore[attr-defined]

    def from_json(cls: type[SweepSpec], text: Any) -> SweepSpec:
        parses.append(1)
        release.wait(10)  # the first parse is slow: the others arrive meanwhile
        return inner(cls, text)  # type: ignore[no-any-return]

    monkeypatch.setattr(SweepSpec, "from_json", classmethod(from_json))
    entered: list[int] = []
    got: list[Any] = []

    def load() -> None:
        entered.append(1)
        got.append(supervisor.load_spec(rt, sid))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: len(entered) == 8, 10, "every thread asking for the spec")
    with pytest.raises(AssertionError):  # more parses would show up within a second
        wait_for(lambda: len(parses) > 1, 1.0, "a second parse")
    release.set()
    for t in threads:
        t.join(10)
    assert len(parses) == 1
    assert len(got) == 8 and all(s is got[0] for s in got) and len(got[0].todos) == CHAIN + 1


@pytest.fixture
def live_rt() -> Iterator[Runtime]:
    """An embedded runtime whose sweeps really run (in-process workers)."""
    from coordination.connection.client import reset_embedded
    from coordination.runtime.context import get_runtime

    runtime = fresh_runtime()
    yield runtime
    reset_embedded()
    get_runtime.cache_clear()


def test_plan_sweep_wait_syncs_from_the_status_it_read(live_rt: Runtime, tmp_path: Path) -> None:
    """`coord plan sweep --wait` reads the ended sweep's status, then synced it into
    the catalog after reading every checkpoint of it once more."""
    from coordination.catalog.file.store import CatalogStore
    from coordination.launch import settle
    from tests.unit.support.sweeps import run_sweep

    rt = live_rt
    svc, sid, st = run_sweep(rt, chain(tmp_path, 3))
    assert st["status"] == "succeeded"
    reads: list[int] = []
    inner = rt.checkpoints.get_all

    def get_all(sweep_id: str, todo_ids: list[str]) -> Any:
        reads.append(len(todo_ids))
        return inner(sweep_id, todo_ids)

    rt.checkpoints.get_all = get_all  # type: ignore[method-assign]
    out = settle(svc, st)
    assert reads == []
    assert sorted(out["synced"]["completed"]) == ["TODO-001", "TODO-002", "TODO-003", "TODO-900"]
    cat = CatalogStore(svc.catalog_path).load()  # type: ignore[arg-type]
    assert {getattr(t.status, "value", t.status) for t in cat.coordination.todos} == {"completed"}
