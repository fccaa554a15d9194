"""coord's MCP tools, by toolset, with their output schemas and annotations.

Toolsets (``coord mcp --toolsets``): ``catalog`` (list, get, create and change issues
and todos), ``sweeps`` (validate a plan, start, watch, cancel and resume sweeps),
``deps`` (run the dependency checks), ``history`` (a sweep's events, search, trends),
``changes`` (a cross-repo change's status: its repos, pull requests, blockers).
:data:`DEFAULT_TOOLSETS` are served unless ``--toolsets`` says otherwise; ``all`` is
every toolset. Descriptions are short on purpose: an agent pays for every word of the
tool list in its context (tests/unit/mcp_server/test_mcp_toolsets.py holds the default list
to 3,000 tokens).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal

import anyio.from_thread
from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations
from pydantic import Field

from coordination.catalog.models import Criterion
from coordination.errors import UsageError
from coordination.jsonable import JSONValue
from coordination.mcp_server.operations import LIST_STATUSES, Operations
from coordination.mcp_server.progress import Progress
from coordination.mcp_server.toolkit import CoordServer, ToolDef

log = logging.getLogger("coord.mcp")

TOOLSETS = ("catalog", "sweeps", "deps", "history", "changes")
DEFAULT_TOOLSETS = ("catalog", "sweeps")

# Enum values the catalog accepts (tests/unit/mcp_server/test_mcp.py checks them against the models).
IssueStatus = Literal["open", "in_progress", "resolved", "closed"]
Priority = Literal["low", "medium", "high", "critical"]
DepType = Literal["runtime", "build", "dev", "test", "api", "peer", "optional"]
Strategy = Literal["levels", "eager"]
HistoryKind = Literal["todo", "sweep", "edit"]
ListKind = Literal["issues", "todos", "plans", "dependencies"]
#: coord_list's ``status``: which statuses each kind has (from the catalog's enums).
LIST_STATUS = "; ".join(f"{kind}: {'|'.join(names)}" for kind, names in LIST_STATUSES.items())

IssueId = Annotated[str, Field(description="ISSUE-n")]
TodoId = Annotated[str, Field(description="TODO-n")]
SweepId = Annotated[str, Field(description="Sweep id")]
Repo = Annotated[str | None, Field(description="Only this repo's")]
Wait = Annotated[bool, Field(description="Follow to the end, sync the catalog, report "
                                         "progress (embedded: always)")]
Ids = list[str]


#: A todo's acceptance criteria: text, or the catalog's {text, check} (a command checks it).
Criteria = Annotated[list[str | Criterion], Field(description="text, or {text, check}")]
ToolBody = Callable[..., JSONValue]

#: The tools of 0.2 that 0.3 folded into others: calling one says what to call instead.
REPLACED = {
    "coord_list_issues": "coord_list with kind issues",
    "coord_list_todos": "coord_list with kind todos",
    "coord_list_plans": "coord_list with kind plans",
    "coord_list_dependencies": "coord_list with kind dependencies",
    "coord_get_issue": "coord_get with id",
    "coord_get_todo": "coord_get with id",
    "coord_plan_status": "coord_get with id PLAN-n",
    "coord_get_repo_status": "coord_get with repo",
    "coord_get_blocking_issues": "coord_get with repo (its blocked_by)",
    "coord_close_issue": "coord_update_issue with status closed",
    "coord_run_todo": "coord_start_sweep with todo_id",
}

# -- annotations: what a client may assume of each tool ----------------------------------
def hints(*, reads_only: bool, destroys: bool, idempotent: bool, outside: bool) -> ToolAnnotations:
    """A tool's annotations: whether it only reads, may destroy, may be repeated to the
    same end, and reaches outside the catalog and Redis (the repos)."""
    return ToolAnnotations(read_only_hint=reads_only, destructive_hint=destroys,
                           idempotent_hint=idempotent, open_world_hint=outside)


READS = hints(reads_only=True, destroys=False, idempotent=True, outside=False)
CREATES = hints(reads_only=False, destroys=False, idempotent=False, outside=False)
CHANGES = hints(reads_only=False, destroys=True, idempotent=True, outside=False)
#: Runs todos' commands in the repos: anything may happen out there.
RUNS = hints(reads_only=False, destroys=True, idempotent=False, outside=True)
STOPS = hints(reads_only=False, destroys=True, idempotent=True, outside=True)
#: Runs the dependencies' validation commands and records what they found.
CHECKS = hints(reads_only=False, destroys=False, idempotent=True, outside=True)


# -- output schemas: the top of each document (more keys may follow) ---------------------
def obj(*required: str, **types: str) -> dict[str, Any]:
    """An object schema: ``required`` keys, and the JSON type of those in ``types``."""
    schema: dict[str, Any] = {"type": "object"}
    if types:
        schema["properties"] = {k: {"type": t} for k, t in types.items()}
    if required:
        schema["required"] = list(required)
    return schema


ITEMS = obj("items", items="array")
ISSUE = obj("id", "title", "status", id="string", title="string", status="string")
TODO = obj("id", "task", "repo", "status", id="string", task="string", repo="string",
           status="string")
SWEEP = obj("sweep_id", "status", sweep_id="string", status="string", todos="object")
#: Queued, or ended (waited), or a dry run's levels and critical path.
STARTED = {**obj(sweep_id="string", status="string", levels="array"),
           "anyOf": [{"required": ["sweep_id", "status"]},
                     {"required": ["levels", "critical_path"]}]}
#: An issue or a todo (``id``), a plan's status (``plan``), a repo's status (``repo``).
GOT = {"type": "object", "anyOf": [{"required": ["id"]}, {"required": ["plan"]},
                                   {"required": ["repo"]}]}


def reporter(ctx: Context[Any, Any]) -> Progress:
    """Progress for the client's ``progressToken`` (none sent: nothing is), sent from the
    worker thread a tool body runs in."""

    def report(done: int, total: int, message: str) -> None:
        try:
            anyio.from_thread.run(ctx.report_progress, done, total, message)
        except Exception:  # the client went away: the sweep goes on
            log.debug("could not send progress", exc_info=True)

    return report


#: Registers a tool body under its toolset, annotations and output schema.
Register = Callable[[str, ToolAnnotations, dict[str, Any]], Callable[[ToolBody], ToolBody]]


def build(server: CoordServer, ops: Operations, toolsets: set[str], read_only: bool) -> None:
    """Register on ``server`` the tools of ``toolsets`` (only those that read if
    ``read_only``); every other tool is named in ``server.absent`` with the reason."""
    server.absent.update({old: f"replaced by {new}" for old, new in REPLACED.items()})
    add = registrar(server, toolsets, read_only)
    for tools in (catalog_reads, issue_tools, todo_tools, sweep_runs, sweep_steering,
                  deps_tools, history_tools, change_tools):
        tools(add, ops)


def registrar(server: CoordServer, toolsets: set[str], read_only: bool) -> Register:
    """The decorator each toolset's tools are registered with: a tool is served, or named
    in ``server.absent`` with why not (its toolset not chosen, or it writes and the server
    is --read-only)."""

    def add(toolset: str, annotations: ToolAnnotations,
            output: dict[str, Any]) -> Callable[[ToolBody], ToolBody]:
        def register(fn: ToolBody) -> ToolBody:
            if toolset not in toolsets:
                server.absent[fn.__name__] = f"its toolset {toolset} is not in --toolsets"
            elif read_only and not annotations.read_only_hint:
                server.absent[fn.__name__] = "it writes or runs, and this server is --read-only"
            else:
                server.add(fn, ToolDef(toolset, annotations, output))
            return fn
        return register
    return add


# -- catalog ---------------------------------------------------------------------------
def catalog_reads(add: Register, ops: Operations) -> None:
    """catalog: list and get issues, todos, plans, dependencies, repos."""

    @add("catalog", READS, ITEMS)
    def coord_list(
        kind: ListKind,
        status: Annotated[str | None, Field(description=LIST_STATUS)] = None,
        priority: Annotated[Priority | None, Field(description="issues")] = None,
        repo: Annotated[str | None, Field(description="issues, todos, plans")] = None,
        assignee: Annotated[str | None, Field(description="issues, todos")] = None,
        plan: Annotated[str | None, Field(description="todos: PLAN-n")] = None,
        consumer: Annotated[str | None, Field(description="dependencies")] = None,
        provider: Annotated[str | None, Field(description="dependencies")] = None,
        type: Annotated[DepType | None, Field(description="dependencies")] = None,
    ) -> JSONValue:
        """List issues, todos, plans or dependencies (`coord <kind> list --json`). A filter
        the kind does not take is an error."""
        return ops.list_kind(kind, status=status, priority=priority, repo=repo,
                             assignee=assignee, plan=plan, consumer=consumer,
                             provider=provider, type=type)

    @add("catalog", READS, GOT)
    def coord_get(
        id: Annotated[str | None, Field(description="ISSUE-n, TODO-n or PLAN-n "
                                                    "(its status)")] = None,
        repo: Annotated[str | None, Field(description="A repo: its status and "
                                                      "blockers")] = None,
    ) -> JSONValue:
        """One issue, todo, plan status or repo status (`show`/`status --json`)."""
        return ops.get(id=id, repo=repo)


def issue_tools(add: Register, ops: Operations) -> None:
    """catalog: create and change issues."""

    @add("catalog", CREATES, ISSUE)
    def coord_create_issue(
        title: str,
        repos: Ids = [],  # noqa: B006
        description: str = "",
        priority: Priority = "medium",
        severity: str = "",
        assignee: str | None = None,
        labels: Ids = [],  # noqa: B006
        target: Annotated[dt.date | None, Field(description="YYYY-MM-DD")] = None,
        depends_on: Annotated[Ids, Field(description="ISSUE-n it waits on")] = [],  # noqa: B006
    ) -> JSONValue:
        """Create an issue; returns it with its id."""
        return ops.create_issue(title, repos=repos, description=description, priority=priority,
                                severity=severity, assignee=assignee, labels=labels,
                                target=target, dependencies=depends_on)

    @add("catalog", READS, obj("issue", "suggestions", issue="string", suggestions="array"))
    def coord_suggest_assignee(issue_id: IssueId) -> JSONValue:
        """Who should take an issue: people ranked, with reasons."""
        return ops.suggest_assignee(issue_id)

    @add("catalog", CHANGES, ISSUE)
    def coord_update_issue(
        issue_id: IssueId,
        title: str | None = None,
        description: str | None = None,
        status: Annotated[IssueStatus | None, Field(description="closed closes it")] = None,
        priority: Priority | None = None,
        severity: str | None = None,
        assignee: Annotated[str | None, Field(description="'' clears")] = None,
        repos: Annotated[Ids | None, Field(description="Replaces")] = None,
        labels: Annotated[Ids | None, Field(description="Replaces")] = None,
        target: Annotated[dt.date | None, Field(description="YYYY-MM-DD")] = None,
    ) -> JSONValue:
        """Change the given fields of an issue."""
        return ops.update_issue(issue_id, title=title, description=description, status=status,
                                priority=priority, severity=severity, assignee=assignee,
                                repos=repos, labels=labels, target=target)


def todo_tools(add: Register, ops: Operations) -> None:
    """catalog: create and complete todos."""

    @add("catalog", CREATES, TODO)
    def coord_create_todo(
        task: str,
        repo: Annotated[str, Field(description="Its worker runs it")],
        run: Annotated[str | None, Field(description="Shell command")] = None,
        undo: Annotated[str | None, Field(description="Undoes it on rollback")] = None,
        plan: Annotated[str | None, Field(description="PLAN-n")] = None,
        blocked_by: Annotated[Ids, Field(description="TODO-n/ISSUE-n first")] = [],  # noqa: B006
        estimated_hours: Annotated[float | None, Field(ge=0)] = None,
        acceptance_criteria: Criteria = [],  # noqa: B006
        description: str = "",
        priority: Priority | None = None,
        assignee: str | None = None,
    ) -> JSONValue:
        """Create a todo; returns it with its id."""
        return ops.create_todo(task, repo, run=run, undo=undo, plan=plan, blocked_by=blocked_by,
                               estimate=estimated_hours,
                               criteria=[c if isinstance(c, str) else c.model_dump()
                                         for c in acceptance_criteria],
                               description=description, priority=priority, assignee=assignee)

    @add("catalog", CHANGES, TODO)
    def coord_complete_todo(
        todo_id: TodoId,
        hours: Annotated[float | None, Field(ge=0, description="Hours it took")] = None,
    ) -> JSONValue:
        """Mark a todo completed."""
        return ops.complete_todo(todo_id, hours=hours)


# -- sweeps ----------------------------------------------------------------------------
def sweep_runs(add: Register, ops: Operations) -> None:
    """sweeps: check a plan, start a sweep of a plan or of one todo."""

    @add("sweeps", READS, obj("plan", "ok", "findings", plan="string", ok="boolean",
                              findings="array"))
    def coord_validate_plan(
        plan_id: Annotated[str, Field(description="PLAN-n")],
        include_completed: bool = False,
        ignore_blockers: Annotated[bool, Field(description="Blockers as warnings")] = False,
    ) -> JSONValue:
        """Check a plan: cycles, unknown ids, missing commands, blockers."""
        return ops.validate_plan(plan_id, include_completed=include_completed,
                                 ignore_blockers=ignore_blockers)

    @add("sweeps", RUNS, STARTED)
    def coord_start_sweep(
        ctx: Context[Any, Any],
        plan_id: Annotated[str | None, Field(description="PLAN-n: its open todos")] = None,
        todo_id: Annotated[str | None, Field(description="TODO-n alone")] = None,
        dry_run: Annotated[bool, Field(description="Plan: levels, critical path; "
                                                   "run nothing")] = False,
        strategy: Annotated[Strategy | None, Field(description="Plan: levels "
                                                               "(default)")] = None,
        atomic: Annotated[bool, Field(description="Plan: roll back at the first "
                                                  "failure")] = False,
        wait: Wait = False,
        ignore_blockers: Annotated[bool, Field(description="Run despite outside "
                                                           "blockers")] = False,
    ) -> JSONValue:
        """Run a plan's open todos, or one todo, on their repos' workers. Returns the queued
        sweep, or its final status when it waited."""
        if (plan_id is None) == (todo_id is None):
            raise UsageError("give exactly one of plan_id or todo_id")
        if dry_run and (wait or atomic):
            raise UsageError("a dry run runs nothing: wait and atomic do not apply",
                             hint="drop them, or dry_run")
        if todo_id is not None:
            if dry_run or atomic or strategy is not None:
                raise UsageError("dry_run, strategy and atomic are for a plan's sweep",
                                 hint="a todo runs alone; pass plan_id for those")
            return ops.run_todo(todo_id, wait=wait, ignore_blockers=ignore_blockers,
                                progress=reporter(ctx))
        assert plan_id is not None
        return ops.start_sweep(plan_id, strategy=strategy or "levels", dry_run=dry_run,
                               wait=wait, ignore_blockers=ignore_blockers, atomic=atomic,
                               progress=reporter(ctx))


def sweep_steering(add: Register, ops: Operations) -> None:
    """sweeps: read, cancel and resume a sweep."""

    @add("sweeps", READS, SWEEP)
    def coord_get_sweep(sweep_id: SweepId) -> JSONValue:
        """A sweep and each todo's state (`coord sweep status --json`)."""
        return ops.get_sweep(sweep_id)

    @add("sweeps", STOPS, obj("sweep_id", "cancelled", cancelled="boolean"))
    def coord_cancel_sweep(sweep_id: SweepId) -> JSONValue:
        """Stop a sweep: revoke what is queued, end what runs."""
        return ops.cancel_sweep(sweep_id)

    @add("sweeps", RUNS, obj("sweep_id", sweep_id="string", rerun="array"))
    def coord_resume_sweep(
        ctx: Context[Any, Any],
        sweep_id: SweepId,
        only: Annotated[Ids | None, Field(description="These todos and their "
                                                      "dependents")] = None,
        dry_run: Annotated[bool, Field(description="Only show what would re-run")] = False,
        wait: Wait = False,
    ) -> JSONValue:
        """Re-run the todos of a sweep that did not succeed."""
        if dry_run and wait:
            raise UsageError("a dry run runs nothing: wait does not apply",
                             hint="drop wait, or dry_run")
        return ops.resume_sweep(sweep_id, only=only, dry_run=dry_run, wait=wait,
                                progress=reporter(ctx))


# -- deps ------------------------------------------------------------------------------
def deps_tools(add: Register, ops: Operations) -> None:
    """deps: run the dependency checks."""

    @add("deps", CHECKS, obj("ok", "results", ok="boolean", results="array"))
    def coord_check_dependencies(consumer: Repo = None) -> JSONValue:
        """Run the dependencies' validation commands, record satisfied/unsatisfied
        (`coord dep check --json`)."""
        return ops.check_dependencies(consumer=consumer)


# -- history ---------------------------------------------------------------------------
def history_tools(add: Register, ops: Operations) -> None:
    """history: a sweep's events, search, trends."""

    @add("history", READS, ITEMS)
    def coord_sweep_events(
        sweep_id: SweepId,
        limit: Annotated[int | None, Field(ge=1, description="The last N")] = None,
        todo: Annotated[str | None, Field(description="Only this todo's: TODO-n, an "
                                                      "instance TODO-n[REPO], or a template's "
                                                      "TODO-n for all its instances")] = None,
    ) -> JSONValue:
        """A sweep's events, oldest first (`coord events --sweep ID [--todo ID] --json`)."""
        return ops.sweep_events(sweep_id, limit=limit, todo=todo)

    @add("history", READS, ITEMS)
    def coord_search_history(
        text: Annotated[str, Field(description="In titles, ids, reasons, output tails, "
                                               "edits; \"\" for all")],
        repo: Repo = None,
        kind: HistoryKind | None = None,
        since: Annotated[str | None, Field(description="2026-11-01, 2026-11-01T09:30, "
                                                       "7d, 12h")] = None,
        limit: Annotated[int, Field(ge=1, le=1000, description="Newest first")] = 20,
    ) -> JSONValue:
        """Search ended sweeps' todo runs and catalog edits (`coord history search --json`)."""
        return ops.search_history(text, repo=repo, kind=kind, since=since, limit=limit)

    @add("history", READS, obj("repos", "todos", repos="object", todos="object"))
    def coord_trends(
        repo: Repo = None,
        days: Annotated[float, Field(gt=0, description="The last N days")] = 30.0,
    ) -> JSONValue:
        """Success rate, p50/p95 seconds per repo and todo, flakiest and slowest todos."""
        return ops.trends(repo=repo, days=days)


#: Reads a change's status: the forges of its pull requests too (rate limit minded).
READS_OUTSIDE = hints(reads_only=True, destroys=False, idempotent=True, outside=True)


def change_tools(add: Register, ops: Operations) -> None:
    """changes: a cross-repo change's status."""

    @add("changes", READS_OUTSIDE, obj("plan", "state", "landable", "repos", plan="string",
                                       state="string", landable="boolean", repos="object"))
    def coord_change_status(plan: Annotated[str, Field(description="PLAN-n (a change)")]
                            ) -> JSONValue:
        """A change's repos, pull requests (reviews, checks, mergeable) and every blocker
        (`coord change status PLAN --json`)."""
        return ops.change_status(plan)
