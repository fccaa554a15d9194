"""coord's stdio transport: the SDK's, with an answer for every request it cannot read.

The SDK's stdio server (``mcp.server.stdio.stdio_server``, mcp 2.3) decodes stdin with
``errors="replace"`` and turns a line that is not a valid JSON-RPC message into an
exception that the session only logs. So a request with an id gets no reply at all when
it is not JSON (``{``), has the wrong ``jsonrpc`` or a ``params`` that is not an object,
or is nested too deeply, and its caller waits forever (upstream:
modelcontextprotocol/python-sdk#2751); invalid UTF-8 inside a string is silently turned
into U+FFFD and the request runs with text its sender never wrote.

coord keeps the SDK's transport (its framing, its writer, its stdout claim) and gives it
stdin through :class:`ScreenedLines`, which reads each line itself and forwards only what
the SDK accepts. Every other line that carries an id, or whose id can be read from the
part that parses, is answered with a JSON-RPC error carrying that id: ``-32700`` (not
UTF-8, not JSON, longer than :data:`MAX_LINE`), ``-32600`` (not a request), ``-32602``
(``params`` not an object). A line whose id cannot be determined is answered with
``"id": null``, as JSON-RPC 2.0 says; a notification (a ``method`` and no ``id``) and
a malformed response are never answered. No line stops the server.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp_types import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorData,
    JSONRPCError,
    JSONRPCNotification,
    jsonrpc_message_adapter,
)
from pydantic import ValidationError

log = logging.getLogger(__name__)

#: Longest line read as a message (bytes); a longer one is answered ``-32700`` and skipped,
#: so a runaway client cannot make the server buffer without end.
MAX_LINE = 8 * 1024 * 1024

RequestId = int | str
_WS = re.compile(r"[ \t\r\n]*")
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class Verdict:
    """What to do with one line: forward ``text`` to the SDK, or send ``reply`` back,
    or neither (dropped, ``why`` logged)."""

    text: str | None = None
    reply: JSONRPCError | None = None
    why: str = ""


def _error(rid: RequestId | None, code: int, message: str) -> Verdict:
    return Verdict(reply=JSONRPCError(jsonrpc="2.0", id=rid, error=ErrorData(
        code=code, message=message)), why=message)


def _valid_id(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def salvage_id(text: str) -> RequestId | None:
    """The ``id`` of the top-level object ``text`` starts, read member by member as far
    as it parses (``{"jsonrpc": "2.0", "id": 7, "method": <garbage>`` gives 7); None when
    there is none before the first member that does not parse."""
    i = _WS.match(text, 0).end()  # type: ignore[union-attr]  # matches the empty string
    if not text.startswith("{", i):
        return None
    i += 1
    try:
        while True:
            i = _WS.match(text, i).end()  # type: ignore[union-attr]
            if not text.startswith('"', i):
                return None
            key, i = _DECODER.raw_decode(text, i)
            i = _WS.match(text, i).end()  # type: ignore[union-attr]
            if not text.startswith(":", i):
                return None
            i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
            value, i = _DECODER.raw_decode(text, i)
            if key == "id":
                return value if _valid_id(value) else None
            i = _WS.match(text, i).end()  # type: ignore[union-attr]
            if not text.startswith(",", i):
                return None
            i += 1
    except (ValueError, RecursionError):
        return None


def _diagnose(obj: Any, exc: ValidationError) -> Verdict:
    """Why a parsed line is not a message the SDK takes, answered if it is a request."""
    if isinstance(obj, list):
        return _error(None, INVALID_REQUEST,
                      "Invalid Request: one JSON-RPC object per line (batches are not supported)")
    if not isinstance(obj, dict):
        return _error(None, INVALID_REQUEST, "Invalid Request: not a JSON-RPC object")
    if "id" not in obj:
        if isinstance(obj.get("method"), str):
            return Verdict(why="malformed notification (never answered)")
        if "result" in obj or "error" in obj:
            return Verdict(why="malformed response (never answered)")
        return _error(None, INVALID_REQUEST,
                      "Invalid Request: neither a request, a notification nor a response")
    rid = obj["id"]
    if not _valid_id(rid):
        return _error(None, INVALID_REQUEST,
                      'Invalid Request: "id" must be a string or an integer')
    if "method" not in obj and ("result" in obj or "error" in obj):
        return Verdict(why=f"malformed response to {rid!r} (never answered)")
    if obj.get("jsonrpc") != "2.0":
        return _error(rid, INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"')
    if not isinstance(obj.get("method"), str):
        return _error(rid, INVALID_REQUEST, 'Invalid Request: "method" must be a string')
    if obj.get("params") is not None and not isinstance(obj["params"], dict):
        return _error(rid, INVALID_PARAMS, 'Invalid params: "params" must be an object')
    first = exc.errors()[0] if exc.errors() else {"msg": str(exc)}
    return _error(rid, INVALID_REQUEST, f"Invalid Request: {first['msg']}")


def screen(line: bytes) -> Verdict:
    """One line of stdin (without its newline, at most :data:`MAX_LINE` bytes) judged."""
    line = line.rstrip(b"\r\n").removeprefix(b"\xef\xbb\xbf")  # a BOM some tools write
    if not line.strip():
        return Verdict(why="blank line")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _error(_id_of(line.decode("utf-8", "replace")), PARSE_ERROR,
                      f"Parse error: not UTF-8 (byte {exc.start})")
    try:
        obj = json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        return _error(salvage_id(text), PARSE_ERROR, "Parse error: nested too deeply")
    except ValueError as exc:
        return _error(salvage_id(text), PARSE_ERROR, f"Parse error: {exc}")
    try:
        msg = jsonrpc_message_adapter.validate_json(text, by_name=False)  # as the SDK reads it
    except ValidationError as exc:
        return _diagnose(obj, exc)
    if isinstance(msg, JSONRPCNotification) and "id" in obj:
        # The SDK ignores an id it cannot take (null, 1.5, {}) and reads a notification.
        return _error(None, INVALID_REQUEST,
                      'Invalid Request: "id" must be a string or an integer')
    return Verdict(text=text)


def _id_of(text: str) -> RequestId | None:
    """The id of a line that is not quite a message (whole or, failing that, in part)."""
    try:
        obj = json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        return salvage_id(text)
    rid = obj.get("id") if isinstance(obj, dict) else None
    return rid if _valid_id(rid) else None


class ScreenedLines:
    """stdin for the SDK's transport: the lines it can read, as text; every other line
    answered on the session's write stream (given by :meth:`answer_on`) or dropped."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self._write: Any = None
        self._ready = anyio.Event()

    def answer_on(self, write: Any) -> None:
        self._write = write
        self._ready.set()

    def _next(self) -> Verdict | None:
        """The next line judged (None at the end of stdin); runs in a worker thread."""
        line = self.raw.readline(MAX_LINE + 1)
        if not line:
            return None
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            while (more := self.raw.readline(1 << 20)) and not more.endswith(b"\n"):
                pass  # the rest of the line, skipped
            return _error(_id_of(line.decode("utf-8", "replace")), PARSE_ERROR,
                          f"Parse error: line longer than {MAX_LINE} bytes")
        try:
            return screen(line)
        except Exception as exc:  # a bug here must cost one line, never the server
            log.exception("could not screen a line")
            return _error(None, PARSE_ERROR, f"Parse error: {type(exc).__name__}")

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        while (verdict := await anyio.to_thread.run_sync(self._next,
                                                          abandon_on_cancel=True)) is not None:
            if verdict.text is not None:
                yield verdict.text
            elif verdict.reply is not None:
                await self._ready.wait()
                try:
                    await self._write.send(SessionMessage(verdict.reply))
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return  # the session ended meanwhile
            else:
                log.debug("dropped a line: %s", verdict.why)


@contextmanager
def claimed_stdin() -> Iterator[BinaryIO]:
    """The protocol's stdin on a private descriptor while fd 0 reads the null device, so
    that no child (a todo's command, a dependency check) reads a request: what the SDK
    does for the stdin it opens itself. fd 0 is restored on exit; the duplicate stays
    open (a worker thread may still be blocked on it)."""
    try:
        private = os.dup(0)
    except OSError:
        yield sys.stdin.buffer
        return
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
    finally:
        os.close(null)
    try:
        yield os.fdopen(private, "rb", closefd=False)
    finally:
        os.dup2(private, 0)


async def serve_stdio(server: MCPServer) -> None:
    """Serve ``server`` on stdin/stdout, through :class:`ScreenedLines`.

    ``MCPServer.run_stdio_async`` with coord's stdin: the SDK's transport (stdout claimed
    as it does) and the low-level server it wraps (no public way to pass it streams).
    """
    with claimed_stdin() as raw:
        lines = ScreenedLines(raw)
        async with stdio_server(stdin=cast("anyio.AsyncFile[str]", lines)) as (read, write):
            lines.answer_on(write)
            low = server._lowlevel_server
            await low.run(read, write, low.create_initialization_options())
