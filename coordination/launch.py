"""Wiring a process to run sweeps: the runtime, its Celery app, and (embedded) workers.

The one place that builds a Celery app from a catalog's limits and gives it to a
runtime (``wire``), and that picks the mode: distributed when
``COORD_REDIS_URL`` is set, embedded (workers of this process) otherwise. The
CLI calls these and only renders; the library below (sweeps, runtime) is given
what it needs and never imports this module or the workers.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coordination.errors import UsageError
from coordination.keys import Keys
from coordination.processes import not_dumpable
from coordination.runtime.context import Runtime, every_setting, get_runtime
from coordination.status import SWEEP_LIVE, SweepStatus, TodoStatus
from coordination.sweeps import SweepService, new_sweep_id, unattended
from coordination.sweeps import runner
from coordination.sweeps.service import plan_spec, todo_spec
from coordination.sweeps.progress import end_sweep
from coordination.sweeps.governance.freeze import refuse_if_frozen
from coordination.sweeps.reading import StatusDocument
from coordination.sweeps.spec import SweepSpec
from coordination.sweeps.spec_store import load_spec
from coordination.sweeps.starts.pushes import push_spec
from coordination.sweeps.starts.triggers import Trigger, trigger_scope
from coordination.trust.secrets import catalog_secret_names, hold_names

log = logging.getLogger("coord.launch")


def catalog_limits(svc: SweepService) -> tuple[float, float]:
    """``longest_todo`` / ``longest_sweep`` of the service's catalog, for the app config."""
    from coordination.dispatch.limits import limits_from_catalog  # lazy: only to send

    return limits_from_catalog(svc.catalog())


def wire(rt: Runtime, svc: SweepService, *, with_tasks: bool = False) -> None:
    """Give ``rt`` a dispatcher over a Celery app sized from the catalog.

    ``with_tasks``: the app also runs coord's task (embedded workers of this process).
    Either way it is made only when something needs it (a worker, a revoke, a send
    that falls back to Celery): sending on a Redis broker does not (see
    coordination.dispatch)."""
    from coordination.dispatch import dispatcher_for  # lazy: the send path

    longest_todo, longest_sweep = catalog_limits(svc)
    if with_tasks:
        # Made on first use: by each forked embedded worker after the fork (so this
        # process never imports Celery for them), or by this process for workers in
        # its own threads, a revoke, or a send that falls back to Celery.
        def make_worker_app() -> Any:
            from workers.app import create_app  # lazy: celery, embedded workers only

            return create_app(rt.settings, url=rt.url, longest_todo=longest_todo,
                              longest_sweep=longest_sweep)

        rt.dispatcher = dispatcher_for(rt, app_factory=make_worker_app)
        return

    def make_app() -> Any:
        from coordination.dispatch.app import celery_app  # lazy: celery, only if needed

        return celery_app(rt.settings, url=rt.url, longest_todo=longest_todo,
                          longest_sweep=longest_sweep)

    rt.dispatcher = dispatcher_for(rt, app_factory=make_app)


@dataclass
class Launch:
    """A sweep about to start: what to run, in which mode, through which service."""

    svc: SweepService
    spec: SweepSpec
    name: str  # the plan or todo the sweep is named after
    kind: str  # "plan" | "todo"
    atomic: bool | str = False  # on the first failure: stop, then roll back ("stop": kill)
    sweep_id: str | None = None  # once started
    trigger: Trigger | None = None  # what starts it (None: a command, sweeps/starts/triggers.py)

    @property
    def embedded(self) -> bool:
        return self.svc.rt.settings.embedded

    def unattended(self) -> list[str]:
        """Repos of the sweep that no live worker serves (distributed mode only)."""
        if self.embedded:
            return []
        return unattended(self.svc.rt, [t.repo for t in self.spec.todos.values()])

    @contextmanager
    def workers(self, *, own: bool = True) -> Iterator[None]:
        """Embedded: this process's workers run while inside. Distributed: nothing.

        ``own``: this process runs the sweep (it started or resumed it): leaving it
        live (Ctrl-C, an error) ends it cancelled. A process that only lends workers
        (`sweep watch`) leaves it as it is."""
        if not self.embedded:
            yield
            return
        from workers.embedded import embedded_workers  # lazy: celery, embedded workers only

        self.hold_secret_names()
        # This process runs todos (its forks do) and holds the key and a password: none
        # of its todos reads its /proc/<pid>/environ or memory (workers/embedded.py).
        not_dumpable()
        repos = {r: n for r, n in self.spec.concurrency.items()
                 if any(t.repo == r for t in self.spec.todos.values())}
        try:
            with embedded_workers(self.svc.rt, repos, on_fail=self.workers_failed):
                try:
                    yield
                except KeyboardInterrupt:
                    if own:
                        self.say_interrupted()
                    raise
        finally:
            if own:
                self.end_interrupted()
            self.deliver_left()

    def hold_secret_names(self) -> None:
        """Embedded: the variables the catalog names as secrets (forge tokens, App keys,
        webhook secrets) never reach this process's todos: said before its workers fork
        (a catalog that cannot be read names none: the sweep's own start says why)."""
        path = self.svc.catalog_path
        if path is None:
            return
        from coordination.catalog.file.store import CatalogStore  # lazy: the models

        try:
            catalog = CatalogStore(path).load()
        except Exception:  # noqa: BLE001 - planned from it already; never fail the sweep here
            log.warning("could not read %s for its secrets' names", path)
            return
        hold_names(*catalog_secret_names(r.forge for r in catalog.repos))

    def deliver_left(self) -> None:
        """Embedded, once this process's workers are gone: no notifier is left to
        deliver the sweep's last events (`todo.failed`, `sweep.finished`), so they go
        now, within the delivery timeout; what fails stays pending (`coord notify log`
        shows it; the next coord command that opens the catalog's runtime has it
        delivered when due, from a detached process: coordination.sweeps.notices.notify_later)."""
        from coordination.sweeps.notices.notify import deliver_left  # lazy: http, with webhooks only

        try:
            left = deliver_left(self.svc.rt)
        except Exception:  # noqa: BLE001 - leaving: never mask the command's outcome
            log.exception("embedded sweep %s: delivering its webhooks failed", self.sweep_id)
            return
        if left:
            sys.stderr.write(f"note: {left} webhook deliver{'y is' if left == 1 else 'ies are'}"
                             " still pending: the next coord command delivers them when due "
                             "(`coord notify log` shows them)\n")

    def workers_failed(self, reason: str) -> None:
        """Embedded: a worker process of this one died while the sweep ran (killed, out
        of memory): the sweep ends failed, saying so, rather than wait for a worker that
        will not come (`coord sweep resume` runs what is left)."""
        self._end_live(reason, SweepStatus.failed)

    def _end_live(self, reason: str, status: SweepStatus) -> None:
        """End this launch's sweep with ``status`` if it is still live; never raise (the
        callers are leaving, or a watcher thread)."""
        sid, rt = self.sweep_id, self.svc.rt
        if sid is None:
            return
        try:
            rec = rt.checkpoints.get_sweep_fields(sid, ("runner",)) or {}
            # Not a sweep another live process runs: a resume refused because it runs
            # it leaves it alone.
            theirs = rec.get("runner")
            if rec.get("status") in SWEEP_LIVE and (
                    theirs in (None, runner.this_process()) or runner.ended(theirs)):
                end_sweep(rt, sid, reason, status=status)
        except Exception:  # noqa: BLE001 - leaving: say so, never mask the command's outcome
            log.exception("embedded sweep %s could not be ended", sid)

    def say_interrupted(self) -> None:
        """Ctrl-C in embedded mode: the workers stop as Celery's do, warm (running
        todos finish) unless Ctrl-C comes again; say which todos it waits for."""
        sid = self.sweep_id
        try:
            cps = ({} if sid is None else self.svc.rt.checkpoints.get_fields_all(
                sid, list(self.spec.todos), ("status",)))
        except Exception:  # noqa: BLE001 - only a message
            cps = {}
        running = sorted(t for t, cp in cps.items() if cp.get("status") == TodoStatus.running)
        if not running:
            return
        names = ", ".join(f"{t} ({self.spec.todos[t].repo})" for t in running[:5])
        if len(running) > 5:
            names += f" and {len(running) - 5} more"
        sys.stderr.write(
            f"interrupted: waiting for {names} to finish; Ctrl-C again stops "
            f"{'it' if len(running) == 1 else 'them'} now. What did not run stays in the "
            f"sweep for `coord sweep resume {sid}`.\n")
        sys.stderr.flush()

    def end_interrupted(self) -> None:
        """Embedded, once this process's workers are gone: a sweep still live (Ctrl-C, an
        error) has no worker left to run it, so it ends cancelled ("interrupted: ..."),
        recorded in the history, for `coord sweep resume` (which a live sweep refuses)."""
        self._end_live("interrupted: the coord process running this embedded sweep stopped",
                       SweepStatus.cancelled)

    def start(self) -> str:
        """Record the sweep and send its first todos; returns its id."""
        self.sweep_id = new_sweep_id(self.name)
        sid = self.svc.start_spec(self.spec, self.sweep_id, kind=self.kind, atomic=self.atomic,
                                  trigger=self.trigger, name=self.name)
        self.runs_it()
        return sid

    def runs_it(self) -> None:
        """Embedded: record this process as the one running the sweep (its workers), so
        that once it is gone the sweep reads orphaned and a resume adopts it."""
        if self.embedded and self.sweep_id is not None:
            runner.record(self.svc.rt, self.sweep_id)

    def queued_document(self, sweep_id: str) -> dict[str, object]:
        """``coord plan sweep --json`` without waiting: the sweep just queued."""
        return {"sweep_id": sweep_id, "plan": self.spec.plan, "strategy": self.spec.strategy,
                "status": "queued", "todos": len(self.spec.todos), "levels": self.spec.levels}


def ready_to_settle(catalog: Path | None = None) -> None:
    """Load the catalog editor that :func:`settle` runs at the sweep's end (ruamel, the
    splice) while the sweep runs, when the waiting command has nothing else to do: after
    the sweep's end, the user waits for every millisecond the command takes. With the
    ``catalog`` the sweep's outcome goes into, also do what its edit does before the
    outcome is known (:meth:`CatalogStore.ready_edit`: used only if the file is then
    what it is now)."""
    # lazy: the catalog editor (ruamel), for a command that waits to sync a sweep's end
    from coordination.catalog.file import keep, roundtrip, splice  # noqa: F401
    from coordination.sweeps.writeback import sync  # noqa: F401  # lazy: as the editor above

    if catalog is not None:
        from coordination.catalog.file.store import CatalogStore  # lazy: as the editor above

        CatalogStore(catalog).ready_edit()


def settle(svc: SweepService, status: StatusDocument) -> StatusDocument:
    """An ended sweep's status document with its outcome written into the catalog
    (``"synced"``): what `coord plan sweep --wait --json` prints."""
    status["synced"] = svc.sync(status["sweep_id"], status=status)
    return status


def attach(file: Path, sweep_id: str) -> Launch:
    """An existing sweep wired to run again (a resume): its stored spec, this
    process's dispatcher and, embedded, workers for its repos."""
    rt = get_runtime(file)
    svc = SweepService(rt, file)
    rec = svc.record(sweep_id)
    spec = load_spec(rt, sweep_id, rec)
    assert spec is not None
    wire(rt, svc, with_tasks=rt.settings.embedded)
    return Launch(svc, spec, spec.plan or sweep_id, str(rec.get("kind") or "plan"),
                  bool(rec.get("atomic")), sweep_id=sweep_id)


def adopt(file: Path, sweep_id: str) -> tuple[Launch, str] | None:
    """An embedded sweep still live whose process is gone (:func:`runner.orphaned`),
    taken over by this process: wired to run, with why it was orphaned. None when it
    is not orphaned (or not embedded); refused when another process adopted it first."""
    rt = get_runtime(file)
    rec = SweepService(rt, file).record(sweep_id)
    why = runner.orphaned(rec, rt.settings.embedded)
    if why is None:
        return None
    if not runner.adopt(rt, rec):
        raise UsageError(f"sweep {sweep_id} was adopted by another process meanwhile",
                         hint=f"follow it with `coord sweep watch {sweep_id}`")
    return attach(file, sweep_id), why


def prepare(file: Path, *, plan_id: str | None = None, todo_id: str | None = None,
            strategy: str = "levels", ignore_blockers: bool = False,
            atomic: bool | str = False, again: bool = False, no_cache: bool = False,
            sequential: bool = False, merge_chains: bool = False,
            trigger: Trigger | None = None) -> Launch:
    """A sweep of ``plan_id`` (or of the one todo ``todo_id``), wired to run; ``again``:
    every todo of the plan, completed ones too; ``no_cache``: reuse no earlier run;
    ``sequential``: one todo at a time, in DAG order; ``merge_chains``: a chain's todos
    run by one worker in one task; ``trigger``: what starts it (a schedule, a push); a
    push's ``repos`` scope the sweep to those repos' todos
    (:func:`coordination.sweeps.starts.triggers.trigger_scope`)."""
    # Planned from the catalog alone, before the runtime opens: a sweep refused (a plan or
    # todo not found, a template unexpanded, self-declared approvers) starts no embedded
    # server and leaves nothing beside the catalog.
    settings = every_setting()
    keys = Keys(settings.namespace)
    planned: SweepSpec | None
    if todo_id is not None:
        # None: a blocker may have succeeded in a sweep not synced yet (read on Redis)
        planned = todo_spec(keys, settings, file, todo_id, ignore_blockers=ignore_blockers)
        name, kind = todo_id, "todo"
    else:
        assert plan_id is not None
        planned = plan_spec(keys, settings, file, plan_id, strategy=strategy,
                            ignore_blockers=ignore_blockers, again=again,
                            sequential=sequential, merge_chains=merge_chains,
                            repos=trigger_scope(trigger))
        name, kind = plan_id, "plan"
    rt = get_runtime(file)
    svc = SweepService(rt, file)
    # Before anything is forked (start_spec asks again: the one door).
    refuse_if_frozen(rt, f"start a sweep of {todo_id or plan_id}", file)
    spec = planned if planned is not None else svc.todo_spec(str(todo_id))
    spec.no_cache = no_cache
    if trigger is not None and trigger.get("kind") == "push":
        # the pushed repo's todos run on the pushed commit, and its forge is told
        # (sweeps/starts/pushes.py): frozen and signed with the spec
        spec.push = push_spec(svc.catalog(), trigger, spec.plan,
                              os.environ.get("COORD_UI_URL"))
    wire(rt, svc, with_tasks=rt.settings.embedded)
    return Launch(svc, spec, name, kind, atomic, trigger=trigger)
