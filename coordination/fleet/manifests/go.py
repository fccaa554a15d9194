"""go.mod: no parser in the standard library, so read by its own line grammar
(directives, ``( ... )`` blocks, ``//`` comments, quoted paths), as strictly as the go
command reads it: a directive it does not know (``modul``), one without its
arguments, or a block never closed makes the whole file :class:`Unreadable` (at that
line), never read as having no module or no requirements. A require marked
``// indirect`` is kept as such. ``replace`` by another module moves the requirement
to it; ``replace`` by a local path points it at the checkout there.

A repo may hold more than one module: go.work's ``use`` directories inside the
checkout, and go.mod files below its top (``common/assets/go.mod``), are modules the
repo provides, their requirements its own. A ``use`` outside the checkout is another
repo the workspace builds with: a dependency on it by path, its go.mod not read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from coordination.fleet.manifests.base import (PATH_ECOSYSTEM, Manifests, Requirement,
                                               Unreadable, as_dev, incidental, inside, leaves,
                                               outside, read_member)

#: The directives the go command knows, and how many arguments each takes at least
#: (in a block, per line).
GO_MOD = {"module": 1, "go": 1, "toolchain": 1, "godebug": 1, "require": 2, "exclude": 2,
          "replace": 3, "retract": 1, "tool": 1, "ignore": 1}
GO_WORK = {"go": 1, "toolchain": 1, "godebug": 1, "use": 1, "replace": 3}
#: Directives that may open a ``( ... )`` block.
_BLOCKS = frozenset({"require", "exclude", "replace", "retract", "tool", "ignore", "godebug",
                     "use"})


def go_mod_lines(text: str, known: dict[str, int] | None = None
                 ) -> Iterator[tuple[int, str, list[str], str]]:
    """``(line, directive, arguments, comment)`` of each statement of a go.mod (or
    go.work, ``known=GO_WORK``), blocks (``require ( ... )``) unrolled, quoted paths
    unquoted. :class:`Unreadable` at the first line the go command would refuse."""
    known = GO_MOD if known is None else known
    block: tuple[str, int] | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        code, _, comment = raw.partition("//")
        line = code.strip()
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
                continue
            words = _go_words(line)
            _arity(block[0], words, known, n)
            yield n, block[0], words, comment.strip()
            continue
        words = _go_words(line)
        if words[0] not in known:
            raise Unreadable(f"unknown directive {words[0][:40]!r}", n)
        if len(words) == 2 and words[1] == "(" and words[0] in _BLOCKS:
            block = (words[0], n)
            continue
        if "(" in words or ")" in words:
            raise Unreadable(f"malformed {words[0]} block", n)
        _arity(words[0], words[1:], known, n)
        yield n, words[0], words[1:], comment.strip()
    if block is not None:
        raise Unreadable(f"{block[0]} block opened here is never closed with ')'", block[1])


def _arity(directive: str, args: list[str], known: dict[str, int], n: int) -> None:
    if len(args) < known[directive] or (directive == "replace" and "=>" not in args):
        raise Unreadable(f"malformed {directive} (too few words)", n)


def _go_words(line: str) -> list[str]:
    out: list[str] = []
    for w in line.split():
        out.append(w[1:-1] if len(w) >= 2 and w[0] == w[-1] and w[0] in "\"`" else w)
    return out


def _indirect(comment: str) -> bool:
    """The go command's own test: the comment is ``indirect`` or starts ``indirect;``."""
    return comment == "indirect" or comment.startswith("indirect;")


def go_mod(out: Manifests, root: Path, rel: str, text: str) -> None:
    requires: dict[str, tuple[int, str | None, bool]] = {}
    replaces: dict[str, tuple[str, str | None]] = {}
    module = None
    for n, directive, args, comment in go_mod_lines(text):
        if directive == "module":
            module = args[0]
        elif directive == "require":
            requires.setdefault(args[0], (n, args[1], _indirect(comment)))
        elif directive == "replace":
            at = args.index("=>")
            old, to = args[0], args[at + 1:]
            if to:
                replaces[old] = (to[0], to[1] if len(to) > 1 else None)
    if module is None:
        raise Unreadable("no module directive (every go.mod names its module)")
    out.provides.add(("go", module))
    base = (root / rel).parent
    for mod, (n, version, indirect) in requires.items():
        target, path = mod, None
        if mod in replaces:
            into, into_version = replaces[mod]
            if into.startswith((".", "/")):
                # A local replacement: the module is the checkout at that path.
                path = os.path.normpath(base / into)
            else:
                target, version = into, into_version or version
        out.requires.append(Requirement(("go", target), "runtime", rel, n, version, path,
                                        indirect))


def go_work(out: Manifests, root: Path, rel: str, text: str) -> None:
    for n, directive, args, _ in go_mod_lines(text, GO_WORK):
        if directive != "use":
            continue
        if leaves(args[0]) or not inside(root / args[0], root):
            # Another repo the workspace builds with: a dependency by path; nothing of
            # it is read (it is not this checkout's).
            member = os.path.normpath(root / args[0])
            outside(out, rel, n, f"use {args[0]}")
            out.requires.append(Requirement((PATH_ECOSYSTEM, member), "build", rel, n, None,
                                            member))
            continue
        module_dir(out, root, Path(os.path.normpath(root / args[0])), f" (used at {rel}:{n})")


def module_dir(out: Manifests, root: Path, directory: Path, why: str = "") -> None:
    """Read the go.mod of ``directory`` (a module inside the checkout), once. A module
    in an example or test directory needs what it requires as ``dev``."""
    first = len(out.requires)
    read_member(out, root, directory / "go.mod",
                lambda member_rel, text: go_mod(out, root, member_rel, text), why)
    if incidental(os.path.relpath(directory / "go.mod", root)):
        as_dev(out, first)


#: Directories the go command never looks for packages in, and others no module of
#: the repo is in.
_NOT_MODULES = frozenset({"testdata", "vendor", "node_modules"})
#: How far below a checkout's top nested go.mod files are looked for.
NESTED_DEPTH = 5


def nested(out: Manifests, root: Path) -> None:
    """The go.mod files below the checkout's top (``common/assets/go.mod``): modules
    the repo holds. Hidden, ``_``-prefixed, ``testdata`` and ``vendor`` directories
    are skipped as the go command skips them, symlinks never followed, and a
    directory holding its own ``.git`` is another checkout."""
    stack: list[tuple[str, int]] = [(str(root), 0)]  # paths as text: a Path each cost more
    while stack:
        directory, level = stack.pop()
        try:
            with os.scandir(directory) as it:
                # by name, walked in that order (a repo's first module first), whatever
                # order the filesystem lists them in
                entries = sorted(it, key=lambda e: e.name, reverse=True)
        except OSError:
            continue
        if level > 0:
            names = {e.name for e in entries}
            if ".git" in names:
                continue
            if "go.mod" in names:
                module_dir(out, root, Path(directory))
        if level >= NESTED_DEPTH:
            continue
        for e in entries:
            if (e.name[0] in "._" or e.name in _NOT_MODULES
                    or not e.is_dir(follow_symlinks=False)):
                continue
            stack.append((e.path, level + 1))


def nested_only(root: Path, names: set[str]) -> bool:
    """Does a checkout with no go.mod or go.work at its top hold Go modules one level
    down (hashicorp/go-secure-stdlib: ``awsutil/go.mod``, ``base62/go.mod``...)? One
    ``stat`` per name at the top."""
    top = str(root)
    for n in names:
        if n[0] in "._" or n in _NOT_MODULES:
            continue
        try:
            os.stat(f"{top}/{n}/go.mod")
            return True
        except OSError:  # no such file, or n is no directory
            continue
    return False
