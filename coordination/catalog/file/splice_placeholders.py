"""Placeholders: the window items an edit has not touched, read from the validated models.

Each item :mod:`splice` cuts out of the text goes back into the document as a
:class:`LazyMap` over its validated model: reads come from the model; the first change
(or look at comments or key order) turns it into the real ruamel item, parsed from its
own lines (:meth:`State.materialize`). A plain scalar field of a plainly written item is
set in its own lines instead (:meth:`State.text_set`, :mod:`splice_in_place`).
"""

from __future__ import annotations

import inspect
import types
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from enum import Enum

from pydantic import BaseModel
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.tokens import CommentToken

from coordination.catalog.file import keep
from coordination.catalog.file import splice_in_place as in_place
from coordination.catalog.file.splice_scan import DASH, Unsupported, Window, node_at, scan

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


def _plain(value: object, root: LazyMap) -> object:
    if type(value) is dict or isinstance(value, BaseModel):
        return LazyMap.of(dict(value) if isinstance(value, dict) else value, root)
    if isinstance(value, (list, tuple)):
        seq = _LazyList.__new__(_LazyList)
        seq.__dict__["_c_root"] = root
        list.extend(seq, [_plain(v, root) for v in value])
        return seq
    if isinstance(value, Enum):
        return value.value
    return value


class LazyMap(CommentedMap):
    """An item (or a mapping inside one) as the validated model has it, read-only:
    anything else makes its item real first (see :meth:`State.materialize`)."""

    @classmethod
    def of(cls, src: dict[str, object] | BaseModel, root: LazyMap | None,
           state: State | None = None, where: tuple[Window, int] | None = None) -> LazyMap:
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

    # An untouched item's plain scalar fields are set in its text (State.text_set);
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
    def method(self: LazyMap | _LazyList, *args: object, **kw: object) -> object:
        _materialize(self)
        return getattr(self, name)(*args, **kw)

    method.__name__ = name
    return method


def _trap_attribute(name: str) -> property:
    def get(self: LazyMap | _LazyList) -> object:
        _materialize(self)
        return getattr(self, name)

    def put(self: LazyMap | _LazyList, value: object) -> None:
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


_install_traps(LazyMap, frozenset())
_install_traps(_LazyList, _SEQ_READS)
LazyMap.__hash__ = None


def _materialize(node: LazyMap | _LazyList) -> None:
    root = object.__getattribute__(node, "__dict__")["_c_root"]
    state: State = object.__getattribute__(root, "__dict__")["_c_state"]
    state.materialize(root)
    if type(node) in (LazyMap, _LazyList):  # not found in the real item
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


def _adopt(lazy: LazyMap | _LazyList, real: object) -> bool:
    """Make ``lazy`` the real node ``real`` (same object identity as before, so what
    the edit holds stays live). False when the shapes differ."""
    if isinstance(lazy, LazyMap):
        if type(real) is not CommentedMap:
            return False
        cache = object.__getattribute__(lazy, "__dict__")["_c_cache"]
        _become(lazy, real, _MAP_SLOTS)
        OrderedDict.clear(lazy)
        for k, v in OrderedDict.items(real):
            child = cache.get(k)
            if isinstance(child, (LazyMap, _LazyList)) and _adopt(child, v):
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
            if isinstance(child, (LazyMap, _LazyList)) and _adopt(child, v):
                v = child
            new.append(v)
        list.__init__(lazy, new)
        return True
    return False


@dataclass
class State:
    """What one splice knows while its edit runs: the file's lines, ruamel's load and
    dump, each window's sequence, and what the placeholders did (turned real, set in
    place)."""

    lines: list[str]
    load: Callable[[str], object]
    dump: Callable[[CommentedMap], str] | None = None
    seqs: dict[tuple[str, ...], CommentedSeq] = field(default_factory=dict)
    # The comment lines ruamel keeps before the next item (see materialize).
    before_next: dict[tuple[tuple[str, ...], int], list[CommentToken]] = field(
        default_factory=dict)
    broken: bool = False
    # Items whose text was edited in place (text_set), by (window path, index).
    edited: dict[tuple[tuple[str, ...], int], in_place.ItemText] = field(default_factory=dict)
    _texts: dict[tuple[tuple[str, ...], int], in_place.ItemText | None] = field(
        default_factory=dict)
    # Items turned real whose lines ruamel may write otherwise (keep.may_rewrite): their
    # own lines and ruamel's writing of them before the edit, for keep.keep.
    bases: dict[tuple[tuple[str, ...], int], tuple[list[str], list[str]]] = field(
        default_factory=dict)

    def item_text(self, root: LazyMap) -> in_place.ItemText | None:
        """The placeholder's lines when they are plain enough to edit in place."""
        w, i = object.__getattribute__(root, "__dict__")["_c_where"]
        where = (w.path, i)
        if where not in self._texts:
            self._texts[where] = self._read_text(
                w, i, object.__getattribute__(root, "__dict__")["_c_keys"])
        return self._texts[where]

    def read_item_texts(self, windows: Mapping[tuple[str, ...], Window],
                        models: Mapping[tuple[str, ...], Sequence[BaseModel]]) -> None:
        """:meth:`item_text` of every item but each window's last (ruamel's own), read
        now: before the edit is known."""
        for path, w in windows.items():
            for i, model in enumerate(models[path][:len(w.starts) - 1]):
                self._texts[(path, i)] = self._read_text(w, i, model.model_fields_set)

    def _read_text(self, w: Window, i: int, keys: AbstractSet[str]
                   ) -> in_place.ItemText | None:
        """Item ``i`` of ``w``'s lines, when plain enough to edit in place and holding
        exactly the keys its model was given (``keys``)."""
        a, b = w.span(i)
        item = in_place.ItemText.read(self.lines[a:b])
        if item is not None and (set(keys) != {k.name for k in item.keys}
                                 or len(item.keys) != len(keys)):
            item = None  # the model does not see the keys the text has
        return item

    def text_set(self, root: LazyMap, key: str, value: object, pos: int | None) -> bool:
        """Set ``key`` in the placeholder's own lines; False when it must turn real."""
        text = in_place.text_scalar(value)
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

    def materialize(self, root: LazyMap) -> None:
        """Parse the item's own lines (under the keys leading to its sequence) with
        ruamel and turn the placeholder into that item."""
        if type(root) is not LazyMap:
            return
        w, i = object.__getattribute__(root, "__dict__")["_c_where"]
        # Set in place before: parsed from its edited lines, then ruamel writes it.
        edited = self.edited.pop((w.path, i), None)
        a, b = w.span(i)
        # A stand-in for the next item after it: the comment lines at its end stay its
        # own, as in the whole file (at the end of a document ruamel keeps them apart).
        dash = DASH.match(self.lines[b])
        if dash is None:
            raise Unsupported(f"{'.'.join(w.path)}[{i + 1}] not on its '-' line")
        own = self.lines[a:b] if edited is None else edited.lines
        ctx = [self.lines[k] for k in w.key_lines] + own + [dash.group(0) + "_: 0"]
        doc = self.load("\n".join(ctx) + "\n")
        if (self.dump is not None and isinstance(doc, CommentedMap)
                and keep.may_rewrite("\n".join(own))):
            self._remember_base(w.path, i, own, self.dump(doc))
        seq = node_at(doc, w.path)
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


def unparsed_with_lines(item: object) -> bool:
    """A placeholder with blank or comment lines after its last value (removing it
    unparsed would lose what ruamel hands to its neighbour)."""
    return type(item) is LazyMap and item.c_tail() != ""


def _agrees(lazy: LazyMap, real: CommentedMap) -> bool:
    """The placeholder told the edit the keys and (read) values the real item has."""
    d = object.__getattribute__(lazy, "__dict__")
    if set(d["_c_keys"]) != set(OrderedDict.keys(real)):
        return False
    return all(isinstance(v, (LazyMap, _LazyList)) or v == real.get(k)
               for k, v in d["_c_cache"].items())


def holds_lazy(node: object) -> bool:
    if type(node) in (LazyMap, _LazyList):
        return True
    if isinstance(node, dict):
        return any(holds_lazy(v) for v in node.values())
    if isinstance(node, list):
        return any(holds_lazy(v) for v in node)
    return False

