"""A change as the catalog says it, its state in Redis, its manifest's signature (#25)."""

from __future__ import annotations

import json
from pathlib import Path

import fakeredis
import pytest
import yaml

from coordination.catalog.models import Catalog
from coordination.change.model import change_of, env_name, landing_order
from coordination.errors import PlanError
from coordination.keys import Keys
from coordination.runtime.change_records import StepRecord
from coordination.runtime.changes import ChangeStore
from coordination.trust.signing import Policy, manifest_refusal, sign, sign_manifest

pytestmark = pytest.mark.timeout(30)

CATALOG = """
version: 1
repos:
  - {name: web, path: w}
  - {name: api, path: a, default_branch: trunk, remote: upstream, land_command: "gh pr merge"}
  - {name: libz}
coordination:
  plans:
    - {id: PLAN-001, title: c, change: {branch: bump/libz-2}}
    - {id: PLAN-002, title: c, change: {branch: x, land: command}}
  todos:
    - {id: TODO-001, task: t, repo: web, plan: PLAN-001, run: "true", commit: "bump"}
    - {id: TODO-002, task: t, repo: api, plan: PLAN-001, run: "true", verify: true}
    - {id: TODO-003, task: t, repo: libz, plan: PLAN-001, run: "true"}
    - {id: TODO-004, task: t, repo: web, plan: PLAN-002, run: "true"}
  dependencies:
    - {id: DEP-001, consumer: web, provider: api}
    - {id: DEP-002, consumer: api, provider: libz}
"""


def catalog(text: str = CATALOG) -> Catalog:
    return Catalog.model_validate(yaml.safe_load(text))


def test_a_change_lands_providers_first_with_each_repos_base_and_remote(tmp_path: Path) -> None:
    cp = change_of(catalog(), "PLAN-001", tmp_path)
    assert cp.order == ["libz", "api", "web"]  # dependency order, not the catalog's
    assert (cp.targets["api"].base, cp.targets["api"].remote) == ("trunk", "upstream")
    assert (cp.targets["web"].base, cp.targets["web"].remote) == ("main", "origin")
    assert cp.targets["web"].checkout == str(tmp_path / "w")
    assert cp.verify_todos == ("TODO-002",)
    tc = cp.todo_change("bump", False)
    assert tc["repos"]["api"] == [str(tmp_path / "a"), "trunk", "upstream"]


def test_land_by_command_needs_every_repo_s_land_command(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="web has no land_command"):
        change_of(catalog(), "PLAN-002", tmp_path)


def test_a_plan_without_change_is_refused(tmp_path: Path) -> None:
    text = CATALOG.replace("change: {branch: bump/libz-2}", "status: active")
    with pytest.raises(PlanError, match="PLAN-001 is not a change"):
        change_of(catalog(text), "PLAN-001", tmp_path)


def test_a_dependency_cycle_is_refused_naming_its_repos() -> None:
    assert landing_order(["a", "b", "c"], [("b", "a")]) == ["b", "a", "c"]
    with pytest.raises(PlanError, match="a, b"):
        landing_order(["a", "b", "c"], [("a", "b"), ("b", "a")])


@pytest.mark.parametrize("branch", ["a..b", "x/", "-x", "a b", "x.lock", "a//b"])
def test_branch_names_git_refuses_are_refused(branch: str) -> None:
    with pytest.raises(ValueError):
        catalog(CATALOG.replace("bump/libz-2", json.dumps(branch)))


def test_unknown_change_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="brnch"):
        catalog(CATALOG.replace("{branch: bump/libz-2}", "{brnch: x}"))


def test_env_names() -> None:
    assert env_name("api-v2.x") == "API_V2_X"


def store() -> ChangeStore:
    r = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    return ChangeStore(r, Keys("t"), lease_ttl=5)


def test_a_landing_step_is_fenced_by_its_repo_lease() -> None:
    s = store()
    first = s.take_lease("api", concurrency=2)
    assert first is not None and s.take_lease("api", concurrency=2) is None  # all slots
    assert s.step("PLAN-001", first, "api", StepRecord.of({"state": "landing"}))
    assert s.step("PLAN-001", first, "api", StepRecord.of({"state": "landed"}))
    s.r.delete(*first.keys)  # expired; another landing takes it over
    second = s.take_lease("api", concurrency=2)
    assert second is not None and second.fence > first.fence
    assert not s.step("PLAN-001", first, "api", StepRecord.of({"state": "reverted"}))
    assert s.read("PLAN-001").steps["api"] == StepRecord.of({"state": "landed"})


def test_a_manifest_is_signed_for_its_plan_only() -> None:
    policy = Policy(("k1",))
    text = json.dumps({"plan": "PLAN-001", "repos": []})
    sig = sign_manifest("PLAN-001", text, "k1")
    assert manifest_refusal("PLAN-001", text, sig["manifest_sig"], sig["manifest_key_id"],
                            policy) is None
    assert "changed" in str(manifest_refusal("PLAN-001", text + " ", sig["manifest_sig"],
                                             sig["manifest_key_id"], policy))
    assert manifest_refusal("PLAN-002", text, sig["manifest_sig"], sig["manifest_key_id"],
                            policy) is not None
    spec_sig = sign("PLAN-001", 0, text, "k1")  # a spec's signature is no manifest's
    assert manifest_refusal("PLAN-001", text, spec_sig["spec_sig"], spec_sig["spec_key_id"],
                            policy) is not None
    assert "unsigned" in str(manifest_refusal("PLAN-001", text, None, None, policy))
    assert manifest_refusal("PLAN-001", text, None, None, Policy()) is None


def test_a_change_s_todos_carry_it_in_their_spec(tmp_path: Path) -> None:
    from coordination.sweeps.planning import Planning
    from coordination.sweeps.spec import SweepSpec

    text = CATALOG.replace("{id: PLAN-002, title: c, change: {branch: x, land: command}}",
                           "{id: PLAN-002, title: c, milestones: [{id: MS-001, todos: [TODO-004]}]}")
    text = text.replace("{id: PLAN-001, title: c, change: {branch: bump/libz-2}}",
                        "{id: PLAN-001, title: c, change: {branch: bump/libz-2}, "
                        "milestones: [{id: MS-002, todos: [TODO-005]}]}")
    text = text.replace("  dependencies:", "    - {id: TODO-005, task: t, repo: libz, run: \"true\"}"
                        "\n  dependencies:")
    (tmp_path / "ecosystem.yaml").write_text(text)
    spec = Planning(Keys("t"), tmp_path / "ecosystem.yaml").plan_spec(
        "PLAN-001", strategy="levels", ignore_blockers=True)
    spec = SweepSpec.from_json(spec.to_json())  # as a worker reads it
    web, api = spec.todos["TODO-001"].change, spec.todos["TODO-002"].change
    assert web is not None and api is not None
    assert (web["branch"], web["commit"], web["verify"]) == ("bump/libz-2", "bump", False)
    assert (api["commit"], api["verify"]) == (None, True)
    assert spec.todos["TODO-005"].change is not None  # listed in a milestone only
    other = Planning(Keys("t"), tmp_path / "ecosystem.yaml").plan_spec(
        "PLAN-002", strategy="levels", ignore_blockers=True)
    assert other.todos["TODO-004"].change is None


def test_commit_and_verify_outside_a_change_are_named_by_validate() -> None:
    from coordination.planner.validate import validate_plan

    text = CATALOG.replace("change: {branch: bump/libz-2}", "status: active")
    found = [f for f in validate_plan(catalog(text), "PLAN-001") if f.code == "not-a-change"]
    assert [(f.severity, f.ids) for f in found] == [("warning", ["TODO-001"]),
                                                    ("warning", ["TODO-002"])]
    assert not [f for f in validate_plan(catalog(), "PLAN-001") if f.code == "not-a-change"]


WAVES = """
version: 1
repos:
  - {name: libz, tags: [canary]}
  - {name: api, tags: [canary]}
  - {name: web, tags: [service]}
  - {name: app, tags: [service]}
coordination:
  plans:
    - id: PLAN-001
      title: c
      change: {branch: x, land: per-wave}
      waves:
        - {name: canary, tags: [canary], soak: 90s}
        - {name: rest, tags: [service]}
        - {name: unused, repos: [nothing]}
  todos:
    - {id: TODO-001, task: t, repo: app, plan: PLAN-001, run: "true", commit: "c"}
    - {id: TODO-002, task: t, repo: web, plan: PLAN-001, run: "true", commit: "c"}
    - {id: TODO-003, task: t, repo: api, plan: PLAN-001, run: "true", commit: "c"}
    - {id: TODO-004, task: t, repo: libz, plan: PLAN-001, run: "true", commit: "c"}
  dependencies:
    - {id: DEP-001, consumer: api, provider: libz}
    - {id: DEP-002, consumer: app, provider: web}
    - {id: DEP-003, consumer: web, provider: api}
"""


def test_a_per_wave_change_lands_wave_by_wave_each_in_dependency_order(tmp_path: Path) -> None:
    cp = change_of(catalog(WAVES), "PLAN-001", tmp_path)
    assert cp.land == "per-wave"
    # waves naming none of the change's repos are left out
    assert [(w.name, w.repos, w.soak) for w in cp.waves] == [
        ("canary", ("libz", "api"), 90.0), ("rest", ("web", "app"), 0.0)]
    assert cp.order == ["libz", "api", "web", "app"]


def test_a_per_wave_change_without_waves_is_refused_saying_how_to_fix(tmp_path: Path) -> None:
    cat = catalog(WAVES)
    cat.plan("PLAN-001").waves.clear()  # type: ignore[union-attr]
    with pytest.raises(PlanError, match="lands per-wave but has no waves") as exc:
        change_of(cat, "PLAN-001", tmp_path)
    assert "land: push" in str(exc.value.hint)


def test_a_repo_no_wave_names_is_refused_by_name(tmp_path: Path) -> None:
    cat = catalog(WAVES.replace("{name: app, tags: [service]}", "{name: app}"))
    with pytest.raises(PlanError, match="no wave names repos app"):
        change_of(cat, "PLAN-001", tmp_path)


def test_a_repo_whose_provider_lands_in_a_later_wave_is_refused(tmp_path: Path) -> None:
    # web (rest) provides app; app moved to the canary wave would land before web
    cat = catalog(WAVES.replace("{name: app, tags: [service]}", "{name: app, tags: [canary]}"))
    with pytest.raises(PlanError, match=r"app \(wave canary\) depends on web \(wave rest\)"):
        change_of(cat, "PLAN-001", tmp_path)
