"""No MCP tool approves or rejects a gate, in any mode: a gate is where a person says
yes, and an agent that could approve would be the very thing the gate holds back (its
starter, or acting for whoever runs the server). Checked on the source: nothing under
coordination/mcp_server reaches the decision (``SweepService.decide``,
``coordination.sweeps.governance.approvals``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)

MCP = Path(__file__).resolve().parents[3] / "coordination" / "mcp_server"


def test_no_mcp_code_reaches_a_gate_decision() -> None:
    sources = sorted(MCP.rglob("*.py"))
    assert sources
    for path in sources:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("decide", "decide_gate"), f"{path}:{node.lineno}"
            if isinstance(node, ast.ImportFrom) and node.module:
                assert "approvals" not in node.module, f"{path}:{node.lineno}"
                assert not any(a.name in ("approvals", "decide") for a in node.names), (
                    f"{path}:{node.lineno}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not node.value.startswith(("coord_approve", "coord_reject")), (
                    f"{path}:{node.lineno}")
