"""A ``cache:`` todo's turn on a worker: its key, the lookup, and what is stored after.

:mod:`workers.runner` calls, holding the todo's lease:

1. :meth:`TodoCache.lookup` before the command: the key (:mod:`workers.cache_key`) from
   the checkout, the command, env, probes and the predecessors' keys (read from their
   checkpoints: they ended before this todo could start, and each finish wrote its
   ``cache_key``). A stored entry under that key is a hit (unless the sweep was started
   with ``--no-cache``). Either way what was found is noted for `coord why`; a miss also
   names the parts that differ from the nearest earlier entry of the todo.
2. On a hit the runner finishes the todo ``cached`` with :meth:`TodoCache.hit_fields`,
   running nothing.
3. Otherwise the command runs, and :meth:`TodoCache.finished` stores a success (only a
   success) under the key, before the outcome is recorded: a sweep started right after
   this one ends finds it. Its checkpoint gets ``cache_key`` either way.

Nothing here fails a todo: a key that cannot be computed (not a git checkout, a probe
that did not end, Redis away) means the todo runs uncached, and `coord why` says why.

Entries are evidence (:mod:`coordination.trust.evidence`, kind ``cache``): sealed by
the worker that stores them, bound to their key and todo (:func:`entry_about`). A stored
entry whose seal fails (written by a process without ``COORD_SIGNING_KEY``, copied from
another key or todo, unsigned under ``COORD_REQUIRE_SIGNED=1``) is never reused: the
todo runs, and the refusal, naming the entry, is logged and noted for `coord why`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import redis

from coordination.runtime.cache import Entry, Lookup, ResultCache
from coordination.status import TodoStatus
from coordination.sweeps.outputs import outputs_fields
from coordination.sweeps.spec import Mode
from coordination.sweeps.turns import Turn
from coordination.trust.evidence import EvidenceKind, policy_of, refusal, seal
from workers.cache_key import KeyParts, NoKey, changed, compute, differing, probe_text
from workers.execute import run_command

log = logging.getLogger("coord.cache")

#: Seconds a probe may run.
PROBE_TIMEOUT = 60.0
#: Variables a todo gets from the todos before it (coordination.sweeps.outputs): part of
#: its key, hashed like the listed env.
INPUT_PREFIXES = ("COORD_IN_", "COORD_INPUTS")


class TodoCache:
    """One ``cache:`` todo's turn (see the module docstring)."""

    def __init__(self, turn: Turn, cwd: str, env: Mapping[str, str],
                 should_stop: Callable[[], str | None] | None = None) -> None:
        self.turn = turn
        self.cwd = cwd
        self.env = env  # what the command gets on top of the worker's environment
        self.should_stop = should_stop
        self.parts: KeyParts | None = None
        self.key: str | None = None
        self.began = time.monotonic()

    @property
    def settings(self) -> dict[str, list[str]]:
        return self.turn.todo.cache or {}

    def _probe(self, command: str) -> str:
        res = run_command(command, cwd=self.cwd, env=dict(self.env), timeout=PROBE_TIMEOUT,
                          tail_bytes=8192, should_stop=self.should_stop)
        if res.outcome != "exited":
            raise NoKey(f"probe {command!r} did not end ({res.reason or res.outcome})")
        return probe_text(res.stdout_tail + res.stderr_tail, res.exit_code)

    def _upstream(self) -> dict[str, str]:
        """Each predecessor's key; one without a key (no cache:) counts as the run it
        made, so its every run is a change to this todo's key. A predecessor this sweep
        does not run (``upstream``: a `todo run`, or one completed before) counts by its
        last key (:func:`last_key`), which is the key it has when a sweep runs it
        unchanged: run alone or in its plan's sweep, the todo computes the same key."""
        turn = self.turn
        preds = list(turn.todo.preds)
        out = {}
        if preds:
            cps = turn.rt.checkpoints.get_fields_all(turn.sweep_id, preds,
                                                     ("cache_key", "finished_at"))
            for p in preds:
                cp = cps.get(p) or {}
                key = cp.get("cache_key")
                out[p] = str(key) if key else f"uncached run of {turn.sweep_id} at {cp.get('finished_at')}"
        if turn.todo.upstream:
            results = turn.rt.results()
            for p in turn.todo.upstream:
                out[p] = last_key(results, p)
        return out

    def lookup(self) -> Entry | None:
        """Compute the key and look it up; the entry on a hit, else None."""
        turn, rt = self.turn, self.turn.rt
        note: Lookup = {"todo_id": turn.todo_id, "sweep_id": turn.sweep_id,
                        "run": turn.spec.run, "at": time.time(), "key": None, "hit": False}
        try:
            results = rt.results()
            full_env = {**os.environ, **self.env}
            # its env:, the listed variables, and the results it gets from the todos
            # before it (COORD_IN_*, COORD_INPUTS): an upstream result is an input
            names = [*self.settings.get("env", []), *turn.todo.env,
                     *(k for k in self.env if k.startswith(INPUT_PREFIXES))]
            self.parts = compute(
                cwd=self.cwd, command=turn.todo.run, env=full_env, env_names=names,
                inputs=self.settings.get("inputs", []), probes=self.settings.get("probes", []),
                upstream=self._upstream(), salt=results.salt(), run_probe=self._probe)
            self.key = note["key"] = self.parts.key()
            parts = self.parts.to_json()
            note["parts"] = _summary(parts)
            entry = None if turn.spec.no_cache else results.get(self.key)
            if entry is not None:
                why = self._refusal(entry)
                if why is not None:  # fail closed: never `cached` on an unchecked entry
                    log.warning("%s/%s: %s; running it", turn.sweep_id, turn.todo_id, why)
                    note["refused"] = why
                    entry = None
            if entry is not None:
                note["hit"] = True
                note["cached_from"] = reused(entry)
            else:
                if turn.spec.no_cache:
                    note["bypassed"] = True
                nearest, diff = self._why_missed(parts)
                note["nearest"] = nearest
                if nearest is not None:
                    note["changed"] = diff
            results.note(note)
            return entry
        except NoKey as exc:
            note["error"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - Redis away, a bug: the todo runs anyway
            log.warning("%s/%s: no cache lookup (%s); running it", turn.sweep_id,
                        turn.todo_id, exc, exc_info=not isinstance(exc, (redis.RedisError,
                                                                          OSError)))
            note["error"] = f"no lookup: {exc}"
        self.key = None
        try:
            turn.rt.results().note(note)
        except redis.RedisError:
            pass
        return None

    def _refusal(self, entry: Entry) -> str | None:
        """None if ``entry`` (found under this todo's key) may be trusted, else why not."""
        assert self.key is not None
        return entry_refusal(self.turn.rt.settings, self.key, self.turn.todo_id, entry)

    def _why_missed(self, parts: dict[str, Any]
                    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """The nearest earlier entry of this todo (fewest parts differing, then newest)
        and how this key differs from it; only entries whose seal holds (what `why`
        names is never a planted one)."""
        recent = [e for e in self.turn.rt.results().recent(self.turn.todo_id)
                  if isinstance(e, dict) and isinstance(e.get("key"), str)
                  and entry_refusal(self.turn.rt.settings, str(e["key"]), self.turn.todo_id,
                                    e) is None]
        if not recent:
            return None, {}
        best = min(enumerate(recent),
                   key=lambda ie: (len(differing(ie[1].get("parts") or {}, parts)), ie[0]))[1]
        return reused(best), changed(best.get("parts") or {}, parts, self.cwd)

    def hit_fields(self, entry: Entry) -> tuple[dict[str, object], dict[str, object]]:
        """The checkpoint fields and event of a todo that reuses ``entry``."""
        turn = self.turn
        came = reused(entry)
        why = (f"reused {came['sweep_id']} run {came['run']} ({came['todo_id']}"
               + (f" on {came['worker']})" if came.get("worker") else ")"))
        duration = round(time.monotonic() - self.began, 3)
        fields: dict[str, object] = {
            "attempts": turn.attempts, "exit_code": entry.get("exit_code", 0),
            "finished_at": time.time(), "duration": duration, "reason": why,
            "output_tail": entry.get("output_tail") or "", "stdout_bytes": 0,
            "stderr_bytes": 0, "cache_key": self.key, "cached_from": came,
        }
        event: dict[str, object] = {"worker": turn.host, "exit_code": fields["exit_code"],
                                    "attempts": turn.attempts, "duration": duration,
                                    "reason": why, "cached_from": came}
        outputs = entry.get("outputs")
        if outputs:  # the reused run's results, for the todos after it ($COORD_OUTPUT),
            # sealed anew as this todo's in this sweep (the entry's seal was checked)
            fields.update(outputs_fields(turn.rt.settings.signing_keys, turn.sweep_id,
                                         turn.todo_id, outputs, run=turn.spec.run))
            event["outputs"] = sorted(outputs)
            turn.keep_outputs()
        return fields, event

    def finished(self, status: TodoStatus, fields: dict[str, object]) -> None:
        """After the command ran (before its outcome is recorded): a success is stored
        under the key; the checkpoint gets the key (``fields``, updated)."""
        fields["cache_key"] = self.key
        fields["cached_from"] = None
        if self.key is None or status != TodoStatus.succeeded or self.turn.spec.mode != Mode.run:
            return
        turn = self.turn
        entry: Entry = {
            "key": self.key, "exit_code": _number(fields.get("exit_code"), int),
            "output_tail": str(fields.get("output_tail") or ""),
            "duration": _number(fields.get("duration"), float), "worker": turn.host,
            "sweep_id": turn.sweep_id, "run": turn.spec.run, "todo_id": turn.todo_id,
            "finished_at": _number(fields.get("finished_at"), float) or time.time(),
            "parts": self.parts.to_json() if self.parts else {},
        }
        outputs = fields.get("outputs")
        if isinstance(outputs, dict) and outputs:
            entry["outputs"] = {str(k): str(v) for k, v in outputs.items()}
        entry = cast(Entry, seal(EvidenceKind.cache, entry_about(self.key, turn.todo_id), entry,
                                 turn.rt.settings.signing_keys))
        try:
            turn.rt.results().put(self.key, entry)
        except Exception as exc:  # noqa: BLE001 - never fails the todo that succeeded
            log.warning("%s/%s: success not stored in the cache (%s)", turn.sweep_id,
                        turn.todo_id, exc)


def entry_about(key: str, todo_id: str) -> dict[str, str]:
    """What a cache entry is about: the key it is stored under and its todo (supplied by
    the reader from where it looked, never trusted from the entry)."""
    return {"key": key, "todo": todo_id}


def entry_refusal(settings: Any, key: str, todo_id: str, entry: Mapping[str, Any]
                  ) -> str | None:
    """None if a process of ``settings`` may reuse ``entry``, found under ``key`` for
    ``todo_id``; else why not, naming the entry."""
    return refusal(EvidenceKind.cache, entry_about(key, todo_id), entry, policy_of(settings),
                   f"cache entry {key[:12]} of {todo_id}")


def last_key(results: ResultCache, todo_id: str) -> str:
    """The key of a todo's last successful run, as far as the cache knows: its last
    lookup's when that was a hit or is stored (it succeeded), else its newest stored
    entry's; "no cached run" when it has none (no cache:, or none kept)."""
    seen = results.lookup(todo_id)
    key = (seen or {}).get("key")
    if key and ((seen or {}).get("hit") or results.get(str(key)) is not None):
        return str(key)
    stored = results.recent(todo_id)
    return str(stored[0].get("key")) if stored and stored[0].get("key") else "no cached run"


def _number(value: object, kind: type[int] | type[float]) -> Any:
    return kind(value) if isinstance(value, (int, float)) else kind(0)


def reused(entry: Entry) -> dict[str, Any]:
    """Which run an entry is: what a ``cached`` todo names."""
    return {k: entry.get(k) for k in ("sweep_id", "run", "todo_id", "worker", "finished_at",
                                      "key")}


def _summary(parts: dict[str, Any]) -> dict[str, Any]:
    """A key's parts as `coord why` shows them for a hit (counts, names; no hashes)."""
    return {"tree": parts.get("tree"),
            "dirty": len(parts.get("dirty") or {}) + int(parts.get("dirty_more") or 0),
            "inputs": sorted(parts.get("inputs") or {}),
            "command": parts.get("command"), "cwd": parts.get("cwd"),
            "env": sorted(parts.get("env") or {}), "probes": sorted(parts.get("probes") or {}),
            "upstream": parts.get("upstream") or {}}
