"""The fleet's freeze: one record in the namespace's Redis (``Keys.freeze``) while
`coord freeze` holds, read before anything new starts (:mod:`coordination.sweeps.governance.freeze`),
and the same record kept beside the catalog `coord freeze` was run with
(``.coord/freeze.json`` in its directory: :attr:`Beside.freeze
<coordination.catalog.file.beside.Beside.freeze>`).

In Redis so that it holds for every process of the namespace whichever catalog copy or
machine they run from: the team's Redis in distributed mode, the catalog's embedded
server (its append-only file) in embedded mode, where it holds across processes and
restarts as every sweep record does. Beside the catalog too, because anyone who can
write the Redis (no key needed) could lift the Redis record alone: a start refuses
while either says frozen, and a freeze the file holds that Redis lacks is put back
into Redis and said (``fleet.refrozen``, and a warning). `coord unfreeze` clears both.
A record that cannot be read (not JSON, a time that is no time: ``1e308``, ``NaN``)
is still a freeze (fail closed), said as unreadable, and `coord unfreeze` lifts it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypedDict

import redis

from coordination.catalog.file.beside import Beside, BesideFile
from coordination.errors import FleetFrozen, OperationFailed
from coordination.keys import Keys
from coordination.runtime.scripts import lua
from coordination.status import EventKind

if TYPE_CHECKING:
    from coordination.runtime.events import EventLog, Prepared

log = logging.getLogger("coord.freeze")

UNFREEZE_HINT = "`coord unfreeze` lets new sweeps and landings start again"


class FreezeRecord(TypedDict):
    """Who froze the fleet, when (epoch seconds), and why (may be empty)."""

    by: str
    at: float
    reason: str


def freeze_file(catalog: Path | str) -> BesideFile:
    """The freeze kept beside ``catalog`` (``.coord/freeze.json`` in its directory)."""
    return Beside.of(catalog).freeze


class FreezeStore:
    """Read, set and clear the namespace's freeze: its Redis record and, when a catalog
    is known, the one kept beside it (see the module)."""

    def __init__(self, r: redis.Redis, keys: Keys, file: BesideFile | None = None,
                 events: EventLog | None = None) -> None:
        self.redis = r
        self.key = keys.freeze
        self.file = file
        self.events = events
        #: Why the file beside the catalog could not be written or removed (None: it was,
        #: or there is none to keep): `coord freeze` and `unfreeze` say it.
        self.file_error: str | None = None

    def get(self) -> FreezeRecord | None:
        """The freeze in force, or None: Redis's record, else the one kept beside the
        catalog (then put back into Redis, and said: see the module)."""
        held = _decode(self.redis.get(self.key))
        if held is not None:
            return held
        kept = self.kept()
        if kept is not None:
            self._restore(kept)
        return kept

    def kept(self) -> FreezeRecord | None:
        """The freeze kept beside the catalog, or None (no file, no catalog). A file that
        cannot be read is a freeze (fail closed), said as unreadable."""
        if self.file is None:
            return None
        try:
            raw = self.file.read()
        except FileNotFoundError:
            return None
        except OSError as exc:  # a link, a permission: still a freeze, said as it is
            return {"by": "?", "at": 0.0,
                    "reason": f"unreadable freeze file {self.file.path}: {exc.strerror or exc}"}
        return _decode(raw, where=f"freeze file {self.file.path}") or {
            "by": "?", "at": 0.0, "reason": f"unreadable freeze file {self.file.path}"}

    def _restore(self, kept: FreezeRecord) -> None:
        """Put the freeze kept beside the catalog back into Redis (SET NX: a freeze set
        meanwhile stands), with its ``fleet.refrozen``; a warning either way."""
        path = self.file.path if self.file is not None else "?"
        log.warning("the fleet's freeze was missing from Redis (removed without `coord "
                    "unfreeze`); it is kept in %s and holds: put back into Redis (%s)",
                    path, describe(kept))
        if self.events is None:
            return
        try:
            said = self.events.prepare(EventKind.fleet_refrozen, by=kept["by"],
                                       reason=kept["reason"], file=str(path))
            self._call("set", json.dumps(kept), said)
        except redis.RedisError as exc:  # (a user that may not write it: the file holds)
            log.warning("the freeze could not be put back into Redis: %s", exc)

    def set(self, record: FreezeRecord, said: Prepared) -> tuple[FreezeRecord, bool]:
        """Freeze the fleet with ``record`` unless it is frozen already (SET NX: two
        people freezing at once leave the first's record), and write ``said`` (its
        ``fleet.frozen``, :meth:`EventLog.prepare`) in the same step
        (``lua/fleet_freeze.lua``); then keep the freeze in force beside the catalog
        (after Redis: a reader never finds the file without the Redis record and puts it
        back as if it had been removed). Returns the freeze in force and whether this
        call set it (and said so)."""
        done, held = self._call("set", json.dumps(record), said)
        rec = record if done else _decode(held)
        assert rec is not None  # SET NX failed in the script: a record is there
        if self.file is not None:
            try:
                self.file.write_str(json.dumps(rec, allow_nan=False) + "\n")
            except (OSError, ValueError) as exc:
                self.file_error = f"not kept beside the catalog ({self.file.path}): {exc}"
                log.warning("the fleet's freeze is %s", self.file_error)
        return rec, done

    def clear(self, say: Callable[[FreezeRecord], Prepared]) -> FreezeRecord | None:
        """Unfreeze; returns the freeze it ended (None: it was not frozen), with the
        event ``say`` makes of it (``fleet.unfrozen``: who froze it, for how long)
        written in the same step. The file beside the catalog goes first (a reader
        between the two still finds Redis frozen: nothing is put back). Compare and
        delete: two unfreezes at once end it once; a freeze set again after this call
        read the old one is read again. A record that cannot be read is lifted too."""
        kept = self.kept()
        if self.file is not None and kept is not None:
            try:
                self.file.remove()
            except OSError as exc:  # still frozen: the file holds
                raise OperationFailed(f"the freeze kept in {self.file.path} could not be "
                                      f"removed: {exc}", hint="remove the file and run "
                                      "`coord unfreeze` again") from None
        raw = self.redis.get(self.key)
        for _ in range(_CLEAR_TRIES):
            rec = _decode(raw)
            if rec is None:
                if kept is not None:  # Redis had lost it: the file's end is said alone
                    say(kept).written_with(self.redis, lambda _pipe: None)
                return kept
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
    try:
        return dt.datetime.fromtimestamp(at, dt.timezone.utc).isoformat(timespec="seconds")
    except (ValueError, OverflowError, OSError):  # (a record _decode let through: none)
        return "?"


def describe(rec: FreezeRecord) -> str:
    """``frozen by ana at 2026-12-01T03:00:00+00:00 (12 min ago): deploy incident``."""
    ago = max(0.0, time.time() - rec["at"])
    span = f"{ago / 3600:.1f} h" if ago >= 3600 else f"{ago / 60:.0f} min"
    when = f"at {iso(rec['at'])} ({span} ago)" if rec["at"] > 0 else "at an unknown time"
    return (f"frozen by {rec['by']} {when}"
            + (f": {rec['reason']}" if rec["reason"] else " (no reason given)"))


class HasFreeze(Protocol):
    """What :func:`refuse_if_frozen` asks: a runtime (its freeze store)."""

    def freeze(self, catalog: Path | None = None) -> FreezeStore: ...


def refuse_if_frozen(rt: HasFreeze, what: str, catalog: Path | None = None) -> None:
    """FleetFrozen (exit 1) naming who froze the fleet, when, why and how to unfreeze,
    if it is frozen (in Redis, or beside ``catalog``, default the runtime's); ``what``:
    what was refused (``start a sweep of PLAN-001``). What a freeze refuses and lets
    through: :mod:`coordination.sweeps.governance.freeze`."""
    rec = rt.freeze(catalog).get()
    if rec is not None:
        raise FleetFrozen(f"the fleet is frozen: refusing to {what}; {describe(rec)}",
                          hint=UNFREEZE_HINT)


#: The latest time a record may say (the year 9999): past it no date can be written.
_LATEST = 253402300799.0


def _decode(raw: str | bytes | None, where: str = "freeze record") -> FreezeRecord | None:
    """A freeze record read; one that cannot be read is still a freeze (fail closed),
    said as unreadable (``by`` ``?``, ``at`` 0), never an error."""
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # not ours: still a freeze, said as it is
        return {"by": "?", "at": 0.0, "reason": f"unreadable {where}: {raw!r:.80}"}
    if not isinstance(data, dict):
        return {"by": "?", "at": 0.0, "reason": f"unreadable {where}: {raw!r:.80}"}
    at = data.get("at")
    when = (float(at) if isinstance(at, (int, float)) and not isinstance(at, bool)
            and math.isfinite(at) and 0 <= at <= _LATEST else None)
    reason = str(data.get("reason") or "")[:2000]
    if when is None and at not in (None, 0):
        reason = f"unreadable {where}: its time {at!r:.40} is no time" + (
            f"; {reason}" if reason else "")
    return {"by": str(data.get("by") or "?")[:200], "at": when or 0.0, "reason": reason}
