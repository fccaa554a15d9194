"""What every manifest reader shares: the records it fills, and finding the line of a
value its parser gave (parsers give values, not positions: the line is found afterwards
by looking for the value's text in the section it was read from; 1 when not found)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

#: Package key: (ecosystem, normalised name).
Package = tuple[str, str]

#: Manifests larger than this are not read (a generated lock file named like one).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024

@dataclass(frozen=True)
class Requirement:
    """One package a manifest names: who needs it, how, and where it is written."""

    package: Package
    type: str  # runtime, build, dev, test
    file: str  # relative to the checkout
    line: int
    constraint: str | None = None
    #: A local path the requirement points at (go.mod ``replace X => ../x``, go.work
    #: ``use``, ``-e ../x``, ``file:../x``, Poetry's ``{path = ...}``...), absolute: the
    #: checkout it is in is the provider, whatever the package is called.
    path: str | None = None


#: The package of a requirement known only by its path (``-e ../core``): matched by
#: the path, never by name.
PATH_ECOSYSTEM = "path"


def local_path(base: Path, ref: str) -> str | None:
    """The absolute, normalised path a local reference names, relative to ``base``:
    ``../core``, ``./libs/x``, ``/srv/x``, ``~/x``, ``file:../core``,
    ``file:///srv/x``; None for anything else (a URL, a version)."""
    ref = ref.strip()
    if ref.startswith("file://"):
        parsed = urlparse(ref)
        if parsed.netloc not in ("", "localhost"):
            return None
        ref = unquote(parsed.path)
    elif ref.startswith("file:"):
        ref = ref[len("file:"):]
    elif not ref.startswith((".", "/", "~")):
        return None
    if not ref:
        return None
    return os.path.normpath(base / Path(ref).expanduser())


@dataclass(frozen=True)
class ManifestProblem:
    """A manifest, or one entry of it, that could not be read: where and why.

    ``whole``: the file's parser refused it (nothing of it was read: what it provides
    and requires is unknown, not empty); else one entry was not understood (a
    requirement string ``packaging`` refuses) and the rest was read."""

    file: str  # relative to the checkout
    line: int | None
    message: str
    whole: bool = True

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "message": self.message,
                "whole": self.whole}


_AT_LINE = re.compile(r"\s*\(at line (\d+), column \d+\)|\s*\(at end of document\)")


def unreadable(rel: str, exc: BaseException, text: str | None = None) -> ManifestProblem:
    """The problem of a manifest whose parser raised ``exc``, with the line the parser
    names when it names one (TOML, JSON, YAML, XML, INI)."""
    line: int | None = None
    message = str(exc)
    lineno = getattr(exc, "lineno", None)  # json, configparser's MissingSectionHeader
    if isinstance(lineno, int):
        line = lineno
        message = getattr(exc, "msg", message)
    mark = getattr(exc, "problem_mark", None)  # PyYAML
    if mark is not None and isinstance(getattr(mark, "line", None), int):
        line = mark.line + 1
        message = f"{getattr(exc, 'problem', None) or message}"
    position = getattr(exc, "position", None)  # xml.etree's ParseError: (line, column)
    if isinstance(position, tuple) and position and isinstance(position[0], int):
        line = position[0]
    errors = getattr(exc, "errors", None)  # configparser's ParsingError: [(line, text)]
    if line is None and isinstance(errors, list) and errors and isinstance(errors[0], tuple):
        line = errors[0][0]
    m = _AT_LINE.search(message)  # tomllib: "... (at line 9, column 7)"
    if m:
        if m.group(1):
            line = int(m.group(1))
        elif text is not None:
            line = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
        message = message[:m.start()] + message[m.end():]
    return ManifestProblem(rel, line, message.strip() or type(exc).__name__)


@dataclass
class Manifests:
    """What one checkout's manifests say."""

    provides: set[Package] = field(default_factory=set)
    requires: list[Requirement] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)
    #: Manifests (or entries of them) that could not be read: reported, never fatal.
    problems: list[ManifestProblem] = field(default_factory=list)

    def unreadable(self) -> set[str]:
        """The manifests nothing was read from (their parser refused them)."""
        return {p.file for p in self.problems if p.whole}


def read_text(path: Path) -> str | None:
    """A manifest's text; None when it is not a file or is too large to be one."""
    if not path.is_file() or path.stat().st_size > MAX_MANIFEST_BYTES:
        return None
    return path.read_text(encoding="utf-8")


#: What :meth:`Lines.find` looks for: a literal text, or a pattern (:func:`table`,
#: :func:`key`, :func:`json_key`) that finds a header or a key itself, not a longer
#: name holding it (the group ``test`` inside ``pytest-doc``).
Mark = str | re.Pattern[str]


def table(name: str) -> re.Pattern[str]:
    """A TOML or INI table header ``[name]`` at the start of a line."""
    return re.compile(rf"^[ \t]*\[[ \t]*{re.escape(name)}[ \t]*\]", re.M)


def key(name: str, separators: str = "=") -> re.Pattern[str]:
    """The key ``name`` (bare or quoted) at the start of a line, before one of
    ``separators`` (TOML's ``=``; setup.cfg's ``=`` or ``:``)."""
    n = re.escape(name)
    return re.compile(rf"""^[ \t]*(?:{n}|"{n}"|'{n}')[ \t]*[{re.escape(separators)}]""", re.M)


def json_key(name: str) -> re.Pattern[str]:
    """The JSON object key ``"name"`` (followed by its colon)."""
    return re.compile(rf'"{re.escape(json_escape(name))}"\s*:')


def json_escape(name: str) -> str:
    return json.dumps(name)[1:-1]


class Lines:
    """Finds the line of a value the parser gave, in the section it came from."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self.starts.append(i + 1)

    def line_at(self, offset: int) -> int:
        lo, hi = 0, len(self.starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    def _at(self, mark: Mark, start: int = 0) -> tuple[int, int]:
        """Where ``mark`` is first found from ``start``, and where it ends; (-1, -1)."""
        if isinstance(mark, str):
            at = self.text.find(mark, start)
            return (at, at + len(mark)) if at >= 0 else (-1, -1)
        m = mark.search(self.text, start)
        return (m.start(), m.end()) if m else (-1, -1)

    def find(self, needles: Iterable[Mark], after: Iterable[Mark] = ()) -> int:
        """The line of the first of ``needles`` found after each of ``after`` in
        turn (section headers, keys); 1 when none is found."""
        needles = list(needles)
        start = 0
        for mark in after:
            at, end = self._at(mark, start)
            if at >= 0:
                start = end
        for needle in needles:
            at, _ = self._at(needle, start)
            if at >= 0:
                # A key's pattern may begin with the line's indentation: the line is
                # where the match starts.
                return self.line_at(at)
        for needle in needles:  # written elsewhere than expected (a dotted key...)
            at, _ = self._at(needle)
            if at >= 0:
                return self.line_at(at)
        return 1


def quoted(value: str) -> list[str]:
    return [f'"{value}"', f"'{value}'", value]
