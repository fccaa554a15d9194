"""The package's version is the one its README documents as current: where the README
says a behaviour holds "since X.Y", the declared version is at least X.Y (coord said
0.2.0 while the README documented 0.3). That pyproject, the installed metadata and
`coord --version` agree is test_help.py's test_the_version_comes_from_one_place."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)
ROOT = Path(__file__).resolve().parents[3]


def numbers(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def test_the_version_is_at_least_what_the_readme_calls_current() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    since = set(re.findall(r"\bsince (?:coord )?(\d+\.\d+(?:\.\d+)?)\b", readme))
    assert since, "the README names no version it documents (\"since X.Y\")"
    newer = sorted(v for v in since if numbers(v) > numbers(declared)[:len(numbers(v))])
    assert not newer, (f"pyproject.toml declares {declared}, but the README documents "
                       f"behaviour since {', '.join(newer)}: release the version it documents")


def test_coord_version_and_the_mcp_servers_version_are_pyprojects(tmp_path: Path) -> None:
    """`coord --version` (a real process) and what `coord mcp` says in its initialize
    reply (serverInfo) are both the version pyproject.toml declares (0.3.0 was said by
    both while 0.4 shipped)."""
    import os
    import subprocess
    import sys

    from tests.unit.support.mcp import RawMCP
    from tests.unit.support.sweeps import write_catalog

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    out = subprocess.run([sys.executable, "-m", "coordination.cli.main", "--version"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == declared, out.stdout
    pytest.importorskip("mcp")
    server = RawMCP(write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api",
                                                      "run": "true"}]))
    try:
        server.request(0, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                         "clientInfo": {"name": "t", "version": "1"}})
        reply = server.reply_to(0, timeout=60)
        assert reply["result"]["serverInfo"]["version"] == declared, reply
    finally:
        server.close()
