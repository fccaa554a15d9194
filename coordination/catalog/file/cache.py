"""The catalog file's bytes and the validated-catalog cache, without Pydantic.

Kept apart from :mod:`coordination.catalog.file.store` so that a read served from
the cache (:mod:`coordination.catalog.reads.cached`) imports neither Pydantic, the
models nor ruamel: importing those costs more than the whole warm read.

A cache entry is the validated catalog as JSON, in two files (see
:data:`SET_FIELDS`), named by the sha256 of the file's bytes and of
:func:`code_tag`, so an edit of the file or of the code that validates it makes
a new entry.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import importlib.util
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict, TypeGuard

from coordination.errors import CatalogError, Problem
from coordination.settings_defaults import DEFAULTS

if TYPE_CHECKING:
    from coordination.jsonable import JSONObject

#: COORD_MAX_CATALOG_BYTES's default: the settings' own (one table of defaults).
DEFAULT_MAX_CATALOG_BYTES = DEFAULTS.max_catalog_bytes
CACHE_ENTRIES = 32  # cache files kept (two per catalog); each edit makes new ones


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside: for building a whole catalog at once.

    Reading a catalog makes hundreds of thousands of objects (YAML nodes and
    marks, dicts, models) and none of them garbage; each allocation burst makes
    the collector walk the growing heap again, which cost more than half of a
    cold load (10,000 todos: 2.2 s with it, 1.0 s without). Reference counting
    still frees everything acyclic; the collector resumes on the way out.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def default_cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/coord``, else ``~/.cache/coord``; None if neither is known."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):
        return Path(xdg) / "coord"
    try:
        return Path.home() / ".cache" / "coord"
    except RuntimeError:
        return None


def max_catalog_bytes() -> int:
    """COORD_MAX_CATALOG_BYTES; the settings (and their validation) only when it is set."""
    if "COORD_MAX_CATALOG_BYTES" not in os.environ:
        return DEFAULT_MAX_CATALOG_BYTES
    # lazy: `coord todo list` imports this module, and the settings (pydantic)
    # only when the variable is set.
    from coordination.settings import get_settings

    return get_settings().max_catalog_bytes


def read_catalog_bytes(path: Path, cap: int) -> bytes:
    """The file's bytes: a regular file only (a FIFO would block for ever, a
    device like /dev/zero never ends), at most ``cap`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a directory"
                        if stat.S_ISDIR(st.st_mode) else "a device or socket")
                raise CatalogError(
                    Problem(f"not a regular file ({kind})", file=str(path)),
                    hint="point --file at the catalog's YAML file")
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read(cap + 1)
        finally:
            os.close(fd)
        if len(data) > cap:
            raise CatalogError(
                Problem(f"larger than {cap} bytes", file=str(path)),
                hint="raise COORD_MAX_CATALOG_BYTES if this really is your catalog")
        return data
    except FileNotFoundError:
        raise CatalogError(
            Problem("no such file", file=str(path)),
            hint="create it, pass --file PATH, or set COORD_ECOSYSTEM",
        ) from None
    except OSError as exc:
        raise CatalogError(Problem(f"cannot read: {exc.strerror}", file=str(path))) from None


@functools.lru_cache(maxsize=1)
def code_tag() -> str:
    """Changes whenever the code that validates could: pydantic's installed files and
    ours (read off the disk: importing them is what a cached read avoids, and
    importlib.metadata alone costs a cached read's whole budget)."""
    # this module is coordination/catalog/file/cache.py: the key covers the whole package
    return code_tag_of(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def code_tag_of(catalog_dir: str) -> str:
    """:func:`code_tag` for the catalog package at ``catalog_dir``: pydantic's version
    files and the size and mtime of each of :func:`code_files`."""
    parts = []
    for package, files in (("pydantic", ("version.py",)), ("pydantic_core", ("__init__.py",))):
        spec = importlib.util.find_spec(package)
        origin = Path(spec.origin).parent if spec and spec.origin else None
        for name in files:
            try:
                st = os.stat(origin / name) if origin else None
            except OSError:
                st = None
            parts.append(f"{package}:{st.st_size}:{st.st_mtime_ns}" if st else f"{package}:?")
    for path in code_files(catalog_dir):
        st = os.stat(path)
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def code_files(catalog_dir: str) -> list[str]:
    """Our source files that can change what validation says: every module of the catalog
    package (models, checks, loader and what they import, such as governance, patterns
    and selector syntax) and the base layer beneath it (the modules directly in
    ``coordination/``), which is all the layering lets the catalog import.

    Derived from the tree, not listed, so a module the validator starts to import is
    covered without anyone remembering to add it. A module that cannot affect validation
    (an edit, a report) only costs one cold load after it changes. About 70 files, paths
    as strings (pathlib objects would double the cost): about 0.3 ms, once per process.
    """
    files = []
    for directory, subdirs, names in os.walk(catalog_dir):
        subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
        files += [os.path.join(directory, n) for n in names if n.endswith(".py")]
    base = os.path.dirname(catalog_dir)
    files += [os.path.join(base, n) for n in os.listdir(base) if n.endswith(".py")]
    return sorted(files)


#: The two entries kept per catalog: the fields each item sets (what the store
#: loads its models from, so they know which keys an item has: edits read that),
#: and every field with its default (what a model-free read prints).
SET_FIELDS = "2"
ALL_FIELDS = "full"


def cache_file(cache_dir: Path | None, token: str, kind: str = ALL_FIELDS) -> Path | None:
    """Where the ``kind`` entry of the file whose bytes hash to ``token`` lives."""
    if cache_dir is None:
        return None
    key = hashlib.sha256(f"{code_tag()}\0{kind}\0{token}".encode()).hexdigest()
    return cache_dir / "catalog" / f"{key}.json"


def read_json(cache_dir: Path | None, token: str, kind: str = ALL_FIELDS) -> bytes | None:
    """The cached entry's JSON text; None when there is none (or it cannot be read)."""
    try:
        path = cache_file(cache_dir, token, kind)
        return None if path is None else path.read_bytes()
    except OSError:
        return None


class RepoData(TypedDict):
    name: str  # and every other field of a Repo


class MilestoneData(TypedDict):
    todos: list[str]  # and every other field of a Milestone


class PlanData(TypedDict):
    id: str
    milestones: list[MilestoneData]  # and every other field of a Plan


class CoordinationData(TypedDict):
    issues: list[JSONObject]
    plans: list[PlanData]
    todos: list[JSONObject]
    dependencies: list[JSONObject]


class CatalogData(TypedDict):
    """A validated catalog as ``Catalog.model_dump_json()`` writes it (every field):
    the keys the model-free reads look at are spelled out."""

    version: int
    repos: list[RepoData]
    resources: list[JSONObject]
    coordination: CoordinationData


def cached_data(cache_dir: Path | None, token: str) -> CatalogData | None:
    """The cached validated catalog as plain JSON data; None on a miss or a broken entry."""
    text = read_json(cache_dir, token)
    if text is None:
        return None
    try:
        with paused_gc():
            data = json.loads(text)
    except ValueError:
        return None
    return data if _is_catalog_data(data) else None


def _is_catalog_data(data: object) -> TypeGuard[CatalogData]:
    """What Catalog.model_dump_json() writes; anything else is not an entry of ours."""
    return (isinstance(data, dict) and data.get("version") == 1
            and isinstance(data.get("repos"), list) and isinstance(data.get("coordination"), dict))
