"""Plans' ``schedule:``: when a firing is due, missed or skipped, and `coord schedule
list`'s document. Pure over the catalog and the clock it is given (the runner is
`coord beat`: :mod:`coordination.beat`).

A firing is the latest cron time at or before now that the schedule's last run (the
time the beat last handled it) has not seen. It is **on time** while it is at most
``missed_after`` seconds old: a running beat handles it within a tick, and a standby
beat takes over a dead one's lock within its timeout, so ``missed_after`` is the lock's
timeout and two ticks. Older, it was **missed while no beat ran**: ``catchup: true``
starts it once now (however many firings were missed: one sweep), ``catchup: false``
skips it (logged, the ``schedule.skipped`` event, `coord schedule list`). Firings
before the latest that passed unseen are never started on their own: one sweep stands
for them (an on-time firing after a gap says how many it stands for).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypedDict

from coordination.catalog.cron import last_runs, next_runs
from coordination.jsonable import JSONObject

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog, Schedule


@dataclass(frozen=True)
class Decision:
    """What the beat does with a schedule now: ``wait`` (``seconds`` until its next
    firing), ``fire`` the firing ``firing`` (``catchup``: missed, started late), or
    ``skip`` it (missed, ``catchup: false``); ``first``: a schedule never handled
    (its last run is set to now, nothing fires); ``missed``: firings before the latest
    that passed unseen (at least; never started on their own)."""

    kind: Literal["wait", "fire", "skip", "first"]
    seconds: float = 0.0
    firing: dt.datetime | None = None
    catchup: bool = False
    missed: int = 0


def decide(schedule: Schedule, last_run: dt.datetime | None, now: dt.datetime,
           missed_after: float) -> Decision:
    """What to do with ``schedule`` at ``now`` (aware), last handled at ``last_run``."""
    if last_run is None:
        return Decision("first")
    latest, before = last_runs(schedule.cron, schedule.timezone, now, 2)
    if latest <= last_run:
        upcoming = next_runs(schedule.cron, schedule.timezone, now)[0]
        return Decision("wait", seconds=max(0.0, (upcoming - now).total_seconds()))
    missed = 1 if before > last_run else 0
    if (now - latest).total_seconds() <= missed_after:
        return Decision("fire", firing=latest, missed=missed)
    if schedule.catchup:
        return Decision("fire", firing=latest, catchup=True, missed=missed)
    return Decision("skip", firing=latest, missed=missed)


def scheduled_plans(catalog: Catalog) -> dict[str, Schedule]:
    """Plan id -> its schedule, for every plan with one that is not cancelled."""
    return {p.id: p.schedule for p in catalog.coordination.plans
            if p.schedule is not None and p.status.value != "cancelled"}


class ScheduleRow(TypedDict):
    """One plan of `coord schedule list --json`."""

    plan: str
    cron: str
    timezone: str
    catchup: bool
    next: list[str]  # its next firings (ISO, the schedule's zone)
    last_fired: JSONObject | None  # the last firing claimed (runtime/schedules.py)
    last_skipped: JSONObject | None  # the last firing skipped


def schedule_rows(catalog: Catalog, state: dict[str, dict[str, JSONObject | None]],
                  now: dt.datetime, count: int) -> list[ScheduleRow]:
    """`coord schedule list`'s rows: each scheduled plan's next ``count`` firings after
    ``now`` and, from ``state`` (:meth:`ScheduleStore.read`), its last firing and skip."""
    rows: list[ScheduleRow] = []
    for plan, s in scheduled_plans(catalog).items():
        got = state.get(plan) or {}
        rows.append({"plan": plan, "cron": s.cron, "timezone": s.timezone,
                     "catchup": s.catchup,
                     "next": [t.isoformat() for t in next_runs(s.cron, s.timezone, now, count)],
                     "last_fired": got.get("fired"), "last_skipped": got.get("skipped")})
    return rows
