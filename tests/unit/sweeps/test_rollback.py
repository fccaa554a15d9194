"""Sagas: `sweep rollback` and `plan sweep --atomic`, embedded (library + in-process workers).

Undo commands append their todo id to one evidence file, so the order they ran in
is read back from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coordination.errors import UsageError
from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from tests.unit.support.sweeps import PLAN, write_catalog

pytestmark = pytest.mark.timeout(120)
REPOS = ("api", "web", "jobs", "ops")
A, B, C, D, E, F = (f"TODO-00{i}" for i in range(1, 7))


def undo(log: Path, tid: str, then: str = "true") -> str:
    return f"echo {tid} >> {log} && {then}"


def cross_repo(tmp_path: Path, *, fail_run: str | None = None, fail_undo: str | None = None,
               no_undo: str | None = None, more: bool = False) -> tuple[Path, Path]:
    """A -> B -> C -> D over four repos, and E (ops) after A: a change and its undo.
    ``more``: F (api) after E, in C's level but not after B."""
    log = tmp_path / "undo.log"
    edges = {A: [], B: [A], C: [B], D: [C], E: [A]}
    repo = {A: "api", B: "web", C: "jobs", D: "ops", E: "ops"}
    if more:
        edges[F], repo[F] = [E], "api"
    todos: list[dict[str, Any]] = []
    for t, before in edges.items():
        item: dict[str, Any] = {
            "id": t, "repo": repo[t], "blocked_by": before,
            # a failing run fails late, so its level's other todos have run by then
            "run": "sleep 1.5 && false" if t == fail_run else "true",
            "undo": undo(log, t, "false" if t == fail_undo else "true"),
        }
        if t == no_undo:
            del item["undo"]
        todos.append(item)
    return write_catalog(tmp_path / "eco", todos, repos=REPOS), log


def ran(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def sweep_and(rt: Runtime, catalog: Path, then: Any = None, *, atomic: bool = False,
              timeout: float = 60) -> tuple[SweepService, str, dict[str, Any], Any]:
    from workers.embedded import embedded_workers

    svc = SweepService(rt, catalog)
    with embedded_workers(rt, {r: 1 for r in REPOS}):
        sid = svc.start(PLAN, ignore_blockers=True, atomic=atomic)
        st = svc.wait(sid, timeout=timeout)
        extra = then(svc, sid) if then else None
    return svc, sid, st, extra


def rollback_and_wait(svc: SweepService, sid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    out = svc.rollback(sid)
    return out, svc.wait(sid, timeout=60)


def kinds(rt: Runtime, sid: str) -> list[str]:
    return [e.kind for e in rt.events.read(sweep_id=sid)]


def test_rollback_undoes_every_succeeded_todo_in_reverse_dependency_order(
        rt: Runtime, tmp_path: Path) -> None:
    catalog, log = cross_repo(tmp_path)
    _svc, sid, st, (out, after) = sweep_and(rt, catalog, rollback_and_wait)
    assert st["status"] == "succeeded"
    assert out["compensate"] == [A, B, C, D, E] and out["not_compensable"] == []
    order = ran(log)
    assert sorted(order) == [A, B, C, D, E]
    pos = {t: i for i, t in enumerate(order)}
    # each undo after the undos of everything that depends on it
    assert pos[D] < pos[C] < pos[B] < pos[A] and pos[E] < pos[A]
    assert after["status"] == "rolled_back", after["reason"]
    assert {t: v["status"] for t, v in after["todos"].items()} == dict.fromkeys(
        [A, B, C, D, E], "compensated")
    assert after["run"] == 1
    ks = kinds(rt, sid)
    assert "sweep.rolling_back" in ks and ks.count("todo.compensated") == 5
    assert ks[-1] == "sweep.finished"


def test_a_failing_undo_stops_the_undos_that_must_come_after_it(
        rt: Runtime, tmp_path: Path) -> None:
    catalog, log = cross_repo(tmp_path, fail_undo=C)
    _svc, _sid, _st, (_out, after) = sweep_and(rt, catalog, rollback_and_wait)
    status = {t: v["status"] for t, v in after["todos"].items()}
    assert status[D] == "compensated" and status[E] == "compensated"
    assert status[C] == "compensation_failed"
    assert status[B] == "skipped" and status[A] == "skipped"  # their undo never ran
    assert B not in ran(log) and A not in ran(log)
    assert after["status"] == "rollback_failed"
    assert f"{C} compensation_failed" in after["reason"]


def test_dry_run_names_what_cannot_be_undone_and_changes_nothing(
        rt: Runtime, tmp_path: Path) -> None:
    catalog, log = cross_repo(tmp_path, no_undo=B)

    def dry(svc: SweepService, sid: str) -> dict[str, Any]:
        before = svc.status(sid)
        preview = svc.rollback(sid, dry_run=True)
        assert svc.status(sid) == before  # nothing changed
        return preview

    _svc, _sid, st, preview = sweep_and(rt, catalog, dry)
    assert st["status"] == "succeeded" and ran(log) == []
    assert preview["dry_run"] is True
    assert preview["not_compensable"] == [B]
    assert preview["levels"] == [[D, E], [C], [A]]


def test_rollback_of_a_live_or_rolled_back_sweep_is_refused(rt: Runtime, tmp_path: Path) -> None:
    catalog, _log = cross_repo(tmp_path)

    def twice(svc: SweepService, sid: str) -> None:
        rollback_and_wait(svc, sid)
        with pytest.raises(UsageError, match="rolled back already"):
            svc.rollback(sid)

    sweep_and(rt, catalog, twice)
    svc = SweepService(rt, catalog)
    sid = svc.start(PLAN, ignore_blockers=True)  # no workers: it stays queued
    with pytest.raises(UsageError, match="only a succeeded, failed or cancelled sweep"):
        svc.rollback(sid)
    svc.cancel(sid, wait=0)


def test_atomic_sweep_failing_in_its_second_level_stops_and_rolls_back(
        rt: Runtime, tmp_path: Path) -> None:
    """B (level 1) fails: nothing starts after it (C, D and F, which is not even after B,
    are cancelled), E (level 1, ops) finishes; then the undos of what succeeded (E, then
    A) run on their own."""
    catalog, log = cross_repo(tmp_path, fail_run=B, more=True)
    _svc, sid, st, _ = sweep_and(rt, catalog, atomic=True)
    assert st["status"] == "rolled_back", st["reason"]
    status = {t: v["status"] for t, v in st["todos"].items()}
    assert status[B] == "failed"
    assert status[C] == status[D] == status[F] == "cancelled"
    assert "atomic sweep stopped" in st["todos"][F]["reason"]
    assert status[A] == "compensated" and status[E] == "compensated"
    order = ran(log)
    assert order == [E, A]
    ks = kinds(rt, sid)
    assert ks.index("todo.failed") < ks.index("sweep.rolling_back") < ks.index("todo.compensated")


def test_a_sweep_that_is_not_atomic_does_not_roll_back(rt: Runtime, tmp_path: Path) -> None:
    catalog, log = cross_repo(tmp_path, fail_run=B, more=True)
    _svc, _sid, st, _ = sweep_and(rt, catalog)
    assert st["status"] == "failed" and ran(log) == []
    assert st["todos"][F]["status"] == "succeeded"  # not after B: it ran


def test_a_sync_after_a_rollback_makes_the_undone_todos_pending_and_the_plan_active(
        rt: Runtime, tmp_path: Path) -> None:
    """After `sweep rollback --wait` the catalog used to keep the undone todos (and their
    plan) `completed`: `plan sweep --dry-run` then said "nothing to run". Now the sync
    sets them back, and the next sweep of the plan runs them again."""
    import yaml

    catalog, log = cross_repo(tmp_path, no_undo=E)

    def statuses() -> dict[str, str]:
        doc = yaml.safe_load(catalog.read_text())
        todos = {t["id"]: t.get("status", "pending") for t in doc["coordination"]["todos"]}
        plans = {p["id"]: p.get("status") for p in doc["coordination"]["plans"]}
        return {**todos, **plans}

    def sync_twice(svc: SweepService, sid: str) -> tuple[dict[str, Any], dict[str, Any]]:
        first = svc.sync(sid)
        rollback_and_wait(svc, sid)
        return first, svc.sync(sid)

    _svc, sid, st, (first, second) = sweep_and(rt, catalog, sync_twice)
    assert st["status"] == "succeeded" and sorted(first["completed"]) == [A, B, C, D, E]
    assert first["plan_status"] == "completed"
    assert sorted(second["reset"]) == [A, B, C, D]  # E had no undo: its change stays
    assert second["plan_status"] == "active"
    got = statuses()
    assert [got[t] for t in (A, B, C, D)] == ["pending"] * 4
    assert got[E] == "completed" and got[PLAN] == "active"
    # the next sweep of the plan runs the undone todos again (E is still done), and
    # completes the plan
    _svc2, _sid2, st2, synced = sweep_and(rt, catalog, lambda s, i: s.sync(i))
    assert st2["status"] == "succeeded"
    assert sorted(t for t, v in st2["todos"].items() if v["status"] == "succeeded") == \
        [A, B, C, D]
    assert synced["plan_status"] == "completed" and statuses()[A] == "completed"
