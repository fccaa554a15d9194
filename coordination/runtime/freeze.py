"""The fleet's freeze: one record in the namespace's Redis (``Keys.freeze``) while
`coord freeze` holds, read before anything new starts (:mod:`coordination.sweeps.governance.freeze`).

In Redis rather than beside the catalog so that it holds for every process of the
namespace whichever catalog copy or machine they run from: the team's Redis in
distributed mode, the catalog's embedded server (its append-only file) in embedded
mode, where it holds across processes and restarts as every sweep record does.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Protocol, TypedDict

import redis

from coordination.errors import FleetFrozen
from coordination.keys import Keys

UNFREEZE_HINT = "`coord unfreeze` lets new sweeps and landings start again"


class FreezeRecord(TypedDict):
    """Who froze the fleet, when (epoch seconds), and why (may be empty)."""

    by: str
    at: float
    reason: str


class FreezeStore:
    """Read, set and clear the namespace's freeze."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.redis = r
        self.key = keys.freeze

    def get(self) -> FreezeRecord | None:
        """The freeze in force, or None."""
        return _decode(self.redis.get(self.key))

    def set(self, record: FreezeRecord) -> tuple[FreezeRecord, bool]:
        """Freeze the fleet with ``record`` unless it is frozen already (SET NX: two
        people freezing at once leave the first's record). Returns the freeze in force
        and whether this call set it."""
        if self.redis.set(self.key, json.dumps(record), nx=True):
            return record, True
        held = self.get()
        if held is None:  # unfrozen between the two calls: try once more
            return self.set(record)
        return held, False

    def clear(self) -> FreezeRecord | None:
        """Unfreeze; returns the freeze it ended (None: it was not frozen). GETDEL: two
        unfreezes at once end it once."""
        return _decode(self.redis.getdel(self.key))


def iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.timezone.utc).isoformat(timespec="seconds")


def describe(rec: FreezeRecord) -> str:
    """``frozen by ana at 2026-12-01T03:00:00+00:00 (12 min ago): deploy incident``."""
    ago = max(0.0, time.time() - rec["at"])
    span = f"{ago / 3600:.1f} h" if ago >= 3600 else f"{ago / 60:.0f} min"
    return (f"frozen by {rec['by']} at {iso(rec['at'])} ({span} ago)"
            + (f": {rec['reason']}" if rec["reason"] else " (no reason given)"))


class HasFreeze(Protocol):
    """What :func:`refuse_if_frozen` asks: a runtime (its freeze store)."""

    def freeze(self) -> FreezeStore: ...


def refuse_if_frozen(rt: HasFreeze, what: str) -> None:
    """FleetFrozen (exit 1) naming who froze the fleet, when, why and how to unfreeze,
    if it is frozen; ``what``: what was refused (``start a sweep of PLAN-001``). What a
    freeze refuses and lets through: :mod:`coordination.sweeps.governance.freeze`."""
    rec = rt.freeze().get()
    if rec is not None:
        raise FleetFrozen(f"the fleet is frozen: refusing to {what}; {describe(rec)}",
                          hint=UNFREEZE_HINT)


def _decode(raw: str | bytes | None) -> FreezeRecord | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:  # not ours: still a freeze (fail closed), said as it is
        return {"by": "?", "at": 0.0, "reason": f"unreadable freeze record: {raw!r:.80}"}
    if not isinstance(data, dict):
        return {"by": "?", "at": 0.0, "reason": "unreadable freeze record"}
    return {"by": str(data.get("by") or "?"), "at": float(data.get("at") or 0.0),
            "reason": str(data.get("reason") or "")}
