"""Plain scalar fields set in an untouched item's own lines, and the checks of it.

Setting a scalar field of an untouched item (what ``sweep sync`` does to every todo of
a sweep) edits its lines in place, without ruamel, when the item is written plainly
(:class:`ItemText`) and the value is a plain scalar that ruamel writes as is
(:func:`text_scalar`). After the edit, :func:`read_in_place` and :func:`check_in_place`
make sure the new lines say exactly the old model's fields with the ones set; anything
else raises :class:`Unsupported` and the store takes the round trip.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from coordination.catalog.file import loader
from coordination.catalog.file.splice_scan import DASH, Item, Unsupported, Window
from coordination.errors import CoordError

_MISSING = object()
_KEY_LINE = r"{indent}([A-Za-z_][A-Za-z0-9_]*):(?: .*)?\Z"  # a key and its value, if any
_PLAIN_OLD = re.compile(r"[A-Za-z0-9_.-]+\Z")
_PLAIN_STR = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")
_PLAIN_FLOAT = re.compile(r"[0-9]+\.[0-9]+\Z")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null", "nan",
                         "inf"})


def text_scalar(value: object) -> str | None:
    """How ruamel writes ``value`` plainly; None for anything else (it goes through ruamel)."""
    if type(value) is int:
        return str(value)
    if type(value) is float:
        r = repr(value)
        return r if _PLAIN_FLOAT.match(r) else None
    if type(value) is str and _PLAIN_STR.match(value) and value.lower() not in _YAML_WORDS:
        return value
    return None


@functools.cache
def _key_line_at(col: int) -> Callable[[str], re.Match[str] | None]:
    """The match of a line holding a key at column ``col`` (its name: group 1)."""
    return re.compile(_KEY_LINE.format(indent=" " * col)).match


@dataclass(slots=True)
class _Key:
    """A key of an item's text: its lines are ``first`` up to (not including) ``end``."""

    name: str
    first: int
    end: int


@dataclass
class ItemText:
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
    def read(cls, lines: list[str]) -> ItemText | None:
        dash = DASH.match(lines[0]) if lines else None
        if dash is None:
            return None
        col = len(dash.group(0))
        end = len(lines)
        while end > 1 and not lines[end - 1].strip():
            end -= 1
        key_line = _key_line_at(col)
        keys: list[_Key] = []
        for j in range(end):
            line = " " * col + lines[0][col:] if j == 0 else lines[j]
            m = key_line(line)
            if m is not None:  # (neither blank nor a comment)
                keys.append(_Key(m.group(1), j, j + 1))
                continue
            text = line.strip()
            if not text or text.startswith("#"):
                return None
            if j == 0 or not (len(line) - len(line.lstrip(" ")) > col
                              or line.startswith("- ", col) or line[col:] == "-"):
                return None
            # the value of the key above: deeper, or a sequence at its column
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


def read_in_place(edited: Mapping[tuple[tuple[str, ...], int], ItemText], lines: list[str],
                  windows: dict[tuple[str, ...], Window],
                  models: Mapping[tuple[str, ...], Sequence[Item]], file: str
                  ) -> dict[tuple[tuple[str, ...], int], dict[str, object]]:
    """The items edited in place, as data to validate: the old model's fields with the
    ones set. Raises Unsupported unless the new lines say exactly that.

    Each item's lines were matched key for key with its validated model before any
    was set (``splice_placeholders.State.item_text``: the keys its plain lines show
    are the model's), so it is enough that (1) every line but the set keys' is the
    line it was, (2) the new lines still read as a plain item, with the keys in their
    new order, (3) each set key is the one line ``key: text``, and (4) that line reads
    back, under the C loader, as the value set, with its type: a plain one-line scalar
    means the same on any line of a block mapping, so the distinct lines are read
    once, together (parsing every edited item back was a third of a 400-todo sync)."""
    out: dict[tuple[tuple[str, ...], int], dict[str, object]] = {}
    said: dict[str, list[object]] = {}  # "key: text" -> the values it must read as
    # The starts of the lines of the keys set, by the item's column and those keys (a
    # sync sets the same two keys of every todo).
    starts: dict[tuple[int, tuple[str, ...]], tuple[str, ...]] = {}
    for (path, i), item in edited.items():
        a, b = windows[path].span(i)
        new = ItemText.read(item.lines)
        if new is None or [k.name for k in new.keys] != [k.name for k in item.keys]:
            raise Unsupported(f"{_where(path, i)} edited in place reads back differently")
        # The lines of the keys set start so at the item's column (one line each, as
        # checked below); all the others must be as they were.
        shape = (new.col, tuple(item.sets))
        set_lines = starts.get(shape)
        if set_lines is None:
            set_lines = starts[shape] = tuple(f"{' ' * new.col}{key}:" for key in item.sets)
        if ([line for line in lines[a:b] if not line.startswith(set_lines)]
                != [line for line in item.lines if not line.startswith(set_lines)]):
            raise Unsupported(f"{_where(path, i)} edited in place changed another field")
        for k in new.keys:
            if k.name not in item.sets:
                continue
            value = item.sets[k.name]
            line = f"{k.name}: {text_scalar(value)}"
            if k.end - k.first != 1 or new.lines[k.first] != " " * new.col + line:
                raise Unsupported(f"{_where(path, i)} edited in place reads back differently")
            said.setdefault(line, []).append(value)
        fields = models[path][i].__dict__  # a model's fields, each by its name
        data: dict[str, object] = {name: fields[name]
                                   for name in models[path][i].model_fields_set}
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


def _where(path: tuple[str, ...], i: int) -> str:
    return f"{'.'.join(path)}[{i}]"


def check_in_place(edited: Mapping[tuple[tuple[str, ...], int], ItemText],
                   old: Mapping[tuple[str, ...], Sequence[Item]],
                   new: Mapping[tuple[str, ...], Sequence[Item]],
                   now: Mapping[tuple[tuple[str, ...], int], int]) -> None:
    """Every field an item edited in place did not set kept its validated value
    (``now``: an original item's index in the new catalog)."""
    for (path, i), item in edited.items():
        if (path, i) not in now:
            raise Unsupported(f"{'.'.join(path)}[{i}] was edited in place, then removed")
        a, b = old[path][i], new[path][now[(path, i)]]
        keep = [k.name for k in item.keys if k.name not in item.sets]
        if type(a) is not type(b) or any(getattr(a, k, _MISSING) != getattr(b, k, _MISSING)
                                         or not hasattr(a, k) for k in keep):
            raise Unsupported(f"{'.'.join(path)}[{i}] edited in place changed another field")
