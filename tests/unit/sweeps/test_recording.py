"""A sweep run that ends is recorded once, with what each todo did, in the history of
the Redis it ran on (embedded: the catalog's server, which later processes read too)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.runtime.context import Runtime
from coordination.history.search import search
from coordination.runtime.history import RedisHistory
from coordination.sweeps import SweepService
from coordination.sweeps.progress import finish_if_done as maybe_finish
from coordination.sweeps.recording import keep, record_run
from tests.unit.support.sweeps import PLAN, fresh_runtime, repos_of, run_sweep, write_catalog

pytestmark = pytest.mark.timeout(90)


def catalog(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "task": "Print a lot",
         "run": "python3 -c \"print('x' * 5000 + 'THE-END')\""},
        {"id": "TODO-002", "repo": "web", "task": "Fail loudly", "run": "echo boom >&2; exit 7",
         "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "jobs", "run": "true", "blocked_by": ["TODO-002"]},
    ])


def test_an_ended_sweep_is_recorded_with_each_todo(rt: Runtime, tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    _svc, sid, st = run_sweep(rt, cat)
    assert st["status"] == "failed"
    store = rt.history()
    recs = {r.get("todo_id") or "sweep": r for r in search(store, "", limit=100)}
    assert set(recs) == {"sweep", "TODO-001", "TODO-002", "TODO-003"}
    sweep = recs["sweep"]
    assert (sweep["sweep_id"], sweep["plan"], sweep["status"], sweep["run"]) == (sid, PLAN, "failed", 0)
    assert sweep["reason"] == st["reason"] and "TODO-002 failed" in sweep["reason"]
    assert sweep["counts"] == {"succeeded": 1, "failed": 1, "skipped": 1}
    assert sweep["started_at"] and sweep["finished_at"]
    big, bad, skipped = recs["TODO-001"], recs["TODO-002"], recs["TODO-003"]
    assert (big["title"], big["repo"], big["status"], big["exit_code"]) == (
        "Print a lot", "api", "succeeded", 0)
    # A bounded tail: the last KiB of the output.
    assert len(big["output_tail"].encode()) <= 1024 and big["output_tail"].rstrip().endswith("THE-END")
    assert (bad["title"], bad["status"], bad["exit_code"], bad["attempts"]) == (
        "Fail loudly", "failed", 7, 1)
    assert "boom" in bad["output_tail"] and bad["worker"] and bad["duration"] is not None
    assert bad["reason"]
    assert skipped["status"] == "skipped"
    assert [r["todo_id"] for r in search(store, "boom")] == ["TODO-002"]


def test_a_run_is_recorded_once_whoever_finalises_it(rt: Runtime, tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    _svc, sid, _st = run_sweep(rt, cat)
    before = search(rt.history(), "", limit=100)
    # A second finaliser loses the status race and records nothing; the hook itself,
    # run again (a retried keep), records nothing either.
    assert maybe_finish(rt, sid, full=True) is None
    record_run(rt, sid)
    keep(rt, sid)
    assert search(rt.history(), "", limit=100) == before
    assert len(before) == 4


def test_a_resumed_run_is_recorded_as_another_run(rt: Runtime, tmp_path: Path) -> None:
    from workers.embedded import embedded_workers

    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "test -f fixed"}])
    svc, sid, st = run_sweep(rt, cat)
    assert st["status"] == "failed"
    (cat.parent / "repos" / "api" / "fixed").touch()
    with embedded_workers(rt, repos_of(svc)):
        svc.resume(sid)
        assert svc.wait(sid, timeout=60)["status"] == "succeeded"
    got = [(r["run"], r["status"]) for r in search(rt.history(), "", kind="todo", limit=10)]
    assert got == [(1, "succeeded"), (0, "failed")]


def test_history_that_cannot_be_written_never_fails_the_sweep(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: object, **_k: object) -> bool:
        raise OSError("disk full")

    monkeypatch.setattr(RedisHistory, "record", broken)
    _svc, _sid, st = run_sweep(rt, write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"}]))
    assert st["status"] == "succeeded"
    assert search(rt.history(), "") == []  # (it was broken: nothing recorded)


def test_a_sweep_live_when_its_workers_stop_ends_cancelled_and_recorded(tmp_path: Path) -> None:
    from coordination.connection.embedded_server import release
    from coordination.launch import prepare

    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    fresh_runtime()
    launch = prepare(cat, plan_id=PLAN)  # on the catalog's embedded server
    rt = launch.svc.rt
    assert rt.url is not None
    try:
        sid = launch.start()  # queued; no worker will ever run it in this process
        launch.end_interrupted()  # what leaving launch.workers() does (Ctrl-C, an error)
        assert rt.checkpoints.sweep_status(sid) == "cancelled"
        st = SweepService(rt, cat).status(sid)
        assert st["status"] == "cancelled" and "interrupted" in st["reason"]
        assert st["todos"]["TODO-001"]["status"] == "cancelled"
        [rec] = search(rt.history(), "interrupted", kind="sweep")
        assert (rec["kind"], rec["sweep_id"]) == ("sweep", sid)
        [todo] = search(rt.history(), "", kind="todo")
        assert todo["status"] == "cancelled"
        launch.end_interrupted()  # an ended sweep: nothing more happens
        assert len(search(rt.history(), "", limit=100)) == 2
    finally:
        release(rt.url)


def test_the_web_view_shows_embedded_sweeps_of_earlier_processes(tmp_path: Path) -> None:
    import json

    from starlette.testclient import TestClient

    from coordination.connection.embedded_server import release
    from coordination.ui.app import create_app
    from tests.unit.support.cli import coord

    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    done = coord(cat, "plan", "sweep", PLAN, "--wait", "--json")  # an earlier process
    assert done.returncode == 0, done.stderr
    sid = json.loads(done.stdout)["sweep_id"]
    fresh_runtime()
    rt = Runtime.create(catalog=cat)  # `coord ui` later, embedded: the catalog's server
    assert rt.url is not None
    try:
        client = TestClient(create_app(rt, cat), base_url="http://localhost")  # a Host the view answers
        [row] = client.get("/api/overview").json()["sweeps"]
        assert (row["sweep_id"], row["status"]) == (sid, "succeeded")
        todos = client.get(f"/api/sweeps/{sid}").json()["todos"]
        assert todos["TODO-001"]["status"] == "succeeded"
    finally:
        release(rt.url)
