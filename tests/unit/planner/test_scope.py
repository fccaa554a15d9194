"""A sweep scoped to some repos' todos (a push trigger's scope: `prepare_sweep(repos=)`,
:func:`coordination.planner.sweepable.scope_to_repos`)."""

from __future__ import annotations

import pytest

from coordination.errors import PlanError
from coordination.planner import prepare_sweep
from tests.unit.support.catalogs import catalog_from_edges

pytestmark = pytest.mark.timeout(30)

# TODO-0 api, TODO-1 web, TODO-2 jobs, TODO-3 api (catalog_from_edges cycles the repos)


def test_only_the_scopes_todos_run_levelled_over_them_alone() -> None:
    # jobs' TODO-2 (completed) before api's TODO-0, before web's TODO-1, before api's TODO-3
    cat = catalog_from_edges(4, [(2, 0), (0, 1), (1, 3)],
                             overrides={2: {"status": "completed"}})
    _, whole = prepare_sweep(cat, "PLAN-1", again=True)
    assert whole.levels == [["TODO-2"], ["TODO-0"], ["TODO-1"], ["TODO-3"]]
    pg, scoped = prepare_sweep(cat, "PLAN-1", again=True, repos=["api", "web"])
    assert sorted(pg.graph.nodes) == ["TODO-0", "TODO-1", "TODO-3"]
    assert scoped.levels == [["TODO-0"], ["TODO-1"], ["TODO-3"]]  # recomputed: from 0
    _, scoped = prepare_sweep(cat, "PLAN-1", repos=["web", "api"])  # not --again: as ever
    assert scoped.levels == [["TODO-0"], ["TODO-1"], ["TODO-3"]]


def test_a_kept_todo_waiting_outside_the_scope_for_an_open_todo_refuses_the_sweep() -> None:
    cat = catalog_from_edges(4, [(0, 1), (2, 3)], overrides={2: {"status": "completed"}})
    with pytest.raises(PlanError) as got:
        prepare_sweep(cat, "PLAN-1", again=True, repos=["web", "jobs"])
    msg = str(got.value)
    assert "cannot run only its todos in jobs, web" in msg
    assert "TODO-1 (web) waits for TODO-0 (api), which is pending" in msg
    assert "TODO-2" not in msg  # completed: TODO-3 (api) is out of scope anyway
    # a completed predecessor outside the scope is satisfied
    pg, a = prepare_sweep(cat, "PLAN-1", again=True, repos=["api"])
    assert a.levels == [["TODO-0", "TODO-3"]] and list(pg.graph.edges) == []


def test_a_scope_with_no_todo_of_the_plan_refuses() -> None:
    cat = catalog_from_edges(2, [])
    with pytest.raises(PlanError, match="plan PLAN-1 has no todo to run in jobs"):
        prepare_sweep(cat, "PLAN-1", again=True, repos=["jobs"])


def test_blockers_outside_the_plan_count_for_the_kept_todos_only() -> None:
    extra = [{"id": "TODO-50", "task": "elsewhere", "repo": "api", "status": "in_progress"}]
    cat = catalog_from_edges(3, [], extra_todos=extra, overrides={2: {"blocked_by": ["TODO-50"]}})
    _, a = prepare_sweep(cat, "PLAN-1", repos=["api", "web"])
    assert a.levels == [["TODO-0", "TODO-1"]]
    with pytest.raises(PlanError, match="TODO-2 is blocked by TODO-50"):
        prepare_sweep(cat, "PLAN-1", repos=["jobs"])
