"""All CLI output goes through here: one JSON document for scripts, Rich for people.

Commands build plain data (dicts/lists of JSON types) and pass a function
that renders it for people; with ``--json`` that function is never called and
exactly one JSON document is printed on stdout.

Where the output goes decides its layout (:func:`is_terminal`, :func:`plain_layout`):
JSON is indented on a terminal and compact otherwise; tables and long lines are Rich's
on a terminal (or at COLUMNS when it is set) and plain, unwrapped text in a pipe or log.

Nothing a repository, a todo or a user wrote reaches the terminal raw (:func:`clean`):
every table cell and title, field, span, output line and printed message has its
control characters (ANSI escapes, carriage returns, bidi overrides) shown as
``\\x1b``-style escapes and newlines inside a cell as spaces, and no console turns
``:x:`` into an emoji. Rich markup in user text is the callers' to escape (:func:`esc`).
"""

from __future__ import annotations

import functools
import json
import os
import re
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


def json_and_context(f: Callable[..., None]) -> Callable[..., None]:
    """``--json`` and the CLI's context passed in as the first argument: what a command
    printing through :func:`emit` takes (``@json_option`` over ``@click.pass_obj``)."""
    return json_option(click.pass_obj(f))


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


#: Characters never written to a terminal as they are: C0 and C1 controls (ESC starts
#: an ANSI sequence; CR rewrites a line), DEL, and the bidi controls that reorder text.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": " ", "\t": " ", "\r": "\\r"}


def _visible(m: re.Match[str]) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def clean(value: object, *, lines: bool = False) -> str:
    """``value`` as text a terminal shows as is, on one line: newlines and tabs as
    spaces, other control characters as visible escapes (``\\x1b``, ``\\r``).
    ``lines``: a message of several lines keeps its newlines and tabs (each of its
    lines is still cleaned)."""
    text = "" if value is None else str(value)
    if lines:
        return "\n".join("\t".join(_CONTROL.sub(_visible, part) for part in line.split("\t"))
                         for line in text.split("\n"))
    return _CONTROL.sub(_visible, text)


_console: Console | None = None


@functools.cache
def _console_class() -> type[Console]:
    """Rich's Console, printing strings :func:`clean` (newlines kept) and no emoji."""
    from rich.console import Console  # lazy: rich, never for --json or --help

    class Clean(Console):
        def print(self, *objects: object, **kwargs: object) -> None:
            super().print(*(clean(o, lines=True) if isinstance(o, str) else o
                            for o in objects), **kwargs)  # type: ignore[arg-type]

    return Clean


def console() -> Console:
    global _console
    if _console is None:
        _console = _console_class()(highlight=False, soft_wrap=False, emoji=False)
    _console.soft_wrap = plain_layout()  # a long line stays one line in a log
    return _console


def err_console() -> Console:
    return _console_class()(stderr=True, highlight=False, soft_wrap=plain_layout(sys.stderr),
                            emoji=False)


def emit(as_json: bool, data: D, human: Callable[[D], None]) -> None:
    """Print ``data`` as JSON, or call ``human(data)`` to render it for people."""
    if as_json:
        print_json(data)
    else:
        human(data)


def _plain_cell(value: object) -> str:
    """A cell's Rich markup as the text it shows, on one line."""
    text = clean(value)
    if "[" in text:
        from rich.text import Text  # lazy: rich, never for --json or --help

        text = Text.from_markup(text, emoji=False).plain
    if "\n" in text or "\r" in text or "\t" in text:
        text = " ".join(text.split())
    return text


def _plain_table(con: Console, title: str | None, columns: Sequence[str] | None,
                 rows: Sequence[Sequence[object]]) -> None:
    """Columns aligned with two spaces, each row on one line, nothing cut or wrapped."""
    from rich.cells import cell_len  # lazy: rich, never for --json or --help

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
    from rich.table import Table  # lazy: rich, never for --json or --help

    con = console() if con is None else con
    rows = list(rows)
    if not rows:
        con.print(f"[dim]{empty}[/dim]")
        return
    if plain_layout(con.file):
        _plain_table(con, title, columns, rows)
        return
    t = Table(title=None if title is None else clean(title), show_lines=False,
              header_style="bold")
    for c in columns:
        if c in no_wrap:
            t.add_column(c, no_wrap=True)
        else:
            t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*(clean(v) for v in r))
    con.print(t)


def fields(title: str, pairs: Sequence[tuple[str, object]]) -> None:
    """A two-column key/value view for `show` commands."""
    from rich.table import Table  # lazy: rich, never for --json or --help

    rows: list[tuple[str, str]] = []
    for k, v in pairs:
        if v is None or v == [] or v == {} or v == "":
            continue
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(x) for x in v)
        elif isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        rows.append((k, clean(to_jsonable(v))))
    con = console()
    if plain_layout(con.file):
        _plain_table(con, title, None, rows)
        return
    t = Table(title=clean(title), show_header=False, box=None, pad_edge=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    for k, v in rows:
        t.add_row(k, v)
    con.print(t)


def spans(rows: Iterable[Sequence[tuple[str, str]]]) -> None:
    """Lines of ``(text, style)`` spans, the text taken as is (no markup), in one write:
    thousands of lines cost milliseconds in a log (a Rich print each would cost seconds)."""
    con = console()
    rows = [[(clean(t), s) for t, s in r] for r in rows]  # (each row is one line)
    if plain_layout(con.file):
        con.file.write("".join("".join(t for t, _ in r) + "\n" for r in rows))
        con.file.flush()
        return
    from rich.text import Text  # lazy: rich, never for --json or --help

    con.print(Text("\n").join(Text.assemble(*r) for r in rows))


def output_lines(heading: str, sections: Sequence[tuple[str, Sequence[str]]], *,
                 con: Console | None = None) -> None:
    """A todo's last lines of output under ``heading`` (Rich markup): each stream's
    lines (``(stream, lines)``, as :func:`coordination.sweeps.reading.last_lines` gives
    them) indented under its name, the program's text as is (no markup, never wrapped
    in a log)."""
    from rich.text import Text  # lazy: rich, never for --json or --help

    con = console() if con is None else con
    out = [Text.from_markup(clean(heading, lines=True), emoji=False)]
    if not sections:
        out.append(Text("  (no output)", style="dim"))
    for stream, lines in sections:
        out.append(Text(f"  {stream}:", style="dim"))
        out += [Text(f"    {clean(line, lines=True)}") for line in lines]
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
    from rich.markup import escape  # lazy: rich, never for --json or --help

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
    console().out(clean(text, lines=True), end="", highlight=False)
