"""Embedded sweeps outlive their process: their Redis keys, kept beside the catalog.

An embedded sweep lives in the process's in-memory server (fakeredis), which goes
with the process. When one of its runs ends, :func:`save` exports the sweep's keys
(its hash: record, counters and checkpoints; its index score; its event stream)
as one JSON row of the ``archive`` table of the catalog's history file
(``.<catalog name>.coord.history.sqlite``, beside the catalog, like the audit log).
A later embedded command :func:`restore`\\ s what it needs into its own server, so
``sweep list|status``, ``events`` and ``sweep resume`` read it through the very same
code as a live sweep.

Two embedded processes on one catalog each write their own sweeps' rows (SQLite
serialises the writes; a row is replaced only by a later save of the same sweep).
Rows older than ``COORD_RETENTION_DAYS`` go when a sweep is saved, like the keys of
an ended sweep in a real Redis.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, NotRequired, TypedDict, cast

from coordination.runtime.history import connect
from coordination.runtime.checkpoints import legacy_fields
from coordination.runtime.events import Event, stream_id_key

if TYPE_CHECKING:
    import redis

    from redis.typing import EncodableT

    from coordination.keys import Keys
    from coordination.runtime.events import Fields

_SCHEMA = """
CREATE TABLE IF NOT EXISTS archive (
    sweep_id TEXT PRIMARY KEY, created_at REAL, saved_at REAL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS archive_created ON archive (created_at);
"""


class Kept(TypedDict):
    """One sweep's keys as a row of the archive keeps them (JSON). The client decodes
    replies: the hash and the entries' fields are text."""

    #: Its hash: record, counters and checkpoints alike.
    record: dict[str, str]
    #: Its score in the sweeps' index (its latest start).
    score: float | None
    #: Its event stream, oldest first: (entry id, fields) per entry ([id, fields] once
    #: read back from JSON).
    events: list[tuple[str, Fields]]
    #: Rows kept by coord 0.1: a hash per checkpoint (todo -> its fields) ...
    checkpoints: NotRequired[dict[str, dict[str, str]]]
    #: ... and the eager counts (todo -> count).
    remaining: NotRequired[dict[str, str]]


def export(r: redis.Redis, keys: Keys, sweep_id: str) -> Kept | None:
    """Every key of one sweep (not its supervisor lock), as plain JSON; None if unknown.

    The sweep's hash holds its record, counters and checkpoints alike (see
    :mod:`coordination.runtime.checkpoints`): ``record`` is all of it."""
    record = cast("dict[str, str]", r.hgetall(keys.sweep(sweep_id)))
    if not record:
        return None
    events = cast("list[tuple[str, Fields]]", r.xrange(keys.sweep_events(sweep_id), "-", "+"))
    return {
        "record": record,
        "score": r.zscore(keys.sweeps, sweep_id),
        "events": events,
    }


def _hash_of(data: Kept) -> dict[EncodableT, EncodableT]:
    """The sweep hash of an exported row; a row kept by coord 0.1 (a hash per
    checkpoint, ``checkpoints`` and ``remaining``) is moved into it as
    ``CheckpointStore.migrate`` moves a live one."""

    fields: dict[EncodableT, EncodableT] = {k: v for k, v in data["record"].items()}
    if "checkpoints" in data or "remaining" in data:
        fields.update(legacy_fields(data.get("checkpoints") or {}, data.get("remaining") or {}))
    return fields


def _entry_fields(fields: Fields) -> dict[EncodableT, EncodableT]:
    """A stream entry's fields as XADD takes them (redis-py's dict type is invariant:
    a dict of text alone does not fit it)."""
    return {k: v for k, v in fields.items()}


def save(r: redis.Redis, keys: Keys, path: Path, sweep_id: str, *,
         keep_days: float) -> bool:
    """Keep the sweep's keys in the history file at ``path``; False if it is unknown."""
    data = export(r, keys, sweep_id)
    if data is None:
        return False
    created = float(data["score"] or time.time())
    db = connect(path)
    assert db is not None
    try:
        db.executescript(_SCHEMA)
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO archive (sweep_id, created_at, saved_at, data) "
                   "VALUES (?, ?, ?, ?)",
                   [sweep_id, created, time.time(), json.dumps(data, separators=(",", ":"))])
        db.execute("DELETE FROM archive WHERE saved_at < ?", [time.time() - keep_days * 86400])
        db.execute("COMMIT")
    finally:
        db.close()
    return True


def restore(r: redis.Redis, keys: Keys, path: Path, *, sweep_ids: list[str] | None = None,
            newest: int | None = None) -> list[str]:
    """Load kept sweeps the server does not hold yet: ``sweep_ids``, or the ``newest``
    by creation. Returns the ids loaded. Their events that are not a todo's go to the
    global stream too, in id order, after whatever it holds (as ``EventLog.emit``
    would have put them)."""

    db = connect(path, create=False)
    if db is None:
        return []
    try:
        has = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'archive'").fetchone()
        if not has:
            return []
        if sweep_ids is not None:
            marks = ", ".join("?" * len(sweep_ids))
            rows = db.execute(f"SELECT sweep_id, data FROM archive WHERE sweep_id IN ({marks})",
                              sweep_ids).fetchall() if sweep_ids else []
        else:
            ids = [row[0] for row in db.execute(
                "SELECT sweep_id FROM archive ORDER BY created_at DESC LIMIT ?", [newest or -1])]
            pipe = r.pipeline(transaction=False)
            for sid in ids:
                pipe.exists(keys.sweep(sid))
            missing = [sid for sid, there in zip(ids, pipe.execute()) if not there]
            if not missing:
                return []
            marks = ", ".join("?" * len(missing))
            rows = db.execute(f"SELECT sweep_id, data FROM archive WHERE sweep_id IN ({marks})",
                              missing).fetchall()
    finally:
        db.close()
    loaded: list[str] = []
    every_event: list[tuple[tuple[int, int], str, Fields]] = []
    for sid, text in rows:
        if r.exists(keys.sweep(sid)):
            continue
        data: Kept = json.loads(text)
        pipe = r.pipeline(transaction=False)
        for eid, fields in data["events"]:
            pipe.xadd(keys.sweep_events(sid), _entry_fields(fields), id=eid)
            if not Event.from_entry(eid, fields).of_todo:  # see EventLog.emit
                every_event.append((stream_id_key(eid), eid, fields))
        # The hash last: a reader never finds a sweep without its events.
        pipe.hset(keys.sweep(sid), mapping=_hash_of(data))
        pipe.zadd(keys.sweeps, {sid: float(data.get("score") or time.time())})
        pipe.execute()
        loaded.append(sid)
    if every_event:
        last = r.xrevrange(keys.events, count=1)
        top = stream_id_key(str(last[0][0])) if last else (0, 0)
        pipe = r.pipeline(transaction=False)
        for key, eid, fields in sorted(every_event, key=lambda e: e[0]):
            if key > top:
                pipe.xadd(keys.events, _entry_fields(fields), id=eid)
                top = key
        pipe.execute()
    return loaded
