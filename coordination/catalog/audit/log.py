"""The audit log: one hash-chained JSON line per catalog edit made through coord.

Where: ``.<catalog file name>.coord.audit.jsonl`` beside the real catalog file
(through a symlink, like the store's lock file), so two catalogs in one
directory keep two logs, and the log moves with the catalog.

What: every :meth:`CatalogStore.update` that succeeds appends exactly one
entry, under the catalog's lock and after the new catalog is on disk, then
fsyncs; an edit that is refused or fails raises before and appends nothing.
An entry records who (``COORD_USER``, else ``git config user.email`` in the
catalog's directory, else the OS user), when (UTC), the operation (the
outermost edit of a :class:`CoordinationManager` part, named with :func:`audited`,
or a name set with :func:`operation`), the CLI argv when run from the CLI (:func:`invoked_as`),
the ids touched and, for each, the fields that changed (before/after, long
values shortened), and the sha256 of the catalog the edit left.

Chain: each entry holds ``seq`` (its index), ``prev`` (the previous entry's
``hash``; 64 zeros for the first) and ``hash``, the sha256 of the canonical
JSON (sorted keys, no spaces) of the entry without ``hash``. :func:`verify`
walks it. It shows a changed, removed, inserted or reordered entry; it cannot
show a chain rewritten from the changed entry onwards (anyone can recompute a
sha256), and entries removed from the end show only as the last entry's
``catalog`` no longer matching the file. Edits made by hand in an editor write no
entry; ``coord audit --verify`` names them (items and fields) from the copy of the
catalog the last entry left (:func:`snapshot_path`).

Keyed chain: with ``COORD_AUDIT_KEY`` set, an entry's ``hash`` is the HMAC-SHA256 of
the same canonical JSON under that key, and the entry says ``"keyed": true`` (inside
what is hashed). Without the key nobody can write an entry that verifies, so a forged
or rewritten entry, hashes recomputed, fails :func:`verify`. A keyed entry's ``prev``
pins every entry before it, plain ones included, so an old plain log stays valid and
is protected from the first keyed entry on; a plain entry after a keyed one is broken
(written by a coord without the key, or forged). What no key can show: the keyed
entries all cut off the end (as with the plain chain, only the catalog hash notes it).

Entries are checked field by field (:func:`entry_problem`): a line that parses but is
not an entry of this shape is named by :func:`verify` with its line, skipped by
:func:`read`, and never stops the next edit's entry from being written.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import getpass
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, ParamSpec, Protocol, TypedDict, TypeVar

from coordination import gitsafe
from coordination.catalog.file.beside import Beside, BesideFile, fsync_dir
from coordination.catalog.audit.diff import MAX_VALUE as MAX_VALUE
from coordination.catalog.audit.diff import Change as Change
from coordination.catalog.audit.diff import diff as diff
from coordination.catalog.audit.diff import short as short
from coordination.catalog.audit.ids import _highest_field, _top
from coordination.catalog.audit.ids import catalog_ids as catalog_ids
from coordination.errors import CoordError, OperationFailed
from coordination.settings_core import from_environment

if TYPE_CHECKING:  # the CLI imports this module at start-up: keep pydantic out of it
    from coordination.catalog.models import Catalog
    from coordination.jsonable import JSONValue

GENESIS = "0" * 64
#: The catalog as the last entry left it, beside the log (:func:`snapshot_path`).

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
    keyed: NotRequired[bool]  # True: ``hash`` is an HMAC under COORD_AUDIT_KEY
    # The highest id of each kind the catalog has held at any audited edit, this one's
    # result included (``{"issue": "ISSUE-007", ...}``): new ids go above it, so a
    # deleted id never comes back (:func:`highest`). Absent in logs before 0.3.
    highest: NotRequired[dict[str, str]]
    hash: NotRequired[str]
    decision: NotRequired[dict[str, object]]  # a gate approved or rejected (no edit)


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
    token = _argv.set([_no_password(str(a)) for a in argv])
    try:
        yield
    finally:
        _argv.reset(token)


def _no_password(arg: str) -> str:
    """An argument as the log keeps it: a URL's password masked (``notify add
    https://user:pw@host/...`` is recorded without ``pw``: no message prints a password)."""
    if "://" not in arg or "@" not in arg:
        return arg
    from coordination.redis_url import redact_url  # lazy: only for an argument with a URL

    return redact_url(arg)


def audited(op: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Method decorator: the edits the method makes are logged as ``op``, unless an outer
    audited call named them first. Each of the manager's parts names its writers with it,
    and the names are the log's, not the methods': ``manager.todos.complete`` writes
    ``complete_todo`` (pinned by tests/unit/catalog/test_audit_names.py)."""

    def name(fn: Callable[P, R]) -> Callable[P, R]:
        named = _named(op, fn)
        named.audit_op = op  # type: ignore[attr-defined]  # (read by the pinning test)
        return named

    return name


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
    return Beside.of(catalog).audit_log.path


def snapshot_path(catalog: str | os.PathLike[str]) -> Path:
    """The copy of the catalog as coord's last audited write left it, beside the log.

    Pinned by the last entry's ``catalog`` hash (a copy that does not hash to it is not
    used), it lets ``coord audit --verify`` name the items and fields edited outside
    coord since (a diff, as an entry's ``changes``) instead of only saying the file
    changed. One copy, replaced at each entry: the log does not grow with it."""
    return Beside.of(catalog).audit_snapshot.path


def _keep_snapshot(target: Path, data: bytes) -> None:
    """Replace the snapshot with ``data`` (written aside, then renamed: a reader sees
    the old copy or the new one). Best effort: without it, --verify still tells a
    changed catalog by its hash, only not which fields."""
    with contextlib.suppress(OSError):
        Beside.of(target).audit_snapshot.write(data)


#: ``git config user.email`` (None: unset) by real directory and environment: asked once
#: per process, as a process's identity does not change mid-command (a sweep's command
#: asks twice: who started the sweep, and who wrote its outcome into the catalog).
_GIT_EMAILS: dict[tuple[str, frozenset[tuple[str, str]]], str | None] = {}


def who(directory: Path) -> str:
    """``COORD_USER``, else ``git config user.email`` run in ``directory``, else the OS user."""
    user = os.environ.get("COORD_USER", "").strip()
    if user:
        return user
    if email := _git_email(directory):
        return email
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no USER/LOGNAME and no passwd entry (a bare container)
        return f"uid:{os.getuid()}"


def _git_email(directory: Path) -> str | None:
    """``git config user.email`` in ``directory`` (None: unset, or git could not say)."""
    key = (os.path.realpath(directory), frozenset(os.environ.items()))
    if key in _GIT_EMAILS:
        return _GIT_EMAILS[key]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        r = gitsafe.run(["config", "user.email"], cwd=directory, capture_output=True,
                        text=True, timeout=5)
        email = str(r.stdout).strip() if r.returncode == 0 and r.stdout.strip() else None
        _GIT_EMAILS[key] = email  # an answer; a git that failed to run is asked again
        return email
    return None


# -- the chain ----------------------------------------------------------------------
def entry_hash(entry: Mapping[str, object], key: bytes | None = None) -> str:
    """sha256 of the canonical JSON of ``entry`` without its ``hash``; with ``key``,
    the HMAC-SHA256 of it under that key (a keyed entry's hash)."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if key is not None:
        return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def audit_key() -> bytes | None:
    """``COORD_AUDIT_KEY`` as bytes; None when unset or empty (plain chain)."""
    if "coordination.settings" not in sys.modules:
        # A plain string read as the settings read it (the name in any case):
        # loading the settings for it alone is 0.1-0.2 s of every edit (coord init).
        text = from_environment(("audit_key",)).get("audit_key", "")
        return text.encode("utf-8") if text else None
    # lazy: the settings (pydantic), for an edit's entry and --verify only (the CLI imports
    # this module at start-up, and `coord todo list` must not load the settings)
    from coordination.settings import get_settings

    key = get_settings().audit_key
    text = key.get_secret_value() if key is not None else ""
    return text.encode("utf-8") if text else None


#: What an entry's fields must be (:func:`entry_problem`): a hash is 64 hex digits.
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ACTIONS = ("created", "deleted", "updated")
_REQUIRED = ("seq", "at", "who", "op", "argv", "ids", "changes", "catalog", "prev", "hash")


def _show(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:40] + "…"


def _text_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _change_problem(i: int, change: object) -> str | None:
    if not isinstance(change, dict):
        return f"changes[{i}] must be an object, got {_show(change)}"
    for name in ("id", "kind", "action"):
        if not isinstance(change.get(name), str):
            return f"changes[{i}].{name} must be text, got {_show(change.get(name))}"
    if change["action"] not in _ACTIONS:
        return (f"changes[{i}].action must be one of {', '.join(_ACTIONS)}, "
                f"got {_show(change['action'])}")
    fields = change.get("fields")
    if not isinstance(fields, dict):
        return f"changes[{i}].fields must be an object, got {_show(fields)}"
    for name, pair in fields.items():
        if not (isinstance(pair, list) and len(pair) == 2):
            return f"changes[{i}].fields.{name} must be [before, after], got {_show(pair)}"
    return None


def entry_problem(entry: Mapping[str, object]) -> str | None:
    """What makes a parsed line no entry of the log, field by field (the first
    problem), or None. Fields it does not know are left alone (the hash covers them)."""
    missing = [k for k in _REQUIRED if k not in entry]
    if missing:
        return f"missing {', '.join(missing)}"
    seq = entry["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        return f"seq must be a whole number >= 0, got {_show(seq)}"
    at = entry["at"]
    try:
        dt.datetime.fromisoformat(at.replace("Z", "+00:00")) if isinstance(at, str) else None
    except ValueError:
        at = None
    if not isinstance(at, str):
        return f"at must be an ISO 8601 time, got {_show(entry['at'])}"
    for name in ("who", "op"):
        if not isinstance(entry[name], str):
            return f"{name} must be text, got {_show(entry[name])}"
    if entry["argv"] is not None and not _text_list(entry["argv"]):
        return f"argv must be a list of text or null, got {_show(entry['argv'])}"
    if not _text_list(entry["ids"]):
        return f"ids must be a list of text, got {_show(entry['ids'])}"
    changes = entry["changes"]
    if not isinstance(changes, list):
        return f"changes must be a list, got {_show(changes)}"
    for i, change in enumerate(changes):
        problem = _change_problem(i, change)
        if problem:
            return problem
    for name in ("catalog", "prev", "hash"):
        value = entry[name]
        if not (isinstance(value, str) and _HEX64.fullmatch(value)):
            return f"{name} must be 64 hex digits, got {_show(value)}"
    if "keyed" in entry and entry["keyed"] is not True:
        return f"keyed must be true when present, got {_show(entry['keyed'])}"
    return None


def _parse(raw: bytes) -> dict[str, Any] | None:
    """One line of the log as a JSON object, else None. Python's NaN and Infinity are
    read: coord before 0.3 wrote them for a catalog's .inf, and its hash covers them
    (the catalog refuses such numbers now; `coord audit --json` prints them as null)."""
    try:
        got = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return got if isinstance(got, dict) else None


def record(store: _Store, fn: Callable[..., object], before: bytes, after: bytes) -> Entry:
    """Append the entry for one successful edit; the caller holds the catalog's lock."""
    target = store._target()
    old, new = store._validated(before), store._validated(after)
    changes = diff(old, new)
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
    ids = dict.fromkeys([*catalog_ids(old), *catalog_ids(new)])  # each once
    _hand_edit(target, before)
    done = _append(Beside.of(target).audit_log, entry, list(ids))
    _keep_snapshot(target, after)
    return done


def record_decision(target: Path, catalog_bytes: bytes, *, who: str, op: str, ids: list[str],
                    decision: Mapping[str, object]) -> Entry:
    """Append an entry for a decision that is no catalog edit (a gate approved or
    rejected): ``changes`` empty, what was decided under ``decision``; chained and
    keyed like every entry. The caller holds the catalog's lock."""
    entry: Entry = {
        "seq": 0,
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "who": who, "op": op, "argv": _argv.get(), "ids": list(ids), "changes": [],
        "catalog": hashlib.sha256(catalog_bytes).hexdigest(), "prev": GENESIS,
        "decision": dict(decision),
    }
    _hand_edit(target, catalog_bytes)
    done = _append(Beside.of(target).audit_log, entry)
    _keep_snapshot(target, catalog_bytes)
    return done


# -- hand edits ---------------------------------------------------------------------
#: The ``op`` of the entry coord writes, before its own, for an edit made by hand since
#: the last entry: kept in the chain, so no later entry's diff absorbs it.
HAND_EDIT = "edited-outside-coord"
#: Who a hand edit's entry names: nobody coord knows.
HAND_WHO = "(unknown: edited outside coord)"
#: The ``op`` of the entry `coord audit --verify` writes once it reported hand edits:
#: the next --verify reports those made after it.
REPORTED = "audit.reported"


def _hand_edit(target: Path, now: bytes) -> None:
    """When the catalog as coord reads it (``now``, under the lock) is not what the last
    entry left, an entry for that hand edit first: its items and fields (the copy the
    last entry left against ``now``), or, without a usable copy, that it changed."""
    log = Beside.of(target).audit_log
    try:
        fd = log.open_read()
    except OSError:
        return  # no log yet: nothing was recorded to differ from
    try:  # (the last line that names a catalog, though malformed otherwise: it recorded it)
        last = next(_backwards(fd, os.fstat(fd).st_size, lambda e: isinstance(
            e.get("catalog"), str) and _HEX64.fullmatch(e["catalog"]) is not None), None)
    except OSError:
        return  # (the append that follows says what is wrong with the log)
    finally:
        os.close(fd)
    recorded = last.get("catalog") if last is not None else None
    if not isinstance(recorded, str) or hashlib.sha256(now).hexdigest() == recorded:
        return
    changes = outside_changes(target, recorded, now)
    entry: Entry = {
        "seq": 0,
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "who": HAND_WHO, "op": HAND_EDIT, "argv": None,
        "ids": [c["id"] for c in changes or []], "changes": changes or [],
        "catalog": hashlib.sha256(now).hexdigest(), "prev": GENESIS,
    }
    if changes is None:
        entry["decision"] = {"fields": "not known: no copy of the catalog as the entry "
                                       "before left it (or it does not load)"}
    _append(log, entry)


def outside_changes(catalog: Path, recorded: str | None, now: bytes
                    ) -> list[Change] | None:
    """What was edited in the catalog (``now``) outside coord since the entry that
    recorded ``recorded`` (items and fields, as an entry's ``changes``): against the copy
    the last entry left (:func:`snapshot_path`), used only when it hashes to
    ``recorded``. None when that cannot be told (no copy, a copy the entry does not
    pin, or a catalog that does not load)."""
    if recorded is None:
        return None
    try:
        before = Beside.of(catalog).audit_snapshot.read()
    except OSError:
        return None
    if hashlib.sha256(before).hexdigest() != recorded:
        return None
    if hashlib.sha256(now).hexdigest() == recorded:
        return []
    from coordination.catalog.file import loader  # lazy: pydantic, only for a changed file

    try:
        return diff(loader.load_catalog(before, str(catalog)),
                    loader.load_catalog(now, str(catalog)))
    except CoordError:
        return None


def _append(log: BesideFile, entry: Entry, ids: Sequence[str] = ()) -> Entry:
    """Chain ``entry`` to the log's last entry and append it (fsynced); its ``highest``
    is the last entry's, raised by ``ids`` (those of the catalogs before and after)."""
    key = audit_key()
    if key is not None:
        entry["keyed"] = True
    path = log.path
    try:
        fd = log.open_append()
    except OSError as exc:
        raise _unlogged(path, exc) from None
    try:
        last, ends_clean = _last_entry(fd)
        if last is not None:
            entry["seq"] = last[0] + 1
            entry["prev"] = last[1]
        known = last[2] if last is not None and last[2] is not None else (
            _highest_of_log(path) if last is not None else {})
        entry["highest"] = _top(known, ids)
        entry["hash"] = entry_hash(entry, key)
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
        fsync_dir(path.parent)
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


def _last_entry(fd: int) -> tuple[tuple[int, str, dict[str, str] | None] | None, bool]:
    """``(seq, hash, highest)`` of the last entry of the log with a usable ``seq`` and ``hash``
    (``highest`` None when it has none), and whether the file ends with a newline (see
    :func:`_last_parsed`)."""
    got, ends_clean = _last_parsed(fd)
    if got is None:
        return None, ends_clean
    return (got["seq"], got["hash"], _highest_field(got.get("highest"))), ends_clean


def _last_parsed(fd: int) -> tuple[dict[str, Any] | None, bool]:
    """The last entry of the log with a usable ``seq`` and ``hash``, parsed
    (lines without them are passed over: --verify names them, and the next entry is
    still written), and whether the file ends with a newline."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None, True
    ends_clean = os.pread(fd, 1, size - 1) == b"\n"
    return next(_backwards(fd, size), None), ends_clean


def _chainable(e: dict[str, Any]) -> bool:
    seq, hash_ = e.get("seq"), e.get("hash")
    return (isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0
            and isinstance(hash_, str) and _HEX64.fullmatch(hash_) is not None)


def _backwards(fd: int, size: int, usable: Callable[[dict[str, Any]], bool] = _chainable
               ) -> Iterator[dict[str, Any]]:
    """The entries of the log that are ``usable`` (default: a usable ``seq`` and
    ``hash``), parsed, last first. Read backwards in blocks: the log grows for ever, an
    append reads its tail only."""
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
            got = _parse(raw)
            if got is not None and usable(got):
                yield got
        tail = lines[0] if pos > 0 else b""  # keep only the unfinished line


def last_decisions(catalog: str | os.PathLike[str], op: str,
                   ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each of ``ids`` -> the ``decision`` of the last entry of ``op`` naming it (the
    log read from its end, until each is found); an entry whose keyed hash does not
    verify under COORD_AUDIT_KEY (or, with the key set, one not keyed) is passed over.
    What coord wrote beside the catalog is checked against these (criteria results,
    the remembered roots): a file changed outside coord no longer matches."""
    wanted, out = set(ids), {}
    key = audit_key()
    try:
        fd = Beside.of(catalog).audit_log.open_read()
    except OSError:
        return {}
    try:
        st = os.fstat(fd)
        asked = (st.st_ino, st.st_size, st.st_mtime_ns, op, tuple(sorted(wanted)),
                 hashlib.sha256(key).digest() if key else None)
        if asked in _DECISIONS:  # (the web view asks on every page it draws)
            return dict(_DECISIONS[asked])
        for e in _backwards(fd, st.st_size):
            if not wanted:
                break
            if e.get("op") != op or not isinstance(e.get("decision"), dict):
                continue
            if key is not None and (e.get("keyed") is not True or not hmac.compare_digest(
                    entry_hash(e, key), str(e.get("hash")))):
                continue
            for i in e.get("ids") or ():
                if i in wanted:
                    wanted.discard(i)
                    out[i] = e["decision"]
    except OSError:
        return {}
    finally:
        os.close(fd)
    if len(_DECISIONS) > 256:
        _DECISIONS.clear()
    _DECISIONS[asked] = dict(out)
    return out


#: :func:`last_decisions`' answers by (the log's inode, size, mtime; the question).
_DECISIONS: dict[tuple[object, ...], dict[str, dict[str, Any]]] = {}


def _highest_of_log(path: Path) -> dict[str, str]:
    """``highest`` rebuilt from every entry (a log written before 0.3 has none): the ids
    each one touched, and the ``highest`` of any that has it."""
    ids: list[str] = []
    known: list[dict[str, str]] = []
    with contextlib.suppress(OSError):
        for e in read(path):
            ids.extend(i for i in e.get("ids") or () if isinstance(i, str))
            ids.extend(c["id"] for c in e.get("changes") or () if isinstance(c.get("id"), str))
            h = _highest_field(e.get("highest"))
            if h is not None:
                known.append(h)
    return _top(ids, *known)


def highest(catalog: str | os.PathLike[str]) -> dict[str, str]:
    """The highest id of each kind the catalog has held at an audited edit (kind ->
    id): the last entry's ``highest``, else rebuilt from the whole log; ``{}`` without
    a log. An edit takes a new id above both this and the ids in the file, so an id
    deleted through coord is never handed out again, and hand-added ones count too."""
    log = Beside.of(catalog).audit_log
    try:
        fd = log.open_read()
    except OSError:
        return {}
    try:
        last, _ = _last_entry(fd)
    except OSError:
        last = None
    finally:
        os.close(fd)
    if last is None:
        return {}
    return last[2] if last[2] is not None else _highest_of_log(log.path)


# -- reading and verifying ----------------------------------------------------------
@dataclass(frozen=True)
class Broken:
    """The first entry where the chain does not hold."""

    line: int  # 1-based line of the log
    index: int  # 0-based position among the lines
    problem: str

    def __str__(self) -> str:
        return f"line {self.line} (entry {self.index}): {self.problem}"


def _log_bytes(path: Path) -> bytes:
    """The log at ``path`` (a catalog's :func:`log_path`), read as every file beside the
    catalog is (never through a link)."""
    return BesideFile(path, 0o644).read()


def scan(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The well-formed entries of a log, in file order, and how many non-blank lines
    were not (unreadable, or failing :func:`entry_problem`; :func:`verify` names them).

    Any: a well-formed entry's fields are checked, but the history reader
    (runtime/history.py) indexes into it as a dict[str, Any]."""
    out, bad = [], 0
    for raw in _log_bytes(path).split(b"\n"):
        if not raw.strip():
            continue
        got = _parse(raw)
        if got is None or entry_problem(got) is not None:
            bad += 1
        else:
            out.append(got)
    return out, bad


def read(path: Path) -> list[dict[str, Any]]:
    """The well-formed entries of a log, in file order; other lines skipped (see
    :func:`verify`)."""
    return scan(path)[0]


@dataclass(frozen=True)
class Check:
    """What :func:`check` found in a log."""

    entries: int  # lines, each an entry or a broken one
    keyed: int  # entries whose hash is an HMAC (``"keyed": true``)
    broken: Broken | None  # the first entry where the chain does not hold
    #: 1-based line of the first keyed entry whose HMAC could not be checked (no key given)
    unchecked: int | None


def check(path: Path, key: bytes | None = None) -> Check:
    """Walk the chain of the log at ``path``. ``key``: COORD_AUDIT_KEY, to check keyed
    entries' HMACs; without it their links (seq, prev) are still checked and the first
    is noted in ``unchecked``."""
    raw_lines = _log_bytes(path).split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()  # the newline ending the last entry
    entries = [_parse(raw) for raw in raw_lines]
    seqs = [e.get("seq") if e is not None else None for e in entries]
    prev: JSONValue = GENESIS
    keyed, unchecked, after_keyed = 0, None, False

    def broken(i: int, problem: str) -> Check:
        return Check(len(entries), keyed, Broken(i + 1, i, problem), unchecked)

    for i, e in enumerate(entries):
        if e is None:
            last = i == len(entries) - 1
            return broken(i, "not a complete entry (the log was cut short, or an append "
                             "was interrupted)" if last else
                             "not a JSON entry (the line was changed or damaged)")
        problem = entry_problem(e)
        if problem is not None:
            return broken(i, f"malformed: {problem} (the entry was changed or damaged)")
        if e.get("keyed") is True:
            keyed += 1
            after_keyed = True
            if key is None:
                unchecked = i + 1 if unchecked is None else unchecked
            elif not hmac.compare_digest(entry_hash(e, key), e["hash"]):
                return broken(i, "changed or forged: its content does not match its keyed "
                                 "hash (HMAC under COORD_AUDIT_KEY; or it was keyed with "
                                 "another key)")
        elif after_keyed:
            return broken(i, "not keyed, after keyed entries: forged, or written by a coord "
                             "without COORD_AUDIT_KEY")
        elif entry_hash(e) != e["hash"]:
            return broken(i, "changed: its content does not match its hash")
        seq = e["seq"]
        if seq != i:
            if seq > i:
                if i in seqs[i + 1:]:
                    j = seqs.index(i, i + 1)
                    return broken(i, f"reordered: entry {i} should come here, it is at "
                                     f"line {j + 1}")
                return broken(i, f"removed: entr{'y' if seq == i + 1 else 'ies'} {i}"
                                 f"{'' if seq == i + 1 else f'..{seq - 1}'} missing before it")
            return broken(i, f"inserted or reordered: it says it is entry {seq}, but entry "
                             f"{i} is due here")
        if e["prev"] != prev:
            return broken(i, "does not follow the entry before it (its prev hash differs): "
                             "an entry before it was changed, removed or inserted")
        prev = e["hash"]
    return Check(len(entries), keyed, None, unchecked)


def verify(path: Path, key: bytes | None = None) -> tuple[int, Broken | None]:
    """(number of entries, the first broken one or None) for the log at ``path``. A
    keyed entry counts as broken when ``key`` is not given: it cannot be verified."""
    found = check(path, key)
    if found.broken is None and found.unchecked is not None:
        i = found.unchecked - 1
        return found.entries, Broken(found.unchecked, i, "keyed (HMAC-SHA256): it cannot "
                                     "be verified without COORD_AUDIT_KEY")
    return found.entries, found.broken


def last_catalog(path: Path) -> str | None:
    """The catalog hash the last well-formed entry recorded (None for an empty log)."""
    entries = read(path)
    return str(entries[-1].get("catalog")) if entries else None


__all__ = ["Broken", "Check", "audit_key", "catalog_ids", "check", "diff", "entry_hash",
           "entry_problem", "highest", "invoked_as", "log_path", "operation", "operations", "read", "record", "scan",
           "short", "snapshot_path", "verify", "who"]
