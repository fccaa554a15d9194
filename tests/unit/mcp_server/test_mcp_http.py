"""`coord mcp --http PORT` (#24): the streamable HTTP transport on 127.0.0.1, behind
``Authorization: Bearer $COORD_MCP_TOKEN`` and a Host/Origin check, scoped by `--repo`
and `--read-only` as on stdio, with the same exact tools and progress.

The real server in a subprocess (embedded), driven by the SDK's streamable HTTP client;
refusals are checked with plain HTTP requests.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from coordination.errors import UsageError
from tests.unit.support.cli import clean_error, coord
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(120)

pytest.importorskip("mcp.client.streamable_http")
from mcp import ClientSession  # noqa: E402

from coordination.mcp_server.http import require_token  # noqa: E402
from tests.unit.support.mcp import (  # noqa: E402
    BUDGET_TOKENS,
    DEFAULT,
    TOKEN,
    HttpMCP,
    call,
    fails,
    tokens,
)

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "1"}}}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def post(url: str, **headers: str) -> httpx.Response:
    return httpx.post(url, json=INIT, headers={**ACCEPT, **headers}, timeout=30)


def test_it_refuses_to_start_without_a_long_enough_token_or_a_free_port(example_catalog: Path) -> None:
    none = coord(example_catalog, "mcp", "--http", "1", timeout=60)
    clean_error(none, 2)
    assert "without COORD_MCP_TOKEN" in none.stderr
    with pytest.raises(UsageError, match="too short"):
        require_token("secret")
    assert require_token(TOKEN) == TOKEN
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = coord(example_catalog, "mcp", "--http", str(taken.getsockname()[1]),
                     timeout=60, env={"COORD_MCP_TOKEN": TOKEN})
    clean_error(busy, 2)
    assert "could not serve" in busy.stderr and "serving" not in busy.stderr


def test_every_request_needs_the_token_and_a_local_host(example_catalog: Path) -> None:
    with HttpMCP(example_catalog) as srv:
        bearer = f"Bearer {TOKEN}"
        missing = post(srv.url)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert post(srv.url, Authorization="Bearer wrong-token-0123456789abc").status_code == 401
        assert post(srv.url, Authorization=TOKEN).status_code == 401  # no scheme
        assert post(srv.url, Authorization=f"Basic {TOKEN}").status_code == 401
        # DNS rebinding: another name for 127.0.0.1, or a page of another site. A request
        # naming another host learns nothing, not even that a token is needed.
        assert post(srv.url, Host="evil.example").status_code == 421
        assert post(srv.url, Authorization=bearer, Host="evil.example").status_code == 421
        assert post(srv.url, Authorization=bearer,
                    Host=f"localhost:{srv.port + 1}").status_code == 421
        assert post(srv.url, Authorization=bearer,
                    Origin="http://evil.example").status_code == 403
        # The token, a local Host and a local Origin: served.
        ok = post(srv.url, Authorization=bearer, Host=f"localhost:{srv.port}",
                  Origin=f"http://localhost:{srv.port}")
        assert ok.status_code == 200, ok.text

        # The SDK's client with a wrong token gets nothing either.
        async def names(s: ClientSession) -> list[str]:
            return [t.name for t in (await s.list_tools()).tools]

        with pytest.raises(BaseException) as refused:  # the SDK wraps the 401 in groups
            srv.session(names, token="wrong-token-0123456789abc")
        assert "MCPError" in repr(refused.value), refused.value
        assert srv.session(names)  # and the right one is served


def test_over_http_the_tools_are_scoped_exact_and_read_only(example_catalog: Path) -> None:
    before = example_catalog.read_bytes()

    async def body(s: ClientSession) -> dict[str, Any]:
        return {
            "tools": [t.name for t in (await s.list_tools()).tools],
            "issues": await call(s, "coord_list", kind="issues"),
            "mine": await call(s, "coord_get", id="TODO-003"),
            "other": await fails(s, "coord_get", id="ISSUE-002"),
            "write": await fails(s, "coord_create_issue", title="sneaky", repos=["api"]),
            "typo": await fails(s, "coord_list", kind="issues", statuss="open"),
        }

    with HttpMCP(example_catalog, "--repo", "api", "--read-only") as srv:
        got = srv.session(body)
    assert f"coord mcp: serving http://127.0.0.1:{srv.port}/mcp" in srv.stderr
    assert set(got["tools"]) == {"coord_list", "coord_get", "coord_validate_plan",
                                 "coord_get_sweep", "coord_suggest_assignee"}
    assert [i["id"] for i in got["issues"]] == ["ISSUE-001", "ISSUE-003"]
    assert got["mine"]["id"] == "TODO-003"
    assert got["other"][1]["type"] == "OutOfScope"
    assert "serves only api" in got["other"][1]["error"]
    assert "--read-only" in got["write"][1]["error"]
    assert "did you mean 'status'" in got["typo"][1]["error"]
    assert example_catalog.read_bytes() == before


def test_over_http_the_default_tools_fit_the_budget_and_a_waited_sweep_reports_progress(
        tmp_path: Path) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
    ])

    async def body(s: ClientSession) -> tuple[Any, list[Any], list[Any]]:
        tools = list((await s.list_tools()).tools)
        seen: list[Any] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((progress, total, message))

        res = await s.call_tool("coord_start_sweep", {"plan_id": "PLAN-001", "wait": True},
                                progress_callback=on_progress)
        assert not res.is_error, res.content
        return res.structured_content, seen, tools

    with HttpMCP(cat) as srv:
        done, seen, tools = srv.session(body)
    assert {t.name for t in tools} == DEFAULT
    assert tokens(tools) <= BUDGET_TOKENS
    for t in tools:
        assert t.input_schema["additionalProperties"] is False, t.name
        assert t.output_schema and t.annotations, t.name
    assert done["status"] == "succeeded"
    assert seen == [(1, 2, "TODO-001 succeeded"), (2, 2, "TODO-002 succeeded")]
