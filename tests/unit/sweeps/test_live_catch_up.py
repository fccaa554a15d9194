"""A command's catch-up with its catalog's sweeps (coordination/sweeps/writeback/live.py), on the
unit tier's stand-in Redis: a live sweep's running todo read in_progress, an ended one
left to the live process that waits for it, and synced (once) when nobody does. The
real processes are in tests/integration/test_live_state.py."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from coordination.catalog.reads import live, cached as reads
from coordination.status import SweepStatus
from coordination.sweeps.writeback import live as catching
from coordination.sweeps.progress import end_sweep
from coordination.sweeps.runner import this_process
from tests.unit.support.sweeps import chain_catalog, run_as_worker, start, stub_runtime

pytestmark = pytest.mark.timeout(60)


def _statuses(cat: Path) -> dict[str, str]:
    return {str(t["id"]): str(t["status"]) for t in reads.list_todos(cat)}


def test_running_shown_then_left_to_its_waiter_then_synced_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with stub_runtime() as rt:
        monkeypatch.setattr(catching, "get_runtime", lambda *a, **k: rt)
        monkeypatch.setattr(catching, "server_pid", lambda catalog: 1)  # "it runs"
        monkeypatch.delenv("COORD_REDIS_URL", raising=False)
        monkeypatch.delenv("COORD_NAMESPACE", raising=False)
        cat = chain_catalog(tmp_path)
        sid = start(rt, cat)
        assert list(live.marked(cat)) == [sid]
        try:
            run_as_worker(rt, sid, "TODO-001", "api")
            assert catching.catch_up(cat) == {"synced": [], "running": ["TODO-001"]}
            assert _statuses(cat)["TODO-001"] == "in_progress"
            assert "in_progress" not in cat.read_text()

            end_sweep(rt, sid, "stopped by the test", status=SweepStatus.cancelled)
            live.wait_mark(cat, sid, this_process())  # a live process will sync it
            assert catching.catch_up(cat) == {"synced": [], "running": []}
            assert _statuses(cat)["TODO-001"] == "pending"  # no overlay once it ended
            assert list(live.marked(cat)) == [sid]

            gone = {"host": socket.gethostname(), "pid": 2 ** 22 + 7, "started": "1"}
            live.wait_mark(cat, sid, gone)  # ... and it died: the next command syncs
            assert catching.catch_up(cat)["synced"] == [sid]
            assert live.marked(cat) == {}
            assert rt.checkpoints.get_sweep_fields(sid, ("synced_at",))["synced_at"]
            assert catching.catch_up(cat) == {"synced": [], "running": []}
        finally:
            live.set_overlay(cat, {})


def test_another_redis_markers_are_left_alone(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cat = chain_catalog(tmp_path)
    live.mark(cat, "S-other", at=live.where("redis://elsewhere:6379/0", "coord"), plan=None,
              todos=["TODO-001"])
    monkeypatch.delenv("COORD_REDIS_URL", raising=False)

    def no_redis(*a: object, **k: object) -> None:
        raise AssertionError("asked Redis for another Redis's sweep")

    monkeypatch.setattr(catching, "get_runtime", no_redis)
    assert catching.catch_up(cat) == {"synced": [], "running": []}
    assert list(live.marked(cat)) == ["S-other"]


def test_no_sync_leaves_nothing_for_the_next_command(tmp_path: Path) -> None:
    """`--no-sync`: the outcome is not written when the sweep ends, nor by the next
    command (its marker goes); `coord sweep sync ID` still writes it when asked."""
    from coordination.cli.sweep import finish
    from coordination.sweeps import SweepService

    with stub_runtime() as rt:
        cat = chain_catalog(tmp_path)
        sid = start(rt, cat)
        end_sweep(rt, sid, "stopped by the test", status=SweepStatus.cancelled)
        svc = SweepService(rt, cat)
        finish(svc, svc.status(sid), as_json=True, sync=False)
        assert live.marked(cat) == {}


def test_a_wait_given_up_leaves_no_waiter(tmp_path: Path) -> None:
    """A wait that stops before the end (its timeout) no longer holds the sync back."""
    from coordination.errors import CoordError
    from coordination.sweeps import SweepService

    with stub_runtime() as rt:
        cat = chain_catalog(tmp_path)
        svc = SweepService(rt, cat)
        sid = start(rt, cat)
        try:
            svc.wait(sid, timeout=0.2)
        except CoordError:
            pass  # (a timeout may be said by raising)
        assert "waiter" not in live.marked(cat)[sid]
