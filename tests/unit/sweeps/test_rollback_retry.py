"""Issue #29 (1, 4, 6): a failed rollback finished by `sweep rollback` again, resume
refusing to re-apply compensated todos without --reapply, the trigger kept in a
rolled-back sweep's reason, and `--atomic=stop` killing what runs at the first failure.

Embedded: the library and in-process workers on the unit tier's runtime. Undo commands
append their todo id to one evidence file, so the order they ran in is read back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from coordination.errors import UsageError
from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from coordination.sweeps.spec import SweepSpec, atomic_mode
from tests.unit.support.sweeps import PLAN, counting, runs, write_catalog

pytestmark = pytest.mark.timeout(150)
REPOS = ("api", "web", "jobs", "ops")
A, B, C, D, E = (f"TODO-00{i}" for i in range(1, 6))


def ran(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def change(tmp_path: Path, *, undo_c: str | None = None, run: dict[str, str] | None = None,
           counter: Path | None = None, c_after: str = B) -> tuple[Path, Path]:
    """A -> B -> C -> D over four repos, and E (ops) after A; each undo appends its id
    to undo.log (C's runs ``undo_c`` first). ``counter``: runs count themselves there.
    ``c_after``: C's blocker."""
    log = tmp_path / "undo.log"
    edges = {A: [], B: [A], C: [c_after], D: [C], E: [A]}
    repo = {A: "api", B: "web", C: "jobs", D: "ops", E: "ops"}
    todos: list[dict[str, Any]] = []
    for t, before in edges.items():
        undo = f"echo {t} >> {log}"
        if t == C and undo_c:
            undo = f"{undo_c} && {undo}"
        command = (run or {}).get(t, "true")
        if counter is not None:
            command = counting(counter, t, command)
        todos.append({"id": t, "repo": repo[t], "blocked_by": before, "run": command,
                      "undo": undo})
    return write_catalog(tmp_path / "eco", todos, repos=REPOS), log


def statuses(st: dict[str, Any]) -> dict[str, str]:
    return {t: v["status"] for t, v in st["todos"].items()}


def kinds(rt: Runtime, sid: str) -> list[str]:
    return [e.kind for e in rt.events.read(sweep_id=sid)]


def applied_then_rolled_back(svc: SweepService) -> tuple[str, dict[str, Any]]:
    """The plan's sweep run to success, then rolled back (workers running): its id and
    the status the rollback ended in."""
    sid = svc.start(PLAN, ignore_blockers=True)
    assert svc.wait(sid, timeout=60)["status"] == "succeeded"
    svc.rollback(sid)
    return sid, svc.wait(sid, timeout=60)


def test_a_failed_rollback_is_finished_by_rolling_back_again(rt: Runtime, tmp_path: Path) -> None:
    """C's undo fails until a file exists: the rollback ends rollback_failed with B and
    A skipped. `sweep rollback` again (dry run first) retries exactly C, B, A, in that
    order, and leaves the undos that ran (D, E) alone."""
    from workers.embedded import embedded_workers

    fixed = tmp_path / "fixed"
    catalog, log = change(tmp_path, undo_c=f"test -f {fixed}")
    svc = SweepService(rt, catalog)
    with embedded_workers(rt, dict.fromkeys(REPOS, 1)):
        sid, failed = applied_then_rolled_back(svc)
        assert failed["status"] == "rollback_failed", failed["reason"]
        assert statuses(failed) == {A: "skipped", B: "skipped", C: "compensation_failed",
                                    D: "compensated", E: "compensated"}
        first = ran(log)
        assert sorted(first) == [D, E]

        # resume would re-apply the change: refused, pointing to rollback
        for dry in (True, False):
            with pytest.raises(UsageError) as refused:
                svc.resume(sid, dry_run=dry)
            assert "rollback did not finish" in str(refused.value)
            assert f"coord sweep rollback {sid}" in str(refused.value.hint)
            assert "--reapply" in str(refused.value.hint)

        before = svc.status(sid)
        preview = svc.rollback(sid, dry_run=True)
        assert svc.status(sid) == before and ran(log) == first  # a dry run changes nothing
        assert preview["retry"] is True and preview["dry_run"] is True
        assert preview["levels"] == [[C], [B], [A]]
        assert preview["was"] == {A: "skipped", B: "skipped", C: "compensation_failed"}
        assert preview["compensated"] == [D, E]

        fixed.touch()
        out = svc.rollback(sid)
        assert out["compensate"] == [A, B, C] and out["status"] == "rolling_back"
        after = svc.wait(sid, timeout=60)
    assert after["status"] == "rolled_back", after["reason"]
    assert ran(log) == first + [C, B, A]  # only what was left, in reverse order
    assert set(statuses(after).values()) == {"compensated"}
    assert after["run"] == 2
    assert after["reason"] == "rolled back by user (it had succeeded); 5 todos compensated"
    ks = kinds(rt, sid)
    assert ks.count("sweep.rolling_back") == 2 and ks.count("todo.compensated") == 5
    retried = [e for e in rt.events.read(sweep_id=sid) if e.kind == "sweep.rolling_back"][-1]
    assert retried.data["retry"] is True and retried.data["compensate"] == 3
    with pytest.raises(UsageError, match="rolled back already"):
        svc.rollback(sid)


def test_a_retried_rollback_takes_the_fixed_undo_from_the_catalog(
        rt: Runtime, tmp_path: Path) -> None:
    """C's undo was wrong (exit 3); fixed in the catalog, the retry runs the fixed one."""
    from workers.embedded import embedded_workers

    catalog, log = change(tmp_path, undo_c="exit 3")
    svc = SweepService(rt, catalog)
    with embedded_workers(rt, dict.fromkeys(REPOS, 1)):
        sid, failed = applied_then_rolled_back(svc)
        assert failed["todos"][C]["reason"] == "exit 3"
        catalog.write_text(catalog.read_text().replace("exit 3 && ", ""))
        svc.rollback(sid)
        after = svc.wait(sid, timeout=60)
    assert after["status"] == "rolled_back", after["reason"]
    assert ran(log)[-3:] == [C, B, A]


def test_resume_refuses_compensated_todos_unless_reapply(rt: Runtime, tmp_path: Path) -> None:
    from workers.embedded import embedded_workers

    counter = tmp_path / "runs"
    counter.mkdir()
    catalog, _log = change(tmp_path, counter=counter)
    svc = SweepService(rt, catalog)
    with embedded_workers(rt, dict.fromkeys(REPOS, 1)):
        sid, rolled = applied_then_rolled_back(svc)
        assert rolled["status"] == "rolled_back"
        for dry in (True, False):
            with pytest.raises(UsageError) as refused:
                svc.resume(sid, dry_run=dry)
            msg = str(refused.value)
            assert f"{A}, {B}, {C}, {D}, {E} were compensated" in msg, msg
            assert "--reapply" in str(refused.value.hint)
        assert [runs(counter, t) for t in (A, B, C, D, E)] == [1] * 5  # nothing ran
        preview = svc.resume(sid, dry_run=True, reapply=True)
        assert preview["rerun"] == [A, B, C, D, E] and preview["compensated"] == [A, B, C, D, E]
        out = svc.resume(sid, reapply=True)
        assert out["rerun"] == [A, B, C, D, E]
        again = svc.wait(sid, timeout=60)
    assert again["status"] == "succeeded", again["reason"]
    assert [runs(counter, t) for t in (A, B, C, D, E)] == [2] * 5


def test_an_atomic_sweeps_reason_names_the_failure_that_triggered_it(
        rt: Runtime, tmp_path: Path) -> None:
    from workers.embedded import embedded_workers

    # B fails only once E (its sibling in level 1, on another repo) has run: then A and
    # E are the two to undo, whichever worker thread got to its message first.
    flag = tmp_path / "e.ran"
    catalog, log = change(tmp_path, run={
        B: f"while [ ! -e {flag} ]; do sleep 0.01; done; exit 1", E: f"touch {flag}"})
    svc = SweepService(rt, catalog)
    with embedded_workers(rt, dict.fromkeys(REPOS, 1)):
        sid = svc.start(PLAN, ignore_blockers=True, atomic=True)
        st = svc.wait(sid, timeout=60)
    assert st["status"] == "rolled_back"
    assert st["reason"] == f"rolled back after {B} failed: exit 1; 2 todos compensated"
    assert sorted(ran(log)) == [A, E]
    ev = [e for e in rt.events.read(sweep_id=sid) if e.kind == "sweep.rolling_back"]
    assert [e.data["reason"] for e in ev] == [f"after {B} failed: exit 1"]
    rows = svc.list()
    assert rows[0]["reason"] == st["reason"]


def test_an_atomic_sweep_with_nothing_to_undo_ends_rolled_back_naming_its_trigger(
        rt: Runtime, tmp_path: Path) -> None:
    """A's own run fails: nothing succeeded, so nothing is undone; the move goes
    running -> rolling_back -> rolled_back, as the transition table allows."""
    from workers.embedded import embedded_workers

    catalog, log = change(tmp_path, run={A: "exit 4"})
    svc = SweepService(rt, catalog)
    with embedded_workers(rt, dict.fromkeys(REPOS, 1)):
        sid = svc.start(PLAN, ignore_blockers=True, atomic=True)
        st = svc.wait(sid, timeout=60)
    assert st["status"] == "rolled_back", st["reason"]
    assert st["reason"] == f"rolled back after {A} failed: exit 4; nothing to compensate"
    assert ran(log) == []


def test_atomic_stop_kills_the_running_todos_at_the_first_failure(
        rt: Runtime, tmp_path: Path) -> None:
    """B fails after a second while C (another repo, same level) sleeps a minute: with
    --atomic=stop C is killed (its process group gone) and recorded cancelled, D never
    starts, and A's undo runs, all well before C's minute is up."""
    from workers.embedded import embedded_workers

    catalog, log = change(tmp_path, run={B: "sleep 1 && exit 1", C: "sleep 59.75"}, c_after=A)
    svc = SweepService(rt, catalog)
    began = time.monotonic()
    with embedded_workers(rt, dict.fromkeys(REPOS, 1)):
        sid = svc.start(PLAN, ignore_blockers=True, atomic="stop")
        st = svc.wait(sid, timeout=45)
    took = time.monotonic() - began
    assert st["status"] == "rolled_back", st["reason"]
    assert took < 30, f"took {took:.1f} s: the running todo was not stopped"
    got = statuses(st)
    assert got[B] == "failed" and got[C] == "cancelled" and got[D] == "cancelled"
    assert got[A] == "compensated" and got[E] == "compensated"
    assert sorted(ran(log)) == [A, E]  # C, killed, is not undone
    assert st["reason"].startswith(f"rolled back after {B} failed: exit 1")
    assert not [p for p in psutil.process_iter(["cmdline"])
                if (p.info["cmdline"] or [])[-1:] == ["59.75"]]
    rec = rt.checkpoints.get_sweep_fields(sid, ("stopped_run", "stopped_by", "atomic"))
    assert rec is not None and rec["stopped_run"] == 0 and rec["atomic"] is True
    assert rec["stopped_by"] == f"{B} failed: exit 1"


def test_the_atomic_mode_travels_in_the_spec_and_old_specs_read_as_finish() -> None:
    from coordination.sweeps.spec import TodoSpec

    spec = SweepSpec(sweep_id="S", plan=PLAN, strategy="levels", run=0,
                     todos={A: TodoSpec(id=A, repo="api", queue="q", run="true", timeout=1,
                                        retries=0)},
                     levels=[[A]], concurrency={"api": 1})
    assert '"atomic"' not in spec.to_json()  # what a spec of before 0.3 looks like
    assert SweepSpec.from_json(spec.to_json()).atomic == ""
    spec.atomic = "stop"
    assert SweepSpec.from_json(spec.to_json()).atomic == "stop"
    assert [atomic_mode(x) for x in (False, None, True, "finish", "stop")] == [
        "", "", "finish", "finish", "stop"]
    with pytest.raises(ValueError, match="unknown atomic mode"):
        atomic_mode("now")
