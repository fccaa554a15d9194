"""`coord mcp` distributed: sweeps sent to real `coord worker`s, steered through MCP tools."""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import pytest

from tests.integration.helpers import PLAN, ROOT, Cluster, T

pytestmark = pytest.mark.timeout(180)

mcp_client = pytest.importorskip("mcp.client.stdio")
from mcp import ClientSession  # noqa: E402


async def call(session: ClientSession, tool: str, **arguments: Any) -> Any:
    res = await session.call_tool(tool, arguments)
    assert not res.is_error, res.content
    return json.loads(res.content[0].text)  # type: ignore[union-attr]


def test_a_sweep_is_queued_watched_and_cancelled_and_a_todo_run_waits(cluster: Cluster) -> None:
    cluster.write_catalog({"a": 1}, [
        T("TODO-001", "a", "sleep 60"),
        T("TODO-002", "a", "echo ran > ran.txt", plan="PLAN-002"),
    ], plans=(PLAN, "PLAN-002"))
    cluster.start_workers(["a"])

    async def main() -> tuple[Any, Any, Any, Any, Any]:
        params = mcp_client.StdioServerParameters(
            command=sys.executable,
            args=["-m", "coordination.cli.main", "--file", str(cluster.eco), "mcp",
                  "--toolsets", "sweeps,history"],
            env=cluster.env, cwd=str(ROOT))
        with anyio.fail_after(150):
            async with mcp_client.stdio_client(params) as (read, write):
                async with ClientSession(read, write) as s:
                    await s.initialize()
                    queued = await call(s, "coord_start_sweep", plan_id=PLAN)
                    sid = queued["sweep_id"]
                    # The call returned at once; the worker runs it meanwhile.
                    await anyio.to_thread.run_sync(lambda: cluster.wait_todo(
                        sid, "TODO-001", {"running"}))
                    running = await call(s, "coord_get_sweep", sweep_id=sid)
                    cancelled = await call(s, "coord_cancel_sweep", sweep_id=sid)
                    events = await call(s, "coord_sweep_events", sweep_id=sid)
                    ran = await call(s, "coord_start_sweep", todo_id="TODO-002", wait=True)
                    return queued, running, cancelled, events, ran

    queued, running, cancelled, events, ran = anyio.run(main)
    assert queued["status"] == "queued" and queued["levels"] == [["TODO-001"]]
    assert running["status"] == "running"
    assert running["todos"]["TODO-001"]["status"] == "running"
    assert cancelled["cancelled"] is True and not cancelled["still_running"]
    assert cluster.status(queued["sweep_id"])["status"] == "cancelled"
    assert "sweep.cancelled" in [e["kind"] for e in events]
    assert ran["status"] == "succeeded" and ran["synced"]["completed"] == ["TODO-002"]
    assert (cluster.repo_dir("a") / "ran.txt").read_text() == "ran\n"
