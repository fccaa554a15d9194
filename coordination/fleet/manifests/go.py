"""go.mod: no parser in the standard library, so read by its own line grammar
(directives, ``( ... )`` blocks, ``//`` comments, quoted paths). ``replace`` by another
module moves the requirement to it; ``replace`` by a local path points it at the
checkout there. go.work (same grammar): each ``use`` directory inside the checkout is
a module the repo provides (its go.mod read as the top one is); one outside it is
another repo the workspace builds with: a dependency on it, by path."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

from coordination.fleet.manifests.base import (PATH_ECOSYSTEM, Manifests, Requirement,
                                               read_text, unreadable)


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


def go_work(out: Manifests, root: Path, rel: str, text: str) -> None:
    base = str(root)
    for n, directive, args in go_mod_lines(text):
        if directive != "use" or not args:
            continue
        member = os.path.normpath(root / args[0])
        manifest = Path(member) / "go.mod"
        member_rel = os.path.relpath(manifest, root)
        try:
            member_text = read_text(manifest)
        except (OSError, UnicodeDecodeError) as exc:
            problem = unreadable(member_rel, exc)
            out.problems.append(dataclasses.replace(
                problem, message=f"{problem.message} (used at {rel}:{n})"))
            continue
        if os.path.commonpath([member, base]) == base:
            if member != base and member_text is not None:  # the top go.mod is read already
                go_mod(out, Path(member), member_rel, member_text)
            continue
        module = next((a[0] for _, d, a in go_mod_lines(member_text or "")
                       if d == "module" and a), None)
        out.requires.append(Requirement(("go", module) if module else (PATH_ECOSYSTEM, member),
                                        "build", rel, n, None, member))
