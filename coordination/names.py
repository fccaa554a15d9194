"""Lists of ids or repos said in one line at fleet size: the first ten named, the rest
counted (``a, b, ... j and 9,990 more``), as ``sweep status`` and its warnings say
them; ``--json`` documents keep every one."""

from __future__ import annotations

from collections.abc import Sequence

#: Names a line gives before it counts the rest.
NAMED = 10


def some(names: Sequence[str], limit: int = NAMED, sep: str = ", ") -> str:
    """``a, b, c`` or ``a, ... j and 12 more`` (``sep`` between them)."""
    more = f" and {len(names) - limit:,} more" if len(names) > limit else ""
    return sep.join(names[:limit]) + more
