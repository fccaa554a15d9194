"""Repo circuit breakers: every decision about them in Python, in one place.

A repo with ``breaker: {failures: N, cooldown: S}`` in the catalog has a hash
in Redis (``Keys.breaker``): ``failures`` (consecutive failed or lost todos,
across sweeps), ``state`` (:class:`~coordination.status.BreakerState`),
``opened_at``, and the half-open ``probe`` with how long it may run
(``probe_until``). The transition scripts (``lua/todo_finish.lua``,
``todo_lost.lua``, ``todo_start.lua``) count, open, half-open and close it in
the same step as the outcome they record, so a count can never disagree with
the outcome. Everything else is here: reading it, closing it by hand, and
deciding how many held todos may go again (:func:`release_count`).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from coordination.keys import Keys
from coordination.runtime.events import EventLog
from coordination.status import BreakerState, EventKind


@dataclass(frozen=True)
class Breaker:
    """One repo's breaker as stored (closed with no failures when it never tripped)."""

    state: BreakerState
    failures: int
    opened_at: float | None
    probe: str | None
    probe_until: float

    def to_dict(self) -> dict[str, str | int | float | None]:
        return {"state": str(self.state), "failures": self.failures,
                "opened_at": self.opened_at, "probe": self.probe}


def read_breaker(r: redis.Redis, keys: Keys, repo: str) -> Breaker:
    raw = r.hgetall(keys.breaker(repo)) or {}
    return Breaker(
        state=BreakerState(str(raw.get("state") or BreakerState.closed)),
        failures=int(raw.get("failures") or 0),
        opened_at=float(raw["opened_at"]) if raw.get("opened_at") else None,
        probe=str(raw.get("probe") or "") or None,
        probe_until=float(raw.get("probe_until") or 0),
    )


def breaker_state(r: redis.Redis, keys: Keys, repo: str) -> dict[str, str | int | float | None]:
    """``{"state", "failures", "opened_at", "probe"}`` of one repo's breaker."""
    return read_breaker(r, keys, repo).to_dict()


def release_count(b: Breaker, cooldown: float, now: float) -> int | None:
    """How many of a repo's held todos may be sent again now: None for all of them
    (closed: a probe succeeded, or ``coord repo reset``), 1 once its cooldown has
    passed (that one becomes the half-open probe, as does the next one after a
    probe that never reported back), else 0."""
    if b.state == BreakerState.closed:
        return None
    if b.state == BreakerState.open and now - (b.opened_at or 0.0) >= cooldown:
        return 1
    if b.state == BreakerState.half_open and now > b.probe_until:
        return 1
    return 0


def reset_breaker(r: redis.Redis, keys: Keys, events: EventLog,
                  repo: str) -> dict[str, str | int | float | None]:
    """Close a repo's breaker by hand; its held todos are sent again by the next
    supervisor pass. Returns the state it had."""
    before = read_breaker(r, keys, repo)

    def close(c: redis.Redis) -> None:  # (a client, or a transaction's pipeline)
        c.hset(keys.breaker(repo), mapping={"state": str(BreakerState.closed), "failures": "0",
                                            "probe": "", "probe_until": "0"})

    if before.state == BreakerState.closed and not before.failures:
        close(r)
        return before.to_dict()
    # its repo.breaker_closed written with the reset (a reset killed after it has said it)
    said = events.prepare(EventKind.repo_breaker_closed, repo=repo, by="reset",
                          was=str(before.state), failures=before.failures)
    said.written_with(r, close)
    return before.to_dict()


class Breakers:
    """The breakers of one namespace, for callers above the runtime."""

    def __init__(self, r: redis.Redis, keys: Keys, events: EventLog) -> None:
        self.r = r
        self.keys = keys
        self.events = events

    def read(self, repo: str) -> Breaker:
        return read_breaker(self.r, self.keys, repo)

    def state(self, repo: str) -> dict[str, str | int | float | None]:
        return read_breaker(self.r, self.keys, repo).to_dict()

    def reset(self, repo: str) -> dict[str, str | int | float | None]:
        return reset_breaker(self.r, self.keys, self.events, repo)
