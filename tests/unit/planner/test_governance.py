"""A catalog's gates and waves: their models, plan validation, and the sweep spec they
freeze into (which todos each wave holds, levelled wave by wave)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from coordination.catalog.governance import parse_duration
from coordination.catalog.models import Catalog, Todo
from coordination.keys import Keys
from coordination.planner.validate import validate_plan
from coordination.sweeps.planning import Planning
from coordination.sweeps.spec import SweepSpec, sweep_deadline

pytestmark = pytest.mark.timeout(30)


def catalog(waves: list[dict[str, Any]] | None = None, *, gate_run: bool = False) -> dict[str, Any]:
    """api (tag svc), web (tag svc), db: TODO-001 api -> TODO-002 gate -> TODO-003 web;
    TODO-004 db on its own."""
    gate: dict[str, Any] = {"id": "TODO-002", "task": "approve", "repo": "api", "plan": "PLAN-001",
                            "gate": {"approvals": 2, "from": ["ana", "bo"], "expires": "1h"},
                            "blocked_by": ["TODO-001"]}
    if gate_run:
        gate["run"] = "true"
    return {"version": 1, "repos": [
        {"name": "api", "tags": ["svc"]}, {"name": "web", "tags": ["svc"]}, {"name": "db"}],
        "coordination": {
            "plans": [{"id": "PLAN-001", "title": "p", "status": "active",
                       **({"waves": waves} if waves is not None else {})}],
            "todos": [
                {"id": "TODO-001", "task": "a", "repo": "api", "plan": "PLAN-001", "run": "true"},
                gate,
                {"id": "TODO-003", "task": "c", "repo": "web", "plan": "PLAN-001", "run": "true",
                 "blocked_by": ["TODO-002"]},
                {"id": "TODO-004", "task": "d", "repo": "db", "plan": "PLAN-001", "run": "true"},
            ]}}


def codes(data: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(f.code, f.ids) for f in validate_plan(Catalog.model_validate(data), "PLAN-001")
            if f.severity == "error"]


@pytest.mark.parametrize("text,seconds", [(90, 90.0), ("90", 90.0), ("90s", 90.0),
                                          ("10m", 600.0), ("24h", 86400.0), ("1.5d", 129600.0)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "-1s", "10 weeks", True, "31d", float("inf")])
def test_bad_durations_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_a_gate_needs_enough_approvers_and_knows_its_keys() -> None:
    with pytest.raises(ValidationError, match="only 1 distinct people"):
        Todo.model_validate({"id": "TODO-1", "task": "x", "repo": "a",
                             "gate": {"approvals": 2, "from": ["ana", "ana"]}})
    with pytest.raises(ValidationError, match="on_expiry"):
        Todo.model_validate({"id": "TODO-1", "task": "x", "repo": "a",
                             "gate": {"on_expiry": "ignore"}})
    t = Todo.model_validate({"id": "TODO-1", "task": "x", "repo": "a",
                             "gate": {"from": ["ana"], "expires": "2m"}})
    assert t.gate is not None and t.gate.expires == 120.0
    assert t.model_dump(mode="json")["gate"]["from"] == ["ana"]  # as written, not from_


def test_validation_of_gates_and_waves() -> None:
    assert codes(catalog()) == []  # a gate needs no run:
    assert codes(catalog(gate_run=True)) == [("gate-with-run", ["TODO-002"])]
    assert codes(catalog([{"name": "one", "repos": ["api", "web"]}])) == [
        ("wave-unplaced", ["TODO-004"])]
    # web's todo waits for api's, whose wave comes after web's: it could never start
    order = codes(catalog([{"name": "w", "repos": ["web", "db"]}, {"name": "a", "repos": ["api"]}]))
    assert order == [("wave-order", ["TODO-003", "TODO-002"])]
    with pytest.raises(ValidationError, match="repos: or tags:"):
        Catalog.model_validate(catalog([{"name": "empty"}]))


def test_the_spec_carries_gates_and_waves_levelled_wave_by_wave(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "ecosystem.yaml"
    waves = [{"name": "canary", "repos": ["db"], "max_parallel": 1, "soak": "2s"},
             {"name": "rest", "tags": ["svc"], "require": {"success_rate": 0.5}}]
    path.write_text(yaml.safe_dump(catalog(waves)))
    spec = Planning(Keys("x"), path).plan_spec("PLAN-001", strategy="levels",
                                               ignore_blockers=False)
    assert [(w.name, w.todos, w.max_parallel, w.soak, w.success_rate) for w in spec.waves] == [
        ("canary", ["TODO-004"], 1, 2.0, 1.0),
        ("rest", ["TODO-001", "TODO-002", "TODO-003"], 0, 0.0, 0.5)]
    # TODO-004 and TODO-001 would share level 0; by waves, the canary's level comes first
    assert spec.levels == [["TODO-004"], ["TODO-001"], ["TODO-002"], ["TODO-003"]]
    assert spec.todos["TODO-002"].gate == {"approvals": 2, "from": ["ana", "bo"],
                                           "starter_may_approve": True, "expires": 3600.0,
                                           "on_expiry": "cancel"}
    assert spec.todos["TODO-002"].run == ""
    again = SweepSpec.from_json(spec.to_json())
    assert again.waves == spec.waves and again.todos["TODO-002"].gate == spec.todos["TODO-002"].gate
    assert again.wave_of()["TODO-003"] == 1 and again.gates() == ["TODO-002"]
    # people and soaks count in the deadline: a gate's hour, the canary's soak
    plain = SweepSpec.from_json(spec.to_json())
    plain.waves, plain.todos["TODO-002"].gate = [], None
    assert sweep_deadline(spec, 10**9) - sweep_deadline(plain, 10**9) == pytest.approx(3602.0)


def test_the_dry_run_shows_the_waves() -> None:
    from coordination.planner.documents import dry_run_document

    doc = dry_run_document(Catalog.model_validate(catalog(
        [{"name": "canary", "repos": ["db"], "soak": "1m"}, {"tags": ["svc"], "max_parallel": 2}])),
        "PLAN-001")
    assert doc["waves"] == [
        {"name": "canary", "todos": ["TODO-004"], "max_parallel": 0, "soak": 60.0,
         "success_rate": 1.0},
        {"name": "wave-2", "todos": ["TODO-001", "TODO-002", "TODO-003"], "max_parallel": 2,
         "soak": 0.0, "success_rate": 1.0}]
    assert "waves" not in dry_run_document(Catalog.model_validate(catalog()), "PLAN-001")


def test_a_change_that_lands_per_wave_sweeps_in_no_wave(tmp_path: Path) -> None:
    """Its waves are the landing's: a verify todo in the canary's repo that waits for the
    rest's edit (it verifies every repo's candidate) is no wave-order error, and the
    sweep runs every repo at once; a plan without the change still sweeps in waves."""
    import yaml

    from coordination.planner.documents import dry_run_document

    waves = [{"name": "canary", "repos": ["api"], "soak": "1m"}, {"name": "rest", "tags": ["svc"]}]
    data = catalog(waves)
    data["coordination"]["todos"] = [
        {"id": "TODO-001", "task": "edit api", "repo": "api", "plan": "PLAN-001", "run": "true"},
        {"id": "TODO-002", "task": "edit web", "repo": "web", "plan": "PLAN-001", "run": "true"},
        {"id": "TODO-003", "task": "verify", "repo": "api", "plan": "PLAN-001", "run": "true",
         "verify": True, "blocked_by": ["TODO-001", "TODO-002"]}]
    assert codes(data) == [("wave-order", ["TODO-003", "TODO-002"])]  # a sweep's waves
    data["coordination"]["plans"][0]["change"] = {"branch": "chg", "land": "per-wave"}
    assert codes(data) == []
    assert "waves" not in dry_run_document(Catalog.model_validate(data), "PLAN-001")
    path = tmp_path / "ecosystem.yaml"
    path.write_text(yaml.safe_dump(data))
    spec = Planning(Keys("x"), path).plan_spec("PLAN-001", strategy="levels",
                                               ignore_blockers=False)
    assert spec.waves == []
    assert spec.levels == [["TODO-001", "TODO-002"], ["TODO-003"]]
    data["coordination"]["plans"][0]["change"]["land"] = "push"  # waves: the sweep's again
    assert codes(data) == [("wave-order", ["TODO-003", "TODO-002"])]
