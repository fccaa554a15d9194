"""`coord plan`: list, show, validate, graph and sweep plans. Parse, call the planner, render.

Only `plan list` runs without networkx; every other command imports the
planner's graph modules inside the command, and Celery is never imported
here (a dry run needs queue names, not signatures).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from coordination.cli.issue import esc, styled
from coordination.cli.render import emit, fields, json_option, raw, say, table

PLAN_STATUSES = ("draft", "active", "completed", "cancelled")
include_all = click.option(
    "--all", "include_completed", is_flag=True,
    help="Include completed todos (by default only those not yet completed).",
)


def _catalog(obj: Any) -> Any:
    from coordination.catalog.store import CatalogStore

    return CatalogStore(obj.file).load()


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:g}h"


@click.group()
def plan() -> None:
    """Plans: list, show, validate, graph, sweep."""


@plan.command("list")
@click.option("--status", type=click.Choice(PLAN_STATUSES), help="Only plans with this status.")
@click.option("--repo", help="Only plans touching this repo.")
@json_option
@click.pass_obj
def list_cmd(obj: Any, status: str | None, repo: str | None, as_json: bool) -> None:
    """List plans with their todo counts."""
    from coordination.planner.listing import list_plans

    rows = list_plans(_catalog(obj), status=status, repo=repo)
    emit(as_json, rows, lambda rs: table(
        "Plans", ["id", "status", "title", "todos", "done", "milestones", "repos"],
        [(r["id"], styled(r["status"]), esc(r["title"]), r["todos"], r["completed"],
          r["milestones"], esc(", ".join(r["repos"]))) for r in rs],
        empty="no plans match"))


def _show_human(doc: dict[str, Any]) -> None:
    p = doc["plan"]
    fields(f"{p['id']}: {esc(p['title'])}", [
        ("status", styled(p["status"])), ("repos", esc(", ".join(p["repos"]))),
        ("description", esc(p["description"])),
        ("completion", esc("; ".join(p["completion_criteria"]))),
        ("todos", f"{len(doc['todos'])} ({len(doc['skipped'])} already completed, left out)"),
        ("hours", "unknown (cycle)" if doc["levels"] is None else
         f"{doc['total_hours']:g} total, {doc['critical_hours']:g} on the critical path"),
    ])
    table("Milestones", ["id", "title", "due", "todos"],
          [(m["id"], esc(m["title"]), m["due"], ", ".join(m["todos"]))
           for m in doc["milestones"]], empty="no milestones")
    table("Todos", ["id", "status", "repo", "level", "est", "crit", "task", "after"],
          [(t["id"], styled(t["status"]), esc(t["repo"]),
            "" if t["level"] is None else t["level"], _hours(t["estimated_hours"]),
            "*" if t["critical"] else "", esc(t["task"]), ", ".join(t["blocked_by"]))
           for t in doc["todos"]], empty="no todos")
    if doc["levels"] is None:
        say(f"[red]no levels:[/red] {esc(doc['problem'])}")
    else:
        for i, level in enumerate(doc["levels"]):
            say(f"level {i}: {', '.join(level)}")
        say(f"critical path ({doc['critical_hours']:g}h): "
            f"{' -> '.join(doc['critical_path']) or '(empty)'}")
    for b in doc["blockers"]:
        say(f"[magenta]blocked:[/magenta] {b['todo']} by {b['blocker']}: {esc(b['reason'])}")


@plan.command("show")
@click.argument("plan_id", metavar="PLAN")
@include_all
@json_option
@click.pass_obj
def show_cmd(obj: Any, plan_id: str, include_completed: bool, as_json: bool) -> None:
    """Show a plan: milestones, todos, levels and the critical path."""
    from coordination.planner.documents import show_document

    doc = show_document(_catalog(obj), plan_id, include_completed=include_completed)
    emit(as_json, doc, _show_human)


@plan.command("validate")
@click.argument("plan_id", metavar="PLAN")
@include_all
@click.option("--ignore-blockers", is_flag=True, help="Report blockers as warnings.")
@json_option
@click.pass_obj
def validate_cmd(obj: Any, plan_id: str, include_completed: bool, ignore_blockers: bool,
                 as_json: bool) -> None:
    """Check a plan: cycles, unknown ids and repos, missing commands, blockers.

    Exits 1 when an error is found; warnings (redundant edges, milestones of
    other plans) do not change the exit code.
    """
    from coordination.errors import ValidationFailed
    from coordination.planner.validate import validate_plan

    findings = validate_plan(_catalog(obj), plan_id, include_completed=include_completed,
                             ignore_blockers=ignore_blockers)
    n_err = sum(f.severity == "error" for f in findings)
    doc = {"plan": plan_id, "ok": n_err == 0, "errors": n_err,
           "warnings": len(findings) - n_err, "findings": [f.to_dict() for f in findings]}

    def human(d: dict[str, Any]) -> None:
        for f in d["findings"]:
            colour = "red" if f["severity"] == "error" else "yellow"
            say(f"[{colour}]{f['severity']}[/{colour}] {f['code']}: {esc(f['message'])}")
        verdict = "[green]valid[/green]" if d["ok"] else "[red]invalid[/red]"
        say(f"{plan_id}: {verdict} ({d['errors']} error(s), {d['warnings']} warning(s))")

    emit(as_json, doc, human)
    if n_err:
        raise ValidationFailed(f"plan {plan_id} has {n_err} error(s)")


@plan.command("graph")
@click.argument("plan_id", metavar="PLAN")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "text"]),
              default="text", show_default=True)
@include_all
@json_option
@click.pass_obj
def graph_cmd(obj: Any, plan_id: str, fmt: str, include_completed: bool, as_json: bool) -> None:
    """Draw a plan: todos grouped by repo, styled by status, critical path marked.

    \b
    Example:
      coord plan graph PLAN-001 --format mermaid > plan.mmd
    """
    from coordination.errors import PlanError
    from coordination.planner.analysis import analyze
    from coordination.planner.dag import build_plan_graph
    from coordination.planner.graph import RENDERERS, graph_data

    pg = build_plan_graph(_catalog(obj), plan_id, include_completed=include_completed)
    try:
        analysis = analyze(pg)
    except PlanError:
        analysis = None  # still drawn: seeing the cycle is the point
    emit(as_json, graph_data(pg, analysis), lambda _: raw(RENDERERS[fmt](pg, analysis)))


def _dry_run_human(doc: dict[str, Any]) -> None:
    say(f"dry run of {doc['plan']} ({doc['strategy']}): {doc['todos']} todo(s) in "
        f"{len(doc['levels'])} level(s); nothing enqueued")
    crit = set(doc["critical_path"])
    table("Levels", ["level", "todo", "queue", "crit"],
          [(i, tid, doc["queues"][tid], "*" if tid in crit else "")
           for i, level in enumerate(doc["levels"]) for tid in level], empty="nothing to run")
    say(f"critical path ({doc['critical_hours']:g}h of {doc['total_hours']:g}h): "
        f"{' -> '.join(doc['critical_path']) or '(empty)'}")
    for b in doc["blockers"]:
        say(f"[magenta]ignored blocker:[/magenta] {b['todo']} by {b['blocker']}: "
            f"{esc(b['reason'])}")
    if doc["skipped"]:
        say(f"skipped (already completed): {', '.join(doc['skipped'])}")


@plan.command("sweep")
@click.argument("plan_id", metavar="PLAN")
@click.option("--strategy", type=click.Choice(["levels", "eager"]), default="levels",
              show_default=True, help="levels: one chord per level; eager: no level barriers.")
@click.option("--dry-run", is_flag=True, help="Print what would run; enqueue nothing.")
@click.option("--wait", is_flag=True, help="Wait for the sweep to end (embedded mode always waits).")
@click.option("--ignore-blockers", is_flag=True, help="Run although blockers outside the plan "
              "are unsatisfied.")
@click.option("--require-workers", is_flag=True,
              help="Refuse (exit 2) when a repo of the plan has no live worker.")
@json_option
@click.pass_obj
def sweep_cmd(obj: Any, plan_id: str, strategy: str, dry_run: bool, wait: bool,
              ignore_blockers: bool, require_workers: bool, as_json: bool) -> None:
    """Run a plan's open todos on their repos' workers, or preview it with --dry-run.

    \b
    Examples:
      coord plan sweep PLAN-001 --dry-run
      coord plan sweep PLAN-001 --wait
    """
    if not dry_run:
        from coordination.sweeps import start_sweep

        code = start_sweep(obj.file, plan_id, strategy=strategy, wait=wait,
                           ignore_blockers=ignore_blockers, as_json=as_json,
                           require_workers=require_workers)
        if isinstance(code, int) and code:
            sys.exit(code)
        return
    from coordination.keys import Keys
    from coordination.planner.documents import dry_run_document
    from coordination.settings import get_settings

    doc = dry_run_document(_catalog(obj), plan_id, strategy=strategy,
                           ignore_blockers=ignore_blockers, keys=Keys(get_settings().namespace))
    emit(as_json, doc, _dry_run_human)
