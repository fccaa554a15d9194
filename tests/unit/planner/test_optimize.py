"""`coord plan optimize PLAN [--dry-run]`: redundant edges between the plan's todos
go (both blocked_by and the mirrored blocking) in one audited edit; issue blockers,
edges to another plan's todos and what no longer path implies stay; the dry run lists
them and changes nothing; a cycle is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from coordination.planner.optimize import plan_graph, reduce
from tests.unit.support.catalogs import catalog_data
from tests.unit.support.cli import plan_coord as coord
from tests.unit.support.cli import write_yaml as write

pytestmark = pytest.mark.timeout(120)

# PLAN-1: 0 -> 1 -> 2 -> 3, and 0 -> 2, 1 -> 3 (written from both sides, as the catalog
# mirrors them), 0 -> 3 (blocked_by only): all three implied. TODO-3 also waits for ISSUE-1
# and TODO-90 (another plan, which TODO-0 reaches through nothing of the plan).
OVERRIDES = {
    0: {"blocking": ["TODO-2"]},
    1: {"blocking": ["TODO-3"]},
    2: {"blocked_by": ["TODO-1", "TODO-0"]},
    3: {"blocked_by": ["TODO-2", "TODO-0", "ISSUE-1", "TODO-1", "TODO-90"]},
}
OTHER = [{"id": "TODO-90", "task": "x", "repo": "api", "plan": "PLAN-2",
          "blocked_by": ["TODO-0"]}]


def _file(tmp_path: Path) -> Path:
    data = catalog_data(4, [(0, 1)], overrides=OVERRIDES, extra_todos=OTHER,
                        issues=[{"id": "ISSUE-1", "title": "open"}],
                        plans=[{"id": "PLAN-2", "title": "other", "status": "active"}])
    return write(tmp_path, data)


def _todos(path: Path) -> dict[str, dict]:
    doc = yaml.safe_load(path.read_text())
    return {t["id"]: t for t in doc["coordination"]["todos"]}


def _audit(path: Path) -> list[dict]:
    log = path.parent / f".{path.name}.coord.audit.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_reduce_names_every_implied_edge_with_a_path() -> None:
    rows = [("a", [], ["c"]), ("b", ["a"], []), ("c", ["b"], []), ("d", ["c", "a"], [])]
    removed, n = reduce("P", rows)
    assert n == 5
    assert [(r["blocked_by"], r["todo"], r["via"]) for r in removed] == [
        ("a", "c", ["a", "b", "c"]), ("a", "d", ["a", "b", "c", "d"])]
    assert plan_graph(rows).number_of_edges() == 5


def test_dry_run_lists_and_changes_nothing(tmp_path: Path) -> None:
    path = _file(tmp_path)
    before = path.read_bytes()
    r = coord(path, "optimize", "PLAN-1", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["dry_run"] is True
    assert sorted((e["blocked_by"], e["todo"]) for e in doc["removed"]) == [
        ("TODO-0", "TODO-2"), ("TODO-0", "TODO-3"), ("TODO-1", "TODO-3")]
    assert (doc["edges_before"], doc["edges_after"]) == (6, 3)
    assert path.read_bytes() == before and _audit(path) == []
    human = coord(path, "optimize", "PLAN-1", "--dry-run")
    assert "would remove 3 redundant edge(s)" in human.stdout and "dry run" in human.stdout


def test_optimize_removes_both_sides_in_one_audited_edit(tmp_path: Path) -> None:
    path = _file(tmp_path)
    r = coord(path, "optimize", "PLAN-1", "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["removed"]) == 3
    todos = _todos(path)
    assert todos["TODO-1"]["blocked_by"] == ["TODO-0"]
    assert todos["TODO-2"]["blocked_by"] == ["TODO-1"]
    # the issue and the other plan's todo stay; only the plan's implied edges went
    assert todos["TODO-3"]["blocked_by"] == ["TODO-2", "ISSUE-1", "TODO-90"]
    assert "blocking" not in todos["TODO-0"] and "blocking" not in todos["TODO-1"]
    assert todos["TODO-90"]["blocked_by"] == ["TODO-0"]
    (entry,) = _audit(path)
    assert entry["op"] == "plan_optimize"
    assert entry["argv"][-2:] == ["optimize", "PLAN-1"] or "optimize" in entry["argv"]
    assert {"TODO-0", "TODO-1", "TODO-2", "TODO-3"} <= set(entry["ids"])
    # the plan still validates, in the same order; a second run has nothing to do
    assert coord(path, "validate", "PLAN-1", "--ignore-blockers").returncode == 0
    again = json.loads(coord(path, "optimize", "PLAN-1", "--json").stdout)
    assert again["removed"] == [] and len(_audit(path)) == 1


def test_a_cycle_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    data = catalog_data(3, [(0, 1), (1, 2), (2, 0), (0, 2)])
    path = write(tmp_path, data)
    before = path.read_bytes()
    r = coord(path, "optimize", "PLAN-1")
    assert r.returncode == 2 and "cycle" in r.stderr, r.stderr
    assert path.read_bytes() == before


def test_an_unknown_plan_is_a_usage_error(tmp_path: Path) -> None:
    r = coord(_file(tmp_path), "optimize", "PLAN-9")
    assert r.returncode == 2 and "PLAN-9" in r.stderr
