"""MCP's tools see a catalog's templates (``for_each:``) as the CLI's plan commands do:
expanded into their instances ``TODO-010[api]`` by the one function both call
(:func:`coordination.catalog.selection.templates.load_planned`). Driven over stdio by the MCP
SDK's client, against `coord ... --json` on the same catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.support.catalogs import svc_fleet
from tests.unit.support.cli import coord

pytestmark = pytest.mark.timeout(180)

pytest.importorskip("mcp.client.stdio")
from mcp import ClientSession  # noqa: E402

from tests.unit.support.mcp import call, fails, serve  # noqa: E402

REPOS = ("core", "api", "web")


def fleet(root: Path) -> Path:
    """core <- api <- web; TODO-009 and TODO-010 templates over every repo, TODO-010
    after the same repo's TODO-009 and its providers' TODO-010 (deps: follow)."""
    return svc_fleet(root, REPOS, {
        "dependencies": [{"id": "DEP-001", "consumer": "api", "provider": "core"},
                         {"id": "DEP-002", "consumer": "web", "provider": "api"}],
        "plans": [{"id": "PLAN-001", "title": "upgrade", "status": "active"}],
        "todos": [
            {"id": "TODO-001", "task": "plain", "plan": "PLAN-001", "repo": "core",
             "run": "true"},
            {"id": "TODO-009", "task": "prepare", "plan": "PLAN-001",
             "for_each": "tag:svc", "run": "true"},
            {"id": "TODO-010", "task": "upgrade", "plan": "PLAN-001", "for_each": "tag:svc",
             "deps": "follow", "blocked_by": ["TODO-009[same]"], "run": "true"},
        ],
    })


def cli_json(eco: Path, *args: str) -> Any:
    r = coord(eco, *args, "--json")
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)


def test_mcp_validates_dry_runs_and_counts_a_template_plan_as_the_cli(tmp_path: Path) -> None:
    eco = fleet(tmp_path)

    async def body(s: ClientSession) -> dict[str, Any]:
        return {
            "validate": await call(s, "coord_validate_plan", plan_id="PLAN-001"),
            "dry": await call(s, "coord_start_sweep", plan_id="PLAN-001", dry_run=True),
            "status": await call(s, "coord_get", id="PLAN-001"),
            "plans": await call(s, "coord_list", kind="plans"),
        }

    got = serve(eco, body=body)
    validate = cli_json(eco, "plan", "validate", "PLAN-001")
    assert validate["ok"] and got["validate"] == validate  # ok, no "runs in repo ''"
    dry = cli_json(eco, "plan", "sweep", "PLAN-001", "--dry-run")
    assert got["dry"]["levels"] == dry["levels"] == [
        ["TODO-001", "TODO-009[api]", "TODO-009[core]", "TODO-009[web]"],
        ["TODO-010[core]"], ["TODO-010[api]"], ["TODO-010[web]"]]
    assert got["dry"]["templates"] == dry["templates"]
    status = cli_json(eco, "plan", "status", "PLAN-001")
    assert got["status"]["todos"] == status["todos"] and status["todos"]["total"] == 7
    assert got["status"]["complete"] is False
    plans = cli_json(eco, "plan", "list")
    assert got["plans"] == plans and plans[0]["progress"]["total"] == 7
    assert plans[0]["repos"] == ["api", "core", "web"]  # no '' of the templates


def test_a_scoped_server_lists_reads_and_runs_a_templates_plan(tmp_path: Path) -> None:
    eco = fleet(tmp_path)

    async def body(s: ClientSession) -> dict[str, Any]:
        return {
            "todos": await call(s, "coord_list", kind="todos"),
            "template": await call(s, "coord_get", id="TODO-010"),
            "instance": await call(s, "coord_get", id="TODO-010[api]"),
            "run": await call(s, "coord_start_sweep", plan_id="PLAN-001", wait=True),
        }

    got = serve(eco, *[a for r in REPOS for a in ("--repo", r)], body=body)
    assert [t["id"] for t in got["todos"]] == ["TODO-001", "TODO-009", "TODO-010"]
    assert got["template"]["for_each"] == "tag:svc"
    assert got["instance"]["repo"] == "api"
    assert got["run"]["status"] == "succeeded", got["run"]
    assert len(got["run"]["todos"]) == 7
    todo = yaml.safe_load(eco.read_text())["coordination"]["todos"][2]
    assert todo["instances"] == dict.fromkeys(REPOS, "completed")

    async def narrow(s: ClientSession) -> dict[str, Any]:
        return {"todos": await call(s, "coord_list", kind="todos"),
                "other": await fails(s, "coord_get", id="TODO-010[web]"),
                "plan": await fails(s, "coord_start_sweep", plan_id="PLAN-001")}

    got = serve(eco, "--repo", "api", body=narrow)
    assert [t["id"] for t in got["todos"]] == ["TODO-009", "TODO-010"]  # theirs: api's too
    assert got["other"][1]["type"] == "OutOfScope"
    text, err = got["plan"]
    assert err["type"] == "OutOfScope" and "core, web" in err["error"], err  # not "repo(s) ;"


def test_mcp_validate_names_a_deps_follow_cycle_as_the_cli(tmp_path: Path) -> None:
    eco = fleet(tmp_path)
    doc = yaml.safe_load(eco.read_text())
    doc["coordination"]["dependencies"].append(
        {"id": "DEP-003", "consumer": "core", "provider": "web", "type": "dev"})
    doc["order"] = {"by": ["runtime", "dev"]}
    eco.write_text(yaml.safe_dump(doc, sort_keys=False))

    async def body(s: ClientSession) -> Any:
        return await call(s, "coord_validate_plan", plan_id="PLAN-001")

    got = serve(eco, body=body)
    validate = cli_json(eco, "plan", "validate", "PLAN-001")
    assert got == validate
    (cycle,) = [f for f in got["findings"] if f["code"] == "dependency-cycle"]
    assert cycle["message"].startswith("TODO-010 (deps: follow): dependency cycle among api, "
                                       "core, web: "), cycle
