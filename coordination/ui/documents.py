"""The JSON documents of the web view.

Where the CLI has a ``--json`` document for the same thing, the web view serves
exactly that one, built by the same function: ``coord sweep list``
(:meth:`SweepService.list`), ``coord sweep status`` (:meth:`SweepService.status`),
``coord plan status`` (:func:`coordination.catalog.reads.reports.plan_status`) and
``coord repo list`` (:func:`coordination.catalog.reads.reports.repo_list`). The other
documents (overview, graphs, one todo's detail) add layout and progress to them.

Everything here reads; nothing writes a record or runs a command.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import NotRequired, TypedDict

from coordination.catalog.runs.criteria import read_results
from coordination.catalog.manager import CoordinationManager
from coordination.catalog.reads.reports import PlanStatus
from coordination.catalog.reads.reports import plan_status as plan_status_document
from coordination.catalog.reads.reports import repo_list as repo_list_document
from coordination.catalog.selection.selectors import select
from coordination.errors import CoordError, NotFoundError, UsageError
from coordination.planner.algorithms import critical_path, topological_levels
from coordination.planner.dag import build_plan_graph
from coordination.planner.digraph import DiGraph, Unfeasible
from coordination.planner.listing import PlanRow, list_plans
from coordination.runtime.context import Runtime
from coordination.runtime.freeze import iso as freeze_iso
from coordination.runtime.sweep_fields import SweepRecord
from coordination.status import TERMINAL, SweepStatus, TodoStatus
from coordination.sweeps import SweepService
from coordination.sweeps.reading import SweepRow, TodoEntry
from coordination.sweeps.service import iso, sweep_row, todo_entry
from coordination.sweeps.spec import Mode
from coordination.sweeps.spec_store import load_spec
from coordination.ui.changes import ChangeSummary, change_plans, change_summary
from coordination.ui.layout import Layout, layout

#: One repo's circuit breaker as :func:`coordination.runtime.breakers.breaker_state`
#: reads it: ``{"state": "open"|"closed"|"half_open", "failures", ...}``.
Breaker = dict[str, str | int | float | None]
#: Reads one repo's circuit-breaker state (None: it could not be read).
BreakerReader = Callable[[str], Breaker | None]


#: A sweep in (or after) a rollback: its undos are counted apart and drawn in their
#: own colours, never as a success.
ROLLBACK = frozenset({SweepStatus.rolling_back, SweepStatus.rolled_back,
                      SweepStatus.rollback_failed})
#: An undo that started: its checkpoint is the undo's own (before, it still holds the
#: change's run, which the rollback keeps apart).
UNDO_STARTED = frozenset({TodoStatus.running, TodoStatus.compensated,
                          TodoStatus.compensation_failed})


class SweepProgress(TypedDict):
    """How far a sweep got: ``done`` of ``total`` todos ended. A rollback (or a sweep
    that was rolled back) adds ``undone``: todos whose undo succeeded, and
    ``undo_failed``: todos whose undo failed, so 12/12 after a rollback never reads
    as 12 successes."""

    done: int
    total: int
    undone: NotRequired[int]
    undo_failed: NotRequired[int]


class OverviewSweep(SweepRow):
    """A ``sweep list`` row with how far the sweep got (an orphaned one's ``duration``
    runs on: it is still open, with nobody running it)."""

    started_at: str | None
    progress: SweepProgress
    duration: float | None


class Overview(TypedDict):
    sweeps: list[OverviewSweep]
    repos: list[dict[str, object]]
    plans: list[PlanRow]
    #: plan -> its change's line, for the plans that land a change (their todos'
    #: progress says nothing of the landing)
    changes: dict[str, ChangeSummary]
    catalog_error: str | None
    embedded: bool
    breakers: bool
    #: the fleet's freeze (`coord freeze`): {"by", "at", "reason"}, or None
    frozen: dict[str, object] | None


class SweepGraph(TypedDict):
    sweep: dict[str, object]  # the sweep's status document without its todos
    layout: Layout
    critical_path: list[str]
    status: dict[str, str]
    problem: str | None
    after: str
    change: ChangeSummary | None  # the sweep's plan lands a change: its state
    #: queued todos waiting for a pace token, with when they may start (ISO)
    paced: dict[str, str]


class ChangeEntry(TodoEntry):
    """A rolled-back todo's change: its own run as it ended before its undo ran, and the
    command it ran."""

    command: str | None


class TodoDetail(TodoEntry):
    """One todo of a sweep: its ``sweep status`` entry, what it runs, its events. In a
    rollback, the entry is the undo's run (blank until the undo starts) and ``change``
    the change's own run before it (None when no undo ran for it); the tails are named
    as ``sweep status --json`` names them: ``output_tail`` the change's,
    ``undo_output_tail`` the undo's."""

    sweep_id: str
    todo: str
    run: str | None
    undo: str | None
    timeout: float
    retries: int
    preds: list[str]
    succs: list[str]
    terminal: bool
    events: list[dict[str, object]]
    change: ChangeEntry | None


class PlanTodo(TypedDict):
    task: str
    status: str
    repo: str
    estimated_hours: float | None
    milestone: str | None
    run: str | None
    blocked_by: list[str]


class PlanGraph(TypedDict):
    plan: PlanStatus
    layout: Layout
    critical_path: list[str]
    todos: dict[str, PlanTodo]
    problem: str | None
    change: ChangeSummary | None  # the plan lands a change: its state


def live_workers(rt: Runtime) -> dict[str, int]:
    """Repo -> live workers, as ``coord repo list`` counts them (embedded: none; its
    workers live only inside a sweep's process and do not beat)."""
    if rt.settings.embedded:
        return {}
    return dict(rt.workers.per_repo())


def breaker_states(rt: Runtime, names: list[str]) -> dict[str, Breaker]:
    """Repo -> breaker state for these repos (none embedded: breakers live in the
    shared Redis), as ``coord repo list`` reads them."""
    if rt.settings.embedded:
        return {}
    return {n: rt.breakers.state(n) for n in names}


def repo_list(svc: SweepService, rt: Runtime) -> list[dict[str, object]]:
    """The ``coord repo list --json`` document."""
    if svc.catalog_path is None:
        return []
    reads = CoordinationManager(svc.catalog_path).reads
    with_breaker = [r.name for r in reads.list_repos() if r.breaker is not None]
    return repo_list_document(reads, live_workers(rt), breaker_states(rt, with_breaker))


def plan_status(svc: SweepService, plan_id: str) -> PlanStatus:
    """The ``coord plan status PLAN --json`` document (its ``problems`` said, as the
    CLI's: another plan's do not stop it)."""
    catalog = svc.catalog()
    results = [] if svc.catalog_path is None else read_results(svc.catalog_path).get(plan_id, [])
    return plan_status_document(catalog, plan_id, problems=svc.problems, results=results)


def _spec_todos(rec: SweepRecord) -> int:
    spec: object = rec.get("spec")
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError:
            return 0
    return len(spec.get("todos") or {}) if isinstance(spec, dict) else 0


def undo_counts(counts: dict[str, int], done: int, total: int, *,
                rollback: bool) -> SweepProgress:
    """A sweep's progress from its todos' status counts: ``undone`` and ``undo_failed``
    apart when it is (or was) rolled back."""
    progress: SweepProgress = {"done": done, "total": total}
    undone = counts.get(TodoStatus.compensated, 0)
    failed = counts.get(TodoStatus.compensation_failed, 0)
    if rollback or undone or failed:
        progress["undone"] = undone
        progress["undo_failed"] = failed
    return progress


def _rollback_counts(rt: Runtime, sweep_id: str) -> dict[str, int]:
    """Status counts of a sweep's todos (one read of their checkpoints, tails left out)."""
    spec = load_spec(rt, sweep_id)
    if spec is None:
        return {}
    out: dict[str, int] = {}
    for cp in rt.checkpoints.get_fields_all(sweep_id, list(spec.todos), ("status",)).values():
        out[str(cp["status"])] = out.get(str(cp["status"]), 0) + 1
    return out


def _seconds(value: object) -> float | None:
    """A record's timestamp; None when it is unset (missing, or written empty)."""
    return None if value in (None, "") else float(str(value))


def overview(svc: SweepService, rt: Runtime, *, limit: int = 25,
             breakers: BreakerReader | None = None, selector: str | None = None) -> Overview:
    """What ``/`` shows: recent sweeps (each a ``sweep list`` row plus ``progress``,
    ``started_at``, ``duration``), the catalog's repos (``repo list`` rows) and plans.
    ``selector`` (``?repos=SEL``): only the repos it selects, as `coord repo list
    --repos` (a bad selector is the error, not an empty list)."""
    now = time.time()
    chosen: set[str] | None = None
    if selector is not None:
        if svc.catalog_path is None:
            raise UsageError("?repos= needs the view's catalog", hint="start it with --file")
        chosen = set(select(svc.catalog(), selector, svc.catalog_path.resolve().parent).names)
    sweeps: list[OverviewSweep] = []
    for rec in rt.checkpoints.list_sweeps(limit=limit):
        row = sweep_row(rec, embedded=rt.settings.embedded)
        total = rec.get("todos")
        if total is None:  # a record of before 0.2 counts its spec's todos
            total = _spec_todos(rt.checkpoints.get_sweep_fields(str(rec["id"]), ("spec",)) or {})
        total = int(total)
        start = _seconds(rec.get("started_at") or rec.get("created_at"))
        finished = rec.get("finished_at")
        end = float(finished) if finished else now
        done = min(total, int(rec.get("terminal") or 0))
        progress: SweepProgress = {"done": done, "total": total}
        if rec.get("status") in ROLLBACK or rec.get("rollback_of"):
            progress = undo_counts(_rollback_counts(rt, str(rec["id"])), done, total,
                                   rollback=rec.get("status") in ROLLBACK)
        sweeps.append({
            **row,
            "started_at": iso(rec.get("started_at")),
            "progress": progress,
            "duration": None if start is None else round(max(0.0, end - start), 3),
        })
    repos: list[dict[str, object]] = []
    plans: list[PlanRow] = []
    changes: dict[str, ChangeSummary] = {}
    catalog_error = None
    try:  # sweeps need no catalog: a view on another machine still shows them
        repos = repo_list(svc, rt)
        if svc.catalog_path is not None:
            catalog = svc.catalog()
            plans = list_plans(catalog, problems=svc.problems)  # each plan's problem in its row
            for plan_id in change_plans(catalog):
                line = change_summary(svc, rt, plan_id)
                if line is not None:
                    changes[plan_id] = line
    except CoordError as exc:
        catalog_error = str(exc)
    if chosen is not None:
        repos = [r for r in repos if r.get("name") in chosen]
    if breakers is not None:
        for r in repos:
            if r.get("breaker"):
                r["breaker_state"] = breakers(str(r["name"]))
    return {"sweeps": sweeps, "repos": repos, "plans": plans, "changes": changes,
            "catalog_error": catalog_error,
            "embedded": rt.settings.embedded,
            "breakers": any(r.get("breaker") for r in repos),
            "frozen": _frozen(rt)}


def _frozen(rt: Runtime) -> dict[str, object] | None:
    """The fleet's freeze as the overview's banner shows it, or None."""
    held = rt.freeze().get()
    return None if held is None else {"by": held["by"], "at": freeze_iso(held["at"]),
                                      "reason": held["reason"]}


def _graph_parts(repo_of: dict[str, str], edges: list[tuple[str, str]],
                 weight: dict[str, float]) -> tuple[list[list[str]], list[str], str | None]:
    """Levels and critical path of a DAG (or, with a cycle, one level and a problem)."""
    g = DiGraph()
    g.add_nodes_from(repo_of)
    g.add_edges_from(edges)
    try:
        levels = topological_levels(g)
    except Unfeasible:
        return [sorted(repo_of)], [], "the graph has a cycle: levels and critical path unknown"
    order = [t for level in levels for t in level]
    path, _hours = critical_path(g, order, weight)
    return levels, path, None


def sweep_graph(svc: SweepService, sweep_id: str) -> SweepGraph:
    """What ``/sweeps/ID`` draws: the sweep (its status document minus the todos),
    the DAG laid out by level with one lane per repo, each todo's status, the
    critical path, and ``after``: the event id to follow from (read before the
    statuses, so no event between the two is missed)."""
    rt = svc.rt
    after = rt.events.last_id(sweep_id)
    st = svc.status(sweep_id)
    spec = load_spec(rt, sweep_id)
    todos = spec.todos if spec else {}
    repo_of = {t: s.repo for t, s in todos.items()}
    edges = [(p, t) for t, s in todos.items() for p in s.preds if p in todos]
    weight = {t: float(s.estimated_hours or 0.0) for t, s in todos.items()}
    levels, path, problem = _graph_parts(repo_of, edges, weight)
    sweep: dict[str, object] = {k: v for k, v in st.items() if k != "todos"}
    # A rollback's trigger, as the rollback was asked for or started ("atomic sweep
    # failed: ..."), while its own reason is not written yet (rolling back) and after.
    why = rt.checkpoints.get_sweep_fields(sweep_id, ("rollback_reason", "rollback_of")) or {}
    sweep["rollback_reason"] = why.get("rollback_reason")
    sweep["rollback_of"] = why.get("rollback_of")
    done = sum(n for s, n in st["counts"].items() if s in TERMINAL)
    sweep["progress"] = undo_counts(st["counts"], done, len(st["todos"]),
                                    rollback=st["status"] in ROLLBACK)
    plan = st.get("plan")
    return {
        "sweep": sweep,
        "layout": layout(repo_of, edges, levels, path),
        "critical_path": path,
        "status": {t: v["status"] for t, v in st["todos"].items()},
        "problem": problem,
        "after": after,
        "change": change_summary(svc, rt, str(plan)) if plan else None,
        "paced": {t: str(v["starts_at"]) for t, v in st["todos"].items()
                  if v.get("starts_at") and v["status"] == "queued"},
    }


def todo_detail(svc: SweepService, sweep_id: str, todo_id: str) -> TodoDetail:
    """One todo of a sweep: its ``sweep status`` entry, what it runs, and its events
    (every attempt: queued, started, retrying, lost, its end)."""
    rt = svc.rt
    spec = load_spec(rt, sweep_id, svc.record(sweep_id))
    if spec is None or todo_id not in spec.todos:
        raise NotFoundError(f"sweep {sweep_id} has no todo {todo_id!r}")
    t = spec.todos[todo_id]
    entry = todo_entry(rt.checkpoints.get(sweep_id, todo_id) or {}, t.repo)
    history = [e.to_dict() for e in rt.events.read(sweep_id) if e.todo_id == todo_id]
    kept = rt.checkpoints.get_change_run(sweep_id, todo_id) if spec.mode == Mode.rollback else None
    change: ChangeEntry | None = None
    if kept is not None:
        change = {**todo_entry(kept, t.repo), "command": kept.get("command")}
        if entry["status"] in UNDO_STARTED:
            # (a todo's attempts count on across runs: the undo's are the ones after)
            entry["attempts"] = max(0, entry["attempts"] - change["attempts"])
        else:  # the undo has not run: what the checkpoint holds is still the change's
            entry = {**entry, "attempts": 0, "exit_code": None, "worker": None,
                     "started_at": None, "finished_at": None, "output_tail": "",
                     "duration": None, "stdout_bytes": None, "stderr_bytes": None}
        # as `sweep status --json` names them: ``output_tail`` the change's (what the
        # todo did), ``undo_output_tail`` its undo's ("" before the undo ran)
        entry["undo_output_tail"] = entry["output_tail"]
        entry["output_tail"] = change["output_tail"]
    return {
        "sweep_id": sweep_id, "todo": todo_id, **entry,
        "run": t.run, "undo": t.undo, "timeout": t.timeout, "retries": t.retries,
        "preds": t.preds, "succs": t.succs, "terminal": entry["status"] in TERMINAL,
        "events": history[-100:], "change": change,
    }


def plan_graph(svc: SweepService, plan_id: str) -> PlanGraph:
    """What ``/plans/ID`` draws before any sweep: the plan's ``plan status`` document
    (milestones included), every todo of the plan laid out like a sweep's, with its
    catalog status, task, estimate and milestone, and the critical path."""
    catalog = svc.catalog()
    results = [] if svc.catalog_path is None else read_results(svc.catalog_path).get(plan_id, [])
    status = plan_status_document(catalog, plan_id, problems=svc.problems, results=results)
    pg = build_plan_graph(catalog, plan_id, include_completed=True)
    g = pg.graph
    repo_of = {t: g.nodes[t]["todo"].repo for t in g.nodes}
    edges = [(u, v) for u, v in g.edges]
    weight = {t: float(g.nodes[t]["todo"].estimated_hours or 0.0) for t in g.nodes}
    levels, path, problem = _graph_parts(repo_of, edges, weight)
    if status["problems"]:  # a template left out: the drawing is not the whole plan
        problem = "; ".join(status["problems"] + ([problem] if problem else []))
    milestone_of = {t: m["id"] for m in status["milestones"] for t in m["todos"]}
    todos: dict[str, PlanTodo] = {}
    for t in g.nodes:
        todo = g.nodes[t]["todo"]
        todos[t] = {"task": todo.task, "status": todo.status.value, "repo": todo.repo,
                    "estimated_hours": todo.estimated_hours, "milestone": milestone_of.get(t),
                    "run": todo.run, "blocked_by": sorted(g.predecessors(t))}
    return {"plan": status, "layout": layout(repo_of, edges, levels, path),
            "critical_path": path, "todos": todos, "problem": problem,
            "change": change_summary(svc, svc.rt, plan_id)}
