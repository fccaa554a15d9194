"""Plain JSON types from coord's objects: the one conversion every JSON document goes through.

The CLI's ``--json`` and the MCP server's tool results print the same documents,
so both convert through here.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import TypeAlias

#: Any JSON document, as ``json.loads`` returns it and ``json.dumps`` takes it.
JSONValue: TypeAlias = (
    str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]
)
#: A JSON object: what every ``--json`` document and MCP tool result is at the top.
JSONObject: TypeAlias = dict[str, JSONValue]


def as_list(value: JSONValue) -> list[JSONValue]:
    """``value`` if it is a JSON array, else an empty one (a field that is missing or null)."""
    return value if isinstance(value, list) else []


def as_object(value: JSONValue) -> JSONObject:
    """``value`` if it is a JSON object, else an empty one (a field that is missing or null)."""
    return value if isinstance(value, dict) else {}


def to_jsonable(obj: object) -> JSONValue:
    """Pydantic models, enums, dates, paths and sets as JSON types. A value JSON has no
    type for raises the TypeError ``json.dumps`` would."""
    if hasattr(obj, "model_dump"):
        dumped: JSONObject = obj.model_dump(mode="json")
        return dumped
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Enum):
        value: JSONValue = obj.value
        return value
    if isinstance(obj, (date, datetime)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _json_default(obj: object) -> object:
    if hasattr(obj, "model_dump"):
        dumped: JSONObject = obj.model_dump(mode="json")
        return dumped
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    try:
        return to_jsonable(obj)
    except TypeError:
        raise TypeError(f"{type(obj).__name__} is not JSON serializable") from None


def dumps(data: object, *, pretty: bool = True) -> str:
    """The text of one JSON document as `--json` prints it (without the newline):
    indented for a person, compact (no spaces) for a program."""
    indent, seps = (2, None) if pretty else (None, (",", ":"))
    try:
        # json's C encoder walks plain data itself and calls _json_default only for
        # models, enums and dates; a second Python pass over the data (to_jsonable)
        # would cost as much as the encoding.
        return json.dumps(data, indent=indent, separators=seps, default=_json_default)
    except (TypeError, ValueError):  # keys json refuses (a Path, a date): convert first
        return json.dumps(to_jsonable(data), indent=indent, separators=seps)
