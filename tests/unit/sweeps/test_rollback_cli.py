"""Issue #29 through the CLI, embedded (each command its own process, the sweep kept
beside the catalog): a rolled-back sweep's reason names its trigger in `--wait`'s
output, `sweep status` (human and --json) and `coord history`; `sweep rollback` finishes
a rollback_failed sweep (`--dry-run` first) while `sweep resume` points to it and
refuses compensated todos without --reapply; `--atomic` keeps taking no value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.support.cli import clean_error, coord
from tests.unit.support.sweeps import PLAN, write_catalog

pytestmark = pytest.mark.timeout(240)
A, B, C = "TODO-001", "TODO-002", "TODO-003"


def catalog(tmp_path: Path, *, run_b: str = "true", undo_b: str | None = None) -> tuple[Path, Path]:
    """A -> B -> C on three repos; undos append their id to undo.log."""
    log = tmp_path / "undo.log"
    todos: list[dict[str, Any]] = []
    for t, repo, before in ((A, "api", []), (B, "web", [A]), (C, "jobs", [B])):
        undo = f"echo {t} >> {log}"
        if t == B and undo_b:
            undo = f"{undo_b} && {undo}"
        todos.append({"id": t, "repo": repo, "blocked_by": before,
                      "run": run_b if t == B else "true", "undo": undo})
    return write_catalog(tmp_path / "eco", todos), log


def json_of(eco: Path, *args: str, code: int = 0) -> Any:
    r = coord(eco, *args, "--json")
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


def test_the_trigger_is_named_by_wait_status_and_history(tmp_path: Path) -> None:
    eco, log = catalog(tmp_path, run_b="echo broken >&2; exit 1")
    # `--atomic` before the plan: still a flag, the plan not taken as its value
    r = coord(eco, "plan", "sweep", "--atomic", PLAN, "--wait")
    assert r.returncode == 1, r.stderr
    sid = r.stdout.strip()
    why = f"rolled back after {B} failed: exit 1; 1 todo compensated"
    assert f"rolling back after {B} failed: exit 1: undoing 1 todo(s)" in r.stderr
    assert f"rolled_back - {why}" in r.stderr
    assert log.read_text().split() == [A]

    human = coord(eco, "sweep", "status", sid)
    assert human.returncode == 0 and f"rolled_back - {why}" in human.stdout, human.stdout
    assert json_of(eco, "sweep", "status", sid)["reason"] == why
    runs = json_of(eco, "history", "search", "", "--kind", "sweep")
    assert [(x["sweep_id"], x["status"], x["reason"]) for x in runs] == [
        (sid, "rolled_back", why)]
    listed = coord(eco, "history", "search", "", "--kind", "sweep")
    assert why in listed.stdout, listed.stdout

    # the sweep was rolled back: a resume would re-apply A's change, so it is refused
    refused = coord(eco, "sweep", "resume", sid)
    clean_error(refused, 2)
    assert f"{A} was compensated" in refused.stderr and "--reapply" in refused.stderr

    bad = coord(eco, "plan", "sweep", PLAN, "--atomic=later")
    clean_error(bad, 2)


def test_a_rollback_failed_sweep_is_finished_with_rollback_not_resume(tmp_path: Path) -> None:
    fixed = tmp_path / "fixed"
    eco, log = catalog(tmp_path, undo_b=f"test -f {fixed}")
    sid = json_of(eco, "plan", "sweep", PLAN, "--wait")["sweep_id"]
    failed = json_of(eco, "sweep", "rollback", sid, "--wait", code=1)
    assert failed["status"] == "rollback_failed"
    assert failed["reason"].startswith("rollback by user (it had succeeded) did not finish: "
                                       f"{B} compensation_failed")
    assert log.read_text().split() == [C]

    refused = coord(eco, "sweep", "resume", sid, "--dry-run")
    clean_error(refused, 2)
    assert "rollback did not finish" in refused.stderr
    assert f"coord sweep rollback {sid}" in refused.stderr

    dry = coord(eco, "sweep", "rollback", sid, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would retry, in this order" in dry.stdout, dry.stdout
    lines = [x.split() for x in dry.stdout.splitlines()]
    assert ["1", B, "(compensation_failed)"] in lines and ["2", A, "(skipped)"] in lines
    assert f"compensated already (not run again): {C}" in dry.stdout + dry.stderr
    assert json_of(eco, "sweep", "status", sid)["status"] == "rollback_failed"
    assert log.read_text().split() == [C]

    fixed.touch()
    done = coord(eco, "sweep", "rollback", sid)  # embedded: runs here, to the end
    assert done.returncode == 0, done.stderr
    assert "retrying the undos of 2 todos in 2 steps" in done.stderr
    assert log.read_text().split() == [C, B, A]
    st = json_of(eco, "sweep", "status", sid)
    assert st["status"] == "rolled_back"
    assert st["reason"] == "rolled back by user (it had succeeded); 3 todos compensated"


@pytest.mark.parametrize(("args", "mode"), [
    (["PLAN-001"], False),
    (["PLAN-001", "--atomic"], "finish"),
    (["--atomic", "PLAN-001", "--wait"], "finish"),  # the plan is never taken as the mode
    (["PLAN-001", "--atomic=stop"], "stop"),
    (["PLAN-001", "--atomic", "stop", "--wait"], "stop"),
    (["--atomic", "stop", "PLAN-001"], "stop"),
])
def test_atomic_takes_a_mode_only_when_given_one(tmp_path: Path, args: list[str],
                                                 mode: object) -> None:
    from unittest import mock

    from click.testing import CliRunner

    from coordination.cli.context import Context
    from coordination.cli.plan import plan

    eco, _log = catalog(tmp_path)
    seen: list[object] = []
    with mock.patch("coordination.cli.sweep.run_start",
                    lambda *a, **k: seen.append((a[1], k["atomic"])) or 0):
        res = CliRunner().invoke(plan, ["sweep", *args], obj=Context(eco))
    assert res.exit_code == 0, (res.output, res.exception)
    assert seen == [(PLAN, mode)]
