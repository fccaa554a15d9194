"""Sweeps: the library API behind `coord plan sweep` and `coord sweep ...`, the MCP
tools and the web view. A thin facade: each method reads what it needs and calls
one function of the module that holds its concept.

    planning.py     freezing a spec from the catalog
    steering.py     start, pause, unpause, cancel, resume, rollback
    reading.py      the status and list documents
    waiting.py      following a sweep to its end
    sync.py         the outcome into the catalog
"""

from __future__ import annotations

import builtins
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from coordination.catalog.reads import live
from coordination.connection.client import riding_out
from coordination.catalog.audit.log import operation
from coordination.catalog.audit.log import who as whoami
from coordination.errors import CoordError, NotFoundError, OperationFailed, PlanError, UsageError
from coordination.lazy import LazyModule
from coordination.runtime.context import Runtime
from coordination.runtime.events import Event
from coordination.runtime.sweep_fields import SweepRecord
from coordination.status import (
    DONE,
    SWEEP_ENDED,
    SWEEP_LIVE,
    SWEEP_TRANSITIONS,
    TERMINAL,
    SweepStatus,
    TodoStatus,
)
from coordination.sweeps import reading, waiting
from coordination.sweeps import summary as summaries
from coordination.sweeps.reading import (
    RECENT,
    StatusDocument,
    SweepRow,
    iso,
    sweep_row,
    todo_entry,
)
from coordination.sweeps.runner import this_process
from coordination.sweeps.spec import Mode, SWEEP_MARGIN, SweepSpec, sweep_deadline
from coordination.sweeps.spec_store import derivable_spec, load_spec
from coordination.sweeps.governance import freeze as freezing
from coordination.sweeps import person_scope
from coordination.sweeps.summary import SweepSummary
from coordination.sweeps.starts.triggers import Trigger
from coordination.sweeps.waiting import ended_by

_T = TypeVar("_T")

if TYPE_CHECKING:
    from coordination.forge.base import ForgeFactory
    from coordination.keys import Keys
    from coordination.settings import Settings
    from coordination.catalog.models import Catalog
    from coordination.catalog.selection.templates import Problems
    from coordination.sweeps.governance import approvals, control_log, gates
    from coordination.sweeps.governance.approvals import Decision
    from coordination.sweeps import steering
    from coordination.sweeps.writeback import sync as outcome
    from coordination.sweeps.planning import Planning
    from coordination.sweeps.writeback.sync import SyncResult
else:
    # Loaded on first use: reading a sweep (`sweep status`, the web view) needs neither
    # the progression that steering pulls in nor the catalog writer that sync does.
    steering = LazyModule("coordination.sweeps.steering")
    approvals = LazyModule("coordination.sweeps.governance.approvals")
    control_log = LazyModule("coordination.sweeps.governance.control_log")
    gates = LazyModule("coordination.sweeps.governance.gates")
    outcome = LazyModule("coordination.sweeps.writeback.sync")

_log = logging.getLogger("coord.launch")  # (a start's audit entry, as `coord beat` logs it)

#: Statuses a resume may start the next run from.
RESUMABLE = frozenset(s for s, nxt in SWEEP_TRANSITIONS.items() if SweepStatus.queued in nxt
                      and s not in SWEEP_LIVE)


def plan_spec(keys: Keys, settings: Settings, catalog_path: Path | None, plan_id: str, *,
              strategy: str, ignore_blockers: bool, again: bool = False,
              sequential: bool = False, merge_chains: bool = False,
              repos: list[str] | None = None) -> SweepSpec:
    """The spec of a sweep of ``plan_id``, from the catalog alone (nothing in Redis is
    read, so a launch plans before it opens a runtime: a plan refused starts no server).
    Refused (PlanError) with COORD_REQUIRE_APPROVERS=1 when one of its gates asks for
    particular or several people in a catalog without ``approvers:``."""
    from coordination.sweeps.planning import Planning  # lazy: the planner, only to start

    planning = Planning(keys, catalog_path)
    spec = planning.plan_spec(plan_id, strategy=strategy, ignore_blockers=ignore_blockers,
                              again=again, sequential=sequential, merge_chains=merge_chains,
                              repos=repos)
    return approvers_required(settings, planning.catalog, spec)


def todo_spec(keys: Keys, settings: Settings, catalog_path: Path | None, todo_id: str, *,
              ignore_blockers: bool) -> SweepSpec | None:
    """``todo_id`` as a one-todo sweep, from the catalog alone (as :func:`plan_spec`); None
    when one of its blockers is a todo the catalog does not say is completed: a sweep may
    have run it and not been synced yet, so it is planned on Redis
    (:meth:`SweepService.todo_spec` syncs that sweep first)."""
    from coordination.sweeps.planning import Planning  # lazy: the planner, only to start

    planning = Planning(keys, catalog_path)
    if not ignore_blockers and planning.blocking_todos(todo_id):
        return None
    spec = planning.todo_spec(todo_id, ignore_blockers=ignore_blockers)
    return approvers_required(settings, planning.catalog, spec)


def approvers_required(settings: Settings, catalog: Callable[[], Catalog],
                       spec: SweepSpec) -> SweepSpec:
    """``spec``, unless COORD_REQUIRE_APPROVERS=1 and one of its gates asks for particular
    or several people in a catalog without ``approvers:`` (PlanError). ``catalog``: read
    only when that is asked."""
    if not settings.require_approvers:
        return spec
    # lazy: the planner, needed only to start, not to read
    from coordination.planner.validate import APPROVERS_FIX, unproven_gates

    unproven = unproven_gates(catalog(), spec.todos)
    if unproven:
        raise PlanError("COORD_REQUIRE_APPROVERS=1: refusing to start a sweep whose gates' "
                        "approvers would be self-declared:\n" + "\n".join(
                            f"  - {tid}: {why}" for tid, why in unproven),
                        hint=APPROVERS_FIX + " (or unset COORD_REQUIRE_APPROVERS)")
    return spec


class SweepService:
    """Start, inspect, resume, cancel and sync sweeps."""

    def __init__(self, rt: Runtime, catalog_path: str | Path | None = None) -> None:
        from coordination.dispatch import sender  # lazy: builds no Celery app, imports none

        sender(rt)  # wired now: what it starts, steers or carries on sends (sending.py)
        self.rt = rt
        self.catalog_path = Path(catalog_path) if catalog_path else None
        self._problems: Problems = {}
        #: Who gives a repo's forge (a linked issue's comment when a sync completes its
        #: plan); None: :func:`coordination.forge.forge_for` (tests give a stub's).
        self.forge_factory: ForgeFactory | None = None

    @property
    def planning(self) -> Planning:
        # lazy: the planner, needed only to start or resume, not to read
        from coordination.sweeps.planning import Planning

        return Planning(self.rt.keys, self.catalog_path)

    def catalog(self) -> Catalog:
        """The catalog this service sweeps, as the planner sees it: a read-only view of
        the store's cache when it is warm (no pydantic), else the models
        (:meth:`Planning.catalog`); what it could not expand is in :attr:`problems`.
        A caller that copies, dumps or writes a catalog loads its own models."""
        planning = self.planning
        catalog = planning.catalog()
        self._problems = planning.problems
        return catalog

    @property
    def problems(self) -> Problems:
        """What the last :meth:`catalog` could not expand: todo -> its problem."""
        return self._problems

    # -- starting ---------------------------------------------------------------
    def plan_spec(self, plan_id: str, *, strategy: str, ignore_blockers: bool,
                  again: bool = False, sequential: bool = False,
                  merge_chains: bool = False, repos: list[str] | None = None) -> SweepSpec:
        return plan_spec(self.rt.keys, self.rt.settings, self.catalog_path, plan_id,
                         strategy=strategy, ignore_blockers=ignore_blockers, again=again,
                         sequential=sequential, merge_chains=merge_chains, repos=repos)

    def todo_spec(self, todo_id: str, *, ignore_blockers: bool = False) -> SweepSpec:
        """One todo as a one-todo sweep. A blocker that succeeded in a sweep not yet
        synced does not block: that sweep is synced first."""
        planning = self.planning
        if not ignore_blockers:
            self.sync_succeeded(planning.blocking_todos(todo_id))
        return approvers_required(self.rt.settings, planning.catalog,
                                  planning.todo_spec(todo_id, ignore_blockers=ignore_blockers))

    def sync_succeeded(self, todo_ids: Sequence[str]) -> list[str]:
        """Sync the recent ended sweeps of this catalog, not synced yet, in which one of
        ``todo_ids`` succeeded, oldest first (a later outcome wins); returns their ids."""
        wanted = set(todo_ids)
        if not wanted or self.catalog_path is None:
            return []
        mine = str(self.catalog_path.resolve())
        candidates = sorted(
            (rec for rec in self.rt.checkpoints.list_sweeps(limit=RECENT)
             if rec.get("status") in SWEEP_ENDED and not rec.get("synced_at")
             and rec.get("catalog") == mine),
            key=lambda rec: float(rec.get("created_at") or 0))
        synced: list[str] = []
        for rec in candidates:
            sid = rec.get("id", "")
            st = self.status(sid)
            if any(st["todos"][t]["status"] in DONE
                   for t in wanted if t in st["todos"]):
                try:
                    self.sync(sid, status=st)
                except OperationFailed as exc:  # its spec fails its check: none of it
                    logging.getLogger("coord.sync").warning("%s", exc.message)
                    continue
                synced.append(sid)
        return synced

    def start(self, plan_id: str, *, strategy: str = "levels", ignore_blockers: bool = False,
              atomic: bool | str = False, again: bool = False) -> str:
        from coordination.sweeps.planning import new_sweep_id  # lazy: as planning above

        spec = self.plan_spec(plan_id, strategy=strategy, ignore_blockers=ignore_blockers,
                              again=again)
        return self.start_spec(spec, new_sweep_id(plan_id), atomic=atomic)

    def start_spec(self, spec: SweepSpec, sweep_id: str, *, kind: str = "plan",
                   atomic: bool | str = False, trigger: Trigger | None = None,
                   name: str | None = None) -> str:
        """Record the sweep and send its first todos (refused while the fleet is frozen);
        ``trigger``: what started it (default a command: :data:`triggers.CLI`); ``name``:
        what it runs, as its audit entry names it (default its plan)."""
        person_scope.refuse_start(self.rt, spec, sweep_id)  # (a person's: before any write)
        freezing.refuse_if_frozen(self.rt, f"start a sweep of {spec.plan or sweep_id}",
                                  self.catalog_path)
        self.publish_webhooks()
        if trigger is not None and trigger.get("kind") != "cli":
            self._audit_start(spec, sweep_id, trigger, name or spec.plan)
        if self.catalog_path is not None and kind != "run":  # run: not in the catalog
            # Before it starts: a read from now on looks for it (coordination.catalog.reads.live).
            live.mark(self.catalog_path, sweep_id, at=self.where(), plan=spec.plan,
                      todos=list(spec.todos))
        return steering.start(self.rt, spec, sweep_id, kind=kind, atomic=atomic,
                              trigger=trigger)

    def _audit_start(self, spec: SweepSpec, sweep_id: str, trigger: Trigger,
                     name: str) -> None:
        """A sweep no person typed a command for (a schedule's firing, a push) starts: an
        entry ``sweep.start`` in the catalog's audit log names it, what it runs and its
        trigger, written before the sweep is recorded: a starter killed right after its
        record (which the supervision passes carry on) left a sweep with no entry. One
        whose record then fails names a sweep that never was (its error says why). The
        sweep starts if the entry cannot be written (said in the log)."""
        catalog = self.catalog_path
        if catalog is None or not catalog.is_file():
            _log.warning("sweep %s: its start is not in an audit log (no catalog file here)",
                         sweep_id)
            return
        from coordination.catalog.file.store import CatalogStore  # lazy: the catalog's writer

        try:
            CatalogStore(catalog).record_decision(
                who=whoami(catalog.resolve().parent), op="sweep.start", ids=[sweep_id, name],
                decision={"sweep_id": sweep_id, "plan": spec.plan, "trigger": dict(trigger),
                          "todos": len(spec.todos)})
        except Exception as exc:  # noqa: BLE001 - the sweep starts all the same: say it
            _log.warning("sweep %s: its start is not in the audit log: %s", sweep_id, exc)

    def where(self) -> str:
        """Which Redis this service's sweeps run on, as a marker records it."""
        return live.where(self.rt.settings.redis_url, self.rt.keys.namespace)

    def publish_webhooks(self) -> None:
        """Tell the workers the catalog's ``notify:`` webhooks as they are now (they
        deliver without a catalog of their own); nothing for a catalog that never had any."""
        if self.catalog_path is None:
            return
        targets = self.catalog().notify
        outbox = self.rt.outbox()
        if targets or outbox.targets():
            from coordination.sweeps.notices.notify import publish  # lazy: urllib, hmac

            publish(self.rt, targets)

    # -- reading ----------------------------------------------------------------
    def record(self, sweep_id: str) -> SweepRecord:
        return reading.record(self.rt, sweep_id)

    def status(self, sweep_id: str) -> StatusDocument:
        return reading.status(self.rt, sweep_id, self._wave_names)

    def _wave_names(self, plan_id: str) -> list[str]:
        """The names of the plan's waves as the catalog has them now (none: no catalog,
        or it cannot be read: a status never fails on it)."""
        if self.catalog_path is None:
            return []
        try:
            plan = self.catalog().plan(plan_id)
        except CoordError:
            return []
        return [w.name for w in plan.waves] if plan is not None else []

    def summary(self, sweep_id: str) -> SweepSummary | None:
        """What `sweep status` shows of a big sweep, read from its tally; None when the
        status document must be read instead (:func:`.summary.summary`)."""
        return summaries.summary(self.rt, sweep_id)

    def events(self, sweep_id: str | None = None, *, limit: int | None = None,
               todo: str | None = None) -> list[dict[str, object]]:
        """``coord events [--sweep ID] [--todo ID] --json``: the ledger's events (of one
        sweep; of one todo, see :func:`about_todo`), oldest first, the last ``limit``."""
        if sweep_id is not None:
            rec = self.record(sweep_id)  # an unknown sweep is an error, not an empty list
            if todo is not None:
                self.check_todo(rec, todo)
        evs = self.rt.events.read(sweep_id=sweep_id)
        if todo is not None:
            evs = [e for e in evs if about_todo(e, todo)]
        if limit is not None:
            evs = evs[-limit:]
        return [e.to_dict() for e in evs]

    def check_todo(self, rec: SweepRecord, todo: str) -> None:
        """NotFoundError (exit 2) unless ``todo`` is a todo of the sweep ``rec``, or a
        template with instances in it."""
        spec = load_spec(self.rt, rec.get("id", ""), rec)
        if spec is not None and not any(t == todo or t.startswith(todo + "[")
                                        for t in spec.todos):
            raise NotFoundError(f"sweep {rec.get('id', '')} has no todo {todo}",
                                hint=f"its todos: coord sweep status {rec.get('id', '')}")

    def list(self, limit: int = 50) -> list[SweepRow]:
        """The ``coord sweep list --json`` document: recent sweeps, newest first."""
        embedded = self.rt.settings.embedded
        return [sweep_row(rec, embedded=embedded)
                for rec in self.rt.checkpoints.list_sweeps(limit=limit)]

    def wait(self, sweep_id: str, *, on_event: Callable[[Event], None] | None = None,
             timeout: float | None = None) -> StatusDocument:
        if self.catalog_path is not None:  # this process syncs it: reads leave it alone
            live.wait_mark(self.catalog_path, sweep_id, this_process())
        st: StatusDocument | None = None
        try:
            st = waiting.wait(self.rt, sweep_id, record=lambda: self.record(sweep_id),
                              status=lambda: self.status(sweep_id), on_event=on_event,
                              timeout=timeout)
            return st
        finally:
            if self.catalog_path is not None and (st is None or st["status"] in SWEEP_LIVE):
                # Stopped waiting before the end (a timeout, Ctrl-C): nobody waits now,
                # so the command after its end syncs it.
                live.wait_mark(self.catalog_path, sweep_id, None)

    # -- steering ---------------------------------------------------------------
    def resume_plan(self, sweep_id: str, only: Sequence[str] | None = None) -> steering.ResumePlan:
        return steering.resume_plan(self.rt, self.record(sweep_id), only)

    def resume(self, sweep_id: str, *, only: Sequence[str] | None = None,
               dry_run: bool = False, reapply: bool = False,
               no_cache: bool = False) -> dict[str, object]:
        """Re-run what did not succeed (``no_cache``: reuse no earlier run). Compensated todos (a rollback undid their
        change), and a rollback that did not finish, are refused (exit 2) unless
        ``reapply`` (:func:`steering.refuse_reapply`), dry run or not."""
        rec = self.record(sweep_id)
        person_scope.refuse_outside(self.rt, sweep_id, "resume", rec)
        if rec.get("status") in SWEEP_LIVE and not dry_run:
            raise UsageError(
                f"sweep {sweep_id} is still {rec.get('status')}",
                hint=f"wait for it, or `coord sweep cancel {sweep_id}` first",
            )
        preview = steering.resume_plan(self.rt, rec, only)
        if not reapply:
            steering.refuse_reapply(preview)
        # A newer sweep's rollback undid what this one counts as done: never marked
        # completed by resuming it (#50)
        steering.refuse_undone_since(sweep_id, rec.get("plan"),
                                     steering.undone_since(self.rt, rec, preview["keep"]))
        if dry_run:
            return {**preview, "dry_run": True}
        rerun = list(preview["rerun"])
        if not rerun:
            nothing: dict[str, object] = {"sweep_id": sweep_id, "rerun": [],
                                          "status": rec.get("status"),
                                          "kept_asked": preview["kept_asked"]}
            control_log.record(self.rt, self.catalog_path, "resume", sweep_id, nothing)
            return nothing
        if rec.get("status") not in RESUMABLE:
            raise UsageError(f"sweep {sweep_id} is {rec.get('status')}: it cannot be resumed",
                             hint="start a new sweep of the plan")
        freezing.refuse_if_frozen(self.rt, f"resume sweep {sweep_id}", self.catalog_path)
        catalog = self.catalog()
        adhoc = rec.get("kind") == "run"  # `coord run`: its todos are in its spec only
        if not adhoc:  # a template of them that selects nothing now: said as it is
            from coordination.catalog.selection.templates import require  # lazy: as the planner

            require(self._problems, todos=rerun)
        missing = [] if adhoc else [t for t in rerun if catalog.todo(t) is None]
        if missing:
            raise NotFoundError(
                f"todos of sweep {sweep_id} are no longer in the catalog: {', '.join(missing)}",
                hint="restore them, or start a new sweep of the plan",
            )
        old = derivable_spec(self.rt, sweep_id, rec)  # what it keeps gets signed
        if old is None:
            raise NotFoundError(f"sweep {sweep_id} has no spec", hint="see `coord sweep list`")
        spec = self.planning.resume_spec(old, rerun, adhoc=adhoc)
        reopened = gates.reopened_by(self.rt, spec, rerun)  # approvals of something else
        if reopened:
            rerun = sorted({*rerun, *reopened})
            spec = self.planning.resume_spec(old, rerun, adhoc=adhoc)
        spec.no_cache = no_cache
        if not adhoc and self.catalog_path is not None:  # live again: reads look for it
            live.mark(self.catalog_path, sweep_id, at=self.where(), plan=spec.plan,
                      todos=list(spec.todos))
        spec.wait_timeout = old.wait_timeout  # (`plan sweep --wait-timeout` holds for its runs)
        if not steering.resume(self.rt, spec, rerun):
            raise UsageError(f"sweep {sweep_id} was resumed or changed by someone else meanwhile",
                             hint=f"see `coord sweep status {sweep_id}`")
        out: dict[str, object] = {"sweep_id": sweep_id, "rerun": sorted(rerun),
                                  "status": SweepStatus.queued, "run": spec.run,
                                  "reopened": reopened, "kept_asked": preview["kept_asked"]}
        control_log.record(self.rt, self.catalog_path, "resume", sweep_id, out)
        return out

    def _actor(self) -> str:
        """Who steers a sweep from here (named in its events and audit entries): the web
        view's signed-in user around its calls (control_log.acting), else this user."""
        given = control_log.acting_as()
        if given is not None:
            return given[0]
        return whoami(self.catalog_path.resolve().parent if self.catalog_path else Path.cwd())

    def pause(self, sweep_id: str) -> steering.Steered:
        who = self._actor()
        rec = self.record(sweep_id)
        person_scope.refuse_outside(self.rt, sweep_id, "pause", rec)
        out = steering.pause(self.rt, rec, by=who)
        control_log.record(self.rt, self.catalog_path, "pause", sweep_id, out, who=who)
        return out

    def unpause(self, sweep_id: str) -> steering.Steered:
        rec = self.record(sweep_id)
        person_scope.refuse_outside(self.rt, sweep_id, "unpause", rec)
        freezing.refuse_if_frozen(self.rt, f"unpause sweep {sweep_id}", self.catalog_path)
        who = self._actor()
        out = steering.unpause(self.rt, rec, by=who)
        control_log.record(self.rt, self.catalog_path, "unpause", sweep_id, out, who=who)
        return out

    def rollback(self, sweep_id: str, *, dry_run: bool = False) -> dict[str, object]:
        """Run the undo: command of every todo of the sweep that succeeded, in reverse
        dependency order; ``dry_run`` only says what would run. Returns ``{"sweep_id",
        "compensate", "levels", "not_compensable", "status"}`` (and ``"dry_run"``)."""
        rec = self.record(sweep_id)
        person_scope.refuse_outside(self.rt, sweep_id, "roll back", rec)
        spec = load_spec(self.rt, sweep_id, rec)
        undo = self._undo_commands(spec) if spec is not None else {}
        out = steering.rollback(self.rt, rec, undo, dry_run=dry_run)
        if not dry_run:
            control_log.record(self.rt, self.catalog_path, "rollback", sweep_id, out)
        return out

    def _undo_commands(self, spec: SweepSpec) -> dict[str, str | None]:
        """Undo commands frozen in the spec; for a spec recorded before they were (0.1),
        the catalog's, if it can be read. A retry of a rollback that did not finish (a
        rollback's spec) takes the catalog's, so a fixed `undo:` takes effect (as a
        resume re-reads `run:`); the frozen ones stand for todos the catalog lost."""
        if spec.mode != Mode.rollback and any(t.undo for t in spec.todos.values()):
            return {}
        try:
            catalog = self.catalog()
        except Exception:  # no catalog here: the spec's (none) stand
            return {}
        out: dict[str, str | None] = {}
        for t in spec.todos:
            todo = catalog.todo(t)
            if todo is not None and todo.undo:
                out[t] = todo.undo
        return out

    def decide(self, sweep_id: str, todo_id: str, decision: str, *, who: str | None = None,
               comment: str = "", via: str = "") -> Decision:
        """Approve or reject a waiting gate (:mod:`coordination.sweeps.governance.approvals`);
        ``who``: default ``COORD_USER``, else git's user.email, else the OS user;
        ``via``: ``web`` when the web view votes for its signed-in user."""
        if who is None:
            who = whoami(self.catalog_path.resolve().parent if self.catalog_path else Path.cwd())
        return approvals.decide(self.rt, sweep_id, todo_id, who=who, decision=decision,
                                comment=comment, catalog=self.catalog_path, via=via)

    def decide_template(self, sweep_id: str, template_id: str, decision: str, *,
                        who: str | None = None, comment: str = "") -> approvals.Decisions:
        """Approve or reject every waiting instance of a gate template at once
        (:func:`coordination.sweeps.governance.approvals.decide_template`)."""
        if who is None:
            who = whoami(self.catalog_path.resolve().parent if self.catalog_path else Path.cwd())
        return approvals.decide_template(self.rt, sweep_id, template_id, who=who,
                                         decision=decision, comment=comment,
                                         catalog=self.catalog_path)

    def cancel(self, sweep_id: str, *, wait: float = 30.0) -> steering.CancelResult:
        who = self._actor()
        rec = self.record(sweep_id)
        person_scope.refuse_outside(self.rt, sweep_id, "cancel", rec)
        out = steering.cancel(self.rt, rec, wait=wait, by=who)
        control_log.record(self.rt, self.catalog_path, "cancel", sweep_id, out, who=who)
        return out

    def live_sweeps(self) -> builtins.list[str]:
        """Every live sweep of the namespace (queued, running, paused): the supervisors'
        active set and the recent sweeps' index, read again for their status."""
        cps = self.rt.checkpoints
        ids = set(cps.active_sweeps()) | {str(r.get("id")) for r in cps.list_sweeps(limit=RECENT)
                                           if r.get("status") in SWEEP_LIVE}
        return sorted(sid for sid in ids if cps.sweep_status(sid) in SWEEP_LIVE)

    def on_every_live(self, verb: str) -> builtins.list[dict[str, object]]:
        """`coord sweep pause|cancel --all`: ``verb`` on each live sweep; each one's result
        (with its ``sweep_id``), or its ``error``."""
        if verb not in ("pause", "cancel"):
            raise ValueError(f"not a verb for every sweep: {verb}")
        out: builtins.list[dict[str, object]] = []
        for sid in self.live_sweeps():
            try:
                out.append({**getattr(self, verb)(sid), "sweep_id": sid})
            except CoordError as exc:
                out.append({"sweep_id": sid, "error": str(exc)})
        return out

    def ran_from_here(self, sweep_id: str) -> bool:
        """Did the sweep run from this service's catalog (the one a sync writes)?"""
        if self.catalog_path is None:
            return False
        rec = _ride(lambda: self.rt.checkpoints.get_sweep_fields(sweep_id, ("catalog",)))
        ran = (rec or {}).get("catalog")
        return ran is None or ran == str(self.catalog_path.resolve())

    def sync(self, sweep_id: str, *, status: StatusDocument | None = None) -> dict[str, object]:
        """Write a finished sweep's outcome back into the catalog, in one edit
        (:mod:`coordination.sweeps.writeback.sync`). ``status``: the sweep's :meth:`status`
        document if the caller has just read it (an ended sweep's does not change),
        so that its checkpoints are not all read a second time.

        Redis away (a restart, a failover just after the sweep ended) is waited out for
        :data:`SYNC_PATIENCE` seconds: the reads before the edit, and the writes after it
        (each of them safe to repeat), are tried again; the edit itself is made once."""
        if status is None or status.get("sweep_id") != sweep_id:
            status = _ride(lambda: self.status(sweep_id))
        if status["status"] in SWEEP_LIVE:
            raise UsageError(f"sweep {sweep_id} is still {status['status']}",
                             hint="sync it when it ends")
        if self.catalog_path is None:
            raise UsageError("no catalog file given", hint="pass --file")
        rec = _ride(lambda: self.rt.checkpoints.get_sweep_fields(sweep_id, ("kind", "again"))) or {}
        if rec.get("kind") == "run":  # `coord run`'s todos are not in the catalog
            nothing: SyncResult = {"completed": [], "failed": [], "skipped": [], "reset": [],
                                   "unrun": [], "plan": None, "plan_completed": False,
                                   "plan_status": None, "reopened": False}
            return {"sweep_id": sweep_id, "catalog": str(self.catalog_path), **nothing}
        # Only sealed outcomes of a sweep whose spec verifies (its plan, todos, again):
        # never a plain status or field (sweeps/writeback/sealed_outcomes.py)
        # lazy: ruamel (the sync module) is not for `sweep status`, which loads this one
        from coordination.sweeps.writeback.sealed_outcomes import sealed_outcomes, signed_spec

        catalog_path, todos = self.catalog_path, status["todos"]
        spec = _ride(lambda: signed_spec(self.rt, sweep_id, catalog_path))
        sealed = _ride(lambda: sealed_outcomes(self.rt, sweep_id, spec, todos))
        with operation("SweepService.sync"):  # the audit log's name for it since 0.2
            changed: SyncResult = outcome.write_outcome(self.catalog_path, spec.plan or None,
                                                        sealed.outcomes, again=spec.again)
        if sealed.refused:
            changed["refused"] = sealed.refused
            logging.getLogger("coord.sync").warning("sweep %s: outcomes not written into the catalog: %s", sweep_id,
                        "; ".join(f"{t}: {why}" for t, why in sorted(sealed.refused.items())))
        synced_at = time.time()
        _ride(lambda: self.rt.checkpoints.update_sweep(sweep_id, synced_at=synced_at))
        live.unmark(self.catalog_path, sweep_id)
        _ride(lambda: self._milestone_events(sweep_id, changed))  # announced once each
        if changed.get("plan_completed") and spec.plan and _links_forge_issues(catalog_path):
            # Decided once by the edit above: each linked forge issue of the plan is told
            # once (coordination.forge.issue_link; a forge that fails is listed, not raised).
            from coordination.forge.issue_link import comment_plan_completed  # lazy: forge

            told = comment_plan_completed(catalog_path, spec.plan, sweep_id=sweep_id,
                                          factory=self.forge_factory)
            if told:
                changed["forge_issues"] = told
        return {"sweep_id": sweep_id, "catalog": str(self.catalog_path), **changed}


    def _milestone_events(self, sweep_id: str, changed: SyncResult) -> None:
        """The milestones this sync's edit completed or reopened, announced
        (:mod:`coordination.sweeps.notices.milestones`: once each)."""
        completed = changed.get("milestones_completed") or []
        reopened = changed.get("milestones_reopened") or []
        if (completed or reopened) and self.catalog_path is not None:
            from coordination.sweeps.notices.milestones import announce  # lazy: `sweep status` reads no store

            announce(self.rt, self.catalog_path, completed, reopened, sweep_id=sweep_id)


#: How long a sync waits out Redis away (seconds): a failover's few seconds, a restart.
SYNC_PATIENCE = 60.0


def _ride(call: Callable[[], _T]) -> _T:
    """``call()`` tried again while Redis cannot be reached, :data:`SYNC_PATIENCE` at most."""
    return riding_out(call, time.monotonic() + SYNC_PATIENCE)


def about_todo(ev: Event, todo: str) -> bool:
    """Is ``ev`` about ``todo``: that todo, or (``todo`` a template's id) one of its
    instances ``TODO-010[api]``?"""
    tid = ev.todo_id
    return tid is not None and (tid == todo or (tid.startswith(todo + "[")
                                                and tid.endswith("]")))


def unattended(rt: Runtime, repos: Sequence[str]) -> list[str]:
    """The repos among ``repos`` that no live worker serves (from liveness beats)."""
    counts = rt.workers.per_repo() if rt.workers is not None else {}
    return sorted(r for r in set(repos) if not counts.get(r))


def _links_forge_issues(catalog: Path) -> bool:
    """Whether any issue of the catalog (as the sync's edit just left it: its validated
    catalog is in the store's memo) is linked to a forge issue. A completed plan's comment needs one; the
    forge's modules (its records are 30 ms of dataclasses to import) load only then,
    after the sweep, where the user waits for every millisecond."""
    from coordination.catalog.file.store import CatalogStore  # lazy: the catalog's writer

    return any(i.forge_issue for i in CatalogStore(catalog).load().coordination.issues)


__all__ = ["SweepService", "SWEEP_MARGIN", "TERMINAL", "about_todo", "iso", "sweep_deadline", "sweep_row",
           "todo_entry", "ended_by", "unattended"]
