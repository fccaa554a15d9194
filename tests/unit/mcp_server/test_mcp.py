"""`coord mcp`: driven over stdio by the MCP SDK's own client, as an agent would.

Each test starts `python -m coordination.cli.main --file CATALOG mcp ...` in a
subprocess (no COORD_REDIS_URL: embedded) and talks to it with
``mcp.client.stdio.stdio_client`` + ``ClientSession``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from tests.unit.support.cli import clean_error, coord
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(120)

pytest.importorskip("mcp.client.stdio")
from mcp import ClientSession  # noqa: E402

from tests.unit.support.mcp import call, fails, serve  # noqa: E402

READ_TOOLS = {
    "coord_list", "coord_get", "coord_validate_plan", "coord_get_sweep", "coord_sweep_events",
    "coord_search_history", "coord_trends", "coord_change_status", "coord_suggest_assignee",
}
WRITE_TOOLS = {
    "coord_create_issue", "coord_update_issue", "coord_create_todo", "coord_complete_todo",
    "coord_check_dependencies", "coord_start_sweep", "coord_cancel_sweep", "coord_resume_sweep",
}
ALL = ("--toolsets", "all")


def cli_json(catalog: Path, *args: str) -> str:
    r = coord(catalog, *args, "--json")
    assert r.returncode in (0, 1), r.stderr
    return r.stdout


def todos_by_id(catalog: Path) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in yaml.safe_load(catalog.read_text())["coordination"]["todos"]}


def test_lists_every_tool_and_read_only_lists_none_that_writes(example_catalog: Path) -> None:
    async def names(session: ClientSession) -> dict[str, Any]:
        return {t.name: t for t in (await session.list_tools()).tools}

    tools = serve(example_catalog, *ALL, body=names)
    assert set(tools) == READ_TOOLS | WRITE_TOOLS
    schema = tools["coord_update_issue"].input_schema["properties"]["status"]
    assert schema["enum"] == ["open", "in_progress", "resolved", "closed"]
    assert schema["type"] == "string" and schema["description"]
    assert tools["coord_list"].annotations.read_only_hint is True
    assert tools["coord_start_sweep"].annotations.read_only_hint is False
    assert "dry_run" in tools["coord_start_sweep"].input_schema["properties"]

    read_only = serve(example_catalog, "--read-only", *ALL, body=names)
    assert set(read_only) == READ_TOOLS
    assert not set(read_only) & WRITE_TOOLS


def test_results_are_the_cli_json_documents(example_catalog: Path) -> None:
    async def body(s: ClientSession) -> dict[str, str]:
        out = {}
        for key, tool, args in [
            ("issues", "coord_list", {"kind": "issues", "status": "open"}),
            ("todo", "coord_get", {"id": "TODO-003"}),
            ("validate", "coord_validate_plan", {"plan_id": "PLAN-001"}),
            ("repo", "coord_get", {"repo": "web"}),
            ("plans", "coord_list", {"kind": "plans"}),
            ("plan", "coord_get", {"id": "PLAN-001"}),
            ("deps", "coord_list", {"kind": "dependencies", "consumer": "web"}),
            ("suggest", "coord_suggest_assignee", {"issue_id": "ISSUE-003"}),
        ]:
            res = await s.call_tool(tool, args)
            assert not res.is_error, res.content
            out[key] = res.content[0].text  # type: ignore[union-attr]
        return out

    got = serve(example_catalog, body=body)
    assert got["issues"] + "\n" == cli_json(example_catalog, "issue", "list", "--status", "open")
    assert got["todo"] + "\n" == cli_json(example_catalog, "todo", "show", "TODO-003")
    assert got["validate"] + "\n" == cli_json(example_catalog, "plan", "validate", "PLAN-001")
    assert got["repo"] + "\n" == cli_json(example_catalog, "repo", "status", "web")
    assert got["plans"] + "\n" == cli_json(example_catalog, "plan", "list")
    assert got["plan"] + "\n" == cli_json(example_catalog, "plan", "status", "PLAN-001")
    assert got["deps"] + "\n" == cli_json(example_catalog, "dep", "list", "--consumer", "web")
    assert got["suggest"] + "\n" == cli_json(example_catalog, "issue", "suggest", "ISSUE-003")
    assert json.loads(got["suggest"])["suggestions"][0]["person"]  # someone, with reasons


def test_create_issue_lands_in_the_catalog(example_catalog: Path) -> None:
    async def body(s: ClientSession) -> tuple[Any, Any]:
        made = await call(s, "coord_create_issue", title="Drop 3.11", repos=["api", "jobs"],
                          priority="high", labels=["migration"], target="2027-01-31")
        return made, await call(s, "coord_get", id=made["id"])

    made, shown = serve(example_catalog, body=body)
    assert made == shown and made["priority"] == "high"
    issues = {i["id"]: i for i in yaml.safe_load(example_catalog.read_text())["coordination"]["issues"]}
    assert issues[made["id"]]["title"] == "Drop 3.11"
    assert issues[made["id"]]["repos"] == ["api", "jobs"]
    assert str(issues[made["id"]]["target"]) == "2027-01-31"


def test_validate_and_dry_run_a_plan_enqueue_nothing(example_catalog: Path) -> None:
    before = example_catalog.read_bytes()

    async def body(s: ClientSession) -> tuple[Any, Any]:
        return (await call(s, "coord_validate_plan", plan_id="PLAN-001"),
                await call(s, "coord_start_sweep", plan_id="PLAN-001", dry_run=True))

    valid, dry = serve(example_catalog, body=body)
    assert valid["plan"] == "PLAN-001" and valid["ok"] is True
    assert dry["levels"] == [["TODO-002"], ["TODO-003", "TODO-004"], ["TODO-005", "TODO-006"]]
    assert dry["queues"]["TODO-003"].endswith("repo.api")
    assert json.loads(cli_json(example_catalog, "plan", "sweep", "PLAN-001", "--dry-run")) == dry
    assert example_catalog.read_bytes() == before


def test_embedded_sweep_runs_to_the_end_and_stays_readable(tmp_path: Path) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "echo one > one.txt"},
        {"id": "TODO-002", "repo": "web", "run": "echo two > two.txt", "blocked_by": ["TODO-001"]},
    ])

    async def body(s: ClientSession) -> tuple[Any, Any, Any, Any, Any]:
        done = await call(s, "coord_start_sweep", plan_id="PLAN-001")
        status = await call(s, "coord_get_sweep", sweep_id=done["sweep_id"])
        events = await call(s, "coord_sweep_events", sweep_id=done["sweep_id"])
        two = await call(s, "coord_sweep_events", sweep_id=done["sweep_id"], todo="TODO-002")
        found = await call(s, "coord_search_history", text="TODO-002", kind="todo")
        trends = await call(s, "coord_trends")
        return done, status, (events, two), found, trends

    done, status, (events, two), found, trends = serve(cat, *ALL, body=body)
    assert two and two == [e for e in events if e["todo_id"] == "TODO-002"]
    # The history tools: the same documents as the CLI's --json.
    assert [(r["todo_id"], r["sweep_id"]) for r in found] == [("TODO-002", done["sweep_id"])]
    assert found == json.loads(cli_json(cat, "history", "search", "TODO-002", "--kind", "todo"))
    assert trends["repos"]["web"]["runs"] == 1 and trends["repos"]["web"]["success_rate"] == 1.0
    assert trends == json.loads(cli_json(cat, "history", "trends"))
    assert done["status"] == "succeeded", done
    assert {t: v["status"] for t, v in done["todos"].items()} == {
        "TODO-001": "succeeded", "TODO-002": "succeeded"}
    assert sorted(done["synced"]["completed"]) == ["TODO-001", "TODO-002"]
    assert status["sweep_id"] == done["sweep_id"] and status["status"] == "succeeded"
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "sweep.queued" and kinds[-1] == "sweep.finished"
    assert kinds.count("todo.succeeded") == 2
    assert (cat.parent / "repos" / "web" / "two.txt").read_text() == "two\n"
    assert {t["status"] for t in todos_by_id(cat).values()} == {"completed"}


def test_a_failed_embedded_sweep_resumes_in_the_same_server(tmp_path: Path) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "test -f fixed", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "jobs", "run": "true", "blocked_by": ["TODO-002"]},
    ])

    async def body(s: ClientSession) -> tuple[Any, Any, Any]:
        failed = await call(s, "coord_start_sweep", plan_id="PLAN-001")
        sid = failed["sweep_id"]
        preview = await call(s, "coord_resume_sweep", sweep_id=sid, dry_run=True)
        (cat.parent / "repos" / "web" / "fixed").touch()
        return failed, preview, await call(s, "coord_resume_sweep", sweep_id=sid)

    failed, preview, resumed = serve(cat, body=body)
    assert failed["status"] == "failed"
    assert failed["todos"]["TODO-003"]["status"] == "skipped"
    assert preview["rerun"] == ["TODO-002", "TODO-003"] and preview["dry_run"] is True
    assert resumed["sweep_id"] == failed["sweep_id"] and resumed["status"] == "succeeded"
    assert resumed["run"] == 1 and resumed["todos"]["TODO-001"]["attempts"] == 1  # not re-run
    assert {t["status"] for t in todos_by_id(cat).values()} == {"completed"}


def test_run_todo_refuses_a_blocked_todo_with_coords_message(tmp_path: Path) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "exit 3"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
    ])

    async def body(s: ClientSession) -> tuple[Any, Any]:
        blocked = await fails(s, "coord_start_sweep", todo_id="TODO-002")
        failed = await call(s, "coord_start_sweep", todo_id="TODO-001")
        return blocked, failed

    (text, err), failed = serve(cat, body=body)
    assert "TODO-002 is blocked" in text and "--ignore-blockers" in err["hint"]
    assert err["type"] == "PlanError" and err["exit_code"] == 2
    # A sweep that ran and failed is a result to read, not a tool error.
    assert failed["status"] == "failed" and failed["todos"]["TODO-001"]["exit_code"] == 3
    assert todos_by_id(cat)["TODO-001"]["status"] == "failed"


def test_errors_carry_message_and_hint_and_read_only_refuses_writes(
        example_catalog: Path) -> None:
    before = example_catalog.read_bytes()

    async def body(s: ClientSession) -> tuple[Any, Any, Any]:
        unknown = await fails(s, "coord_get", id="ISSUE-999")
        bad_enum = await fails(s, "coord_list", kind="todos", status="done")
        write = await fails(s, "coord_create_issue", title="sneaky")
        return unknown, bad_enum, write

    (text, err), (enum_text, _), (write_text, _) = serve(
        example_catalog, "--read-only", body=body)
    assert err["type"] == "NotFoundError" and err["exit_code"] == 2
    assert err["error"] == "unknown issue 'ISSUE-999'"
    assert "ISSUE-001" in err["hint"] and "hint:" in text
    assert "pending" in enum_text  # the schema's enum names what is allowed
    assert "coord_create_issue" in write_text
    assert example_catalog.read_bytes() == before


def test_repo_scope_filters_lists_and_refuses_other_repos(example_catalog: Path) -> None:
    before = example_catalog.read_bytes()

    async def body(s: ClientSession) -> dict[str, Any]:
        return {
            "issues": await call(s, "coord_list", kind="issues"),
            "todos": await call(s, "coord_list", kind="todos"),
            "deps": await call(s, "coord_list", kind="dependencies"),
            "other_issue": await fails(s, "coord_get", id="ISSUE-002"),
            "other_todo": await fails(s, "coord_create_todo", task="x", repo="web"),
            "run_other": await fails(s, "coord_start_sweep", todo_id="TODO-005"),
            "sweep_plan": await fails(s, "coord_start_sweep", plan_id="PLAN-001", dry_run=True),
            "status_other": await fails(s, "coord_get", repo="web"),
            "mine": await call(s, "coord_get", id="TODO-003"),
        }

    got = serve(example_catalog, "--repo", "api", body=body)
    assert [i["id"] for i in got["issues"]] == ["ISSUE-001", "ISSUE-003"]
    assert [t["id"] for t in got["todos"]] == ["TODO-003"]
    assert got["deps"] and all("api" in (d["consumer"], d["provider"]) for d in got["deps"])
    for key in ("other_issue", "other_todo", "run_other", "sweep_plan", "status_other"):
        text, err = got[key]
        assert err["type"] == "OutOfScope", (key, text)
        assert "serves only api" in err["error"], (key, err)
    assert "ISSUE-002 concerns infra" in got["other_issue"][1]["error"]
    assert got["mine"]["id"] == "TODO-003"
    assert example_catalog.read_bytes() == before


def test_a_repo_not_in_the_catalog_is_refused_before_serving(example_catalog: Path) -> None:
    r = coord(example_catalog, "mcp", "--repo", "nope", timeout=60)
    clean_error(r, 2)
    assert "nope" in r.stderr and "api" in r.stderr


def test_schema_enums_are_the_catalog_models() -> None:
    from coordination.catalog import models
    from coordination.mcp_server import tools

    for literal, enum in [(tools.IssueStatus, models.IssueStatus),
                          (tools.Priority, models.Priority),
                          (tools.DepType, models.DependencyType)]:
        assert list(get_args(literal)) == [m.value for m in enum], literal
