"""Changing a sweep's course: start it, pause and unpause it, cancel it, resume it
from its checkpoints, roll it back. Each status change is a compare-and-set
checked against :data:`coordination.status.SWEEP_TRANSITIONS`; what follows for
its todos goes through the progression (:mod:`.progress`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from coordination.catalog.audit import log as audit
from coordination.errors import NotFoundError, UsageError
from coordination.lazy import LazyModule
from coordination.runtime.context import Runtime
from coordination.runtime.sweep_fields import TALLY_VERSION, SweepRecord, count_field
from coordination.status import (
    DONE,
    NOT_STARTED,
    SWEEP_ACTIVE,
    SWEEP_ENDED,
    SWEEP_LIVE,
    UNSUCCESSFUL,
    EventKind,
    SweepStatus,
    TodoStatus,
)
from coordination.sweeps.governance.approvals import start_proof
from coordination.sweeps.progress import (
    advance_waves,
    cancel_orphans,
    end_sweep,
    finish_if_done,
    resend,
)
from coordination.sweeps.sending import dispatcher, first_todos, run_counts, todo_task_id
from coordination.sweeps.spec import Mode, SweepSpec, atomic_mode, forward_spec
from coordination.sweeps.spec_store import (
    load_spec,
    remember_written,
    repo_fields,
    run_record,
)
from coordination.sweeps.starts.triggers import CLI, Trigger
from coordination.sweeps.waves import halt_to_accept, say_accepted, start_wave

if TYPE_CHECKING:
    from coordination.sweeps import recording, rollback as rollbacks, supervision
    from coordination.sweeps.notices import commit_status
else:
    # Loaded on first use: a rollback's plans and the supervision pass (its modules'
    # ~3 ms) are no part of a sweep's start, which records it before either is needed
    # (nor is a run's ending, which a resume may have to say).
    recording = LazyModule("coordination.sweeps.recording")
    rollbacks = LazyModule("coordination.sweeps.rollback")
    supervision = LazyModule("coordination.sweeps.supervision")
    commit_status = LazyModule("coordination.sweeps.notices.commit_status")


def start(rt: Runtime, spec: SweepSpec, sweep_id: str, *, kind: str = "plan",
          atomic: bool | str = False, trigger: Trigger | None = None) -> str:
    """Record a sweep of ``spec`` and send its first todos. ``atomic``: at its first
    failure the sweep stops dispatching and rolls back on its own, once its running
    todos finished (True, "finish") or were killed ("stop"); the spec carries the
    mode, for the workers (:func:`~coordination.sweeps.spec.atomic_mode`).
    ``trigger``: what started it (default: a command, ``{"kind": "cli"}``). A frozen
    fleet was refused by the one door every start goes through, ``SweepService.start_spec``."""
    spec.sweep_id = sweep_id
    spec.atomic = atomic_mode(atomic)
    now = time.time()
    # The spec's facts first, then its text frozen and signed, then who starts it.
    fields: dict[str, object] = {
        "plan": spec.plan,
        "strategy": spec.strategy,
        "kind": kind,
        "status": SweepStatus.queued,
        "created_at": now,
        "run": 0,
        "catalog": spec.catalog,
        "atomic": bool(spec.atomic),
        "trigger": dict(trigger or CLI),
        # Its tally (lua/_common.lua): every todo pending, none to look at yet.
        "tally": TALLY_VERSION, count_field(TodoStatus.pending): len(spec.todos),
        **repo_fields(spec, spec.todos),
        **run_counts(rt, spec),  # (its levels' and todos' counters: none left to a sender)
    }
    if spec.again:
        fields["again"] = True  # what its sync reads (a sweep of before 0.4 has none)
    fields.update(run_record(rt, spec, now=now))
    # Who started it: a gate with starter_may_approve: false refuses their approval
    # (with the catalog's approvers:, the key that signs the start says who it is).
    starter = audit.who(Path(spec.catalog).parent if spec.catalog else Path.cwd())
    fields.update(started_by=starter, **start_proof(rt, spec, sweep_id, starter))
    said = rt.events.prepare(EventKind.sweep_queued, sweep_id=sweep_id, plan=spec.plan,
                             strategy=spec.strategy, todos=len(spec.todos),
                             levels=len(spec.levels))
    _pending(rt, spec)
    rt.checkpoints.create_sweep(sweep_id, fields, said)
    note_change(rt, spec, list(spec.todos), last=kind == "plan")
    remember_written(rt, spec, fields)  # this process follows it: no read-back of the spec
    begin(rt, spec)
    return sweep_id


def note_change(rt: Runtime, spec: SweepSpec, todos: Sequence[str], *, last: bool) -> None:
    """A sweep (run ``spec.run``) of a change's todos starts, running ``todos``: the
    plan's sealed sweep pointer says so (the landing rule reads the plan's last sweep,
    ``last``: a plan's sweep, and where each verify todo last started; a verify
    record of an earlier run no longer counts). Nothing for a sweep of no change."""
    plans: dict[str, list[str]] = {}
    repos: dict[str, dict[str, tuple[str, str]]] = {}
    urls: dict[str, dict[str, str | None]] = {}
    for t in todos:
        change = spec.todos[t].change if t in spec.todos else None
        if change:
            verify = plans.setdefault(str(change.get("plan")), [])
            if change.get("verify"):
                verify.append(t)
            at = repos.setdefault(str(change.get("plan")), {})
            given = change.get("repos")
            for r, where in (given.items() if isinstance(given, dict) else ()):
                at[str(r)] = (str(where[0]), str(where[2]))  # [checkout, base, remote]
            named = change.get("urls")
            for r, url in (named.items() if isinstance(named, dict) else ()):
                urls.setdefault(str(change.get("plan")), {})[str(r)] = str(url)
    # The pointer, built on the newest freshness anchor's, then anchored outside Redis
    # (beside the catalog, on the remotes): a pointer put back after it is refused.
    if not plans:
        return
    # lazy: a change's anchor (git, the fleet's manifests), off a plain sweep's start
    from coordination.change import anchor

    base_dir = Path(spec.catalog).parent if spec.catalog else None
    for plan, verify in sorted(plans.items()):
        anchor.note(rt, plan, spec.sweep_id, spec.run, verify,
                    last=last and plan == spec.plan, base_dir=base_dir,
                    repos=repos.get(plan, {}), urls=urls.get(plan, {}))


def _pending(rt: Runtime, spec: SweepSpec) -> None:
    """A sweep a push started posts ``pending`` on the pushed commit before its run is
    recorded: nothing of the run can start before it, so nothing can end before it (a
    supervision pass carries a recorded run on while a slow starter is still posting:
    its todos could end, and their final word be posted, before a late pending that
    would then stand). A forge down is said, not waited on
    (:mod:`coordination.sweeps.notices.commit_status`)."""
    if spec.push:
        commit_status.run_starts(rt, spec)


def begin(rt: Runtime, spec: SweepSpec) -> None:
    """A run recorded as queued (listed active and its counters written with it) starts:
    its first todos sent. What a starter that died first left undone, a supervision
    pass does: the first todos sent after a grace, the first wave started, a sweep of
    no todos ended. (A sweep a push started posted ``pending`` before its run was
    recorded: :func:`_pending`.)"""
    if not spec.todos:
        finish_if_done(rt, spec.sweep_id, spec)
        return
    first_todos(rt, spec)
    if spec.waves:
        start_wave(rt, spec, 0, reason="resume" if spec.run else "start")
        advance_waves(rt, spec)  # (a wave with nothing left to run ends at once)


def would_skip(spec: SweepSpec, rerun: Sequence[str], status: dict[str, str]
               ) -> dict[str, str]:
    """Of ``rerun``, the todos a resume would skip rather than run, with why: a blocker
    left out of the resume (``--only``) that did not succeed, or a blocker that would be
    skipped itself. The start script decides so at run time; the dry run says it."""
    chosen = set(rerun)
    waiting = {t: sum(p in chosen for p in spec.todos[t].preds) for t in rerun}
    ready = sorted((t for t, n in waiting.items() if n == 0), reverse=True)
    out: dict[str, str] = {}
    while ready:  # blockers before what they block
        t = ready.pop()
        for p in sorted(spec.todos[t].preds):
            if p in out:
                out[t] = f"blocker {p} would be skipped"
                break
            if p not in chosen and status.get(p) in UNSUCCESSFUL:
                out[t] = f"blocker {p} {status[p]}"
                break
        for s in spec.todos[t].succs:
            if s in waiting:
                waiting[s] -= 1
                if waiting[s] == 0:
                    ready.append(s)
    return dict(sorted(out.items()))


class ResumePlan(TypedDict):
    sweep_id: str
    status: str | None
    rerun: list[str]
    dependents: list[str]
    was: dict[str, str]
    would_skip: dict[str, str]  # of rerun: skipped at run time, and why (a blocker failed)
    keep: list[str]
    compensated: list[str]  # of rerun: changes a rollback undid (applied again: --reapply)
    rollback_left: list[str]  # undos a rollback that did not finish left (`sweep rollback`)
    #: of --only: the todos asked for that already succeeded (a resume keeps them; `coord
    #: todo run` runs one again)
    kept_asked: list[str]


def with_instances(spec: SweepSpec, ids: Sequence[str]) -> list[str]:
    """``ids`` with each template id (``TODO-010``, no todo of ``spec`` itself) replaced
    by its instances in the sweep (``TODO-010[api]``...): a template means all of them."""
    out: dict[str, None] = {}
    by_template: dict[str, list[str]] | None = None
    for t in ids:
        if t in spec.todos or "[" in t:
            out[t] = None
            continue
        if by_template is None:  # once, however many templates are named
            by_template = {}
            for s in spec.todos:
                if s.endswith("]") and "[" in s:
                    by_template.setdefault(s[:s.index("[")], []).append(s)
        out.update(dict.fromkeys(by_template.get(t, [t])))
    return list(out)


def resume_plan(rt: Runtime, rec: SweepRecord, only: Sequence[str] | None = None) -> ResumePlan:
    """What a resume would re-run: every todo that did not succeed, or with ``only``
    those todos and their dependents that did not succeed (after a rollback, its
    dependents in the run that applied the change: :func:`forward_spec`)."""
    sweep_id = rec.get("id", "")
    last = load_spec(rt, sweep_id, rec)
    if last is None:
        raise NotFoundError(f"sweep {sweep_id} has no spec", hint="see `coord sweep list`")
    old = forward_spec(last)
    cps = rt.checkpoints.get_all(sweep_id, list(old.todos))
    status = {t: cps.get(t, {}).get("status", TodoStatus.pending) for t in old.todos}
    if only:
        only = with_instances(old, only)
        unknown = [t for t in only if t not in old.todos]
        if unknown:
            raise NotFoundError(
                f"not in sweep {sweep_id}: {', '.join(unknown)}",
                hint=f"its todos: {', '.join(sorted(old.todos)[:20])}",
            )
        chosen = set(only)
        chosen.update(old.descendants_of(only))
    else:
        chosen = set(old.todos)
    rerun = [t for t in old.todos if t in chosen and status[t] not in DONE]
    asked = set(only or [])
    dependents = sorted(t for t in rerun if t not in asked) if only else []
    left = (rollbacks.retry_plan(last, {t: str(s) for t, s in status.items()}).compensate
            if last.mode == Mode.rollback and rec.get("status") in rollbacks.RETRY_FROM else [])
    return {"sweep_id": sweep_id, "status": rec.get("status"), "rerun": sorted(rerun),
            "would_skip": would_skip(old, rerun, status),
            "dependents": dependents, "was": {t: status[t] for t in sorted(rerun)},
            "keep": sorted(t for t in old.todos if t not in rerun),
            "compensated": sorted(t for t in rerun if status[t] == TodoStatus.compensated),
            "rollback_left": left,
            "kept_asked": sorted(t for t in asked if status.get(t) in DONE)}


def refuse_reapply(plan: ResumePlan) -> None:
    """A resume must not silently apply again what a rollback undid: refuse (exit 2)
    when it would re-run compensated todos, or a rollback that did not finish (whose
    undos left are for `sweep rollback` to retry), unless --reapply."""
    sweep_id, undone, left = plan["sweep_id"], plan["compensated"], plan["rollback_left"]
    again = f"`coord sweep resume {sweep_id} --reapply`"
    if left:
        raise UsageError(
            f"sweep {sweep_id} is {plan['status']}: its rollback did not finish (undos left: "
            f"{', '.join(left)}); a resume would apply the change again"
            + (f", {', '.join(undone)} included, whose change was undone" if undone else ""),
            hint=f"finish the rollback with `coord sweep rollback {sweep_id}` (it retries the "
            f"undos that failed or were skipped), or re-apply the change with {again}")
    if undone:
        were = "was" if len(undone) == 1 else "were"
        raise UsageError(
            f"sweep {sweep_id}: {', '.join(undone)} {were} compensated (a rollback undid "
            "their change); a resume would apply it again",
            hint=f"to apply it again: {again}; or leave them out with --only")


#: How many of the newest sweeps a resume looks through for a later rollback of its work.
UNDONE_LOOKBACK = 500


def undone_since(rt: Runtime, rec: SweepRecord, keep: Sequence[str]) -> dict[str, list[str]]:
    """Newer sweeps of ``rec``'s plan whose rollback undid (compensated) todos this sweep
    keeps as done: {newer sweep: those todos}. A resume would end with them counted
    done (and synced completed) though their change is no longer there."""
    plan, since = rec.get("plan"), float(str(rec.get("created_at") or 0))
    if not plan or not keep:
        return {}
    out: dict[str, list[str]] = {}
    for other in rt.checkpoints.list_sweeps(UNDONE_LOOKBACK):
        sid = str(other.get("id") or "")
        if (not sid or sid == rec.get("id") or other.get("plan") != plan
                or float(str(other.get("created_at") or 0)) <= since):
            continue
        cps = rt.checkpoints.get_all(sid, list(keep))
        undone = sorted(t for t, cp in cps.items()
                        if cp and cp.get("status") == TodoStatus.compensated)
        if undone:
            out[sid] = undone
    return out


def refuse_undone_since(sweep_id: str, plan: str | None, undone: dict[str, list[str]]) -> None:
    """Refuse (exit 2) a resume of an older sweep whose done work a newer one rolled back."""
    if not undone:
        return
    said = "; ".join(f"{sid} rolled back {', '.join(ts)}" for sid, ts in sorted(undone.items()))
    raise UsageError(
        f"sweep {sweep_id}: a newer sweep of {plan} undid work it counts as done ({said}); "
        "resuming it would mark that work completed though its change is gone",
        hint=f"start a new sweep of the plan (coord plan sweep {plan}): it runs them again")


def resume(rt: Runtime, spec: SweepSpec, rerun: list[str]) -> bool:
    """Start ``spec`` (the next run, :meth:`Planning.resume_spec`) re-running
    ``rerun``; False if the sweep is no longer ended (someone else resumed it)."""
    sweep_id = spec.sweep_id
    now = time.time()
    recording.end_unsaid(rt, sweep_id)  # (the last run's, if its ender died first)
    _pending(rt, spec)
    rt.checkpoints.persist_sweep(sweep_id)
    rt.checkpoints.update_sweep(sweep_id, **repo_fields(spec, rerun))  # (fresh from the catalog)
    rt.checkpoints.reset_todos(sweep_id, rerun, status=TodoStatus.pending, reason=None,
                               finished_at=None, exit_code=None, queued_at=None,
                               cached_from=None)
    rt.checkpoints.clear_remaining(sweep_id, spec.todos)
    said = rt.events.prepare(EventKind.sweep_queued, sweep_id=sweep_id, plan=spec.plan,
                             resumed=True, run=spec.run, todos=len(rerun))
    # The run's counters and (waves) no wave yet are written with it: a resumer that
    # dies after its write leaves what the supervision pass carries on from.
    unwaved = dict.fromkeys(("wave", "wave_state", "wave_until", "wave_reason",
                             "waves_accepted")) if spec.waves else {}
    if not rt.checkpoints.set_sweep_status(
        sweep_id, SweepStatus.queued, said, allowed_from=SWEEP_ENDED, reason=None,
        finished_at=None, started_at=None, run=spec.run, **run_record(rt, spec, now=now),
        terminal=len(spec.todos) - len(rerun), **run_counts(rt, spec), **unwaved,
    ):
        return False
    kind = (rt.checkpoints.get_sweep_fields(sweep_id, ("kind",)) or {}).get("kind") or "plan"
    note_change(rt, spec, rerun, last=kind == "plan")
    begin(rt, spec)
    return True


class Steered(TypedDict, total=False):
    sweep_id: str
    status: str | None
    changed: bool
    paused_for: float
    resent: list[str]


def pause(rt: Runtime, rec: SweepRecord, *, by: str | None = None) -> Steered:
    """Dispatch nothing new (level barriers, eager successors, re-sends); running
    todos finish and are recorded. The deadline clock stops while paused. ``by``: who
    paused it (its event says so)."""
    sweep_id = rec.get("id", "")
    status = rec.get("status")
    if status == SweepStatus.paused:
        return {"sweep_id": sweep_id, "status": SweepStatus.paused, "changed": False}
    said = rt.events.prepare(EventKind.sweep_paused, sweep_id=sweep_id, was=status, by=by)
    if not rt.checkpoints.set_sweep_status(sweep_id, SweepStatus.paused, said,
                                           allowed_from=SWEEP_ACTIVE, paused_at=time.time(),
                                           paused_from=status):
        raise UsageError(
            f"sweep {sweep_id} is {rt.checkpoints.sweep_status(sweep_id)}: only a queued or "
            "running sweep can be paused", hint="see `coord sweep status`")
    return {"sweep_id": sweep_id, "status": SweepStatus.paused, "changed": True}


def unpause(rt: Runtime, rec: SweepRecord, *, by: str | None = None) -> Steered:
    """Carry on: the deadline moves by the time spent paused, todos whose message
    was dropped while paused are sent again, and what became ready is sent. ``by``:
    who unpaused it (its event says so)."""
    sweep_id = rec.get("id", "")
    if rec.get("status") != SweepStatus.paused:
        if rec.get("status") in SWEEP_ACTIVE:
            return {"sweep_id": sweep_id, "status": rec.get("status"), "changed": False}
        raise UsageError(f"sweep {sweep_id} is {rec.get('status')}, not paused",
                         hint="only a paused sweep can be unpaused")
    now = time.time()
    paused_for = max(0.0, now - float(rec.get("paused_at") or now))
    was_running = rec.get("paused_from") == SweepStatus.running or rec.get("started_at")
    back = SweepStatus.running if was_running else SweepStatus.queued
    deadline = rec.get("deadline")
    spec = load_spec(rt, sweep_id)
    accepting = halt_to_accept(rt, spec) if spec is not None and spec.waves else None
    # The events are written with the move (the accepted wave's wave.done first: a pass
    # that sees the wave done on the running sweep starts the next one, and says so
    # only after it).
    said = rt.events.prepare(EventKind.sweep_unpaused, sweep_id=sweep_id,
                             paused_for=round(paused_for, 3), by=by)
    if spec is not None and accepting is not None:
        said = say_accepted(rt, spec, accepting[0]).then(said)
    if not rt.checkpoints.set_sweep_status(
            sweep_id, back, said, allowed_from={SweepStatus.paused}, paused_at=None,
            paused_from=None, reason=None, paused_total=float(rec.get("paused_total") or 0) + paused_for,
            **({"deadline": float(deadline) + paused_for} if deadline else {}),
            **(accepting[1] if accepting is not None else {})):
        return {"sweep_id": sweep_id, "status": rt.checkpoints.sweep_status(sweep_id),
                "changed": False}
    resent: list[str] = []
    if spec is not None:
        cps = rt.checkpoints.get_fields_all(sweep_id, list(spec.todos), ())
        # A queued todo's message may have been dropped by a worker while paused:
        # send it again (a duplicate finds the todo claimed and does nothing).
        resent = sorted(t for t, cp in cps.items() if cp.get("status") == TodoStatus.queued)
        resend(rt, spec, resent)
    supervision.supervise_once(rt, sweep_id, grace=0.0)
    return {"sweep_id": sweep_id, "status": back, "changed": True,
            "paused_for": round(paused_for, 3), "resent": resent}


class CancelResult(TypedDict):
    sweep_id: str
    status: str | None
    cancelled: bool
    still_running: list[str]


def cancel(rt: Runtime, rec: SweepRecord, *, wait: float = 30.0,
           by: str | None = None) -> CancelResult:
    """End a live sweep: what has not started is cancelled (its messages revoked),
    running todos see it within a second and kill their process group; wait for
    them to record it, with a deadline. ``by``: who cancelled it (the sweep's reason,
    and its event's, name them)."""
    sweep_id = rec.get("id", "")
    if rec.get("status") not in SWEEP_LIVE:
        return {"sweep_id": sweep_id, "status": rec.get("status"), "cancelled": False,
                "still_running": []}
    spec = load_spec(rt, sweep_id, rec)
    ids = list(spec.todos) if spec else []
    cps = rt.checkpoints.get_fields_all(sweep_id, ids, ())
    queued = [todo_task_id(spec, t) for t, cp in cps.items()
              if cp.get("status") in NOT_STARTED] if spec else []
    end_sweep(rt, sweep_id, f"cancelled by {by}" if by else "cancelled by user",
              status=SweepStatus.cancelled)
    if queued:
        try:
            dispatcher(rt).revoke(queued)
        except Exception:  # tasks also check the sweep status when they start
            pass
    end = time.time() + wait
    running: list[str] = []
    while time.time() < end:
        cps = rt.checkpoints.get_fields_all(sweep_id, ids, ("lease_key", "token"))
        running = [t for t, cp in cps.items() if cp.get("status") == TodoStatus.running]
        gone = set(rt.checkpoints.orphaned({t: cps[t] for t in running}))
        cancel_orphans(rt, sweep_id, spec, {t: cps[t].get("token") for t in gone})
        if not running:
            break
        time.sleep(0.2)
    still = [t for t, cp in rt.checkpoints.get_fields_all(sweep_id, ids, ()).items()
             if cp.get("status") == TodoStatus.running]
    return {"sweep_id": sweep_id, "status": SweepStatus.cancelled, "cancelled": True,
            "still_running": still}


def rollback(rt: Runtime, rec: SweepRecord, undo: dict[str, str | None], *,
             dry_run: bool = False) -> dict[str, object]:
    """Run the undo: command of every todo of the sweep that succeeded, in reverse
    dependency order (:mod:`.rollback`); of a rollback that did not finish
    (``rollback_failed``, cancelled), retry the undos it left (``"retry": true``, with
    what each ``"was"``). ``dry_run`` only says what would run."""
    sweep_id = rec.get("id", "")
    status = rec.get("status")
    spec = load_spec(rt, sweep_id, rec)
    if spec is None:
        raise NotFoundError(f"sweep {sweep_id} has no spec", hint="see `coord sweep list`")
    retry = spec.mode == Mode.rollback
    if retry and status == SweepStatus.rolled_back:
        raise UsageError(f"sweep {sweep_id} is rolled_back: it was rolled back already "
                         "(every undo ran)",
                         hint=f"to apply its change again: `coord sweep resume {sweep_id} "
                         "--reapply`, or a new sweep of the plan")
    if retry and status not in rollbacks.RETRY_FROM:
        raise UsageError(f"sweep {sweep_id} is {status}: its rollback is still running",
                         hint=f"follow it with `coord sweep watch {sweep_id}`")
    if not retry and status not in rollbacks.ROLLBACK_FROM and not dry_run:
        raise UsageError(
            f"sweep {sweep_id} is {status}: only a succeeded, failed or cancelled sweep "
            "can be rolled back",
            hint=f"wait for it, or `coord sweep cancel {sweep_id}` first")
    cps = rt.checkpoints.get_fields_all(sweep_id, list(spec.todos),
                                        ("reason", "exit_code", "finished_at"))
    statuses = {t: str(cp.get("status")) for t, cp in cps.items()}
    plan = (rollbacks.retry_plan(spec, statuses) if retry
            else rollbacks.rollback_plan(spec, statuses, undo))
    out: dict[str, object] = {"sweep_id": sweep_id, **plan.to_dict()}
    if retry:
        out.update(retry=True, was={t: statuses[t] for t in plan.compensate},
                   not_compensable=list(rec.get("not_compensable") or []),
                   compensated=sorted(t for t, s in statuses.items()
                                      if s == TodoStatus.compensated))
    if dry_run:
        return {**out, "status": status, "dry_run": True}
    trigger = (str(rec.get("rollback_reason") or "by user") if retry
               else rollbacks.user_trigger(status, cps))
    if rollbacks.start_rollback(rt, sweep_id, reason=trigger, undo=undo) is None:
        raise UsageError(f"sweep {sweep_id} is {rt.checkpoints.sweep_status(sweep_id)}: "
                         "its rollback was started by someone else",
                         hint=f"follow it with `coord sweep watch {sweep_id}`")
    return {**out, "status": rt.checkpoints.sweep_status(sweep_id)}
