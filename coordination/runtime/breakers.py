"""Repo circuit breakers: read and reset them (scripts move them as todos end).

A repo with ``breaker: {failures: N, cooldown: S}`` in the catalog has a hash
in Redis (``Keys.breaker``): ``failures`` (consecutive failed or lost todos,
across sweeps), ``state`` (:class:`~coordination.status.BreakerState`),
``opened_at``, and the half-open ``probe`` with how long it may run
(``probe_until``). ``lua/todo_finish.lua``, ``todo_lost.lua`` and
``todo_start.lua`` count, open, half-open and close it in the same step as the
outcome they record; this module only reads it and closes it by hand.
"""

from __future__ import annotations

from typing import Any

import redis

from coordination.keys import Keys
from coordination.status import BreakerState, EventKind


def breaker_state(r: redis.Redis, keys: Keys, repo: str) -> dict[str, Any]:
    """``{"state", "failures", "opened_at", "probe"}`` of one repo's breaker
    (closed with no failures when it never tripped)."""
    raw = r.hgetall(keys.breaker(repo)) or {}
    return {
        "state": str(raw.get("state") or BreakerState.closed),
        "failures": int(raw.get("failures") or 0),
        "opened_at": float(raw["opened_at"]) if raw.get("opened_at") else None,
        "probe": raw.get("probe") or None,
    }


def reset_breaker(r: redis.Redis, keys: Keys, events: Any, repo: str) -> dict[str, Any]:
    """Close a repo's breaker by hand; its held todos are sent again by the next
    supervisor pass. Returns the state it had."""
    before = breaker_state(r, keys, repo)
    r.hset(keys.breaker(repo), mapping={"state": str(BreakerState.closed), "failures": "0",
                                        "probe": "", "probe_until": "0"})
    if before["state"] != BreakerState.closed or before["failures"]:
        events.emit(EventKind.repo_breaker_closed, repo=repo, by="reset",
                    was=before["state"], failures=before["failures"])
    return before
