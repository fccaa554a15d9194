"""A repo's own ``core.fsmonitor`` never runs when coord answers ``changed:REF`` (#49
item 3): from the CLI (`repo list --repos`), from `plan list` (a template over
``changed:main``), and from MCP's read-only listing. Real git; a marker-file program
proves "never runs" (and the same git command run plainly shows it would)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from tests.integration.helpers import ROOT, Cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

mcp_client = pytest.importorskip("mcp.client.stdio")
from mcp import ClientSession  # noqa: E402

REPOS = ["api", "web", "jobs"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@t",
                           *args], check=True, capture_output=True, text=True).stdout.strip()


def fleet(root: Path) -> tuple[Path, Path]:
    marker = root / "FSMONITOR-RAN"
    script = root / "fsmonitor.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    script.chmod(0o755)
    for r in REPOS:
        d = root / "repos" / r
        d.mkdir(parents=True)
        git(d, "init", "-q", "-b", "main")
        (d / "f").write_text("a\n")
        git(d, "add", "-A")
        git(d, "commit", "-q", "-m", "seed")
        git(d, "config", "core.fsmonitor", str(script))  # what a todo could write
    (root / "repos" / "api" / "f").write_text("changed\n")
    doc = {
        "version": 1,
        "repos": [{"name": r, "path": f"repos/{r}"} for r in REPOS],
        "coordination": {
            "plans": [{"id": "PLAN-001", "title": "changed ones", "status": "active"}],
            "todos": [{"id": "TODO-010", "task": "test", "plan": "PLAN-001",
                       "for_each": "changed:main", "run": "true", "timeout": 60}],
        },
    }
    eco = root / "ecosystem.yaml"
    eco.write_text(yaml.safe_dump(doc, sort_keys=False))
    return eco, marker


def test_fsmonitor_never_runs_for_changed(cluster: Cluster) -> None:
    c = cluster
    c.eco, marker = fleet(c.root)
    listed = c.cli_json("repo", "list", "--repos", "changed:main")
    assert [r["name"] for r in listed] == ["api"]
    assert not marker.exists(), "core.fsmonitor ran for `repo list --repos changed:main`"
    plans = c.cli_json("plan", "list")
    assert "PLAN-001" in json.dumps(plans)
    dry = c.cli_json("plan", "sweep", "PLAN-001", "--dry-run")
    assert dry["templates"][0]["repos"] == ["api"]
    assert not marker.exists(), "core.fsmonitor ran for `plan list` / a template's changed:"

    async def mcp() -> Any:
        params = mcp_client.StdioServerParameters(
            command=sys.executable,
            args=["-m", "coordination.cli.main", "--file", str(c.eco), "mcp", "--read-only"],
            env=c.env, cwd=str(ROOT))
        with anyio.fail_after(120):
            async with mcp_client.stdio_client(params) as (read, write):
                async with ClientSession(read, write) as s:
                    await s.initialize()
                    res = await s.call_tool("coord_list", {"kind": "todos", "repo": "api"})
                    assert not res.is_error, res.content
                    return json.loads(res.content[0].text)  # type: ignore[union-attr]

    todos = anyio.run(mcp)
    assert "TODO-010[api]" in json.dumps(todos), todos
    assert not marker.exists(), "core.fsmonitor ran for MCP's read-only listing"
    # the proof can fail: the same question asked of git plainly runs the program
    subprocess.run(["git", "-C", str(c.root / "repos" / "api"), "status", "--porcelain"],
                   capture_output=True)
    assert marker.exists()
