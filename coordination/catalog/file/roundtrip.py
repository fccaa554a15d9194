"""ecosystem.yaml as ruamel's round-trip document: what an edit changes, comments kept.

Apart from :mod:`coordination.catalog.file.store` because only edits need it: ruamel is
pure Python and importing it costs every read that does not edit.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.emitter import Emitter
from ruamel.yaml.error import CommentMark
from ruamel.yaml.error import YAMLError as RuamelYAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.tokens import CommentToken

from coordination.errors import CatalogError, Problem

# -- round trip (ruamel) --------------------------------------------------------
_BOM = "\ufeff"
_PLAIN_11 = yaml.resolver.Resolver()
# Comments and directives up to an explicit "---": ruamel drops them, so they are kept aside.
_PREAMBLE = re.compile(r"\A(?:(?:[ \t]*(?:#[^\n]*)?|%[^\n]*)\r?\n)*---[ \t]*(?:#[^\n]*)?\r?\n")
_KEY_ONLY = re.compile(r"^(?P<lead>[ ]*(?:-[ ]+)*)[^\s#][^#]*:[ \t]*(?:#.*)?$")


class _Representer(RoundTripRepresenter):
    """Quotes new strings that YAML 1.1 would read as something else.

    ruamel writes YAML 1.2, where ``on`` or ``no`` are text, but catalogs are
    read with PyYAML (YAML 1.1), where they are booleans.
    """

    quote = "'"  # the quotes of a new string that needs them (TextStyle.quote)

    def represent_str(self, data: str) -> ScalarNode:
        node: ScalarNode = super().represent_str(data)
        if node.style is None and _PLAIN_11.resolve(  # type: ignore[no-untyped-call]
            yaml.ScalarNode, data, (True, False)
        ) != "tag:yaml.org,2002:str":
            node.style = self.quote
        return node


_Representer.add_representer(str, _Representer.represent_str)


class _DoubleQuoting(_Representer):
    quote = '"'


class _Emitter(Emitter):
    def write_comment(self, comment: CommentToken, pre: bool = False) -> None:
        """An end-of-line comment that a longer value reaches: two spaces before it,
        as people (and yamllint) write them, where ruamel leaves one."""
        mark = comment.start_mark
        value = comment.value
        if (not pre and self.column and mark is not None and mark.column <= self.column
                and value and value[0] != "\n" and value.strip()):
            comment = CommentToken(value, CommentMark(self.column + 2), None)
        super().write_comment(comment, pre)


class _DoubleEmitter(_Emitter):
    """Writes a new string that needs quotes in double quotes, as the file does
    (``PYTHON: "3.13"``), where ruamel would pick single ones; the strings the file
    has keep their own quotes (preserve_quotes)."""

    def choose_scalar_style(self) -> Any:
        style = super().choose_scalar_style()
        return '"' if style == "'" and not self.event.style else style


class _BadTimestamp(str):
    """A timestamp YAML cannot build (2026-02-30), kept as the text written, as the
    loader keeps it; dumped back unquoted, as it was."""


class _Constructor(RoundTripConstructor):
    # Any: ruamel's signature promises a date, and a bad one comes back as text.
    def construct_yaml_timestamp(self, node: ScalarNode, values: object = None) -> Any:
        try:
            stamp: dt.date = super().construct_yaml_timestamp(node, values)
            return stamp
        except ValueError:
            return _BadTimestamp(node.value)


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_yaml_timestamp)
_Representer.add_representer(
    _BadTimestamp,
    lambda r, data: r.represent_scalar("tag:yaml.org,2002:timestamp", str(data)),
)


@dataclass(frozen=True)
class TextStyle:
    """What the dump must reproduce that the ruamel document does not hold."""

    mapping: int = 2
    sequence: int = 4
    offset: int = 2
    bom: bool = False
    crlf: bool = False
    preamble: str = ""  # text up to and including an explicit "---" line
    quote: str = "'"  # '"' when the file quotes mostly with double quotes


def guess_style(text: str) -> TextStyle:
    """Mapping indent, sequence indent and dash offset as the file uses them."""
    mapping: int | None = None
    sequence: int | None = None
    offset: int | None = None
    parent: int | None = None  # column of the key of the previous "key:" line
    for line in text.splitlines():
        body = line.strip()
        if not body or body.startswith("#"):
            continue
        col = len(line) - len(line.lstrip(" "))
        if parent is not None:
            if body.startswith("- ") and sequence is None:
                after = line[col + 1:]
                offset = col - parent
                sequence = col + 1 + len(after) - len(after.lstrip(" ")) - parent
            elif not body.startswith("-") and mapping is None and col > parent:
                mapping = col - parent
        m = _KEY_ONLY.match(line)
        parent = len(m.group("lead")) if m else None
        if mapping is not None and sequence is not None:
            break
    mapping = mapping or 2
    if sequence is None or offset is None or offset < 0 or sequence < offset + 2:
        offset, sequence = mapping, mapping + 2
    body = text.removeprefix(_BOM)
    m = _PREAMBLE.match(body)
    return TextStyle(mapping, sequence, offset, text.startswith(_BOM), "\r\n" in text,
                     m.group(0) if m else "", _quote(text))


# A quoted scalar's opening quote: after "key: ", "- ", "[", "{" or ", ".
_OPENING = re.compile(r"""(?:[:\-,][ \t]+|[\[{])(["'])""")


def _quote(text: str) -> str:
    """The quote character the file uses most (its first 64 KiB), "'" if none."""
    double = single = 0
    for m in _OPENING.finditer(text, 0, 65536):
        if m.group(1) == '"':
            double += 1
        else:
            single += 1
    return '"' if double > single else "'"


def _yaml(style: TextStyle) -> YAML:
    rt = YAML(typ="rt")
    if style.quote == '"':
        rt.Representer = _DoubleQuoting
        rt.Emitter = _DoubleEmitter
    else:
        rt.Representer = _Representer
        rt.Emitter = _Emitter
    rt.Constructor = _Constructor
    rt.preserve_quotes = True
    rt.width = 4096  # never re-fold a long line the user wrote on one line
    rt.indent(mapping=style.mapping, sequence=style.sequence, offset=style.offset)
    return rt


def load_round_trip(data: bytes, file: str) -> tuple[CommentedMap, TextStyle]:
    """The ruamel document of a catalog file and the text style to dump it in (a
    mapping: the caller has validated the file as a catalog)."""
    text = data.decode("utf-8")  # the caller has loaded it already: it is UTF-8
    style = guess_style(text)
    try:
        body = text.removeprefix(_BOM)[len(style.preamble):]
        doc = _yaml(style).load(body.replace("\r\n", "\n"))  # ruamel drops blank CRLF lines
    except RuamelYAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CatalogError(
            Problem(f"cannot edit: {getattr(exc, 'problem', None) or exc}", file=file,
                    line=None if mark is None else mark.line + 1)
        ) from None
    return doc, style


def dump_round_trip(doc: CommentedMap, style: TextStyle) -> bytes:
    buf = io.StringIO()
    _yaml(style).dump(doc, buf)
    text = buf.getvalue()
    if style.crlf:
        text = text.replace("\n", "\r\n")
    return ((_BOM if style.bom else "") + style.preamble + text).encode("utf-8")
