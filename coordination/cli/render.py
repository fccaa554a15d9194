"""All CLI output goes through here: one JSON document for scripts, Rich for people.

Commands build plain data (dicts/lists of JSON types) and pass a function
that renders it for people; with ``--json`` that function is never called and
exactly one JSON document is printed on stdout.

Where the output goes decides its layout (:func:`is_terminal`, :func:`plain_layout`):
JSON is indented on a terminal and compact otherwise; tables and long lines are Rich's
on a terminal (or at COLUMNS when it is set) and plain, unwrapped text in a pipe or log.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import IO, TYPE_CHECKING, TypeVar

import click

from coordination.jsonable import dumps, to_jsonable

if TYPE_CHECKING:
    from rich.console import Console

# Rich is imported inside the functions that print for people: `--json` output never loads it.

D = TypeVar("D")

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document on stdout and nothing else."
)


def is_terminal(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal someone reads (the seam tests patch)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def plain_layout(stream: IO[str] | None = None) -> bool:
    """Lay out for a log, not a screen: ``stream`` (stdout) is no terminal and COLUMNS
    is unset. Then JSON is compact, tables are plain aligned text at their full
    width and no line is wrapped, so a CI log keeps one row per line for grep."""
    return not is_terminal(sys.stdout if stream is None else stream) and not os.environ.get(
        "COLUMNS", "").strip()


def print_json(data: object) -> None:
    """``data`` as one JSON document on stdout: pretty on a terminal, compact otherwise."""
    sys.stdout.write(dumps(data, pretty=is_terminal(sys.stdout)) + "\n")
    sys.stdout.flush()


_console: Console | None = None


def console() -> Console:
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(highlight=False, soft_wrap=False)
    _console.soft_wrap = plain_layout()  # a long line stays one line in a log
    return _console


def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=plain_layout(sys.stderr))


def emit(as_json: bool, data: D, human: Callable[[D], None]) -> None:
    """Print ``data`` as JSON, or call ``human(data)`` to render it for people."""
    if as_json:
        print_json(data)
    else:
        human(data)


def _plain_cell(value: object) -> str:
    """A cell's Rich markup as the text it shows, on one line."""
    text = "" if value is None else str(value)
    if "[" in text:
        from rich.text import Text

        text = Text.from_markup(text).plain
    if "\n" in text or "\r" in text or "\t" in text:
        text = " ".join(text.split())
    return text


def _plain_table(con: Console, title: str | None, columns: Sequence[str] | None,
                 rows: Sequence[Sequence[object]]) -> None:
    """Columns aligned with two spaces, each row on one line, nothing cut or wrapped."""
    from rich.cells import cell_len

    cells = [[_plain_cell(v) for v in r] for r in rows]
    if columns is not None:
        cells.insert(0, list(columns))
    n = max((len(r) for r in cells), default=0)
    widths = [max((cell_len(r[i]) for r in cells if i < len(r)), default=0) for i in range(n)]
    lines = [] if title is None else [_plain_cell(title)]
    for r in cells:
        padded = [c + " " * (widths[i] - cell_len(c)) for i, c in enumerate(r)]
        lines.append("  ".join(padded).rstrip())
    # Straight to the stream: Rich would only pass this text through (no markup left).
    con.file.write("\n".join(lines) + "\n")
    con.file.flush()


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    empty: str = "nothing to show",
    con: Console | None = None,
    no_wrap: Sequence[str] = (),
) -> None:
    """A table; ``empty`` is printed instead when there are no rows.

    On a terminal (or with COLUMNS set) a Rich table that fits the width, long
    cells folded (except the ``no_wrap`` columns); otherwise plain aligned text
    at full width (:func:`plain_layout`). ``con`` is the console to print on
    (default stdout's).
    """
    from rich.table import Table

    con = console() if con is None else con
    rows = list(rows)
    if not rows:
        con.print(f"[dim]{empty}[/dim]")
        return
    if plain_layout(con.file):
        _plain_table(con, title, columns, rows)
        return
    t = Table(title=title, show_lines=False, header_style="bold")
    for c in columns:
        if c in no_wrap:
            t.add_column(c, no_wrap=True)
        else:
            t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    con.print(t)


def fields(title: str, pairs: Sequence[tuple[str, object]]) -> None:
    """A two-column key/value view for `show` commands."""
    from rich.table import Table

    rows: list[tuple[str, str]] = []
    for k, v in pairs:
        if v is None or v == [] or v == {} or v == "":
            continue
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(x) for x in v)
        elif isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        rows.append((k, str(to_jsonable(v))))
    con = console()
    if plain_layout(con.file):
        _plain_table(con, title, None, rows)
        return
    t = Table(title=title, show_header=False, box=None, pad_edge=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    for k, v in rows:
        t.add_row(k, v)
    con.print(t)


def spans(rows: Iterable[Sequence[tuple[str, str]]]) -> None:
    """Lines of ``(text, style)`` spans, the text taken as is (no markup), in one write:
    thousands of lines cost milliseconds in a log (a Rich print each would cost seconds)."""
    con = console()
    if plain_layout(con.file):
        con.file.write("".join("".join(t for t, _ in r) + "\n" for r in rows))
        con.file.flush()
        return
    from rich.text import Text

    con.print(Text("\n").join(Text.assemble(*r) for r in rows))


def output_lines(heading: str, sections: Sequence[tuple[str, Sequence[str]]], *,
                 con: Console | None = None) -> None:
    """A todo's last lines of output under ``heading`` (Rich markup): each stream's
    lines (``(stream, lines)``, as :func:`coordination.sweeps.reading.last_lines` gives
    them) indented under its name, the program's text as is (no markup, never wrapped
    in a log)."""
    from rich.text import Text

    con = console() if con is None else con
    out = [Text.from_markup(heading)]
    if not sections:
        out.append(Text("  (no output)", style="dim"))
    for stream, lines in sections:
        out.append(Text(f"  {stream}:", style="dim"))
        out += [Text(f"    {line}") for line in lines]
    if plain_layout(con.file):
        con.file.write("".join(t.plain + "\n" for t in out))
        con.file.flush()
        return
    con.print(Text("\n").join(out))


def plural(n: int, what: str) -> str:
    """``1 line``, ``5 lines``."""
    return f"{n} {what}" + ("" if n == 1 else "s")


def say(text: str) -> None:
    """A line for people (stdout)."""
    console().print(text)


def status_style(status: str) -> str:
    return {
        "completed": "green",
        "succeeded": "green",
        "cached": "green",
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
def esc(value: object) -> str:
    """User text made safe for Rich markup (a title like ``fix [x]`` must print as is)."""
    from rich.markup import escape

    return "" if value is None else escape(str(value))


def arg(value: object) -> str:
    """An argument of a command people copy from a hint (``coord approve ARG ...``):
    shell-quoted where it needs it (an instance id's ``[api]`` is a glob to a shell),
    then made safe for Rich markup, so ``TODO-010[api]`` prints ``'TODO-010[api]'``."""
    return esc(shlex.quote("" if value is None else str(value)))


def styled(value: str) -> str:
    """A status or priority coloured by render.status_style."""
    style = status_style(value)
    return f"[{style}]{esc(value)}[/{style}]" if style else esc(value)


#: The help of a write's ``--repos`` (plan, issue): a selector, kept as the names it selects.
SELECTS = ("a repo selector (names, globs, tag:T, role:R, changed:REF, NAME..., ...NAME, "
           "!EXCLUDED; commas join; A&B: what both select), stored as the names it selects "
           "now.")


def split_list(values: Iterable[str] | str | None) -> list[str]:
    """``--repos a,b --repos c`` -> ``[a, b, c]``: commas and repeats both work."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [p.strip() for v in values for p in v.split(",") if p.strip()]


def shown(pairs: Sequence[tuple[str, object]]) -> list[tuple[str, object]]:
    """Escape the values of a `fields` view (lists joined first, so escaping sees text)."""
    out: list[tuple[str, object]] = []
    for k, v in pairs:
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(x) for x in v)
        out.append((k, v if v in (None, "") else esc(v)))
    return out


def raw(text: str) -> None:
    """Text printed exactly as is: no markup, no highlighting, no wrapping (mermaid, dot)."""
    console().out(text, end="", highlight=False)
