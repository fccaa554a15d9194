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

The file is beside the catalog, where anything that can write the checkout (a todo)
can write it, so it cannot aim `coord init` anywhere by itself (:func:`trusted`): a
root in the catalog's directory is scanned; one outside it only while the file is the
one coord last wrote (its digest is in the audit log, entry ``init.roots``: a hand
edit, or a coord before 0.6's file, no longer matches); the filesystem's root never
(name it on the command line: ``coord init /``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

from coordination.catalog.file.beside import FLEET_ROOTS, BesideDirectory, LinkedBeside, NotJSON
from coordination.catalog.audit import log as audit
from coordination.errors import UsageError


def roots_file(catalog_dir: Path) -> Path:
    return BesideDirectory(catalog_dir).fleet_roots.path


def remembered(catalog_dir: Path) -> tuple[list[Path], int | None]:
    """The roots (absolute, in the order first scanned) and the depth remembered
    beside the catalog in ``catalog_dir``; ``([], None)`` when none are."""
    handle = BesideDirectory(catalog_dir).fleet_roots
    file = handle.path
    try:
        doc = handle.read_json()
    except FileNotFoundError:
        return [], None
    except LinkedBeside:
        raise  # (names the file, and how to fix it)
    except NotJSON as exc:
        raise UsageError(f"{file}:{exc.lineno}: not JSON: {exc.msg}",
                         hint="fix or remove it (coord init DIR... writes it again)") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{file}: cannot read it: {exc}",
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


def remember(catalog_dir: Path, roots: Sequence[Path], depth: int,
             catalog: Path | None = None) -> list[str]:
    """Add ``roots`` to those remembered beside the catalog, with ``depth``; the
    roots as now written. Written whole to a temporary file, then renamed, and (with
    the ``catalog`` file) its digest recorded in the catalog's audit log (``init.roots``),
    which :func:`trusted` checks it against."""
    old, _ = remembered(catalog_dir)
    written = list(dict.fromkeys([_written(r, catalog_dir) for r in [*old, *roots]]))
    data = (json.dumps({"roots": written, "depth": depth}, indent=2) + "\n").encode()
    BesideDirectory(catalog_dir).fleet_roots.write(data)
    digest = hashlib.sha256(data).hexdigest()
    if catalog is not None and catalog.is_file() and audit.last_decisions(
            catalog, ROOTS_OP, [FLEET_ROOTS]).get(FLEET_ROOTS, {}).get("sha256") != digest:
        from coordination.catalog.file.store import CatalogStore  # lazy: pydantic

        CatalogStore(catalog).record_decision(
            who=audit.who(catalog_dir), op=ROOTS_OP, ids=[FLEET_ROOTS],
            decision={"roots": written, "depth": depth,
                      "sha256": digest})
    return written


#: The audit entry that vouches for the file (:func:`remember`, :func:`trusted`).
ROOTS_OP = "init.roots"


def _inside(root: Path, catalog_dir: Path) -> bool:
    real, base = os.path.realpath(root), os.path.realpath(catalog_dir)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def vouched(catalog_dir: Path, catalog: Path | None) -> bool | None:
    """Is the file the one coord last wrote (its digest the last ``init.roots`` entry's)?
    None: there is no file."""
    try:
        data = BesideDirectory(catalog_dir).fleet_roots.read()
    except OSError:
        return None
    if catalog is None:
        return False
    got = audit.last_decisions(catalog, ROOTS_OP, [FLEET_ROOTS]).get(FLEET_ROOTS, {})
    return got.get("sha256") == hashlib.sha256(data).hexdigest()


def trusted(catalog_dir: Path, catalog: Path | None) -> tuple[list[Path], int | None, list[str]]:
    """The remembered roots `coord init` may scan (see the module), the depth, and a
    note for each root it may not, naming why and how to scan it."""
    roots, depth = remembered(catalog_dir)
    file, notes, out = roots_file(catalog_dir), [], []
    ok: bool | None = None
    for r in roots:
        if os.path.realpath(r) == os.path.realpath(os.sep):
            notes.append(f"scan root {r} (remembered in {file}) is the filesystem's root: "
                         f"not scanned from the file; name it (coord init {r}) to scan it")
            continue
        if not _inside(r, catalog_dir):
            ok = vouched(catalog_dir, catalog) if ok is None else ok
            if not ok:
                notes.append(f"scan root {r} (remembered in {file}) is outside the catalog's "
                             "directory, and the file is not the one coord last wrote (no "
                             "audited coord init DIR remembered it: edited by hand?): not "
                             f"scanned; name it (coord init {r}) to scan and remember it")
                continue
        out.append(r)
    return out, depth, notes
