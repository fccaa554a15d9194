"""The result cache's Redis side: successful runs stored under their cache key, each
todo's recent keys, and what each todo's last lookup found (`coord why`).

A key is computed by the worker that starts a ``cache:`` todo (``workers/cache_key.py``);
this module only stores and reads, all under the namespace's keys (``Keys.cache_*``), so a
namespace never reads another's entries. Only successful runs are ever stored
(:meth:`ResultCache.put` is called for ``succeeded`` only). Entries and notes expire
after ``COORD_CACHE_DAYS``; storing a key again starts its days afresh.

Layout:

* ``cache:entry:<key>``: JSON :class:`Entry` (exit code, output tail, duration, worker,
  where it ran, the key's parts, the outputs it passes on), sealed by its writer
  (``sig``/``kid``; checked by the reader, ``workers/caching.py``, never here);
* ``cache:todo:<todo>``: list of the keys the todo's successes were stored under,
  newest first (:data:`RECENT` of them): the candidates for "the nearest earlier entry";
* ``cache:why:{<sweep>}:<todo>`` and ``cache:why:<todo>``: JSON :class:`Lookup`, the last
  lookup in that sweep and in any;
* ``cache:salt``: random bytes that env values are hashed with (set once).
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any, TypedDict

from coordination.runtime.scripts import lua

if TYPE_CHECKING:
    import redis

    from coordination.keys import Keys

#: Keys kept per todo in its list of recent ones.
RECENT = 20


class Entry(TypedDict, total=False):
    """A stored successful run (``cache:entry:<key>``)."""

    key: str
    exit_code: int
    output_tail: str
    duration: float
    worker: str
    sweep_id: str
    run: int
    todo_id: str
    finished_at: float
    parts: dict[str, Any]  # the key's parts, as workers/cache_key.KeyParts.to_json gives them
    outputs: dict[str, str]  # what it wrote to $COORD_OUTPUT: a cached todo passes them on
    #: its seal (coordination.trust.evidence, kind ``cache``, about its key and todo):
    #: a reader reuses only an entry whose seal holds (workers/caching.py)
    sig: str
    kid: str


class Lookup(TypedDict, total=False):
    """What a todo's cache lookup found (``cache:why:...``): what `coord why` prints."""

    todo_id: str
    sweep_id: str
    run: int
    at: float
    key: str | None  # None: no key could be computed (``error`` says why)
    hit: bool
    bypassed: bool  # --no-cache: not looked up (the success is still stored)
    error: str
    #: the entry stored under the key was not reused: why (its seal failed), naming it
    refused: str
    cached_from: dict[str, Any]  # hit: the run reused
    nearest: dict[str, Any] | None  # miss: the entry compared with (None: no earlier one)
    changed: dict[str, Any]  # miss: the parts that differ from ``nearest``
    parts: dict[str, Any]  # summary of this key's parts


class ResultCache:
    """Entries, recent keys and lookup notes of one namespace."""

    def __init__(self, r: redis.Redis, keys: Keys, *, days: float) -> None:
        self.r = r
        self.keys = keys
        self.ttl_ms = max(1000, int(days * 86400 * 1000))
        self._salt: str | None = None

    def salt(self) -> str:
        """The namespace's salt for env values (created once by whoever asks first)."""
        if self._salt is None:
            self.r.set(self.keys.cache_salt, secrets.token_hex(16), nx=True)
            got = self.r.get(self.keys.cache_salt)
            self._salt = got.decode() if isinstance(got, bytes) else str(got)
        return self._salt

    def get(self, key: str) -> Entry | None:
        raw = self.r.get(self.keys.cache_entry(key))
        return None if raw is None else _load(raw)

    def put(self, key: str, entry: Entry) -> None:
        """Store a successful run under ``key`` and list it as its todo's newest
        (``lua/cache_put.lua``: atomic; two identical runs at once leave one whole entry)."""
        lua("cache_put")(
            self.r, [self.keys.cache_entry(key), self.keys.cache_recent(entry["todo_id"])],
            [json.dumps(entry, separators=(",", ":"), sort_keys=True), key, self.ttl_ms,
             RECENT])

    def recent(self, todo_id: str) -> list[Entry]:
        """The todo's stored runs still kept, newest first, each key once."""
        listed = self.r.lrange(self.keys.cache_recent(todo_id), 0, RECENT - 1)
        seen: list[str] = []
        for k in listed:
            k = k.decode() if isinstance(k, bytes) else str(k)
            if k not in seen:
                seen.append(k)
        if not seen:
            return []
        raws = self.r.mget([self.keys.cache_entry(k) for k in seen])
        return [_load(raw) for raw in raws if raw is not None]

    def note(self, lookup: Lookup) -> None:
        """Keep what a lookup found, for its sweep and as the todo's last."""
        text = json.dumps(lookup, separators=(",", ":"), sort_keys=True)
        pipe = self.r.pipeline(transaction=False)
        pipe.set(self.keys.cache_lookup(lookup["todo_id"], lookup["sweep_id"]), text,
                 px=self.ttl_ms)
        pipe.set(self.keys.cache_lookup(lookup["todo_id"]), text, px=self.ttl_ms)
        pipe.execute()

    def lookup(self, todo_id: str, sweep_id: str | None = None) -> Lookup | None:
        """The todo's last lookup, in ``sweep_id`` or in any sweep."""
        raw = self.r.get(self.keys.cache_lookup(todo_id, sweep_id))
        return None if raw is None else _load(raw)

    def lookups(self, todo_ids: list[str], sweep_id: str | None = None,
                batch: int = 1000) -> dict[str, Lookup | None]:
        """:meth:`lookup` of many todos (a template's instances): one MGET per
        ``batch`` of them, not a round trip each. (In a sweep, the keys share its
        hash tag: one slot.)"""
        out: dict[str, Lookup | None] = {}
        for i in range(0, len(todo_ids), batch):
            part = todo_ids[i:i + batch]
            raws = self.r.mget([self.keys.cache_lookup(t, sweep_id) for t in part])
            out.update((t, None if raw is None else _load(raw)) for t, raw in zip(part, raws))
        return out


def _load(raw: bytes | str) -> Any:
    return json.loads(raw)
