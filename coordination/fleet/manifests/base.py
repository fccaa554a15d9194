"""What every manifest reader shares: the records it fills, and finding the line of a
value its parser gave (parsers give values, not positions: the line is found afterwards
by looking for the value's text in the section it was read from; 1 when not found)."""

from __future__ import annotations

import os
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


@dataclass
class Manifests:
    """What one checkout's manifests say."""

    provides: set[Package] = field(default_factory=set)
    requires: list[Requirement] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)
    #: Manifests that could not be read: "file: why" (reported, never fatal).
    problems: list[str] = field(default_factory=list)


def read_text(path: Path) -> str | None:
    """A manifest's text; None when it is not a file or is too large to be one."""
    if not path.is_file() or path.stat().st_size > MAX_MANIFEST_BYTES:
        return None
    return path.read_text(encoding="utf-8")


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

    def find(self, needles: Iterable[str], after: Iterable[str] = ()) -> int:
        """The line of the first of ``needles`` found after each of ``after`` in
        turn (section headers, keys); 1 when none is found."""
        start = 0
        for mark in after:
            at = self.text.find(mark, start)
            if at >= 0:
                start = at + len(mark)
        for needle in needles:
            at = self.text.find(needle, start)
            if at >= 0:
                return self.line_at(at)
        for needle in needles:  # written elsewhere than expected (a dotted key...)
            at = self.text.find(needle)
            if at >= 0:
                return self.line_at(at)
        return 1


def quoted(value: str) -> list[str]:
    return [f'"{value}"', f"'{value}'", value]
