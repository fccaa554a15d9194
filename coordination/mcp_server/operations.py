"""What each MCP tool does: the CLI's library calls, its JSON documents, and the repo scope.

Every method returns the document `coord ... --json` prints (through
:func:`coordination.jsonable.to_jsonable`) and raises coord's own errors; the
server turns those into MCP tool errors. ``repos`` (from ``--repo``) scopes
every call: lists keep only what touches those repos, reading needs an object to
touch one of them, and every write is a boundary: an object may be changed only
if every repo it touches is served (a todo: its repo; an issue: all its repos; a
plan: its repos and all its todos' repos; a dependency: consumer and provider),
and so may every object a write changes on the side (the ``blocking`` lists a
new todo or issue is added to, the plan a new todo joins, the plan status a
sweep's outcome sets). Anything else is refused with :class:`OutOfScope`, naming
the repos outside, before anything is written.

Sweeps: with ``COORD_REDIS_URL`` set a sweep is sent to the workers and, unless
``wait``, the call returns the queued document at once. Embedded (unset), the
workers live in this server process, so a start, a todo run or a resume runs to
the end before the call returns (as `coord plan sweep` always waits embedded);
the sweep's record stays on the catalog's embedded server, for `coord_get_sweep` and
`coord_sweep_events`, like every embedded sweep. One embedded sweep runs at a
time; a second start waits for the first.

A call that follows a sweep to its end may be given ``progress``
(:mod:`.progress`): told each time another of the run's todos ends.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from coordination.catalog.reads import live
from coordination.catalog import models
from coordination.catalog.runs.criteria import read_results
from coordination.catalog.runs.depcheck import SKIPPED, CheckResult, check_document
from coordination.catalog.edits.issue_edits import IssueChanges
from coordination.catalog.manager import CoordinationManager
from coordination.catalog.models import Catalog, kind_of
from coordination.catalog.reads.reports import plan_status
from coordination.catalog.selection.templates import (
    Problems,
    load_planned,
    plan_warnings,
    planned,
    planned_for,
    require,
    template_repos,
)
from coordination.cli.editing import given
from coordination.errors import ForgeError, UsageError
from coordination.history.search import search_document
from coordination.history.trends import trends_document
from coordination.jsonable import JSONValue, to_jsonable
from coordination.keys import Keys
from coordination.launch import Launch, attach, prepare, settle
from coordination.mcp_server.progress import Progress, RunProgress
from coordination.planner.documents import dry_run_document, validate_document
from coordination.planner.listing import list_plans
from coordination.runtime.context import get_runtime
from coordination.runtime.history import HistoryStore
from coordination.settings import get_settings
from coordination.sweeps import SweepService
from coordination.sweeps.writeback.live import catch_up
from coordination.sweeps.notices.milestones import announce
from coordination.sweeps.reading import StatusDocument

#: One embedded sweep at a time: its workers and the runtime's dispatcher belong to the process.
_EMBEDDED = threading.Lock()

#: What ``list_kind`` lists, and the filters each kind takes (any other is refused).
LIST_FILTERS: dict[str, tuple[str, ...]] = {
    "issues": ("status", "priority", "repo", "assignee"),
    "todos": ("status", "repo", "assignee", "plan"),
    "plans": ("status", "repo"),
    "dependencies": ("consumer", "provider", "type"),
}
#: The statuses a ``status`` filter of each kind may name (the catalog's own enums).
LIST_STATUSES: dict[str, tuple[str, ...]] = {
    "issues": tuple(m.value for m in models.IssueStatus),
    "todos": tuple(m.value for m in models.TodoStatus),
    "plans": tuple(m.value for m in models.PlanStatus),
}


class OutOfScope(UsageError):
    """The object belongs to a repo this server does not serve (``--repo``)."""


class Operations:
    """The tools' behaviour over one catalog file, limited to ``repos`` (empty: all)."""

    def __init__(self, file: Path, repos: Sequence[str] = ()) -> None:
        self.file = file
        self.repos = frozenset(repos)
        self.manager = CoordinationManager(file)
        #: what the last :meth:`_planned` could not expand (todo -> its problem)
        self._problems: Problems = {}

    def live(self) -> None:
        """Before a read of todos' status: the catalog's live sweeps' running todos shown
        in_progress, as at the start of every CLI command (:mod:`coordination.sweeps.writeback.live`);
        a read tool writes nothing (an ended sweep nobody synced is left to the CLI)."""
        if live.of_this_redis(self.file):
            catch_up(self.file, sync=False)
        else:
            live.set_overlay(self.file, {})

    # -- scope ---------------------------------------------------------------------
    def check_repos(self) -> None:
        """Every ``--repo`` names a repo of the catalog (checked once, at start)."""
        known = {r.name for r in self.manager.reads.list_repos()}
        missing = sorted(self.repos - known)
        if missing:
            raise UsageError(f"--repo names no repo of {self.file}: {', '.join(missing)}",
                             hint=f"its repos: {', '.join(sorted(known)) or '(none)'}")

    def _in(self, repos: Iterable[str]) -> bool:
        """Does an object touching ``repos`` show in lists? (Unscoped: everything.)"""
        return not self.repos or bool(self.repos & set(repos))

    def _require(self, what: str, repos: Iterable[str]) -> None:
        """Refuse ``what`` unless every one of ``repos`` is served (and there is one)."""
        if not self.repos:
            return
        repos = set(repos)
        outside = sorted(repos - self.repos)
        if outside or not repos:
            served = ", ".join(sorted(self.repos))
            why = (f"repo(s) {', '.join(outside)}" if outside else "no repo")
            raise OutOfScope(f"{what} concerns {why}; this server serves only {served}",
                             hint="ask a coord mcp server started with that --repo, or use the CLI")

    def _require_any(self, what: str, repos: Iterable[str]) -> None:
        """Refuse reading ``what`` unless it touches a served repo."""
        repos = set(repos)
        if not self._in(repos):
            served = ", ".join(sorted(self.repos))
            raise OutOfScope(
                f"{what} concerns {', '.join(sorted(repos)) or 'no repo'}; this server serves "
                f"only {served}", hint="ask a coord mcp server started with that --repo")

    def _planned(self) -> Catalog:
        """The catalog as the CLI's plan commands and a sweep see it: each template
        replaced by its instances (:func:`coordination.catalog.selection.templates.planned`);
        what cannot be expanded is left out and kept in ``_problems`` (one plan's
        problem does not fail a list, or another plan's tools)."""
        problems: Problems = {}
        cat = planned(self.file, problems=problems)
        self._problems = problems
        return cat

    def _plan_repos(self, plan_id: str, catalog: Catalog | None = None, *,
                    whole: bool = True) -> set[str]:
        """Every repo a plan touches: those it names and those of its todos (a
        template's: its instances'). ``whole``: refused (its problem) when the plan
        has a template that cannot be expanded now, whose repos are unknown, so
        that a scope check never passes on part of a plan; else what is known."""
        cat = catalog if catalog is not None else self._planned()
        plan = cat.plan(plan_id)
        if plan is None:
            plan = self.manager.reads.get_plan(plan_id)  # unknown: its "did you mean"
        if whole:
            require(self._problems, plan=plan_id)
        return set(plan.repos) | {t.repo for t in cat.plan_todos(plan_id)}

    def _todo_repos(self, todo: models.Todo) -> list[str]:
        """The repos a todo concerns: its own, or a template's selected repos."""
        return template_repos(self.manager.reads.catalog(), todo, self.manager.store.base_dir)

    def _require_plan(self, what: str, plan_id: str) -> None:
        """Refuse ``what`` unless plan ``plan_id`` is writable: every repo it touches served."""
        if self.repos:
            self._require(what, self._plan_repos(plan_id))

    def _require_outcome(self, what: str, plan_id: str | None, running: Iterable[str]) -> None:
        """Refuse ``what`` (a run of ``running``, todos of plan ``plan_id``) when its sync
        could set the status of a plan that is not wholly in scope: it completes a plan
        whose other todos are all completed, and reopens a completed one
        (:mod:`coordination.sweeps.writeback.sync`)."""
        if not self.repos or not plan_id:
            return
        cat = self._planned()
        repos = self._plan_repos(plan_id, cat)
        if repos <= self.repos:
            return
        plan, ran = self.manager.reads.get_plan(plan_id), set(running)
        others = [t for t in cat.plan_todos(plan_id) if t.id not in ran]
        if plan.status.value == "completed" or all(
                t.status.value == "completed" for t in others):
            outside = ", ".join(sorted(repos - self.repos))
            raise OutOfScope(
                f"{what} could set the status of {plan_id}, which concerns repo(s) {outside}; "
                f"this server serves only {', '.join(sorted(self.repos))}",
                hint="ask a coord mcp server serving every repo of the plan, or use the CLI")

    def _require_blockers(self, what: str, blockers: Iterable[str]) -> None:
        """A new todo's ``blocked_by``: a todo blocker gets the new id in its ``blocking``
        (a write: its repo must be served); an issue blocker is only read (visible)."""
        for b in blockers:
            if b.startswith("TODO-"):
                self._require(f"{b} (blocking {what})",
                              self._todo_repos(self.manager.reads.get_todo(b)))
            elif b.startswith("ISSUE-"):
                self._require_any(b, self.manager.reads.get_issue(b).repos)

    # -- one list, one get ------------------------------------------------------------
    def list_kind(self, kind: str, **filters: str | None) -> JSONValue:
        """``coord {issue,todo,plan,dep} list --json``; a filter the kind does not take,
        or a status it does not have, is refused (never ignored)."""
        if kind not in LIST_FILTERS:
            raise UsageError(f"cannot list {kind!r}", hint=f"kinds: {', '.join(LIST_FILTERS)}")
        given = {k: v for k, v in filters.items() if v is not None}
        bad = sorted(set(given) - set(LIST_FILTERS[kind]))
        if bad:
            raise UsageError(f"{kind} take no filter {', '.join(bad)}",
                             hint=f"filters of {kind}: {', '.join(LIST_FILTERS[kind])}")
        status = given.get("status")
        if status is not None and status not in LIST_STATUSES[kind]:
            raise UsageError(f"bad status {status!r} for {kind}",
                             hint=f"one of: {', '.join(LIST_STATUSES[kind])}")
        if kind == "issues":
            return self.list_issues(**given)
        if kind == "todos":
            return self.list_todos(**given)
        if kind == "plans":
            return self.list_plans(**given)
        return self.list_dependencies(**given)

    def get(self, id: str | None = None, repo: str | None = None) -> JSONValue:  # noqa: A002
        """One object by id (an issue, a todo; a plan's status) or a repo's status."""
        if (id is None) == (repo is None):
            raise UsageError("give exactly one of id or repo",
                             hint="id: ISSUE-n, TODO-n or PLAN-n; repo: a repo name")
        if repo is not None:
            return self.repo_status(repo)
        assert id is not None
        kind = kind_of(id)
        if kind == "issue":
            return self.get_issue(id)
        if kind == "todo":
            return self.get_todo(id)
        if kind == "plan":
            return self.plan_status(id)
        raise UsageError(f"cannot get {id!r}",
                         hint="ids: ISSUE-n, TODO-n, PLAN-n (dependencies: list them)")

    # -- issues --------------------------------------------------------------------
    def list_issues(self, *, status: str | None = None, priority: str | None = None,
                    repo: str | None = None, assignee: str | None = None) -> JSONValue:
        if repo is not None:
            self._require_any(f"repo {repo}", [repo])
        items = self.manager.reads.list_issues(status=status, priority=priority, repo=repo,
                                               assignee=assignee)
        return to_jsonable([i for i in items if self._in(i.repos)])

    def get_issue(self, issue_id: str) -> JSONValue:
        issue = self.manager.reads.get_issue(issue_id)
        self._require_any(issue_id, issue.repos)
        return to_jsonable(issue)

    def create_issue(self, title: str, *, repos: Sequence[str] = (), description: str = "",
                     priority: str = "medium", severity: str = "", assignee: str | None = None,
                     labels: Sequence[str] = (), target: dt.date | None = None,
                     dependencies: Sequence[str] = ()) -> JSONValue:
        self._require("a new issue", repos)
        for d in dependencies:  # each gets the new issue in its ``blocking``
            self._require(f"{d} (a dependency of the new issue)",
                          self.manager.reads.get_issue(d).repos)
        return to_jsonable(self.manager.issues.create(
            title, repos=repos, description=description, priority=priority, severity=severity,
            assignee=assignee, labels=labels, target=target, dependencies=dependencies))

    def suggest_assignee(self, issue_id: str) -> JSONValue:
        """`coord issue suggest ISSUE --json`: who should take it, ranked, with why."""
        from coordination.cli.issue_suggest import suggest_document  # lazy: suggest only

        self._require(issue_id, self.manager.reads.get_issue(issue_id).repos)
        return to_jsonable(suggest_document(self.manager.reads.catalog(), self.file, issue_id))

    def update_issue(self, issue_id: str, *, title: str | None = None,
                     description: str | None = None, status: str | None = None,
                     priority: str | None = None, severity: str | None = None,
                     assignee: str | None = None, repos: Sequence[str] | None = None,
                     labels: Sequence[str] | None = None,
                     target: dt.date | None = None) -> JSONValue:
        changes: IssueChanges = given(
            title=title, description=description, status=status, priority=priority,
            severity=severity, assignee=assignee, repos=repos, labels=labels, target=target)
        if not changes:
            raise UsageError("nothing to update", hint="pass at least one field to change")
        self._require(issue_id, self.manager.reads.get_issue(issue_id).repos)
        if repos is not None:
            self._require(f"{issue_id}'s new repos", repos)
        issue = self.manager.issues.update(issue_id, **changes)
        if issue.forge_issue and {"title", "status"} & set(changes):
            self._push(issue_id)
        return to_jsonable(issue)

    def close_issue(self, issue_id: str) -> JSONValue:
        self._require(issue_id, self.manager.reads.get_issue(issue_id).repos)
        issue = self.manager.issues.close(issue_id)
        if issue.forge_issue:
            self._push(issue_id)
        return to_jsonable(issue)

    def _push(self, issue_id: str) -> None:
        """A linked issue's title and state, pushed to its forge issue (`coord issue
        link`), as `coord issue update/close` push them."""
        from coordination.forge.issue_link import push_issue  # lazy: the forge, linked only

        try:
            push_issue(self.manager, issue_id)
        except ForgeError as exc:
            exc.message = (f"{issue_id} is changed in the catalog, but its forge issue was "
                           f"not: {exc.message}")
            raise

    # -- todos ---------------------------------------------------------------------
    def list_todos(self, *, status: str | None = None, repo: str | None = None,
                   assignee: str | None = None, plan: str | None = None) -> JSONValue:
        self.live()
        if repo is not None:
            self._require_any(f"repo {repo}", [repo])
        items = self.manager.reads.list_todos(status=status, repo=repo, assignee=assignee,
                                              plan=plan)
        return to_jsonable([t for t in items if self._in(self._todo_repos(t))])

    def get_todo(self, todo_id: str) -> JSONValue:
        self.live()
        todo = self.manager.reads.get_todo(todo_id)
        self._require_any(todo_id, self._todo_repos(todo))
        return to_jsonable(todo)

    def create_todo(self, task: str, repo: str, *, run: str | None = None,
                    undo: str | None = None, plan: str | None = None,
                    blocked_by: Sequence[str] = (), estimate: float | None = None,
                    criteria: Sequence[str | dict[str, str]] = (), description: str = "",
                    priority: str | None = None, assignee: str | None = None) -> JSONValue:
        self._require("a new todo", [repo])
        if plan is not None:
            self._require_plan(f"plan {plan} (the new todo's plan)", plan)
        self._require_blockers("the new todo", blocked_by)
        return to_jsonable(self.manager.todos.create(
            task, repo, run=run, undo=undo, plan=plan, blocked_by=blocked_by, estimate=estimate,
            criteria=criteria, description=description, priority=priority, assignee=assignee))

    def complete_todo(self, todo_id: str, hours: float | None = None) -> JSONValue:
        # a template: every instance is completed, so every repo it selects is written
        self._require(todo_id, self._todo_repos(self.manager.reads.get_todo(todo_id)))
        edit = self.manager.todos.complete(todo_id, hours=hours)
        done = to_jsonable(edit.todo)
        completed, reopened = edit.completed, edit.reopened
        if completed or reopened:  # as `coord todo complete`: the milestone's event
            announce(get_runtime(self.file), self.file, completed, reopened)
        return done

    # -- plans ---------------------------------------------------------------------
    def list_plans(self, *, status: str | None = None, repo: str | None = None) -> JSONValue:
        self.live()
        if repo is not None:
            self._require_any(f"repo {repo}", [repo])
        cat = self._planned()  # as `coord plan list`: a template counts as its instances
        rows = list_plans(cat, status=status, repo=repo, problems=self._problems)
        return to_jsonable([r for r in rows
                            if self._in(self._plan_repos(r["id"], cat, whole=False))])

    def plan_status(self, plan_id: str) -> JSONValue:
        """As `coord plan status --json`: the plan's problems in ``problems`` (the
        CLI then exits 1; a tool answers the document)."""
        self.live()
        cat = self._planned()
        self._require_any(plan_id, self._plan_repos(plan_id, cat, whole=False))
        return to_jsonable(plan_status(cat, plan_id, problems=self._problems,
                                       results=read_results(self.file).get(plan_id, [])))

    def validate_plan(self, plan_id: str, *, include_completed: bool = False,
                      ignore_blockers: bool = False) -> JSONValue:
        problems: Problems = {}
        cycles: list[str] = []
        raw, cat = load_planned(self.file, problems=problems, warnings=cycles)
        self._problems = problems
        self._require_any(plan_id, self._plan_repos(plan_id, cat, whole=False))
        return to_jsonable(validate_document(cat, plan_id, include_completed=include_completed,
                                             ignore_blockers=ignore_blockers, written=raw,
                                             problems=problems,
                                             cycles=plan_warnings(raw, cycles, plan_id)))

    # -- dependencies and repos ----------------------------------------------------
    def list_dependencies(self, *, consumer: str | None = None, provider: str | None = None,
                          type: str | None = None) -> JSONValue:
        items = self.manager.reads.list_dependencies(consumer=consumer, provider=provider,
                                                     type=type)
        return to_jsonable([d for d in items if self._in([d.consumer, d.provider])])

    def check_dependencies(self, *, consumer: str | None = None) -> JSONValue:
        """Runs the validation commands in the consumers' checkouts and records each
        dependency's status: a write tool. Scoped, only a dependency whose consumer and
        provider are both served is checked; one whose provider is not is reported
        ``skipped`` (not run, not written)."""
        if not self.repos:
            return to_jsonable(check_document(self.manager.dependencies.check(consumer=consumer)))
        if consumer is not None:
            self._require(f"the dependencies of {consumer}", [consumer])
        results: list[CheckResult] = []
        for c in [consumer] if consumer is not None else sorted(self.repos):
            deps = self.manager.reads.list_dependencies(consumer=c)
            mine = [d.id for d in deps if d.provider in self.repos]
            ran = {r.id: r for r in self.manager.dependencies.check(consumer=c, only=mine)}
            results += [ran.get(d.id) or CheckResult(
                d.id, SKIPPED, None,
                f"not checked: provider {d.provider} is not served here (--repo); "
                f"status stays {d.status.value}", consumer=d.consumer, provider=d.provider)
                for d in deps]
        return to_jsonable(check_document(results))

    def repo_status(self, repo: str) -> JSONValue:
        self.live()
        self._require_any(f"repo {repo}", [repo])
        return to_jsonable(self.manager.reports.repo_status(repo))

    def blocking(self, repo: str) -> JSONValue:
        self._require_any(f"repo {repo}", [repo])
        return to_jsonable(self.manager.reports.blocking_document(repo))

    # -- changes -------------------------------------------------------------------
    def change_status(self, plan_id: str) -> JSONValue:
        """As `coord change status PLAN --json` (the same document: its pull requests as
        their forges say them, read with the rate limit in mind)."""
        from coordination.change.reading import status_document  # lazy: a change's only

        cat = self._planned()
        self._require_any(plan_id, self._plan_repos(plan_id, cat))
        return to_jsonable(status_document(get_runtime(self.file), cat,
                                           self.manager.store.base_dir, plan_id))

    # -- sweeps --------------------------------------------------------------------
    def _service(self) -> SweepService:
        return SweepService(get_runtime(self.file), self.file)

    def _history(self) -> HistoryStore:
        return get_runtime(self.file).history()

    def _sweep_in_scope(self, svc: SweepService, sweep_id: str) -> StatusDocument:
        st = svc.status(sweep_id)
        if self.repos:
            # A sweep whose todos' repos cannot be read (no spec) is no one's: refused.
            self._require(f"sweep {sweep_id}",
                          {r for v in st["todos"].values() if (r := v.get("repo"))})
        return st

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Embedded: one sweep at a time in this process (its workers, and the runtime's
        dispatcher that wiring replaces, are the process's)."""
        if get_settings().embedded:
            with _EMBEDDED:
                yield
        else:
            yield

    def _run(self, make: Callable[[], Launch], wait: bool,
             progress: Progress | None = None) -> JSONValue:
        """Start the sweep ``make()`` wires; embedded, or with ``wait``, follow it to
        its end (``progress`` told as todos end) and write the outcome into the catalog."""
        with self._exclusive():
            launch = make()
            self._require(f"{launch.kind} {launch.name}",
                          {t.repo for t in launch.spec.todos.values()})
            wait = wait or launch.embedded
            with launch.workers():
                sweep_id = launch.start()
                if not wait:
                    return to_jsonable(launch.queued_document(sweep_id))
                on_event = (RunProgress(progress, len(launch.spec.todos))
                            if progress is not None else None)
                st = launch.svc.wait(sweep_id, on_event=on_event)
        return to_jsonable(settle(launch.svc, st))

    def start_sweep(self, plan_id: str, *, strategy: str = "levels", dry_run: bool = False,
                    wait: bool = False, ignore_blockers: bool = False,
                    atomic: bool = False, progress: Progress | None = None) -> JSONValue:
        if dry_run:  # as `coord plan sweep --dry-run --json`
            raw, catalog = planned_for(self.file, plan_id)
            doc = dry_run_document(catalog, plan_id, strategy=strategy,
                                   ignore_blockers=ignore_blockers,
                                   keys=Keys(get_settings().namespace), written=raw)
            todos = [catalog.todo(t) for level in doc["levels"] for t in level]
            self._require(plan_id, {t.repo for t in todos if t is not None}
                          or self._plan_repos(plan_id, catalog, whole=False))
            return to_jsonable(doc)
        # A sweep writes its plan (todo outcomes, the plan's status): the whole plan in scope.
        self._require_plan(plan_id, plan_id)
        return self._run(lambda: prepare(self.file, plan_id=plan_id, strategy=strategy,
                                         ignore_blockers=ignore_blockers, atomic=atomic),
                         wait, progress)

    def run_todo(self, todo_id: str, *, wait: bool = False, ignore_blockers: bool = False,
                 progress: Progress | None = None) -> JSONValue:
        todo = self.manager.reads.get_todo(todo_id)
        self._require(todo_id, self._todo_repos(todo))
        self._require_outcome(f"running {todo_id}", todo.plan, [todo_id])
        return self._run(lambda: prepare(self.file, todo_id=todo_id,
                                         ignore_blockers=ignore_blockers), wait, progress)

    def get_sweep(self, sweep_id: str) -> JSONValue:
        return to_jsonable(self._sweep_in_scope(self._service(), sweep_id))

    def sweep_events(self, sweep_id: str, *, limit: int | None = None,
                     todo: str | None = None) -> JSONValue:
        svc = self._service()
        self._sweep_in_scope(svc, sweep_id)
        return to_jsonable(svc.events(sweep_id, limit=limit, todo=todo))

    # -- history -------------------------------------------------------------------
    def search_history(self, text: str, *, repo: str | None = None, kind: str | None = None,
                       since: str | None = None, limit: int = 20) -> JSONValue:
        """`coord history search --json`; a scoped server finds only its repos' records."""
        if repo is not None:
            self._require_any(f"repo {repo}", [repo])
        return to_jsonable(search_document(self.file, text, history=self._history, repo=repo,
                                           kind=kind, since=since, limit=limit,
                                           repos=set(self.repos) or None))

    def trends(self, *, repo: str | None = None, days: float = 30.0) -> JSONValue:
        """`coord history trends --json`, over the served repos only."""
        if repo is not None:
            self._require_any(f"repo {repo}", [repo])
        return to_jsonable(trends_document(history=self._history, repo=repo, days=days,
                                           repos=set(self.repos) or None))

    def cancel_sweep(self, sweep_id: str) -> JSONValue:
        svc = self._service()
        self._sweep_in_scope(svc, sweep_id)
        return to_jsonable(svc.cancel(sweep_id))

    def resume_sweep(self, sweep_id: str, *, only: Sequence[str] | None = None,
                     dry_run: bool = False, wait: bool = False,
                     progress: Progress | None = None) -> JSONValue:
        svc = self._service()
        st = self._sweep_in_scope(svc, sweep_id)
        picked = list(only) if only else None
        if dry_run:
            return to_jsonable(svc.resume(sweep_id, only=picked, dry_run=True))
        plan = st["plan"] if st["plan"] and self.manager.reads.catalog().plan(st["plan"]) else None
        if plan is not None and svc.record(sweep_id).get("kind", "plan") == "plan":
            self._require_plan(f"resuming {sweep_id} of {plan}", plan)  # as starting it
        else:
            self._require_outcome(f"resuming {sweep_id}", plan, st["todos"])
        with self._exclusive():
            launch = attach(self.file, sweep_id)
            wait = wait or launch.embedded
            with launch.workers():
                out = launch.svc.resume(sweep_id, only=picked)
                launch.runs_it()  # embedded: this process runs it now
                if not wait or not out["rerun"]:
                    return to_jsonable(out)
                on_event = None
                if progress is not None:
                    rerun = out["rerun"]
                    run = int(launch.svc.record(sweep_id).get("run") or 0)
                    on_event = RunProgress(progress, len(rerun) if isinstance(rerun, list)
                                           else 0, run)
                st = launch.svc.wait(sweep_id, on_event=on_event)
        return to_jsonable(settle(launch.svc, st))
