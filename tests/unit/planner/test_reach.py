"""`plan validate`'s ``unreachable`` finding (coordination.planner.reach): every todo
that can never run, with its chain of reasons to the root cause, followed through
todos of other plans, deleted ids and cycles; and through the CLI, exit 1 and
``--json`` naming each todo and its chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordination.planner.dag import build_plan_graph
from coordination.planner.reach import MAX_CHAIN, unreachable
from coordination.planner.validate import validate_plan
from tests.unit.support.catalogs import catalog_data, catalog_from_edges
from tests.unit.support.cli import plan_coord as coord
from tests.unit.support.cli import write_yaml as write

pytestmark = pytest.mark.timeout(120)

# TODO-90 of another plan failed; TODO-91 (another plan, pending) waits for it.
# In PLAN-1: 0 -> 1 -> 2 and 0 waits for TODO-91; 3 is free; 4 waits for TODO-92
# (in progress elsewhere: may still complete), 5 for a closed issue.
ELSEWHERE = [
    {"id": "TODO-90", "task": "x", "repo": "api", "plan": "PLAN-2", "status": "failed"},
    {"id": "TODO-91", "task": "y", "repo": "web", "plan": "PLAN-2", "blocked_by": ["TODO-90"]},
    {"id": "TODO-92", "task": "z", "repo": "web", "status": "in_progress"},
]
PLANS = [{"id": "PLAN-2", "title": "other", "status": "active"}]
ISSUES = [{"id": "ISSUE-1", "title": "done", "status": "closed"}]
OVERRIDES = {0: {"blocked_by": ["TODO-91"]}, 4: {"blocked_by": ["TODO-92"]},
             5: {"blocked_by": ["ISSUE-1"]}}


def _data() -> dict:
    return catalog_data(6, [(0, 1), (1, 2)], extra_todos=ELSEWHERE, plans=PLANS,
                        issues=ISSUES, overrides=OVERRIDES)


def test_todos_behind_a_failed_todo_of_another_plan_are_named_transitively() -> None:
    cat = catalog_from_edges(6, [(0, 1), (1, 2)], extra_todos=ELSEWHERE, plans=PLANS,
                             issues=ISSUES, overrides=OVERRIDES)
    got = unreachable(cat, build_plan_graph(cat, "PLAN-1"))
    assert sorted(got) == ["TODO-0", "TODO-1", "TODO-2"]  # not 3, 4 (in progress), 5
    assert [s["id"] for s in got["TODO-2"]] == ["TODO-2", "TODO-1", "TODO-0", "TODO-91",
                                                "TODO-90"]
    assert got["TODO-2"][0]["reason"] == "waits for TODO-1"
    assert "pending and waits for TODO-90" in got["TODO-2"][3]["reason"]
    assert "PLAN-2" in got["TODO-2"][4]["reason"] and "failed" in got["TODO-2"][4]["reason"]
    findings = [f for f in validate_plan(cat, "PLAN-1") if f.code == "unreachable"]
    assert [f.ids[0] for f in findings] == ["TODO-0", "TODO-1", "TODO-2"]
    assert {f.severity for f in findings} == {"error"}
    assert findings[2].chain == got["TODO-2"]
    assert findings[2].message.startswith("TODO-2 can never run: waits for TODO-1; ")
    relaxed = validate_plan(cat, "PLAN-1", ignore_blockers=True)
    assert {f.severity for f in relaxed if f.code == "unreachable"} == {"warning"}


@pytest.mark.parametrize("status", ["skipped", "blocked"])
def test_a_skipped_or_blocked_todo_outside_never_completes(status: str) -> None:
    other = [{"id": "TODO-90", "task": "x", "repo": "api", "status": status}]
    cat = catalog_from_edges(2, [(0, 1)], extra_todos=other,
                             overrides={0: {"blocked_by": ["TODO-90"]}})
    got = unreachable(cat, build_plan_graph(cat, "PLAN-1"))
    assert sorted(got) == ["TODO-0", "TODO-1"] and status in got["TODO-1"][-1]["reason"]


def test_a_completed_or_pending_todo_outside_keeps_the_plan_reachable() -> None:
    other = [{"id": "TODO-90", "task": "x", "repo": "api", "status": "completed"},
             {"id": "TODO-91", "task": "x", "repo": "api"}]
    cat = catalog_from_edges(2, [], extra_todos=other,
                             overrides={0: {"blocked_by": ["TODO-90"]},
                                        1: {"blocked_by": ["TODO-91"]}})
    assert unreachable(cat, build_plan_graph(cat, "PLAN-1")) == {}


def test_a_deleted_id_and_a_cycle_are_root_causes() -> None:
    cat = catalog_from_edges(5, [(0, 1), (2, 3), (3, 2), (3, 4)],
                             overrides={0: {"blocked_by": ["TODO-77"]}})
    got = unreachable(cat, build_plan_graph(cat, "PLAN-1"))
    assert sorted(got) == ["TODO-0", "TODO-1", "TODO-2", "TODO-3", "TODO-4"]
    assert got["TODO-1"][-1] == {"id": "TODO-77", "reason": "not in the catalog (deleted?)"}
    assert got["TODO-4"][0] == {"id": "TODO-4", "reason": "waits for TODO-3"}
    assert got["TODO-4"][-1]["reason"].startswith("is on the cycle ")
    assert got["TODO-2"] == [{"id": "TODO-2",
                              "reason": "is on the cycle TODO-3 -> TODO-2 -> TODO-3"}]


def test_a_long_chain_is_cut_keeping_its_root_cause() -> None:
    n = 60
    other = [{"id": "TODO-900", "task": "x", "repo": "api", "status": "failed"}]
    cat = catalog_from_edges(n, [(i, i + 1) for i in range(n - 1)], extra_todos=other,
                             overrides={0: {"blocked_by": ["TODO-900"]}})
    got = unreachable(cat, build_plan_graph(cat, "PLAN-1"))
    assert len(got) == n
    last = got[f"TODO-{n - 1}"]
    assert len(last) == MAX_CHAIN and last[-1]["id"] == "TODO-900"
    assert any(s["id"] == "..." for s in last)


def test_plan_validate_exits_1_and_json_names_each_todo_and_its_chain(tmp_path: Path) -> None:
    path = write(tmp_path, _data())
    r = coord(path, "validate", "PLAN-1", "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    found = {f["ids"][0]: f for f in doc["findings"] if f["code"] == "unreachable"}
    assert sorted(found) == ["TODO-0", "TODO-1", "TODO-2"]
    assert [s["id"] for s in found["TODO-1"]["chain"]] == ["TODO-1", "TODO-0", "TODO-91",
                                                           "TODO-90"]
    assert all("chain" not in f for f in doc["findings"] if f["code"] != "unreachable")
    human = coord(path, "validate", "PLAN-1")
    assert human.returncode == 1 and "unreachable: TODO-2 can never run" in human.stdout
