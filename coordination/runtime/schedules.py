"""Plans' schedules in Redis: what `coord beat` fired and skipped, and where
celery-redbeat keeps its own state.

celery-redbeat keeps each schedule's entry, the schedule's sorted set and the lock that
keeps one beat active under :attr:`ScheduleStore.beat_prefix` (the namespace's, from
:mod:`coordination.keys`); coord reads only the entries' definitions
(:meth:`ScheduleStore.entries`: `coord schedule list` reports one the catalog does not
name, which `coord beat` never fires). What coord keeps is one hash
(``Keys.schedules``), a field per plan:

``fired:<PLAN>``    the last firing claimed: ``{"at": epoch, "due": ISO, "by": who,
                    "claimed_at": epoch, "catchup": bool, "sweep": id | null,
                    "error": text | null}`` (``schedule_claim.lua``: a firing is claimed
                    once, and never one older than the last)
``skipped:<PLAN>``  the last firing skipped (missed while no beat ran, ``catchup:
                    false``): ``{"at", "due", "missed", "by", "skipped_at"}``
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, cast

import redis

from coordination.jsonable import JSONObject
from coordination.runtime.scripts import lua
from coordination.runtime.store import Store

if TYPE_CHECKING:
    from coordination.runtime.events import Prepared


def fired_field(plan: str) -> str:
    return f"fired:{plan}"


def skipped_field(plan: str) -> str:
    return f"skipped:{plan}"


class ScheduleStore(Store):
    """The schedules hash (see the module) and redbeat's key prefix."""

    @property
    def client(self) -> redis.Redis:
        """The client celery-redbeat is given (``app.redbeat_redis``): coord's own, so its
        Sentinel, TLS and credentials are coord's."""
        return self.r

    @property
    def beat_prefix(self) -> str:
        """celery-redbeat's ``redbeat_key_prefix`` for this namespace."""
        return self.keys.beat_prefix

    def claim(self, plan: str, at: float, record: Mapping[str, object]) -> bool:
        """Claim the firing of ``plan`` at ``at`` (epoch seconds) with ``record``; False
        when it, or a later firing, was claimed already (by this or another beat)."""
        rec = {**record, "at": at}
        return bool(lua("schedule_claim")(self.r, [self.keys.schedules],
                                          [fired_field(plan), repr(float(at)), json.dumps(rec)]))

    def fired(self, plan: str, at: float, **fields: object) -> None:
        """Add ``fields`` (the sweep it started, or the error that stopped it) to the
        claim of ``plan``'s firing at ``at``, if that is still the last one claimed."""
        field = fired_field(plan)
        with self.r.pipeline() as pipe:  # WATCH: a later claim is never overwritten
            try:
                pipe.watch(self.keys.schedules)  # type: ignore[no-untyped-call]
                held = _decode(pipe.hget(self.keys.schedules, field))
                if held is None or float(cast("float", held.get("at") or 0)) != at:
                    return
                pipe.multi()
                pipe.hset(self.keys.schedules, field, json.dumps({**held, **fields}))
                pipe.execute()
            except redis.WatchError:
                return

    def skipped(self, plan: str, record: Mapping[str, object], said: Prepared) -> None:
        """Note the last firing of ``plan`` skipped (and why), with ``said`` (its
        ``schedule.skipped``, :meth:`EventLog.prepare`) in the same step (MULTI/EXEC):
        a beat killed after it has said it."""

        def note(pipe: redis.client.Pipeline) -> None:
            pipe.hset(self.keys.schedules, skipped_field(plan), json.dumps(dict(record)))

        said.written_with(self.r, note)

    def entries(self, limit: int = 1000) -> dict[str, str | None]:
        """celery-redbeat's schedule entries (the keys in its sorted set, at most
        ``limit``) and each one's definition text (None: none): what a `coord beat`
        would look at, whoever wrote it (`coord schedule list` reports those the catalog
        does not name)."""
        got = cast("list[str | bytes]", self.r.zrange(self.keys.beat_schedule, 0, limit - 1))
        keys = [k if isinstance(k, str) else k.decode("utf-8", "replace") for k in got]
        if not keys:
            return {}
        with self.r.pipeline(transaction=False) as pipe:
            for k in keys:
                pipe.hget(k, "definition")
            got = pipe.execute(raise_on_error=False)
        return {k: (None if v is None or isinstance(v, Exception) else
                    v if isinstance(v, str) else v.decode("utf-8", "replace"))
                for k, v in zip(keys, got)}

    def read(self, plans: Iterable[str]) -> dict[str, dict[str, JSONObject | None]]:
        """Each plan's ``{"fired": ..., "skipped": ...}`` records (None: never)."""
        names = list(plans)
        if not names:
            return {}
        fields = [f for p in names for f in (fired_field(p), skipped_field(p))]
        raw = self.r.hmget(self.keys.schedules, fields)
        return {p: {"fired": _decode(raw[2 * i]), "skipped": _decode(raw[2 * i + 1])}
                for i, p in enumerate(names)}


def _decode(raw: object) -> JSONObject | None:
    if raw is None:
        return None
    try:
        data = json.loads(cast("str | bytes", raw))
    except ValueError:
        return None
    return cast("JSONObject", data) if isinstance(data, dict) else None
