"""Sweeps: the library API behind `coord plan sweep` and `coord sweep ...`.

A sweep runs one plan's DAG on the workers. Its record and per-todo
checkpoints live in Redis (:mod:`coordination.runtime.checkpoints`); its
events in the event ledger. This module starts, inspects, resumes, cancels
and syncs sweeps; running them is the workers' job (:mod:`workers.runner`)
and keeping them moving the supervisor's (:mod:`coordination.sweeps.supervisor`).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from coordination.errors import NotFoundError, PlanError, UsageError
from coordination.runtime.client import riding_out
from coordination.runtime.context import Runtime
from coordination.status import (
    NOT_STARTED,
    SWEEP_ACTIVE,
    SWEEP_END_EVENTS,
    SWEEP_LIVE,
    TERMINAL,
    SweepStatus,
    TodoStatus,
)
from coordination.sweeps.spec import SWEEP_MARGIN, TITLE_CHARS, SweepSpec, TodoSpec, sweep_deadline
from coordination.sweeps.supervisor import (
    count_terminal,
    fail_sweep,
    load_spec,
    maybe_finish,
    send_level,
    send_todos,
    summarize,
    supervise_once,
    todo_task_id,
    dispatcher,
)

STRATEGIES = ("levels", "eager")
#: Embedded: sweeps kept beside the catalog that `coord events` (all sweeps) loads.
RECENT = 50


def new_sweep_id(plan_id: str) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S")
    return f"{plan_id}-{stamp}-{secrets.token_hex(2)}"


def iso(ts: Any) -> str | None:
    if ts in (None, ""):
        return None
    return dt.datetime.fromtimestamp(float(ts), dt.timezone.utc).isoformat(timespec="milliseconds")


def ended_by(rt: Runtime, sweep_id: str, event: Any) -> bool:
    """Does ``event``, read while following ``sweep_id``, mean the sweep is over?

    A replay also holds the end of an earlier run of a resumed sweep: only the
    end of the run the record is at (or a record that is gone) ends it.
    """
    if event.kind not in SWEEP_END_EVENTS:
        return False
    import redis

    try:
        rec = rt.checkpoints.get_sweep_fields(sweep_id, ("status", "run"))
    except (redis.ConnectionError, redis.TimeoutError):
        return False  # cannot tell now; the follower looks again
    if rec is None:
        return True
    if rec.get("status") in SWEEP_LIVE:
        return False
    run = event.data.get("run")  # events before 0.2 carry no run
    return run is None or int(run) == int(rec.get("run") or 0)


def todo_entry(cp: dict[str, Any], repo: str | None) -> dict[str, Any]:
    """One todo of ``coord sweep status --json`` from its checkpoint."""
    return {
        "status": cp.get("status", TodoStatus.pending),
        "attempts": int(cp.get("attempts") or 0),
        "exit_code": cp.get("exit_code"),
        "worker": cp.get("worker"),
        "started_at": iso(cp.get("started_at")),
        "finished_at": iso(cp.get("finished_at")),
        "output_tail": cp.get("output_tail") or "",
        "repo": repo,
        "reason": cp.get("reason"),
        "duration": cp.get("duration"),
        "stdout_bytes": cp.get("stdout_bytes"),
        "stderr_bytes": cp.get("stderr_bytes"),
        "lost_runs": int(cp.get("lost_runs") or 0),
    }


def sweep_row(rec: dict[str, Any]) -> dict[str, Any]:
    """One row of ``coord sweep list --json`` from a sweep record."""
    return {
        "sweep_id": rec.get("id") or rec.get("sweep_id"),
        "plan": rec.get("plan"),
        "strategy": rec.get("strategy"),
        "status": rec.get("status"),
        "created_at": iso(rec.get("created_at")),
        "finished_at": iso(rec.get("finished_at")),
        "reason": rec.get("reason"),
    }


def _vanished(sweep_id: str) -> Exception:
    from coordination.errors import RuntimeFault

    return RuntimeFault(
        f"sweep {sweep_id} vanished from Redis while it ran (its record is gone: "
        "Redis restarted without persistence, or was flushed or evicted)",
        hint="run Redis with --appendonly yes and --maxmemory-policy noeviction; "
        "start the sweep again",
    )


class SweepService:
    """Start, inspect, resume, cancel and sync sweeps."""

    def __init__(self, rt: Runtime, catalog_path: str | Path | None = None) -> None:
        self.rt = rt
        self.catalog_path = Path(catalog_path) if catalog_path else None

    # -- planning ---------------------------------------------------------------
    def catalog(self) -> Any:
        """The catalog this service sweeps (loaded through the store's cache)."""
        return self._catalog()

    def _catalog(self) -> Any:
        from coordination.catalog.store import CatalogStore

        if self.catalog_path is None:
            raise UsageError("no catalog file given", hint="pass --file or set COORD_ECOSYSTEM")
        return CatalogStore(self.catalog_path).load()

    def _todo_specs(self, catalog: Any, graph: Any, ids: list[str]) -> dict[str, TodoSpec]:
        from coordination.planner.ranking import DEFAULT_RANK, ranks

        base = self.catalog_path.resolve().parent if self.catalog_path else Path.cwd()
        rank = ranks(graph, catalog.todo)
        out: dict[str, TodoSpec] = {}
        paths: dict[str, str] = {}  # resolving a checkout is file system work: once per repo
        for tid in ids:
            todo = catalog.todo(tid)
            if not todo.run:
                raise PlanError(f"{tid} has no run command", hint=f"add 'run:' to {tid} in the catalog")
            path = paths.get(todo.repo)
            if path is None:
                path = paths[todo.repo] = str(catalog.repo(todo.repo).checkout(base))
            out[tid] = TodoSpec(
                id=tid,
                repo=todo.repo,
                queue=self.rt.keys.repo_queue(todo.repo),
                run=todo.run,
                timeout=float(todo.timeout),
                retries=int(todo.retries),
                env=dict(todo.env),
                path=path,
                preds=sorted(graph.predecessors(tid)),
                succs=sorted(graph.successors(tid)),
                estimated_hours=todo.estimated_hours,
                undo=todo.undo,
                priority=str(getattr(todo.priority, "value", todo.priority)),
                resources=sorted(set(todo.resources)),
                rank=rank[tid][0] if tid in rank else DEFAULT_RANK,
                title=todo.task[:TITLE_CHARS],
            )
        return out

    @staticmethod
    def _fleet(catalog: Any) -> dict[str, Any]:
        """The repos' breakers and the resources' capacities, frozen with a spec."""
        return {
            "breakers": {r.name: [r.breaker.failures, r.breaker.cooldown]
                         for r in catalog.repos if r.breaker is not None},
            "capacity": {x.name: x.capacity for x in catalog.resources},
        }

    def plan_spec(self, plan_id: str, *, strategy: str, ignore_blockers: bool) -> SweepSpec:
        """Validate and level a plan into a spec (no Redis involved)."""
        from coordination.planner.sweepable import prepare_sweep

        if strategy not in STRATEGIES:
            raise UsageError(f"unknown strategy {strategy!r}", hint="use levels or eager")
        catalog = self._catalog()
        # The same checks as the dry run: cycles, unknown refs, missing run, blockers.
        pg, analysis = prepare_sweep(catalog, plan_id, ignore_blockers=ignore_blockers)
        todos = self._todo_specs(catalog, pg.graph, list(pg.graph.nodes))
        for i, level in enumerate(analysis.levels):
            for tid in level:
                todos[tid].level = i
        return SweepSpec(
            sweep_id="",
            plan=plan_id,
            strategy=strategy,
            run=0,
            todos=todos,
            levels=[list(level) for level in analysis.levels],
            concurrency={r.name: r.concurrency for r in catalog.repos},
            catalog=str(self.catalog_path.resolve()) if self.catalog_path else None,
            **self._fleet(catalog),
        )

    # -- starting ---------------------------------------------------------------
    def start(self, plan_id: str, *, strategy: str = "levels", ignore_blockers: bool = False,
              atomic: bool = False) -> str:
        spec = self.plan_spec(plan_id, strategy=strategy, ignore_blockers=ignore_blockers)
        return self.start_spec(spec, new_sweep_id(plan_id), atomic=atomic)

    def todo_spec(self, todo_id: str, *, ignore_blockers: bool = False) -> SweepSpec:
        """One todo as a one-todo sweep (``coord todo run``); its blockers must be
        satisfied (todos completed, issues resolved or closed) unless ignored."""
        import networkx as nx

        from coordination.planner.dag import todo_blockers

        catalog = self._catalog()
        todo = catalog.todo(todo_id)
        if todo is None:
            from coordination.catalog.edits import unknown

            raise unknown(todo_id, [t.id for t in catalog.coordination.todos], "todo")
        if catalog.repo(todo.repo) is None:
            raise PlanError(f"{todo_id} runs in repo {todo.repo!r}, which is not in the catalog")
        blockers = todo_blockers(catalog, todo_id)
        if blockers and not ignore_blockers:
            raise PlanError(
                f"{todo_id} is blocked: " + "; ".join(str(b) for b in blockers),
                hint="complete or resolve them first, or pass --ignore-blockers")
        g = nx.DiGraph()
        g.add_node(todo_id)
        todos = self._todo_specs(catalog, g, [todo_id])
        return SweepSpec(
            sweep_id="", plan=todo.plan or "", strategy="levels", run=0, todos=todos,
            levels=[[todo_id]], concurrency={r.name: r.concurrency for r in catalog.repos},
            catalog=str(self.catalog_path.resolve()) if self.catalog_path else None,
            **self._fleet(catalog),
        )

    def start_todo(self, todo_id: str, *, ignore_blockers: bool = False) -> str:
        """Run one todo through the same runtime as a sweep; returns the sweep id."""
        spec = self.todo_spec(todo_id, ignore_blockers=ignore_blockers)
        return self.start_spec(spec, new_sweep_id(todo_id), kind="todo")

    def start_spec(self, spec: SweepSpec, sweep_id: str, *, kind: str = "plan",
                   atomic: bool = False) -> str:
        """Record a sweep of ``spec`` and dispatch its first todos. ``atomic``: at its
        first failure the sweep stops dispatching and rolls back on its own."""
        spec.sweep_id = sweep_id
        now = time.time()
        record = {
            "plan": spec.plan,
            "strategy": spec.strategy,
            "kind": kind,
            "status": SweepStatus.queued,
            "created_at": now,
            "deadline": now + sweep_deadline(spec, self.rt.settings.sweep_deadline),
            "run": 0,
            "todos": len(spec.todos),  # what a listing shows progress against, without the spec
            "spec": spec.to_json(),
            **self._signature(spec),
            "catalog": spec.catalog,
            "atomic": atomic,
        }
        self.rt.checkpoints.create_sweep(spec.sweep_id, record)
        self.rt.events.emit("sweep.queued", sweep_id=spec.sweep_id, plan=spec.plan,
                            strategy=spec.strategy, todos=len(spec.todos), levels=len(spec.levels))
        self._dispatch(spec)
        return spec.sweep_id

    def _signature(self, spec: SweepSpec) -> dict[str, Any]:
        """Record fields signing the spec (COORD_SIGNING_KEY), or clearing an old signature."""
        keys = self.rt.settings.signing_keys
        if not keys:
            return {"spec_sig": None, "spec_key_id": None}
        from coordination.runtime.signing import sign

        return dict(sign(spec.to_json(), keys[0]))

    def _dispatch(self, spec: SweepSpec) -> None:
        sid = spec.sweep_id
        self.rt.redis.sadd(self.rt.keys.active_sweeps, sid)
        if not spec.todos:
            maybe_finish(self.rt, sid, spec)
            return
        # The counters the transition scripts move (levels of this run).
        if spec.levels:
            counters: dict[Any, Any] = dict(spec.counters())  # redis-py types keys narrowly
            self.rt.redis.hset(self.rt.keys.sweep(sid), mapping=counters)
        if spec.strategy == "eager":
            remaining: dict[Any, Any] = {
                t: len([p for p in s.preds if p in spec.todos and self._pending(sid, p)])
                for t, s in spec.todos.items()}
            self.rt.checkpoints.set_remaining(sid, remaining)
            send_todos(self.rt, spec, sorted(str(t) for t, n in remaining.items() if n == 0),
                       reason="start")
            return
        send_level(self.rt, spec, 0, reason="start")

    def _pending(self, sweep_id: str, todo_id: str) -> bool:
        cp = self.rt.checkpoints.get(sweep_id, todo_id) or {}
        return cp.get("status") != TodoStatus.succeeded

    # -- reading ----------------------------------------------------------------
    def restore(self, sweep_ids: list[str] | None = None, *, newest: int | None = None) -> list[str]:
        """Embedded: load sweeps an earlier process kept beside the catalog (``sweep_ids``,
        or the ``newest``) into this process's server; see :mod:`coordination.runtime.archive`."""
        if not self.rt.settings.embedded or self.catalog_path is None:
            return []
        from coordination.runtime.archive import restore
        from coordination.runtime.history import history_path

        return restore(self.rt.redis, self.rt.keys, history_path(self.catalog_path),
                       sweep_ids=sweep_ids, newest=newest)

    def record(self, sweep_id: str) -> dict[str, Any]:
        rec = self.rt.checkpoints.get_sweep(sweep_id)
        if rec is None and self.restore([sweep_id]):
            rec = self.rt.checkpoints.get_sweep(sweep_id)
        if rec is None:
            hint = "see `coord sweep list`"
            if self.rt.settings.embedded:
                hint = ("embedded sweeps are kept beside the catalog they ran from, for "
                        "COORD_RETENTION_DAYS; see `coord sweep list` (and --file)")
            raise NotFoundError(f"unknown sweep {sweep_id!r}", hint=hint)
        return rec

    def status(self, sweep_id: str) -> dict[str, Any]:
        rec = self.record(sweep_id)
        spec = load_spec(self.rt, sweep_id, rec)
        ids = list(spec.todos) if spec else []
        cps = self.rt.checkpoints.get_all(sweep_id, ids)
        todos = {tid: todo_entry(cps.get(tid) or {}, spec.todos[tid].repo if spec else None)
                 for tid in ids}
        return {
            "sweep_id": sweep_id,
            "plan": rec.get("plan"),
            "strategy": rec.get("strategy"),
            "status": rec.get("status"),
            "reason": rec.get("reason"),
            "run": int(rec.get("run") or 0),
            "created_at": iso(rec.get("created_at")),
            "started_at": iso(rec.get("started_at")),
            "finished_at": iso(rec.get("finished_at")),
            "deadline": iso(rec.get("deadline")),
            "levels": spec.levels if spec else [],
            "counts": summarize(cps),
            "todos": todos,
        }

    def events(self, sweep_id: str | None = None, *,
               limit: int | None = None) -> list[dict[str, Any]]:
        """``coord events [--sweep ID] --json``: the ledger's events (of one sweep),
        oldest first, the last ``limit`` of them."""
        if sweep_id is not None:
            self.record(sweep_id)  # an unknown sweep is an error, not an empty list
        else:
            self.restore(newest=RECENT)
        evs = self.rt.events.read(sweep_id=sweep_id)
        if limit is not None:
            evs = evs[-limit:]
        return [e.to_dict() for e in evs]

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        """The ``coord sweep list --json`` document: recent sweeps, newest first."""
        self.restore(newest=limit)
        return [sweep_row(rec) for rec in self.rt.checkpoints.list_sweeps(limit=limit)]

    # -- waiting ----------------------------------------------------------------
    def wait(
        self,
        sweep_id: str,
        *,
        on_event: Callable[[Any], None] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Follow the sweep's events until it ends; supervise it meanwhile.

        Never waits forever: the sweep's own deadline (enforced by the
        supervisor pass run here too) ends it, and ``timeout`` bounds the wait.
        Redis away (a restart, a cut) is waited out, from the first read to the last.
        """
        first_limit = time.monotonic() + (self.rt.settings.sweep_deadline if timeout is None
                                          else timeout)
        outage: list[bool] = []
        try:
            rec = riding_out(lambda: self.record(sweep_id), first_limit,
                             lambda: outage.append(True))
        except NotFoundError:
            if outage:  # it was there, then Redis went away and came back without it
                raise _vanished(sweep_id) from None
            raise
        limit = float(rec.get("deadline") or time.time() + 3600) + 60
        if timeout is not None:
            limit = min(limit, time.time() + timeout)
        state = {"done": False, "next": 0.0}

        def stop() -> bool:
            now = time.time()
            if now >= state["next"]:
                state["next"] = now + self.rt.settings.supervise_interval
                import logging

                import redis

                try:
                    supervise_once(self.rt, sweep_id, throttle=True)
                except redis.ConnectionError as exc:  # Redis away: keep waiting
                    logging.getLogger("coord.sweeps").warning("Redis unreachable: %s", exc)
                except Exception:  # the wait must outlive a failed pass
                    logging.getLogger("coord.sweeps").exception("supervise pass failed")
                try:
                    current = self.rt.checkpoints.sweep_status(sweep_id)
                except (redis.ConnectionError, redis.TimeoutError):
                    return now > limit  # a restart is not the end: look again soon
                state["done"] = current is None or current not in SWEEP_LIVE
            return bool(state["done"]) or now > limit

        for ev in self.rt.events.follow(sweep_id=sweep_id, block_ms=250, stop=stop):
            if on_event is not None:
                on_event(ev)
            if ended_by(self.rt, sweep_id, ev):
                break
        try:
            last = riding_out(lambda: self.status(sweep_id),
                              time.monotonic() + max(0.0, limit - time.time()))
        except NotFoundError:
            raise _vanished(sweep_id) from None
        if last["status"] in SWEEP_LIVE:
            # Only reached at the wait's limit: say so rather than return a live status.
            from coordination.errors import RuntimeFault

            raise RuntimeFault(
                f"sweep {sweep_id} still {last.get('status')} when the wait ended "
                f"({'timeout' if timeout is not None else 'past its deadline'})",
                hint=f"it keeps running; follow it with `coord sweep watch {sweep_id}`",
            )
        return last

    # -- resume / cancel / sync -------------------------------------------------
    def resume_plan(self, sweep_id: str, only: Sequence[str] | None = None) -> dict[str, Any]:
        """What a resume would re-run: every todo that did not succeed, or with
        ``only`` those todos and their dependents that did not succeed."""
        rec = self.record(sweep_id)
        old = load_spec(self.rt, sweep_id, rec)
        assert old is not None
        cps = self.rt.checkpoints.get_all(sweep_id, list(old.todos))
        status = {t: (cps.get(t) or {}).get("status", TodoStatus.pending) for t in old.todos}
        if only:
            unknown = [t for t in only if t not in old.todos]
            if unknown:
                raise NotFoundError(
                    f"not in sweep {sweep_id}: {', '.join(unknown)}",
                    hint=f"its todos: {', '.join(sorted(old.todos)[:20])}",
                )
            chosen = set(only)
            for t in only:
                chosen.update(old.descendants(t))
        else:
            chosen = set(old.todos)
        rerun = [t for t in old.todos if t in chosen and status[t] != TodoStatus.succeeded]
        asked: set[str] = set(only or [])
        dependents = sorted(t for t in rerun if t not in asked) if only else []
        return {"sweep_id": sweep_id, "status": rec.get("status"), "rerun": sorted(rerun),
                "dependents": dependents, "was": {t: status[t] for t in sorted(rerun)},
                "keep": sorted(t for t in old.todos if t not in rerun)}

    def resume(
        self, sweep_id: str, *, only: Sequence[str] | None = None, dry_run: bool = False
    ) -> dict[str, Any]:
        import networkx as nx

        rec = self.record(sweep_id)
        if rec.get("status") in SWEEP_LIVE and not dry_run:
            raise UsageError(
                f"sweep {sweep_id} is still {rec.get('status')}",
                hint=f"wait for it, or `coord sweep cancel {sweep_id}` first",
            )
        preview = self.resume_plan(sweep_id, only)
        if dry_run:
            return {**preview, "dry_run": True}
        old = load_spec(self.rt, sweep_id, rec)
        assert old is not None
        rerun = list(preview["rerun"])
        if not rerun:
            return {"sweep_id": sweep_id, "rerun": [], "status": rec.get("status")}
        catalog = self._catalog()
        missing = [t for t in rerun if catalog.todo(t) is None]
        if missing:
            raise NotFoundError(
                f"todos of sweep {sweep_id} are no longer in the catalog: {', '.join(missing)}",
                hint="restore them, or start a new sweep of the plan",
            )
        g = nx.DiGraph()
        g.add_nodes_from(old.todos)
        for t, s in old.todos.items():
            g.add_edges_from((p, t) for p in s.preds)
        fresh = self._todo_specs(catalog, g, rerun)
        todos = dict(old.todos)
        for t in rerun:
            fresh[t].preds, fresh[t].succs = old.todos[t].preds, old.todos[t].succs
            todos[t] = fresh[t]
        sub = g.subgraph(rerun)
        levels = [sorted(level) for level in nx.topological_generations(sub)]
        for i, level in enumerate(levels):
            for t in level:
                todos[t].level = i
        fleet = self._fleet(catalog)
        spec = SweepSpec(sweep_id=sweep_id, plan=old.plan, strategy=old.strategy, run=old.run + 1,
                         todos=todos, levels=levels, concurrency=old.concurrency, catalog=old.catalog,
                         breakers={**old.breakers, **fleet["breakers"]},
                         capacity={**old.capacity, **fleet["capacity"]})
        now = time.time()
        self.rt.checkpoints.persist_sweep(sweep_id)
        self.rt.checkpoints.reset_todos(sweep_id, rerun, status=TodoStatus.pending, reason=None,
                                        finished_at=None, exit_code=None, queued_at=None)
        self.rt.checkpoints.clear_remaining(sweep_id, todos)
        self.rt.checkpoints.update_sweep(
            sweep_id, status=SweepStatus.queued, reason=None, finished_at=None, started_at=None,
            run=spec.run, spec=spec.to_json(), **self._signature(spec), todos=len(todos),
            terminal=len(todos) - len(rerun),
            deadline=now + sweep_deadline(spec, self.rt.settings.sweep_deadline),
        )
        self.rt.events.emit("sweep.queued", sweep_id=sweep_id, plan=spec.plan, resumed=True,
                            run=spec.run, todos=len(rerun))
        self._dispatch(spec)
        return {"sweep_id": sweep_id, "rerun": sorted(rerun), "status": SweepStatus.queued, "run": spec.run}

    def pause(self, sweep_id: str) -> dict[str, Any]:
        """Dispatch nothing new (level barriers, eager successors, re-sends); running
        todos finish and are recorded. The deadline clock stops while paused."""
        rec = self.record(sweep_id)
        status = rec.get("status")
        if status == SweepStatus.paused:
            return {"sweep_id": sweep_id, "status": SweepStatus.paused, "changed": False}
        if not self.rt.checkpoints.set_sweep_status(
            sweep_id, SweepStatus.paused, allowed_from=set(SWEEP_ACTIVE), paused_at=time.time(),
            paused_from=status,
        ):
            raise UsageError(
                f"sweep {sweep_id} is {self.record(sweep_id).get('status')}: only a queued or "
                "running sweep can be paused", hint="see `coord sweep status`")
        self.rt.events.emit("sweep.paused", sweep_id=sweep_id, was=status)
        return {"sweep_id": sweep_id, "status": SweepStatus.paused, "changed": True}

    def unpause(self, sweep_id: str) -> dict[str, Any]:
        """Carry on: the deadline moves by the time spent paused, todos whose message
        was dropped while paused are sent again, and the supervisor dispatches what
        became ready."""
        rec = self.record(sweep_id)
        if rec.get("status") != SweepStatus.paused:
            if rec.get("status") in SWEEP_ACTIVE:
                return {"sweep_id": sweep_id, "status": rec.get("status"), "changed": False}
            raise UsageError(f"sweep {sweep_id} is {rec.get('status')}, not paused",
                             hint="only a paused sweep can be unpaused")
        now = time.time()
        paused_for = max(0.0, now - float(rec.get("paused_at") or now))
        was_running = rec.get("paused_from") == SweepStatus.running or rec.get("started_at")
        back = SweepStatus.running if was_running else SweepStatus.queued
        fields: dict[str, Any] = {"paused_at": None, "paused_from": None,
                                  "paused_total": float(rec.get("paused_total") or 0) + paused_for}
        if rec.get("deadline"):
            fields["deadline"] = float(rec["deadline"]) + paused_for
        if not self.rt.checkpoints.set_sweep_status(
                sweep_id, back, allowed_from={SweepStatus.paused}, **fields):
            return {"sweep_id": sweep_id, "status": self.record(sweep_id).get("status"),
                    "changed": False}
        self.rt.redis.sadd(self.rt.keys.active_sweeps, sweep_id)
        self.rt.events.emit("sweep.unpaused", sweep_id=sweep_id, paused_for=round(paused_for, 3))
        spec = load_spec(self.rt, sweep_id)
        resent: list[str] = []
        if spec is not None:
            cps = self.rt.checkpoints.get_all(sweep_id, list(spec.todos))
            for t, cp in cps.items():
                if (cp or {}).get("status") == TodoStatus.queued:
                    # Its message may have been dropped by a worker while paused:
                    # send it again (a duplicate finds the todo claimed and does nothing).
                    from coordination.sweeps.supervisor import redispatch

                    redispatch(self.rt, spec, t)
                    resent.append(t)
        supervise_once(self.rt, sweep_id, grace=0.0)
        return {"sweep_id": sweep_id, "status": back, "changed": True,
                "paused_for": round(paused_for, 3), "resent": sorted(resent)}

    def rollback(self, sweep_id: str, *, dry_run: bool = False) -> dict[str, Any]:
        """Run the undo: command of every todo of the sweep that succeeded, in reverse
        dependency order (see :mod:`coordination.sweeps.sagas`); ``dry_run`` only says
        what would run. Returns ``{"sweep_id", "compensate", "levels",
        "not_compensable", "status"}`` (``"dry_run": true`` for a dry run)."""
        from coordination.sweeps.sagas import rollback_plan
        from coordination.sweeps.supervisor import ROLLBACK_FROM, start_rollback

        rec = self.record(sweep_id)
        status = rec.get("status")
        spec = load_spec(self.rt, sweep_id, rec)
        if spec is None:
            raise NotFoundError(f"sweep {sweep_id} has no spec", hint="see `coord sweep list`")
        if spec.mode == "rollback":
            raise UsageError(f"sweep {sweep_id} is {status}: it was rolled back already",
                             hint="start a new sweep of the plan, or resume this one's todos "
                             "by hand")
        if status not in ROLLBACK_FROM and not dry_run:
            raise UsageError(
                f"sweep {sweep_id} is {status}: only a succeeded, failed or cancelled sweep "
                "can be rolled back",
                hint=f"wait for it, or `coord sweep cancel {sweep_id}` first")
        undo = self._undo_commands(spec)
        cps = self.rt.checkpoints.get_all(sweep_id, list(spec.todos))
        plan = rollback_plan(spec, {t: str(cp.get("status")) for t, cp in cps.items()}, undo)
        out: dict[str, Any] = {"sweep_id": sweep_id, **plan.to_dict()}
        if dry_run:
            return {**out, "status": status, "dry_run": True}
        started = start_rollback(self.rt, sweep_id, reason="rollback asked by user", undo=undo)
        if started is None:
            raise UsageError(f"sweep {sweep_id} is {self.record(sweep_id).get('status')}: "
                             "its rollback was started by someone else",
                             hint=f"follow it with `coord sweep watch {sweep_id}`")
        return {**out, "status": self.record(sweep_id).get("status")}

    def _undo_commands(self, spec: SweepSpec) -> dict[str, str | None]:
        """Undo commands frozen in the spec; for a spec recorded before they were (0.1),
        the catalog's, if it can be read."""
        if any(t.undo for t in spec.todos.values()):
            return {}
        try:
            catalog = self._catalog()
        except Exception:  # no catalog here: the spec's (none) stand
            return {}
        out: dict[str, str | None] = {}
        for t in spec.todos:
            todo = catalog.todo(t)
            if todo is not None and todo.undo:
                out[t] = todo.undo
        return out

    def cancel(self, sweep_id: str, *, wait: float = 30.0) -> dict[str, Any]:
        rec = self.record(sweep_id)
        if rec.get("status") not in SWEEP_LIVE:
            return {"sweep_id": sweep_id, "status": rec.get("status"), SweepStatus.cancelled: False}
        spec = load_spec(self.rt, sweep_id, rec)
        ids = list(spec.todos) if spec else []
        cps = self.rt.checkpoints.get_all(sweep_id, ids)
        queued = [
            todo_task_id(spec, t)
            for t, cp in cps.items() if (cp or {}).get("status") in NOT_STARTED
        ] if spec else []
        fail_sweep(self.rt, sweep_id, "cancelled by user", status=SweepStatus.cancelled)
        if queued:
            try:
                dispatcher(self.rt).revoke(queued)
            except Exception:  # tasks also check the sweep status when they start
                pass
        # Running todos see the cancel within a second and kill their process
        # group; wait for them to record it, with a deadline.
        end = time.time() + wait
        while time.time() < end:
            cps = self.rt.checkpoints.get_all(sweep_id, ids)
            running = [t for t, cp in cps.items() if (cp or {}).get("status") == TodoStatus.running]
            for t in running:
                cp = cps[t]
                if cp.get("lease_key") and self.rt.redis.get(cp["lease_key"]) != cp.get("token"):
                    if self.rt.checkpoints.set_status_if(
                        sweep_id, t, TodoStatus.cancelled, {TodoStatus.running},
                        expect_token=cp.get("token"), reason="cancelled; its worker was gone", finished_at=time.time()):
                        count_terminal(self.rt, sweep_id)
            if not running:
                break
            time.sleep(0.2)
        return {"sweep_id": sweep_id, "status": SweepStatus.cancelled, SweepStatus.cancelled: True,
                "still_running": [t for t, cp in self.rt.checkpoints.get_all(sweep_id, ids).items()
                                  if (cp or {}).get("status") == TodoStatus.running]}

    def sync(self, sweep_id: str, *, status: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write a finished sweep's outcome back into the catalog, in one edit.

        Succeeded todos become ``completed`` (with ``actual_hours``), failed ones
        ``failed``, skipped and cancelled ones ``skipped`` (a ``completed`` todo
        stays completed). Then, in the same edit, the sweep's plan becomes
        ``completed`` when every todo of it is (:func:`coordination.catalog.reports.is_complete`;
        a draft or active plan only, never a cancelled one). Returns
        ``{"sweep_id", "catalog", "completed", "failed", "skipped": [ids],
        "plan", "plan_completed": bool, "plan_status"}``. ``status``: the sweep's
        :meth:`status` document if the caller has just read it (an ended sweep's does
        not change), so that its checkpoints are not all read a second time.
        """
        from coordination.catalog.store import CatalogStore

        if status is None or status.get("sweep_id") != sweep_id:
            status = self.status(sweep_id)
        st = status
        if st["status"] in SWEEP_LIVE:
            raise UsageError(f"sweep {sweep_id} is still {st['status']}", hint="sync it when it ends")
        if self.catalog_path is None:
            raise UsageError("no catalog file given", hint="pass --file")
        written = ("succeeded", "failed", "skipped", "cancelled")
        done = {t: v for t, v in st["todos"].items() if v["status"] in written}
        plan_id = st.get("plan") or None  # a `todo run` of a todo in no plan has none

        def edit(doc: Any) -> dict[str, Any]:
            from coordination.catalog.edits import (
                PLAN_KEYS, TODO_KEYS, plan_todo_items, put, section)
            from coordination.catalog.reports import is_complete

            changed: dict[str, Any] = {"completed": [], "failed": [], "skipped": []}
            for item in section(doc, "todos"):
                v = done.get(item.get("id")) if isinstance(item, dict) else None
                if v is None:
                    continue
                if v["status"] == "succeeded":
                    if item.get("status") != "completed":
                        put(item, "status", "completed", TODO_KEYS)
                        hours = round(float(v.get("duration") or 0) / 3600, 4)
                        put(item, "actual_hours", hours, TODO_KEYS)
                        changed["completed"].append(item["id"])
                elif v["status"] == "failed":
                    if item.get("status") != "failed":
                        put(item, "status", "failed", TODO_KEYS)
                        changed["failed"].append(item["id"])
                elif item.get("status") not in ("skipped", "completed"):
                    # Never ran (a dependency failed) or stopped by a cancel; a todo
                    # completed meanwhile (by hand) keeps its status.
                    put(item, "status", "skipped", TODO_KEYS)
                    changed["skipped"].append(item["id"])
            plan = next((p for p in section(doc, "plans")
                         if isinstance(p, dict) and p.get("id") == plan_id), None)
            status = None if plan is None else str(plan.get("status") or "draft")
            completes = status in ("draft", "active") and is_complete(
                i.get("status") or "pending" for i in plan_todo_items(doc, str(plan_id)))
            if completes:
                put(plan, "status", "completed", PLAN_KEYS)
                status = "completed"
            return {**changed, "plan": plan_id, "plan_completed": completes,
                    "plan_status": status}

        changed = CatalogStore(self.catalog_path).update(edit)
        self.rt.checkpoints.update_sweep(sweep_id, synced_at=time.time())
        return {"sweep_id": sweep_id, "catalog": str(self.catalog_path), **changed}


def unattended(rt: Runtime, repos: Sequence[str]) -> list[str]:
    """The repos among ``repos`` that no live worker serves (from liveness beats)."""
    counts = rt.workers.per_repo() if rt.workers is not None else {}
    return sorted(r for r in set(repos) if not counts.get(r))


__all__ = ["SweepService", "STRATEGIES", "SWEEP_MARGIN", "TERMINAL", "new_sweep_id",
           "sweep_deadline"]
