"""Planner library: DAG building, blockers, findings and analysis on small catalogs.

``catalog_from_edges`` is shared with the other planner test files: it builds
Catalog models directly (no YAML, no checks) so tests can also hand the
planner what a loaded catalog would refuse.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.catalog.models import Catalog
from coordination.errors import NotFoundError, PlanError
from coordination.planner import (
    analyze,
    build_plan_graph,
    find_cycles,
    prepare_sweep,
    validate_plan,
)
from tests.unit.support.catalogs import REPOS, ROOT, catalog_data, catalog_from_edges, example, tid  # noqa: F401

pytestmark = pytest.mark.timeout(120)


def codes(findings: list[Any]) -> list[str]:
    return [f.code for f in findings]


# -- the example plan ---------------------------------------------------------
def test_example_plan_graph_levels_and_critical_path() -> None:
    cat = example()
    pg = build_plan_graph(cat, "PLAN-001")
    assert sorted(pg.graph.nodes) == ["TODO-002", "TODO-003", "TODO-004", "TODO-005", "TODO-006"]
    assert ("TODO-003", "TODO-006") in pg.graph.edges
    assert pg.blockers == []  # ISSUE-002 resolved, TODO-001 completed
    assert pg.graph.nodes["TODO-002"]["todo"].repo == "libcore"
    a = analyze(pg)
    assert a.levels == [["TODO-002"], ["TODO-003", "TODO-004"], ["TODO-005", "TODO-006"]]
    assert a.critical_path == ["TODO-002", "TODO-003", "TODO-005"]
    assert a.critical_hours == 17 and a.total_hours == 23
    assert a.widths == [1, 2, 2]
    assert a.load_per_repo["api"].todos == 1 and a.load_per_repo["api"].hours == 6
    assert validate_plan(cat, "PLAN-001") == []


def test_unknown_plan_is_not_found_with_a_suggestion() -> None:
    with pytest.raises(NotFoundError) as exc:
        build_plan_graph(example(), "PLAN-002")
    assert "PLAN-002" in str(exc.value) and "PLAN-001" in str(exc.value)


# -- nodes and blockers -------------------------------------------------------
def test_completed_todos_are_skipped_unless_asked_for() -> None:
    cat = catalog_from_edges(3, [(0, 1), (1, 2)], overrides={0: {"status": "completed"}})
    pg = build_plan_graph(cat, "PLAN-1")
    assert sorted(pg.graph.nodes) == ["TODO-1", "TODO-2"]
    assert pg.skipped_completed == ["TODO-0"] and pg.blockers == []
    pg_all = build_plan_graph(cat, "PLAN-1", include_completed=True)
    assert ("TODO-0", "TODO-1") in pg_all.graph.edges and pg_all.skipped_completed == []


def test_blocking_side_also_makes_an_edge() -> None:
    cat = catalog_from_edges(2, [], overrides={0: {"blocking": ["TODO-1"]}})
    assert list(build_plan_graph(cat, "PLAN-1").graph.edges) == [("TODO-0", "TODO-1")]


def test_every_unsatisfied_outside_blocker_is_reported() -> None:
    issues = [{"id": "ISSUE-1", "title": "open one"},
              {"id": "ISSUE-2", "title": "done", "status": "closed"}]
    extra = [{"id": "TODO-50", "task": "elsewhere", "repo": "api", "status": "in_progress"},
             {"id": "TODO-51", "task": "done elsewhere", "repo": "api", "status": "completed"}]
    cat = catalog_from_edges(
        2, [], issues=issues, extra_todos=extra,
        overrides={0: {"blocked_by": ["ISSUE-1", "ISSUE-2", "TODO-51"]},
                   1: {"blocked_by": ["TODO-50"]}})
    pg = build_plan_graph(cat, "PLAN-1")
    assert [(b.todo_id, b.blocker_id) for b in pg.blockers] == [
        ("TODO-0", "ISSUE-1"), ("TODO-1", "TODO-50")]
    assert "open" in pg.blockers[0].reason and "in_progress" in pg.blockers[1].reason
    findings = validate_plan(cat, "PLAN-1")
    assert codes(findings) == ["blocked", "blocked"]
    assert {f.severity for f in findings} == {"error"}
    relaxed = validate_plan(cat, "PLAN-1", ignore_blockers=True)
    assert {f.severity for f in relaxed} == {"warning"}
    with pytest.raises(PlanError) as exc:
        prepare_sweep(cat, "PLAN-1")
    assert "ISSUE-1" in str(exc.value) and "TODO-50" in str(exc.value)
    assert "--ignore-blockers" in str(exc.value)
    pg2, a = prepare_sweep(cat, "PLAN-1", ignore_blockers=True)
    assert a.levels == [["TODO-0", "TODO-1"]] and len(pg2.blockers) == 2


# -- findings -----------------------------------------------------------------
def test_a_cycle_is_reported_with_its_full_path() -> None:
    cat = catalog_from_edges(4, [(3, 1), (1, 2), (2, 3), (0, 1)])
    findings = validate_plan(cat, "PLAN-1")
    cyc = [f for f in findings if f.code == "cycle"]
    assert len(cyc) == 1 and cyc[0].severity == "error"
    assert cyc[0].message == "cycle: TODO-1 -> TODO-2 -> TODO-3 -> TODO-1"
    assert cyc[0].ids == ["TODO-1", "TODO-2", "TODO-3"]
    with pytest.raises(PlanError, match="TODO-1 -> TODO-2 -> TODO-3 -> TODO-1"):
        analyze(build_plan_graph(cat, "PLAN-1"))


def test_independent_cycles_are_each_reported_up_to_a_bound() -> None:
    edges = []
    for k in range(30):  # 30 separate 2-cycles
        a, b = 2 * k, 2 * k + 1
        edges += [(a, b), (b, a)]
    cat = catalog_from_edges(60, edges)
    findings = validate_plan(cat, "PLAN-1", max_cycles=25)
    assert codes(findings).count("cycle") == 25
    trunc = [f for f in findings if f.code == "cycles-truncated"]
    assert trunc and "5 more" in trunc[0].message
    cycles, total = find_cycles(build_plan_graph(cat, "PLAN-1").graph, limit=100)
    assert total == 30 and len(cycles) == 30


def test_self_loop_is_a_cycle() -> None:
    # A loaded catalog refuses this; a catalog built in memory may not.
    cat = catalog_from_edges(1, [(0, 0)])
    assert [f.message for f in validate_plan(cat, "PLAN-1") if f.code == "cycle"] == [
        "cycle: TODO-0 -> TODO-0"]


def test_unknown_ids_repos_and_missing_run_are_errors() -> None:
    cat = catalog_from_edges(
        3, [], plans=[],
        overrides={0: {"blocked_by": ["TODO-99", "ISSUE-9"]}, 1: {"repo": "nowhere"},
                   2: {"run": None, "blocking": ["TODO-77"]}})
    findings = validate_plan(cat, "PLAN-1")
    by_code = {c: [f for f in findings if f.code == c] for c in codes(findings)}
    assert sorted(tuple(f.ids) for f in by_code["unknown-id"]) == [
        ("TODO-0", "ISSUE-9"), ("TODO-0", "TODO-99"), ("TODO-2", "TODO-77")]
    assert by_code["unknown-repo"][0].ids == ["TODO-1"]
    assert by_code["no-run"][0].ids == ["TODO-2"]
    with pytest.raises(PlanError, match="no run command"):
        prepare_sweep(cat, "PLAN-1")


def test_redundant_edges_and_foreign_milestones_are_warnings() -> None:
    other = {"id": "PLAN-2", "title": "other",
             "milestones": [{"id": "MS-9", "todos": ["TODO-2"]}]}
    cat = catalog_from_edges(3, [(0, 1), (1, 2), (0, 2)], plans=[other])
    findings = validate_plan(cat, "PLAN-1")
    assert {f.severity for f in findings} == {"warning"}
    red = [f for f in findings if f.code == "redundant-edge"]
    assert [f.ids for f in red] == [["TODO-0", "TODO-2"]]
    ms = [f for f in findings if f.code == "milestone-other-plan"]
    assert ms[0].ids == ["TODO-2", "MS-9", "PLAN-2"]


def test_empty_plan_warns_and_analyses_to_nothing() -> None:
    cat = catalog_from_edges(1, [], overrides={0: {"status": "completed"}})
    assert codes(validate_plan(cat, "PLAN-1")) == ["empty-plan"]
    a = analyze(build_plan_graph(cat, "PLAN-1"))
    assert a.levels == [] and a.critical_path == [] and a.total_hours == 0


def test_critical_path_without_estimates_is_the_longest_chain() -> None:
    cat = catalog_from_edges(5, [(0, 1), (1, 2), (3, 4)])
    a = analyze(build_plan_graph(cat, "PLAN-1"))
    assert a.critical_path == ["TODO-0", "TODO-1", "TODO-2"] and a.critical_hours == 0
    assert a.unestimated == ["TODO-0", "TODO-1", "TODO-2", "TODO-3", "TODO-4"]


def test_critical_path_follows_hours_not_length() -> None:
    cat = catalog_from_edges(4, [(0, 1), (1, 2)], hours=[1, 1, 1, 10])
    a = analyze(build_plan_graph(cat, "PLAN-1"))
    assert a.critical_path == ["TODO-3"] and a.critical_hours == 10
