"""One Gradle build script (Groovy or Kotlin DSL) read as statements, never run.

:func:`statements` cuts a script's tokens into statements, each with the blocks it is
written in (``subprojects > dependencies``, ``kotlin > sourceSets > jvmTest >
dependencies``): a statement ends at a newline outside brackets (unless the line ends
with an operator, or the next one starts with ``.``, as a chain), at ``;``, and where a
block opens or closes. A block's name is what its head calls (``dependencies``,
``subprojects``; ``create("jvmTest")`` and ``val jvmTest by getting`` are ``jvmTest``).

:class:`Script` then takes what a build says of dependencies and coordinates from them:
the statements of a ``dependencies`` block (a configuration and its notations), the
project's ``group``, a publication's ``artifactId``, the plugins applied, and the
values a notation may name (``ext``, ``val``/``def`` strings, ``gradle.properties``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from coordination.fleet.manifests.scan import Token, interpolate, last_call_opens

#: Blocks that do not change what their statements are: a ``dependencies`` block's
#: ``if`` or ``forEach`` still declares dependencies.
TRANSPARENT = frozenset({"if", "else", "when", "for", "forEach", "each", "all", "run",
                         "apply", "with", "also", "let", "try", "catch", "finally",
                         "configureEach", "afterEvaluate", "withPlugin", "withId"})
#: Ops ending a line that continue the statement on the next.
_CONTINUES = frozenset({"=", ",", ".", "+", "-", "*", "/", "&&", "||", "?:", "->", ":",
                        "==", "!=", "?.", "(", "["})
_CHAIN = frozenset({".", "?.", "?:", "&&", "||"})
_OPEN = {"(": ")", "[": "]", "{": "}"}
_NAMING_CALLS = frozenset({"create", "register", "named", "getByName", "maybeCreate",
                           "getting", "creating"})


@dataclass(frozen=True)
class Statement:
    tokens: tuple[Token, ...]
    blocks: tuple[str, ...]  # the blocks it is in, outermost first
    opens: bool = False  # its head opens a block (the statement is that head)

    @property
    def line(self) -> int:
        return self.tokens[0].line if self.tokens else 0


def block_name(head: list[Token]) -> str:
    """The name of the block ``head`` opens."""
    toks = [t for t in head if not t.is_name("val", "var", "def", "lazy", "private",
                                              "internal", "override")]
    if not toks:
        return ""
    if toks[0].is_name("if", "else"):
        return "if"
    for i, t in enumerate(toks[:-1]):  # val jvmTest by getting {
        if t.kind == "name" and toks[i + 1].is_name("by"):
            return t.text
    if toks[-1].is_op(")"):
        i = last_call_opens(toks)
        first_arg = toks[i + 1] if i + 1 < len(toks) else None
        j = i - 1
        if j >= 0 and toks[j].is_op(">"):  # register<Copy>("x")
            while j >= 0 and not toks[j].is_op("<"):
                j -= 1
            j -= 1
        call = toks[j].text if j >= 0 and toks[j].kind == "name" else ""
        if call in _NAMING_CALLS and first_arg is not None and first_arg.kind == "str":
            return first_arg.text
        return call
    names = [t.text for t in toks if t.kind == "name"]
    return names[-1] if names else ""


def statements(toks: Iterable[Token]) -> Iterator[Statement]:
    """The statements of a script, each with the blocks it is in."""
    blocks: list[str] = []
    cur: list[Token] = []
    brackets: list[str] = []  # open (, [ and { inside an expression
    pending = False  # a newline ended ``cur``, unless the next line continues it
    for tok in toks:
        if tok.kind == "nl":
            if not brackets and cur:
                last = cur[-1]
                pending = not (last.kind == "op" and last.text in _CONTINUES)
            continue
        if pending:
            pending = False
            if not (tok.kind == "op" and tok.text in _CHAIN):
                yield Statement(tuple(cur), tuple(blocks))
                cur = []
        if tok.kind == "op" and not brackets:
            if tok.text == "{":
                yield Statement(tuple(cur), tuple(blocks), opens=True)
                blocks.append(block_name(cur))
                cur = []
                continue
            if tok.text == "}":
                if cur:
                    yield Statement(tuple(cur), tuple(blocks))
                    cur = []
                if blocks:
                    blocks.pop()
                continue
            if tok.text == ";":
                if cur:
                    yield Statement(tuple(cur), tuple(blocks))
                    cur = []
                continue
        if tok.kind == "op":
            if tok.text in _OPEN:
                brackets.append(_OPEN[tok.text])
            elif brackets and tok.text == brackets[-1]:
                brackets.pop()
        cur.append(tok)
    if cur:
        yield Statement(tuple(cur), tuple(blocks))


def split_args(toks: tuple[Token, ...] | list[Token]) -> list[list[Token]]:
    """Top-level comma-separated parts of an argument list."""
    out: list[list[Token]] = [[]]
    depth = 0
    for t in toks:
        if t.kind == "op" and t.text in _OPEN:
            depth += 1
        elif t.kind == "op" and t.text in (")", "]", "}"):
            depth -= 1
        elif t.is_op(",") and depth == 0:
            out.append([])
            continue
        out[-1].append(t)
    return [a for a in out if a]


def call_args(toks: tuple[Token, ...] | list[Token], at: int) -> tuple[list[Token], int]:
    """The tokens inside the parentheses opening at ``toks[at]``, and the index after
    the closing one."""
    depth, i = 0, at
    while i < len(toks):
        t = toks[i]
        if t.kind == "op" and t.text in _OPEN:
            depth += 1
        elif t.kind == "op" and t.text in (")", "]", "}"):
            depth -= 1
            if depth == 0:
                return list(toks[at + 1:i]), i + 1
        i += 1
    return list(toks[at + 1:]), len(toks)


def dotted(toks: list[Token]) -> str | None:
    """``a.b.c`` when the tokens are exactly a dotted name (``libs.okhttp.client``)."""
    if not toks or toks[0].kind != "name":
        return None
    parts = [toks[0].text]
    i = 1
    while i + 1 < len(toks) and toks[i].is_op(".", "?.") and toks[i + 1].kind == "name":
        parts.append(toks[i + 1].text)
        i += 2
    if i != len(toks):
        # a trailing .get() / () keeps the name (libs.x.get())
        rest = toks[i:]
        if not (len(rest) == 2 and rest[0].is_op("(") and rest[1].is_op(")")):
            return None
    return ".".join(parts)


def string_of(toks: list[Token], values: dict[str, str]) -> str | None:
    """The value of a string expression: one string (interpolated from ``values``), a
    name holding one, or ``a + b``; None when not known."""
    parts: list[str] = []
    expect_operand = True
    for t in toks:
        if expect_operand:
            if t.kind == "str":
                got = interpolate(t.text, values) if t.interpolated else t.text
            elif t.kind == "name":
                got = values.get(t.text)
            else:
                return None
            if got is None:
                return None
            parts.append(got)
            expect_operand = False
        elif t.is_op("+"):
            expect_operand = True
        else:
            return None
    return "".join(parts) if parts and not expect_operand else None


@dataclass
class Script:
    """What one build script says, read statement by statement."""

    #: (configuration, notation tokens, line, blocks) of each dependency statement.
    deps: list[tuple[str, list[Token], int, tuple[str, ...]]] = field(default_factory=list)
    #: Where the project's group is set: (value, the blocks it is in: () at the top,
    #: ("allprojects",), ("subprojects",)).
    groups: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    artifact: str | None = None  # a publication's artifactId, coordinates(...)
    plugins: list[str] = field(default_factory=list)
    #: Values a notation may name: ext properties, ``val``/``def`` strings, maps
    #: flattened (``deps.okhttp``).
    values: dict[str, str] = field(default_factory=dict)
    #: (line, what) of statements setting something read that could not be known.
    unknown: list[tuple[int, str]] = field(default_factory=list)


def in_dependencies(blocks: tuple[str, ...]) -> int | None:
    """The index of the ``dependencies`` block a statement in ``blocks`` declares
    dependencies of (only transparent blocks between), or None."""
    for i in range(len(blocks) - 1, -1, -1):
        if blocks[i] == "dependencies":
            return i
        if blocks[i] not in TRANSPARENT:
            return None
    return None



def read_script(toks: Iterable[Token], values: dict[str, str] | None = None) -> Script:
    """Read one script; ``values``: what it may name from outside (gradle.properties,
    the root project's ext)."""
    out = Script(values=dict(values or {}))
    for st in statements(toks):
        if not st.tokens:
            continue
        if in_dependencies(st.blocks) is not None:
            # a head opening a block there is a dependency with its closure
            # (implementation("x") { exclude(...) }), or an if/forEach: no notation
            if not st.opens or _is_dependency(st.tokens):
                _dependency(out, st)
            continue
        _setting(out, st)
    return out


def _is_dependency(toks: tuple[Token, ...]) -> bool:
    """A dependency statement whose closure follows (``implementation("x") { ... }``)."""
    return len(toks) > 1 and (toks[1].is_op("(") or toks[1].kind in ("str", "name"))


def _dependency(out: Script, st: Statement) -> None:
    toks = st.tokens
    first = toks[0]
    if first.kind == "str" and len(toks) > 1 and toks[1].is_op("("):
        conf = first.text  # Kotlin: "friendsApi"(projects.okhttp)
    elif first.kind == "name" and len(toks) > 1 and not toks[1].is_op(".", "=", "?.", "<"):
        conf = first.text
    else:
        return  # add(...), a val, a call on something: no dependency notation
    if conf in ("val", "var", "def", "if", "else", "for", "when", "return", "constraints",
                "components", "modules", "exclude"):
        return
    if toks[1].is_op("("):
        args, _ = call_args(toks, 1)
    else:
        args = list(toks[1:])
    if conf == "add":  # add("dokka", project(":okhttp")): the configuration, then the notation
        parts = split_args(args)
        if len(parts) < 2 or len(parts[0]) != 1 or parts[0][0].kind != "str":
            return
        conf = parts[0][0].text
        args = [t for part in parts[1:2] for t in part]
    out.deps.append((conf, args, first.line, st.blocks))


def _setting(out: Script, st: Statement) -> None:
    toks = list(st.tokens)
    first = toks[0]
    top = tuple(b for b in st.blocks if b not in TRANSPARENT)
    # plugins { id("x") / id 'x' / kotlin("jvm") / alias(libs.plugins.x) }; apply plugin: 'x'
    if top and top[-1] == "plugins" and first.kind == "name" and len(toks) > 1:
        arg = toks[2] if toks[1].is_op("(") and len(toks) > 2 else toks[1]
        if first.text == "id" and arg.kind == "str":
            out.plugins.append(arg.text)
        elif first.text == "kotlin" and arg.kind == "str":
            out.plugins.append("org.jetbrains.kotlin." + arg.text)
        elif first.text == "alias":
            name = dotted(call_args(toks, 1)[0]) if toks[1].is_op("(") else None
            if name:
                out.plugins.append("alias:" + name)
        elif first.kind == "name" and first.text.startswith(("java", "application")):
            out.plugins.append(first.text)
        return
    if first.is_name("apply"):
        for i, t in enumerate(toks[:-2]):
            if t.is_name("plugin") and toks[i + 1].is_op(":", "=") and toks[i + 2].kind == "str":
                out.plugins.append(toks[i + 2].text)
        return
    _values(out, st, toks, top)
    _coordinates(out, st, toks, top)


def _values(out: Script, st: Statement, toks: list[Token], top: tuple[str, ...]) -> None:
    """``ext.x = "v"``, ``ext { x = "v" }``, ``val x = "v"``, ``def x = "v"``,
    ``ext.deps = [okhttp: "..."]``, ``ext["x"] = "v"``, ``val x by extra("v")``."""
    i = 0
    if toks[0].is_name("val", "var", "def", "const", "String"):
        i = 1
        while i < len(toks) and toks[i].is_name("val", "var", "String"):
            i += 1
    name_toks: list[Token] = []
    while i < len(toks) and not toks[i].is_op("=", ":") and not toks[i].is_name("by"):
        name_toks.append(toks[i])
        i += 1
    if i >= len(toks):
        return
    if toks[i].is_op(":") and i + 1 < len(toks) and toks[i + 1].kind == "name":
        # Kotlin ``val x: String = "v"``: skip the type
        i += 2
        while i < len(toks) and not toks[i].is_op("="):
            i += 1
        if i >= len(toks):
            return
    rhs = toks[i + 1:]
    if toks[i].is_name("by"):  # val x by extra("v")
        if rhs and rhs[0].is_name("extra") and len(rhs) > 1 and rhs[1].is_op("("):
            rhs = call_args(rhs, 1)[0]
        else:
            return
    key = _value_key(name_toks)
    if key is None or (top and top[-1] not in ("ext", "extra", "buildscript", "allprojects")
                       and not toks[0].is_name("val", "var", "def", "const")):
        return
    if rhs and rhs[0].is_op("["):  # a Groovy map literal
        _map_values(out, key, call_args(rhs, 0)[0])
        return
    value = string_of(rhs, out.values)
    if value is not None:
        out.values[key] = value


def _value_key(name_toks: list[Token]) -> str | None:
    name = dotted(name_toks)
    if name is None:
        # ext["x"] / extra["x"]
        if (len(name_toks) == 4 and name_toks[0].is_name("ext", "extra")
                and name_toks[1].is_op("[") and name_toks[2].kind == "str"):
            return name_toks[2].text
        return None
    for prefix in ("rootProject.ext.", "project.ext.", "ext.", "extra."):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name if "." not in name else None


def _map_values(out: Script, key: str, body: list[Token]) -> None:
    for entry in split_args(body):
        if len(entry) >= 3 and entry[0].kind in ("name", "str") and entry[1].is_op(":"):
            sub = f"{key}.{entry[0].text}"
            if entry[2].is_op("["):
                _map_values(out, sub, call_args(entry, 2)[0])
            else:
                value = string_of(entry[2:], out.values)
                if value is not None:
                    out.values[sub] = value


def _coordinates(out: Script, st: Statement, toks: list[Token], top: tuple[str, ...]) -> None:
    first = toks[0]
    name = dotted(toks[:3]) if len(toks) >= 3 else None
    # group = "x" / group "x" / project.group = "x", at the top or for all projects
    if first.is_name("group") or name in ("project.group",):
        at = 2 if name == "project.group" else 0
        rest = toks[at + 1:]
        if rest and rest[0].is_op("="):
            rest = rest[1:]
        if top in ((), ("allprojects",), ("subprojects",)) and rest:
            value = string_of(rest, out.values)
            if value is not None:
                out.groups.append((value, top))
            else:
                out.unknown.append((first.line, "group"))
        return
    if "publishing" in top or "publications" in top:
        if first.is_name("artifactId") and len(toks) > 2 and toks[1].is_op("="):
            value = string_of(toks[2:], out.values)
            if value is not None:
                out.artifact = value
        elif first.is_name("groupId") and len(toks) > 2 and toks[1].is_op("="):
            value = string_of(toks[2:], out.values)
            if value is not None:
                out.groups.append((value, ()))
        return
    if first.is_name("coordinates") and len(toks) > 1 and toks[1].is_op("("):
        args = split_args(call_args(toks, 1)[0])
        got = [string_of(a, out.values) for a in args]
        if len(got) >= 2 and got[0] and got[1]:
            out.groups.append((got[0], ()))
            out.artifact = got[1]
