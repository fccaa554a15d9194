"""Shared context between todos (`coord context`): JSON values by key, per scope.

A scope is a sweep's (``sweep:<id>``: what a todo sees by default, from the
``COORD_SWEEP_ID`` its worker gives it) or a plan's (``plan:<id>``: shared by every
sweep of the plan). Outputs flow from a todo to its dependents only; the context is
for whatever any todo of the scope may read or write, in any order.

Each value may carry a TTL. A scope holds at most ``max_keys`` keys
(``COORD_CONTEXT_MAX_KEYS``, default 1000): setting a new key in a full scope evicts
its least recently used keys first (``lua/context_set.lua``: count, choice and write
in one step). A read that finds its value marks it used (``lua/context_get.lua``).
Hits, misses and evictions are counted by scope kind (``Keys.context_stats``), and
``coord metrics`` exposes them.

Values are evidence as outputs are (:mod:`coordination.trust.evidence`, kind
``context``), bound to their scope and key, and a reader refuses (:class:`ContextRefused`,
naming the record) one that fails its seal: written into Redis by someone without the
key, or copied from another key or scope. Who seals it:

- a todo, through its worker (:mod:`workers.context_proxy`: a todo holds no signing
  key), with the key derived for its own run (:mod:`coordination.trust.runkeys`); the
  record names that run (``by``: sweep, todo, run, plan), and it is bound to it: a
  reader derives the run's key again to check the seal, takes it only in that run's
  sweep's scope or its plan's, and asks ``runs`` (the sweeps' floor:
  :func:`coordination.sweeps.context_runs.run_check`) whether that run still stands: a
  value of a run its todo ran again after (an older sealed value put back) is refused;
- anyone else (`coord context` outside a todo) with ``COORD_SIGNING_KEY`` itself.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, TypedDict

import redis

from coordination.keys import Keys
from coordination.runtime.scripts import lua
from coordination.trust.evidence import EvidenceKind, refusal, seal
from coordination.trust.runkeys import RunId, run_keys, run_policy
from coordination.trust.signing import Policy

#: Whether the run a value names (``by``) still stands: None, else why not (the second
#: argument names the record).
RunCheck = Callable[[RunId, str], str | None]

#: Scope kinds: a sweep's, a plan's.
KINDS = ("sweep", "plan")
#: What a key may look like (it is part of a Redis key and of the export's JSON).
KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,199}\Z")
#: The most one value may hold (its JSON text, in bytes).
VALUE_CAP = 256 * 1024
#: The longest TTL a value may have (seconds: ten years).
MAX_TTL = 10 * 365 * 86400
#: The statistics a scrape reads, each ``<stat>:<kind>``.
STATS = ("hits", "misses", "evictions")


class ContextRefused(ValueError):
    """A stored value failed its seal: nothing of it is handed on; the message names it."""


class Entry(TypedDict):
    key: str
    value: Any
    ttl: float | None  # seconds left (None: no TTL)
    at: float  # when it was set (unix time)


def scope_of(kind: str, ident: str) -> str:
    """``sweep:<id>`` or ``plan:<id>``."""
    if kind not in KINDS:
        raise ValueError(f"unknown context scope kind {kind!r}")
    return f"{kind}:{ident}"


def kind_of(scope: str) -> str:
    return scope.partition(":")[0]


def check_key(key: str) -> str | None:
    """None for a good key, else what is wrong with it."""
    if KEY_RE.match(key):
        return None
    return (f"bad context key {key!r}: 1 to 200 of letters, digits and _ . : / -, "
            "starting with a letter, digit or _")


def about(scope: str, key: str) -> dict[str, str]:
    """What a context record is about (the reader supplies it from where it looked)."""
    return {"scope": scope, "key": key}


class ContextStore:
    """One namespace's shared context (see the module's docstring)."""

    def __init__(self, r: redis.Redis, keys: Keys, *, max_keys: int, policy: Policy,
                 runs: RunCheck | None = None) -> None:
        self.r = r
        self.keys = keys
        self.max_keys = max(1, int(max_keys))
        self.policy = policy
        self.runs = runs

    def _script_keys(self, scope: str, key: str) -> list[str]:
        k = self.keys
        return [k.context_lru(scope), k.context_value(scope, key), k.context_clock(scope),
                k.context_stats]

    def set(self, scope: str, key: str, value_text: str, *, ttl: float | None = None,
            by: RunId | None = None) -> list[str]:
        """Store ``value_text`` (JSON) under ``key``; returns the keys evicted for it.
        ``by``: the todo's run it is set for, sealed with that run's key (else with the
        signing key)."""
        body: dict[str, Any] = {"value": value_text, "at": round(time.time(), 3)}
        keys = self.policy.keys
        if by is not None:
            body["by"] = by.document()
            keys = run_keys(keys, by)
        record = seal(EvidenceKind.context, about(scope, key), body, keys)
        ttl_ms = 0 if not ttl else max(1, int(ttl * 1000))
        got = lua("context_set")(
            self.r, self._script_keys(scope, key),
            [key, json.dumps(record, separators=(",", ":"), sort_keys=True), ttl_ms,
             self.max_keys, self.keys.context_value_prefix(scope),
             f"evictions:{kind_of(scope)}"])
        return [_text(v) for v in got or []]

    def get(self, scope: str, key: str) -> str | None:
        """The JSON text under ``key`` (None: absent), marked used; ContextRefused when
        its record fails its seal."""
        raw = lua("context_get")(self.r, self._script_keys(scope, key),
                                 [key, f"hits:{kind_of(scope)}", f"misses:{kind_of(scope)}"])
        if raw is None or raw is False:
            return None
        return str(self._checked(scope, key, raw)["value"])

    def _checked(self, scope: str, key: str, raw: object) -> dict[str, Any]:
        what = f"context value {key!r} of {scope}"
        try:
            record = json.loads(_text(raw))
        except ValueError:
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("value"), str):
            raise ContextRefused(f"{what}: not a context record (written by hand?)")
        by = record.get("by")
        rid = None if by is None else RunId.of(by)
        if by is not None and rid is None:
            raise ContextRefused(f"{what}: names no run that set it (written by hand?)")
        policy = self.policy if rid is None else run_policy(self.policy, rid)
        why = refusal(EvidenceKind.context, about(scope, key), record, policy, what)
        if why is None and rid is not None:
            why = bound_refusal(scope, rid, what) or (
                self.runs(rid, what) if self.runs is not None else None)
        if why is not None:
            raise ContextRefused(why)
        return record

    def delete(self, scope: str, key: str) -> bool:
        """Remove ``key``; whether it was there."""
        pipe = self.r.pipeline(transaction=True)  # value and LRU place go together
        pipe.delete(self.keys.context_value(scope, key))
        pipe.zrem(self.keys.context_lru(scope), key)
        gone, _ = pipe.execute()
        return bool(gone)

    def entries(self, scope: str) -> list[Entry]:
        """Every live value of the scope, least recently used first (read only: no use
        is counted, no place in line moves). ContextRefused on a value failing its seal."""
        names = [_text(n) for n in self.r.zrange(self.keys.context_lru(scope), 0, -1)]
        if not names:
            return []
        pipe = self.r.pipeline(transaction=False)
        for n in names:
            pipe.get(self.keys.context_value(scope, n))
            pipe.pttl(self.keys.context_value(scope, n))
        replies = pipe.execute()
        out: list[Entry] = []
        for i, n in enumerate(names):
            raw, pttl = replies[2 * i], replies[2 * i + 1]
            if raw is None:
                continue  # expired (or evicted meanwhile)
            record = self._checked(scope, n, raw)
            out.append({"key": n, "value": json.loads(record["value"]),
                        "ttl": None if int(pttl) < 0 else round(int(pttl) / 1000, 3),
                        "at": float(record.get("at") or 0.0)})
        return out

    def stats(self) -> dict[str, int]:
        """``<stat>:<kind>`` -> count, every one of :data:`STATS` x :data:`KINDS`."""
        raw = self.r.hgetall(self.keys.context_stats)
        got = {_text(k): int(_text(v)) for k, v in raw.items()}
        return {f"{s}:{k}": got.get(f"{s}:{k}", 0) for s in STATS for k in KINDS}


def bound_refusal(scope: str, rid: RunId, what: str) -> str | None:
    """Why a value set by run ``rid`` is not taken in ``scope`` (a todo writes its own
    sweep's scope and its plan's, nothing else); None: it is."""
    kind, _, ident = scope.partition(":")
    if (kind == "sweep" and ident == rid.sweep) or (kind == "plan" and ident == rid.plan):
        return None
    return (f"{what}: set by {rid}, which writes only the scopes sweep:{rid.sweep} and "
            f"plan:{rid.plan}: copied here from another scope")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def export_document(scope: str, entries: list[Entry]) -> dict[str, object]:
    """`coord context export`: ``{"scope", "values": {key: {"value", "ttl"}}}``."""
    return {"scope": scope,
            "values": {e["key"]: {"value": e["value"], "ttl": e["ttl"]} for e in entries}}


def import_values(doc: Mapping[str, Any]) -> list[tuple[str, Any, float | None]]:
    """The ``(key, value, ttl)`` of an export document; ValueError naming what is wrong."""
    values = doc.get("values") if isinstance(doc, Mapping) else None
    if not isinstance(values, Mapping):
        raise ValueError('not an export of coord context: no "values" object')
    out: list[tuple[str, Any, float | None]] = []
    for key, item in values.items():
        bad = check_key(str(key))
        if bad:
            raise ValueError(bad)
        if not isinstance(item, Mapping) or "value" not in item:
            raise ValueError(f'values.{key}: not an object with a "value"')
        ttl = item.get("ttl")
        if ttl is not None and (not isinstance(ttl, (int, float)) or isinstance(ttl, bool)
                                or not math.isfinite(ttl) or not 0 < ttl <= MAX_TTL):
            raise ValueError(f"values.{key}.ttl: {ttl!r} is not a number of seconds from 0 "
                             f"to {MAX_TTL:,} (ten years)")
        out.append((str(key), item["value"], None if ttl is None else float(ttl)))
    return out
