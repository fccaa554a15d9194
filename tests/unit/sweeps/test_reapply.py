"""`sweep resume --reapply` after a rollback applies the change again in the order of
the run that applied it (its edges, strategy, waves, one at a time, chains), not in the
rollback's reverse order: after a rollback, after a rollback that failed, after a
partial one, and with --only.

The planning half needs no Redis; the embedded half runs real sweeps whose runs append
their todo id to one evidence file, so the order they ran in is read back from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.keys import Keys
from coordination.runtime.context import Runtime
from coordination.status import TodoStatus
from coordination.sweeps import SweepService
from coordination.sweeps.planning import Planning
from coordination.sweeps.rollback import retry_plan, rollback_plan, rollback_spec
from coordination.sweeps.spec import SweepSpec
from tests.unit.support.sweeps import PLAN, write_catalog

pytestmark = pytest.mark.timeout(120)
REPOS = ("api", "web", "jobs")
A, B, C, D = (f"TODO-00{i}" for i in range(1, 5))


def change(root: Path, log: Path, *, waves: bool = False, undo: dict[str, str] | None = None,
           no_undo: str | None = None) -> Path:
    """A -> B -> C (api, web, jobs) and D (api) on its own: each run appends its id to
    ``log``, each undo its id with a ``-`` (``undo``: another undo for some)."""
    todos: list[dict[str, Any]] = []
    for t, repo, before in ((A, "api", []), (B, "web", [A]), (C, "jobs", [B]), (D, "api", [])):
        item: dict[str, Any] = {"id": t, "repo": repo, "blocked_by": before,
                                "run": f"echo {t} >> {log}",
                                "undo": (undo or {}).get(t, f"echo -{t} >> {log}")}
        if t == no_undo:
            del item["undo"]
        todos.append(item)
    catalog = write_catalog(root, todos, repos=REPOS)
    if waves:  # api first, then the rest
        doc = yaml.safe_load(catalog.read_text())
        doc["coordination"]["plans"][0]["waves"] = [
            {"name": "first", "repos": ["api"]}, {"name": "rest", "repos": ["web", "jobs"]}]
        catalog.write_text(yaml.safe_dump(doc, sort_keys=False))
    return catalog


def ran(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


# -- planning: the resume's spec ------------------------------------------------------

def rolled_back(spec: SweepSpec, *, retried: bool = False) -> SweepSpec:
    """``spec`` (every todo succeeded) rolled back, as its record keeps it (its JSON);
    ``retried``: B's undo failed (A's skipped after it), and the rollback was retried."""
    spec.sweep_id = "S"
    rb = rollback_spec(spec, rollback_plan(spec, dict.fromkeys(spec.todos, TodoStatus.succeeded)))
    rb = SweepSpec.from_json(rb.to_json())
    if retried:
        after = {C: TodoStatus.compensated, D: TodoStatus.compensated,
                 B: TodoStatus.compensation_failed, A: TodoStatus.skipped}
        rb = SweepSpec.from_json(rollback_spec(rb, retry_plan(rb, after)).to_json())
        assert rb.levels == [[B], [A]]
    return rb


@pytest.mark.parametrize("how", ["levels", "eager", "waves", "sequential", "merge_chains",
                                 "retried"])
def test_a_resume_after_a_rollback_plans_the_run_that_applied_the_change(
        tmp_path: Path, how: str) -> None:
    catalog = change(tmp_path / "eco", tmp_path / "log", waves=how == "waves")
    planning = Planning(Keys("t"), catalog)
    spec = planning.plan_spec(PLAN, strategy="eager" if how == "eager" else "levels",
                              ignore_blockers=True, sequential=how == "sequential",
                              merge_chains=how == "merge_chains")
    expected = planning.resume_spec(spec, [A, B, C, D])  # a resume of the run itself
    back = rolled_back(spec, retried=how == "retried")
    assert back.mode == "rollback" and back.todos[A].preds  # undone last: after B's undo
    nxt = planning.resume_spec(back, [A, B, C, D])
    assert nxt.mode == "run" and nxt.run == back.run + 1
    assert nxt.levels == expected.levels
    assert (nxt.strategy, nxt.sequential, nxt.chains) == (
        expected.strategy, expected.sequential, expected.chains)
    assert nxt.waves == expected.waves
    assert {t: (s.preds, s.succs, s.run, s.level) for t, s in nxt.todos.items()} == {
        t: (s.preds, s.succs, s.run, s.level) for t, s in expected.todos.items()}
    assert nxt.forward is None
    assert nxt.dispatched == dict.fromkeys([A, B, C, D], nxt.run)


def test_a_partial_rollback_keeps_the_edges_of_what_it_did_not_undo(tmp_path: Path) -> None:
    """B has no undo: the rollback leaves it succeeded (its edges emptied in the
    rollback's spec); a resume keeps them: C gets B's outputs, and waits for none (B
    stays done), as a resume of the run itself."""
    catalog = change(tmp_path / "eco", tmp_path / "log", no_undo=B)
    planning = Planning(Keys("t"), catalog)
    back = rolled_back(planning.plan_spec(PLAN, strategy="levels", ignore_blockers=True))
    assert back.levels == [[C, D], [A]]
    assert back.todos[B].preds == back.todos[B].succs == []
    nxt = planning.resume_spec(back, [A, C, D])
    assert (nxt.todos[B].preds, nxt.todos[B].succs, nxt.todos[C].preds) == ([A], [C], [B])
    assert nxt.levels == [[A, C, D]]


def test_a_rollback_spec_from_before_the_forward_run_was_kept_still_reads(
        tmp_path: Path) -> None:
    """Its JSON has no "forward": it reads, and a resume runs what it compensated in
    the order it undid them reversed (dependencies first)."""
    planning = Planning(Keys("t"), change(tmp_path / "eco", tmp_path / "log"))
    spec = planning.plan_spec(PLAN, strategy="levels", ignore_blockers=True)
    assert '"forward"' not in spec.to_json()
    back = rolled_back(spec)
    assert '"forward"' in back.to_json()
    back.forward = None
    old = SweepSpec.from_json(back.to_json())
    assert old.forward is None and old.mode == "rollback"
    nxt = planning.resume_spec(old, [A, B, C, D])
    assert nxt.levels == [[A, D], [B], [C]]


def test_a_coord_run_sweep_rolled_back_resumes_in_its_order(tmp_path: Path) -> None:
    """Its todos have no undo: its rollback compensates nothing but empties their edges
    in its spec; a resume of what failed still runs the consumer after its provider,
    with the command as typed."""
    from coordination.catalog.models import Catalog
    from coordination.sweeps.adhoc import run_spec

    path = tmp_path / "ecosystem.yaml"
    path.write_text(yaml.safe_dump({
        "version": 1, "repos": [{"name": n} for n in ("db", "api", "web")],
        "coordination": {"dependencies": [
            {"id": "DEP-001", "consumer": "web", "provider": "api"},
            {"id": "DEP-002", "consumer": "api", "provider": "db"}]}}))
    cat = Catalog.model_validate(yaml.safe_load(path.read_text()))
    spec = run_spec(Keys("t"), cat, path, "make it", ["db", "api", "web"])
    spec.sweep_id = "S"
    status = {"RUN-db": TodoStatus.succeeded, "RUN-api": TodoStatus.failed,
              "RUN-web": TodoStatus.skipped}
    plan = rollback_plan(spec, status)
    assert plan.compensate == []
    back = SweepSpec.from_json(rollback_spec(spec, plan).to_json())
    nxt = Planning(Keys("t"), path).resume_spec(back, ["RUN-api", "RUN-web"], adhoc=True)
    assert nxt.levels == [["RUN-api"], ["RUN-web"]]
    assert nxt.todos["RUN-web"].preds == ["RUN-api"]
    assert {t.run for t in nxt.todos.values()} == {"make it"}


# -- embedded: real sweeps -------------------------------------------------------------

def apply_and_roll_back(rt: Runtime, catalog: Path, *, expect: str = "rolled_back"
                        ) -> tuple[SweepService, str]:
    from workers.embedded import embedded_workers

    svc = SweepService(rt, catalog)
    with embedded_workers(rt, dict.fromkeys(REPOS, 1)):
        sid = svc.start(PLAN, ignore_blockers=True)
        assert svc.wait(sid, timeout=60)["status"] == "succeeded"
        svc.rollback(sid)
        st = svc.wait(sid, timeout=60)
    assert st["status"] == expect, st["reason"]
    return svc, sid


def reapply(rt: Runtime, svc: SweepService, sid: str, **kw: Any) -> dict[str, Any]:
    from workers.embedded import embedded_workers

    with embedded_workers(rt, dict.fromkeys(REPOS, 1)):
        svc.resume(sid, reapply=True, **kw)
        return dict(svc.wait(sid, timeout=60))


@pytest.mark.signed(key="r" * 32)
def test_a_reapply_runs_the_change_in_its_own_order(keyed_rt: Runtime, tmp_path: Path) -> None:
    """(Signed: the spec that keeps the forward run is signed and checked as any.)"""
    log = tmp_path / "log"
    svc, sid = apply_and_roll_back(keyed_rt, change(tmp_path / "eco", log))
    undone = ran(log)[4:]
    assert undone.index(f"-{C}") < undone.index(f"-{B}") < undone.index(f"-{A}")
    log.unlink()
    st = reapply(keyed_rt, svc, sid)
    assert st["status"] == "succeeded", st["reason"]
    order = ran(log)
    assert sorted(order) == [A, B, C, D]
    assert [t for t in order if t != D] == [A, B, C]


def test_a_reapply_after_a_failed_rollback_runs_in_its_own_order(
        rt: Runtime, tmp_path: Path) -> None:
    """B's undo fails (A's is skipped after it): --reapply applies A, B, C again in order."""
    log = tmp_path / "log"
    catalog = change(tmp_path / "eco", log, undo={B: "exit 5"})
    svc, sid = apply_and_roll_back(rt, catalog, expect="rollback_failed")
    log.unlink()
    st = reapply(rt, svc, sid)
    assert st["status"] == "succeeded", st["reason"]
    assert [t for t in ran(log) if t != D] == [A, B, C]


def test_reapply_only_a_todo_runs_its_dependents_after_it(rt: Runtime, tmp_path: Path) -> None:
    """--only A: A's dependents in the change (B, C), not in the undos' order (none)."""
    log = tmp_path / "log"
    svc, sid = apply_and_roll_back(rt, change(tmp_path / "eco", log))
    preview = svc.resume(sid, only=[A], reapply=True, dry_run=True)
    assert preview["rerun"] == [A, B, C] and preview["dependents"] == [B, C]
    log.unlink()
    st = reapply(rt, svc, sid, only=[A])
    assert ran(log) == [A, B, C]
    assert {t: v["status"] for t, v in st["todos"].items()} == {
        A: "succeeded", B: "succeeded", C: "succeeded", D: "compensated"}
