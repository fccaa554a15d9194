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
import json
from collections.abc import Mapping
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


#: The entry name of a scheduled plan's entry in celery-redbeat (its key: the namespace's
#: beat prefix and this): :mod:`coordination.beat` writes it, nothing else does.
ENTRY = "plan:"
#: The task an entry carries (redbeat's definitions need one; nothing is sent).
TASK = "coord.schedule"
#: What a stored definition's schedule says it is.
KIND = "coord-cron"


def entry_refusal(name: str, definition: object, wanted: dict[str, Schedule]) -> str | None:
    """Why `coord beat` must not fire the celery-redbeat entry ``name`` (its name in
    redbeat: its key less the namespace's beat prefix) whose definition is
    ``definition`` (its JSON, read), against the plans the catalog schedules now
    (:func:`scheduled_plans`); None: it is the catalog's own entry for its plan, with
    the catalog's cron, time zone and catchup. Anyone who can write the Redis can
    write an entry: only the catalog says what is scheduled."""
    if not name.startswith(ENTRY):
        return f"{name!r} is not a plan's schedule entry"
    plan = name.removeprefix(ENTRY)
    if not isinstance(definition, dict):
        return "its definition cannot be read"
    kwargs = definition.get("kwargs")
    if (definition.get("name") != name or definition.get("task") != TASK
            or not isinstance(kwargs, dict) or kwargs.get("plan") != plan
            or set(kwargs) != {"plan"} or definition.get("args") not in (None, [], ())):
        return f"its definition is not coord's entry for {plan}"
    s = wanted.get(plan)
    if s is None:
        return f"the catalog schedules no plan {plan}"
    got = definition.get("schedule")
    if not isinstance(got, dict) or got.get("__type__") != KIND:
        return "its schedule is not a cron schedule coord wrote"
    if (got.get("cron"), got.get("timezone"), bool(got.get("catchup"))) != (
            s.cron, s.timezone, s.catchup):
        return (f"its schedule ({got.get('cron')!r} {got.get('timezone')!r}, catchup "
                f"{bool(got.get('catchup'))}) is not the catalog's ({s.cron!r} {s.timezone!r}, "
                f"catchup {s.catchup})")
    return None


class ForeignEntry(TypedDict):
    """A schedule entry in Redis that the catalog does not name (`coord schedule list
    --json`'s ``refused``): `coord beat` never fires it."""

    entry: str  # its key
    plan: str | None  # the plan it names, if it names one
    cron: str | None
    timezone: str | None
    why: str


def foreign_entries(entries: Mapping[str, str | bytes | None], prefix: str,
                    wanted: dict[str, Schedule]) -> list[ForeignEntry]:
    """The entries among ``entries`` (key -> definition text, None: none) that the
    catalog does not name as they are (:func:`entry_refusal`), each with why."""
    out: list[ForeignEntry] = []
    for key, raw in sorted(entries.items()):
        name = key.removeprefix(prefix) if key.startswith(prefix) else key
        try:
            data = json.loads(raw) if raw is not None else None
        except (ValueError, RecursionError):
            data = None
        why = (f"{key!r} is not under the namespace's beat prefix" if not key.startswith(prefix)
               else entry_refusal(name, data, wanted))
        if why is None:
            continue
        sched = data.get("schedule") if isinstance(data, dict) else None
        sched = sched if isinstance(sched, dict) else {}
        out.append({"entry": key,
                    "plan": name.removeprefix(ENTRY) if name.startswith(ENTRY) else None,
                    "cron": _text(sched.get("cron")), "timezone": _text(sched.get("timezone")),
                    "why": why})
    return out


def _text(v: object) -> str | None:
    return None if v is None else str(v)[:200]
