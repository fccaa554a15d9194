"""Waiting for a sweep to end: follow its events, supervise it meanwhile, never
forever."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis

from coordination.connection.client import riding_out
from coordination.errors import NotFoundError, RuntimeFault
from coordination.runtime.context import Runtime
from coordination.runtime.events import Event
from coordination.runtime.sweep_fields import SweepRecord
from coordination.status import SWEEP_END_EVENTS, SWEEP_LIVE, SweepStatus, TodoStatus
from coordination.sweeps.reading import StatusDocument, vanished

log = logging.getLogger("coord.sweeps")

#: The least time between two reads of a waited-for sweep's events (seconds): the
#: longest a waiting command notices a sweep's end late. 0.1 s cost a 400-todo sweep's
#: `plan sweep --wait` about 30 ms of wall on average, for no CPU saved (measured).
WAIT_PACE = 0.025
#: How long a waiting command gives the todos still running when their sweep was
#: cancelled (from another terminal) to record it, so that its last table shows what
#: they ended as: `sweep cancel`'s own wait for them (steering.cancel) by default.
SETTLE = 30.0
#: Between two reads of such a sweep's todos (seconds).
SETTLE_PACE = 0.1
#: How long a wait that read its sweep's status as ended waits for the end event
#: (seconds). An ending writes the sweep's state first (its status, and what had not
#: started cancelled, in one step), then carries the sweep on and writes its end event
#: last: a wait that stopped at the status showed what came before the rest (until
#: 0.6, todos still pending), and its follower never saw the event. The event ends the
#: wait as soon as it lands; without it (an ender that died first) the status ends it
#: after this.
END_GRACE = 2.0


def ended_by(rt: Runtime, sweep_id: str, event: Event) -> bool:
    """Does ``event``, read while following ``sweep_id``, mean the sweep is over?

    A replay also holds the end of an earlier run of a resumed sweep: only the
    end of the run the record is at (or a record that is gone) ends it.
    """
    if event.kind not in SWEEP_END_EVENTS:
        return False
    try:
        rec = rt.checkpoints.get_sweep_fields(sweep_id, ("status", "run"))
    except (redis.ConnectionError, redis.TimeoutError):
        return False  # cannot tell now; the follower looks again
    if rec is None:
        return True
    if rec.get("status") in SWEEP_LIVE:
        return False
    run = event.data.get("run")  # events before 0.2 carry no run
    return run is None or int(str(run)) == int(rec.get("run") or 0)


def over(rt: Runtime, sweep_id: str) -> bool:
    """Is the sweep over for one who follows its events: gone, or ended with its end
    event in its stream? An ended sweep whose end is not said yet is not: the end is
    stored in its record (``ending``) and said by the step that takes the sweep off
    the active ones (:func:`coordination.sweeps.recording.ended`; a supervision pass,
    should its ender die first), after what the ending wrote in between."""
    rec = rt.checkpoints.get_sweep_fields(sweep_id, ("status", "ending"))
    return rec is None or (rec.get("status") not in SWEEP_LIVE and rec.get("ending") is None)


def wait(rt: Runtime, sweep_id: str, *, record: Callable[[], SweepRecord],
         status: Callable[[], StatusDocument],
         on_event: Callable[[Event], None] | None = None,
         timeout: float | None = None) -> StatusDocument:
    """Follow the sweep's events until it ends; supervise it meanwhile. ``record`` and
    ``status`` read the sweep (:class:`NotFoundError` when it is unknown).

    Never waits forever: the sweep's own deadline (enforced by the supervision
    pass run here too) ends it, and ``timeout`` bounds the wait. Redis away (a
    restart, a cut) is waited out, from the first read to the last.
    """
    # lazy: the progression and the planner, for a process that waits (not one that reads)
    from coordination.sweeps.supervision import supervise_once
    from coordination.sweeps.waits import supervise_waits  # lazy: as supervision above

    first_limit = time.monotonic() + (rt.settings.sweep_deadline if timeout is None
                                      else timeout)
    outage: list[bool] = []
    try:
        rec = riding_out(record, first_limit,
                         lambda: outage.append(True))
    except NotFoundError:
        if outage:  # it was there, then Redis went away and came back without it
            raise vanished(sweep_id) from None
        raise
    limit = float(rec.get("deadline") or time.time() + 3600) + 60
    if timeout is not None:
        limit = min(limit, time.time() + timeout)
    done = False
    next_pass = 0.0
    seen_ended: float | None = None

    def stop() -> bool:
        nonlocal done, next_pass, seen_ended
        now = time.time()
        if now >= next_pass:
            next_pass = now + rt.settings.supervise_interval
            try:
                supervise_once(rt, sweep_id, throttle=True)
                try:
                    supervise_waits(rt)
                except redis.exceptions.NoPermissionError:
                    # A person's user (`coord acl --person`) may not take the
                    # namespace-wide look at waits: the workers' and operators' to take.
                    pass
            except redis.ConnectionError as exc:  # Redis away: keep waiting
                log.warning("Redis unreachable: %s", exc)
            except Exception:  # the wait must outlive a failed pass
                log.exception("supervise pass failed")
            try:
                current = rt.checkpoints.sweep_status(sweep_id)
            except (redis.ConnectionError, redis.TimeoutError):
                return now > limit  # a restart is not the end: look again soon
            if current is None or current in SWEEP_LIVE:
                seen_ended = None  # (resumed meanwhile: a new run to wait for)
            elif seen_ended is None:
                seen_ended = now
            done = current is None or (seen_ended is not None and now >= seen_ended + END_GRACE)
        return done or now > limit

    # Paced: forty reads a second at most show progress at once, and the events of a busy
    # sweep are read in a few batches instead of one read per event.
    for ev in rt.events.follow(sweep_id=sweep_id, block_ms=250, stop=stop, pace=WAIT_PACE):
        if on_event is not None:
            on_event(ev)
        if ended_by(rt, sweep_id, ev):
            break
    try:
        last = riding_out(status, time.monotonic() + max(0.0, limit - time.time()))
    except NotFoundError:
        raise vanished(sweep_id) from None
    if last["status"] in SWEEP_LIVE:
        # Only reached at the wait's limit: say so rather than return a live status.
        raise RuntimeFault(
            f"sweep {sweep_id} still {last.get('status')} when the wait ended "
            f"({'timeout' if timeout is not None else 'past its deadline'})",
            hint=f"it keeps running; follow it with `coord sweep watch {sweep_id}`",
        )
    return settled(last, status, min(time.time() + SETTLE, limit))


def running(doc: StatusDocument) -> list[str]:
    return [t for t, v in doc["todos"].items() if v["status"] == TodoStatus.running]


def settled(last: StatusDocument, status: Callable[[], StatusDocument],
            until: float) -> StatusDocument:
    """A cancelled sweep's document once its running todos recorded how they ended
    (their workers see the cancel within a second and kill them), or as it is at
    ``until``: the end the waiting command shows is not a todo still ``running``."""
    while (last["status"] == SweepStatus.cancelled and running(last)
           and time.time() < until):
        time.sleep(SETTLE_PACE)
        try:
            last = status()
        except (redis.ConnectionError, redis.TimeoutError):
            continue
    return last
