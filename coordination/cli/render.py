"""All CLI output goes through here: one JSON document for scripts, Rich for people.

Commands build plain data (dicts/lists of JSON types) and pass a function
that renders it for people; with ``--json`` that function is never called and
exactly one JSON document is printed on stdout.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click

from coordination.jsonable import dumps, to_jsonable

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document on stdout and nothing else."
)


def print_json(data: Any) -> None:
    sys.stdout.write(dumps(data) + "\n")
    sys.stdout.flush()


_console: Any = None


def console() -> Any:
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(highlight=False, soft_wrap=False)
    return _console


def err_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def emit(as_json: bool, data: Any, human: Callable[[Any], None]) -> None:
    """Print ``data`` as JSON, or call ``human(data)`` to render it for people."""
    if as_json:
        print_json(data)
    else:
        human(data)


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    empty: str = "nothing to show",
) -> None:
    """A Rich table; ``empty`` is printed instead when there are no rows."""
    from rich.table import Table

    rows = list(rows)
    if not rows:
        console().print(f"[dim]{empty}[/dim]")
        return
    t = Table(title=title, show_lines=False, header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    console().print(t)


def fields(title: str, pairs: Sequence[tuple[str, Any]]) -> None:
    """A two-column key/value view for `show` commands."""
    from rich.table import Table

    t = Table(title=title, show_header=False, box=None, pad_edge=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    for k, v in pairs:
        if v is None or v == [] or v == {} or v == "":
            continue
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(x) for x in v)
        elif isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        t.add_row(k, str(to_jsonable(v)))
    console().print(t)


def say(text: str) -> None:
    """A line for people (stdout)."""
    console().print(text)


def status_style(status: str) -> str:
    return {
        "completed": "green",
        "succeeded": "green",
        "resolved": "green",
        "satisfied": "green",
        "failed": "red",
        "unsatisfied": "red",
        "cancelled": "red",
        "critical": "red",
        "running": "yellow",
        "in_progress": "yellow",
        "blocked": "magenta",
        "skipped": "dim",
    }.get(status, "")


# -- user text inside Rich markup ---------------------------------------------------
def esc(value: Any) -> str:
    """User text made safe for Rich markup (a title like ``fix [x]`` must print as is)."""
    from rich.markup import escape

    return "" if value is None else escape(str(value))


def styled(value: str) -> str:
    """A status or priority coloured by render.status_style."""
    style = status_style(value)
    return f"[{style}]{esc(value)}[/{style}]" if style else esc(value)


def split_list(values: Iterable[str] | str | None) -> list[str]:
    """``--repos a,b --repos c`` -> ``[a, b, c]``: commas and repeats both work."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def shown(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Escape the values of a `fields` view (lists joined first, so escaping sees text)."""
    out = []
    for k, v in pairs:
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(x) for x in v)
        out.append((k, v if v in (None, "") else esc(v)))
    return out


def raw(text: str) -> None:
    """Text printed exactly as is: no markup, no highlighting, no wrapping (mermaid, dot)."""
    console().out(text, end="", highlight=False)
