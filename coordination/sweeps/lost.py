"""Lost work: a run whose holder died, a todo that keeps killing its workers, a
message that vanished. Found by the supervision pass; each ends in the progression.

- A todo ``running`` under a lease no longer held by its token: its worker died
  or froze. Its late writes will be refused (fence), so it runs again now, as
  soon as the lease is gone rather than after the broker's visibility timeout,
  unless this was its ``max_lost_runs``-th lost run: then it is *poisoned*
  (``failed``), and its dependents are skipped.
- A todo ``queued`` with no message anywhere: removed from its queue, prefetched
  by a worker that was SIGKILLed (kombu would hand it out again only after the
  visibility timeout), or never sent by a sender that crashed between the status
  change and the publish. It is sent again once it has been queued for
  ``lost_after`` seconds, no live worker holds its task id (from the workers'
  beats) and its id is in none of its queue's lists. A worker's beat lags what it
  holds by up to one beat, so it is re-sent only when two looks, two beats apart,
  both find it lost. Duplicates are harmless (the start script lets one run).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from coordination.runtime.context import Runtime
from coordination.runtime.queues import BROKER_PRIORITIES
from coordination.runtime.sweep_fields import Checkpoint
from coordination.runtime.transitions import LostVerdict
from coordination.status import EventKind, TodoStatus
from coordination.sweeps.progress import after_script, lose_run, resend
from coordination.sweeps.sending import message, todo_task_id
from coordination.sweeps.spec import SweepSpec
from coordination.sweeps.spec_store import level_index

log = logging.getLogger("coord.supervisor")


def lease_lost(rt: Runtime, spec: SweepSpec, tid: str, cp: Checkpoint, now: float,
               why: str = "lease expired") -> None:
    """A running todo whose lease expired (or was freed, ``why``: its holder is gone
    and others waited on it): run it again, or fail it as poison."""
    repo = spec.todos[tid].repo
    verdict = lose_run(rt, spec, tid, token=str(cp.get("token")), now=now, why=why)
    if verdict in (LostVerdict.requeued, LostVerdict.poisoned):
        rt.metrics.count_lost(repo)
    if verdict == LostVerdict.requeued:  # (todo.lost said by the script)
        resend(rt, spec, [tid])
        rt.events.emit(EventKind.supervisor_redispatched, sweep_id=spec.sweep_id, todo_id=tid,
                       reason=why)
    elif verdict == LostVerdict.poisoned:
        poisoned(rt, spec, tid)


def poisoned(rt: Runtime, spec: SweepSpec, tid: str, *,
             level_done: bool | None = None, terminal: int | None = None,
             level: int | None = None) -> None:
    """After a todo ended ``failed`` for having lost too many runs (the script that
    ended it, the lost-run script or the start script's takeover, also counted it,
    wrote its seal and said it: ``todo.lost``, ``todo.failed``): carry the sweep on.
    ``level``: its level index, when the caller has it already."""
    cp = rt.checkpoints.get(spec.sweep_id, tid) or Checkpoint(status=TodoStatus.failed)
    log.warning("sweep %s: %s failed: %s", spec.sweep_id, tid, cp.get("reason"))
    if level is None:
        level = level_index(spec, tid)
    after_script(rt, spec, tid, TodoStatus.failed, level=level, level_done=level_done,
                 terminal=terminal)


#: Where the last looks are kept: on the sweep's record, since any worker may take the
#: next supervision pass (a per-process memory rationed nothing across 50 workers).
LOOK_FIELDS = ("lost_look_at", "lost_look_lists", "suspect_look_at")

#: A full look reads, on average, at most this many broker lists a second: a backlog
#: spread over 10,000 repos' queues is read every 100 s instead of every few seconds (at
#: that size the reads were 12 Redis commands per todo), a few queues' as often as
#: before. A message lost there is found that much later; duplicates stay harmless.
LISTS_PER_SECOND = 100


def resend_lost_messages(rt: Runtime, spec: SweepSpec, cps: dict[str, Checkpoint],
                         now: float, record: Mapping[str, object] | None = None) -> list[str]:
    """Re-send queued todos whose message is gone; returns those re-sent.

    Two looks, two worker beats apart, must both find a message gone. The first (a
    full look, rationed to :data:`LISTS_PER_SECOND`) reads only the list each
    candidate's message was pushed onto (its queue at its priority); the second, of
    the suspects only, reads every priority list of their queues before it re-sends.
    ``record``: the sweep record's :data:`LOOK_FIELDS` as the pass read them (else read).
    """
    if rt.url is None and rt.settings.redis_url is None:
        return []  # Celery's in-memory transport (the unit tier's stand-in) loses none
    after = rt.settings.lost_after
    candidates = [
        t for t, cp in cps.items()
        if cp.get("status") == TodoStatus.queued
        and now - float(cp.get("queued_at") or cp.get("lost_at") or 0) >= after
        # A paced todo's message waits in a worker (a Celery eta, which Celery does not
        # list as reserved) until its token is due: lost only once it is overdue.
        and now - float(str(cp.get("paced_until") or 0)) >= after
    ]  # fmt: skip
    if not candidates:
        return []
    sid = spec.sweep_id
    looks = record if record is not None else (
        rt.checkpoints.get_sweep_fields(sid, LOOK_FIELDS) or {})
    base = min(after / 3, 2 * rt.settings.worker_heartbeat)
    interval = max(base, float(str(looks.get("lost_look_lists") or 0)) / LISTS_PER_SECOND)
    suspects = [t for t in candidates if cps[t].get("suspect_at") is not None]
    if now - float(str(looks.get("lost_look_at") or 0)) >= interval:
        full, look = True, candidates
    elif suspects and now - float(str(looks.get("suspect_look_at") or 0)) >= base:
        full, look = False, suspects
    else:
        return []
    held = rt.workers.held()
    ids = {t: todo_task_id(spec, t) for t in look}
    unheld = [t for t in look if ids[t] not in held]
    queued: set[str] = set()
    lists = 0
    if unheld:
        own = {(spec.todos[t].queue, message(spec, t).priority or 0) for t in unheld}
        every = {spec.todos[t].queue for t in unheld if t in suspects}
        queued = rt.checkpoints.queued_task_ids(every, own)
        lists = len(own | {(q, p) for q in every for p in BROKER_PRIORITIES})
    if full:
        rt.checkpoints.update_sweep(sid, lost_look_at=now, lost_look_lists=lists,
                                    suspect_look_at=now)
    else:
        rt.checkpoints.update_sweep(sid, suspect_look_at=now)
    confirm = 2 * rt.settings.worker_heartbeat
    cleared, suspected, due = [], [], []
    for t in look:
        suspect = cps[t].get("suspect_at")
        if not (t in unheld and ids[t] not in queued):
            if suspect is not None:
                cleared.append(t)
        elif suspect is None:
            suspected.append(t)
        elif now - float(suspect) >= confirm:
            due.append(t)
    # One write each. A new suspect only if still queued: a todo a worker started since
    # the pass read its checkpoint left its queue and is no suspect (at 10,000 todos a
    # look marked hundreds so, one script call apiece).
    rt.checkpoints.reset_todos(sid, cleared, suspect_at=None)
    rt.checkpoints.set_fields_if(sid, suspected, {TodoStatus.queued}, suspect_at=now)
    return _resend(rt, spec, due, cps, now)


def _resend(rt: Runtime, spec: SweepSpec, due: list[str], cps: dict[str, Checkpoint],
            now: float) -> list[str]:
    """Put the todos whose message two looks found gone back to be sent, each said
    ``todo.lost`` in the move that does it (a pass that died after it lost it), and send
    them again; those re-sent."""
    sid = spec.sweep_id
    resent = []
    for t in due:
        said = rt.events.prepare(EventKind.todo_lost, sweep_id=sid, todo_id=t,
                                 reason="message lost",
                                 queued_for=round(now - float(cps[t].get("queued_at") or now), 1))
        if rt.checkpoints.set_status_if(sid, t, TodoStatus.queued, {TodoStatus.queued},
                                        said=said, queued_at=now, suspect_at=None,
                                        lost_at=now):
            resend(rt, spec, [t])
            rt.events.emit(EventKind.supervisor_redispatched, sweep_id=sid, todo_id=t,
                           reason="message lost")
            resent.append(t)
    if resent:
        log.warning("sweep %s: re-sent %s (message lost)", sid, ", ".join(resent))
    return resent
