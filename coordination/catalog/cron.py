"""A plan's ``schedule:``: its cron expression and time zone read and stepped.

    schedule: {cron: "0 3 * * 1-5", timezone: Europe/Berlin, catchup: false}

The cron text has the five fields of crontab(5) (minute, hour, day of month, month,
day of week; names such as ``mon-fri`` and ``jan``, ranges, lists and steps), or one of
the nicknames ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``. When
both day fields are restricted a day matching either runs, as cron runs it. The
times are the zone's wall-clock times (IANA names, read with :mod:`zoneinfo`): a time
a DST change skips runs at the first instant after the gap, a time it repeats runs
once.

croniter does the reading and stepping (imported only when a schedule is read); this
module says what is wrong in the catalog's words, and is what the models, `coord
schedule list` and `coord beat` ask.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

#: The nicknames a schedule may use instead of five fields (croniter's, less @reboot,
#: which no schedule can mean).
NICKNAMES = ("@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly",
             "@annually")
_FIELDS = "minute hour day-of-month month day-of-week"


def check_cron(text: str) -> str:
    """``text`` as a schedule's cron expression (blanks collapsed), or ValueError
    saying what is wrong with it and how it is written."""
    expr = " ".join(text.split())
    if expr.startswith("@"):
        if expr.lower() not in NICKNAMES:
            raise ValueError(f"unknown cron nickname {expr!r}: use five fields ({_FIELDS}) "
                             f"or one of {', '.join(NICKNAMES)}")
        return expr.lower()
    fields = expr.split(" ")
    if len(fields) != 5:
        raise ValueError(f"cron {text!r} has {len(fields)} field{'s' * (len(fields) != 1)}; "
                         f"a schedule has five: {_FIELDS} (e.g. \"0 3 * * 1-5\": 03:00 "
                         "on weekdays)")
    from croniter import croniter  # lazy: only a catalog with a schedule reads cron

    try:
        it = croniter(expr, dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    except (ValueError, KeyError) as exc:  # croniter's errors are ValueErrors
        raise ValueError(f"cron {text!r} is not a cron expression: {exc} (fields: "
                         f"{_FIELDS})") from None
    try:  # a date no calendar has (day 30 of February) reads, and never fires
        it.get_next(dt.datetime)
    except (ValueError, KeyError, OverflowError):  # (croniter's CroniterBadDateError)
        raise ValueError(f"cron {text!r} never fires: no date matches its day and month "
                         "fields (e.g. day 30 of February); give a day that month has") from None
    return expr


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone this machine knows, else ValueError."""
    try:
        zone(name)
    except (ValueError, KeyError, OSError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as UTC, "
                         "Europe/Berlin or America/New_York") from None
    return name


@functools.lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The :class:`zoneinfo.ZoneInfo` of ``name`` (KeyError-like errors when unknown)."""
    from zoneinfo import ZoneInfo  # lazy: only schedules read zones

    if not name or name != name.strip() or ".." in name or name.startswith("/"):
        raise ValueError(name)
    return ZoneInfo(name)


def next_runs(cron: str, timezone: str, after: dt.datetime, count: int = 1) -> list[dt.datetime]:
    """The ``count`` firing times of the schedule strictly after ``after`` (aware), in the
    schedule's zone."""
    from croniter import croniter  # lazy: as above

    it = croniter(cron, after.astimezone(zone(timezone)))
    return _firings(lambda: it.get_next(dt.datetime), count)


def last_runs(cron: str, timezone: str, at: dt.datetime, count: int = 1) -> list[dt.datetime]:
    """The ``count`` latest firing times at or before ``at`` (aware), latest first."""
    from croniter import croniter  # lazy: as above

    # croniter's get_prev is strictly before its start: start a microsecond after ``at``.
    it = croniter(cron, (at + dt.timedelta(microseconds=1)).astimezone(zone(timezone)))
    return _firings(lambda: it.get_prev(dt.datetime), count)


def _firings(step: Callable[[], dt.datetime], count: int) -> list[dt.datetime]:
    """``count`` firing times from ``step``, the second of a wall-clock time that a
    fall-back repeats left out (cron runs it once)."""
    out: list[dt.datetime] = []
    while len(out) < count:
        t = step()
        if not (t.fold and t.replace(fold=0).utcoffset() != t.utcoffset()):
            out.append(t.replace(fold=0) if t.fold else t)
    return out
