"""Ruby: ``*.gemspec`` and ``Gemfile``, read statically (a gemspec is Ruby: coord never
evaluates it). A gemspec's ``name`` (``s.name = "rack"``, or the first argument of
``Gem::Specification.new "sinatra", version do``) is provided; ``add_dependency`` and
``add_runtime_dependency`` are runtime, ``add_development_dependency`` dev, the version
strings after the name joined as written (``>= 3.0.0, < 4``).

A ``Gemfile``'s gems are typed by their ``group`` (``:development``, ``:test``, ``:doc``...
dev; others runtime); beside a gemspec the Gemfile is the development environment of
the gem (what the gem needs at runtime is its gemspec's), so every gem there is dev.
``gemspec`` (and ``gemspec path: "x"``) reads that gemspec; a gem with ``path:`` inside
the checkout is a gem of the repo (its gemspec read: sinatra's ``rack-protection``),
outside it is another repo the bundle is made with (a dependency by path). A name or
version computed by Ruby code is a note, never guessed."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from coordination.fleet.manifests.base import (PATH_ECOSYSTEM, Manifests, Requirement, inside,
                                               leaves, local_path, note, outside,
                                               read_member)
from coordination.fleet.manifests.python import group_type

_TOKEN = re.compile(r"""
    (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|%[qQ]?([{(\[<|!])(?P<body>.*?)[})\]>|!])
  | (?P<key>[A-Za-z_]\w*[?!]?):(?!:)
  | (?P<sym>:[A-Za-z_]\w*[?!]?|:"[^"]*")
  | (?P<name>[A-Za-z_][\w:]*[?!]?)
  | (?P<op>=>|[=,()\[\]{}|.]|\S)
""", re.X)
_DEPENDENCY = re.compile(r"\.add_(runtime_|development_)?dependency\b")


def _tokens(line: str) -> list[tuple[str, str]]:
    """(kind, text) of one line of Ruby: strings unquoted, symbols without their
    colon, ``key:`` keys; a ``#`` comment ends it."""
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(line):
        if line[pos].isspace():
            pos += 1
            continue
        if line[pos] == "#":
            break
        m = _TOKEN.match(line, pos)
        if m is None:
            break
        kind = m.lastgroup or "op"
        text = m.group()
        if m.group("str") is not None:
            kind = "str"
            body = m.group("body")
            text = body if body is not None else text[1:-1]
            if "#{" in text and not m.group().startswith("'"):
                kind = "istr"  # "#{...}": interpolated, not known
        elif kind == "key":
            text = text[:-1]
        elif kind == "sym":
            text = text[1:].strip('"')
        out.append((kind, text))
        pos = m.end()
    return out


def _args(toks: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """A call's positional arguments and its ``key: value`` options (a value's strings
    and symbols)."""
    positional: list[tuple[str, str]] = []
    options: dict[str, list[str]] = {}
    key: str | None = None
    for i, (kind, text) in enumerate(toks):
        if kind == "key":
            key = text
            options[key] = []
        elif kind == "sym" and i + 1 < len(toks) and toks[i + 1] == ("op", "=>"):
            key = text
            options[key] = []
        elif key is not None:
            if kind in ("str", "sym"):
                options[key].append(text)
            elif kind == "istr":
                options[key].append("")
        elif kind in ("str", "istr", "name"):
            positional.append((kind, text))
    return positional, options


def gemspec(out: Manifests, root: Path, rel: str, text: str) -> None:
    """One gemspec: its name, and its runtime and development dependencies."""
    name: str | None = None
    named_at: int | None = None
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if "Gem::Specification.new" in stripped:
            args = _tokens(stripped.split("Gem::Specification.new", 1)[1])
            if args and args[0][0] in ("op",) and args[0][1] == "(":
                args = args[1:]
            if args and args[0][0] == "str":
                name, named_at = args[0][1], n
            continue
        m = re.match(r"[A-Za-z_]\w*\.name\s*=\s*(.*)$", stripped)
        if m:
            toks = _tokens(m.group(1))
            if toks and toks[0][0] == "str":
                name, named_at = toks[0][1], n
            else:
                named_at = n
            continue
        dep = _DEPENDENCY.search(stripped)
        if dep is None:
            continue
        kind = dep.group(1)
        type_ = "dev" if kind == "development_" else "runtime"
        positional, _ = _args(_tokens(stripped[dep.end():]))
        if not positional or positional[0][0] != "str":
            note(out, rel, n, "a dependency named by a value coord cannot know: not read")
            continue
        versions = [t for k, t in positional[1:] if k == "str"]
        out.requires.append(Requirement(("gem", positional[0][1]), type_, rel, n,
                                        ", ".join(versions) or None))
    if name:
        out.provides.add(("gem", name))
    else:
        note(out, rel, named_at, "the gem's name is set from a value coord cannot know: "
             "it provides nothing coord can match")


_OPENS = re.compile(r"^(?:if|unless|case|while|until|begin|def|class|module)\b|\bdo\s*(?:\|[^|]*\|)?\s*$")


def gemfile(out: Manifests, root: Path, rel: str, text: str) -> None:
    """A Gemfile (see the module): its gems, typed by group, and the gemspecs it names."""
    beside_gemspec = any(p[0] == "gem" for p in out.provides) or bool(
        [f for f in out.files if f.endswith(".gemspec")])
    base = (root / rel).parent
    stack: list[list[str] | None] = []  # the groups each open block adds
    first = len(out.requires)
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if re.match(r"^end\b", stripped):
            if stack:
                stack.pop()
            continue
        toks = _tokens(stripped)
        if not toks:
            continue
        head = toks[0]
        if head == ("name", "group") or head == ("name", "groups"):
            groups = [t for k, t in toks[1:] if k in ("sym", "str")]
            stack.append(groups)
            continue
        if head == ("name", "gemspec"):
            _, options = _args(toks[1:])
            where = (options.get("path") or ["."])[0]
            _gemspecs(out, root, os.path.normpath(base / where), rel, n)
        elif head == ("name", "gem"):
            groups = [g for frame in stack if frame for g in frame]
            _gem(out, root, rel, n, toks[1:], groups, base)
        if _OPENS.search(stripped) and not re.search(r"\bend\s*$", stripped):
            stack.append(None)
    if beside_gemspec or any(f.endswith(".gemspec") for f in out.files):
        # the gem's development bundle (not the gemspecs it names: theirs stand)
        out.requires[first:] = [dataclasses.replace(r, type="dev")
                                if r.file == rel and r.type != "dev" else r
                                for r in out.requires[first:]]


def _gem(out: Manifests, root: Path, rel: str, n: int, toks: list[tuple[str, str]],
         groups: list[str], base: Path) -> None:
    positional, options = _args(toks)
    if not positional or positional[0][0] != "str":
        note(out, rel, n, "a gem named by a value coord cannot know: not read")
        return
    name = positional[0][1]
    groups = groups + options.get("group", []) + options.get("groups", [])
    type_ = "runtime"
    if groups and all(group_type(g, "runtime") == "dev" for g in groups):
        type_ = "dev"
    versions = [t for k, t in positional[1:] if k == "str"]
    path = None
    where = options.get("path")
    if where and where[0]:
        path = local_path(base, where[0] if where[0].startswith((".", "/", "~"))
                          else "./" + where[0])
        if path is not None and not leaves(os.path.relpath(path, root)) \
                and inside(path, root):
            _gemspecs(out, root, path, rel, n)  # a gem of this repo
            return
        outside(out, rel, n, f"gem {name!r} path {where[0]!r}")
        if path is not None:
            out.requires.append(Requirement((PATH_ECOSYSTEM, path), type_, rel, n, None, path))
            return
    out.requires.append(Requirement(("gem", name), type_, rel, n, ", ".join(versions) or None))


def _gemspecs(out: Manifests, root: Path, directory: str, rel: str, n: int) -> None:
    """The gemspecs in ``directory`` (inside the checkout), each read once."""
    try:
        names = sorted(e.name for e in os.scandir(directory)
                       if e.name.endswith(".gemspec") and e.is_file(follow_symlinks=False))
    except OSError:
        return
    for name in names:
        read_member(out, root, Path(directory) / name,
                    lambda member_rel, text: gemspec(out, root, member_rel, text),
                    f" (named at {rel}:{n})")
