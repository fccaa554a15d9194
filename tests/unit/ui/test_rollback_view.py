"""The web view tells a rollback from a success: undos counted apart in progress, a
rolled-back todo's change and undo shown apart, the trigger on the sweep's document.

Embedded (fakeredis) runtime, sweeps run by in-process workers; the documents are read
through the app, as the page reads them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from coordination.ui.app import create_app
from tests.unit.support.sweeps import PLAN, repos_of, write_catalog

pytestmark = pytest.mark.timeout(120)


def local(app: ASGIApp) -> TestClient:
    """A test client addressing the view as localhost (it refuses other Host names)."""
    return TestClient(app, base_url="http://localhost")
A, B, C = "TODO-001", "TODO-002", "TODO-003"


def change(tid: str) -> str:
    return f"echo change-out-{tid}; echo change-err-{tid} >&2"


def undo(tid: str) -> str:
    return f"echo undo-out-{tid}; echo undo-err-{tid} >&2"


def catalog(root: Path, *, fail: str | None = None) -> Path:
    """A -> B -> C over three repos, each with an undo; ``fail``: that todo's run fails."""
    return write_catalog(root, [
        {"id": A, "repo": "api", "run": change(A), "undo": undo(A)},
        {"id": B, "repo": "web", "blocked_by": [A], "undo": undo(B),
         "run": "echo kaput >&2; exit 7" if fail == B else change(B)},
        {"id": C, "repo": "jobs", "blocked_by": [B], "run": change(C), "undo": undo(C)},
    ])


def sweep(rt: Runtime, eco: Path, *, atomic: bool = False,
          rollback: bool = False) -> tuple[str, dict[str, Any]]:
    from workers.embedded import embedded_workers

    svc = SweepService(rt, eco)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, ignore_blockers=True, atomic=atomic)
        st = svc.wait(sid, timeout=60)
        if rollback:
            svc.rollback(sid)
            st = svc.wait(sid, timeout=60)
    return sid, st


def get(client: TestClient, url: str) -> Any:
    r = client.get(url)
    assert r.status_code == 200, (url, r.text)
    return r.json()


def test_a_rolled_back_sweep_counts_its_undos_apart(rt: Runtime, tmp_path: Path) -> None:
    eco = catalog(tmp_path / "eco")
    sid, st = sweep(rt, eco, rollback=True)
    assert st["status"] == "rolled_back"
    client = local(create_app(rt, eco))
    [row] = get(client, "/api/overview")["sweeps"]
    assert row["progress"] == {"done": 3, "total": 3, "undone": 3, "undo_failed": 0}
    graph = get(client, f"/api/sweeps/{sid}/graph")
    assert graph["sweep"]["progress"] == {"done": 3, "total": 3, "undone": 3, "undo_failed": 0}
    assert graph["sweep"]["rollback_reason"], "the trigger of the rollback is on the document"
    assert graph["sweep"]["reason"]


def test_a_sweep_never_rolled_back_has_no_undo_counts(rt: Runtime, tmp_path: Path) -> None:
    eco = catalog(tmp_path / "eco")
    sid, st = sweep(rt, eco)
    assert st["status"] == "succeeded"
    client = local(create_app(rt, eco))
    [row] = get(client, "/api/overview")["sweeps"]
    assert row["progress"] == {"done": 3, "total": 3}
    assert get(client, f"/api/sweeps/{sid}/graph")["sweep"]["progress"] == {"done": 3, "total": 3}
    detail = get(client, f"/api/sweeps/{sid}/todos/{A}")
    assert detail["change"] is None
    assert "change-out-" + A in detail["output_tail"]


def test_a_rolled_back_todo_shows_its_change_and_its_undo_apart(
        rt: Runtime, tmp_path: Path) -> None:
    eco = catalog(tmp_path / "eco")
    sid, _st = sweep(rt, eco, rollback=True)
    d = get(local(create_app(rt, eco)), f"/api/sweeps/{sid}/todos/{B}")
    # the undo: the todo's entry, its output as `sweep status --json` names it
    assert d["status"] == "compensated" and d["exit_code"] == 0 and d["attempts"] == 1
    assert f"undo-out-{B}" in d["undo_output_tail"] and f"undo-err-{B}" in d["undo_output_tail"]
    assert "change-" not in d["undo_output_tail"]
    assert f"change-out-{B}" in d["output_tail"] and "undo-" not in d["output_tail"]
    # the change's own run, as it ended before the undo ran
    c = d["change"]
    assert c["status"] == "succeeded" and c["exit_code"] == 0 and c["attempts"] == 1
    assert c["command"] == change(B)
    assert f"change-out-{B}" in c["output_tail"] and f"change-err-{B}" in c["output_tail"]
    assert "undo-" not in c["output_tail"]
    assert c["finished_at"] and d["finished_at"] and c["finished_at"] <= d["started_at"]


def test_an_atomic_rollback_keeps_the_failure_and_each_change(
        rt: Runtime, tmp_path: Path) -> None:
    eco = catalog(tmp_path / "eco", fail=B)
    sid, st = sweep(rt, eco, atomic=True)
    assert st["status"] == "rolled_back"
    assert {t: v["status"] for t, v in st["todos"].items()} == {
        A: "compensated", B: "failed", C: "cancelled"}
    client = local(create_app(rt, eco))
    failed = get(client, f"/api/sweeps/{sid}/todos/{B}")
    assert failed["change"] is None and "kaput" in failed["output_tail"]
    undone = get(client, f"/api/sweeps/{sid}/todos/{A}")
    assert f"change-out-{A}" in undone["change"]["output_tail"]
    assert f"undo-out-{A}" in undone["undo_output_tail"]
    [row] = get(client, "/api/overview")["sweeps"]
    assert row["progress"] == {"done": 3, "total": 3, "undone": 1, "undo_failed": 0}
    graph = get(client, f"/api/sweeps/{sid}/graph")
    assert B in str(graph["sweep"]["rollback_reason"]), graph["sweep"]


def test_an_undo_not_yet_run_shows_no_output_of_the_change_as_its_own(
        rt: Runtime, tmp_path: Path) -> None:
    """Between the rollback's start and its undo's start the checkpoint still holds the
    change's run: the detail shows it as the change, the undo blank."""
    from workers.embedded import embedded_workers

    from coordination.sweeps.rollback import start_rollback

    eco = catalog(tmp_path / "eco")
    svc = SweepService(rt, eco)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, ignore_blockers=True)
        assert svc.wait(sid, timeout=60)["status"] == "succeeded"
    # no workers: the undos are sent, none runs
    assert start_rollback(rt, sid, reason="by user") is not None
    d = get(local(create_app(rt, eco)), f"/api/sweeps/{sid}/todos/{A}")
    assert d["status"] in ("pending", "queued")
    assert d["undo_output_tail"] == "" and d["exit_code"] is None and d["attempts"] == 0
    assert f"change-out-{A}" in d["output_tail"]  # as `sweep status --json` says it
    assert f"change-out-{A}" in d["change"]["output_tail"]
    graph = get(local(create_app(rt, eco)), f"/api/sweeps/{sid}/graph")
    assert graph["sweep"]["status"] == "rolling_back"
    assert graph["sweep"]["progress"]["undone"] == 0
    assert graph["sweep"]["rollback_reason"]


@pytest.mark.parametrize("how", ["rollback", "atomic"])
def test_the_todo_document_names_its_tails_as_sweep_status_json_does(
        rt: Runtime, tmp_path: Path, how: str) -> None:
    """The web view's todo document and `sweep status --json` (the same sweep, the same
    todo) say the same: ``output_tail`` the change's, ``undo_output_tail`` its undo's."""
    eco = catalog(tmp_path / "eco", fail=B if how == "atomic" else None)
    sid, st = sweep(rt, eco, rollback=how == "rollback", atomic=how == "atomic")
    assert st["status"] == "rolled_back"
    client = local(create_app(rt, eco))
    for tid in ([A] if how == "atomic" else [A, B, C]):
        entry, d = st["todos"][tid], get(client, f"/api/sweeps/{sid}/todos/{tid}")
        assert entry["status"] == d["status"] == "compensated"
        assert f"change-out-{tid}" in entry["output_tail"]
        assert f"undo-out-{tid}" in entry["undo_output_tail"]
        assert (d["output_tail"], d["undo_output_tail"]) == (
            entry["output_tail"], entry["undo_output_tail"]), tid
