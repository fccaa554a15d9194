"""The directories `coord init DIR...` scanned, remembered beside the catalog.

``coord init --check`` (and ``coord init``) without DIRs scans them again, with the
depth last used, so a repo cloned into one of them later is found, wherever the
catalog is. They are kept in ``.coord/fleet.json`` beside the catalog (where its
schema is), not in the catalog: they are where this machine keeps the checkouts,
not a fact about the fleet every clone of the catalog shares.

    {"roots": [".", "../work", "/srv/src"], "depth": 3}

A root is written relative to the catalog's directory when below it, else absolute.
Each `coord init DIR...` adds its DIRs to those remembered (never removes one: edit
the file for that). An unreadable or malformed file is an error naming it and the
field, never silently ignored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from coordination.errors import UsageError

ROOTS_FILE = ".coord/fleet.json"


def roots_file(catalog_dir: Path) -> Path:
    return catalog_dir / ROOTS_FILE


def remembered(catalog_dir: Path) -> tuple[list[Path], int | None]:
    """The roots (absolute, in the order first scanned) and the depth remembered
    beside the catalog in ``catalog_dir``; ``([], None)`` when none are."""
    file = roots_file(catalog_dir)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{file}: cannot read it: {exc}",
                         hint="fix or remove it (coord init DIR... writes it again)") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{file}:{exc.lineno}: not JSON: {exc.msg}",
                         hint="fix or remove it (coord init DIR... writes it again)") from None
    roots = doc.get("roots") if isinstance(doc, dict) else None
    depth = doc.get("depth") if isinstance(doc, dict) else None
    if not isinstance(roots, list) or not all(isinstance(r, str) and r for r in roots):
        raise UsageError(f"{file}: roots: a list of directories expected",
                         hint='{"roots": [".", "/srv/src"], "depth": 3}')
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int)
                              or not 0 <= depth <= 20):
        raise UsageError(f"{file}: depth: a whole number from 0 to 20 expected",
                         hint='{"roots": [".", "/srv/src"], "depth": 3}')
    out = [Path(os.path.normpath(catalog_dir / Path(r).expanduser())) for r in roots]
    return out, depth


def _written(root: Path, catalog_dir: Path) -> str:
    real, base = os.path.realpath(root), os.path.realpath(catalog_dir)
    if real == base:
        return "."
    if real.startswith(base.rstrip(os.sep) + os.sep):
        return Path(os.path.relpath(real, base)).as_posix()
    return os.path.normpath(os.path.abspath(root))


def remember(catalog_dir: Path, roots: Sequence[Path], depth: int) -> list[str]:
    """Add ``roots`` to those remembered beside the catalog, with ``depth``; the
    roots as now written. Written whole to a temporary file, then renamed."""
    old, _ = remembered(catalog_dir)
    written = list(dict.fromkeys([_written(r, catalog_dir) for r in [*old, *roots]]))
    file = roots_file(catalog_dir)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"roots": written, "depth": depth}, indent=2) + "\n",
                   encoding="utf-8")
    os.replace(tmp, file)
    return written
