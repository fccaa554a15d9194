"""`coord freeze` / `coord unfreeze`: the fleet's emergency stop.

A freeze refuses what would start new work, fleet-wide (the namespace), until
`coord unfreeze`:

- new sweeps: `plan sweep`, `todo run`, `coord run`, a schedule's firing (`coord
  beat`), a push trigger (`coord trigger push`, a forge's webhook): every start goes
  through ``SweepService.start_spec``, which asks :func:`refuse_if_frozen` (and
  `launch.prepare` asks first, before a sweep is planned or workers are started);
- `sweep resume` and `sweep unpause` (they start work again);
- landings: `change land` and the merge train (`change queue`'s landing).

It stops nothing that runs: a running sweep goes on (its todos, its gates' decisions,
its waves) unless paused (`coord sweep pause --all`) or cancelled (`coord sweep cancel
--all`). What undoes or stops work stays allowed, since an emergency may need it:
pause, cancel, `sweep rollback`, `change revert`, syncs, reads. A refusal is a
:class:`~coordination.errors.FleetFrozen` (exit 1, nothing changed) saying who froze the
fleet, when, why and how to unfreeze.

The freeze is a record in the namespace's Redis, kept beside the catalog too
(``.coord/freeze.json`` in its directory, :mod:`coordination.runtime.freeze`): a start
refuses while either says frozen, and a freeze removed from Redis alone (anyone who can
write the Redis can) is put back and said (``fleet.refrozen``, a warning). A record that
cannot be read is a freeze said as unreadable, which `coord unfreeze` lifts. Freezing and
unfreezing append ``fleet.freeze``/``fleet.unfreeze`` entries to the
catalog's audit log (who, when, why) and ``fleet.frozen``/``fleet.unfrozen`` events
(webhooks tell the team).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TypedDict

from coordination.runtime.context import Runtime
from coordination.runtime.freeze import (
    UNFREEZE_HINT,
    FreezeRecord,
    describe,
    iso,
    refuse_if_frozen,
)
from coordination.status import EventKind

log = logging.getLogger("coord.freeze")

__all__ = ["UNFREEZE_HINT", "FreezeResult", "FreezeState", "describe", "freeze",
           "refuse_if_frozen", "state", "unfreeze"]


class FreezeState(TypedDict):
    """Whether the fleet is frozen, and by whom, when (ISO) and why (`coord freeze --json`,
    `coord doctor`, the web view, `change status`)."""

    frozen: bool
    by: str | None
    at: str | None
    reason: str | None


class FreezeResult(FreezeState):
    """What `coord freeze` / `unfreeze` did: the state after it, whether it changed
    anything, whether its audit entry was written (else why not)."""

    changed: bool
    audited: bool | str
    #: True, or why the freeze could not be kept beside the catalog (then it is in Redis
    #: alone: `DEL` there lifts it), or removed from there (unfreeze: still frozen).
    kept: bool | str


def state(rt: Runtime, catalog: Path | None = None) -> FreezeState:
    """The freeze in force (in Redis or beside ``catalog``), as a document."""
    return _state(rt.freeze(catalog).get())


def _state(rec: FreezeRecord | None) -> FreezeState:
    if rec is None:
        return {"frozen": False, "by": None, "at": None, "reason": None}
    return {"frozen": True, "by": rec["by"], "at": iso(rec["at"]), "reason": rec["reason"]}


def freeze(rt: Runtime, catalog: Path | None, *, who: str, reason: str) -> FreezeResult:
    """Freeze the fleet (nothing when it is frozen already: the first freeze stands),
    in Redis and beside ``catalog``."""
    said = rt.events.prepare(EventKind.fleet_frozen, by=who, reason=reason)
    store = rt.freeze(catalog)
    rec, changed = store.set({"by": who, "at": time.time(), "reason": reason}, said)
    audited: bool | str = False
    if changed:  # (said with the freeze: a freezer killed after it has said so)
        audited = _audit(catalog, "fleet.freeze", who, {"reason": reason, "at": iso(rec["at"])})
    kept: bool | str = store.file_error or (
        True if store.file is not None else "no catalog here: kept in Redis alone")
    return {**_state(rec), "changed": changed, "audited": audited, "kept": kept}


def unfreeze(rt: Runtime, catalog: Path | None, *, who: str) -> FreezeResult:
    """End the freeze (nothing when the fleet is not frozen), in Redis and beside
    ``catalog``; a record that cannot be read is ended too."""
    now = time.time()
    store = rt.freeze(catalog)
    ended = store.clear(lambda rec: rt.events.prepare(
        EventKind.fleet_unfrozen, by=who, frozen_by=rec["by"], frozen_for=_for(rec, now)))
    audited: bool | str = False
    if ended is not None:  # (said with the clear, as the freeze)
        audited = _audit(catalog, "fleet.unfreeze", who,
                         {"frozen_by": ended["by"], "frozen_at": iso(ended["at"]),
                          "reason": ended["reason"], "frozen_for": _for(ended, now)})
    return {**_state(None), "changed": ended is not None, "audited": audited,
            "kept": store.file_error or True}


def _for(rec: FreezeRecord, now: float) -> float:
    """How long the freeze ``rec`` has held at ``now`` (seconds, one decimal; 0 for a
    record whose time could not be read)."""
    return round(max(0.0, now - rec["at"]), 1) if rec["at"] > 0 else 0.0


def _audit(catalog: Path | None, op: str, who: str, decision: dict[str, object]) -> bool | str:
    """Append ``op`` to the catalog's audit log; True, or why it could not (the freeze
    stands either way: it is in Redis)."""
    if catalog is None or not catalog.is_file():
        log.warning("%s is not in an audit log (no catalog file here)", op)
        return "no catalog file here: not in an audit log"
    from coordination.catalog.file.store import CatalogStore  # lazy: the catalog's writer

    try:
        CatalogStore(catalog).record_decision(who=who, op=op, ids=[], decision=decision)
    except Exception as exc:  # noqa: BLE001 - the freeze stands (Redis): say it
        log.warning("%s is not in the audit log: %s", op, exc)
        return f"not in the audit log: {exc}"
    return True
