"""`plan sweep --sequential`'s order (coordination.planner.sequence) and the spec it
makes (coordination.sweeps.planning.make_sequential): a topological order, ties by
the caller's key, every level one todo, waves one at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.keys import Keys
from coordination.planner.sequence import sequential_order
from coordination.sweeps.planning import Planning
from coordination.sweeps.spec import SweepSpec
from tests.unit.support.sweeps import PLAN, write_catalog

pytestmark = pytest.mark.timeout(60)


def test_the_order_is_topological_and_ties_go_by_the_key() -> None:
    preds = {"b": ["a"], "c": ["a"], "d": ["b", "c"], "f": ["e"]}
    key = {"a": 1, "b": 2, "c": 0, "d": 5, "e": 3, "f": 0}
    order = sequential_order("abcdef", preds, key=lambda t: (key[t], t))
    assert order == ["a", "c", "b", "e", "f", "d"]
    # edges to todos outside the run are not waited for
    assert sequential_order(["d", "c"], preds, key=lambda t: (t,)) == ["c", "d"]


def test_a_cycle_is_named() -> None:
    with pytest.raises(ValueError, match="a, b"):
        sequential_order(["a", "b", "c"], {"a": ["b"], "b": ["a"]}, key=lambda t: (t,))


def _spec(tmp_path: Path, *, sequential: bool, strategy: str = "levels") -> SweepSpec:
    catalog = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "jobs", "run": "true", "priority": "critical"},
        {"id": "TODO-004", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
    ])
    return Planning(Keys("t"), catalog).plan_spec(PLAN, strategy=strategy,
                                                  ignore_blockers=True, sequential=sequential)


def test_a_sequential_spec_has_one_todo_per_level_in_dag_order(tmp_path: Path) -> None:
    plain = _spec(tmp_path, sequential=False)
    assert [len(lv) for lv in plain.levels] == [2, 2] and not plain.sequential
    spec = _spec(tmp_path, sequential=True)
    assert spec.levels == [["TODO-003"], ["TODO-001"], ["TODO-002"], ["TODO-004"]]
    assert [spec.todos[t].level for t in ("TODO-003", "TODO-001", "TODO-002", "TODO-004")] \
        == [0, 1, 2, 3]
    assert spec.level_of()["TODO-004"] == 3
    # kept through the spec's JSON (what workers and a resume read); absent when off
    again = SweepSpec.from_json(spec.to_json())
    assert again.sequential and again.levels == spec.levels
    assert '"sequential"' not in plain.to_json()


def test_sequential_with_another_strategy_is_refused(tmp_path: Path) -> None:
    from coordination.errors import UsageError

    with pytest.raises(UsageError, match="one todo at a time"):
        _spec(tmp_path, sequential=True, strategy="eager")


def test_a_resume_of_a_sequential_sweep_runs_one_at_a_time_too(tmp_path: Path) -> None:
    spec = _spec(tmp_path, sequential=True)
    planning = Planning(Keys("t"), Path(spec.catalog or ""))
    nxt = planning.resume_spec(spec, ["TODO-001", "TODO-002", "TODO-004"])
    assert nxt.sequential
    assert nxt.levels == [["TODO-001"], ["TODO-002"], ["TODO-004"]]


def test_merge_chains_links_only_same_repo_single_edges(tmp_path: Path) -> None:
    from coordination.errors import UsageError

    catalog = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "api", "run": "true", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "api", "run": "true", "blocked_by": ["TODO-002"]},
        {"id": "TODO-004", "repo": "web", "run": "true", "blocked_by": ["TODO-003"]},
        # a fork: 5 has two successors, so neither follows it in a chain
        {"id": "TODO-005", "repo": "jobs", "run": "true"},
        {"id": "TODO-006", "repo": "jobs", "run": "true", "blocked_by": ["TODO-005"]},
        {"id": "TODO-007", "repo": "jobs", "run": "true", "blocked_by": ["TODO-005"]},
        # a join: 8 has two predecessors
        {"id": "TODO-008", "repo": "jobs", "run": "true",
         "blocked_by": ["TODO-006", "TODO-007"]},
    ])
    planning = Planning(Keys("t"), catalog)
    spec = planning.plan_spec(PLAN, strategy="levels", ignore_blockers=True, merge_chains=True)
    # 3 -> 4 crosses repos; 5 forks; 8 joins
    assert spec.chains == {"TODO-001": "TODO-002", "TODO-002": "TODO-003"}
    assert spec.strategy == "eager"
    assert SweepSpec.from_json(spec.to_json()).chains == spec.chains
    assert '"chains"' not in planning.plan_spec(PLAN, strategy="eager",
                                                ignore_blockers=True).to_json()
    nxt = planning.resume_spec(spec, ["TODO-002", "TODO-003", "TODO-004"])
    assert nxt.chains == {"TODO-002": "TODO-003"}
    with pytest.raises(UsageError, match="--merge-chains and --sequential"):
        planning.plan_spec(PLAN, strategy="levels", ignore_blockers=True, merge_chains=True,
                           sequential=True)


def test_the_dry_run_shows_the_sequential_order(tmp_path: Path) -> None:
    import json

    from tests.unit.support.cli import coord

    catalog = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true", "estimated_hours": 1},
        {"id": "TODO-002", "repo": "web", "run": "true", "estimated_hours": 2},
        {"id": "TODO-003", "repo": "jobs", "run": "true", "priority": "critical",
         "blocked_by": ["TODO-001"], "estimated_hours": 1},
    ])
    r = coord(catalog, "plan", "sweep", PLAN, "--dry-run", "--sequential", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["sequential"] is True
    # 1 (longer path behind it) before 2, then 3 (critical) as soon as it is free
    assert doc["levels"] == [["TODO-001"], ["TODO-003"], ["TODO-002"]]
    assert doc["strategy_estimate"]["levels_hours"] == 4  # one at a time: the sum
    plain = json.loads(coord(catalog, "plan", "sweep", PLAN, "--dry-run", "--json").stdout)
    assert "sequential" not in plain and len(plain["levels"]) == 2
    both = coord(catalog, "plan", "sweep", PLAN, "--dry-run", "--sequential", "--merge-chains")
    assert both.returncode == 2 and "--merge-chains and --sequential" in both.stderr
