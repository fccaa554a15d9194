"""`coord beat`: Celery beat with celery-redbeat, firing the catalog's plans' ``schedule:``.

Celery's beat service ticks a scheduler; celery-redbeat's keeps each schedule's entry
(its definition and last run) and a lock in Redis, so any number of beats may run (on
several machines, for availability) and one is active: the one holding the lock, which
it renews each tick. A standby blocks on the lock and takes over within the lock's
timeout (5 x ``--max-interval``) once the active beat is gone, with the last runs the
dead one left: it never fires what that one fired. What coord adds:

- the entries are the catalog's scheduled plans (:class:`CoordScheduler`: written by
  the active beat when it starts and whenever the catalog file changes; a plan whose
  schedule is removed loses its entry); a plan's last run survives a change of its cron;
- a firing starts a sweep through :func:`coordination.firing.start_plan`, the path of
  `coord plan sweep PLAN --again` (Celery's beat would send a task message instead;
  nothing consumes one), after claiming the firing in Redis
  (:meth:`~coordination.runtime.schedules.ScheduleStore.claim`, a script): even two
  beats that both believe they hold the lock start a firing once;
- a firing missed while no beat ran starts once (``catchup: true``) or is skipped and
  logged (:func:`coordination.sweeps.starts.schedules.decide` says which);
- each tick, a todo past its ``due:`` that no sweep runs is said overdue
  (``todo.overdue``, once per due time: :func:`~coordination.sweeps.notices.overdue.
  note_unswept_overdue`), the work no supervision pass sees.

Embedded mode (no ``COORD_REDIS_URL``): the beat runs against the catalog's embedded
server (it keeps it up while it runs) and each firing is a detached `coord plan sweep`
process with its own embedded workers (:mod:`coordination.firing`).

Celery, kombu and redbeat are imported here only (the command's module names this one
lazily).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery
from celery.beat import Service
from celery.schedules import BaseSchedule, schedstate
from redbeat.decoder import RedBeatJSONDecoder, RedBeatJSONEncoder
from redbeat.schedulers import RedBeatScheduler, RedBeatSchedulerEntry, get_redis, to_timestamp
from redis.exceptions import LockNotOwnedError, RedisError

from coordination.catalog.audit.log import who as whoami
from coordination.catalog.cron import next_runs
from coordination.errors import RuntimeFault
from coordination.firing import start_plan
from coordination.redis_url import redact_url
from coordination.runtime.context import Runtime, get_runtime
from coordination.status import EventKind
from coordination.sweeps import SweepService
from coordination.sweeps.notices.overdue import Due, catalog_dues, note_unswept_overdue, running_todos
from coordination.sweeps.starts.schedules import (
    ENTRY,
    KIND,
    TASK,
    Decision,
    decide,
    entry_refusal,
    scheduled_plans,
)
from coordination.sweeps.starts.triggers import schedule_trigger

log = logging.getLogger("coord.beat")


class BeatLockLost(RuntimeFault):
    """The active beat's lock was taken over (it was stopped past the lock's timeout)."""


class CatalogUnread(Exception):
    """The catalog could not be read at a firing: nothing fires (fail closed)."""

#: (TASK: the task name an entry carries; ENTRY: an entry's name is this and its plan,
#: redbeat's key the prefix and the name; KIND: what a stored schedule says it is.
#: Named in :mod:`coordination.sweeps.starts.schedules`, which checks an entry.)
__all__ = ["ENTRY", "KIND", "TASK", "CoordScheduler", "CronSchedule", "PlanEntry", "run"]


class CronSchedule(BaseSchedule):  # type: ignore[misc]  # Celery ships no types
    """A plan's ``schedule:`` as Celery's scheduler asks it (its next firing after a
    last run; whether it is due). Its clock is the app's (``app.now``)."""

    def __init__(self, cron: str, timezone: str, catchup: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cron, self.timezone, self.catchup = cron, timezone, catchup

    def remaining_estimate(self, last_run_at: dt.datetime) -> dt.timedelta:
        nxt = next_runs(self.cron, self.timezone, _aware(last_run_at))[0]
        return nxt - _aware(self.now())

    def is_due(self, last_run_at: dt.datetime) -> schedstate:
        rem = self.remaining_estimate(last_run_at).total_seconds()
        return schedstate(rem <= 0, max(rem, 0.0) or 1.0)

    def encode(self) -> dict[str, object]:
        return {"__type__": KIND, "cron": self.cron, "timezone": self.timezone,
                "catchup": self.catchup}

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, CronSchedule) and (self.cron, self.timezone, self.catchup)
                == (other.cron, other.timezone, other.catchup))

    def __repr__(self) -> str:
        return f"<cron {self.cron} {self.timezone}{' catchup' if self.catchup else ''}>"


class PlanEntry(RedBeatSchedulerEntry):  # type: ignore[misc]  # redbeat ships no types
    """A scheduled plan's redbeat entry, its schedule stored as a :class:`CronSchedule`."""

    def save(self) -> PlanEntry:
        definition = {"name": self.name, "task": self.task, "args": self.args,
                      "kwargs": self.kwargs, "options": self.options,
                      "schedule": self.schedule.encode(), "enabled": self.enabled}
        meta = {"last_run_at": self.last_run_at}
        with get_redis(self.app).pipeline() as pipe:
            pipe.hset(self.key, "definition", json.dumps(definition, cls=RedBeatJSONEncoder))
            pipe.hsetnx(self.key, "meta", json.dumps(meta, cls=RedBeatJSONEncoder))
            pipe.zadd(self.app.redbeat_conf.schedule_key, {self.key: self.score})
            pipe.execute()
        return self

    @staticmethod
    def decode_definition(definition: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(definition, cls=RedBeatJSONDecoder)
        s = data.get("schedule")
        if isinstance(s, dict) and s.get("__type__") == KIND:
            data["schedule"] = CronSchedule(str(s["cron"]), str(s["timezone"]),
                                            bool(s.get("catchup")))
        return data


@dataclass
class BeatContext:
    """What the scheduler needs of coord: the catalog, its runtime, who fires, the clock."""

    catalog: Path
    rt: Runtime
    who: str
    missed_after: float
    now: Callable[[], dt.datetime]
    seen: tuple[int, int] | None = None  # the catalog file's (mtime_ns, size) last synced
    dues: list[Due] = field(default_factory=list)  # its todos with a due: (not completed)
    fired: list[dict[str, object]] = field(default_factory=list)
    #: Entries refused (key -> its definition as read): said once each, then passed over
    #: until the catalog changes (a catalog that names it as it is lets it fire).
    refused: dict[str, str] = field(default_factory=dict)
    #: What was said of each entry last (its definition, and why when it failed): a
    #: refusal is said once.
    said: dict[str, object] = field(default_factory=dict)


class CoordScheduler(RedBeatScheduler):  # type: ignore[misc]  # redbeat ships no types
    """redbeat's scheduler over the catalog's scheduled plans (see the module)."""

    Entry = PlanEntry

    @property
    def coord(self) -> BeatContext:
        ctx: BeatContext = self.app.coord_beat
        return ctx

    def setup_schedule(self) -> None:
        """Nothing before the lock: the active beat writes the entries (:meth:`sync`)."""

    @property
    def _maybe_due_kwargs(self) -> dict[str, Any]:
        # redbeat hands maybe_due Celery's producer, which would connect to a broker:
        # a firing starts a sweep itself and sends no task message.
        return {}

    def tick(self, min: Callable[..., float] = min, **kwargs: Any) -> float:  # noqa: A002 - Celery's signature
        self.sync()
        self.note_overdue()
        interval: float = super().tick(min=min, **kwargs)
        if not getattr(self, "_looked", False):  # (what an operator, and a test, waits for)
            self._looked = True
            log.info("active: first look at the schedules done (next in %.1f s)", interval)
        return interval

    def sync(self) -> None:
        """The entries made the catalog's scheduled plans, when the file changed since
        the last look (its last runs kept; a new plan's last run is now: it fires from
        its next time on; a plan no longer scheduled loses its entry)."""
        ctx = self.coord
        try:
            st = ctx.catalog.stat()
        except OSError as exc:
            log.warning("catalog %s cannot be read (%s): the schedules stay as they were",
                        ctx.catalog, exc)
            return
        seen = (st.st_mtime_ns, st.st_size)
        if seen == ctx.seen:
            return
        try:
            cat = SweepService(ctx.rt, ctx.catalog).catalog()
            wanted = scheduled_plans(cat)
        except Exception as exc:  # noqa: BLE001 - a bad edit: keep firing what was there
            log.error("catalog %s does not load (%s): the schedules stay as they were",
                      ctx.catalog, exc)
            ctx.seen = seen
            return
        ctx.seen = seen
        ctx.dues = catalog_dues(cat)
        ctx.refused.clear()  # (the catalog changed: each entry is judged against it again)
        ctx.said.clear()
        conf = self.app.redbeat_conf
        client = get_redis(self.app)
        for plan, s in list(wanted.items()):
            key = PlanEntry.generate_key(self.app, ENTRY + plan)
            try:
                try:
                    last = PlanEntry.from_key(key, app=self.app).last_run_at
                except KeyError:
                    last = None
                except Exception:  # noqa: BLE001 - unreadable (not ours): written again
                    last = None
                PlanEntry(name=ENTRY + plan, task=TASK, kwargs={"plan": plan}, app=self.app,
                          schedule=CronSchedule(s.cron, s.timezone, s.catchup),
                          last_run_at=last or ctx.now()).save()
            except Exception as exc:  # noqa: BLE001 - one bad schedule never stops the beat
                log.error("%s: its schedule (%s %s) cannot be kept (%s): skipped", plan,
                          s.cron, s.timezone, exc)
                del wanted[plan]
        keep = {PlanEntry.generate_key(self.app, ENTRY + p) for p in wanted}
        for key in client.zrange(conf.schedule_key, 0, -1):
            if key not in keep:
                with client.pipeline() as pipe:
                    pipe.zrem(conf.schedule_key, key)
                    pipe.delete(key)
                    pipe.execute()
        log.info("schedules: %s", ", ".join(f"{p} ({s.cron} {s.timezone})"
                                            for p, s in wanted.items()) or "none")

    def note_overdue(self) -> None:
        """Say ``todo.overdue`` for the todos past their ``due:`` that no sweep runs
        (once per todo and due time; a todo a live sweep runs is its supervision's to
        say). A failure is logged: it never stops the schedules."""
        ctx = self.coord
        if not ctx.dues:
            return
        try:
            said = note_unswept_overdue(
                ctx.rt, ctx.dues, ctx.now().timestamp(),
                lambda: running_todos(ctx.rt, SweepService(ctx.rt, ctx.catalog).live_sweeps()))
        except Exception as exc:  # noqa: BLE001 - one bad look never stops the beat
            log.warning("overdue todos not looked at (%s): next tick tries again", exc)
            return
        for tid in said:
            log.warning("%s is overdue and no sweep runs it: said (todo.overdue)", tid)

    @property
    def schedule(self) -> dict[str, PlanEntry]:
        """redbeat's entries due by the next tick (as redbeat selects them), by key, each
        read alone: one that cannot be read, or whose name is not its key's, is
        refused (said once) and passed over; it never stops the beat."""
        now = to_timestamp(self.app.now())
        conf = self.app.redbeat_conf
        client = get_redis(self.app)
        with client.pipeline() as pipe:
            pipe.zrangebyscore(conf.schedule_key, 0, now)
            pipe.zrangebyscore(conf.schedule_key, f"({now}", now + self.max_interval,
                               start=0, num=1)
            due, soon = pipe.execute()
        out: dict[str, PlanEntry] = {}
        for raw in due + soon:
            key = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
            if key in self.coord.refused:
                continue
            try:
                entry = self.Entry.from_key(key, app=self.app)
            except KeyError:  # (gone, as redbeat does: out of the set)
                client.zrem(conf.schedule_key, key)
                continue
            except Exception as exc:  # noqa: BLE001 - written by someone else: refused
                self.refuse(key, _plan_named(key.removeprefix(conf.key_prefix)),
                            f"it cannot be read ({exc})")
                continue
            if entry.key != key:
                self.refuse(key, _plan_named(key.removeprefix(conf.key_prefix)),
                            f"its name {entry.name!r} is not its key's")
                continue
            out[key] = entry
        return out

    def maybe_due(self, entry: PlanEntry, **kwargs: Any) -> float:
        """What the beat does with ``entry`` now (see :meth:`due`); a schedule that fails
        is said and passed over until the catalog changes: it never stops the beat."""
        try:
            return self.due(entry)
        except RedisError:  # (the Redis, not the schedule: as any Redis call of the beat)
            raise
        except Exception as exc:  # noqa: BLE001 - one bad schedule never stops the beat
            # Said once, not passed over: a schedule of the catalog fires again once
            # what failed (a start) works again.
            self.refuse(entry.key, _plan_of(entry), f"it failed ({type(exc).__name__}: {exc})",
                        skip=False)
            return float(self.max_interval)

    def due(self, entry: PlanEntry) -> float:
        ctx = self.coord
        plan = _plan_of(entry)
        s = entry.schedule
        if plan is None or not isinstance(s, CronSchedule):
            self.refuse(entry.key, plan, "it is not a plan's cron schedule coord wrote")
            self.repair(entry.key, plan)
            return float(self.max_interval)
        now = ctx.now()
        last = _aware(entry.last_run_at) if entry.last_run_at else None
        d = decide(s, last, now, ctx.missed_after)
        if d.kind == "wait":
            return d.seconds or 1.0
        if d.kind in ("fire", "skip"):
            # At firing time, the catalog says what is scheduled: anyone who can write
            # the Redis can write an entry (a plan, a cron), and only the catalog's
            # entry, as the catalog has it now, fires.
            try:
                why = self.refusal(entry)
            except CatalogUnread as exc:  # said once; tried again at the next tick
                self.refuse(entry.key, plan, str(exc), skip=False)
                return float(self.max_interval)
            if why is not None:
                self.refuse(entry.key, plan, why)
                self.repair(entry.key, plan)
                return float(self.max_interval)
        # Its last run moves to now first (redbeat's reserve): a beat that dies past this
        # line never fires this firing again; the claim below makes it once among beats.
        self.reserve(entry)
        if d.kind == "fire":
            self.fire(plan, d)
        elif d.kind == "skip":
            self.skip(plan, s, d)
        upcoming = next_runs(s.cron, s.timezone, now)[0]
        return max(1.0, (upcoming - now).total_seconds())

    def refusal(self, entry: PlanEntry) -> str | None:
        """Why ``entry`` must not fire, read against the catalog now (None: it may)."""
        ctx = self.coord
        try:
            wanted = scheduled_plans(SweepService(ctx.rt, ctx.catalog).catalog())
        except Exception as exc:  # noqa: BLE001 - fail closed: nothing fires unread
            raise CatalogUnread(f"the catalog {ctx.catalog} cannot be read now ({exc})"
                                ) from None
        raw = get_redis(self.app).hget(entry.key, "definition")
        try:
            definition = json.loads(raw) if raw is not None else None
        except ValueError:
            definition = None
        return entry_refusal(entry.name, definition, wanted)

    def repair(self, key: str, plan: str | None) -> None:
        """A refused entry that is a plan's own (its key) while the catalog schedules
        that plan: written again from the catalog (its last run now: it fires from its
        next time on), so that a changed entry does not stop the plan's own firings."""
        ctx = self.coord
        if plan is None or key != PlanEntry.generate_key(self.app, ENTRY + plan):
            return
        try:
            s = scheduled_plans(SweepService(ctx.rt, ctx.catalog).catalog()).get(plan)
            if s is None:
                return
            client = get_redis(self.app)
            client.hdel(key, "meta")  # (save keeps a meta there: this one is not ours)
            PlanEntry(name=ENTRY + plan, task=TASK, kwargs={"plan": plan}, app=self.app,
                      schedule=CronSchedule(s.cron, s.timezone, s.catchup),
                      last_run_at=ctx.now()).save()
        except Exception as exc:  # noqa: BLE001 - it stays refused
            log.error("%s: its schedule entry could not be written again from the catalog "
                      "(%s): it stays refused until the catalog changes", plan, exc)
            return
        ctx.refused.pop(key, None)
        log.warning("%s: its schedule entry was written again from the catalog (%s %s)",
                    plan, s.cron, s.timezone)

    def refuse(self, key: str, plan: str | None, why: str, *, skip: bool = True) -> None:
        """An entry `coord beat` does not fire: said once (its log, a ``schedule.refused``
        event) and (``skip``) passed over until the catalog changes; `coord schedule
        list` shows one the catalog does not name."""
        ctx = self.coord
        try:
            raw = get_redis(self.app).hget(key, "definition")
        except Exception:  # noqa: BLE001 - said with what is known
            raw = None
        seen = raw if isinstance(raw, str) else (raw or b"").decode("utf-8", "replace")
        said = (seen, why) if not skip else seen
        if ctx.said.get(key) == said:
            return
        ctx.said[key] = said
        if skip:
            ctx.refused[key] = seen
        log.error("schedule entry %s%s refused, not fired: %s (only the catalog's "
                  "schedule: fires; `coord schedule list` shows it)", key,
                  f" (plan {plan})" if plan else "", why)
        try:
            ctx.rt.events.emit(EventKind.schedule_refused, plan=plan, entry=key, reason=why)
        except Exception as exc:  # noqa: BLE001 - the log said it
            log.warning("the schedule.refused event was not written: %s", exc)

    def fire(self, plan: str, d: Decision) -> None:
        """Claim the firing, then start the plan's sweep (see the module)."""
        ctx = self.coord
        assert d.firing is not None
        at, due = d.firing.timestamp(), d.firing.isoformat()
        store = ctx.rt.schedules()
        if not store.claim(plan, at, {"due": due, "by": ctx.who, "claimed_at": time.time(),
                                      "catchup": d.catchup, "missed": d.missed}):
            log.info("%s: the firing of %s was claimed by another beat: nothing started",
                     plan, due)
            return
        with self.holding():  # a slow start (embedded: a process) keeps the lock
            started = start_plan(ctx.catalog, plan, schedule_trigger(due, catchup=d.catchup))
        store.fired(plan, at, sweep=started.sweep_id, error=started.error)
        ctx.fired.append(started.document())
        how = "caught up (missed while no beat ran)" if d.catchup else "fired"
        more = f"; {d.missed}+ earlier firing(s) passed unseen" if d.missed else ""
        if started.error:
            log.error("%s: %s %s, not started: %s%s", plan, how, due, started.error, more)
        else:
            log.info("%s: %s %s: sweep %s%s", plan, how, due, started.sweep_id, more)

    @contextmanager
    def holding(self) -> Iterator[None]:
        """The lock renewed every third of its timeout while inside (the ticks renew it
        otherwise); a renewal that fails (the lock taken over) is left to the next tick,
        which stops this beat."""
        stop = threading.Event()
        lock, every = self.lock, max(1.0, self.lock_timeout / 3)

        def renew() -> None:
            while lock is not None and not stop.wait(every):
                try:
                    lock.extend(int(self.lock_timeout))
                except Exception:  # noqa: BLE001 - the tick says it
                    return

        thread = threading.Thread(target=renew, name="coord-beat-lock", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def skip(self, plan: str, s: CronSchedule, d: Decision) -> None:
        """A firing missed while no beat ran, ``catchup: false``: skipped, and said."""
        ctx = self.coord
        assert d.firing is not None
        due = d.firing.isoformat()
        reason = (f"missed while no beat ran (now {ctx.now().isoformat(timespec='seconds')}, "
                  f"more than {ctx.missed_after:.0f} s late); catchup: false")
        ctx.rt.schedules().skipped(plan, {"at": d.firing.timestamp(), "due": due,
                                          "missed": d.missed + 1, "by": ctx.who,
                                          "skipped_at": time.time(), "reason": reason},
                                   ctx.rt.events.prepare(EventKind.schedule_skipped, plan=plan,
                                                         firing=due, reason=reason))
        log.warning("%s: the firing of %s was skipped: %s", plan, due, reason)


def _plan_of(entry: PlanEntry) -> str | None:
    """The plan an entry's name names (``plan:PLAN``), or None."""
    return _plan_named(str(entry.name))


def _plan_named(name: str) -> str | None:
    return name.removeprefix(ENTRY) if name.startswith(ENTRY) and len(name) > len(ENTRY) else None


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.timezone.utc)


def make_app(rt: Runtime, ctx: BeatContext, max_interval: float) -> Celery:
    """A Celery app for the beat alone: redbeat on coord's Redis client (its URL,
    Sentinel, TLS and credentials as coord's own), under the namespace's prefix."""
    app = Celery("coord-beat", set_as_current=False)
    lock_timeout = max(5, int(5 * max_interval))
    app.conf.update(
        enable_utc=True, timezone="UTC", beat_max_loop_interval=max_interval,
        beat_enable_remote_control=False,
        redbeat_redis_url=redact_url(rt.url) if rt.url else "redis://",
        redbeat_key_prefix=rt.schedules().beat_prefix, redbeat_lock_key="lock",
        redbeat_lock_timeout=lock_timeout)
    app.redbeat_redis = rt.schedules().client  # redbeat's client (get_redis uses a set one)
    app.coord_beat = ctx
    app.now = ctx.now  # the scheduler's and the entries' clock
    return app


def run(catalog: Path, *, max_interval: float = 5.0, clock_offset: float = 0.0) -> None:
    """Run the beat until SIGTERM or SIGINT (the lock is released on the way out).
    ``clock_offset``: seconds added to this process's clock (tests: a firing due
    tomorrow at 03:00 comes in seconds)."""
    rt = get_runtime(catalog)

    def now() -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=clock_offset)

    lock_timeout = max(5, int(5 * max_interval))
    ctx = BeatContext(catalog=catalog, rt=rt, who=whoami(catalog.resolve().parent),
                      missed_after=lock_timeout + 2 * max_interval, now=now)
    app = make_app(rt, ctx, max_interval)

    service = Service(app, max_interval=max_interval, scheduler_cls=CoordScheduler)

    def stop(signum: int, _frame: object) -> None:
        # Active: the loop ends at its next wake-up (at most --max-interval) and gives the
        # lock back; an exception raised into a Redis call would leave its connection
        # half-read. A standby (no lock yet) only polls for the lock: it leaves at once.
        if service.__dict__.get("scheduler") is None or service.scheduler.lock is None:
            raise SystemExit(128 + signum)
        service.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("coord beat: namespace %s, catalog %s, lock timeout %d s (a standby takes "
             "over within it); waiting for the lock", rt.keys.namespace, catalog, lock_timeout)
    try:
        service.start()
    except LockNotOwnedError:
        # Paused (or cut off) past the lock's timeout: a standby holds it now and fires.
        raise BeatLockLost("this beat lost its lock to another beat (it was stopped or cut "
                           f"off for more than {lock_timeout} s): stopping",
                           hint="run it again: it waits as a standby") from None
