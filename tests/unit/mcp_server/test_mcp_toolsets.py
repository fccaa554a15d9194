"""`coord mcp` for agents (#24): unknown arguments refused with the closest valid name,
toolsets, a default tool list within 3,000 tokens, input and output schemas and
annotations on every tool, results that validate, progress while a waited sweep runs.

The real `coord mcp` over stdio (embedded: no COORD_REDIS_URL), driven by the SDK's
client; the same over HTTP is in test_mcp_http.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from coordination.runtime.events import Event
from tests.unit.support.cli import clean_error, coord
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(120)

pytest.importorskip("mcp.client.stdio")
from mcp import ClientSession  # noqa: E402

from coordination.mcp_server.progress import RunProgress  # noqa: E402
from tests.unit.support.mcp import (  # noqa: E402
    BUDGET_TOKENS,
    DEFAULT,
    EVERY,
    HISTORY,
    call,
    fails,
    serve,
    tokens,
)


def titles(schema: Any) -> list[str]:
    """pydantic's ``"title": "..."`` keywords anywhere in ``schema``."""
    if isinstance(schema, list):
        return [t for s in schema for t in titles(s)]
    if not isinstance(schema, dict):
        return []
    return [v for k, v in schema.items() if k == "title" and isinstance(v, str)] + [
        t for v in schema.values() for t in titles(v)]


async def listed(s: ClientSession) -> list[Any]:
    return list((await s.list_tools()).tools)


def todos(catalog: Path) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in yaml.safe_load(catalog.read_text())["coordination"]["todos"]}


def test_unknown_arguments_are_errors_naming_the_closest_and_nothing_runs(
        example_catalog: Path) -> None:
    before = example_catalog.read_bytes()

    async def body(s: ClientSession) -> dict[str, Any]:
        return {
            "statuss": await fails(s, "coord_list", kind="issues", statuss="open"),
            "hours": await fails(s, "coord_create_todo", task="x", repo="api",
                                 estimate_hours=3, acceptance_criteria=["a"]),
            "criteria": await fails(s, "coord_create_todo", task="x", repo="api",
                                    criteria=["a"]),
            "far": await fails(s, "coord_get", id="TODO-003", zzz=1),
            "filter": await fails(s, "coord_list", kind="plans", priority="high"),
            "status": await fails(s, "coord_list", kind="issues", status="pending"),
            "run": await fails(s, "coord_start_sweep", plan_id="PLAN-001", dry_rn=True),
            # Arguments that would do nothing together are refused too.
            "dry_wait": await fails(s, "coord_start_sweep", plan_id="PLAN-001",
                                    dry_run=True, wait=True),
            "todo_atomic": await fails(s, "coord_start_sweep", todo_id="TODO-002",
                                       atomic=True),
            "todo_strategy": await fails(s, "coord_start_sweep", todo_id="TODO-002",
                                         strategy="levels"),
            "both": await fails(s, "coord_start_sweep", plan_id="PLAN-001",
                                todo_id="TODO-002"),
            "resume_dry_wait": await fails(s, "coord_resume_sweep", sweep_id="S",
                                           dry_run=True, wait=True),
            "kind": await fails(s, "coord_list", kind="bugs"),
            "negative": await fails(s, "coord_create_todo", task="x", repo="api",
                                    estimated_hours=-1),
            "tool": await fails(s, "coord_get_swep", sweep_id="S"),
            "old": await fails(s, "coord_get_issue", issue_id="ISSUE-001"),
            "toolset": await fails(s, "coord_trends"),
        }

    got = serve(example_catalog, body=body)
    text, err = got["statuss"]
    assert err["type"] == "UnknownArgument" and err["exit_code"] == 2, text
    assert "'statuss' (did you mean 'status'?)" in err["error"], err
    assert "kind, status, priority" in err["hint"]
    assert "'estimate_hours' (did you mean 'estimated_hours'?)" in got["hours"][1]["error"]
    assert "'criteria' (did you mean 'acceptance_criteria'?)" in got["criteria"][1]["error"]
    assert "'zzz'" in got["far"][1]["error"] and "did you mean" not in got["far"][1]["error"]
    assert "id, repo" in got["far"][1]["hint"]
    # A filter the kind does not take, a status it does not have: refused, not ignored.
    assert "plans take no filter priority" in got["filter"][1]["error"]
    assert "filters of plans: status, repo" in got["filter"][1]["hint"]
    assert "bad status 'pending' for issues" in got["status"][1]["error"]
    assert "'dry_rn' (did you mean 'dry_run'?)" in got["run"][1]["error"]
    assert "wait and atomic do not apply" in got["dry_wait"][1]["error"]
    assert "are for a plan's sweep" in got["todo_atomic"][1]["error"]
    assert "are for a plan's sweep" in got["todo_strategy"][1]["error"]
    assert "exactly one of plan_id or todo_id" in got["both"][1]["error"]
    assert "wait does not apply" in got["resume_dry_wait"][1]["error"]
    # A value the schema does not allow: coord's error shape too, naming the argument.
    assert got["kind"][1]["type"] == "InvalidArgument" and got["kind"][1]["exit_code"] == 2
    assert "kind: Input should be 'issues', 'todos'" in got["kind"][1]["error"]
    assert "estimated_hours: Input should be greater than or equal to 0" in \
        got["negative"][1]["error"]
    assert "did you mean 'coord_get_sweep'" in got["tool"][1]["error"]
    assert "replaced by coord_get with id" in got["old"][1]["error"]  # a 0.2 name
    assert "toolset history" in got["toolset"][1]["error"]
    assert example_catalog.read_bytes() == before  # nothing ran, nothing was written


def test_every_argument_of_create_todo_lands_in_the_catalog(example_catalog: Path) -> None:
    async def body(s: ClientSession) -> Any:
        return await call(s, "coord_create_todo", task="Pin libcore", repo="api",
                          plan="PLAN-001", run="true", undo="false", blocked_by=["TODO-002"],
                          estimated_hours=2.5,
                          acceptance_criteria=["pinned", {"text": "tests pass", "check": "make test"}],
                          description="why", priority="high", assignee="ana")

    made = serve(example_catalog, body=body)
    stored = todos(example_catalog)[made["id"]]
    assert {k: stored[k] for k in ("task", "repo", "plan", "run", "undo", "blocked_by",
                                   "estimated_hours", "acceptance_criteria", "description",
                                   "priority", "assignee")} == {
        "task": "Pin libcore", "repo": "api", "plan": "PLAN-001", "run": "true",
        "undo": "false", "blocked_by": ["TODO-002"], "estimated_hours": 2.5,
        "acceptance_criteria": ["pinned", {"text": "tests pass", "check": "make test"}],
        "description": "why",
        "priority": "high", "assignee": "ana"}
    assert made["estimated_hours"] == 2.5


def test_a_checked_criterion_needs_both_text_and_check_and_nothing_lands_without(
        example_catalog: Path) -> None:
    before = example_catalog.read_bytes()

    async def body(s: ClientSession) -> Any:
        return [await fails(s, "coord_create_todo", task="x", repo="api",
                            acceptance_criteria=[bad]) for bad in (
            {"text": "tests pass"}, {"text": "tests pass", "check": ""},
            {"text": "tests pass", "check": "make test", "by": "ana"})]

    for text, _ in serve(example_catalog, body=body):
        assert "acceptance_criteria" in text, text
    assert example_catalog.read_bytes() == before


def test_toolsets_budget_schemas_and_annotations(example_catalog: Path) -> None:
    default = serve(example_catalog, body=listed)
    assert {t.name for t in default} == DEFAULT
    assert tokens(default) <= BUDGET_TOKENS, tokens(default)
    history = serve(example_catalog, "--toolsets", "history", body=listed)
    assert {t.name for t in history} == HISTORY
    every = serve(example_catalog, "--toolsets", "all", body=listed)
    assert {t.name for t in every} == EVERY
    for t in every:
        assert t.name.startswith("coord_") and t.description, t.name
        assert t.input_schema["type"] == "object", t.name
        assert t.input_schema["additionalProperties"] is False, t.name
        assert not titles(t.input_schema), t.name  # pydantic's noise, paid for in tokens
        assert t.output_schema is not None and t.output_schema["type"] == "object", t.name
        jsonschema.Draft202012Validator.check_schema(t.output_schema)
        a = t.annotations
        assert a is not None, t.name
        for hint in (a.read_only_hint, a.destructive_hint, a.idempotent_hint,
                     a.open_world_hint):
            assert isinstance(hint, bool), (t.name, a)
    by_name = {t.name: t for t in every}
    assert by_name["coord_list"].annotations.read_only_hint is True
    assert by_name["coord_cancel_sweep"].annotations.destructive_hint is True
    assert by_name["coord_create_issue"].annotations.idempotent_hint is False
    assert by_name["coord_start_sweep"].annotations.open_world_hint is True

    bad = coord(example_catalog, "mcp", "--toolsets", "catalog,nope", timeout=60)
    clean_error(bad, 2)
    assert "nope" in bad.stderr and "history" in bad.stderr
    empty = coord(example_catalog, "mcp", "--read-only", "--toolsets", "deps", timeout=60)
    clean_error(empty, 2)
    assert "no tool to serve" in empty.stderr


def test_results_validate_against_the_listed_output_schemas(example_catalog: Path) -> None:
    calls = [
        ("coord_list", {"kind": "todos", "repo": "api"}),
        ("coord_get", {"id": "ISSUE-001"}),
        ("coord_get", {"repo": "api"}),
        ("coord_validate_plan", {"plan_id": "PLAN-001"}),
        ("coord_start_sweep", {"plan_id": "PLAN-001", "dry_run": True}),
        ("coord_create_issue", {"title": "new", "repos": ["api"]}),
        ("coord_update_issue", {"issue_id": "ISSUE-001", "status": "resolved"}),
    ]

    async def body(s: ClientSession) -> list[tuple[dict[str, Any], Any]]:
        schemas = {t.name: t.output_schema for t in await listed(s)}
        out = []
        for tool, args in calls:
            res = await s.call_tool(tool, args)  # the SDK's client validates it too
            assert not res.is_error, (tool, res.content)
            out.append((schemas[tool], res.structured_content))
        return out

    for schema, structured in serve(example_catalog, body=body):
        jsonschema.validate(structured, schema)
    # A list is structured as {"items": [...]}; the text stays the CLI's document.
    assert structured["status"] == "resolved"


def test_a_waited_sweep_reports_progress_as_todos_end(tmp_path: Path) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "test -f fixed", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "jobs", "run": "true", "blocked_by": ["TODO-002"]},
    ])

    async def body(s: ClientSession) -> tuple[Any, list[Any], Any, list[Any]]:
        first: list[Any] = []
        second: list[Any] = []

        async def on_first(progress: float, total: float | None, message: str | None) -> None:
            first.append((progress, total, message))

        async def on_second(progress: float, total: float | None, message: str | None) -> None:
            second.append((progress, total, message))

        failed = await s.call_tool("coord_start_sweep", {"plan_id": "PLAN-001", "wait": True},
                                   progress_callback=on_first)
        (cat.parent / "repos" / "web" / "fixed").touch()
        sid = failed.structured_content["sweep_id"]  # type: ignore[index]
        resumed = await s.call_tool("coord_resume_sweep", {"sweep_id": sid, "wait": True},
                                    progress_callback=on_second)
        return failed.structured_content, first, resumed.structured_content, second

    failed, first, resumed, second = serve(cat, body=body)
    assert failed["status"] == "failed"
    assert first == [(1, 3, "TODO-001 succeeded"), (2, 3, "TODO-002 failed"),
                     (3, 3, "TODO-003 skipped")]
    # The resumed run counts only its own todos, not the replay of the first run.
    assert resumed["status"] == "succeeded"
    assert second == [(1, 2, "TODO-002 succeeded"), (2, 2, "TODO-003 succeeded")]


def _ev(kind: str, todo: str | None = None, **data: Any) -> Event:
    return Event(id="0-1", kind=kind, ts=0.0, sweep_id="S", todo_id=todo, data=data)


def test_run_progress_counts_only_the_run_followed_and_never_goes_back() -> None:
    sent: list[tuple[int, int, str]] = []
    follow = RunProgress(lambda *a: sent.append(a), total=2, run=1)
    for ev in [
        _ev("sweep.queued", todos=3),                          # run 0, replayed
        _ev("todo.succeeded", "TODO-001"), _ev("todo.failed", "TODO-002"),
        _ev("sweep.finished"),
        _ev("sweep.queued", resumed=True, run=1, todos=2),     # the run followed
        _ev("todo.queued", "TODO-002"), _ev("todo.started", "TODO-002"),
        _ev("todo.failed", "TODO-002"),
        _ev("todo.retrying", "TODO-002"), _ev("todo.succeeded", "TODO-002"),  # still 1
        _ev("todo.skipped", "TODO-003"),
    ]:
        follow(ev)
    assert sent == [(1, 2, "TODO-002 failed"), (2, 2, "TODO-003 skipped")]
