"""`plan validate` and the dry run of template plans: what the sweep or the landing
would refuse is said before (a repo landing before its provider's wave), what would
never land is warned about (verify instances that can start before the change's
commits), advice names edges as the catalog writes them (not the ones a template's
expansion made), and ``{repo}`` in a command is flagged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.catalog.models import Catalog
from coordination.catalog.selection.templates import expand
from coordination.planner.validate import validate_plan
from tests.unit.support.cli import coord

pytestmark = pytest.mark.timeout(120)

BASE = Path("/fleet")
#: consumer -> provider: lib <- core, api <- lib, web <- api
DEPS = [("lib", "core"), ("api", "lib"), ("web", "api")]


def catalog(todos: list[dict[str, Any]], plan: dict[str, Any] | None = None,
            canary: tuple[str, ...] = ("core", "lib")) -> dict[str, Any]:
    return {
        "version": 1,
        "repos": [{"name": r, "path": r, "tags": ["svc", *(["canary"] if r in canary else [])]}
                  for r in ("core", "lib", "api", "web")],
        "coordination": {
            "dependencies": [{"id": f"DEP-{i:03d}", "consumer": c, "provider": p}
                             for i, (c, p) in enumerate(DEPS, 1)],
            "plans": [{"id": "PLAN-001", "title": "bump", "status": "active", **(plan or {})}],
            "todos": [{"task": t["id"], "plan": "PLAN-001", **t} for t in todos],
        },
    }


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    for r in ("core", "lib", "api", "web"):
        (tmp_path / r).mkdir(exist_ok=True)
    eco = tmp_path / "ecosystem.yaml"
    eco.write_text(yaml.safe_dump(doc, sort_keys=False))
    return eco


def findings(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    raw = Catalog.model_validate(doc)
    return [(f.severity, f.code, f.message)
            for f in validate_plan(expand(raw, BASE), "PLAN-001", written=raw)]


EDIT = {"id": "TODO-020", "for_each": "tag:svc", "deps": "follow", "run": "true",
        "commit": "Bump in {repo}"}
PER_WAVE = {"change": {"branch": "bump", "land": "per-wave"},
            "waves": [{"name": "canary", "tags": ["canary"]}, {"name": "rest", "tags": ["svc"]}]}


def test_a_repo_landing_before_its_providers_wave_is_an_error_of_validate_and_dry_run(
        tmp_path: Path) -> None:
    """Canary api, its provider lib in the rest wave: the landing refuses it, so
    validate (exit 1) and the dry run (exit 2, as the sweep) say it with the landing's
    own message."""
    eco = write(tmp_path, catalog([EDIT], PER_WAVE, canary=("core", "api")))
    r = coord(eco, "plan", "validate", "PLAN-001", "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    (err,) = [f for f in doc["findings"] if f["severity"] == "error"]
    assert err["code"] == "landing"
    assert "a repo would land before its provider: api (wave canary) depends on lib " \
           "(wave rest)" in err["message"]
    r = coord(eco, "plan", "sweep", "PLAN-001", "--dry-run")
    assert r.returncode == 2 and "would land before its provider" in r.stderr, r.stderr
    r = coord(eco, "plan", "sweep", "PLAN-001")
    assert r.returncode == 2 and "would land before its provider" in r.stderr, r.stderr
    # providers in the same wave or an earlier one: valid, and the dry run runs
    eco = write(tmp_path, catalog([EDIT], PER_WAVE, canary=("core", "lib")))
    assert coord(eco, "plan", "validate", "PLAN-001").returncode == 0
    assert coord(eco, "plan", "sweep", "PLAN-001", "--dry-run").returncode == 0


def test_a_land_command_change_without_land_command_is_an_error() -> None:
    got = findings(catalog([EDIT], {"change": {"branch": "bump", "land": "command"}}))
    assert ("error", "landing",
            "PLAN-001 lands by command but 4 of its repos have no land_command: core, lib, "
            "api, web (add land_command: (e.g. \"gh pr merge --squash\") to each)") in got


VERIFY = {"id": "TODO-021", "for_each": "tag:svc", "verify": True, "run": "true"}


def test_verify_instances_that_can_start_before_the_commits_are_warned_with_the_fix(
        tmp_path: Path) -> None:
    same = catalog([EDIT, {**VERIFY, "blocked_by": ["TODO-020[same]"]}],
                   {"change": {"branch": "bump"}})
    (warn,) = [f for f in findings(same) if f[1] == "verify-early"]
    assert warn[0] == "warning"
    # web's verify is after every edit (deps: follow puts web's last); the others not
    assert "3 of TODO-021's 4 verify instances (TODO-021[core], TODO-021[lib], " \
           "TODO-021[api])" in warn[2]
    assert "commits of TODO-020 are still to come" in warn[2]
    assert "write blocked_by: [TODO-020] on TODO-021" in warn[2]
    eco = write(tmp_path, same)
    r = coord(eco, "plan", "sweep", "PLAN-001", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "warning verify-early: 3 of TODO-021's 4 verify instances" in r.stdout
    r = coord(eco, "plan", "sweep", "PLAN-001", "--dry-run", "--json")
    assert [w["code"] for w in json.loads(r.stdout)["warnings"]] == ["verify-early"]
    # after every instance of the edit, or through one plain todo: nothing to say
    every = catalog([EDIT, {**VERIFY, "blocked_by": ["TODO-020"]}],
                    {"change": {"branch": "bump"}})
    assert [f for f in findings(every) if f[1] == "verify-early"] == []
    barrier = catalog([EDIT, {"id": "TODO-030", "repo": "core", "run": "true",
                              "blocked_by": ["TODO-020"]},
                       {**VERIFY, "blocked_by": ["TODO-030"]}], {"change": {"branch": "bump"}})
    assert [f for f in findings(barrier) if f[1] == "verify-early"] == []
    # a plain verify todo after one repo's edit only
    plain = catalog([EDIT, {"id": "TODO-031", "repo": "core", "run": "true", "verify": True,
                            "blocked_by": ["TODO-020[core]"]}], {"change": {"branch": "bump"}})
    (warn,) = [f for f in findings(plain) if f[1] == "verify-early"]
    assert warn[2].startswith("TODO-031 (verify) can start while commits of TODO-020")
    # not a change: verify means nothing, nothing to say here
    off = catalog([EDIT, {**VERIFY, "blocked_by": ["TODO-020[same]"]}])
    assert [f for f in findings(off) if f[1] == "verify-early"] == []


def test_the_fix_for_a_big_template_is_the_barrier() -> None:
    n = 600  # 600 x 600 = 360,000 edges if each verify waited on every edit
    doc = {"version": 1, "repos": [{"name": f"r{i:04d}", "tags": ["svc"]} for i in range(n)],
           "coordination": {"plans": [{"id": "PLAN-001", "title": "p",
                                       "change": {"branch": "b"}}],
                            "todos": [{**EDIT, "task": "e", "plan": "PLAN-001", "deps": None},
                                      {**VERIFY, "task": "v", "plan": "PLAN-001",
                                       "blocked_by": ["TODO-020[same]"]}]}}
    (warn,) = [f for f in findings(doc) if f[1] == "verify-early"]
    assert "put a plain todo between them (blocked_by: [TODO-020], blocking: [TODO-021]): " \
           "1,200 edges" in warn[2]


def test_redundant_edge_advice_names_edges_as_written() -> None:
    """TODO-012 blocked_by [TODO-010] is written once and makes an edge per instance,
    most of them implied through deps: follow: no advice (the edge cannot go); a
    reference whose every edge is implied is named as written."""
    t10 = {"id": "TODO-010", "for_each": "tag:svc", "deps": "follow", "run": "true"}
    t12 = {"id": "TODO-012", "repo": "core", "run": "true", "blocked_by": ["TODO-010"]}
    got = findings(catalog([t10, t12]))
    assert [f for f in got if f[1] == "redundant-edge"] == [], got
    t11 = {"id": "TODO-011", "repo": "core", "run": "true", "blocked_by": ["TODO-010"]}
    both = {**t12, "blocked_by": ["TODO-010", "TODO-011"]}
    got = findings(catalog([t10, t11, both]))
    assert [f[2] for f in got if f[1] == "redundant-edge"] == [
        "TODO-012 blocked_by TODO-010 is implied by a longer path (all 4 edges it makes); "
        "the edge can go"]
    plain = [{"id": "TODO-001", "repo": "core", "run": "true"},
             {"id": "TODO-002", "repo": "core", "run": "true", "blocked_by": ["TODO-001"]},
             {"id": "TODO-003", "repo": "core", "run": "true",
              "blocked_by": ["TODO-001", "TODO-002"]}]
    assert [f[2] for f in findings(catalog(plain)) if f[1] == "redundant-edge"] == [
        "TODO-003 blocked_by TODO-001 is implied by a longer path; the edge can go"]


def test_repo_in_a_command_is_flagged() -> None:
    got = findings(catalog([{"id": "TODO-010", "for_each": "tag:svc", "run": "make {repo}",
                             "commit": "Bump {repo}"}]))
    (warn,) = [f for f in got if f[1] == "repo-placeholder"]
    assert warn[0] == "warning" and warn[2].startswith("TODO-010's run has {repo}")
    assert '"$COORD_REPO"' in warn[2] and "never pasted into command text" in warn[2]


def test_repo_in_a_command_is_flagged_once_per_template_of_an_expanded_catalog() -> None:
    """Without the catalog as written (a caller that has only the expansion), one
    finding per template still, not one per instance."""
    raw = Catalog.model_validate(catalog([{"id": "TODO-010", "for_each": "tag:svc",
                                           "run": "make {repo}"}]))
    got = [f for f in validate_plan(expand(raw, BASE), "PLAN-001") if f.code == "repo-placeholder"]
    assert [f.ids for f in got] == [["TODO-010"]]


def test_validate_names_a_deps_follow_templates_cycle_as_the_dry_run_does(
        tmp_path: Path) -> None:
    """core dev-depends on web (which runtime-depends on it through api and lib): no
    cycle by the default order; ordering by dev edges too, `plan validate` warns of the
    group with the dry run's dependency-cycle finding (exit 0), and with cycles: error
    that finding is an error (exit 1) whose hint works when followed."""
    doc = catalog([EDIT, {"id": "TODO-030", "for_each": "tag:svc", "run": "true"}])
    doc["coordination"]["dependencies"].append(
        {"id": "DEP-004", "consumer": "core", "provider": "web", "type": "dev"})

    def cycles(eco: Path, code: int, *flags: str) -> list[dict[str, Any]]:
        r = coord(eco, "plan", "validate", "PLAN-001", "--json", *flags)
        assert r.returncode == code, r.stdout + r.stderr
        return [f for f in json.loads(r.stdout)["findings"] if f["code"] == "dependency-cycle"]

    eco = write(tmp_path, doc)
    assert cycles(eco, 0) == []
    # the flags say it for one command, as `plan sweep`'s do
    (flagged,) = cycles(eco, 0, "--order-by", "runtime,dev")
    assert flagged["severity"] == "warning"
    assert [f["severity"] for f in cycles(eco, 1, "--order-by", "runtime,dev", "--cycles",
                                          "error")] == ["error"]
    bad = coord(eco, "plan", "validate", "PLAN-001", "--order-by", "runtime,devv")
    assert bad.returncode == 2 and "devv" in bad.stderr, bad.stderr
    eco = write(tmp_path, {**doc, "order": {"by": ["runtime", "dev"]}})
    (found,) = cycles(eco, 0)  # TODO-030 follows no dependencies: no cycle of its
    assert found["severity"] == "warning" and found["ids"] == ["TODO-020"]
    assert found["message"] == (
        "TODO-020 (deps: follow): dependency cycle among api, core, lib, web: "
        "api -> lib (DEP-002 runtime); lib -> core (DEP-001 runtime); core -> web "
        "(DEP-004 dev); web -> api (DEP-003 runtime); they run as one group, one at a time: "
        "core, then lib, then api, then web (the edges closing no cycle order them; dropped "
        "as closing one: core -> web (DEP-004 dev))"), found
    dry = coord(eco, "plan", "sweep", "PLAN-001", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["warnings"] == [found]  # the same finding
    human = coord(eco, "plan", "validate", "PLAN-001")
    assert human.returncode == 0, human.stderr
    assert "warning dependency-cycle: TODO-020 (deps: follow): dependency cycle among " \
           "api, core, lib, web" in " ".join(human.stdout.split()), human.stdout
    eco = write(tmp_path, {**doc, "order": {"by": ["runtime", "dev"], "cycles": "error"}})
    (found,) = cycles(eco, 1)
    assert found["severity"] == "error" and found["ids"] == ["TODO-020"]
    assert found["message"].startswith(
        "TODO-020 (deps: follow): dependency cycle among api, core, lib, web: "), found
    assert "--cycles group" in found["message"]
    assert cycles(eco, 0, "--cycles", "group") == [flagged]  # the hint, followed
    assert coord(eco, "plan", "sweep", "PLAN-001", "--dry-run", "--cycles", "group"
                 ).returncode == 0
