"""Running a plan again from the CLI: `plan reset` (todos pending, plan active: one
audited edit), `plan sweep --again` (every todo, outcomes synced), and the dry run's
estimate of each strategy. Each command in its own process, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.catalog.audit import log as audit
from tests.unit.support.catalogs import catalog_data
from tests.unit.support.cli import coord as run
from tests.unit.support.cli import write_yaml
from tests.unit.support.sweeps import PLAN, write_catalog

pytestmark = pytest.mark.timeout(150)
ENV = {"COORD_USER": "ana@example.com"}


def coord(eco: Path, *args: str) -> Any:
    return run(eco, *args, env=ENV, timeout=120)


def statuses(eco: Path) -> dict[str, str]:
    doc = yaml.safe_load(eco.read_text())
    out = {t["id"]: str(t.get("status", "pending")) for t in doc["coordination"]["todos"]}
    out.update({p["id"]: str(p.get("status")) for p in doc["coordination"]["plans"]})
    return out


def entries(eco: Path) -> list[dict[str, Any]]:
    log = audit.log_path(eco)
    return audit.read(log) if log.exists() else []


@pytest.fixture
def done(tmp_path: Path) -> Path:
    """PLAN-1 completed: TODO-0 -> TODO-1 completed, TODO-2 failed, TODO-3 pending;
    TODO-9 is another plan's (completed)."""
    data = catalog_data(4, [(0, 1)], overrides={0: {"status": "completed"},
                                                1: {"status": "completed"},
                                                2: {"status": "failed"}},
                        plans=[{"id": "PLAN-2", "title": "other", "status": "completed"}],
                        extra_todos=[{"id": "TODO-9", "task": "other", "repo": "api",
                                      "plan": "PLAN-2", "status": "completed"}])
    data["coordination"]["plans"][0]["status"] = "completed"
    return write_yaml(tmp_path, data)


def test_reset_sets_every_todo_pending_and_the_plan_active_in_one_audited_edit(
        done: Path) -> None:
    r = coord(done, "plan", "reset", "PLAN-1", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["reset"] == ["TODO-0", "TODO-1", "TODO-2"]
    assert doc["was"] == {"TODO-0": "completed", "TODO-1": "completed", "TODO-2": "failed"}
    assert doc["already_pending"] == ["TODO-3"]
    assert (doc["plan_was"], doc["plan_status"], doc["dry_run"]) == ("completed", "active", False)
    assert statuses(done) == {"TODO-0": "pending", "TODO-1": "pending", "TODO-2": "pending",
                              "TODO-3": "pending", "TODO-9": "completed",
                              "PLAN-1": "active", "PLAN-2": "completed"}
    log = entries(done)
    assert len(log) == 1, log  # one edit, one entry
    assert log[0]["op"] == "reset_plan" and log[0]["who"] == "ana@example.com"
    assert sorted(log[0]["ids"]) == ["PLAN-1", "TODO-0", "TODO-1", "TODO-2"]
    assert audit.verify(audit.log_path(done)) == (1, None)
    # the plan's next dry run has every todo to run again
    again = json.loads(coord(done, "plan", "sweep", "PLAN-1", "--dry-run", "--json").stdout)
    assert again["skipped"] == [] and again["todos"] == 4


def test_reset_of_some_todos(done: Path) -> None:
    r = coord(done, "plan", "reset", "PLAN-1", "--todos", "TODO-1", "--todos", "TODO-2,TODO-3")
    assert r.returncode == 0, r.stderr
    assert "2 todo(s) of PLAN-1 set back to pending: TODO-1 (completed), TODO-2 (failed)" \
        in r.stdout
    assert "PLAN-1 is active (was completed)" in r.stdout
    assert statuses(done) == {"TODO-0": "completed", "TODO-1": "pending", "TODO-2": "pending",
                              "TODO-3": "pending", "TODO-9": "completed",
                              "PLAN-1": "active", "PLAN-2": "completed"}
    assert len(entries(done)) == 1


@pytest.mark.parametrize("todos, says", [
    ("TODO-1,TODO-77", "unknown todo 'TODO-77'"),
    ("TODO-1,TODO-9", "TODO-9 is not a todo of plan PLAN-1"),
    ("", "no todos given"),
])
def test_reset_refuses_a_todo_not_in_the_plan_and_changes_nothing(
        done: Path, todos: str, says: str) -> None:
    before = done.read_bytes()
    r = coord(done, "plan", "reset", "PLAN-1", "--todos", todos, "--json")
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert says in r.stderr
    assert done.read_bytes() == before and entries(done) == []


def test_reset_of_an_unknown_plan(done: Path) -> None:
    r = coord(done, "plan", "reset", "PLAN-3")
    assert r.returncode == 2 and "unknown plan 'PLAN-3'" in r.stderr
    assert entries(done) == []


def test_reset_dry_run_changes_nothing(done: Path) -> None:
    before = done.read_bytes()
    r = coord(done, "plan", "reset", "PLAN-1", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["dry_run"] is True and doc["reset"] == ["TODO-0", "TODO-1", "TODO-2"]
    human = coord(done, "plan", "reset", "PLAN-1", "--todos", "TODO-0", "--dry-run")
    assert "1 todo(s) of PLAN-1 would be set back to pending: TODO-0 (completed)" \
        in human.stdout
    assert "PLAN-1 would be active (was completed)" in human.stdout
    assert "dry run: nothing changed" in human.stdout
    assert done.read_bytes() == before and entries(done) == []


def test_dry_run_again_lists_every_todo(done: Path) -> None:
    plain = json.loads(coord(done, "plan", "sweep", "PLAN-1", "--dry-run", "--json").stdout)
    assert plain["again"] is False and plain["skipped"] == ["TODO-0", "TODO-1"]
    assert plain["levels"] == [["TODO-2", "TODO-3"]]
    r = coord(done, "plan", "sweep", "PLAN-1", "--dry-run", "--again", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["again"] is True and doc["skipped"] == [] and doc["todos"] == 4
    assert doc["levels"] == [["TODO-0", "TODO-2", "TODO-3"], ["TODO-1"]]
    human = coord(done, "plan", "sweep", "PLAN-1", "--dry-run", "--again")
    assert "again: completed todos too" in human.stdout and "TODO-0" in human.stdout


def test_dry_run_prints_both_strategies_estimates(tmp_path: Path) -> None:
    # two uneven chains: 0 (1h) -> 1 (8h) and 2 (8h) -> 3 (1h): eager 9h, levels 16h
    eco = write_yaml(tmp_path, catalog_data(4, [(0, 1), (2, 3)], hours=[1, 8, 8, 1]))
    r = coord(eco, "plan", "sweep", "PLAN-1", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    est = json.loads(r.stdout)["strategy_estimate"]
    assert (est["eager_hours"], est["levels_hours"]) == (9.0, 16.0)
    assert est["from_estimate"] == 4 and est["unknown"] == []
    human = coord(eco, "plan", "sweep", "PLAN-1", "--dry-run")
    assert "eager 9h, levels 16h; eager saves 7h (44%)" in human.stdout
    assert "figures: 4 todo(s) from estimated_hours; 0 from the p50 of their recorded " \
        "runs" in human.stdout


def test_dry_run_goes_on_when_history_cannot_be_read(tmp_path: Path) -> None:
    """Distributed with Redis away: the estimate uses estimated_hours only, and says so."""
    eco = write_yaml(tmp_path, catalog_data(3, [(0, 1)], hours=[1, None, 2]))
    r = run(eco, "plan", "sweep", "PLAN-1", "--dry-run", "--json",
            env={**ENV, "COORD_REDIS_URL": "redis://:s3cret@127.0.0.1:1/0"}, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "history not read (ConnectionError" in r.stderr and "s3cret" not in r.stderr
    est = json.loads(r.stdout)["strategy_estimate"]
    assert est["unknown"] == ["TODO-1"] and est["from_estimate"] == 2
    assert (est["eager_hours"], est["levels_hours"]) == (2.0, 2.0)


def test_help_says_when_eager_beats_levels(done: Path) -> None:
    h = coord(done, "plan", "sweep", "--help")
    assert h.returncode == 0
    text = " ".join(h.stdout.split())
    assert "eager beats levels when" in text and "--again" in text
    assert "coord plan sweep PLAN-001 --again" in text
    r = coord(done, "plan", "reset", "--help")
    assert r.returncode == 0 and "coord plan reset PLAN-001 --todos" in r.stdout
    assert "--dry-run" in r.stdout and "--json" in r.stdout


def test_sweep_again_reruns_completed_todos_and_syncs_a_failure(tmp_path: Path) -> None:
    """Embedded, end to end: a sweep completes the plan; upstream moves and --again runs
    every todo: the one that fails now is failed, the one it skips pending, and the plan
    active again. The dry
    run's estimate then takes the todos' durations from their recorded runs."""
    broken = tmp_path / "broken"
    eco = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": f"test ! -e {broken}"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "run": "true", "estimated_hours": 2},
    ])
    r = coord(eco, "plan", "sweep", PLAN, "--wait", "--json")
    assert r.returncode == 0, r.stderr
    assert statuses(eco)[PLAN] == "completed"
    r = coord(eco, "plan", "sweep", PLAN, "--wait")  # without --again: nothing, and a hint
    assert r.returncode == 0 and f"every todo of {PLAN} is completed (--again runs" in r.stderr
    broken.touch()
    r = coord(eco, "plan", "sweep", PLAN, "--again", "--wait")
    assert r.returncode == 1, r.stderr
    assert f"{PLAN} active again" in r.stderr
    # TODO-002 did not run now (its blocker failed): pending, as this run left it
    assert statuses(eco) == {"TODO-001": "failed", "TODO-002": "pending",
                             "TODO-003": "completed", PLAN: "active"}
    r = coord(eco, "plan", "sweep", PLAN, "--dry-run", "--again", "--json")
    assert r.returncode == 0, r.stderr
    est = json.loads(r.stdout)["strategy_estimate"]
    assert est["source"] == {"TODO-001": "history", "TODO-002": "history",
                             "TODO-003": "estimate"}
    assert est["unknown"] == [] and est["from_history"] == 2
    assert est["hours"]["TODO-003"] == 2.0 and est["levels_hours"] >= 2.0
