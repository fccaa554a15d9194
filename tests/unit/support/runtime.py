"""Leases and running todos the way workers get them: through ``Transitions.start``.

A worker never takes a lease on its own: ``lua/todo_start.lua`` takes the repo
slot with the next fence, claims the checkpoint and appends ``todo.started`` in
one step. Tests that need a lease, a running todo or a busy repo slot get them
here the same way, so they exercise the script production runs.
"""

from __future__ import annotations

import uuid

import redis

from coordination.keys import Keys
from coordination.runtime.checkpoints import CheckpointStore
from coordination.runtime.context import Runtime
from coordination.runtime.leases import Lease
from coordination.runtime.transitions import Started, Transitions


def new_sweep(r: redis.Redis, keys: Keys, sweep_id: str = "S", *,
              status: str = "running") -> CheckpointStore:
    """A sweep record whose todos may start (``status``: queued or running)."""
    store = CheckpointStore(r, keys)
    store.create_sweep(sweep_id, {"plan": "PLAN-001", "strategy": "levels", "status": status})
    return store


def start(t: Transitions, todo: str, *, sweep_id: str = "S", repo: str = "api",
          concurrency: int = 1, worker: str = "w", now: float | None = None,
          max_lost: int = 0, token: str | None = None) -> Started:
    """One start of a todo with no predecessors, as a worker's delivery makes it."""
    return t.start(sweep_id, todo, repo=repo, concurrency=concurrency, preds=[],
                   worker=worker, now=now, max_lost=max_lost, token=token)


def started(t: Transitions, todo: str, *, sweep_id: str = "S", repo: str = "api",
            concurrency: int = 1, worker: str = "w", now: float | None = None) -> Lease:
    """Start a todo that must start; its lease."""
    st = start(t, todo, sweep_id=sweep_id, repo=repo, concurrency=concurrency,
               worker=worker, now=now)
    assert st.verdict == "started" and st.lease is not None, st
    return st.lease


def hold_slot(rt: Runtime, repo: str, concurrency: int = 1) -> Lease:
    """One of ``repo``'s slots, held by a todo of another sweep (release it with
    ``rt.leases.release``)."""
    sweep_id = f"holder-{uuid.uuid4().hex[:8]}"
    new_sweep(rt.redis, rt.keys, sweep_id)
    return started(rt.transitions, "HOLDER", sweep_id=sweep_id, repo=repo,
                   concurrency=concurrency, worker="holder")
