"""The audit log: one hash-chained JSON line per catalog edit made through coord.

Where: ``.<catalog file name>.coord.audit.jsonl`` beside the real catalog file
(through a symlink, like the store's lock file), so two catalogs in one
directory keep two logs, and the log moves with the catalog.

What: every :meth:`CatalogStore.update` that succeeds appends exactly one
entry, under the catalog's lock and after the new catalog is on disk, then
fsyncs; an edit that is refused or fails raises before and appends nothing.
An entry records who (``COORD_USER``, else ``git config user.email`` in the
catalog's directory, else the OS user), when (UTC), the operation (the
outermost :class:`CoordinationManager` method, or a name set with
:func:`operation`), the CLI argv when run from the CLI (:func:`invoked_as`),
the ids touched and, for each, the fields that changed (before/after, long
values shortened), and the sha256 of the catalog the edit left.

Chain: each entry holds ``seq`` (its index), ``prev`` (the previous entry's
``hash``; 64 zeros for the first) and ``hash``, the sha256 of the canonical
JSON (sorted keys, no spaces) of the entry without ``hash``. :func:`verify`
walks it. It shows a changed, removed, inserted or reordered entry; it cannot
show a chain rewritten from the changed entry onwards, and entries removed from
the end show only as the last entry's ``catalog`` no longer matching the file.
Edits made by hand in an editor are not audited.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import getpass
import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, ParamSpec, Protocol, TypedDict, TypeVar

from coordination.errors import OperationFailed

if TYPE_CHECKING:  # the CLI imports this module at start-up: keep pydantic out of it
    from pydantic import BaseModel

    from coordination.catalog.models import Catalog
    from coordination.jsonable import JSONObject, JSONValue

GENESIS = "0" * 64
MAX_VALUE = 200  # characters of JSON kept of a field's value; longer ones are shortened
SUFFIX = ".coord.audit.jsonl"

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

_operation: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "coord_audit_operation", default=None)
_argv: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "coord_audit_argv", default=None)


class _Store(Protocol):
    path: Path

    def _target(self) -> Path: ...

    def _validated(self, data: bytes) -> Catalog: ...


class Change(TypedDict):
    """One thing an edit created, deleted or updated (see :func:`diff`)."""

    id: str
    kind: str
    action: str  # "created", "deleted" or "updated"
    fields: dict[str, list[JSONValue]]  # name -> [before, after]


class Entry(TypedDict):
    """One line of the log, as :func:`record` writes it."""

    seq: int
    at: str
    who: str
    op: str
    argv: list[str] | None
    ids: list[str]
    changes: list[Change]
    catalog: str
    prev: str
    hash: NotRequired[str]


# -- naming what is being done ----------------------------------------------------
@contextlib.contextmanager
def operation(name: str) -> Iterator[None]:
    """Edits inside are logged as ``name``; an outer name wins (``close_issue``
    calls ``update_issue``: the log says ``close_issue``)."""
    token = _operation.set(name) if _operation.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _operation.reset(token)


@contextlib.contextmanager
def invoked_as(argv: Sequence[str]) -> Iterator[None]:
    """Edits inside record ``argv`` (the CLI's arguments, without the program name)."""
    token = _argv.set([str(a) for a in argv])
    try:
        yield
    finally:
        _argv.reset(token)


def operations(cls: type[T]) -> type[T]:
    """Class decorator: each public method runs inside :func:`operation` of its name,
    so every writer (and any added later) is named in the log without its own line."""
    for name, attr in list(vars(cls).items()):
        if name.startswith("_") or not callable(attr) or isinstance(attr, type):
            continue
        setattr(cls, name, _named(name, attr))
    return cls


def _named(name: str, fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if _operation.get() is not None:
            return fn(*args, **kwargs)
        with operation(name):
            return fn(*args, **kwargs)

    return wrapper


# -- where and who ----------------------------------------------------------------
def log_path(catalog: str | os.PathLike[str]) -> Path:
    """The audit log of a catalog file (beside the real file, symlinks resolved)."""
    target = Path(os.path.realpath(catalog))
    return target.parent / f".{target.name}{SUFFIX}"


def who(directory: Path) -> str:
    """``COORD_USER``, else ``git config user.email`` run in ``directory``, else the OS user."""
    user = os.environ.get("COORD_USER", "").strip()
    if user:
        return user
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        r = subprocess.run(["git", "config", "user.email"], cwd=directory, capture_output=True,
                           text=True, timeout=5, stdin=subprocess.DEVNULL)
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip()
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no USER/LOGNAME and no passwd entry (a bare container)
        return f"uid:{os.getuid()}"


# -- what changed -----------------------------------------------------------------
def short(value: JSONValue) -> JSONValue:
    """``value`` as is when its JSON is short, else its JSON text cut to MAX_VALUE."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if len(text) <= MAX_VALUE:
        return value
    return f"{text[:MAX_VALUE]}… ({len(text)} chars)"


def _items(cat: Catalog) -> dict[str, tuple[str, BaseModel]]:
    """Every addressable thing in a catalog: id (or repo name) -> (kind, model)."""
    out: dict[str, tuple[str, BaseModel]] = {r.name: ("repo", r) for r in cat.repos}
    c = cat.coordination
    for kind, items in (("issue", c.issues), ("plan", c.plans), ("todo", c.todos),
                        ("dependency", c.dependencies)):
        out.update((x.id, (kind, x)) for x in items)
    return out


def _fields(model: BaseModel) -> JSONObject:
    return model.model_dump(mode="json")


def diff(before: Catalog, after: Catalog) -> list[Change]:
    """One record per thing created, deleted or changed: ``{"id", "kind", "action",
    "fields": {name: [before, after]}}``, only the fields that differ (a new or
    deleted thing: its non-empty fields), values shortened by :func:`short`."""
    old, new = _items(before), _items(after)
    out: list[Change] = []
    for key in [*old, *(k for k in new if k not in old)]:
        a, b = old.get(key), new.get(key)
        pairs: dict[str, list[JSONValue]]
        if a is not None and b is not None:
            if a[1] == b[1]:
                continue
            kind, action = b[0], "updated"
            fa, fb = _fields(a[1]), _fields(b[1])
            pairs = {k: [short(fa.get(k)), short(fb.get(k))]
                     for k in [*fa, *(k for k in fb if k not in fa)] if fa.get(k) != fb.get(k)}
        else:
            either = b if b is not None else a
            assert either is not None  # the key comes from old or new
            kind, model = either
            action = "created" if a is None else "deleted"
            values = {k: v for k, v in _fields(model).items() if v not in (None, "", [], {})}
            pairs = {k: [None, short(v)] if a is None else [short(v), None]
                     for k, v in values.items()}
        out.append({"id": key, "kind": kind, "action": action, "fields": pairs})
    if before.version != after.version:
        out.append({"id": "catalog", "kind": "catalog", "action": "updated",
                    "fields": {"version": [before.version, after.version]}})
    return out


# -- the chain ----------------------------------------------------------------------
def entry_hash(entry: Mapping[str, object]) -> str:
    """sha256 of the canonical JSON of ``entry`` without its ``hash``."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record(store: _Store, fn: Callable[..., object], before: bytes, after: bytes) -> Entry:
    """Append the entry for one successful edit; the caller holds the catalog's lock."""
    target = store._target()
    changes = diff(store._validated(before), store._validated(after))
    entry: Entry = {
        "seq": 0,
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "who": who(target.parent),
        "op": _operation.get() or _fallback_name(fn),
        "argv": _argv.get(),
        "ids": [c["id"] for c in changes],
        "changes": changes,
        "catalog": hashlib.sha256(after).hexdigest(),
        "prev": GENESIS,
    }
    path = log_path(target)
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise _unlogged(path, exc) from None
    try:
        last, ends_clean = _last_entry(fd)
        if last is not None:
            entry["seq"] = last[0] + 1
            entry["prev"] = last[1]
        entry["hash"] = entry_hash(entry)
        line = json.dumps(entry, separators=(",", ":"), ensure_ascii=False) + "\n"
        # A torn last line (a crash mid-append) is left for --verify to report.
        data = ("" if ends_clean else "\n") + line
        os.write(fd, data.encode("utf-8"))
        os.fsync(fd)
    except OSError as exc:
        raise _unlogged(path, exc) from None
    finally:
        os.close(fd)
    if entry["seq"] == 0:
        _fsync_dir(path.parent)
    return entry


def _fallback_name(fn: Callable[..., object]) -> str:
    """An edit outside any named operation: where its edit function was defined
    (``SweepService.sync.<locals>.edit`` -> ``SweepService.sync``)."""
    name = getattr(fn, "__qualname__", "") or "edit"
    return name.split(".<locals>")[0]


def _unlogged(path: Path, exc: OSError) -> OperationFailed:
    return OperationFailed(
        f"the catalog edit was written, but its audit entry could not be appended to "
        f"{path}: {exc.strerror}",
        hint="the edit stands; make the log writable so the next edits are audited",
    )


def _last_entry(fd: int) -> tuple[tuple[int, str] | None, bool]:
    """``(seq, hash)`` of the last parseable entry of the log, and whether the file
    ends with a newline. Read backwards in blocks: the log grows for ever, an append
    reads its tail only."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None, True
    ends_clean = os.pread(fd, 1, size - 1) == b"\n"
    tail, pos, block = b"", size, 65536
    while pos > 0:
        start = max(0, pos - block)
        tail = os.pread(fd, pos - start, start) + tail
        pos = start
        lines = tail.split(b"\n")
        # lines[0] may be cut by the block boundary unless we reached the start.
        candidates = lines if pos == 0 else lines[1:]
        for raw in reversed(candidates):
            if not raw.strip():
                continue
            got = None
            with contextlib.suppress(ValueError):
                got = json.loads(raw)
            if isinstance(got, dict) and "hash" in got:
                return (int(got.get("seq", -1)), str(got.get("hash", ""))), ends_clean
        if len(tail) > 16 * block and pos > 0:
            tail = lines[0]  # keep only the unfinished line
    return None, ends_clean


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- reading and verifying ----------------------------------------------------------
@dataclass(frozen=True)
class Broken:
    """The first entry where the chain does not hold."""

    line: int  # 1-based line of the log
    index: int  # 0-based position among the lines
    problem: str

    def __str__(self) -> str:
        return f"line {self.line} (entry {self.index}): {self.problem}"


def read(path: Path) -> list[dict[str, Any]]:
    """The entries of a log, in file order; unreadable lines skipped (see :func:`verify`).

    Any: what a line holds is only known to be a JSON object, and the history reader
    (runtime/history.py) indexes into it as a dict[str, Any]."""
    out = []
    for raw in path.read_bytes().split(b"\n"):
        with contextlib.suppress(ValueError):
            got = json.loads(raw)
            if isinstance(got, dict):
                out.append(got)
    return out


def verify(path: Path) -> tuple[int, Broken | None]:
    """(number of entries, the first broken one or None) for the log at ``path``."""
    raw_lines = path.read_bytes().split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()  # the newline ending the last entry
    entries: list[JSONObject | None] = []
    for raw in raw_lines:
        try:
            got = json.loads(raw)
        except ValueError:
            got = None
        entries.append(got if isinstance(got, dict) else None)
    seqs = [e.get("seq") if e is not None else None for e in entries]
    prev: JSONValue = GENESIS
    for i, e in enumerate(entries):
        where = functools.partial(Broken, i + 1, i)
        if e is None:
            last = i == len(entries) - 1
            return len(entries), where(
                "not a complete entry (the log was cut short, or an append was interrupted)"
                if last else "not a JSON entry (the line was changed or damaged)")
        missing = [k for k in ("seq", "prev", "hash") if k not in e]
        if missing:
            return len(entries), where(f"missing {', '.join(missing)} (the entry was changed)")
        if entry_hash(e) != e["hash"]:
            return len(entries), where(
                "changed: its content does not match its hash")
        seq = e["seq"]
        if seq != i:
            if isinstance(seq, int) and seq > i:
                if i in seqs[i + 1:]:
                    j = seqs.index(i, i + 1)
                    return len(entries), where(
                        f"reordered: entry {i} should come here, it is at line {j + 1}")
                return len(entries), where(
                    f"removed: entr{'y' if seq == i + 1 else 'ies'} {i}"
                    f"{'' if seq == i + 1 else f'..{seq - 1}'} missing before it")
            return len(entries), where(
                f"inserted or reordered: it says it is entry {seq}, but entry {i} is due here")
        if e["prev"] != prev:
            return len(entries), where(
                "does not follow the entry before it (its prev hash differs): an entry "
                "before it was changed, removed or inserted")
        prev = e["hash"]
    return len(entries), None


def last_catalog(path: Path) -> str | None:
    """The catalog hash the last entry recorded (None for an empty log)."""
    entries = read(path)
    return str(entries[-1].get("catalog")) if entries else None


__all__ = ["Broken", "diff", "entry_hash", "invoked_as", "log_path", "operation", "operations",
           "read", "record", "short", "verify", "who"]
