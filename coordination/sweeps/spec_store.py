"""A sweep's frozen spec as the processes that run it read it: parsed once per
run, cached, and its signature checked.

The spec (:class:`~coordination.sweeps.spec.SweepSpec`) is frozen in the sweep's
record when it starts, resumes or rolls back (each a new ``run``). It can be
megabytes at 10,000 todos, so a process parses each run's spec once and keeps
the 32 most recent; a worker's threads that all get the first message of a
sweep at once wait for one parse.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from coordination.runtime.checkpoints import SweepRecord
from coordination.runtime.context import Runtime
from coordination.runtime.signing import sign, verify
from coordination.sweeps.spec import SweepSpec

_spec_cache: OrderedDict[tuple[str, int], SweepSpec] = OrderedDict()
_spec_lock = threading.Lock()
#: Held while a spec is read and parsed (3.6 MB of JSON and ~20 MB of objects at
#: 10,000 todos): concurrent first readers wait for one parse.
_spec_load_lock = threading.Lock()
_verified: dict[tuple[str, int], str | None] = {}

#: Record fields a worker needs per todo; the spec itself is read once per run.
HEAD_FIELDS = ("status", "run", "deadline")


def sweep_head(rt: Runtime, sweep_id: str) -> SweepRecord | None:
    """The small fields of a sweep record (not its spec): one HMGET."""
    return rt.checkpoints.get_sweep_fields(sweep_id, HEAD_FIELDS)


def load_spec(rt: Runtime, sweep_id: str, record: SweepRecord | None = None) -> SweepSpec | None:
    """The sweep's spec, parsed once per (sweep, run) per process. ``record`` needs
    only its ``run``; the spec is read from Redis when not cached."""
    if record is None:
        record = sweep_head(rt, sweep_id)
        if record is None:
            return None
    key = (sweep_id, int(record.get("run") or 0))
    spec = _cached_spec(key)
    if spec is not None:
        return spec
    with _spec_load_lock:
        spec = _cached_spec(key)  # parsed by another thread while this one waited
        if spec is not None:
            return spec
        text = record.get("spec")
        if text is None:
            text = (rt.checkpoints.get_sweep_fields(sweep_id, ("spec",)) or {}).get("spec")
            if text is None:
                return None
        spec = SweepSpec.from_json(text)
        with _spec_lock:
            _spec_cache[key] = spec
            while len(_spec_cache) > 32:
                _spec_cache.popitem(last=False)
        return spec


def cached_spec(sweep_id: str, run: int) -> SweepSpec | None:
    """The spec of this run of the sweep if this process has parsed it (no Redis)."""
    return _cached_spec((sweep_id, int(run)))


def _cached_spec(key: tuple[str, int]) -> SweepSpec | None:
    with _spec_lock:
        spec = _spec_cache.get(key)
        if spec is not None:
            _spec_cache.move_to_end(key)
        return spec


def spec_refusal(rt: Runtime, sweep_id: str, run: int) -> str | None:
    """Why this run's spec must not run (COORD_SIGNING_KEY), checked once per run."""
    key = (sweep_id, int(run))
    if key not in _verified:
        record = rt.checkpoints.get_sweep(sweep_id)
        _verified[key] = "sweep record vanished" if record is None else verify(
            dict(record), rt.settings.signing_keys)
        while len(_verified) > 256:
            _verified.pop(next(iter(_verified)))
    return _verified[key]


def signature_fields(rt: Runtime, spec: SweepSpec) -> dict[str, str | None]:
    """Record fields signing the spec (COORD_SIGNING_KEY), or clearing an old signature."""
    keys = rt.settings.signing_keys
    if not keys:
        return {"spec_sig": None, "spec_key_id": None}
    return dict(sign(spec.to_json(), keys[0]))


def level_index(spec: SweepSpec, todo_id: str) -> int:
    """The todo's level in this run for the level counters (-1: eager, or not in this run)."""
    if spec.strategy != "levels":
        return -1
    return spec.level_of().get(todo_id, -1)
