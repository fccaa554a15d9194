"""The text of a new catalog's first edit, written directly: what ruamel's round trip
would write, without building and serializing its ~35 nodes per repo.

``coord init`` creates a catalog (comment lines and ``version: 1``) and fills it in
one edit with a thousand repos and their dependencies; the round trip (ruamel, pure
Python) took 2 of its 3 seconds. This writes the same bytes: the layout is the one
ruamel gives a fresh file (its default indents, ``tags: [a, b]`` flow lists,
``source: {file: f, line: 3}`` flow mappings), and each string is written plain when
ruamel would write it plain (the characters below, and read back as text by both
YAML 1.2 and the YAML 1.1 loader), else as ruamel itself writes it (one dump of all
such strings). A list with a long string is a block list, as ``edits._yaml_value``
makes it. Anything else raises :class:`Unsupported` and the caller does the
round trip. ``tests/unit/catalog/test_fresh.py`` compares both on generated fleets.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Mapping, Sequence

import yaml
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver

# A file the fast path may write over: full-line comments, then ``version: 1``
# (what `coord init` creates), LF line ends, no BOM, nothing else. ruamel keeps the
# comment lines as they are and guesses the default style for it (no quotes, no lists).
FRESH = re.compile(r"(?:#[^\n\r]*\n)*version: 1\n")
# Strings ruamel writes plain wherever they stand (no indicator, space, quote or
# ":"), when both resolvers read them as text: checked below.
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
_STR = "tag:yaml.org,2002:str"
_RESOLVE_11 = yaml.resolver.Resolver()
_RESOLVE_12 = VersionedResolver()
# Longer lines might meet ruamel's line width (4096): those go the round trip.
MAX_LINE = 1000
# ruamel's list of strings becomes a flow list below this length of each (edits._yaml_value).
FLOW_ITEM = 40


class Unsupported(Exception):
    """Not written here: the caller does the round trip."""


def is_fresh(text: str) -> bool:
    return FRESH.fullmatch(text) is not None


@functools.lru_cache(maxsize=8192)
def _text_to_both(s: str) -> bool:
    """Do YAML 1.1's and 1.2's resolvers both read ``s``, written plain, as text? (Asked
    once per string: a fleet's catalog says ``runtime``, ``main``, ``pyproject.toml``
    a thousand times.)"""
    return bool(_RESOLVE_11.resolve(yaml.ScalarNode, s, (True, False)) == _STR  # type: ignore[no-untyped-call]
                and _RESOLVE_12.resolve(ScalarNode, s, (True, False)) == _STR)


def _plain(s: str) -> bool:
    return _PLAIN.fullmatch(s) is not None and _text_to_both(s)


# What else ruamel writes plain in both block and flow context, once both resolvers read
# it as text: a URL, a scp-like address, a version range without spaces (``^1.2``,
# ``~1.2``, ``==1.0``, ``<2``): no flow indicator (``,[]{}``), no `` #`` or ``: ``, not
# ending in ``:``, not starting with an indicator. (Asking ruamel for every such string
# was a third of writing a new fleet's catalog.)
_PLAIN_TOO = re.compile(r"[A-Za-z0-9_^=<./][A-Za-z0-9_./:@+=^~%?&<-]*")
# What ruamel writes single-quoted, as ``'...'``: a string starting with an indicator
# that forbids a plain scalar (``>=2, <3``, ``*``, ``[1.0,2.0)``, ``@scope/pkg``),
# printable ASCII without a quote, backslash or trailing space, short. (One holding a
# ``'`` it writes double-quoted.)
_INDICATOR_LED = re.compile(r"[#,\[\]{}&*!|>%@`][ !#-&(-\[\]-~]{0,200}")


def _written(s: str) -> str | None:
    """How ruamel writes ``s``, in block and flow context alike, where that is sure
    without asking it; None where it is not."""
    if _PLAIN_TOO.fullmatch(s) and not s.endswith(":") and _text_to_both(s):
        return s
    if _INDICATOR_LED.fullmatch(s) and not s.endswith(" "):
        return f"'{s}'"
    return None


class _Writer:
    """Lines with placeholders for the strings ruamel must render, filled in at the end."""

    def __init__(self) -> None:
        self.parts: list[str | tuple[str, str]] = []  # text, or (context, string)
        self.odd: dict[str, set[str]] = {"block": set(), "flow": set()}

    def text(self, s: str) -> None:
        self.parts.append(s)

    def scalar(self, value: object, context: str) -> None:
        if isinstance(value, bool):  # a dependency's indirect: true, as ruamel writes it
            self.parts.append("true" if value else "false")
            return
        if not isinstance(value, (str, int)):
            raise Unsupported(f"a value of type {type(value).__name__}")
        if isinstance(value, int):
            self.parts.append(str(value))
        elif _plain(value):
            self.parts.append(value)
        elif (written := _written(value)) is not None:
            self.parts.append(written)
        else:
            self.odd[context].add(value)
            self.parts.append((context, value))

    def value(self, v: object, indent: str) -> None:
        """A mapping's value after ``key:`` in block context (as edits.new_item puts
        it); ``indent``: the key's."""
        if isinstance(v, (list, tuple)):
            if not all(isinstance(x, str) and len(x) < FLOW_ITEM for x in v):
                self.text("\n")
                for x in v:
                    self.text(indent + "  - ")
                    self.scalar(x, "block")
                    self.text("\n")
                return
            self.text(" [")
            for i, x in enumerate(v):
                if i:
                    self.text(", ")
                self.scalar(x, "flow")
            self.text("]\n")
            return
        self.text(" ")
        self.scalar(v, "block")
        self.text("\n")

    def flow_mapping(self, m: Mapping[object, object]) -> None:
        """``{k: v, ...}`` (edits.flow of a mapping of scalars)."""
        self.text(" {")
        for i, (k, v) in enumerate(m.items()):
            if not isinstance(k, str) or not _plain(k):
                raise Unsupported(f"a key {k!r}")
            self.text((", " if i else "") + k + ": ")
            self.scalar(v, "flow")
        self.text("}\n")

    def render(self) -> str:
        rendered = _ruamel_renders(self.odd)
        out = "".join(p if isinstance(p, str) else rendered[p] for p in self.parts)
        if any(len(line) > MAX_LINE for line in out.split("\n")):
            raise Unsupported("a line near ruamel's width")
        return out


def _ruamel_renders(odd: dict[str, set[str]]) -> dict[tuple[str, str], str]:
    """How ruamel writes each string (quoted, mostly) as a mapping's value in block
    context and as a flow collection's item: one dump of them all, in the style the
    round trip uses for a fresh file."""
    if not odd["block"] and not odd["flow"]:
        return {}
    # ruamel only when a string needs it (roundtrip imports the whole of ruamel).
    from ruamel.yaml.comments import CommentedMap, CommentedSeq  # lazy: see above
    from coordination.catalog.file.roundtrip import TextStyle, _yaml  # lazy: see above

    block, flow = sorted(odd["block"]), sorted(odd["flow"])
    doc = CommentedMap()
    if block:
        doc["b"] = CommentedSeq(CommentedMap(k=s) for s in block)
    if flow:
        items = CommentedSeq()
        for s in flow:
            one = CommentedSeq([s])
            one.fa.set_flow_style()
            items.append(one)
        doc["f"] = items
    buf = io.StringIO()
    _yaml(TextStyle()).dump(doc, buf)
    lines = buf.getvalue().split("\n")
    expect = ["b:"] * bool(block) + ["  - k: "] * len(block) \
        + ["f:"] * bool(flow) + ["  - ["] * len(flow) + [""]
    if len(lines) != len(expect) or not all(
            line.startswith(e) for line, e in zip(lines, expect, strict=True)):
        raise Unsupported("a string ruamel writes on more than one line")
    got: dict[tuple[str, str], str] = {}
    at = 1 if block else 0
    for s in block:
        got[("block", s)] = lines[at][len("  - k: "):]
        at += 1
    at += 1 if flow else 0
    for s in flow:
        line = lines[at]
        if not line.endswith("]"):
            raise Unsupported("a flow item ruamel writes on more than one line")
        got[("flow", s)] = line[len("  - ["):-1]
        at += 1
    return got


def fleet_text(text: str, repos: Sequence[Mapping[str, object]], repo_keys: Sequence[str],
               deps: Sequence[tuple[str, Mapping[str, object]]], dep_keys: Sequence[str]) -> str:
    """``text`` (a :func:`is_fresh` file) with ``repos`` and the dependencies ``deps``
    (each ``(id, fields)``) added, as ``FleetEdits.apply``'s round trip writes
    them: each item's keys in the order given, empty values left out, a dependency's
    ``source`` mapping as a flow mapping."""
    if not is_fresh(text):
        raise Unsupported("not a fresh catalog")
    w = _Writer()
    w.text(text)
    if repos:
        w.text("repos:\n")
        for r in repos:
            _item(w, "  - ", "    ", [(k, r[k]) for k in repo_keys if k in r])
    if deps:
        w.text("coordination:\n  dependencies:\n")
        for id_, d in deps:
            if "id" in d:
                raise Unsupported("a dependency with its own id")
            fields = [("id", id_), *((k, d[k]) for k in dep_keys
                                     if k in d and k not in ("id", "source"))]
            source = d.get("source")
            if isinstance(source, Mapping) and source:
                fields.append(("source", source))
            _item(w, "    - ", "      ", fields)
    return w.render()


def _flow_in_round_trip(value: Mapping[object, object]) -> bool:
    """Does the round trip write this mapping as a flow mapping (edits._yaml_value)?"""
    return all(isinstance(v, str) for v in value.values()) and sum(
        len(str(k)) + len(str(v)) + 4 for k, v in value.items()) < 60


def _empty(value: object) -> bool:  # edits._is_empty
    return value is None or (isinstance(value, (str, list, tuple, dict)) and len(value) == 0)


def _item(w: _Writer, first: str, rest: str, fields: list[tuple[str, object]]) -> None:
    fields = [(k, v) for k, v in fields if k == "source" or not _empty(v)]
    if not fields:
        raise Unsupported("an empty item")
    for i, (key, value) in enumerate(fields):
        w.text((rest if i else first) + key + ":")
        if isinstance(value, Mapping):
            if key != "source" and not (key == "forge" and _flow_in_round_trip(value)):
                raise Unsupported(f"a mapping under {key}")
            w.flow_mapping(value)
        else:
            w.value(value, rest)
