"""coord's MCP server class: the SDK's ``MCPServer``, made exact about its tools.

What the SDK leaves loose, and what coord does instead:

- Unknown arguments: the SDK validates a call's arguments with a pydantic model that
  ignores keys it does not know, so ``{"statuss": "open"}`` listed everything. Here a
  call naming an argument the tool does not take is a tool error naming the closest
  valid one (:mod:`difflib`), and nothing runs; a tool that is not served gets the same
  treatment (the closest tool served, or the toolset that has it). A value the schema
  refuses (a wrong type, outside an enum or a bound) is coord's error too, naming the
  argument, where the SDK answered with pydantic's text and no structured content.
- Schemas: every listed input schema says ``"additionalProperties": false``, without
  pydantic's ``title`` noise and its ``anyOf [X, null]`` for optional arguments (an
  omitted argument is the null); every tool lists an output schema (coord's, from
  :class:`ToolDef`) and behaviour annotations.

A tool body returns coord's ``--json`` document; :func:`result` makes it the text block
and, as an object, the structured content (a list is structured as ``{"items": [...]}``:
structured content is always an object).
"""

from __future__ import annotations

import difflib
import functools
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from mcp.types import Tool as MCPTool
from pydantic import ValidationError

from coordination.connection.preflight import unreachable
from coordination.errors import CoordError, UsageError
from coordination.jsonable import JSONValue, dumps


class UnknownArgument(UsageError):
    """A tool call named an argument (or a tool) that is not there."""


class InvalidArgument(UsageError):
    """A tool call gave an argument a value its schema does not allow."""


@dataclass(frozen=True)
class ToolDef:
    """What coord publishes about one tool beyond its signature."""

    toolset: str
    annotations: ToolAnnotations
    output_schema: dict[str, Any]


def result(doc: JSONValue) -> CallToolResult:
    """A tool's answer: the ``--json`` document as text; structured as itself when it is
    an object, as ``{"items": doc}`` when it is a list."""
    structured = doc if isinstance(doc, dict) else {"items": doc}
    return CallToolResult(content=[TextContent(type="text", text=dumps(doc, pretty=False))],
                          structured_content=structured)


def error_result(exc: CoordError) -> CallToolResult:
    """A coord error as an MCP tool error: message and hint for the agent to act on."""
    return CallToolResult(
        content=[TextContent(type="text", text=f"error: {exc}")],
        structured_content={"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code,
                            "type": type(exc).__name__},
        is_error=True,
    )


def coord_errors(fn: Callable[..., JSONValue]) -> Callable[..., CallToolResult]:
    """Run a tool body; its document becomes the result, a coord error a tool error."""

    @functools.wraps(fn)
    def run(**kwargs: object) -> CallToolResult:
        try:
            return result(fn(**kwargs))
        except CoordError as exc:
            return error_result(exc)
        except Exception as exc:
            # Broker/Redis unreachable: coord's message (password redacted), as the CLI says it.
            mod = type(exc).__module__ or ""
            if mod.startswith(("redis", "kombu")) or "OperationalError" in type(exc).__name__:
                return error_result(unreachable(exc, os.environ.get("COORD_REDIS_URL", "")))
            raise

    return run


def closest(name: str, valid: list[str]) -> str | None:
    """The valid name ``name`` most likely misspells, if any is close enough."""
    found = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    if not found and len(name) >= 4:  # a part dropped: estimate -> estimated_hours
        found = [v for v in valid if v.startswith(name) or v.endswith(name)
                 or (len(v) >= 4 and name.startswith(v))][:1]
    return found[0] if found else None


def unknown_arguments(tool: str, given: list[str], valid: list[str]) -> UnknownArgument:
    """The error for a call of ``tool`` with arguments ``given`` it does not take."""
    parts = []
    for name in given:
        near = closest(name, valid)
        parts.append(f"{name!r} (did you mean {near!r}?)" if near else repr(name))
    return UnknownArgument(
        f"{tool} takes no argument {', '.join(parts)}; nothing was done",
        hint=f"its arguments: {', '.join(valid) or '(none)'}")


def invalid_arguments(tool: str, exc: ValidationError) -> InvalidArgument:
    """A call whose arguments the tool's schema refuses (a wrong type, a value outside its
    enum or bounds), as coord's error: each argument and what it should be."""
    problems = [f"{'.'.join(str(part) for part in e['loc']) or 'arguments'}: {e['msg']}"
                for e in exc.errors(include_url=False)]
    return InvalidArgument(f"{tool}: bad argument {'; '.join(problems)}; nothing was done",
                           hint="see the tool's input schema (tools/list)")


def _tidy(schema: Any) -> Any:
    """An input schema without pydantic's titles, an optional argument as its own type."""
    if isinstance(schema, list):
        return [_tidy(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs"):
            out[key] = {name: _tidy(sub) for name, sub in value.items()}
        else:
            out[key] = _tidy(value)
    options = out.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options and "default" in out \
            and out["default"] is None:
        rest = [o for o in options if o != {"type": "null"}]
        out.pop("anyOf")
        out.pop("default")
        if len(rest) == 1:
            out = {**rest[0], **out}
        else:
            out["anyOf"] = rest
    return out


def input_schema(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The published input schema of a tool whose pydantic schema is ``parameters``."""
    schema: dict[str, Any] = _tidy(dict(parameters))
    schema["additionalProperties"] = False
    return schema


class CoordServer(MCPServer):
    """An ``MCPServer`` whose tools refuse unknown arguments and publish coord's output
    schemas and annotations (see the module docstring). ``absent``: tools that exist but
    are not served here, by name, with why (their toolset, or ``--read-only``)."""

    def __init__(self, *args: Any, absent: Mapping[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.defs: dict[str, ToolDef] = {}
        self.absent = dict(absent or {})

    def add(self, fn: Callable[..., JSONValue], definition: ToolDef) -> None:
        """Serve ``fn`` (named after itself, described by its docstring) as a tool."""
        # One line: the docstring's wrapping is not worth an agent's tokens.
        description = " ".join(inspect.cleandoc(fn.__doc__ or "").split())
        self.add_tool(coord_errors(fn), name=fn.__name__, description=description,
                      annotations=definition.annotations, structured_output=False)
        self.defs[fn.__name__] = definition

    async def list_tools(self) -> list[MCPTool]:
        tools = await super().list_tools()
        return [t.model_copy(update={"input_schema": input_schema(t.input_schema),
                                     "output_schema": self.defs[t.name].output_schema})
                if t.name in self.defs else t for t in tools]

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Context[Any, Any] | None = None) -> Any:
        tool = self._tool_manager.get_tool(name)
        if tool is None:
            return error_result(self._no_tool(name))
        valid = list(tool.parameters.get("properties", {}))
        unknown = [a for a in arguments if a not in valid]
        if unknown:
            return error_result(unknown_arguments(name, unknown, valid))
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if not isinstance(exc.__cause__, ValidationError):
                raise
            return error_result(invalid_arguments(name, exc.__cause__))

    def _no_tool(self, name: str) -> UnknownArgument:
        if name in self.absent:
            return UnknownArgument(f"{name} is not served here: {self.absent[name]}",
                                   hint="see coord mcp --help (--toolsets, --read-only)")
        served = sorted(t.name for t in self._tool_manager.list_tools())
        near = closest(name, served)
        return UnknownArgument(f"no tool {name!r}" + (f" (did you mean {near!r}?)" if near else ""),
                               hint=f"tools served: {', '.join(served)}")
