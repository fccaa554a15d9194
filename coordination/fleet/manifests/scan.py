"""A tokenizer for the build scripts of the JVM's build tools: Gradle's Groovy and Kotlin
DSLs and sbt's Scala. coord never runs a build script (it is a program: it may read
files, the network, the environment); it reads the forms dependencies are written in,
and those are made of a few token kinds: names, strings, numbers and punctuation.

Strings are the languages' own: ``'...'`` and ``"..."`` (escapes, no newline),
``'''...'''`` and ``\"\"\"...\"\"\"`` (newlines kept); a string with ``$x`` or ``${...}`` in
it is *interpolated* (Groovy's double quotes, Kotlin's strings, Scala's ``s"..."``), and
its value is known only where each name in it is. Comments (``//``, ``/* */``, nested
in Kotlin and Scala as in the languages) are dropped; newlines are kept, as tokens,
since Groovy and Kotlin end a statement there. Text no token matches (a string never
closed) is :class:`~coordination.fleet.manifests.base.Unreadable` at its line."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from coordination.fleet.manifests.base import Unreadable

#: The kinds: ``name`` (identifiers, backquoted ones unquoted), ``str`` (a string's
#: value: escapes undone), ``num``, ``nl`` and ``op`` (punctuation and operators). A
#: ``//`` comment is matched whole; a ``/*`` one is walked in :func:`tokens` (Kotlin's
#: and Scala's nest). An operator never takes the ``/`` that opens a comment
#: (``a=//x``: ``=``, then the comment).
_TOKEN = re.compile(r"""
    [ \t\r\f\ufeff]*                 # blanks before a token: no token of their own
    (?:
      (?P<triple>[sfr]?\"\"\"(?:[^"]|"(?!""))*\"\"\"+|'\'\'(?:[^']|'(?!''))*'\'\')
    | (?P<str>[sfr]?"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    | (?P<name>[A-Za-z_$][\w$]*)
    | (?P<quoted>`[^`\n]+`)
    | (?P<line>//[^\n]*)
    | (?P<block>/\*)
    | (?P<op>(?:[-+*%=<>!&|^~?:]|/(?![/*]))+|[.,;()\[\]{}@\#])
    | (?P<nl>\n)
    | (?P<num>\d[\w.]*)
    | (?P<cont>\\\r?\n)
    | (?P<end>\Z)
    | (?P<other>[\s\S])              # a sign no token starts with: see _unmatched
    )
""", re.X)
#: The groups' numbers (``Match.lastindex``): one test a token, not a name looked up.
(_TRIPLE, _STR, _NAME, _QUOTED, _LINE, _BLOCK, _OP, _NL, _NUM, _CONT, _END, _OTHER) = (
    _TOKEN.groupindex[k] for k in ("triple", "str", "name", "quoted", "line", "block", "op",
                                   "nl", "num", "cont", "end", "other"))

_BLANKS = " \t\r\f\ufeff"
_INTERPOLATED = re.compile(r"\$(?:\{|[A-Za-z_])")
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.S)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0"}


class Token(NamedTuple):  # a tuple: a big script has ten thousand of them
    kind: str
    text: str  # a string's value (quotes off, escapes undone); a name unquoted
    line: int
    #: A string with ``$name`` or ``${...}`` in it: its value depends on them.
    interpolated: bool = False

    def is_op(self, *texts: str) -> bool:
        return self.kind == "op" and self.text in texts

    def is_name(self, *texts: str) -> bool:
        return self.kind == "name" and (not texts or self.text in texts)


def _unescape(body: str) -> str:
    if "\\" not in body:
        return body
    return _ESCAPE.sub(lambda m: (chr(int(m.group(1)[1:], 16)) if m.group(1)[0] == "u"
                                  and len(m.group(1)) == 5
                                  else _ESCAPES.get(m.group(1), m.group(1))), body)


def _string(raw: str, triple: bool, dollar: bool) -> tuple[str, bool]:
    prefix = raw[0] if raw[0] in "sfr" else ""
    quote = 3 if triple else 1
    body = raw[len(prefix) + quote:len(raw) - quote]
    single = raw[len(prefix)] == "'"
    # Groovy's single quotes never interpolate; Kotlin has no single-quoted strings;
    # Scala interpolates only with a prefix (s"...", f"...").
    interpolated = (not single and (prefix in ("s", "f") or (dollar and not prefix))
                    and bool(_INTERPOLATED.search(body)))
    return (body if triple else _unescape(body)), interpolated


def _block_end(text: str, start: int, nested: bool) -> int:
    """Where the ``/* */`` comment opened at ``start`` ends (after its ``*/``); -1."""
    depth, i = 1, start + 2
    while depth:
        close = text.find("*/", i)
        if close < 0:
            return -1
        opened = text.find("/*", i, close) if nested else -1
        if opened >= 0:
            depth, i = depth + 1, opened + 2
        else:
            depth, i = depth - 1, close + 2
    return i


def _quoted_end(text: str, start: int) -> int:
    """Where the double-quoted string opening at ``text[start]`` ends (after its quote):
    escapes skipped, and a ``${...}`` template's expression (which may hold strings of
    its own: ``s"${m.value("VERSION")}/"``) walked over; -1 for one never closed."""
    i, end = start + 1, len(text)
    while i < end:
        c = text[i]
        if c == "\\":
            i += 2
        elif c == '"':
            return i + 1
        elif c == "\n":
            return -1
        elif c == "$" and text.startswith("{", i + 1):
            i, depth = i + 2, 1
            while i < end and depth:
                c = text[i]
                if c == '"':
                    inner = _quoted_end(text, i)
                    if inner < 0:
                        return -1
                    i = inner
                    continue
                depth += (c == "{") - (c == "}")
                i += 1
        else:
            i += 1
    return -1


def tokens(text: str, *, dollar: bool = True, nested_comments: bool = True,
           apostrophes: bool = False) -> Iterator[Token]:
    """The tokens of a build script. ``dollar``: a plain double-quoted string
    interpolates ``$x`` (Groovy, Kotlin; not Scala, whose plain strings do not).
    ``apostrophes``: a ``'`` opening no string is an operator (Scala's ``'symbol``),
    not a string never closed (Groovy).

    A fleet's scripts are tens of thousands of tokens, read by every `coord init`: the
    pattern is searched along the text (``finditer``: no call a token to match at a
    position), and only what it cannot say is walked here, the search then starting
    again after it: a ``/* */`` comment, a template string holding a quote, and a
    sign no token starts with."""
    pos, line = 0, 1
    new = tuple.__new__  # a Token without NamedTuple's __new__ (its defaults) in Python
    search = _TOKEN.finditer
    while True:
        # Every position matches (``other`` takes any sign): no text is skipped unseen.
        for m in search(text, pos):
            kind = m.lastindex
            if kind == _NAME:
                yield new(Token, ("name", m.group(kind), line, False))
            elif kind == _OP:
                yield new(Token, ("op", m.group(kind), line, False))
            elif kind == _NL:
                yield new(Token, ("nl", "\n", line, False))
                line += 1
            elif kind == _STR or kind == _TRIPLE:
                start = m.start(kind)
                raw = m.group(kind)
                if kind == _STR and '"' in raw[:2] and "${" in raw:
                    # a template whose expression holds a quote: the regex stopped inside it
                    close = _quoted_end(text, start + raw.index('"'))
                    if close < 0:
                        raise Unreadable("cannot read the script from here: a string never "
                                         "closed", line)
                    raw = text[start:close]
                value, interpolated = _string(raw, kind == _TRIPLE, dollar)
                yield new(Token, ("str", value, line, interpolated))
                line += raw.count("\n")
                if start + len(raw) != m.end():
                    pos = start + len(raw)
                    break  # searched again after the whole template
            elif kind == _LINE:
                pass  # a // comment, to the end of its line (its newline a token)
            elif kind == _BLOCK:
                at = m.start(kind)
                close = _block_end(text, at, nested_comments)
                if close < 0:
                    raise Unreadable("a /* comment never closed", line)
                line += text.count("\n", at, close)
                pos = close
                break  # searched again after the comment
            elif kind == _QUOTED:
                yield new(Token, ("name", m.group(kind)[1:-1], line, False))
            elif kind == _NUM:
                yield new(Token, ("num", m.group(kind), line, False))
            elif kind == _CONT:
                line += 1
            elif kind == _OTHER:  # no token starts here (after its blanks)
                token, pos, line = _unmatched(text, m.start(), line, dollar, apostrophes)
                yield token
                break
            else:  # the end of the text
                return
        else:
            return


def _unmatched(text: str, pos: int, line: int, dollar: bool, apostrophes: bool
               ) -> tuple[Token, int, int]:
    """Where the token pattern matched nothing (after its blanks): a template string the
    pattern could not close, or a sign no dependency is written with; the token and
    where the next starts, on which line. Else the script cannot be read from here."""
    while text[pos] in _BLANKS:
        pos += 1
    ch = text[pos]
    quote = text.find('"', pos, pos + 2)
    if quote >= 0 and text[pos:quote] in ("", "s", "f"):
        close = _quoted_end(text, quote)  # "...${"x\n"}...": a template holding it
        if close > 0:
            value, interpolated = _string(text[pos:close], False, dollar)
            return (Token("str", value, line, interpolated), close,
                    line + text.count("\n", pos, close))
    if (ch == "'" and apostrophes) or ord(ch) > 127 or ch == "\\":
        # A Scala symbol ('foo) or char, a non-ASCII name or sign: nothing a
        # dependency is written with; passed over.
        return Token("op", ch, line), pos + 1, line
    what = "a string never closed" if ch in "\"'" else f"unexpected {ch!r}"
    raise Unreadable(f"cannot read the script from here: {what}", line)


def interpolate(template: str, values: dict[str, str]) -> str | None:
    """An interpolated string's value, each ``$name``/``${name}``/``${a.b}`` taken from
    ``values``; None when one is not known (never a value with ``$`` left in it)."""
    unknown = False

    def sub(m: re.Match[str]) -> str:
        nonlocal unknown
        key = m.group(1) or m.group(2)
        if key in values:
            return values[key]
        unknown = True
        return ""

    out = re.sub(r"\$\{\s*([\w.]+)\s*\}|\$([A-Za-z_][\w]*)", sub, template)
    return None if unknown or "${" in out else out


_CLOSES = {"(": ")", "[": "]", "{": "}"}


def last_call_opens(toks: Sequence[Token]) -> int:
    """Where the ``(`` stands that the ``)`` ending ``toks`` closes (its index; -1 when
    none does): the argument list of the call, or the condition of the ``if``, that a
    statement ends with."""
    depth, i = 0, len(toks) - 1
    while i >= 0:
        if toks[i].is_op(")"):
            depth += 1
        elif toks[i].is_op("("):
            depth -= 1
            if depth == 0:
                break
        i -= 1
    return i


def balanced(toks: list[Token]) -> list[Token]:
    """``toks`` when every ``(``, ``[`` and ``{`` of the script is closed by its own
    bracket; else :class:`~coordination.fleet.manifests.base.Unreadable` at the line of
    the bracket to blame. A script read past a stray ``(`` (or cut short: a truncated
    file) would be read as one statement swallowing the rest, its projects and
    dependencies silently gone: the script is not read whole, and says where."""
    stack: list[Token] = []
    for tok in toks:
        if tok.kind != "op":
            continue
        if tok.text in _CLOSES:
            stack.append(tok)
        elif tok.text in (")", "]", "}"):
            if not stack:
                raise Unreadable(f"cannot read the script whole: a {tok.text!r} closes "
                                 "nothing opened (an unbalanced bracket)", tok.line)
            opened = stack.pop()
            if _CLOSES[opened.text] != tok.text:
                raise Unreadable(
                    f"cannot read the script whole: the {opened.text!r} opened here is "
                    f"closed by a {tok.text!r} at line {tok.line} (an unbalanced bracket)",
                    opened.line)
    if stack:
        opened = stack[-1]
        raise Unreadable(f"cannot read the script whole: the {opened.text!r} opened here is "
                         "never closed (an unbalanced bracket, or a truncated file)",
                         opened.line)
    return toks
