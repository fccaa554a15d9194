"""go.mod: no parser in the standard library, so read by its own line grammar
(directives, ``( ... )`` blocks, ``//`` comments, quoted paths). ``replace`` by another
module moves the requirement to it; ``replace`` by a local path points it at the
checkout there."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from coordination.fleet.manifests.base import Manifests, Requirement


def go_mod_lines(text: str) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, directive, arguments)`` of each statement of a go.mod, blocks
    (``require ( ... )``) unrolled, comments dropped, quoted paths unquoted."""
    block: str | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
                continue
            yield n, block, _go_words(line)
            continue
        words = _go_words(line)
        if len(words) == 2 and words[1] == "(":
            block = words[0]
            continue
        yield n, words[0], words[1:]


def _go_words(line: str) -> list[str]:
    out: list[str] = []
    for w in line.split():
        out.append(w[1:-1] if len(w) >= 2 and w[0] == w[-1] and w[0] in "\"`" else w)
    return out


def go_mod(out: Manifests, root: Path, rel: str, text: str) -> None:
    requires: dict[str, tuple[int, str | None]] = {}
    replaces: dict[str, tuple[str, str | None]] = {}
    for n, directive, args in go_mod_lines(text):
        if directive == "module" and args:
            out.provides.add(("go", args[0]))
        elif directive == "require" and args:
            requires.setdefault(args[0], (n, args[1] if len(args) > 1 else None))
        elif directive == "replace" and "=>" in args:
            at = args.index("=>")
            old, to = args[0], args[at + 1:]
            if to:
                replaces[old] = (to[0], to[1] if len(to) > 1 else None)
    for module, (n, version) in requires.items():
        target, path = module, None
        if module in replaces:
            into, into_version = replaces[module]
            if into.startswith((".", "/")):
                # A local replacement: the module is the checkout at that path.
                path = os.path.normpath(root / into)
            else:
                target, version = into, into_version or version
        out.requires.append(Requirement(("go", target), "runtime", rel, n, version, path))
