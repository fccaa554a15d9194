"""coord 0.1's checkpoint hashes, moved into their sweep's record (layout 2).

coord 0.1 kept a hash per checkpoint (``Keys.legacy_checkpoint_prefix`` + todo, JSON text
per field) and a hash of eager counts (``Keys.legacy_remaining``) beside each sweep's
record. Since 0.2 a sweep is one hash (:mod:`coordination.runtime.checkpoints`), its
``layout`` field 2. :func:`run` finds the sweeps without it (the sweeps' index and the
active set name every sweep 0.1 recorded) and moves each one's old hashes into its
record: the step :mod:`coordination.runtime.migrations` runs once when a runtime is
opened. :func:`legacy_fields` is the same conversion for rows 0.2 archived as 0.1 kept
them (:mod:`.v02_embedded_file`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from coordination.keys import glob_escape
from coordination.runtime.sweep_fields import (
    LAYOUT,
    decode,
    encode,
    remaining_field,
    tail_field,
    todo_field,
)

if TYPE_CHECKING:
    import redis
    from redis.typing import EncodableT, FieldT

    from coordination.keys import Keys

log = logging.getLogger("coord.migrate")


def legacy_fields(checkpoints: Mapping[str, Mapping[str, object]],
                  remaining: Mapping[str, object]) -> dict[FieldT, EncodableT]:
    """The sweep-hash fields of coord 0.1's checkpoint hashes (todo -> its hash, JSON
    text per field) and eager counts (todo -> count), with the layout they now have."""
    fields: dict[FieldT, EncodableT] = {}
    for todo_id, h in checkpoints.items():
        if not h:
            continue
        cp = {str(k): decode(str(v)) for k, v in h.items()}
        tail = cp.pop("output_tail", None)
        cp = {k: v for k, v in cp.items() if v is not None}
        if tail:
            fields[tail_field(str(todo_id))] = str(tail)
            cp["has_tail"] = True
        fields[todo_field(str(todo_id))] = encode(cp)
    for todo_id, n in remaining.items():
        fields[remaining_field(str(todo_id))] = str(n)
    fields["layout"] = encode(LAYOUT)
    return fields


def old_sweeps(r: redis.Redis, keys: Keys) -> list[str]:
    """The recorded sweeps (listed in the index or the active set, with a record) whose
    record has no layout 2: those coord 0.1 wrote."""
    ids = sorted({str(s) for s in (*r.zrange(keys.sweeps, 0, -1),
                                   *r.smembers(keys.active_sweeps))})
    pipe = r.pipeline(transaction=False)
    for sid in ids:
        pipe.hmget(keys.sweep(sid), ["status", "layout"])
    return [sid for sid, (status, layout) in zip(ids, pipe.execute())
            if status is not None and (layout is None or decode(str(layout)) != LAYOUT)]


def move_sweep(r: redis.Redis, keys: Keys, sweep_id: str) -> bool:
    """Move a sweep recorded by coord 0.1 (a hash per checkpoint, a hash of eager
    counts) into its record's hash; True if there was anything to move.
    Idempotent: run again, it finds the old keys gone and marks the layout."""
    prefix = keys.legacy_checkpoint_prefix(sweep_id)
    old = [str(k) for k in r.scan_iter(match=glob_escape(prefix) + "*", count=1000)]
    legacy_remaining = keys.legacy_remaining(sweep_id)
    pipe = r.pipeline(transaction=False)
    for key in old:
        pipe.hgetall(key)
    pipe.hgetall(legacy_remaining)
    *hashes, remaining = pipe.execute()
    fields = legacy_fields({key[len(prefix):]: h for key, h in zip(old, hashes)},
                           remaining or {})
    pipe = r.pipeline(transaction=True)
    pipe.hset(keys.sweep(sweep_id), mapping=fields)
    if old:
        pipe.delete(*old)
    pipe.delete(legacy_remaining)
    pipe.execute()
    if old:
        log.info("sweep %s: moved %d checkpoints of coord 0.1 into its record", sweep_id,
                 len(old))
    return bool(old)


def run(r: redis.Redis, keys: Keys) -> int:
    """Move every sweep coord 0.1 recorded in ``keys``' namespace; how many had
    checkpoints to move."""
    return sum(move_sweep(r, keys, sid) for sid in old_sweeps(r, keys))
