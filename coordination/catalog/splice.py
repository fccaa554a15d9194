"""Fast edits of big catalogs: only the items an edit touches go through ruamel.

A round trip of the whole file (ruamel is pure Python) costs seconds on a
10,000-todo catalog. :func:`apply` gives the edit function the same kind of
document for a fraction of that, and returns the same bytes:

1. A scan of the lines finds every item of the block sequences ``repos`` and
   ``coordination.{issues,plans,todos,dependencies}`` (the *windows*): each starts
   with a ``-`` at its sequence's column. The count must equal the validated
   catalog's, or nothing is spliced. An item's lines run from its ``-`` to the next
   item's ``-``, so they hold the comment lines after it (ruamel keeps those at the
   sequence's own column as the next item's; see ``before_next``). The C parser's
   events, exact but slower, are used on the small texts ruamel writes.
2. ruamel loads the file without those items, except the last one of each window
   (it keeps the sequence a block sequence, and a new item is written after it).
   The items cut out go back into the document as placeholders: reads come from the
   validated catalog's models; the first change (or look at comments or key order)
   turns a placeholder into the real ruamel item, parsed from its own lines.
3. The edit runs once. ruamel dumps the small document; the original lines of the
   untouched items are put back between the items it wrote.
4. The C loader parses the small dump; the new catalog is validated from those
   items and the models of the untouched ones (same schema and whole-catalog checks
   as a full load).

Setting a plain scalar field of a placeholder (``put(item, "status", "completed")``,
what ``sweep sync`` does to every todo) does not even make it real when its lines are
plain (:class:`_ItemText`): the one line is replaced or inserted where ruamel would
write it; every other line must be the one it was and each line set must read back, under
the C loader, as the value set; the item is validated from the old model's fields and the
values set, and must keep every other field of the old model. Otherwise the item turns
real from its edited lines and ruamel writes it.

Anything else (a window item removed or moved, a change outside the windows'
items, a file shape this does not handle, a result that does not validate) raises
:class:`Unsupported`, and the store takes the round-trip path, which also gives
the proper located error for an invalid result.
"""

from __future__ import annotations

import gc
import inspect
import re
import types
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeAlias, TypeVar

import yaml
from pydantic import BaseModel
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.tokens import CommentToken

from coordination.catalog import keep, loader
from coordination.catalog.models import Catalog, Dependency, Issue, Plan, Repo, Todo
from coordination.errors import CoordError

T = TypeVar("T")
#: A validated item of a window: what a placeholder reads from.
Item: TypeAlias = Repo | Issue | Plan | Todo | Dependency

WINDOWS = (("repos",), ("coordination", "issues"), ("coordination", "plans"),
           ("coordination", "todos"), ("coordination", "dependencies"))
_PARENTS = {p[:i] for p in WINDOWS for i in range(1, len(p))}
_DASH = re.compile(r" *- +")
# Line breaks other than "\n" that YAML counts as one (the C parser's line numbers).
_OTHER_BREAKS = ("\r", "\x85", "\u2028", "\u2029")
_STARTS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_ENDS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


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


def _has_doc_mark(body: str) -> bool:
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
        if not _DASH.fullmatch(lines[line][:column]):
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


# -- placeholders ----------------------------------------------------------------------
_MISSING = object()
# What a placeholder answers itself; every other method or attribute of ruamel's
# classes (changes, comments, key order, copies) first turns its item real.
_SEQ_READS = frozenset({
    "__getitem__", "__getsingleitem__", "__len__", "__iter__", "__contains__", "__reversed__",
    "index", "count", "copy", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__",
    "__add__", "__mul__", "__rmul__", "__repr__", "__str__",
})
_NEVER = frozenset({
    "__class__", "__dict__", "__weakref__", "__new__", "__init__", "__getattribute__",
    "__getattr__", "__setattr__", "__delattr__", "__init_subclass__", "__subclasshook__",
    "__class_getitem__", "__doc__", "__module__", "__slots__", "__hash__", "__sizeof__",
    "__dir__", "__format__",
})
_MAP_SLOTS = ("_yaml_comment", "_ok", "_ref")
_SEQ_SLOTS = ("_yaml_comment", "_lst")

# Setting a scalar field of an untouched item edits its lines in place, without ruamel,
# when the item is written plainly (see _ItemText) and the value is a plain scalar that
# ruamel writes as is: what `sweep sync` does to every todo of a sweep.
_KEY_LINE = re.compile(r"( *)([A-Za-z_][A-Za-z0-9_]*):(?: (.*))?\Z")
_PLAIN_OLD = re.compile(r"[A-Za-z0-9_.-]+\Z")
_PLAIN_STR = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
_PLAIN_FLOAT = re.compile(r"[0-9]+\.[0-9]+\Z")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null", "nan",
                         "inf"})


def _text_scalar(value: object) -> str | None:
    """How ruamel writes ``value`` plainly; None for anything else (it goes through ruamel)."""
    if type(value) is int:
        return str(value)
    if type(value) is float:
        r = repr(value)
        return r if _PLAIN_FLOAT.match(r) else None
    if type(value) is str and _PLAIN_STR.match(value) and value.lower() not in _YAML_WORDS:
        return value
    return None


@dataclass(slots=True)
class _Key:
    """A key of an item's text: its lines are ``first`` up to (not including) ``end``."""

    name: str
    first: int
    end: int


@dataclass
class _ItemText:
    """An item's lines as a block mapping written plainly: one key per line at the
    item's key column, values on that line or on lines indented deeper (or a block
    sequence at the key's column), no comment or blank line inside (blank lines may
    follow it)."""
    lines: list[str]
    col: int
    end: int  # first line after the last value (blank lines after it are kept)
    keys: list[_Key]  # in file order
    sets: dict[str, object] = field(default_factory=dict)

    @classmethod
    def read(cls, lines: list[str]) -> _ItemText | None:
        dash = _DASH.match(lines[0]) if lines else None
        if dash is None:
            return None
        col = len(dash.group(0))
        end = len(lines)
        while end > 1 and not lines[end - 1].strip():
            end -= 1
        keys: list[_Key] = []
        for j in range(end):
            line = " " * col + lines[0][col:] if j == 0 else lines[j]
            text = line.strip()
            if not text or text.startswith("#"):
                return None
            m = _KEY_LINE.match(line)
            if m is not None and len(m.group(1)) == col:
                keys.append(_Key(m.group(2), j, j + 1))
            elif j == 0 or not (len(line) - len(line.lstrip(" ")) > col
                                or line.startswith("- ", col) or line[col:] == "-"):
                return None
            else:  # the value of the key above: deeper, or a sequence at its column
                keys[-1].end = j + 1
        return cls(list(lines), col, end, keys)

    def set(self, key: str, text: str, pos: int | None) -> bool:
        """``key: text`` in place of the key's value (``pos`` None) or as a new line
        before the ``pos``-th key (after the last one when ``pos`` is their count)."""
        names = [k.name for k in self.keys]
        if pos is None:
            if key not in names:
                return False
            j = names.index(key)
            a, b = self.keys[j].first, self.keys[j].end
            old = self.lines[a][self.col + len(key) + 1:]
            if j == 0 or b - a != 1 or not old.startswith(" ") or not _PLAIN_OLD.match(old[1:]):
                return False
            self.lines[a] = f"{' ' * self.col}{key}: {text}"
            return True
        if key in names or not 0 < pos <= len(self.keys):
            return False
        if pos == len(self.keys) and self.end < len(self.lines):
            return False  # where ruamel puts it among the blank lines: not decided here
        at = self.keys[pos].first if pos < len(self.keys) else self.end
        self.lines.insert(at, f"{' ' * self.col}{key}: {text}")
        for k in self.keys[pos:]:
            k.first += 1
            k.end += 1
        self.keys.insert(pos, _Key(key, at, at + 1))
        self.end += 1
        return True


def _plain(value: object, root: _LazyMap) -> object:
    if type(value) is dict or isinstance(value, BaseModel):
        return _LazyMap.of(dict(value) if isinstance(value, dict) else value, root)
    if isinstance(value, (list, tuple)):
        seq = _LazyList.__new__(_LazyList)
        seq.__dict__["_c_root"] = root
        list.extend(seq, [_plain(v, root) for v in value])
        return seq
    if isinstance(value, Enum):
        return value.value
    return value


class _LazyMap(CommentedMap):
    """An item (or a mapping inside one) as the validated model has it, read-only:
    anything else makes its item real first (see :meth:`_State.materialize`)."""

    @classmethod
    def of(cls, src: dict[str, object] | BaseModel, root: _LazyMap | None,
           state: _State | None = None, where: tuple[Window, int] | None = None) -> _LazyMap:
        m = cls.__new__(cls)
        m.__dict__.update(
            _c_src=src, _c_keys=src.keys() if isinstance(src, dict) else src.model_fields_set,
            _c_cache={}, _c_root=m if root is None else root, _c_state=state, _c_where=where)
        return m

    def _c_read(self, key: str) -> object:
        d = self.__dict__
        cache = d["_c_cache"]
        if key in cache:
            return cache[key]
        if key not in d["_c_keys"]:
            return _MISSING
        src = d["_c_src"]
        raw = src[key] if type(src) is dict else getattr(src, key)
        cache[key] = value = _plain(raw, d["_c_root"])
        return value

    def c_tail(self) -> str | None:
        """The lines after this item's last value, as ruamel would keep them, when its
        own lines tell without parsing them: "" when its last line holds a value (no
        blank or comment line follows it). None otherwise. Lets ``edits.remove_index``
        drop an item, and look at its neighbour, without turning either real."""
        d = self.__dict__
        state, where = d["_c_state"], d["_c_where"]
        if d["_c_root"] is not self or state is None or where is None:
            return None
        w, i = where
        edited = state.edited.get((w.path, i))
        a, b = w.span(i)
        own = state.lines[a:b] if edited is None else edited.lines
        last = own[-1].strip() if own else ""
        return "" if last and not last.startswith("#") else None

    def get(self, key: str, default: object = None) -> object:
        v = self._c_read(key)
        return default if v is _MISSING else v

    def __getitem__(self, key: str) -> object:
        v = self._c_read(key)
        if v is _MISSING:
            raise KeyError(key)
        return v

    def __contains__(self, key: object) -> bool:
        return key in self.__dict__["_c_keys"]

    def __len__(self) -> int:
        return len(self.__dict__["_c_keys"])

    def __bool__(self) -> bool:
        return len(self) > 0

    # An untouched item's plain scalar fields are set in its text (_State.text_set);
    # anything else makes the item real first, as every other method does.
    def __iter__(self) -> Iterator[str]:
        d = self.__dict__
        if d["_c_root"] is self and d["_c_state"] is not None:
            item = d["_c_state"].item_text(self)
            if item is not None:
                return iter([k.name for k in item.keys])
        _materialize(self)
        return iter(self)

    def __setitem__(self, key: str, value: object) -> None:
        d = self.__dict__
        if not (d["_c_root"] is self and d["_c_state"] is not None and key in d["_c_keys"]
                and d["_c_state"].text_set(self, key, value, None)):
            _materialize(self)
            self[key] = value

    def insert(self, pos: int, key: str, value: object, comment: object = None) -> None:
        d = self.__dict__
        if not (comment is None and d["_c_root"] is self and d["_c_state"] is not None
                and key not in d["_c_keys"] and d["_c_state"].text_set(self, key, value, pos)):
            _materialize(self)
            self.insert(pos, key, value, comment)


class _LazyList(CommentedSeq):
    """A list inside a placeholder item: reads as it is, changes make the item real."""


def _trap(name: str) -> Callable[..., object]:
    def method(self: _LazyMap | _LazyList, *args: object, **kw: object) -> object:
        _materialize(self)
        return getattr(self, name)(*args, **kw)

    method.__name__ = name
    return method


def _trap_attribute(name: str) -> property:
    def get(self: _LazyMap | _LazyList) -> object:
        _materialize(self)
        return getattr(self, name)

    def put(self: _LazyMap | _LazyList, value: object) -> None:
        _materialize(self)
        setattr(self, name, value)

    return property(get, put)


def _install_traps(cls: type, reads: frozenset[str]) -> None:
    for name in dir(cls):
        if name in reads or name in _NEVER or name in cls.__dict__:
            continue
        attr = inspect.getattr_static(cls, name)
        if isinstance(attr, (classmethod, staticmethod)):
            continue
        if isinstance(attr, (property, types.MemberDescriptorType, types.GetSetDescriptorType)):
            setattr(cls, name, _trap_attribute(name))
        elif callable(attr):
            setattr(cls, name, _trap(name))


_install_traps(_LazyMap, frozenset())
_install_traps(_LazyList, _SEQ_READS)
_LazyMap.__hash__ = None


def _materialize(node: _LazyMap | _LazyList) -> None:
    root = object.__getattribute__(node, "__dict__")["_c_root"]
    state: _State = object.__getattribute__(root, "__dict__")["_c_state"]
    state.materialize(root)
    if type(node) in (_LazyMap, _LazyList):  # not found in the real item
        state.broken = True
        raise Unsupported("an edit reached a value its item does not have")


def _become(lazy: CommentedMap | CommentedSeq, real: CommentedMap | CommentedSeq,
            slots: tuple[str, ...]) -> None:
    """Turn the placeholder ``lazy`` into an object of ``real``'s class carrying its
    comments and attributes (the items are the caller's to copy)."""
    object.__getattribute__(lazy, "__dict__").clear()
    lazy.__class__ = type(real)
    for a in slots:
        if hasattr(real, a):
            setattr(lazy, a, getattr(real, a))
    lazy.__dict__.update(real.__dict__)


def _adopt(lazy: _LazyMap | _LazyList, real: object) -> bool:
    """Make ``lazy`` the real node ``real`` (same object identity as before, so what
    the edit holds stays live). False when the shapes differ."""
    if isinstance(lazy, _LazyMap):
        if type(real) is not CommentedMap:
            return False
        cache = object.__getattribute__(lazy, "__dict__")["_c_cache"]
        _become(lazy, real, _MAP_SLOTS)
        OrderedDict.clear(lazy)
        for k, v in OrderedDict.items(real):
            child = cache.get(k)
            if isinstance(child, (_LazyMap, _LazyList)) and _adopt(child, v):
                v = child
            OrderedDict.__setitem__(lazy, k, v)
        return True
    if isinstance(lazy, _LazyList):
        if type(real) is not CommentedSeq or len(real) != list.__len__(lazy):
            return False
        old = [list.__getitem__(lazy, i) for i in range(list.__len__(lazy))]
        _become(lazy, real, _SEQ_SLOTS)
        new = []
        for child, v in zip(old, real):
            if isinstance(child, (_LazyMap, _LazyList)) and _adopt(child, v):
                v = child
            new.append(v)
        list.__init__(lazy, new)
        return True
    return False


@dataclass
class _State:
    lines: list[str]
    load: Callable[[str], object]
    dump: Callable[[CommentedMap], str] | None = None
    seqs: dict[tuple[str, ...], CommentedSeq] = field(default_factory=dict)
    # The comment lines ruamel keeps before the next item (see materialize).
    before_next: dict[tuple[tuple[str, ...], int], list[CommentToken]] = field(
        default_factory=dict)
    broken: bool = False
    # Items whose text was edited in place (text_set), by (window path, index).
    edited: dict[tuple[tuple[str, ...], int], _ItemText] = field(default_factory=dict)
    _texts: dict[tuple[tuple[str, ...], int], _ItemText | None] = field(default_factory=dict)
    # Items turned real whose lines ruamel may write otherwise (keep.may_rewrite): their
    # own lines and ruamel's writing of them before the edit, for keep.keep.
    bases: dict[tuple[tuple[str, ...], int], tuple[list[str], list[str]]] = field(
        default_factory=dict)

    def item_text(self, root: _LazyMap) -> _ItemText | None:
        """The placeholder's lines when they are plain enough to edit in place."""
        w, i = object.__getattribute__(root, "__dict__")["_c_where"]
        where = (w.path, i)
        if where not in self._texts:
            a, b = w.span(i)
            item = _ItemText.read(self.lines[a:b])
            keys = object.__getattribute__(root, "__dict__")["_c_keys"]
            if item is not None and (set(keys) != {k.name for k in item.keys}
                                     or len(item.keys) != len(keys)):
                item = None  # the model does not see the keys the text has
            self._texts[where] = item
        return self._texts[where]

    def text_set(self, root: _LazyMap, key: str, value: object, pos: int | None) -> bool:
        """Set ``key`` in the placeholder's own lines; False when it must turn real."""
        text = _text_scalar(value)
        item = None if text is None else self.item_text(root)
        if text is None or item is None or not item.set(key, text, pos):
            return False
        d = object.__getattribute__(root, "__dict__")
        w, i = d["_c_where"]
        if key not in d["_c_keys"]:
            d["_c_keys"] = {*d["_c_keys"], key}  # a copy: the set is the model's own
        d["_c_cache"][key] = value
        item.sets[key] = value
        self.edited[(w.path, i)] = item
        return True

    def materialize(self, root: _LazyMap) -> None:
        """Parse the item's own lines (under the keys leading to its sequence) with
        ruamel and turn the placeholder into that item."""
        if type(root) is not _LazyMap:
            return
        w, i = object.__getattribute__(root, "__dict__")["_c_where"]
        # Set in place before: parsed from its edited lines, then ruamel writes it.
        edited = self.edited.pop((w.path, i), None)
        a, b = w.span(i)
        # A stand-in for the next item after it: the comment lines at its end stay its
        # own, as in the whole file (at the end of a document ruamel keeps them apart).
        dash = _DASH.match(self.lines[b])
        if dash is None:
            raise Unsupported(f"{'.'.join(w.path)}[{i + 1}] not on its '-' line")
        own = self.lines[a:b] if edited is None else edited.lines
        ctx = [self.lines[k] for k in w.key_lines] + own + [dash.group(0) + "_: 0"]
        doc = self.load("\n".join(ctx) + "\n")
        if (self.dump is not None and isinstance(doc, CommentedMap)
                and keep.may_rewrite("\n".join(own))):
            self._remember_base(w.path, i, own, self.dump(doc))
        seq = _at(doc, w.path)
        real = seq[0] if isinstance(seq, CommentedSeq) and len(seq) == 2 else None
        if (not isinstance(seq, CommentedSeq) or not isinstance(real, CommentedMap)
                or not _agrees(root, real) or not _adopt(root, real)):
            self.broken = True
            raise Unsupported(f"{'.'.join(w.path)}[{i}] does not parse on its own")
        first = seq.ca.items.get(0)
        if first is not None:
            self.seqs[w.path].ca.items[i] = first
        # Comment lines under it at the sequence's own column: ruamel keeps them as the
        # next item's "before" comment; they are written after this item.
        after = seq.ca.items.get(1)
        if after is not None and len(after) > 1 and after[1]:
            self.before_next[(w.path, i)] = after[1]

    def _remember_base(self, path: tuple[str, ...], i: int, own: list[str],
                       written: str) -> None:
        """Keep ``own`` and ruamel's writing of it (``written``: the item under its
        keys, before a stand-in for the next one) for :func:`keep.keep`."""
        lines = written.split("\n")
        try:
            ours = scan(written, lines).get(path)
        except Unsupported:
            return  # ruamel's lines then, as before
        if ours is not None and len(ours.starts) == 2:
            a, b = ours.span(0)
            self.bases[(path, i)] = (list(own), lines[a:b])


def _unparsed_with_lines(item: object) -> bool:
    """A placeholder with blank or comment lines after its last value (removing it
    unparsed would lose what ruamel hands to its neighbour)."""
    return type(item) is _LazyMap and item.c_tail() != ""


def _agrees(lazy: _LazyMap, real: CommentedMap) -> bool:
    """The placeholder told the edit the keys and (read) values the real item has."""
    d = object.__getattribute__(lazy, "__dict__")
    if set(d["_c_keys"]) != set(OrderedDict.keys(real)):
        return False
    return all(isinstance(v, (_LazyMap, _LazyList)) or v == real.get(k)
               for k, v in d["_c_cache"].items())


def _holds_lazy(node: object) -> bool:
    if type(node) in (_LazyMap, _LazyList):
        return True
    if isinstance(node, dict):
        return any(_holds_lazy(v) for v in node.values())
    if isinstance(node, list):
        return any(_holds_lazy(v) for v in node)
    return False


def _at(doc: object, path: tuple[str, ...]) -> object:
    for k in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(k)
    return doc


def _snapshot(node: object, seqs: Mapping[tuple[str, ...], CommentedSeq]) -> tuple[object, ...]:
    """The document outside the windows, as plain data (keys in order)."""
    for s in seqs.values():
        if node is s:
            return ("window", id(s))
    if isinstance(node, dict):
        return ("map", tuple((k, _snapshot(v, seqs)) for k, v in node.items()))
    if isinstance(node, list):
        return ("seq", tuple(_snapshot(v, seqs) for v in node))
    return ("scalar", type(node).__name__, node)


# -- the edit --------------------------------------------------------------------------
@dataclass
class Result:
    body: str  # the new file body ("\n" line ends, no BOM or preamble)
    catalog: Catalog  # validated
    written: list[Item]  # models of the items ruamel wrote (changed or new)


def apply(fn: Callable[[CommentedMap], T], body: str, file: str, cat: Catalog,
          load: Callable[[str], object], dump: Callable[[CommentedMap], str]
          ) -> tuple[Result, T]:
    """``fn`` applied to ``body`` (the text ruamel would load), given ``cat``: the
    validated catalog of exactly that text. ``load``/``dump`` are the round-trip YAML."""
    # 10,000 placeholders next to a big catalog's models: the cycle collector would
    # walk them all several times over (a third of the time); nothing here is cyclic
    # garbage worth it.
    was = gc.isenabled()
    gc.disable()
    try:
        return _apply(fn, body, file, cat, load, dump)
    finally:
        if was:
            gc.enable()


def _apply(fn: Callable[[CommentedMap], T], body: str, file: str, cat: Catalog,
           load: Callable[[str], object], dump: Callable[[CommentedMap], str]
           ) -> tuple[Result, T]:
    if any(c in body for c in _OTHER_BREAKS):
        raise Unsupported("line breaks other than LF")
    if _has_doc_mark(body):
        raise Unsupported("document markers in the body")
    lines = body.split("\n")
    windows = scan_lines(lines)
    if not windows:
        raise Unsupported("no block sequence of items to splice into")
    models: dict[tuple[str, ...], Sequence[Item]] = {
        ("repos",): cat.repos, ("coordination", "issues"): cat.coordination.issues,
        ("coordination", "plans"): cat.coordination.plans,
        ("coordination", "todos"): cat.coordination.todos,
        ("coordination", "dependencies"): cat.coordination.dependencies,
    }
    # The small text: every window item cut out but the last.
    cut: list[tuple[int, int]] = sorted(
        (w.starts[0], w.starts[-1]) for w in windows.values() if len(w.starts) > 1)
    small, pos = [], 0
    for a, b in cut:
        small += lines[pos:a]
        pos = b
    small += lines[pos:]
    try:
        doc = load("\n".join(small))
    except Exception as exc:  # noqa: BLE001 - the round trip reports it properly
        raise Unsupported(f"the cut text does not load: {exc}") from None
    if not isinstance(doc, CommentedMap):
        raise Unsupported("the top level is not a mapping")
    # ruamel's writing of the text before the edit, when it may differ from the
    # user's (keep.may_rewrite): lines the edit leaves are put back as written.
    small_text = "\n".join(small)
    small_base = dump(doc) if keep.may_rewrite(small_text) else None
    state = _State(lines, load, dump)
    originals: dict[tuple[str, ...], list[object]] = {}
    for path, w in windows.items():
        seq = _at(doc, path)
        n = len(w.starts)
        if not isinstance(seq, CommentedSeq) or len(seq) != 1 or len(models[path]) != n:
            raise Unsupported(f"{'.'.join(path)} does not match the validated catalog")
        state.seqs[path] = seq
    before = _snapshot(doc, state.seqs)
    for path, w in windows.items():
        seq, n = state.seqs[path], len(w.starts)
        items: list[object] = [
            _LazyMap.of(m, None, state, (w, i)) for i, m in enumerate(models[path][:-1])]
        items.append(list.__getitem__(seq, 0))
        dash = seq.ca.items.pop(0, None)
        if n > 1 and dash is not None and len(dash) > 1 and dash[1]:
            # Lines ruamel keeps "before" the kept item are the ones above the first.
            raise Unsupported(f"comments before the items of {'.'.join(path)}")
        list.__init__(seq, items)
        if dash is not None:
            seq.ca.items[n - 1] = dash
        originals[path] = items
    try:
        result = fn(doc)
    except CoordError:
        if state.broken:
            raise Unsupported("the edit refused on a placeholder it could not read") from None
        raise
    except Unsupported:
        raise
    except Exception as exc:  # noqa: BLE001 - let the round trip say what is wrong
        raise Unsupported(f"the edit failed on the spliced document: {exc!r}") from None
    if state.broken:
        raise Unsupported("the edit reached a placeholder it could not turn real")
    for path, seq in state.seqs.items():
        # The last item of a window is a real one (ruamel writes the lines that end the
        # sequence after it, and only a sequence with a real item as a block): when a
        # delete took it away, the new last one turns real (from its own lines).
        left = [list.__getitem__(seq, i) for i in range(list.__len__(seq))]
        if left and type(left[-1]) is _LazyMap:
            state.materialize(left[-1])
            if state.broken or type(left[-1]) is _LazyMap:
                raise Unsupported(f"{'.'.join(path)}: no item left that ruamel writes")

    # Only items changed or added: check, then keep the real ones for ruamel.
    kept: dict[tuple[str, ...], list[bool]] = {}  # per final item: placeholder?
    # Per final item: its index among the original items (None: new). Items removed
    # (a delete) leave gaps; the others keep their order.
    origins: dict[tuple[str, ...], list[int | None]] = {}
    for path, w in windows.items():
        seq, orig, n = state.seqs[path], originals[path], len(w.starts)
        if _at(doc, path) is not seq:
            raise Unsupported(f"{'.'.join(path)} was replaced")
        items = [list.__getitem__(seq, i) for i in range(list.__len__(seq))]
        where = {id(o): i for i, o in enumerate(orig)}
        origin = [where.get(id(x)) for x in items]
        old = [i for i in origin if i is not None]
        if old != sorted(set(old)) or any(
                i is not None for i in origin[len(old):]):
            raise Unsupported(f"an item of {'.'.join(path)} was moved or copied")
        if any(type(x) is _LazyMap for x in items[len(old):]):
            raise Unsupported(f"an item of {'.'.join(path)} was copied")
        gone = sorted(set(range(n)) - set(old))
        # A removed item is removed as the round trip removes it (edits.remove_index):
        # through ruamel, its neighbour turned real to take the lines after it, or, when
        # no line follows its last value, left a placeholder whose lines just go. One
        # removed otherwise, or with lines ruamel keeps as the next one's, is left to
        # the round trip.
        if any((path, i) in state.before_next or _unparsed_with_lines(orig[i]) for i in gone):
            raise Unsupported(f"an item of {'.'.join(path)} was removed otherwise")
        lazy = [type(x) is _LazyMap for x in items]
        real = [i for i, z in enumerate(lazy) if not z]
        if any(_holds_lazy(items[i]) for i in real):
            raise Unsupported(f"a value of a placeholder was put into {'.'.join(path)}")
        ca = seq.ca.items
        if any(k not in real for k in ca):
            raise Unsupported(f"comments changed around {'.'.join(path)}")
        moved = {j: ca[i] for j, i in enumerate(real) if i in ca}
        for j, i in enumerate(real):
            was = origin[i]
            pre = None if was is None else state.before_next.get((path, was))
            if pre is not None:  # goes before the next item ruamel writes
                slot = moved.setdefault(j + 1, [None, None, None, None])
                if len(slot) < 2 or slot[1]:
                    raise Unsupported(f"comments between items of {'.'.join(path)}")
                slot[1] = pre
        ca.clear()
        ca.update(moved)
        list.__init__(seq, [items[i] for i in real])
        kept[path] = lazy
        origins[path] = origin
    if _snapshot(doc, state.seqs) != before:
        raise Unsupported("the edit changed the document outside the windows' items")

    try:
        out = dump(doc)
        if small_base is not None:
            out = keep.keep(small_text, small_base, out, file)
    except Exception as exc:  # noqa: BLE001 - let the round trip say what is wrong
        raise Unsupported(f"ruamel could not write the spliced document: {exc!r}") from None
    out_lines = out.split("\n")
    out_windows = scan(out, out_lines)
    for path, lazy in kept.items():
        ow = out_windows.get(path)
        if ow is None or len(ow.starts) != lazy.count(False):
            raise Unsupported(f"{'.'.join(path)} did not come out as a block sequence")

    # Validate: the items ruamel wrote, as the C loader reads them, and the models
    # of the untouched ones.
    try:
        data = loader.parse(out, file)
    except CoordError:
        raise Unsupported("the new items do not parse") from None
    in_place = _read_in_place(state, windows, models, file)
    for path, lazy in kept.items():
        written = _at(data, path)
        if not isinstance(written, list) or len(written) != lazy.count(False):
            raise Unsupported(f"{'.'.join(path)} reads back differently")
        fresh = iter(written)
        full = [(in_place.get((path, o), models[path][o]) if z and o is not None
                 else next(fresh)) for z, o in zip(lazy, origins[path])]
        parent = _at(data, path[:-1])
        assert isinstance(parent, dict)  # _at found the list in it
        parent[path[-1]] = full

    # The new text: what ruamel wrote, with the untouched items' own lines put back.
    for path in sorted(kept, key=lambda p: out_windows[p].starts[0], reverse=True):
        w, ow, lazy = windows[path], out_windows[path], kept[path]
        piece: list[str] = []
        j = 0
        for z, was in zip(lazy, origins[path]):
            if z and was is not None:
                a, b = w.span(was)
                edited = state.edited.get((path, was))
                piece += lines[a:b] if edited is None else edited.lines
            else:
                a, b = ow.span(j)
                ours = None if was is None else state.bases.get((path, was))
                if ours is None:
                    piece += out_lines[a:b]
                else:  # turned real: the lines the edit left, as they were
                    context = "".join(lines[k] + "\n" for k in w.key_lines)
                    piece += keep.keep("\n".join(ours[0]), "\n".join(ours[1]),
                                       "\n".join(out_lines[a:b]), file, context).split("\n")
                j += 1
        out_lines[ow.starts[0]:ow.end] = piece
    new_body = "\n".join(out_lines)
    try:
        catalog = loader.validate(data, new_body, file)
    except CoordError:
        raise Unsupported("the result does not validate") from None
    sections: dict[tuple[str, ...], Sequence[Item]] = {
        ("repos",): catalog.repos, ("coordination", "issues"): catalog.coordination.issues,
        ("coordination", "plans"): catalog.coordination.plans,
        ("coordination", "todos"): catalog.coordination.todos,
        ("coordination", "dependencies"): catalog.coordination.dependencies}
    now = {(p, o): k for p, origin in origins.items() for k, o in enumerate(origin)
           if o is not None}
    _check_in_place(state, models, sections, now)
    written = [sections[p][k] for p, lazy in kept.items() for k, z in enumerate(lazy)
               if not z or (p, origins[p][k]) in state.edited]
    return Result(new_body, catalog, written), result


def _read_in_place(state: _State, windows: dict[tuple[str, ...], Window],
                   models: Mapping[tuple[str, ...], Sequence[Item]], file: str
                   ) -> dict[tuple[tuple[str, ...], int], dict[str, object]]:
    """The items edited in place, as data to validate: the old model's fields with the
    ones set. Raises Unsupported unless the new lines say exactly that.

    Each item's lines were matched key for key with its validated model before any
    was set (``_State.item_text``: the keys its plain lines show are the model's), so
    it is enough that (1) every line but the set keys' is the line it was, (2) the new
    lines still read as a plain item, with the keys in their new order, (3) each set
    key is the one line ``key: text``, and (4) that line reads back, under the C
    loader, as the value set, with its type: a plain one-line scalar means the same on
    any line of a block mapping, so the distinct lines are read once, together
    (parsing every edited item back was a third of a 400-todo sync)."""
    out: dict[tuple[tuple[str, ...], int], dict[str, object]] = {}
    said: dict[str, list[object]] = {}  # "key: text" -> the values it must read as
    for (path, i), item in state.edited.items():
        where = f"{'.'.join(path)}[{i}]"
        a, b = windows[path].span(i)
        new = _ItemText.read(item.lines)
        if new is None or [k.name for k in new.keys] != [k.name for k in item.keys]:
            raise Unsupported(f"{where} edited in place reads back differently")
        # The lines of the keys set start so at the item's column (one line each, as
        # checked below); all the others must be as they were.
        set_lines = tuple(f"{' ' * new.col}{key}:" for key in item.sets)
        if ([line for line in state.lines[a:b] if not line.startswith(set_lines)]
                != [line for line in item.lines if not line.startswith(set_lines)]):
            raise Unsupported(f"{where} edited in place changed another field")
        for k in new.keys:
            if k.name not in item.sets:
                continue
            line = f"{k.name}: {_text_scalar(item.sets[k.name])}"
            if k.end - k.first != 1 or new.lines[k.first] != " " * new.col + line:
                raise Unsupported(f"{where} edited in place reads back differently")
            said.setdefault(line, []).append(item.sets[k.name])
        model = models[path][i]
        data: dict[str, object] = {name: getattr(model, name) for name in model.model_fields_set}
        data.update(item.sets)
        out[(path, i)] = data
    if said:
        try:
            back = loader.parse("".join(f"- {line}\n" for line in said), file)
        except CoordError:
            raise Unsupported("a line set in place does not parse") from None
        if not isinstance(back, list) or len(back) != len(said):
            raise Unsupported("the lines set in place read back differently")
        for got, (line, values) in zip(back, said.items()):
            key = line.split(":", 1)[0]
            if not (isinstance(got, dict) and list(got) == [key] and all(
                    got[key] == v and type(got[key]) is type(v) for v in values)):
                raise Unsupported(f"{line!r} set in place reads back differently")
    return out


def _check_in_place(state: _State, old: Mapping[tuple[str, ...], Sequence[Item]],
                    new: Mapping[tuple[str, ...], Sequence[Item]],
                    now: Mapping[tuple[tuple[str, ...], int], int]) -> None:
    """Every field an item edited in place did not set kept its validated value
    (``now``: an original item's index in the new catalog)."""
    for (path, i), item in state.edited.items():
        if (path, i) not in now:
            raise Unsupported(f"{'.'.join(path)}[{i}] was edited in place, then removed")
        a, b = old[path][i], new[path][now[(path, i)]]
        keep = [k.name for k in item.keys if k.name not in item.sets]
        if type(a) is not type(b) or any(getattr(a, k, _MISSING) != getattr(b, k, _MISSING)
                                         or not hasattr(a, k) for k in keep):
            raise Unsupported(f"{'.'.join(path)}[{i}] edited in place changed another field")
