"""Driving `coord mcp` over stdio: with the SDK's own client (as an agent would), or line
by line (what a broken or hostile client sends)."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession
from mcp.client import stdio as mcp_client

from tests.unit.support.cli import ROOT
from tests.waiting import wait_for


def serve(catalog: Path, *args: str,
          body: Callable[[ClientSession], Awaitable[Any]]) -> Any:
    """Start `coord mcp` on ``catalog`` and run ``body`` with an initialised session."""

    async def main() -> Any:
        params = mcp_client.StdioServerParameters(
            command=sys.executable,
            args=["-m", "coordination.cli.main", "--file", str(catalog), "mcp", *args],
            cwd=str(ROOT),
        )
        with anyio.fail_after(100):
            async with mcp_client.stdio_client(params) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await body(session)

    return anyio.run(main)


#: The tools `coord mcp` serves by default, with --toolsets history, with all.
DEFAULT = {"coord_list", "coord_get", "coord_create_issue", "coord_update_issue", "coord_suggest_assignee",
           "coord_create_todo", "coord_complete_todo", "coord_validate_plan",
           "coord_start_sweep", "coord_get_sweep", "coord_cancel_sweep", "coord_resume_sweep"}
HISTORY = {"coord_sweep_events", "coord_search_history", "coord_trends"}
EVERY = DEFAULT | HISTORY | {"coord_check_dependencies", "coord_change_status"}
#: What an agent pays for the default list, at about four characters a token.
BUDGET_TOKENS = 3000


def tokens(tools: list[Any]) -> float:
    """The listed tools' JSON (as the client received them) in characters / 4."""
    return len(json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True)
                           for t in tools])) / 4


async def call(session: ClientSession, tool: str, **arguments: Any) -> Any:
    """A successful call's document (parsed from its text block)."""
    res = await session.call_tool(tool, arguments)
    assert not res.is_error, res.content
    assert len(res.content) == 1
    doc = json.loads(res.content[0].text)  # type: ignore[union-attr]
    assert res.structured_content == (doc if isinstance(doc, dict) else {"items": doc})
    return doc


async def fails(session: ClientSession, tool: str, **arguments: Any) -> tuple[str, Any]:
    """A failed call's text and structured content."""
    res = await session.call_tool(tool, arguments)
    assert res.is_error, res.content
    return res.content[0].text, res.structured_content  # type: ignore[union-attr]


class RawMCP:
    """`coord mcp` in a subprocess, written to in raw bytes; its stdout read line by line
    by a thread, so every read has a deadline."""

    def __init__(self, catalog: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog), "mcp",
             *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=ROOT, env=env)
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.errors: list[bytes] = []  # stderr, read all along so the server never blocks
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(b"")  # end of output

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.errors.append(line)

    def send(self, line: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def request(self, rid: int, method: str, params: dict[str, Any] | None = None) -> None:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(json.dumps(msg).encode())

    def read(self, timeout: float = 30) -> dict[str, Any]:
        """The next message the server writes (fails after ``timeout`` seconds)."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message from coord mcp within {timeout} s") from None
        assert line, f"coord mcp ended: {self.stderr()}"
        msg: dict[str, Any] = json.loads(line)
        return msg

    def reply_to(self, rid: int | str | None, timeout: float = 30) -> dict[str, Any]:
        """The reply with id ``rid``; every message read before it is returned too, in
        ``self.skipped``."""
        deadline = time.monotonic() + timeout
        self.skipped: list[dict[str, Any]] = []
        while True:
            msg = self.read(max(0.1, deadline - time.monotonic()))
            if msg.get("id") == rid and ("result" in msg or "error" in msg):
                return msg
            self.skipped.append(msg)

    def initialize(self) -> None:
        self.request(0, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                       "clientInfo": {"name": "raw", "version": "1"}})
        assert "result" in self.reply_to(0, timeout=60)
        self.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')

    def close(self, timeout: float = 30) -> int:
        """End stdin; the server's exit code."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def stderr(self) -> str:
        return b"".join(self.errors).decode(errors="replace")


#: A bearer token for `coord mcp --http` in tests (long enough to be accepted).
TOKEN = "test-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class HttpMCP:
    """`coord mcp --http PORT` in a subprocess (embedded, ``COORD_MCP_TOKEN`` set unless
    ``token`` is None), served for the ``with`` block."""

    def __init__(self, catalog: Path, *args: str, token: str | None = TOKEN) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
        if token is not None:
            env["COORD_MCP_TOKEN"] = token
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog), "mcp",
             "--http", str(self.port), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=ROOT, env=env)

    def __enter__(self) -> HttpMCP:
        wait_for(lambda: self.proc.poll() is not None or listening(self.port), timeout=60,
                 what="coord mcp --http to listen")
        assert self.proc.poll() is None, self.proc.communicate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self.stderr = err.decode(errors="replace")  # what it said, read after it ended

    def session(self, body: Callable[[ClientSession], Awaitable[Any]],
                token: str = TOKEN) -> Any:
        """Run ``body`` with an initialised SDK client session over streamable HTTP."""
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        async def main() -> Any:
            with anyio.fail_after(100):
                async with create_mcp_http_client(
                        headers={"Authorization": f"Bearer {token}"}) as http:
                    async with streamable_http_client(self.url, http_client=http) as (
                            read, write):
                        async with ClientSession(read, write) as session:
                            await session.initialize()
                            return await body(session)

        return anyio.run(main)
