"""ecosystem.yaml on disk: fast validated loads and safe, comment-keeping edits.

Guarantees, and how each is kept:

- *Reads are fast*: a validated catalog is cached as JSON keyed by the
  sha256 of the file's bytes and the code version; a hit skips YAML parsing,
  validation and the whole-catalog checks.
- *Edits keep the user's file*: ruamel.yaml round-trips comments, key order,
  quoting and the indentation style detected from the file itself.
- *Edits are atomic*: the new text is validated first, then written to a
  temp file in the same directory, fsynced, renamed over the old one, and the
  directory is fsynced. A crash leaves the old file or the new one.
- *No edit is lost*: writers hold an ``flock`` on a sidecar lock file, and the
  file's hash is compared under the lock with the one the edit was based on; if
  another writer (or an editor, which takes no lock) got there first, the edit
  is re-applied to the new text.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar


from coordination.catalog.file.beside import Beside, fsync_dir
from coordination.catalog.audit import log as audit
from coordination.catalog.file import cache
from coordination.catalog.reads import live
from coordination.catalog.file.cache import CACHE_ENTRIES
from coordination.catalog.models import Catalog
from coordination.errors import CatalogError, ConflictError, Problem
from coordination.lazy import LazyModule

if TYPE_CHECKING:  # ruamel is imported by an edit only (see _apply)
    from ruamel.yaml.comments import CommentedMap

    from coordination.catalog.file import loader, splice
    from coordination.catalog.file.roundtrip import TextStyle
else:
    # Loaded on first use: parsing YAML (PyYAML) is for a cache miss or an edit; a
    # read the validated cache answers (`plan sweep --dry-run`) never loads it.
    loader = LazyModule("coordination.catalog.file.loader")

T = TypeVar("T")
digest = cache.digest
default_cache_dir = cache.default_cache_dir

# Seconds a writer waits for the others. An edit of a 5,000-todo catalog takes
# seconds (ruamel is pure Python), so this leaves room for a queue of them.
LOCK_TIMEOUT = 60.0
UPDATE_ATTEMPTS = 5

# The validated catalogs of this process, by cache directory and the digest of their
# bytes (the last two): every store of the process with that cache shares them, so the
# planning of a sweep and the sync at its end read the JSON cache once, not once per
# store. A Catalog is never changed once validated (its lookups are built aside, see
# models.Catalog).
_MEMO: dict[tuple[Path | None, str], Catalog] = {}
_MEMO_LOCK = threading.Lock()
# Digests of the memo's catalogs that come back equal from the JSON cache (see
# _apply_splice); one leaves with its catalog.
_JSON_SAFE: set[str] = set()
# What the next edit of a file needs before its edit function runs, made in advance by
# CatalogStore.ready_edit, by the file's path and the digest of the bytes it was made
# from: one at most, taken by the edit that uses it.
_READY: dict[tuple[Path, str], tuple[TextStyle, splice.Ready]] = {}


@dataclass
class _SpliceStart:
    """An edit's start on the splice path: the file's text style, its body (what ruamel
    loads) and the round-trip YAML of that style."""

    style: TextStyle
    body: str
    load: Callable[[str], object]
    dump: Callable[[CommentedMap], str]


class CatalogStore:
    """One catalog file.

    ``load()`` returns a validated :class:`Catalog`. ``update(fn)`` calls
    ``fn(doc)`` with the round-trip document (ruamel CommentedMap: edit it in
    place, comments survive), validates the result and writes it atomically;
    it returns what ``fn`` returned. Invalid results raise and write nothing.

    ``fn`` may be called more than once, each time on a fresh document, when
    another writer changed the file first; it must only edit the document (and
    compute things such as the next id from it, not from an earlier load).
    Do not call ``update`` from inside ``fn``: the lock is not re-entrant.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        cache_dir: str | os.PathLike[str] | None | Literal["auto"] = "auto",
        splice: bool | None = None,
    ) -> None:
        self.path = Path(path)
        # Edits splice the items they touch into the text (fast on big catalogs);
        # False forces the full round trip (None: COORD_EDIT_SPLICE, default on).
        self.splice = splice
        # How the last edit was made: "splice", or "round-trip: <why>" (for tests).
        self.last_edit: str | None = None
        self.cache_dir = default_cache_dir() if cache_dir == "auto" else (
            None if cache_dir is None else Path(cache_dir)
        )

    @property
    def base_dir(self) -> Path:
        """Directory that relative repo paths are resolved against."""
        return self.path.resolve().parent

    @property
    def lock_path(self) -> Path:
        """Sidecar lock file beside the real file (ignored by ``*.coord.lock``)."""
        return Beside(self._target()).lock

    # -- reading --------------------------------------------------------------
    def read_bytes(self) -> bytes:
        """The file's bytes: a regular file only (a FIFO would block for ever, a
        device like /dev/zero never ends), at most COORD_MAX_CATALOG_BYTES."""
        return cache.read_catalog_bytes(self.path, cache.max_catalog_bytes())

    def load(self) -> Catalog:
        """The validated catalog; with a live sweep's running todos ``in_progress``
        when this process was told of them (:mod:`coordination.catalog.reads.live`; edits
        read the file itself)."""
        cat = self._validated(self.read_bytes())
        if live.overlay_set():
            return live.overlaid(cat, live.overlay(self.path))
        return cat

    def _validated(self, data: bytes) -> Catalog:
        token = digest(data)
        with _MEMO_LOCK:
            cat = _MEMO.get((self.cache_dir, token))
        if cat is None and (cat := self._cache_get(token)) is not None:
            _JSON_SAFE.add(token)
        if cat is None:
            cat = loader.load_catalog(data, str(self.path))
            self._cache_put(token, cat)
        self._remember(token, cat)
        return cat

    def _remember(self, token: str, cat: Catalog) -> None:
        key = (self.cache_dir, token)
        with _MEMO_LOCK:
            _MEMO.pop(key, None)
            _MEMO[key] = cat
            while len(_MEMO) > 2:
                gone = next(iter(_MEMO))
                _MEMO.pop(gone)
                if all(t != gone[1] for _, t in _MEMO):
                    _JSON_SAFE.discard(gone[1])  # bounded with the memo

    # -- writing --------------------------------------------------------------
    def update(self, fn: Callable[[CommentedMap], T], *,
               direct: Callable[[bytes], tuple[bytes, T] | None] | None = None) -> T:
        """``direct``, when given, is tried first on the file's bytes: the new bytes
        and the result, written without the round trip (what ``fn`` would write, byte
        for byte; see ``fresh``), or None to call ``fn``. Its bytes are validated,
        written and audited as ``fn``'s are."""
        data = self.read_bytes()
        # The file as it is must load, so problems point at the lines the user sees.
        new, result = self._apply(fn, data, self._validated(data), direct)
        with self._locked():
            for _ in range(UPDATE_ATTEMPTS):
                current = self.read_bytes()
                if digest(current) == digest(data):
                    if new == current or self._write(new, expect=current):
                        audit.record(self, fn, current, new)  # one entry per edit, under the lock
                        return result
                    current = self.read_bytes()  # saved by someone in the last moment
                # Another writer got there first (before we locked, or an editor
                # that takes no lock): redo the edit on what is there now.
                data = current
                new, result = self._apply(fn, data, self._validated(data), direct)
        raise ConflictError(
            f"{self.path}: the catalog kept changing while coord tried to edit it; "
            "nothing was written",
            hint="is a script or editor saving it in a loop? try again",
        )

    def record_decision(self, *, who: str, op: str, ids: list[str],
                        decision: Mapping[str, object]) -> None:
        """Append a decision that edits nothing (a gate approved or rejected) to the
        catalog's audit log, under the catalog's lock (entries stay in order)."""
        with self._locked():
            audit.record_decision(self._target(), self.read_bytes(), who=who, op=op, ids=ids,
                                  decision=decision)

    def _apply(self, fn: Callable[[CommentedMap], T], data: bytes, cat: Catalog,
               direct: Callable[[bytes], tuple[bytes, T] | None] | None = None
               ) -> tuple[bytes, T]:
        """The file's bytes after ``fn``, validated, and ``fn``'s result; ``cat`` is
        the validated catalog of ``data``."""
        made = direct(data) if direct is not None else None
        if made is not None:
            self.last_edit = "direct"
            return self._checked(made[0]), made[1]
        # ruamel (pure Python, slow to import) only for an edit: `coord todo list`
        # imports this module on a cache miss and must not pay for it.
        from coordination.catalog.file.roundtrip import dump_round_trip, load_round_trip  # lazy: ruamel, edits only (todo list loads this module on a cache miss)
        from coordination.catalog.file import keep  # lazy: difflib, edits only

        file = str(self.path)
        if self._splicing():
            from coordination.catalog.file import splice  # lazy: ruamel, edits only

            try:
                return self._apply_splice(fn, data, cat)
            except splice.Unsupported as exc:
                self.last_edit = f"round-trip: {exc}"
        else:
            self.last_edit = "round-trip: splicing is off"
        doc, style = load_round_trip(data, file)
        text = data.decode("utf-8")
        # What ruamel writes before the edit: the lines it rewrites without being
        # asked (a flow list on two lines...) are put back as they were (keep).
        base = dump_round_trip(doc, style) if keep.may_rewrite(text) else None
        result = fn(doc)
        new = dump_round_trip(doc, style)
        if base is not None and base != data:
            new = keep.keep(text, base.decode("utf-8"), new.decode("utf-8"), file).encode("utf-8")
        return self._checked(new), result

    def _checked(self, new: bytes) -> bytes:
        """``new`` once it loads as a catalog (else the loader's problems, nothing
        written), its catalog cached warm for the next read."""
        file = str(self.path)
        try:
            cat = loader.load_catalog(new, file)
        except CatalogError as exc:
            raise type(exc)(
                exc.problems,
                hint="nothing was written; line numbers refer to the catalog as the edit "
                "would have left it",
            ) from None
        self._cache_put(digest(new), cat)  # the next read of the new file is warm
        self._remember(digest(new), cat)
        return new

    def _splicing(self) -> bool:
        if self.splice is not None:
            return self.splice
        # Not at the top: a read (`coord todo list`) never needs the settings.
        from coordination.settings import get_settings  # lazy: the settings (pydantic), edits only

        return get_settings().edit_splice

    def ready_edit(self) -> None:
        """Do now what the next edit of the file, as it is now, does before its edit
        function runs (read, scan and cut it; each item's lines read for a change in
        place): for a process idle now that edits the catalog later (a sweep's command,
        while the sweep runs). The edit uses it only when the file then is byte for byte
        what it is now (else, a hand edit meanwhile, it starts from the file as it is
        then); best effort: anything in the way leaves the edit to do it all."""
        # Imported here for the reason given in _apply: splice imports ruamel.
        from coordination.catalog.file import splice  # lazy: ruamel, edits only

        _READY.clear()
        try:
            data = self.read_bytes()
            cat = self._validated(data)
            if self._splicing():
                start = self._splice_start(data)
                _READY[(self.path, digest(data))] = (start.style, splice.ready(
                    start.body, str(self.path), cat, start.load, start.dump, every_item=True))
        except Exception:  # noqa: BLE001, S110 - the edit itself says what is wrong
            pass

    def _splice_start(self, data: bytes) -> _SpliceStart:
        """The file's text style, its body (what ruamel loads) and the round-trip YAML of
        that style."""
        # Imported here for the reason given in _apply: roundtrip imports ruamel.
        from coordination.catalog.file.roundtrip import _BOM, _yaml, guess_style  # lazy: ruamel, edits only

        text = data.decode("utf-8")
        style = guess_style(text)
        body = text.removeprefix(_BOM)[len(style.preamble):].replace("\r\n", "\n")

        def load(text: str) -> object:
            return _yaml(style).load(text)

        def dump(doc: CommentedMap) -> str:
            buf = io.StringIO()
            _yaml(style).dump(doc, buf)
            return buf.getvalue()

        return _SpliceStart(style, body, load, dump)

    def _apply_splice(self, fn: Callable[[CommentedMap], T], data: bytes, cat: Catalog
                      ) -> tuple[bytes, T]:
        """:meth:`_apply` by splicing only the touched items (see ``splice``); raises
        ``splice.Unsupported`` for what it does not handle, before calling nothing
        but ``fn`` on a throw-away document."""
        # Imported here for the reason given in _apply: splice imports ruamel.
        from coordination.catalog.file import splice  # lazy: ruamel, edits only
        from coordination.catalog.file.roundtrip import _BOM  # lazy: ruamel, edits only

        # Made by ready_edit from these very bytes (used once), or made now.
        made = _READY.pop((self.path, digest(data)), None)
        if made is not None:
            style = made[0]
            done, result = splice.apply_ready(fn, made[1])
        else:
            start = self._splice_start(data)
            style = start.style
            done, result = splice.apply(fn, start.body, str(self.path), cat, start.load,
                                        start.dump)
        out = done.body.replace("\n", "\r\n") if style.crlf else done.body
        new = ((_BOM if style.bom else "") + style.preamble + out).encode("utf-8")
        token = digest(new)
        # The untouched items came from a catalog that survived the JSON cache; the
        # written ones are checked alone (a whole-catalog check costs 0.3 s at 10,000).
        checked = digest(data) in _JSON_SAFE and all(
            type(m).model_validate_json(m.model_dump_json(exclude_unset=True)) == m
            for m in done.written)
        self._cache_put(token, done.catalog, checked=checked)
        self._remember(token, done.catalog)
        self.last_edit = "splice"
        return new, result

    @contextlib.contextmanager
    def _locked(self, timeout: float | None = None) -> Iterator[None]:
        # flock dies with its holder, so a killed coord never leaves a stale lock;
        # the lock file itself is never removed (that would race with a waiter).
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise CatalogError(
                Problem(f"cannot create the lock file {self.lock_path}: {exc.strerror}",
                        file=str(self.path)),
                hint="the catalog's directory must be writable to edit it",
            ) from None
        timeout = LOCK_TIMEOUT if timeout is None else timeout
        try:
            deadline, delay = time.monotonic() + timeout, 0.002
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise ConflictError(
                            f"{self.path}: another coord process has been editing the catalog "
                            f"for {timeout:.0f}s; nothing was written",
                            hint="try again when it has finished",
                        ) from None
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
            yield
        finally:
            os.close(fd)  # releases the flock

    def _write(self, new: bytes, *, expect: bytes | None = None) -> bool:
        """Replace the file with ``new``, atomically and durably, keeping its mode.

        With ``expect``: the file is compared with it once more right before the
        rename, and nothing is replaced (False) if someone saved it meanwhile (an
        editor takes no lock). What remains is the instant between that compare
        and the rename; a save landing after the rename wins, and is reported.
        """
        target = self._target()
        try:
            st = os.stat(target)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        except OSError as exc:
            raise CatalogError(Problem(f"cannot write: {exc.strerror}", file=str(self.path)),
                               hint="nothing was changed") from None
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), stat.S_IMODE(st.st_mode))
                with contextlib.suppress(OSError):  # keep the group of a shared checkout
                    os.fchown(f.fileno(), st.st_uid, st.st_gid)
                f.write(new)
                f.flush()
                os.fsync(f.fileno())
            if expect is not None and digest(self.read_bytes()) != digest(expect):
                os.unlink(tmp)
                return False
            os.replace(tmp, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise CatalogError(Problem(f"cannot write: {exc.strerror}", file=str(self.path)),
                                   hint="nothing was changed") from None
            raise
        fsync_dir(target.parent)  # the rename itself, durable
        if expect is not None and digest(self.read_bytes()) != digest(new):
            raise ConflictError(
                f"{self.path}: another program saved the catalog just as coord wrote its edit; "
                "its save won and coord's edit is not in the file",
                hint="check the file, then run the command again",
            )
        return True

    def _target(self) -> Path:
        # Write through a symlink, not over it: the link is the user's setup.
        return Path(os.path.realpath(self.path))

    # -- cache ----------------------------------------------------------------
    def _cache_file(self, token: str) -> Path | None:
        return cache.cache_file(self.cache_dir, token, cache.SET_FIELDS)

    def _cache_get(self, token: str) -> Catalog | None:
        try:
            text = cache.read_json(self.cache_dir, token, cache.SET_FIELDS)
            if text is None:
                return None
            with cache.paused_gc():
                return Catalog.model_validate_json(text)
        except Exception:  # noqa: BLE001 - a broken cache is only a slower read
            return None

    def _cache_put(self, token: str, cat: Catalog, *, checked: bool = False) -> None:
        """``checked``: the caller knows ``cat`` comes back equal from JSON."""
        try:
            path = self._cache_file(token)
            if path is None:
                return
            # Only the fields the file sets: the models keep knowing which keys an
            # item has (the splice path reads them), defaults come back on load.
            js = cat.model_dump_json(exclude_unset=True)
            if not checked:
                with cache.paused_gc():
                    if Catalog.model_validate_json(js) != cat:
                        return  # e.g. dates inside free-form metadata would come back as text
            _JSON_SAFE.add(token)
            _write_entry(path, js)
            # And every field, defaults included: what a read that needs no models
            # (coordination.catalog.reads.cached) prints, as model_dump(mode="json") would.
            self.cache_all_fields(token, cat)
            _prune(path.parent)
        except Exception:  # noqa: BLE001, S110 - caching must never fail a command
            pass

    def cache_all_fields(self, token: str, cat: Catalog) -> None:
        """Cache ``cat`` with every field (defaults too) for reads without models."""
        path = cache.cache_file(self.cache_dir, token, cache.ALL_FIELDS)
        if path is not None:
            with contextlib.suppress(Exception):  # caching must never fail a command
                _write_entry(path, cat.model_dump_json())


def _write_entry(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _prune(directory: Path) -> None:
    entries = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime)
    for old in entries[:-CACHE_ENTRIES]:
        with contextlib.suppress(OSError):
            old.unlink()
