"""``due:`` on plans and todos: when they must be finished, and whether they are late.

    due: 2026-12-01T12:00Z          an instant: ISO 8601 with its time zone
    due: 2026-12-01T13:00+01:00     (Z or an offset; a time without one is refused)
    due: 2026-12-01                 a day: the end of that day, UTC (23:59:59Z)

A plain date means the end of that day in UTC, so ``due: 2026-12-01`` is met by
anything finished on December 1st wherever the team is, and the instant never depends
on the machine reading it. A time without a zone is refused rather than read in the
reader's local time (two machines would disagree on the deadline).

Stdlib only: the models validate with :func:`parse_due`, the views read the cached JSON
with :func:`from_json`, and `coord todo list` (no pydantic) asks :func:`overdue`.
"""

from __future__ import annotations

import datetime as dt

from coordination.catalog.rules.patterns import END

#: What `coord schema` tells an editor a ``due:`` looks like: a day, or a day and a time
#: with its zone (seconds and fractions optional).
DUE_PATTERN = (r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
               r"([Tt ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?"
               rf"([Zz]|[+-]([01][0-9]|2[0-3]):?[0-5][0-9]))?{END}")

_HOW = "write it as 2026-12-01T12:00Z, 2026-12-01T13:00+01:00 or a day, 2026-12-01"


def end_of_day(day: dt.date) -> dt.datetime:
    """The last second of ``day`` in UTC: what a plain date means as a due time."""
    return dt.datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=dt.timezone.utc)


def parse_due(value: object) -> dt.datetime:
    """The instant a ``due:`` value names (see the module); ValueError saying how to write
    it otherwise. YAML gives a date, a datetime (with seconds) or text (without)."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        return end_of_day(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return end_of_day(dt.date.fromisoformat(text))
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not a due time: {value!r}; {_HOW}") from None
    else:
        raise ValueError(f"not a due time: {value!r}; {_HOW}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"due time {value!s} has no time zone (whose 12:00?); add Z for UTC "
                         f"or an offset: {_HOW}")
    return moment


def from_json(text: str) -> dt.datetime:
    """A due time as the cached JSON holds it (pydantic's ISO text)."""
    return dt.datetime.fromisoformat(text)


def overdue(due: dt.datetime | None, finished: bool, now: dt.datetime | None = None) -> bool:
    """Is something due at ``due`` and not ``finished`` late at ``now`` (default: now)?"""
    if due is None or finished:
        return False
    return (now or dt.datetime.now(dt.timezone.utc)) > due


def iso(due: dt.datetime) -> str:
    """A due time as documents show it: UTC, to the second, with a Z."""
    return due.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
