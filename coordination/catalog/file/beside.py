"""The files coord keeps beside a catalog: named, read and written in one place.

Each lives beside the *real* catalog file (symlinks resolved, so a catalog reached
through a link shares them with the file it names, and moves with it), hidden: either
``.<catalog name>.coord.<what>`` (one per catalog: several catalogs may share a
directory) or under the directory's ``.coord`` (one per directory). No other module
spells these names, so a new file beside the catalog is added here, where `.gitignore`
advice, `coord init` and the audit's decisions can see them all.

As rq's registries own their keys, :class:`Beside` owns these files: who reads or writes
one asks it for a handle (:class:`BesideFile`, or :class:`BesideDir` for a directory of
records: sweep markers, change mirrors, anchors) and calls its methods, and nothing
else opens them (tests/unit/catalog/test_beside.py holds the rest of the package to
both). The handles keep one way of doing each thing:

- a write is atomic and durable: a temporary file in the same directory (created
  exclusively, never through a link), fsynced, renamed over the file, the directory
  fsynced; a failed write leaves the old file as it was;
- a read that finds no JSON says which file and where (:class:`NotJSON`, a ValueError);
- a file, or a directory of records, that is a symlink is never followed: reads and
  writes refuse it, naming the path (:class:`LinkedBeside`, an OSError: a reader that
  treats an unreadable file as absent still does). Anyone who can write the checkout
  can put a file here; a link would aim coord's reads and writes somewhere else.

The lock (:class:`~coordination.catalog.file.store.CatalogStore` opens it and locks it
with ``flock``, never writes it) and the embedded server's directory (whose files the server and
:mod:`coordination.connection.embedded_server` keep, a private 0700 directory checked
there) stay plain paths: a handle would add nothing to them.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

from coordination.errors import UsageError

#: The part of every per-catalog file's name after ``.<catalog name>``.
MARK = ".coord."
#: Per-directory files, under the catalog's directory.
ANCHORS = ".coord.anchors"
SCHEMA = ".coord/schema.json"
FLEET_ROOTS = ".coord/fleet.json"
FREEZE = ".coord/freeze.json"


#: Open flags that never follow a link at the last part of the path.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class LinkedBeside(UsageError, OSError):
    """A file (or directory of records) beside the catalog is a symlink: not followed.
    An OSError too, so a reader that takes an unreadable file for an absent one still
    does; where it reaches the command line, exit 2 and the path."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} is a symlink: coord does not follow a link among the "
                         "files beside a catalog",
                         hint="remove the link (coord writes the file again where it needs it)")
        self.errno, self.strerror, self.filename = errno.ELOOP, self.message, str(path)
        self.path = path


class NotJSON(UsageError, ValueError):
    """A file beside the catalog that holds no JSON: which, and where in it. A
    ValueError too, as :func:`json.loads`' own error is."""

    def __init__(self, path: Path, exc: json.JSONDecodeError) -> None:
        super().__init__(f"{path}:{exc.lineno}:{exc.colno}: not JSON: {exc.msg}",
                         hint="fix or remove it")
        self.path, self.lineno, self.colno, self.msg = path, exc.lineno, exc.colno, exc.msg


def _refuse_link(path: Path) -> None:
    """Raise :class:`LinkedBeside` when ``path`` is a symlink (absent is fine)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise LinkedBeside(path)


def fsync_dir(directory: Path) -> None:
    """Make a creation or rename in ``directory`` durable (where the platform and
    filesystem allow it: not every one does)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass(frozen=True)
class BesideFile:
    """One file beside the catalog: the only code that opens it."""

    path: Path
    #: Permissions a new file is created with (the umask applies, as for any open).
    mode: int = 0o666
    #: The directory of records it is in (checked not to be a link), if any.
    within: Path | None = None

    def _check(self) -> None:
        if self.within is not None:
            _refuse_link(self.within)

    def open_read(self) -> int:
        """A descriptor to read it (FileNotFoundError: there is none)."""
        self._check()
        try:
            return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | _NOFOLLOW)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LinkedBeside(self.path) from None
            raise

    def open_append(self) -> int:
        """A descriptor to append to it (created, ``mode``, when absent)."""
        self._check()
        try:
            return os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
                           | _NOFOLLOW, self.mode)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LinkedBeside(self.path) from None
            raise

    def open_lock(self) -> int:
        """A descriptor to ``flock`` (the file created, ``mode``, when absent, with its
        directory; never written)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self.open_append()

    def read(self) -> bytes:
        """Its bytes (FileNotFoundError: there is none)."""
        fd = self.open_read()
        with os.fdopen(fd, "rb") as f:
            return f.read()

    def read_str(self) -> str:
        return self.read().decode("utf-8")

    def read_json(self) -> Any:
        """Its JSON (:class:`NotJSON` naming the file and line when it holds none)."""
        text = self.read_str()
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise NotJSON(self.path, exc) from None
        except RecursionError:
            raise ValueError(f"{self.path}: nested too deep to read") from None

    def write(self, data: bytes) -> None:
        """Replace it with ``data`` at once: written whole to a new file beside it,
        fsynced, renamed over it, the directory fsynced. A failure leaves the old file.
        (Its directory is made when absent; a directory of records' own, by
        :meth:`BesideDir.write`, with the directory's mode.)"""
        self._check()
        if self.within is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # (.coord/)
        _refuse_link(self.path)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | _NOFOLLOW,
                     self.mode)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        fsync_dir(self.path.parent)

    def write_str(self, text: str) -> None:
        self.write(text.encode("utf-8"))

    def remove(self) -> None:
        """Take it away (nothing if it is not there)."""
        self._check()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # (a link is removed, never followed)

    def exists(self) -> bool:
        return os.path.lexists(self.path)


@dataclass(frozen=True)
class BesideDir:
    """A directory of records beside the catalog (one file each): never a link."""

    path: Path
    #: Permissions the directory is made with; and its records'.
    mode: int = 0o777
    record_mode: int = 0o666

    def make(self) -> None:
        """Make it (and what is above it) when absent; refuse it if it is a link."""
        self.path.mkdir(mode=self.mode, parents=True, exist_ok=True)
        _refuse_link(self.path)

    def record(self, name: str) -> BesideFile:
        """The record ``name`` in it (a plain name: no ``/``)."""
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"{name!r} is not a record's name in {self.path}")
        return BesideFile(self.path / name, self.record_mode, within=self.path)

    def sub(self, name: str) -> BesideDir:
        """A directory of records inside it."""
        return BesideDir(self.record(name).path, self.mode, self.record_mode)

    def names(self) -> list[str]:
        """Its records' names (a hidden one, like a write's temporary file, is not one);
        OSError when it cannot be listed (absent, or a link: :class:`LinkedBeside`)."""
        _refuse_link(self.path)
        return sorted(e.name for e in os.scandir(self.path) if not e.name.startswith("."))

    def write(self, name: str, data: bytes) -> None:
        """Write the record ``name`` (the directory made first)."""
        self.make()
        self.record(name).write(data)


H = TypeVar("H")


class _Named(Generic[H]):
    """A file (or directory) beside the catalog, declared on the class that knows where
    it goes (:class:`BesideDirectory`, :class:`Beside`): read on an instance, the handle
    ``kind(path, **options)`` on the path the instance's ``named(name)`` gives."""

    def __init__(self, name: str, kind: Callable[..., H], **options: int) -> None:
        self.name, self.kind, self.options = name, kind, options

    def __get__(self, where: BesideDirectory | Beside, owner: object = None) -> H:
        return self.kind(where.named(self.name), **self.options)


class _Shared(Generic[H]):
    """One of :class:`BesideDirectory`'s files, read through a catalog's :class:`Beside`
    (the file of the same name of its directory's)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, where: Beside, owner: object = None) -> H:
        return cast(H, getattr(where.shared, self.name))


@dataclass(frozen=True)
class BesideDirectory:
    """The files one per directory, shared by the catalogs in it."""

    directory: Path

    def named(self, name: str) -> Path:
        return self.directory / name

    #: Changes' anchors by namespace (:mod:`coordination.change.anchor`), 0600 each.
    anchors = _Named(ANCHORS, BesideDir, record_mode=0o600)
    #: `coord schema`'s JSON Schema, which a new catalog's first line names.
    schema = _Named(SCHEMA, BesideFile)
    #: The directories `coord init` scanned (:mod:`coordination.fleet.roots`).
    fleet_roots = _Named(FLEET_ROOTS, BesideFile)
    #: The fleet's freeze as `coord freeze` left it here (:mod:`coordination.runtime.freeze`),
    #: kept beside the one in Redis: a freeze removed from Redis alone is put back.
    freeze = _Named(FREEZE, BesideFile, mode=0o644)


@dataclass(frozen=True)
class Beside:
    """The files beside one catalog: ``Beside.of(catalog).audit_log`` and so on."""

    catalog: Path  # the real catalog file, symlinks resolved

    @classmethod
    def of(cls, catalog: str | os.PathLike[str]) -> Beside:
        return cls(Path(os.path.realpath(catalog)))

    @property
    def directory(self) -> Path:
        return self.catalog.parent

    def named(self, what: str) -> Path:
        """``.<catalog name>.coord.<what>``, the name of each file of this catalog's own."""
        return self.directory / f".{self.catalog.name}{MARK}{what}"

    #: The lock every edit holds (:class:`~coordination.catalog.file.store.CatalogStore`):
    #: a path, see the module.
    lock = _Named("lock", Path)
    #: One hash-chained line per audited edit (:mod:`coordination.catalog.audit.log`).
    audit_log = _Named("audit.jsonl", BesideFile, mode=0o644)
    #: The catalog as the last audited write left it.
    audit_snapshot = _Named("audit.last", BesideFile)
    #: One marker per sweep started from the catalog, in a 0700 directory
    #: (:mod:`coordination.catalog.reads.live`).
    sweep_markers = _Named("sweeps", BesideDir, mode=0o700)
    #: Plans' checked criteria's last results, 0600 (:mod:`coordination.catalog.runs.criteria`).
    criteria_results = _Named("criteria.json", BesideFile, mode=0o600)
    #: Each plan's change state (:mod:`coordination.change.mirror`).
    change_mirrors = _Named("changes", BesideDir)
    #: The embedded server's directory (:mod:`coordination.connection.embedded_server`):
    #: a path, see the module.
    redis = _Named("redis", Path)
    #: 0.2's history file, carried over once (:mod:`coordination.runtime.migrations`): a
    #: path, which SQLite opens read-only and the migration sets aside once.
    history_0_2 = _Named("history.sqlite", Path)

    @property
    def shared(self) -> BesideDirectory:
        """The files one per directory (anchors, schema, fleet roots)."""
        return BesideDirectory(self.directory)

    anchors = _Shared[BesideDir]()
    schema = _Shared[BesideFile]()
    fleet_roots = _Shared[BesideFile]()
    freeze = _Shared[BesideFile]()
