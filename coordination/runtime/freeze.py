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
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypedDict

import redis

from coordination.errors import FleetFrozen, OperationFailed
from coordination.keys import Keys
from coordination.runtime.scripts import lua

if TYPE_CHECKING:
    from coordination.runtime.events import Prepared

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

    def set(self, record: FreezeRecord, said: Prepared) -> tuple[FreezeRecord, bool]:
        """Freeze the fleet with ``record`` unless it is frozen already (SET NX: two
        people freezing at once leave the first's record), and write ``said`` (its
        ``fleet.frozen``, :meth:`EventLog.prepare`) in the same step
        (``lua/fleet_freeze.lua``). Returns the freeze in force and whether this call
        set it (and said so)."""
        done, held = self._call("set", json.dumps(record), said)
        if done:
            return record, True
        rec = _decode(held)
        assert rec is not None  # SET NX failed in the script: a record is there
        return rec, False

    def clear(self, say: Callable[[FreezeRecord], Prepared]) -> FreezeRecord | None:
        """Unfreeze; returns the freeze it ended (None: it was not frozen), with the
        event ``say`` makes of it (``fleet.unfrozen``: who froze it, for how long)
        written in the same step. Compare and delete: two unfreezes at once end it
        once; a freeze set again after this call read the old one is read again."""
        raw = self.redis.get(self.key)
        for _ in range(_CLEAR_TRIES):
            rec = _decode(raw)
            if rec is None:
                return None
            done, held = self._call("clear", raw, say(rec))  # the bytes read, compared
            if done:
                return rec
            raw = held or None
        raise OperationFailed(f"the fleet's freeze changed under {_CLEAR_TRIES} tries to "
                              "end it (others freezing and unfreezing at once)",
                              hint="run `coord unfreeze` again")

    def _call(self, op: str, record: str | bytes | None, said: Prepared
              ) -> tuple[bool, str | bytes]:
        res = lua("fleet_freeze")(self.redis, [self.key, *said.keys()],
                                  [op, record or "", *said.args()])
        return bool(int(res[0])), res[1] or ""


#: How often an unfreeze reads the freeze again when it changed under it (a freeze set
#: again between its read and its clear: rare; each try is one read and one script).
_CLEAR_TRIES = 5


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
