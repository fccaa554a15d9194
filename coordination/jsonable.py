"""Plain JSON types from coord's objects: the one conversion every JSON document goes through.

The CLI's ``--json`` and the MCP server's tool results print the same documents,
so both convert through here.

Every document is strict JSON (RFC 8259): a float JSON has no number for (``inf``,
``-inf``, ``nan``) is written ``null``, as JavaScript's ``JSON.stringify`` does, never
Python's ``Infinity``/``NaN``, which other parsers refuse. The catalog's models refuse
such numbers where they enter, so this is the last guard, not the rule.
"""

from __future__ import annotations

import json
import math
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
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # JSON has no number for it
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


def finite(value: JSONValue) -> JSONValue:
    """``value`` with every non-finite float (at any depth) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def dumps(data: object, *, pretty: bool = True) -> str:
    """The text of one JSON document as `--json` prints it (without the newline):
    indented for a person, compact (no spaces) for a program. Always strict JSON:
    a non-finite float is written ``null`` (never ``Infinity`` or ``NaN``)."""
    indent, seps = (2, None) if pretty else (None, (",", ":"))
    try:
        # json's C encoder walks plain data itself and calls _json_default only for
        # models, enums and dates; a second Python pass over the data (to_jsonable)
        # would cost as much as the encoding. allow_nan=False: a non-finite float
        # raises ValueError here instead of printing Infinity.
        return json.dumps(data, indent=indent, separators=seps, default=_json_default,
                          allow_nan=False)
    except (TypeError, ValueError):
        # Keys json refuses (a Path, a date), or a float JSON has no number for:
        # convert first (the rare path, so one more walk costs nothing that matters).
        return json.dumps(finite(to_jsonable(data)), indent=indent, separators=seps,
                          allow_nan=False)
