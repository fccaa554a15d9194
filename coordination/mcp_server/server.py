"""The MCP server: coord's tools registered with the official SDK (``mcp``), served on stdio.

Each tool's result is one text block holding exactly the JSON document the
matching CLI command prints with ``--json`` (and, when that document is an
object, the same as structured content). A coord error becomes a tool error
(``isError``) whose text is coord's message and hint, with ``{"error", "hint",
"exit_code", "type"}`` as structured content.

``--read-only`` registers only the tools that neither write the catalog nor
run anything; the others are not listed at all.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Literal

import anyio
import click
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from coordination.cli.context import Context
from coordination.errors import CoordError
from coordination.jsonable import JSONValue, dumps
from coordination.mcp_server.operations import Operations
from coordination.mcp_server.stdio import serve_stdio
from coordination.runtime.preflight import unreachable

# Enum values the catalog accepts (tests/unit/cli/test_mcp.py checks them against the models).
IssueStatus = Literal["open", "in_progress", "resolved", "closed"]
TodoStatus = Literal["pending", "in_progress", "completed", "failed", "skipped", "blocked"]
PlanStatus = Literal["draft", "active", "completed", "cancelled"]
Priority = Literal["low", "medium", "high", "critical"]
DepType = Literal["runtime", "build", "dev", "test", "api"]
Strategy = Literal["levels", "eager"]
HistoryKind = Literal["todo", "sweep", "edit"]

IssueId = Annotated[str, Field(description="Issue id, e.g. ISSUE-001.")]
TodoId = Annotated[str, Field(description="Todo id, e.g. TODO-003.")]
PlanId = Annotated[str, Field(description="Plan id, e.g. PLAN-001.")]
SweepId = Annotated[str, Field(description="Sweep id, as returned when it started.")]
RepoName = Annotated[str, Field(description="Repo name from the catalog.")]
Wait = Annotated[bool, Field(
    description="Follow it to the end and sync the catalog (embedded mode always does).")]
IgnoreBlockers = Annotated[bool, Field(
    description="Run although blockers outside it are not done.")]

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                            open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                         open_world_hint=False)
RUNS = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False,
                       open_world_hint=True)


def result(doc: JSONValue) -> CallToolResult:
    """A tool's answer: the `--json` document as text, and structured when it is an object."""
    return CallToolResult(content=[TextContent(type="text", text=dumps(doc, pretty=False))],
                          structured_content=doc if isinstance(doc, dict) else None)


def error_result(exc: CoordError) -> CallToolResult:
    """A coord error as an MCP tool error: message and hint for the agent to act on."""
    return CallToolResult(
        content=[TextContent(type="text", text=f"error: {exc}")],
        structured_content={"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code,
                            "type": type(exc).__name__},
        is_error=True,
    )


def coord_errors(fn: Callable[..., JSONValue]) -> Callable[..., CallToolResult]:
    """Run a tool body; its document becomes the result, a coord error a tool error."""

    @functools.wraps(fn)
    def run(**kwargs: object) -> CallToolResult:
        try:
            return result(fn(**kwargs))
        except CoordError as exc:
            return error_result(exc)
        except Exception as exc:
            # Broker/Redis unreachable: coord's message (password redacted), as the CLI says it.
            mod = type(exc).__module__ or ""
            if mod.startswith(("redis", "kombu")) or "OperationalError" in type(exc).__name__:
                return error_result(unreachable(exc, os.environ.get("COORD_REDIS_URL", "")))
            raise

    return run


def _version() -> str:
    try:
        return version("coord")
    except PackageNotFoundError:  # a source tree that was never installed
        return ""


def build_server(ops: Operations, *, read_only: bool = False) -> MCPServer:
    """An MCP server offering coord's tools over ``ops`` (only the reading ones if
    ``read_only``)."""
    scope = f" Serves only repos {', '.join(sorted(ops.repos))}." if ops.repos else ""
    server: MCPServer = MCPServer(
        name="coord",
        instructions=("coord coordinates work across repositories: issues, todos, plans, "
                      "dependencies, and sweeps that run a plan's todos on their repos' "
                      f"workers. Results are coord's --json documents.{scope}"),
        version=_version(),
        log_level="WARNING",
    )

    def add(fn: Callable[..., JSONValue], kind: ToolAnnotations) -> None:
        if read_only and kind is not READ_ONLY:
            return
        server.add_tool(coord_errors(fn), name=fn.__name__, annotations=kind,
                        structured_output=False)

    # -- issues --------------------------------------------------------------------
    def coord_list_issues(
        status: Annotated[IssueStatus | None, Field(description="Only this status.")] = None,
        priority: Annotated[Priority | None, Field(description="Only this priority.")] = None,
        repo: Annotated[str | None, Field(description="Only issues naming this repo.")] = None,
        assignee: Annotated[str | None, Field(description="Only this assignee.")] = None,
    ) -> JSONValue:
        """List issues (`coord issue list --json`), optionally filtered."""
        return ops.list_issues(status=status, priority=priority, repo=repo, assignee=assignee)

    def coord_get_issue(issue_id: IssueId) -> JSONValue:
        """One issue (`coord issue show ID --json`)."""
        return ops.get_issue(issue_id)

    def coord_create_issue(
        title: Annotated[str, Field(description="One-line summary.")],
        repos: Annotated[list[str], Field(description="Affected repos.")] = [],  # noqa: B006
        description: Annotated[str, Field(description="Longer text.")] = "",
        priority: Priority = "medium",
        severity: Annotated[str, Field(description="Free text, e.g. security.")] = "",
        assignee: Annotated[str | None, Field(description="Who owns it.")] = None,
        labels: Annotated[list[str], Field(description="Labels.")] = [],  # noqa: B006
        target: Annotated[dt.date | None, Field(description="Target date, YYYY-MM-DD.")] = None,
        depends_on: Annotated[list[str], Field(description="Issue ids it waits on.")] = [],  # noqa: B006
    ) -> JSONValue:
        """Create an issue; returns it with its new id (`coord issue create --json`)."""
        return ops.create_issue(title, repos=repos, description=description, priority=priority,
                                severity=severity, assignee=assignee, labels=labels,
                                target=target, dependencies=depends_on)

    def coord_update_issue(
        issue_id: IssueId,
        title: Annotated[str | None, Field(description="New title.")] = None,
        description: Annotated[str | None, Field(description="New description.")] = None,
        status: Annotated[IssueStatus | None, Field(description="New status.")] = None,
        priority: Annotated[Priority | None, Field(description="New priority.")] = None,
        severity: Annotated[str | None, Field(description="New severity.")] = None,
        assignee: Annotated[str | None, Field(description="New assignee ('' clears).")] = None,
        repos: Annotated[list[str] | None, Field(description="Replace the repos.")] = None,
        labels: Annotated[list[str] | None, Field(description="Replace the labels.")] = None,
        target: Annotated[dt.date | None, Field(description="New target, YYYY-MM-DD.")] = None,
    ) -> JSONValue:
        """Change the given fields of an issue (`coord issue update --json`)."""
        return ops.update_issue(issue_id, title=title, description=description, status=status,
                                priority=priority, severity=severity, assignee=assignee,
                                repos=repos, labels=labels, target=target)

    def coord_close_issue(issue_id: IssueId) -> JSONValue:
        """Close an issue (`coord issue close ID --json`)."""
        return ops.close_issue(issue_id)

    # -- todos ---------------------------------------------------------------------
    def coord_list_todos(
        status: Annotated[TodoStatus | None, Field(description="Only this status.")] = None,
        repo: Annotated[str | None, Field(description="Only this repo's todos.")] = None,
        assignee: Annotated[str | None, Field(description="Only this assignee.")] = None,
        plan: Annotated[str | None, Field(description="Only this plan's todos.")] = None,
    ) -> JSONValue:
        """List todos (`coord todo list --json`), optionally filtered."""
        return ops.list_todos(status=status, repo=repo, assignee=assignee, plan=plan)

    def coord_get_todo(todo_id: TodoId) -> JSONValue:
        """One todo (`coord todo show ID --json`)."""
        return ops.get_todo(todo_id)

    def coord_create_todo(
        task: Annotated[str, Field(description="What to do, one line.")],
        repo: Annotated[str, Field(description="The repo whose worker runs it.")],
        run: Annotated[str | None, Field(description="Shell command run in the repo.")] = None,
        undo: Annotated[str | None, Field(description="Command undoing it on rollback.")] = None,
        plan: Annotated[str | None, Field(description="Plan it belongs to.")] = None,
        blocked_by: Annotated[list[str], Field(  # noqa: B006
            description="Todo/issue ids that must finish first.")] = [],
        estimate: Annotated[float | None, Field(ge=0, description="Estimated hours.")] = None,
        criteria: Annotated[list[str], Field(  # noqa: B006
            description="Acceptance criteria.")] = [],
        description: Annotated[str, Field(description="Longer text.")] = "",
        priority: Priority | None = None,
        assignee: Annotated[str | None, Field(description="Who owns it.")] = None,
    ) -> JSONValue:
        """Create a todo; returns it with its new id (`coord todo create --json`)."""
        return ops.create_todo(task, repo, run=run, undo=undo, plan=plan, blocked_by=blocked_by,
                               estimate=estimate, criteria=criteria, description=description,
                               priority=priority, assignee=assignee)

    def coord_complete_todo(
        todo_id: TodoId,
        hours: Annotated[float | None, Field(ge=0, description="Hours it took.")] = None,
    ) -> JSONValue:
        """Mark a todo completed (`coord todo complete ID --json`)."""
        return ops.complete_todo(todo_id, hours=hours)

    # -- plans ---------------------------------------------------------------------
    def coord_list_plans(
        status: Annotated[PlanStatus | None, Field(description="Only this status.")] = None,
        repo: Annotated[str | None, Field(description="Only plans touching this repo.")] = None,
    ) -> JSONValue:
        """List plans with progress (`coord plan list --json`)."""
        return ops.list_plans(status=status, repo=repo)

    def coord_plan_status(plan_id: PlanId) -> JSONValue:
        """Todos by status, milestones, completion (`coord plan status PLAN --json`)."""
        return ops.plan_status(plan_id)

    def coord_validate_plan(
        plan_id: PlanId,
        include_completed: Annotated[bool, Field(description="Check completed todos too.")] = False,
        ignore_blockers: Annotated[bool, Field(description="Blockers as warnings.")] = False,
    ) -> JSONValue:
        """Check a plan: cycles, unknown ids, missing commands, blockers; `ok` false on
        an error (`coord plan validate --json`)."""
        return ops.validate_plan(plan_id, include_completed=include_completed,
                                 ignore_blockers=ignore_blockers)

    # -- dependencies and repos ----------------------------------------------------
    def coord_list_dependencies(
        consumer: Annotated[str | None, Field(description="Only this consumer repo.")] = None,
        provider: Annotated[str | None, Field(description="Only this provider repo.")] = None,
        type: Annotated[DepType | None, Field(description="Only this type.")] = None,
    ) -> JSONValue:
        """List dependencies between repos (`coord dep list --json`)."""
        return ops.list_dependencies(consumer=consumer, provider=provider, type=type)

    def coord_check_dependencies(
        consumer: Annotated[str | None, Field(description="Only this repo's.")] = None,
    ) -> JSONValue:
        """Run the validation commands and record satisfied/unsatisfied in the catalog
        (`coord dep check --json`)."""
        return ops.check_dependencies(consumer=consumer)

    def coord_get_repo_status(repo: RepoName) -> JSONValue:
        """One repo: open issues, todos, dependencies, blockers (`coord repo status --json`)."""
        return ops.repo_status(repo)

    def coord_get_blocking_issues(repo: RepoName) -> JSONValue:
        """What blocks a repo: dependencies, issues, todos (`coord repo blocking --json`)."""
        return ops.blocking(repo)

    # -- sweeps --------------------------------------------------------------------
    def coord_start_sweep(
        plan_id: PlanId,
        dry_run: Annotated[bool, Field(description="Only show levels, queues, critical "
                                                   "path; run nothing.")] = False,
        strategy: Annotated[Strategy, Field(description="levels: level by level; eager: "
                                                        "as soon as predecessors succeed.")] = "levels",
        wait: Wait = False,
        ignore_blockers: IgnoreBlockers = False,
        atomic: Annotated[bool, Field(description="Roll back at the first failure.")] = False,
    ) -> JSONValue:
        """Run a plan's open todos on their repos' workers (`coord plan sweep --json`).
        Returns the queued sweep, or, when it waited, its final status."""
        return ops.start_sweep(plan_id, strategy=strategy, dry_run=dry_run, wait=wait,
                               ignore_blockers=ignore_blockers, atomic=atomic)

    def coord_run_todo(todo_id: TodoId, wait: Wait = False,
                       ignore_blockers: IgnoreBlockers = False) -> JSONValue:
        """Run one todo as a one-todo sweep (`coord todo run ID --json`)."""
        return ops.run_todo(todo_id, wait=wait, ignore_blockers=ignore_blockers)

    def coord_get_sweep(sweep_id: SweepId) -> JSONValue:
        """A sweep and each todo's state (`coord sweep status ID --json`)."""
        return ops.get_sweep(sweep_id)

    def coord_cancel_sweep(sweep_id: SweepId) -> JSONValue:
        """Stop a sweep: revoke what is queued, end what runs (`coord sweep cancel`)."""
        return ops.cancel_sweep(sweep_id)

    def coord_resume_sweep(
        sweep_id: SweepId,
        only: Annotated[list[str] | None, Field(
            description="Re-run only these todos and their dependents.")] = None,
        dry_run: Annotated[bool, Field(description="Only show what would re-run.")] = False,
        wait: Wait = False,
    ) -> JSONValue:
        """Re-run the todos of a sweep that did not succeed (`coord sweep resume --json`)."""
        return ops.resume_sweep(sweep_id, only=only, dry_run=dry_run, wait=wait)

    def coord_sweep_events(
        sweep_id: SweepId,
        limit: Annotated[int | None, Field(ge=1, description="Only the last N events.")] = None,
    ) -> JSONValue:
        """A sweep's events, oldest first (`coord events --sweep ID --json`)."""
        return ops.sweep_events(sweep_id, limit=limit)

    # -- history -------------------------------------------------------------------
    def coord_search_history(
        text: Annotated[str, Field(description="Found in todo titles and ids, reasons, "
                                               "output tails, catalog edits; \"\" for all.")],
        repo: Annotated[str | None, Field(description="Only what concerns this repo.")] = None,
        kind: Annotated[HistoryKind | None, Field(description="todo runs, sweep runs or "
                                                              "catalog edits.")] = None,
        since: Annotated[str | None, Field(description="2026-11-01, 2026-11-01T09:30 (UTC), "
                                                       "or 7d / 12h ago.")] = None,
        limit: Annotated[int, Field(ge=1, le=1000, description="At most this many, newest "
                                                               "first.")] = 20,
    ) -> JSONValue:
        """Search the history of ended sweeps and catalog edits (`coord history search --json`)."""
        return ops.search_history(text, repo=repo, kind=kind, since=since, limit=limit)

    def coord_trends(
        repo: Annotated[str | None, Field(description="Only this repo's todos.")] = None,
        days: Annotated[float, Field(gt=0, description="Over the last N days.")] = 30.0,
    ) -> JSONValue:
        """Success rate and p50/p95 seconds per repo and per todo, the flakiest and slowest
        todos (`coord history trends --json`)."""
        return ops.trends(repo=repo, days=days)

    for fn, kind in (
        (coord_list_issues, READ_ONLY), (coord_get_issue, READ_ONLY),
        (coord_create_issue, WRITES), (coord_update_issue, WRITES), (coord_close_issue, WRITES),
        (coord_list_todos, READ_ONLY), (coord_get_todo, READ_ONLY),
        (coord_create_todo, WRITES), (coord_complete_todo, WRITES),
        (coord_list_plans, READ_ONLY), (coord_plan_status, READ_ONLY),
        (coord_validate_plan, READ_ONLY),
        (coord_list_dependencies, READ_ONLY), (coord_check_dependencies, RUNS),
        (coord_get_repo_status, READ_ONLY), (coord_get_blocking_issues, READ_ONLY),
        (coord_start_sweep, RUNS), (coord_get_sweep, READ_ONLY), (coord_run_todo, RUNS),
        (coord_cancel_sweep, RUNS), (coord_resume_sweep, RUNS), (coord_sweep_events, READ_ONLY),
        (coord_search_history, READ_ONLY), (coord_trends, READ_ONLY),
    ):
        add(fn, kind)
    return server


@click.command("mcp")
@click.option("--read-only", is_flag=True,
              help="Offer only tools that read: none that writes the catalog or runs anything.")
@click.option("--repo", "repos", multiple=True, metavar="R",
              help="Serve only this repo (repeat for more): lists filtered, others refused.")
@click.pass_obj
def mcp(obj: Context, read_only: bool, repos: tuple[str, ...]) -> None:
    """Serve coord's tools to an agent over MCP on stdio (stdout is the protocol).

    \b
    Examples:
      coord --file ecosystem.yaml mcp
      coord mcp --read-only --repo api --repo web
    """
    ops = Operations(Path(obj.file), repos)
    ops.check_repos()  # a bad --repo or catalog: exit 2 before serving
    # Not ``.run("stdio")``: coord's stdin answers the requests the SDK would drop (stdio.py).
    anyio.run(serve_stdio, build_server(ops, read_only=read_only))
