"""coord 0.2's embedded sweeps and history, carried over once to the catalog's server.

Until 0.3 an embedded sweep lived in its process's in-memory server (fakeredis) and was
kept, when one of its runs ended, as one JSON row of the ``archive`` table of
``.<catalog name>.coord.history.sqlite`` beside the catalog; the embedded history was
the ``runs`` and ``todos`` tables of that same file. Since 0.3 both live on the
catalog's embedded server, like on any Redis: one history store, one code path. This
module is the only code left that knows that file. :func:`carry_over`, called by
:func:`coordination.runtime.migrations.upgrade` when a runtime is opened on the
embedded server, reads it (read-only) and writes what it holds into Redis:

- every archived sweep the server does not hold yet: its hash (record, counters,
  checkpoints; a row kept by coord 0.1, a hash per checkpoint, moved into it as
  :mod:`.v01_checkpoint_hashes` moves a live one), its score in the sweeps' index and its
  event stream, in one script call (``lua/carry_sweep.lua``). An ended sweep keeps what
  is left of its ``COORD_RETENTION_DAYS`` after its end; one past it is not carried.
- those sweeps' own events (not their todos') into the global stream, which is where the
  merged view (``coord events``) finds the sweeps: appended after what the stream holds,
  or, when it already holds later events, the stream rewritten in id order; one script
  call (``lua/carry_events.lua``).
- every history run (a ``runs`` row with its ``todos`` rows), through
  ``RedisHistory.record_all``: a run already there is left as it is; runs older than
  ``COORD_HISTORY_DAYS`` are trimmed, as on any record.

Once, and never losing anything:

- Every write above is idempotent and atomic: a sweep already in Redis, an event id
  already in the stream, a run already recorded are left alone, each decided and written
  in one step (a script, or a run's row written last by ``RedisHistory``). So two
  processes that carry the same file over at once (both joined the server before either
  was done) write each thing once between them, and an attempt cut off halfway (killed,
  Redis gone) is completed by the next one.
- The marker :meth:`Keys.migrated_02` is set (SET NX: the first finisher's note stays)
  only after everything was written; a failure leaves the file as it was, unmarked, and
  the next coord command tries again. The file is opened read-only and never written.
- Then the file (with its ``-wal`` and ``-shm``) is renamed ``<name>.migrated``: later
  processes find no old file and ask Redis nothing, and the old data stays on disk until
  its user deletes it. The marker is what makes it once: a file renamed back, or that
  could not be renamed (a read-only directory), is not read again while the server's
  data lasts; the rename alone could not tell.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NotRequired, TypedDict

from coordination.catalog.file.beside import Beside
from coordination.runtime.events import Event, Fields, stream_id_key
from coordination.runtime.history import RedisHistory, Row
from coordination.runtime.migrations.v01_checkpoint_hashes import legacy_fields
from coordination.runtime.scripts import lua
from coordination.runtime.sweep_fields import decode
from coordination.status import SWEEP_ENDED

if TYPE_CHECKING:
    import redis

    from coordination.keys import Keys

log = logging.getLogger("coord.migrate")

#: The 0.2 file beside the catalog, and what it is renamed to once carried over.
DONE_SUFFIX = ".migrated"
#: Columns of the 0.2 tables ``runs`` and ``todos`` (the format is frozen: these are
#: not today's record fields, even where they agree).
RUN_COLUMNS = ("sweep_id", "run", "plan", "sweep_kind", "status", "reason", "started_at",
               "finished_at", "counts", "todos")
TODO_COLUMNS = ("sweep_id", "run", "plan", "todo_id", "repo", "title", "status", "attempts",
                "exit_code", "duration", "worker", "reason", "output_tail", "finished_at")


class Kept(TypedDict):
    """One sweep as a row of the 0.2 ``archive`` table keeps it (its ``data``, JSON)."""

    #: Its hash: record, counters and checkpoints alike (values as Redis held them).
    record: dict[str, str]
    #: Its score in the sweeps' index (its latest start).
    score: float | None
    #: Its event stream, oldest first: [entry id, fields] per entry.
    events: list[tuple[str, Fields]]
    #: Rows kept by coord 0.1: a hash per checkpoint (todo -> its fields) ...
    checkpoints: NotRequired[dict[str, dict[str, str]]]
    #: ... and the eager counts (todo -> count).
    remaining: NotRequired[dict[str, str]]


class CarriedOver(TypedDict):
    """What a carry-over did (the marker's value)."""

    file: str
    at: float
    sweeps: int  # archived sweeps written now (not there already, not expired)
    expired: int  # archived sweeps past their retention: not carried
    events: int  # events added to the global stream
    runs: int  # history runs recorded now


def old_file(catalog: str | os.PathLike[str]) -> Path:
    """The 0.2 file of a catalog: beside the real file (symlinks resolved, like the lock,
    the audit log and the embedded server's directory)."""
    return Beside.of(catalog).history_0_2


def carry_over(r: redis.Redis, keys: Keys, catalog: str | os.PathLike[str], *,
               retention_days: float, history_days: float,
               events_maxlen: int) -> CarriedOver | None:
    """Carry the catalog's 0.2 file over into ``r``, once (see the module docstring);
    None when there is nothing to do. Raises on a failure, marking nothing."""
    path = old_file(catalog)
    if not path.exists():
        return None
    if r.exists(keys.migrated_02):
        set_aside(path)  # carried over by a process that could not rename it
        return None
    try:
        db = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True, timeout=30.0)
    except sqlite3.OperationalError:
        if not path.exists():
            return None  # another process carried it over and set it aside just now
        raise
    try:
        sweeps = archived(db)
        runs = history_runs(db)
    finally:
        db.close()
    now = time.time()
    done: CarriedOver = {"file": str(path), "at": now, "sweeps": 0, "expired": 0,
                         "events": 0, "runs": 0}
    global_events: list[tuple[str, Fields]] = []
    for sweep_id, data in sweeps:
        ttl = _retention_left(data, retention_days, now)
        if ttl is not None and ttl <= 0:
            done["expired"] += 1
            continue
        done["sweeps"] += _write_sweep(r, keys, sweep_id, data, ttl)
        # Of every sweep carried, now or by an attempt cut off after writing it.
        global_events += [(eid, fields) for eid, fields in data["events"]
                          if not Event.from_entry(eid, fields).of_todo]
    done["events"] = _merge_global(r, keys, global_events, events_maxlen)
    done["runs"] = RedisHistory(r, keys, days=history_days).record_all(runs)
    r.set(keys.migrated_02, json.dumps(done, separators=(",", ":")), nx=True)
    log.info("carried over %s into the embedded server: %d sweeps (%d expired), %d history "
             "runs", path, done["sweeps"], done["expired"], done["runs"])
    set_aside(path)
    return done


# -- reading the 0.2 file ---------------------------------------------------------------
def _has_table(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                      [name]).fetchone() is not None


def archived(db: sqlite3.Connection) -> list[tuple[str, Kept]]:
    """The archived sweeps, oldest first."""
    if not _has_table(db, "archive"):
        return []
    return [(str(sid), json.loads(text)) for sid, text in
            db.execute("SELECT sweep_id, data FROM archive ORDER BY created_at, sweep_id")]


def history_runs(db: sqlite3.Connection) -> list[tuple[Row, list[Row]]]:
    """The history runs, oldest end first, each with its todo rows (as
    ``RedisHistory.record`` takes them)."""
    if not _has_table(db, "runs"):
        return []
    todos: dict[tuple[str, int], list[Row]] = {}
    if _has_table(db, "todos"):
        for row in db.execute(f"SELECT {', '.join(TODO_COLUMNS)} FROM todos "
                              "ORDER BY sweep_id, run, todo_id"):
            todo = dict(zip(TODO_COLUMNS, row))
            todos.setdefault((str(todo["sweep_id"]), int(todo["run"])), []).append(todo)
    out: list[tuple[Row, list[Row]]] = []
    for row in db.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs "
                          "ORDER BY finished_at, sweep_id, run"):
        run: dict[str, object] = dict(zip(RUN_COLUMNS, row))
        run["counts"] = json.loads(str(run["counts"] or "{}"))
        out.append((run, todos.get((str(run["sweep_id"]), int(str(run["run"]))), [])))
    return out


# -- writing into Redis ---------------------------------------------------------------
def _retention_left(data: Kept, retention_days: float, now: float) -> float | None:
    """Seconds an ended sweep has left to be kept (None: not ended, kept as it is)."""
    record = data["record"]
    status = decode(record.get("status", "null"))
    finished = decode(record.get("finished_at", "null"))
    if status not in SWEEP_ENDED or not isinstance(finished, (int, float)):
        return None
    return retention_days * 86400 - (now - float(finished))


def _hash_of(data: Kept) -> dict[str, str]:
    """The sweep hash of an archived row; a row kept by coord 0.1 moved into it."""
    fields = dict(data["record"])
    if "checkpoints" in data or "remaining" in data:
        fields.update({str(k): str(v) for k, v in legacy_fields(
            data.get("checkpoints") or {}, data.get("remaining") or {}).items()})
    return fields


def _write_sweep(r: redis.Redis, keys: Keys, sweep_id: str, data: Kept,
                 ttl: float | None) -> bool:
    """Write one archived sweep, unless the server holds it; True if written (one
    script call, ``lua/carry_sweep.lua``: its header says the race it closes)."""
    body = json.dumps({"fields": _hash_of(data), "events": data["events"]},
                      separators=(",", ":"), ensure_ascii=False)
    score = float(data.get("score") or time.time())
    keep = 0 if ttl is None else max(1, int(ttl))
    return bool(lua("carry_sweep")(
        r, [keys.sweep(sweep_id), keys.sweep_events(sweep_id), keys.sweeps],
        [sweep_id, score, keep, body]))


def _merge_global(r: redis.Redis, keys: Keys, events: Sequence[tuple[str, Fields]],
                  maxlen: int) -> int:
    """Add ``events`` the global stream lacks, in id order; how many were added (one
    script call, ``lua/carry_events.lua``: its header says the race it closes)."""
    wanted = sorted({eid: fields for eid, fields in events}.items(),
                    key=lambda e: stream_id_key(e[0]))
    if not wanted:
        return 0
    body = json.dumps(wanted, separators=(",", ":"), ensure_ascii=False)
    return int(lua("carry_events")(r, [keys.events], [body, maxlen]))


def set_aside(path: Path) -> bool:
    """Rename the carried-over file (and its ``-wal``, ``-shm``) to ``<name>.migrated``;
    False when it stays (a ``.migrated`` file is there already: never overwritten)."""
    done = path.with_name(path.name + DONE_SUFFIX)
    if done.exists():
        log.warning("%s was carried over before (%s exists): left as it is", path, done)
        return False
    try:
        for suffix in ("-wal", "-shm", ""):  # the database file last
            try:
                os.replace(path.with_name(path.name + suffix), done.with_name(done.name + suffix))
            except FileNotFoundError:
                pass  # none, or another process moved it
    except OSError as exc:
        log.warning("%s was carried over but cannot be renamed (%s): left as it is", path, exc)
        return False
    return True
