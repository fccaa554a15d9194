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
   events, exact but slower, are used on the small texts ruamel writes
   (:mod:`splice_scan`).
2. ruamel loads the file without those items, except the last one of each window
   (it keeps the sequence a block sequence, and a new item is written after it).
   The items cut out go back into the document as placeholders: reads come from the
   validated catalog's models; the first change (or look at comments or key order)
   turns a placeholder into the real ruamel item, parsed from its own lines
   (:mod:`splice_placeholders`).
3. The edit runs once. ruamel dumps the small document; the original lines of the
   untouched items are put back between the items it wrote.
4. The C loader parses the small dump; the new catalog is validated from those
   items and the models of the untouched ones (same schema and whole-catalog checks
   as a full load).

Steps 1 and 2 need the text and its catalog, not the edit: :func:`ready` does them apart, ahead of
time (a sweep's command while its sweep runs: ``CatalogStore.ready_edit``), and
:func:`apply_ready` does the rest once the edit is known; :func:`apply` does both at once.

Setting a plain scalar field of a placeholder (``put(item, "status", "completed")``,
what ``sweep sync`` does to every todo) does not even make it real when its lines are
plain (:mod:`splice_in_place`): the one line is replaced or inserted where ruamel would
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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from coordination.catalog.file import keep, loader
from coordination.catalog.file.cache import paused_gc
from coordination.catalog.models import Catalog
from coordination.catalog.file.splice_in_place import check_in_place, read_in_place
from coordination.catalog.file.splice_placeholders import (
    LazyMap,
    State,
    holds_lazy,
    unparsed_with_lines,
)
from coordination.catalog.file.splice_scan import (
    OTHER_BREAKS,
    Item,
    Unsupported,
    Window,
    has_doc_mark,
    node_at,
    scan,
    scan_lines,
)
from coordination.errors import CoordError

# The door of the splice path: apply (at once, or ready then apply_ready), Ready and
# Result, and the Unsupported they raise.
__all__ = ["Ready", "Result", "Unsupported", "apply", "apply_ready", "ready"]

T = TypeVar("T")
WindowPath: TypeAlias = tuple[str, ...]  # a window's keys from the top of the document


@dataclass
class Result:
    body: str  # the new file body ("\n" line ends, no BOM or preamble)
    catalog: Catalog  # validated
    written: list[Item]  # models of the items ruamel wrote (changed or new)


@dataclass
class Ready:
    """Steps 1 and 2 of one edit of one text, done before its edit function is known
    (:func:`ready`): the windows, ruamel's document of the text cut short, that text (and
    its writing by ruamel when it may differ), and the placeholders put in the document
    (each window's original items, and the document outside the windows). Used by one
    :func:`apply`: the edit changes the document."""

    splice: _Splice
    doc: CommentedMap
    small_text: str
    small_base: str | None
    originals: dict[WindowPath, list[object]]
    before: tuple[object, ...]


def ready(body: str, file: str, cat: Catalog, load: Callable[[str], object],
          dump: Callable[[CommentedMap], str], *, every_item: bool = False) -> Ready:
    """What an edit of ``body`` (the text ruamel would load; ``cat``: the validated
    catalog of exactly that text; ``load``/``dump``: the round-trip YAML) needs before
    its edit function runs. ``every_item``: also read the lines of every item for a
    change in place (an edit made later, by a process idle now, that may set a field of
    each: a sweep's sync); else only those of the items an edit sets, as it sets them."""
    with paused_gc():
        lines = _body_lines(body)
        windows = scan_lines(lines)
        if not windows:
            raise Unsupported("no block sequence of items to splice into")
        splice = _Splice(file, lines, windows, _sections(cat), load, dump)
        doc, small_text, small_base = splice.load_cut()
        originals, before = splice.put_placeholders(doc)
        if every_item:
            splice.state.read_item_texts(windows, splice.models)
        return Ready(splice, doc, small_text, small_base, originals, before)


def apply(fn: Callable[[CommentedMap], T], body: str, file: str, cat: Catalog,
          load: Callable[[str], object], dump: Callable[[CommentedMap], str]
          ) -> tuple[Result, T]:
    """``fn`` applied to ``body`` (the text ruamel would load), given ``cat``: the
    validated catalog of exactly that text. ``load``/``dump`` are the round-trip YAML."""
    # 10,000 placeholders next to a big catalog's models: the cycle collector would
    # walk them all several times over (a third of the time); nothing here is cyclic
    # garbage worth it.
    with paused_gc():
        return _apply(fn, ready(body, file, cat, load, dump))


def apply_ready(fn: Callable[[CommentedMap], T], made: Ready) -> tuple[Result, T]:
    """:func:`apply` of what ``made`` (:func:`ready`, made earlier and used by nothing
    else) was made of."""
    with paused_gc():
        return _apply(fn, made)


def _apply(fn: Callable[[CommentedMap], T], made: Ready) -> tuple[Result, T]:
    splice, doc, small_text, small_base = made.splice, made.doc, made.small_text, made.small_base
    file, originals, before = splice.file, made.originals, made.before
    result = splice.run(fn, doc)
    splice.make_last_items_real()
    kept = splice.keep_real_items(doc, originals)
    if _snapshot(doc, splice.state.seqs) != before:
        raise Unsupported("the edit changed the document outside the windows' items")
    out, out_lines, out_windows = splice.write(doc, kept, small_text, small_base)
    data = splice.read_back(out, kept)
    new_body = splice.put_back_lines(out_lines, out_windows, kept)
    try:
        catalog = loader.validate(data, new_body, file)
    except CoordError:
        raise Unsupported("the result does not validate") from None
    sections = _sections(catalog)
    now = {(p, o): k for p, left in kept.items() for k, o in enumerate(left.origin)
           if o is not None}
    check_in_place(splice.state.edited, splice.models, sections, now)
    written = [sections[p][k] for p, left in kept.items()
               for k, z in enumerate(left.placeholder)
               if not z or (p, left.origin[k]) in splice.state.edited]
    return Result(new_body, catalog, written), result


def _body_lines(body: str) -> list[str]:
    """The body's lines, when its shape is one the splice handles."""
    if any(c in body for c in OTHER_BREAKS):
        raise Unsupported("line breaks other than LF")
    if has_doc_mark(body):
        raise Unsupported("document markers in the body")
    return body.split("\n")


def _sections(cat: Catalog) -> dict[WindowPath, Sequence[Item]]:
    """The validated items of each window, by its path."""
    return {("repos",): cat.repos, ("coordination", "issues"): cat.coordination.issues,
            ("coordination", "plans"): cat.coordination.plans,
            ("coordination", "todos"): cat.coordination.todos,
            ("coordination", "dependencies"): cat.coordination.dependencies}


def _snapshot(node: object, seqs: Mapping[WindowPath, CommentedSeq]) -> tuple[object, ...]:
    """The document outside the windows, as plain data (keys in order)."""
    for s in seqs.values():
        if node is s:
            return ("window", id(s))
    if isinstance(node, dict):
        return ("map", tuple((k, _snapshot(v, seqs)) for k, v in node.items()))
    if isinstance(node, list):
        return ("seq", tuple(_snapshot(v, seqs) for v in node))
    return ("scalar", type(node).__name__, node)


@dataclass
class _Left:
    """A window after the edit, per final item: still a placeholder (``placeholder``),
    and its index among the original items (``origin``; None: new). Items removed (a
    delete) leave gaps; the others keep their order."""

    placeholder: list[bool]
    origin: list[int | None]


class _Splice:
    """One edit spliced into one body, step by step (see the module's docstring)."""

    def __init__(self, file: str, lines: list[str], windows: dict[WindowPath, Window],
                 models: dict[WindowPath, Sequence[Item]], load: Callable[[str], object],
                 dump: Callable[[CommentedMap], str]) -> None:
        self.file, self.lines, self.windows, self.models = file, lines, windows, models
        self.load, self.dump = load, dump
        self.state = State(lines, load, dump)

    def load_cut(self) -> tuple[CommentedMap, str, str | None]:
        """ruamel's document of the small text (every window item cut out but the last),
        that text, and ruamel's writing of it before the edit when it may differ from
        the user's (keep.may_rewrite): lines the edit leaves are put back as written."""
        cut: list[tuple[int, int]] = sorted(
            (w.starts[0], w.starts[-1]) for w in self.windows.values() if len(w.starts) > 1)
        small, pos = [], 0
        for a, b in cut:
            small += self.lines[pos:a]
            pos = b
        small += self.lines[pos:]
        try:
            doc = self.load("\n".join(small))
        except Exception as exc:  # noqa: BLE001 - the round trip reports it properly
            raise Unsupported(f"the cut text does not load: {exc}") from None
        if not isinstance(doc, CommentedMap):
            raise Unsupported("the top level is not a mapping")
        small_text = "\n".join(small)
        return doc, small_text, self.dump(doc) if keep.may_rewrite(small_text) else None

    def put_placeholders(self, doc: CommentedMap
                         ) -> tuple[dict[WindowPath, list[object]], tuple[object, ...]]:
        """Each window's items cut out go back as placeholders over their models (the
        last one, which ruamel loaded, stays real). Returns each window's original items
        and the document outside the windows before the edit."""
        state = self.state
        for path, w in self.windows.items():
            seq = node_at(doc, path)
            n = len(w.starts)
            if not isinstance(seq, CommentedSeq) or len(seq) != 1 or len(self.models[path]) != n:
                raise Unsupported(f"{'.'.join(path)} does not match the validated catalog")
            state.seqs[path] = seq
        before = _snapshot(doc, state.seqs)
        originals: dict[WindowPath, list[object]] = {}
        for path, w in self.windows.items():
            seq, n = state.seqs[path], len(w.starts)
            items: list[object] = [
                LazyMap.of(m, None, state, (w, i)) for i, m in enumerate(self.models[path][:-1])]
            items.append(list.__getitem__(seq, 0))
            dash = seq.ca.items.pop(0, None)
            if n > 1 and dash is not None and len(dash) > 1 and dash[1]:
                # Lines ruamel keeps "before" the kept item are the ones above the first.
                raise Unsupported(f"comments before the items of {'.'.join(path)}")
            list.__init__(seq, items)
            if dash is not None:
                seq.ca.items[n - 1] = dash
            originals[path] = items
        return originals, before

    def run(self, fn: Callable[[CommentedMap], T], doc: CommentedMap) -> T:
        """The edit, once; what it refuses on a placeholder it could not read, or fails
        on, is left to the round trip."""
        try:
            result = fn(doc)
        except CoordError:
            if self.state.broken:
                raise Unsupported("the edit refused on a placeholder it could not read") from None
            raise
        except Unsupported:
            raise
        except Exception as exc:  # noqa: BLE001 - let the round trip say what is wrong
            raise Unsupported(f"the edit failed on the spliced document: {exc!r}") from None
        if self.state.broken:
            raise Unsupported("the edit reached a placeholder it could not turn real")
        return result

    def make_last_items_real(self) -> None:
        """The last item of a window is a real one (ruamel writes the lines that end the
        sequence after it, and only a sequence with a real item as a block): when a
        delete took it away, the new last one turns real (from its own lines)."""
        state = self.state
        for path, seq in state.seqs.items():
            left = [list.__getitem__(seq, i) for i in range(list.__len__(seq))]
            if left and type(left[-1]) is LazyMap:
                state.materialize(left[-1])
                if state.broken or type(left[-1]) is LazyMap:
                    raise Unsupported(f"{'.'.join(path)}: no item left that ruamel writes")

    def keep_real_items(self, doc: CommentedMap, originals: dict[WindowPath, list[object]]
                        ) -> dict[WindowPath, _Left]:
        """Only items changed or added are left in the windows, for ruamel to write, with
        their comments; checked first."""
        kept: dict[WindowPath, _Left] = {}
        for path, w in self.windows.items():
            seq = self.state.seqs[path]
            if node_at(doc, path) is not seq:
                raise Unsupported(f"{'.'.join(path)} was replaced")
            items = [list.__getitem__(seq, i) for i in range(list.__len__(seq))]
            origin = self._origins(path, items, originals[path], len(w.starts))
            lazy = [type(x) is LazyMap for x in items]
            real = [i for i, z in enumerate(lazy) if not z]
            if any(holds_lazy(items[i]) for i in real):
                raise Unsupported(f"a value of a placeholder was put into {'.'.join(path)}")
            self._move_comments(path, seq, real, origin)
            list.__init__(seq, [items[i] for i in real])
            kept[path] = _Left(lazy, origin)
        return kept

    def _origins(self, path: WindowPath, items: list[object], orig: list[object], n: int
                 ) -> list[int | None]:
        """Per item of a window after the edit, its index among the ``n`` original
        items ``orig`` (None: new); refused unless they kept their order, none was
        copied, and each removed one was removed as the round trip removes it."""
        where = {id(o): i for i, o in enumerate(orig)}
        origin = [where.get(id(x)) for x in items]
        old = [i for i in origin if i is not None]
        if old != sorted(set(old)) or any(
                i is not None for i in origin[len(old):]):
            raise Unsupported(f"an item of {'.'.join(path)} was moved or copied")
        if any(type(x) is LazyMap for x in items[len(old):]):
            raise Unsupported(f"an item of {'.'.join(path)} was copied")
        gone = sorted(set(range(n)) - set(old))
        # A removed item is removed as the round trip removes it (edits.remove_index):
        # through ruamel, its neighbour turned real to take the lines after it, or, when
        # no line follows its last value, left a placeholder whose lines just go. One
        # removed otherwise, or with lines ruamel keeps as the next one's, is left to
        # the round trip.
        if any((path, i) in self.state.before_next or unparsed_with_lines(orig[i])
               for i in gone):
            raise Unsupported(f"an item of {'.'.join(path)} was removed otherwise")
        return origin

    def _move_comments(self, path: WindowPath, seq: CommentedSeq, real: list[int],
                       origin: list[int | None]) -> None:
        """The comments ruamel keeps per item follow the real items (indexes ``real``)
        to their places among them; the comment lines under an item turned real, at the
        sequence's own column, go before the next item ruamel writes."""
        ca = seq.ca.items
        if any(k not in real for k in ca):
            raise Unsupported(f"comments changed around {'.'.join(path)}")
        moved = {j: ca[i] for j, i in enumerate(real) if i in ca}
        for j, i in enumerate(real):
            was = origin[i]
            pre = None if was is None else self.state.before_next.get((path, was))
            if pre is not None:  # goes before the next item ruamel writes
                slot = moved.setdefault(j + 1, [None, None, None, None])
                if len(slot) < 2 or slot[1]:
                    raise Unsupported(f"comments between items of {'.'.join(path)}")
                slot[1] = pre
        ca.clear()
        ca.update(moved)

    def write(self, doc: CommentedMap, kept: dict[WindowPath, _Left], small_text: str,
              small_base: str | None) -> tuple[str, list[str], dict[WindowPath, Window]]:
        """What ruamel writes of the small document, its lines and its windows."""
        try:
            out = self.dump(doc)
            if small_base is not None:
                out = keep.keep(small_text, small_base, out, self.file)
        except Exception as exc:  # noqa: BLE001 - let the round trip say what is wrong
            raise Unsupported(f"ruamel could not write the spliced document: {exc!r}") from None
        out_lines = out.split("\n")
        out_windows = scan(out, out_lines)
        for path, left in kept.items():
            ow = out_windows.get(path)
            if ow is None or len(ow.starts) != left.placeholder.count(False):
                raise Unsupported(f"{'.'.join(path)} did not come out as a block sequence")
        return out, out_lines, out_windows

    def read_back(self, out: str, kept: dict[WindowPath, _Left]) -> object:
        """The data to validate: the items ruamel wrote, as the C loader reads them, the
        items set in place, and the models of the untouched ones."""
        try:
            data = loader.parse(out, self.file)
        except CoordError:
            raise Unsupported("the new items do not parse") from None
        set_in_place = read_in_place(self.state.edited, self.lines, self.windows,
                                     self.models, self.file)
        for path, left in kept.items():
            written = node_at(data, path)
            if not isinstance(written, list) or len(written) != left.placeholder.count(False):
                raise Unsupported(f"{'.'.join(path)} reads back differently")
            fresh = iter(written)
            full = [(set_in_place.get((path, o), self.models[path][o]) if z and o is not None
                     else next(fresh)) for z, o in zip(left.placeholder, left.origin)]
            parent = node_at(data, path[:-1])
            assert isinstance(parent, dict)  # node_at found the list in it
            parent[path[-1]] = full
        return data

    def put_back_lines(self, out_lines: list[str], out_windows: dict[WindowPath, Window],
                       kept: dict[WindowPath, _Left]) -> str:
        """The new text: what ruamel wrote, with the untouched items' own lines put back."""
        for path in sorted(kept, key=lambda p: out_windows[p].starts[0], reverse=True):
            ow = out_windows[path]
            out_lines[ow.starts[0]:ow.end] = self._window_lines(path, kept[path], out_lines, ow)
        return "\n".join(out_lines)

    def _window_lines(self, path: WindowPath, left: _Left, out_lines: list[str], ow: Window
                      ) -> list[str]:
        """A window's lines in the new text: each untouched item's own (or as set in
        place), each item ruamel wrote as it wrote it, or, for one turned real, with the
        lines the edit left as they were."""
        w = self.windows[path]
        piece: list[str] = []
        j = 0
        for z, was in zip(left.placeholder, left.origin):
            if z and was is not None:
                a, b = w.span(was)
                edited = self.state.edited.get((path, was))
                piece += self.lines[a:b] if edited is None else edited.lines
            else:
                a, b = ow.span(j)
                ours = None if was is None else self.state.bases.get((path, was))
                if ours is None:
                    piece += out_lines[a:b]
                else:  # turned real: the lines the edit left, as they were
                    context = "".join(self.lines[k] + "\n" for k in w.key_lines)
                    piece += keep.keep("\n".join(ours[0]), "\n".join(ours[1]),
                                       "\n".join(out_lines[a:b]), self.file, context).split("\n")
                j += 1
        return piece
