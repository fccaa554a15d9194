"""Plain JSON types from coord's objects: the one conversion every JSON document goes through.

The CLI's ``--json`` and the MCP server's tool results print the same documents,
so both convert through here.
"""

from __future__ import annotations

import json
from typing import Any


def to_jsonable(obj: Any) -> Any:
    """Pydantic models, enums, dates, paths and sets as JSON types."""
    from datetime import date, datetime
    from enum import Enum
    from pathlib import Path

    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, (date, datetime)):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def dumps(data: Any) -> str:
    """The text of one JSON document, exactly as `--json` prints it (without the newline)."""
    return json.dumps(to_jsonable(data), indent=2, sort_keys=False)
