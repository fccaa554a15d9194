"""A sweep run that ends is recorded once, with what each todo did; embedded, its
keys are kept beside the catalog and read back by a later process."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.runtime.context import Runtime
from coordination.runtime.history import SqliteHistory, history_path, search
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


def history(cat: Path) -> SqliteHistory:
    return SqliteHistory(history_path(cat), days=90)


def test_an_ended_sweep_is_recorded_with_each_todo(rt: Runtime, tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    _svc, sid, st = run_sweep(rt, cat)
    assert st["status"] == "failed"
    assert history_path(cat) == cat.parent / ".ecosystem.yaml.coord.history.sqlite"
    store = history(cat)
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
    before = search(history(cat), "", limit=100)
    # A second finaliser loses the status race and records nothing; the hook itself,
    # run again (a retried keep), records nothing either.
    assert maybe_finish(rt, sid, full=True) is None
    record_run(rt, sid)
    keep(rt, sid)
    assert search(history(cat), "", limit=100) == before
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
    got = [(r["run"], r["status"]) for r in search(history(cat), "", kind="todo", limit=10)]
    assert got == [(1, "succeeded"), (0, "failed")]


def test_history_that_cannot_be_written_never_fails_the_sweep(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import coordination.runtime.history as h

    def broken(*_a: object, **_k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(h, "open_history", broken)
    _svc, _sid, st = run_sweep(rt, write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"}]))
    assert st["status"] == "succeeded"


def test_an_embedded_sweep_outlives_its_server(tmp_path: Path) -> None:
    from coordination.launch import prepare

    cat = catalog(tmp_path)
    rt = fresh_runtime()
    launch = prepare(cat, plan_id=PLAN)  # as `coord plan sweep` does
    with launch.workers():
        sid = launch.start()
        st = launch.svc.wait(sid, timeout=60)
    events_then = [e["kind"] for e in SweepService(rt, cat).events(sid)]
    # A new process: a new, empty embedded server.
    rt = fresh_runtime()
    assert rt.checkpoints.get_sweep(sid) is None
    svc = SweepService(rt, cat)
    assert [r["sweep_id"] for r in svc.list()] == [sid]
    again = svc.status(sid)
    assert again["status"] == "failed" and again["reason"] == st["reason"]
    assert again["todos"] == st["todos"]
    assert [e["kind"] for e in svc.events(sid)] == events_then
    assert "sweep.finished" in events_then and "todo.failed" in events_then
    # The global stream too (coord events without --sweep).
    assert [e["kind"] for e in svc.events()] == events_then
    # Another catalog keeps its own.
    other = write_catalog(tmp_path / "other", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    assert SweepService(fresh_runtime(), other).list() == []


def test_a_sweep_live_when_its_workers_stop_ends_cancelled_and_kept(tmp_path: Path) -> None:
    from coordination.launch import prepare

    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    fresh_runtime()
    launch = prepare(cat, plan_id=PLAN)  # on the catalog's embedded server
    rt = launch.svc.rt
    sid = launch.start()  # queued; no worker will ever run it in this process
    launch.keep_embedded()  # what leaving launch.workers() does (Ctrl-C, an error)
    assert rt.checkpoints.sweep_status(sid) == "cancelled"
    svc = SweepService(fresh_runtime(), cat)
    st = svc.status(sid)
    assert st["status"] == "cancelled" and "interrupted" in st["reason"]
    assert st["todos"]["TODO-001"]["status"] == "cancelled"
    [rec] = search(history(cat), "interrupted", kind="sweep")
    assert (rec["kind"], rec["sweep_id"]) == ("sweep", sid)
    [todo] = search(history(cat), "", kind="todo")
    assert todo["status"] == "cancelled"


def test_the_web_view_shows_embedded_sweeps_of_earlier_processes(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from coordination.ui.app import create_app

    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    _svc, sid, _st = run_sweep(fresh_runtime(), cat)
    client = TestClient(create_app(fresh_runtime(), cat))  # `coord ui` later, embedded
    [row] = client.get("/api/overview").json()["sweeps"]
    assert (row["sweep_id"], row["status"]) == (sid, "succeeded")
    assert client.get(f"/api/sweeps/{sid}").json()["todos"]["TODO-001"]["status"] == "succeeded"
