"""Sweep records and per-todo checkpoints: the runtime's source of truth.

Each value in these hashes is JSON text, per field, so ints, floats, None and
strings come back as they went in. Every transition that depends on the
current state (a status change, a claim, a lease holder's write) happens in a
Lua script that reads and writes in one step; plain writes are for the one
writer that owns a record at that moment (the sweep coordinator).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any

import redis

from coordination.keys import Keys
from coordination.runtime.client import lua
from coordination.runtime.leases import Lease
from coordination.status import TERMINAL, SweepStatus, TodoStatus  # noqa: F401 (TERMINAL re-exported)

log = logging.getLogger(__name__)

TODO_STATUSES = frozenset(TodoStatus)
CLAIM_RESULTS = frozenset({"claimed", "taken_over", "busy", "terminal", "stale", "poisoned"})
LOST_RESULTS = frozenset({"requeued", "poisoned", "alive", "changed", "gone"})


def encode(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def decode(raw: str) -> Any:
    """JSON value of a field; text written by something else comes back as is."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _decode_hash(h: Any) -> dict[str, Any]:
    return {str(k): decode(v) for k, v in h.items()}


def _mapping(fields: dict[str, Any]) -> dict[Any, Any]:
    """Field -> JSON text, typed loosely for redis-py's HSET mapping."""
    return {k: encode(v) for k, v in fields.items()}


def _pairs(fields: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for k, v in fields.items():
        out += [k, encode(v)]
    return out


class CheckpointStore:
    """Reads and writes sweep records and todo checkpoints."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys

    # -- sweeps -----------------------------------------------------------------
    def create_sweep(self, sweep_id: str, record: dict[str, Any], todo_ids: list[str]) -> None:
        """Write the sweep, a pending checkpoint per todo and its index entry at once.

        MULTI/EXEC so that a reader (status, the supervisor) never finds the
        sweep listed without all of its checkpoints.
        """
        record = dict(record)
        record.setdefault("status", SweepStatus.queued.value)
        record.setdefault("created_at", time.time())
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.keys.sweep(sweep_id), mapping=_mapping(record))
        initial = _mapping({"status": TodoStatus.pending.value, "attempts": 0})
        for todo_id in todo_ids:
            pipe.hset(self.keys.checkpoint(sweep_id, todo_id), mapping=initial)
        pipe.zadd(self.keys.sweeps, {sweep_id: float(record["created_at"])})
        pipe.execute()

    def get_sweep(self, sweep_id: str) -> dict[str, Any] | None:
        """The sweep record with ``id`` added, or None if unknown."""
        h = self.r.hgetall(self.keys.sweep(sweep_id))
        if not h:
            return None
        rec = _decode_hash(h)
        rec.setdefault("id", sweep_id)
        return rec

    def get_sweep_fields(self, sweep_id: str, fields: tuple[str, ...]) -> dict[str, Any] | None:
        """Some fields of the sweep record (one HMGET; never its large spec unless
        asked), with ``id`` added; None if the sweep is unknown (no ``status``)."""
        names = fields if "status" in fields else ("status", *fields)
        values = self.r.hmget(self.keys.sweep(sweep_id), list(names))
        rec = {k: decode(str(v)) for k, v in zip(names, values) if v is not None}
        if "status" not in rec:
            return None
        rec["id"] = sweep_id
        return rec

    def sweep_status(self, sweep_id: str) -> str | None:
        """The sweep's status, or None if it is unknown (one HGET)."""
        raw = self.r.hget(self.keys.sweep(sweep_id), "status")
        return None if raw is None else str(decode(str(raw)))

    def update_sweep(self, sweep_id: str, **fields: Any) -> None:
        if fields:
            self.r.hset(self.keys.sweep(sweep_id), mapping=_mapping(fields))

    def set_sweep_status(
        self, sweep_id: str, new: str, *, allowed_from: set[str] | None = None, **fields: Any
    ) -> bool:
        """Move the sweep to ``new`` if its status is in ``allowed_from`` (None: any).

        False when the sweep is unknown or in another state.
        """
        allowed = "*" if allowed_from is None else encode(sorted(allowed_from))
        res = lua("status_cas")(
            self.r, [self.keys.sweep(sweep_id)], [new, allowed, "", *_pairs(fields)]
        )
        return bool(res)

    def list_sweeps(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first; ids whose record is gone are dropped from the index."""
        ids = [str(i) for i in self.r.zrevrange(self.keys.sweeps, 0, max(0, limit - 1))]
        pipe = self.r.pipeline(transaction=False)
        for sid in ids:
            pipe.hgetall(self.keys.sweep(sid))
        out: list[dict[str, Any]] = []
        gone: list[str] = []
        for sid, h in zip(ids, pipe.execute()):
            if not h:
                gone.append(sid)
                continue
            rec = _decode_hash(h)
            rec.setdefault("id", sid)
            out.append(rec)
        if gone:
            self.r.zrem(self.keys.sweeps, *gone)
        return out

    def delete_sweep(self, sweep_id: str, todo_ids: Iterable[str] | None = None) -> None:
        """Remove the sweep and everything under it.

        Without ``todo_ids`` the checkpoints are found by SCAN over the sweep's
        key prefix (slow on a big keyspace, but deletion is rare).
        """
        if todo_ids is None:
            pattern = _glob_escape(self.keys.checkpoint(sweep_id, "\0")).replace("\0", "*")
            victims = list(self.r.scan_iter(match=pattern, count=1000))
        else:
            victims = [self.keys.checkpoint(sweep_id, t) for t in todo_ids]
        victims += [
            self.keys.sweep(sweep_id),
            self.keys.remaining(sweep_id),
            self.keys.sweep_events(sweep_id),
            self.keys.supervisor_lock(sweep_id),
        ]
        pipe = self.r.pipeline(transaction=True)
        for i in range(0, len(victims), 1000):
            pipe.delete(*victims[i : i + 1000])
        pipe.zrem(self.keys.sweeps, sweep_id)
        pipe.execute()

    def _sweep_keys(self, sweep_id: str, todo_ids: Iterable[str]) -> list[str]:
        """The keys a sweep keeps while it is kept. Not its supervisor lock: that
        one always expires by itself within a supervise interval, and stretching
        it to the retention (or PERSISTing it on resume) would stop every
        supervisor pass over the sweep - a resumed sweep would never again have a
        lost todo re-sent or its deadline enforced."""
        return [
            self.keys.sweep(sweep_id), self.keys.remaining(sweep_id),
            self.keys.sweep_events(sweep_id),
            *(self.keys.checkpoint(sweep_id, t) for t in todo_ids),
        ]

    def expire_sweep(
        self, sweep_id: str, todo_ids: Iterable[str], seconds: float, *, longest_sweep: float = 0.0
    ) -> None:
        """Let an ended sweep's keys expire in ``seconds`` (retention), in one pipeline.

        Index entries scored before ``now - seconds - longest_sweep`` go too: an
        entry is scored by its sweep's latest (re)start, the sweep ended at most
        ``longest_sweep`` later and was kept ``seconds`` more, so its record is
        gone (``list_sweeps`` drops entries whose record went earlier).
        """
        ttl = max(1, int(seconds))
        pipe = self.r.pipeline(transaction=False)
        for key in self._sweep_keys(sweep_id, todo_ids):
            pipe.expire(key, ttl)
        pipe.zremrangebyscore(self.keys.sweeps, "-inf", f"({time.time() - seconds - longest_sweep}")
        pipe.execute()

    def persist_sweep(self, sweep_id: str, todo_ids: Iterable[str]) -> None:
        """Keep a sweep's keys again (it is running once more: resume).

        Its index entry is scored by this restart, so no trim drops it while it
        runs or is kept; a supervisor lock left from before is cleared, so the
        resumed sweep is supervised at once.
        """
        pipe = self.r.pipeline(transaction=False)
        for key in self._sweep_keys(sweep_id, todo_ids):
            pipe.persist(key)
        pipe.delete(self.keys.supervisor_lock(sweep_id))
        pipe.zadd(self.keys.sweeps, {sweep_id: time.time()})
        pipe.execute()

    # -- todo checkpoints -------------------------------------------------------
    def get(self, sweep_id: str, todo_id: str) -> dict[str, Any] | None:
        h = self.r.hgetall(self.keys.checkpoint(sweep_id, todo_id))
        return _decode_hash(h) if h else None

    def get_all(self, sweep_id: str, todo_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Checkpoints of many todos in one round trip; unknown todos are left out."""
        pipe = self.r.pipeline(transaction=False)
        for todo_id in todo_ids:
            pipe.hgetall(self.keys.checkpoint(sweep_id, todo_id))
        return {t: _decode_hash(h) for t, h in zip(todo_ids, pipe.execute()) if h}

    def get_fields_all(self, sweep_id: str, todo_ids: list[str], fields: tuple[str, ...]
                       ) -> dict[str, dict[str, Any]]:
        """``fields`` of many todos' checkpoints in one round trip (HMGET each), the
        fields a checkpoint lacks left out; todos without a ``status`` are left out.

        What a pass over a big sweep reads: a checkpoint also holds its command's
        output tails (``COORD_OUTPUT_TAIL_BYTES`` each), which a pass never looks at;
        reading them all would cost a pass time and memory in proportion to output."""
        if "status" not in fields:
            fields = ("status", *fields)
        pipe = self.r.pipeline(transaction=False)
        for todo_id in todo_ids:
            pipe.hmget(self.keys.checkpoint(sweep_id, todo_id), fields)
        out: dict[str, dict[str, Any]] = {}
        for t, values in zip(todo_ids, pipe.execute()):
            cp = {f: decode(v) for f, v in zip(fields, values) if v is not None}
            if "status" in cp:
                out[t] = cp
        return out

    def orphaned(self, checkpoints: dict[str, dict[str, Any]]) -> list[str]:
        """Todos (of ``get_all``'s result) that are running under a lease no longer
        held by their token: candidates for re-dispatch.

        Only a hint, read in one pipelined round trip; the re-dispatched task's
        ``claim`` decides atomically (a holder that renewed just now stays 'busy').
        """
        running = [
            (t, cp) for t, cp in checkpoints.items()
            if cp.get("status") == TodoStatus.running and cp.get("lease_key")
        ]  # fmt: skip
        if not running:
            return []
        pipe = self.r.pipeline(transaction=False)
        for _t, cp in running:
            pipe.get(cp["lease_key"])
        held = pipe.execute()
        return [t for (t, cp), cur in zip(running, held) if cur != cp.get("token")]

    def set_fields(self, sweep_id: str, todo_id: str, **fields: Any) -> None:
        """Unconditional write, for the one coordinator that owns the todo now."""
        if fields:
            self.r.hset(self.keys.checkpoint(sweep_id, todo_id), mapping=_mapping(fields))

    def set_status_if(
        self,
        sweep_id: str,
        todo_id: str,
        new: str,
        allowed_from: set[str],
        *,
        expect_token: str | None = None,
        **fields: Any,
    ) -> bool:
        """Compare-and-set of a todo's status (and ``fields`` with it)."""
        res = lua("status_cas")(
            self.r,
            [self.keys.checkpoint(sweep_id, todo_id)],
            [new, encode(sorted(allowed_from)), expect_token or "", *_pairs(fields)],
        )
        return bool(res)

    def claim(
        self, sweep_id: str, todo_id: str, *, lease: Lease, worker: str, now: float,
        max_lost: int = 0,
    ) -> str:
        """Claim the todo for ``lease`` before running it; see CLAIM_RESULTS.

        'claimed'/'taken_over': run it. 'busy': a live holder runs it.
        'terminal': already done, or no such checkpoint (nothing to run).
        'stale': ``lease`` is older than the stored fence, or is no longer held.
        'poisoned': taking it over was its ``max_lost``-th lost run; it is now
        ``failed`` (a poison todo) and must not run.
        """
        res = lua("checkpoint_claim")(
            self.r,
            [self.keys.checkpoint(sweep_id, todo_id), lease.key],
            [lease.token, lease.fence, lease.key, encode(worker), encode(now), max_lost],
        )
        return str(res)

    def write(self, sweep_id: str, todo_id: str, fields: dict[str, Any], *, lease: Lease) -> bool:
        """A lease holder's fenced write; False if the holder was overtaken."""
        res = lua("checkpoint_write")(
            self.r,
            [self.keys.checkpoint(sweep_id, todo_id), lease.key],
            [lease.token, lease.fence, *_pairs(fields)],
        )
        if res != "ok":
            log.info("rejected write to %s/%s by fence %s: %s", sweep_id, todo_id, lease.fence, res)
            return False
        return True


def _glob_escape(s: str) -> str:
    """Escape Redis glob specials so a sweep id is matched literally."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in s)
