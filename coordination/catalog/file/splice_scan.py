"""Where a catalog's items are in its lines: the *windows* of :mod:`splice`.

A window is a block sequence of items (``repos`` and ``coordination.{issues,plans,
todos,dependencies}``); each item starts with a ``-`` at its sequence's column, and its
lines run from its ``-`` to the next item's. :func:`scan_lines` finds them from the
lines alone (fast); :func:`scan` from the C parser's events (exact, for the small texts
ruamel writes). A file shape this does not handle raises :class:`Unsupported`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeAlias

import yaml

from coordination.catalog.models import Dependency, Issue, Plan, Repo, Todo

#: A validated item of a window: what a placeholder reads from.
Item: TypeAlias = Repo | Issue | Plan | Todo | Dependency

WINDOWS = (("repos",), ("coordination", "issues"), ("coordination", "plans"),
           ("coordination", "todos"), ("coordination", "dependencies"))
_PARENTS = {p[:i] for p in WINDOWS for i in range(1, len(p))}
DASH = re.compile(r" *- +")
# Line breaks other than "\n" that YAML counts as one (the C parser's line numbers).
OTHER_BREAKS = ("\r", "\x85", "\u2028", "\u2029")
_STARTS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)


class Unsupported(Exception):
    """This edit or file is not spliced; the caller does a full round trip."""


@dataclass
class Window:
    path: tuple[str, ...]
    key_lines: list[int]  # line of each key on the path to the sequence
    starts: list[int] = field(default_factory=list)  # first line of each item
    end: int = 0  # first line after the sequence

    def span(self, i: int) -> tuple[int, int]:
        return self.starts[i], self.starts[i + 1] if i + 1 < len(self.starts) else self.end


def scan(text: str, lines: list[str]) -> dict[tuple[str, ...], Window]:
    """The windows of ``text`` (split into ``lines`` on "\\n"), from C parser events."""
    base: type[yaml.CSafeLoader | yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    it = iter(yaml.parse(text, Loader=base))
    try:
        if not isinstance(next(it), yaml.StreamStartEvent) or not isinstance(
                next(it), yaml.DocumentStartEvent):
            raise Unsupported("not one YAML document")
        root = next(it)
        if not isinstance(root, yaml.MappingStartEvent) or root.flow_style:
            raise Unsupported("the top level is not a block mapping")
        windows: dict[tuple[str, ...], Window] = {}
        _scan_map(it, (), [], lines, windows)
        if not isinstance(next(it), yaml.DocumentEndEvent) or not isinstance(
                next(it), yaml.StreamEndEvent):
            raise Unsupported("more than one YAML document")
    except (StopIteration, yaml.YAMLError) as exc:
        raise Unsupported(f"cannot scan: {exc}") from None
    return windows


_TOP_KEY = re.compile(r"(repos|coordination):[ \t]*(?:#.*)?")
_SECTION_KEY = re.compile(r"( +)(issues|plans|todos|dependencies):[ \t]*(?:#.*)?")


def has_doc_mark(body: str) -> bool:
    """A line starting with ``---`` or ``...`` (then a blank or its end)."""
    for mark in ("---", "..."):
        i = 0 if body.startswith(mark) else body.find("\n" + mark)
        while i >= 0:
            j = i + 3 + (body[i] == "\n")
            if j >= len(body) or body[j] in " \t\n":
                return True
            i = body.find("\n" + mark, i + 1)
    return False


def scan_lines(lines: list[str]) -> dict[tuple[str, ...], Window]:
    """The windows' key lines and item starts, from the lines alone (fast, no end).

    Every item of a block sequence starts with a ``-`` at the sequence's column, so
    no start is missed while the scan runs; a line that only looks like one (inside a
    multi-line quoted scalar), or an early end, changes the count of items, which the
    caller checks against the validated catalog."""
    windows: dict[tuple[str, ...], Window] = {}
    n = len(lines)
    top: str | None = None
    top_line = 0
    i = 0
    while i < n:
        line = lines[i]
        if not line or line[0] == " " or line[0] == "#":
            i += 1
            continue
        m = _TOP_KEY.fullmatch(line)
        top, top_line = (m.group(1), i) if m else (None, 0)
        i += 1
        if top == "repos":
            i = _scan_items(lines, i, -1, Window(("repos",), [top_line]), windows)
        elif top == "coordination":
            col = None
            while i < n:
                line = lines[i]
                stripped = line.lstrip(" ")
                if not stripped or stripped[0] == "#":
                    i += 1
                    continue
                indent = len(line) - len(stripped)
                if indent == 0:
                    break
                col = indent if col is None else col
                m = _SECTION_KEY.fullmatch(line)
                i += 1
                if m and indent == col:
                    w = Window(("coordination", m.group(2)), [top_line, i - 1])
                    i = _scan_items(lines, i, indent, w, windows)
    return windows


def _scan_items(lines: list[str], i: int, key_col: int, w: Window,
                windows: dict[tuple[str, ...], Window]) -> int:
    n = len(lines)
    while i < n:  # the first line of the value
        stripped = lines[i].lstrip(" ")
        if stripped and stripped[0] != "#":
            break
        i += 1
    if i == n:
        return i
    line = lines[i]
    stripped = line.lstrip(" ")
    dash = len(line) - len(stripped)
    if dash < key_col or not (stripped == "-" or stripped.startswith("- ")):
        return i  # not a block sequence
    windows[w.path] = w
    # Lines of the sequence: items at the dash's column, anything more indented,
    # blank and comment lines; the first other line ends it.
    prefix = " " * dash + "-"
    deeper = " " * (dash + 1)
    starts = w.starts
    for j in range(i, n):
        line = lines[j]
        if line.startswith(deeper):  # most lines: inside an item
            continue
        if line.startswith(prefix) and (len(line) == dash + 1 or line[dash + 1] == " "):
            starts.append(j)
            continue
        stripped = line.lstrip(" ")
        if stripped and stripped[0] != "#":
            return j
    return n


def _scan_map(it: Iterator[yaml.Event], path: tuple[str, ...], key_lines: list[int], lines: list[str],
              windows: dict[tuple[str, ...], Window]) -> None:
    while True:
        key = next(it)
        if isinstance(key, yaml.MappingEndEvent):
            return
        if not isinstance(key, yaml.ScalarEvent):
            raise Unsupported("a key that is not a scalar")
        value = next(it)
        child = (*path, key.value)
        klines = [*key_lines, _mark(key)[0]]
        if child in WINDOWS and isinstance(value, yaml.SequenceStartEvent) and not value.flow_style:
            windows[child] = _scan_seq(it, Window(child, klines), lines)
        elif child in _PARENTS and isinstance(value, yaml.MappingStartEvent) and not value.flow_style:
            _scan_map(it, child, klines, lines, windows)
        else:
            _skip(value, it)


def _scan_seq(it: Iterator[yaml.Event], w: Window, lines: list[str]) -> Window:
    while True:
        ev = next(it)
        if isinstance(ev, yaml.SequenceEndEvent):
            line, column = _mark(ev)
            # The end is at the next token, after blank and comment lines; at the end
            # of a file without a final newline it is on the last line itself.
            w.end = line if not lines[line][:column].strip() else line + 1
            return w
        # A flow mapping item (`- {id: DEP-1, ...}`) too: it starts on its '-' line.
        if not isinstance(ev, yaml.MappingStartEvent) or ev.anchor or ev.tag:
            raise Unsupported(f"{'.'.join(w.path)} has an item that is not a plain mapping")
        line, column = _mark(ev)
        if not DASH.fullmatch(lines[line][:column]):
            raise Unsupported(f"{'.'.join(w.path)} has an item not on its '-' line")
        w.starts.append(line)
        _skip(ev, it)


def _mark(ev: yaml.Event) -> tuple[int, int]:
    """Line and column (0-based) where ``ev`` starts."""
    if ev.start_mark is None:
        raise Unsupported("the parser gave no position")
    return ev.start_mark.line, ev.start_mark.column


def _skip(ev: yaml.Event, it: Iterator[yaml.Event]) -> None:
    if not isinstance(ev, _STARTS):
        return
    depth = 1
    for e in it:
        t = type(e)
        if t is yaml.ScalarEvent:
            continue
        if t is yaml.MappingStartEvent or t is yaml.SequenceStartEvent:
            depth += 1
        elif t is yaml.MappingEndEvent or t is yaml.SequenceEndEvent:
            depth -= 1
            if not depth:
                return


def node_at(doc: object, path: tuple[str, ...]) -> object:
    """The node at ``path`` of a document (None where a key is missing)."""
    for k in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(k)
    return doc
