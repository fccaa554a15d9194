"""What every manifest reader shares: the records it fills, and finding the line of a
value its parser gave (parsers give values, not positions: the line is found afterwards
by looking for the value's text in the section it was read from; 1 when not found)."""

from __future__ import annotations

import bisect
import dataclasses
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

#: Package key: (ecosystem, normalised name).
Package = tuple[str, str]


def toml_loads(text: str) -> dict[str, Any]:
    """A TOML document's data, as ``tomllib`` reads it (and refuses it: a ValueError
    whose message ends ``(at line N, column M)``), by ``tomli``, the same parser
    compiled, where it is installed: 2.5x faster on a fleet's pyproject.toml and
    Cargo.toml files."""
    if _tomli is None:
        import tomllib  # lazy: only where tomli's wheel is missing (tomli is a dependency)

        return tomllib.loads(text)
    try:
        return _tomli.loads(text)
    except _tomli.TOMLDecodeError as exc:  # as tomllib says it (its line rules, unreadable)
        raise ValueError(str(exc)) from None


try:
    import tomli as _tomli
except ImportError:  # pragma: no cover - a platform without its wheel: the same, slower
    _tomli = None  # type: ignore[assignment]

#: Manifests larger than this are not read (a generated lock file named like one).
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


class Unreadable(ValueError):
    """A manifest coord will not read, or not entirely: a symlink leaving the checkout,
    not a regular file, too large, nested too deep, a go.mod directive it does not
    know. ``line`` when one line is to blame. Never carries a line of the file's text
    (the file may not be the fleet's: a symlink to ``/etc/passwd``)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

@dataclass(frozen=True, slots=True)  # slots: half the cost of 80,000 of them
class Requirement:
    """One package a manifest names: who needs it, how, and where it is written."""

    package: Package
    type: str  # runtime, build, peer, optional, dev (test: 0.4 catalogs only)
    file: str  # relative to the checkout
    line: int
    constraint: str | None = None
    #: A local path the requirement points at (go.mod ``replace X => ../x``, go.work
    #: ``use``, ``-e ../x``, ``file:../x``, Poetry's ``{path = ...}``...), absolute: the
    #: checkout it is in is the provider, whatever the package is called.
    path: str | None = None
    #: A Go ``// indirect`` require: kept (it builds with it), never ordering.
    indirect: bool = False

    def __reduce__(self) -> tuple[Callable[..., Requirement], tuple[object, ...]]:
        # Unpickled (from a forked reader, coordination.fleet.forked) by one call of the
        # constructor: a third cheaper than a frozen dataclass's field-by-field state.
        return (Requirement, (self.package, self.type, self.file, self.line, self.constraint,
                              self.path, self.indirect))


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


#: The most of a manifest's own text a message echoes (a quoted value, a line).
ECHO_CHARS = 80
#: A value that looks like a secret, after its name: ``http.extraheader = AUTHORIZATION:
#: basic ...``, ``token: ...``, ``password=...`` (the name kept, the value masked).
_SECRET = re.compile(
    r"(?i)((?:extra_?header|authorization|bearer|token|passw(?:or)?d|secret|api[_-]?key|"
    r"private[_-]?key|credentials?)\b[\"']?\s*[=:]\s*)(\"[^\"\n]*\"?|'[^'\n]*'?|[^\n'\"]+)")
_QUOTED = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")
#: The longest message a problem carries (its own words and what it echoes).
MESSAGE_CHARS = 240


def said(message: str) -> str:
    """A problem's message as coord prints it: its first line only (a parser's message
    may go on with the lines it read), any value that looks like a secret masked
    (``***``), each quoted echo of the manifest cut to :data:`ECHO_CHARS` characters.
    A manifest may not be the fleet's (a symlink to a git config holding an
    ``http.extraheader`` token), so nothing of one is echoed whole."""
    first, _, rest = message.partition("\n")
    more = sum(1 for ln in rest.splitlines() if ln.strip())

    def cut(m: re.Match[str]) -> str:
        q = m.group(0)
        return q if len(q) <= ECHO_CHARS + 2 else q[:ECHO_CHARS + 1] + "…" + q[-1]

    text = _QUOTED.sub(cut, _SECRET.sub(lambda m: m.group(1) + "***", first.rstrip()))
    if len(text) > MESSAGE_CHARS:
        text = text[:MESSAGE_CHARS] + "…"
    return text + (f" (and {more} more line{'s' if more != 1 else ''} not shown)"
                   if more else "")


@dataclass(frozen=True)
class ManifestProblem:
    """A manifest, or one entry of it, that could not be read: where and why.

    ``whole``: the file's parser refused it (nothing of it was read: what it provides
    and requires is unknown, not empty); else one entry was not understood (a
    requirement string ``packaging`` refuses) and the rest was read. The message is
    :func:`said`: whoever makes a problem, it never echoes a manifest whole."""

    file: str  # relative to the checkout
    line: int | None
    message: str
    whole: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", said(self.message))

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
    if isinstance(exc, Unreadable):
        return ManifestProblem(rel, exc.line, exc.message)
    if isinstance(exc, RecursionError):
        return ManifestProblem(rel, deepest_line(text) if text is not None else None,
                               "nested too deep to read")
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


class Linker(Protocol):
    """Something of a checkout's manifests only the whole fleet can settle. ``shared``
    is one pass's scratch (one per :func:`coordination.fleet.manifests.link` call): what
    a kind of linker gathers from the whole fleet, gathered once for all of them (a
    thousand checkouts' poms indexed for each of a hundred linkers was quadratic)."""

    def link(self, fleet: Sequence[Manifests], shared: dict[object, object]) -> None: ...


@dataclass
class Manifests:
    """What one checkout's manifests say."""

    provides: set[Package] = field(default_factory=set)
    requires: list[Requirement] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)
    #: Manifests (or entries of them) that could not be read: reported, never fatal.
    problems: list[ManifestProblem] = field(default_factory=list)
    #: The manifests read (relative to the checkout), so none is read twice.
    files: set[str] = field(default_factory=set)
    #: What this checkout's manifests leave to the fleet (a Maven parent in another
    #: repo): each settled by :func:`coordination.fleet.manifests.link`.
    links: list[Linker] = field(default_factory=list)

    def unreadable(self) -> set[str]:
        """The manifests nothing was read from (their parser refused them)."""
        return {p.file for p in self.problems if p.whole}


def inside(path: str | Path, root: str | Path) -> bool:
    """Is ``path`` (as the filesystem resolves it, symlinks followed) in ``root``?
    Its parts below ``root`` are looked at one ``lstat`` each: only a symlink among
    them costs a ``realpath`` (of the two; where ``root`` itself is does not matter)."""
    rel = os.path.relpath(path, root)
    if rel == ".":
        return True
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        return False
    here = str(root)
    for part in rel.split(os.sep):
        here = os.path.join(here, part)
        try:
            if stat.S_ISLNK(os.lstat(here).st_mode):
                break
        except OSError:
            return True  # nothing there to lead anywhere
    else:
        return True
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def _in_git_dir(path: Path, root: Path) -> bool:
    """Does ``path`` resolve into a ``.git`` directory of the checkout ``root``? (Only a
    path with a symlink on the way costs a ``realpath``.)"""
    if not any(os.path.islink(p) for p in (path, *path.parents) if len(str(p)) > len(str(root))):
        return ".git" in Path(os.path.relpath(path, root)).parts
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(root))
    return ".git" in Path(rel).parts


def _placed(path: Path, root: Path) -> tuple[bool, bool]:
    """(:func:`inside`, :func:`_in_git_dir`) of a manifest, with one ``relpath`` and one
    ``lstat`` per part below ``root`` for both (each alone walked the parts again:
    a tenth of reading a fleet's manifests). A path with a ``..`` part, which ``relpath``
    would fold away before its parts are looked at, is asked of the two as they are."""
    text = os.fspath(path)
    if ".." in text.split(os.sep):
        return inside(path, root), _in_git_dir(path, root)
    rel = os.path.relpath(text, root)
    if rel == ".":
        return True, False
    if rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
        return False, False
    parts = rel.split(os.sep)
    here = os.fspath(root)
    for part in parts:
        here = os.path.join(here, part)
        try:
            if stat.S_ISLNK(os.lstat(here).st_mode):
                break
        except OSError:
            break  # nothing there to lead anywhere
    else:
        return True, ".git" in parts
    return inside(path, root), _in_git_dir(path, root)


def read_text(path: Path, root: Path) -> str | None:
    """A manifest's text; None when there is none. :class:`Unreadable` when there is
    one coord will not read: a symlink (or a directory on the way) leading out of the
    checkout ``root`` (never followed: its target is no file of the fleet), not a
    regular file (a FIFO would block, a directory is no manifest), or larger than
    :data:`MAX_MANIFEST_BYTES`. (Nesting too deep for the parsers is their
    RecursionError, made a located problem by :func:`unreadable`.)"""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):  # a dangling symlink: there is a manifest, unreadable
            raise Unreadable("a symlink to nothing: not read") from None
        return None
    except NotADirectoryError:
        return None
    within, in_git = _placed(path, root)
    if not within:
        raise Unreadable("a symlink leading out of the checkout: not followed")
    if in_git:
        raise Unreadable("a symlink into .git (git's own files, its config with any "
                         "credentials in it: no manifest): not followed")
    if not stat.S_ISREG(st.st_mode):
        raise Unreadable("not a regular file (a FIFO, a device or a directory): not read")
    if st.st_size > MAX_MANIFEST_BYTES:
        raise Unreadable(f"{st.st_size:,} bytes, over the {MAX_MANIFEST_BYTES:,}-byte cap "
                         "for a manifest: not read")
    with open(path, "rb") as f:
        data = f.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:  # grew since the stat
        raise Unreadable(f"over the {MAX_MANIFEST_BYTES:,}-byte cap for a manifest: not read")
    return data.decode("utf-8")


def read_member(out: Manifests, root: Path, manifest: Path,
                parse: Callable[[str, str], None], why: str = "") -> None:
    """Read one more manifest of the checkout (a workspace member, a nested module)
    once: ``parse(rel, text)`` takes what it says. One that cannot be read is a problem
    (``why`` added to its message), never fatal."""
    rel = os.path.relpath(manifest, root)
    if rel in out.files:
        return
    text: str | None = None
    try:
        text = read_text(manifest, root)
        if text is None:
            return
        out.files.add(rel)
        parse(rel, text)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError, SyntaxError) as exc:
        # SyntaxError: xml.etree's ParseError is one (a broken project file)
        problem = unreadable(rel, exc, text)
        out.problems.append(dataclasses.replace(problem, message=problem.message + why)
                            if why else problem)


def leaves(pattern: str) -> bool:
    """Does a member path or glob (a workspace's, go.work's, a pom's module) name a
    place outside its checkout by its text alone (absolute, ``~``, a ``..`` part)?
    Such a one is never globbed: ``/**`` would walk the whole filesystem."""
    p = pattern.strip().replace("\\", "/")
    return p.startswith(("/", "~")) or os.path.isabs(p) or ".." in p.split("/")


#: How deep a ``**`` of a workspace glob goes below the checkout's top.
GLOB_DEPTH = 8
#: Directories a workspace glob never matches in (npm and pnpm ignore them): what is
#: installed there is other people's packages, not the repo's.
INSTALLED = frozenset({"node_modules", "bower_components"})


def _segment(seg: str) -> str:
    if seg == "**":
        return "(?:[^/]+/)*"
    out, i = [], 0
    while i < len(seg):
        ch = seg[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[" and "]" in seg[i + 2:]:
            end = seg.index("]", i + 2)
            body = seg[i + 1:end].replace("\\", "\\\\")
            out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out) + "/"


def _is_dir(path: str) -> bool:
    """A directory, not a symlink to one (a symlink may lead out of the checkout)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _subdirs(directory: str) -> list[str]:
    try:
        with os.scandir(directory) as it:
            return [e.name for e in it if e.is_dir(follow_symlinks=False)
                    and not e.name.startswith(".") and e.name not in INSTALLED]
    except OSError:
        return []


def member_dirs(root: Path, pattern: str) -> list[str]:
    """The directories inside the checkout ``root`` a workspace member glob names
    (``packages/*``, ``libs/**``, ``tools/cli``), sorted, absolute. Expanded a part at a
    time as ``glob`` does (a literal part is one ``lstat``, not a walk), but never
    through a symlink, never into a hidden or installed-packages directory, and ``**``
    at most :data:`GLOB_DEPTH` down: whatever the pattern, nothing outside the checkout
    is listed (call :func:`leaves` first: a pattern naming a place outside is refused)."""
    segs = [s for s in pattern.strip().replace("\\", "/").split("/") if s not in ("", ".")]
    current: dict[str, int] = {os.path.normpath(root): 0}  # directory -> its depth
    for seg in segs:
        found: dict[str, int] = {}
        for directory, depth in current.items():
            if seg == "**":  # the directory itself and every one below it
                stack = [(directory, depth)]
                while stack:
                    here, level = stack.pop()
                    found[here] = level
                    if level < GLOB_DEPTH:
                        stack.extend((os.path.join(here, n), level + 1) for n in _subdirs(here))
            elif not any(c in seg for c in "*?["):
                here = os.path.join(directory, seg)
                if seg not in INSTALLED and _is_dir(here):
                    found[here] = depth + 1
            else:
                match = re.compile(_segment(seg)[:-1] + r"\Z").match
                for name in _subdirs(directory):
                    if match(name):
                        found[os.path.join(directory, name)] = depth + 1
        current = found
    return sorted(current)


def outside(out: Manifests, rel: str, line: int | None, what: str) -> None:
    """Note that ``what`` (a member) leaves the checkout and was not read. Not the
    whole file unread: the rest of it was, and a dependency it gave before from
    there is held, never taken for gone."""
    out.problems.append(ManifestProblem(rel, line, f"{what} leaves the checkout: not read",
                                        whole=False))


def _nesting(text: str) -> Iterable[tuple[int, int]]:
    """``(depth, line)`` of each line: brackets ``[``/``{`` open outside quoted strings,
    plus YAML block levels (``- - -`` items, indentation), a bound on how deep a parser
    must recurse there."""
    depth = 0
    for n, line in enumerate(text.split("\n"), 1):
        stripped = line.lstrip(" ")
        block = (len(line) - len(stripped)) // 2
        i = 0
        while stripped.startswith("- ", i):
            block, i = block + 1, i + 2
        quote: str | None = None
        peak = depth
        esc = False
        for ch in line:
            if quote is not None:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == quote:
                    quote = None
            elif ch in "\"'":
                quote = ch
            elif ch in "[{":
                depth += 1
                peak = max(peak, depth)
            elif ch in "]}":
                depth = max(0, depth - 1)
            elif ch == "#":
                break
        yield peak + block, n


def deepest_line(text: str) -> int | None:
    """The line nested deepest in ``text`` (where a parser's recursion gave up)."""
    best = max(_nesting(text), default=(0, 0))
    return best[1] or None


class JsonKey(str):
    """The JSON object key ``"name"`` followed by its colon, found by a plain text
    search (no pattern compiled per key: a package.json may name 80,000)."""


class TextMark:
    """What :func:`key` and :func:`table` give: a mark found by a plain text search."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class KeyMark(TextMark):
    r"""The key ``name`` (bare or quoted) at the start of a line (after spaces or tabs),
    before spaces or tabs and one of ``separators``: what the pattern
    ``^[ \t]*(?:name|"name"|'name')[ \t]*[separators]`` finds, found by a plain text
    search (a pattern compiled per dependency cost more than the parse of its file)."""

    name: str
    separators: str = "="


@dataclass(frozen=True, slots=True)
class TableMark(TextMark):
    r"""A TOML or INI table header ``[name]`` at the start of a line (spaces or tabs
    around the name, before the ``[``): ``^[ \t]*\[[ \t]*name[ \t]*\]``, by a plain
    text search."""

    name: str


#: What :meth:`Lines.find` looks for: a literal text, a JSON key, a key or a table
#: header (:func:`key`, :func:`table`: a header or a key itself, not a longer name
#: holding it, the group ``test`` inside ``pytest-doc``), or a pattern.
Mark = str | TextMark | re.Pattern[str]


def table(name: str) -> TableMark:
    """A TOML or INI table header ``[name]`` at the start of a line."""
    return TableMark(name)


def key(name: str, separators: str = "=") -> KeyMark:
    """The key ``name`` (bare or quoted) at the start of a line, before one of
    ``separators`` (TOML's ``=``; setup.cfg's ``=`` or ``:``)."""
    return KeyMark(name, separators)


def _blank(text: str, begin: int, end: int) -> bool:
    """Only spaces and tabs in ``text[begin:end]``."""
    return not text[begin:end].strip(" \t")


def _skip_blank(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t":
        at += 1
    return at


def _find_key(text: str, mark: KeyMark, start: int) -> tuple[int, int]:
    """Where ``mark`` is first found from ``start`` (its line's start, as the pattern's
    ``^`` matches there) and where it ends (after the separator); (-1, -1)."""
    best = (-1, -1)
    for form in (mark.name, f'"{mark.name}"', f"'{mark.name}'"):
        at = text.find(form, start)
        while at >= 0:
            line = text.rfind("\n", 0, at) + 1
            after = _skip_blank(text, at + len(form))
            if (line >= start and _blank(text, line, at) and after < len(text)
                    and text[after] in mark.separators):
                if best[0] < 0 or line < best[0]:
                    best = (line, after + 1)
                break
            at = text.find(form, at + 1)
    return best


def _find_table(text: str, mark: TableMark, start: int) -> tuple[int, int]:
    """:func:`_find_key` for a table header."""
    at = text.find(mark.name, start)
    while at >= 0:
        line = text.rfind("\n", 0, at) + 1
        before = text[line:at]
        after = _skip_blank(text, at + len(mark.name))
        if (line >= start and before.replace(" ", "").replace("\t", "") == "["
                and text.startswith("]", after)):
            return line, after + 1
        at = text.find(mark.name, at + 1)
    return -1, -1


_PLAIN_JSON = re.compile(r'[^"\\\x00-\x1f\x7f-\uffff]*\Z')


def json_key(name: str) -> JsonKey:
    """The JSON object key ``"name"`` (followed by its colon)."""
    if _PLAIN_JSON.match(name):  # nothing json.dumps would escape: most names
        return JsonKey(f'"{name}"')
    return JsonKey(f'"{json_escape(name)}"')


def json_escape(name: str) -> str:
    return json.dumps(name)[1:-1]


_COLON = re.compile(r"\s*:")


class Lines:
    """Finds the line of a value the parser gave, in the section it came from.

    Linear over a whole manifest: parsers give a section's entries in the order they
    are written, so each search starts where the previous one in that section ended
    (falling back to the section's start, then to the whole text, for one written out
    of order); line numbers come from a bisection of the line starts."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0, *(m.end() for m in re.finditer("\n", text))]
        #: Where each section (its ``after`` marks) starts, and where the last entry
        #: found in it ended.
        self._sections: dict[tuple[Mark, ...], tuple[int, int]] = {}

    def line_at(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)

    def _at(self, mark: Mark, start: int = 0) -> tuple[int, int]:
        """Where ``mark`` is first found from ``start``, and where it ends; (-1, -1)."""
        if isinstance(mark, JsonKey):
            at = self.text.find(mark, start)
            while at >= 0:
                colon = _COLON.match(self.text, at + len(mark))
                if colon:
                    return at, colon.end()
                at = self.text.find(mark, at + 1)
            return -1, -1
        if isinstance(mark, str):
            at = self.text.find(mark, start)
            return (at, at + len(mark)) if at >= 0 else (-1, -1)
        if isinstance(mark, KeyMark):
            return _find_key(self.text, mark, start)
        if isinstance(mark, TableMark):
            return _find_table(self.text, mark, start)
        assert isinstance(mark, re.Pattern)  # TextMark has no other kind
        m = mark.search(self.text, start)
        return (m.start(), m.end()) if m else (-1, -1)

    def find(self, needles: Iterable[Mark], after: Iterable[Mark] = ()) -> int:
        """The line of the first of ``needles`` found after each of ``after`` in
        turn (section headers, keys); 1 when none is found."""
        needles = needles if isinstance(needles, (list, tuple)) else list(needles)
        after = after if isinstance(after, tuple) else tuple(after)
        if after not in self._sections:
            start = 0
            for mark in after:
                at, end = self._at(mark, start)
                if at >= 0:
                    start = end
            self._sections[after] = (start, start)
        start, cursor = self._sections[after]
        for begin in ((cursor, start) if cursor > start else (start,)):
            for needle in needles:
                at, end = self._at(needle, begin)
                if at >= 0:
                    self._sections[after] = (start, end)
                    # A key's pattern may begin with the line's indentation: the line
                    # is where the match starts.
                    return self.line_at(at)
        for needle in needles:  # written elsewhere than expected (a dotted key...)
            at, _ = self._at(needle)
            if at >= 0:
                return self.line_at(at)
        return 1


def quoted(value: str) -> list[str]:
    return [f'"{value}"', f"'{value}'", value]


def note(out: Manifests, rel: str, line: int | None, message: str) -> None:
    """Say what of a manifest was not understood (the rest of it was read): a note with
    the checkout, never silence, never the whole file taken for unread."""
    out.problems.append(ManifestProblem(rel, line, message, whole=False))


def unknown_versions(out: Manifests, rel: str, found: Sequence[tuple[int, str]]) -> None:
    """Say, once for the file, that the versions of ``found`` (each: its line and what
    sets it, ``$(NunitPackageVersion)``, ``jacksonVersion``) are set from values coord
    cannot know: their dependencies are read, their versions stored as none."""
    if not found:
        return
    line, what = min(found)
    n = len(found)
    note(out, rel, line, f"{n} version{'s' if n != 1 else ''} set from a value coord cannot "
         f"know (the first: {what[:60]}): stored as none")


#: Directories whose packages are no part of what the repo ships: examples, samples,
#: benchmarks, docs sites, tests. What a package there needs is what checks or shows
#: the repo (``dev``), never what the repo runs with; one that is private provides
#: nothing (an ``examples/basic`` named ``basic`` in many repos is no package).
INCIDENTAL = frozenset({"example", "examples", "sample", "samples", "demo", "demos",
                        "playground", "playgrounds", "bench", "benches", "benchmark",
                        "benchmarks", "doc", "docs", "test", "tests", "testing", "e2e",
                        "fixtures", "testdata"})


def incidental(rel: str | Path) -> bool:
    """Is the manifest at ``rel`` (relative to the checkout) inside an incidental
    directory (:data:`INCIDENTAL`)? The checkout's own top never is."""
    parts = Path(rel).parts[:-1]
    return any(p.lower() in INCIDENTAL for p in parts)


def as_dev(out: Manifests, first: int, type_: str = "dev") -> None:
    """Make the requirements read from ``first`` on ``dev``: they were read from an
    incidental package (an example's ``dependencies`` are not the repo's). (``type_``:
    another type for all of them, ``build`` for what a build's plugins need.)"""
    out.requires[first:] = [r if r.type in ("dev", type_) else dataclasses.replace(r, type=type_)
                            for r in out.requires[first:]]


_SHAPES = {dict: "a table (object)", list: "a list"}


def _shape_of(value: object) -> str:
    return {str: "a string", int: "a number", float: "a number", bool: "true/false",
            list: "a list", dict: "a table (object)"}.get(type(value), type(value).__name__)


def shaped(value: object, kind: type[dict[str, object]] | type[list[object]], where: str,
           line: Callable[[], int | None]) -> Any:
    """``value`` when it has the shape the manifest's format gives that field (absent:
    an empty one), else :class:`Unreadable` saying where, what was expected and what was
    found (``[project] dependencies: a list expected, not a string``): a requirement
    string iterated as its characters would be read as wrong requirements, silently."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise Unreadable(f"{where}: {_SHAPES[kind]} expected, not {_shape_of(value)}", line())
    return value
