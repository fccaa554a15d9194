"""`coord plan`: list, show, status, validate, graph and sweep plans.
Parse, call the planner (or :mod:`coordination.catalog.reads.reports`), render.

Only `plan list` and `plan status` run without the planner's graph modules; every
other command imports them inside the command, and Celery is never imported
here (a dry run needs queue names, not signatures). Nor are the catalog's models
(pydantic) at import: `plan sweep` reads a view of the cached catalog
(:func:`coordination.catalog.reads.cached.sweep_catalog`) and the other commands load
the models when they run.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import click

from coordination.catalog.file.cache import paused_gc
from coordination.catalog.enums import TodoStatus
from coordination.catalog.selection.templates import (
    Problems, TemplateDoc, load_planned, plan_warnings, planned_for)
from coordination.cli import plan_edit, plan_optimize
from coordination.cli.context import Context, nothing_recorded
from coordination.cli.options import order_options
from coordination.cli.render import (
    console,
    emit,
    err_console,
    esc,
    fields,
    json_and_context,
    raw,
    say,
    spans,
    split_list,
    styled,
    table,
)
from coordination.errors import CoordError, PlanError, UsageError, ValidationFailed
from coordination.names import some
from coordination.jsonable import JSONValue
from coordination.errors import OperationFailed
from coordination.keys import Keys
from coordination.ui import DEFAULT_PORT

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog
    from coordination.catalog.reads.reports import PlanStatus
    from coordination.planner.listing import PlanRow
    from coordination.catalog.edits.plan_reset import PlanReset
    from coordination.planner.documents import DryRunDocument, ShowDocument, ValidateDocument
    from coordination.sweeps.starts.triggers import Trigger

# The commands that need the plan's graph import the planner's graph modules inside:
# `plan list` and `plan status` never load them.

PLAN_STATUSES = ("draft", "active", "completed", "cancelled")
include_all = click.option(
    "--all", "include_completed", is_flag=True,
    help="Include completed todos (by default only those not yet completed).",
)


def _catalog(obj: Context, plan_id: str) -> Catalog:
    """The catalog as the planner sees it: templates (``for_each:``) expanded into
    their instances (``TODO-010[api]``), as a sweep (and MCP) expands them; refused
    for a problem of ``plan_id`` (a template of it selecting nothing), never for
    another plan's."""
    return planned_for(obj.file, plan_id)[1]


def _strs(value: JSONValue) -> list[str]:
    """A list field of a plan's JSON as text (a checked criterion: its text)."""
    if not isinstance(value, list):
        return []
    return [str(v.get("text")) if isinstance(v, dict) else str(v) for v in value]


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:g}h"


@click.group()
def plan() -> None:
    """Plans: list, show, status, validate, graph, sweep, reset, create, update, delete, optimize.

    \b
    Examples:
      coord plan status PLAN-001
      coord plan sweep PLAN-001 --wait
      coord plan create --title "Python 3.14" --repos libcore,api
    """


@plan.command("list")
@click.option("--status", type=click.Choice(PLAN_STATUSES), help="Only plans with this status.")
@click.option("--repo", help="Only plans touching this repo.")
@json_and_context
def list_cmd(obj: Context, status: str | None, repo: str | None, as_json: bool) -> None:
    """List plans with their progress (todos completed of all the plan's todos).

    \b
    Example:
      coord plan list --status active --json
    """
    # lazy: the plans' progress reads the models (pydantic), plan list only
    from coordination.planner.listing import list_plans

    problems: Problems = {}  # one plan's problem is said in its row, never fatal to all
    _, cat = load_planned(obj.file, problems=problems)
    rows = list_plans(cat, status=status, repo=repo, problems=problems)  # a template: its instances
    emit(as_json, rows, _list_human)


def _list_human(rows: list[PlanRow]) -> None:
    """The plans' table; a plan with a problem says it under the table (the other
    columns count what could be expanded)."""
    table("Plans", ["id", "status", "title", "progress", "milestones", "repos"],
          [(esc(r["id"]), styled(r["status"]), esc(r["title"]),
            _progress(r["progress"]["completed"], r["progress"]["total"], width=5,
                      percent=False) + (" [red]![/red]" if r["problems"] else ""),
            r["milestones"], esc(", ".join(r["repos"]))) for r in rows],
          empty="no plans match")
    for r in rows:
        for line in r["problems"]:
            say(f"[red]{esc(r['id'])}:[/red] {esc(line)}")


def _bar(done: int, total: int, width: int) -> str:
    """A text progress bar in Rich markup (``━`` on a UTF-8 console, ``#``/``-`` else)."""
    utf8 = (console().encoding or "").lower().replace("-", "").startswith("utf8")
    full, rest = ("━", "━") if utf8 else ("#", "-")
    n = round(width * done / total) if total else 0
    if done < total:
        n = min(n, width - 1)  # a bar only looks full when it is
    bar = f"[green]{full * n}[/green]" if n else ""
    return bar + (f"[dim]{rest * (width - n)}[/dim]" if n < width else "")


def _progress(done: int, total: int, *, width: int = 20, percent: bool = True) -> str:
    """``━━━━━━━━━━ 3/5 (60%)``; a plan without todos says so."""
    if not total:
        return "[dim]no todos[/dim]"
    pct = f" ({100 * done // total}%)" if percent else ""
    return f"{_bar(done, total, width)} {done}/{total}{pct}"


MILESTONE_STYLE = {"done": "green", "open": "cyan", "overdue": "bold red"}


def _status_human(doc: PlanStatus) -> None:
    counts = doc["todos"]
    total = counts["total"]
    verdict = ("[green]yes[/green]" if doc["complete"] else
               "no (it has a problem, below)" if doc["problems"] else
               "no (the plan has no todos)" if not total else
               f"no ({total - counts['completed']} of {total} todos not completed)")
    fields(f"{esc(doc['plan'])}: {esc(doc['title'])}", [
        ("status", styled(doc["status"])),
        ("progress", _progress(counts["completed"], total)),
        ("todos", ", ".join(f"{n} {styled(s)}" for s, n in counts.items()
                            if s != "total" and n)),
        ("complete", verdict),
        *([("due", doc["due"] + (" [red]overdue[/red]" if doc["overdue"] else ""))]
          if doc["due"] else []),
        *[("[red]problem[/red]", esc(line)) for line in doc["problems"]],
    ])
    table(f"Milestones (as of {doc['as_of']})", ["id", "title", "due", "state", "done"],
          [(esc(m["id"]), esc(m["title"]), m["due"] or "-",
            f"[{MILESTONE_STYLE[m['status']]}]{m['status']}[/{MILESTONE_STYLE[m['status']]}]",
            f"{m['completed']}/{len(m['todos'])}") for m in doc["milestones"]],
          empty="no milestones")
    if doc["completion_criteria"]:
        say("[bold]Completion criteria[/bold]")
        checked = {c["criterion"]: c for c in doc["checks"]}
        for text in doc["completion_criteria"]:
            c = checked.get(text)
            if c is None:
                say(f"  - {esc(text)}")
                continue
            state = ("[yellow]not checked[/yellow]" if c["ok"] is None else
                     "[green]passed[/green]" if c["ok"] else "[red]failed[/red]")
            when = f" at {esc(c['at'])}" if c["at"] else ""
            why = f": {esc(c['reason'])}" if c["ok"] is False and c["reason"] else ""
            say(f"  - {esc(text)} (check: {esc(c['check'])}) {state}{when}{why}")
    if doc["remaining"]:
        table("Not completed", ["id", "status", "repo", "task"],
              [(esc(t["id"]), styled(t["status"]) + (" [red]overdue[/red]" if t["overdue"]
                                                       else ""), esc(t["repo"]), esc(t["task"]))
               for t in doc["remaining"]])


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@plan.command("status")
@click.argument("plan_id", metavar="PLAN")
@click.option("--as-of", "as_of", metavar="DATE", callback=_date,
              help="Judge milestones overdue as of this day (YYYY-MM-DD; default today).")
@click.option("--check", "run_checks", is_flag=True,
              help="Run the plan's criteria checks (commands from the catalog, in its "
                   "directory) and record their results; exit 1 if one fails.")
@json_and_context
def status_cmd(obj: Context, plan_id: str, as_of: dt.date | None, run_checks: bool,
               as_json: bool) -> None:
    """How far a plan has got: todos by status, milestones done, open or overdue,
    completion criteria with their checks' last results, and whether it is complete
    (every todo completed and every check passed).

    \b
    Example:
      coord plan status PLAN-001 --json
      coord plan status PLAN-001 --check
    """
    from coordination.catalog.runs import criteria  # lazy: subprocess runner, status only
    from coordination.catalog.reads.reports import plan_status  # lazy: the models (pydantic)

    problems: Problems = {}  # another plan's problem does not stop this one's status
    raw, cat = load_planned(obj.file, problems=problems)
    if run_checks:
        plan = raw.plan(plan_id)
        if plan is not None:  # (unknown: plan_status below says so, with suggestions)
            from coordination.catalog.file.store import CatalogStore  # lazy: the models

            criteria.record(CatalogStore(obj.file), plan_id, criteria.run_checks(obj.file, plan))
    results = criteria.read_results(obj.file).get(plan_id, [])
    doc = plan_status(cat, plan_id, today=as_of, problems=problems, results=results)
    if run_checks and doc["complete"] and doc["checks"] and doc["status"] in ("draft",
                                                                             "active"):
        # Every todo completed and now every check passes: the plan is completed (what
        # the sync that found a check failing left to do), one audited edit.
        obj.manager.plans.update(plan_id, status="completed")
        doc["status"] = "completed"
    emit(as_json, doc, _status_human)
    failed = [c["criterion"] for c in doc["checks"] if c["ok"] is False]
    if run_checks and failed:
        raise OperationFailed(f"plan {plan_id}: {len(failed)} criterion check(s) failed: "
                              + "; ".join(failed),
                              hint="see each check's reason in `coord plan status "
                                   f"{plan_id} --json` (checks)")
    if doc["problems"]:  # a validation problem: said, and exit 1
        more = len(doc["problems"]) - 1
        raise ValidationFailed(f"plan {plan_id} cannot be planned now: {doc['problems'][0]}"
                               + (f" (and {more} more problem(s))" if more else ""),
                               hint="fix the template's for_each (see `coord repo list "
                               "--repos SELECTOR`), or take the todo out of the plan")


def _show_human(doc: ShowDocument) -> None:
    p = doc["plan"]
    fields(f"{esc(p['id'])}: {esc(p['title'])}", [
        ("status", styled(str(p["status"]))), ("repos", esc(", ".join(_strs(p["repos"])))),
        ("description", esc(p["description"])),
        ("completion", esc("; ".join(_strs(p["completion_criteria"])))),
        ("todos", f"{len(doc['todos'])} ({len(doc['skipped'])} already completed, left out)"),
        ("hours", "unknown (cycle)" if doc["levels"] is None else
         f"{doc['total_hours']:g} total, {doc['critical_hours']:g} on the critical path"),
    ])
    table("Milestones", ["id", "title", "due", "todos"],
          [(esc(m["id"]), esc(m["title"]), m["due"], esc(", ".join(_strs(m["todos"]))))
           for m in doc["milestones"]], empty="no milestones")
    table("Todos", ["id", "status", "repo", "level", "est", "crit", "task", "after"],
          [(esc(t["id"]), styled(t["status"]), esc(t["repo"]),
            "" if t["level"] is None else t["level"], _hours(t["estimated_hours"]),
            "*" if t["critical"] else "", esc(t["task"]), esc(", ".join(t["blocked_by"])))
           for t in doc["todos"]], empty="no todos")
    if doc["levels"] is None:
        say(f"[red]no levels:[/red] {esc(doc['problem'])}")
    else:
        for i, level in enumerate(doc["levels"]):
            say(f"level {i}: {esc(', '.join(level))}")
        say(f"critical path ({doc['critical_hours']:g}h): "
            f"{esc(' -> '.join(doc['critical_path'] or ())) or '(empty)'}")
    for b in doc["blockers"]:
        say(f"[magenta]blocked:[/magenta] {esc(b['todo'])} by {esc(b['blocker'])}: "
            f"{esc(b['reason'])}")


@plan.command("show")
@click.argument("plan_id", metavar="PLAN")
@include_all
@json_and_context
def show_cmd(obj: Context, plan_id: str, include_completed: bool, as_json: bool) -> None:
    """Show a plan: milestones, todos, levels and the critical path.

    \b
    Example:
      coord plan show PLAN-001 --all
    """
    from coordination.planner.documents import show_document  # lazy: the planner's graph modules, off plan list/status

    doc = show_document(_catalog(obj, plan_id), plan_id, include_completed=include_completed)
    emit(as_json, doc, _show_human)


#: Findings of one kind (code) `plan validate` prints before it only counts the rest.
SHOWN_PER_KIND = 5


def _validate_human(d: ValidateDocument, *, every: bool) -> None:
    """Each kind of finding with its first SHOWN_PER_KIND examples and a count of the rest
    (every one with ``every``), errors first; then the verdict."""
    groups: dict[tuple[str, str], list[str]] = {}
    for f in d["findings"]:
        groups.setdefault((f["severity"], f["code"]), []).append(f["message"])
    rows: list[list[tuple[str, str]]] = []
    for (sev, code), messages in groups.items():
        colour = "red" if sev == "error" else "yellow"
        shown = messages if every else messages[:SHOWN_PER_KIND]
        rows.extend([(sev, colour), (f" {code}: {m}", "")] for m in shown)
        if len(shown) < len(messages):
            rows.append([(sev, colour), (f" {code}: {len(messages) - len(shown):,} more, "
                                         f"{len(messages):,} in all (--all-findings lists "
                                         "every one)", "dim")])
    spans(rows)
    verdict = "[green]valid[/green]" if d["ok"] else "[red]invalid[/red]"
    say(f"{esc(d['plan'])}: {verdict} ({d['errors']} error(s), {d['warnings']} warning(s))")


@plan.command("validate")
@click.argument("plan_id", metavar="PLAN")
@include_all
@click.option("--ignore-blockers", is_flag=True, help="Report blockers as warnings.")
@click.option("--all-findings", "every", is_flag=True,
              help=f"Print every finding (by default the first {SHOWN_PER_KIND} of each kind "
              "and a count of the rest; --json always has every one).")
@click.option("--order-by", "order_by", default=None, metavar="TYPES",
              help="As `plan sweep --order-by`: the dependency types that order deps: follow "
              "templates' instances, whose cycles are reported (default the catalog's "
              "order.by).")
@click.option("--cycles", type=click.Choice(["group", "error"]), default=None,
              help="As `plan sweep --cycles`: group reports each cycle of a deps: follow "
              "template as a dependency-cycle warning, error as an error (exit 1). Default: "
              "the catalog's order.cycles (group).")
@json_and_context
def validate_cmd(obj: Context, plan_id: str, include_completed: bool, ignore_blockers: bool,
                 every: bool, order_by: str | None, cycles: str | None, as_json: bool) -> None:
    """Check a plan: cycles, unknown ids and repos, missing commands, blockers.

    Exits 1 when an error is found; warnings (redundant edges, milestones of
    other plans) do not change the exit code. Each kind of finding is printed
    with its first examples and a count; --all-findings prints every one.

    \b
    Example:
      coord plan validate PLAN-001 --all-findings
      coord plan validate PLAN-001 --order-by runtime,dev --cycles error
    """
    from coordination.catalog.selection.ordering import overriding  # lazy: off plan list/status
    from coordination.catalog.file.store import CatalogStore  # lazy: the models (pydantic)
    # lazy: the planner's graph modules, off plan list/status
    from coordination.planner.documents import validate_document

    flags = order_by is not None or cycles is not None  # else no second load: the catalog's
    with paused_gc(), (overriding(CatalogStore(obj.file).load(), order_by, cycles) if flags
                       else nullcontext()):
        problems: Problems = {}  # the plan's: error findings; another plan's: none of its
        groups: list[str] = []  # deps: follow templates' cycle groups: warnings
        raw, catalog = load_planned(obj.file, problems=problems, warnings=groups)
        doc = validate_document(catalog, plan_id, include_completed=include_completed,
                                ignore_blockers=ignore_blockers, written=raw,
                                problems=problems, cycles=plan_warnings(raw, groups, plan_id))
    n_err = doc["errors"]
    emit(as_json, doc, lambda d: _validate_human(d, every=every))
    if n_err:
        raise ValidationFailed(f"plan {plan_id} has {n_err} error(s)")


@plan.command("graph")
@click.argument("plan_id", metavar="PLAN")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "text"]),
              default="text", show_default=True,
              help="Mermaid or Graphviz dot source, or the levels as text.")
@include_all
@json_and_context
def graph_cmd(obj: Context, plan_id: str, fmt: str, include_completed: bool, as_json: bool) -> None:
    """Draw a plan: todos grouped by repo, styled by status, critical path marked.

    \b
    Example:
      coord plan graph PLAN-001 --format mermaid > plan.mmd
    """
    from coordination.planner import analysis, dag, graph  # lazy: the planner's graph modules, off plan list/status

    pg = dag.build_plan_graph(_catalog(obj, plan_id), plan_id,
                              include_completed=include_completed)
    found: analysis.Analysis | None
    try:
        found = analysis.analyze(pg)
    except PlanError:
        found = None  # still drawn: seeing the cycle is the point
    emit(as_json, graph.graph_data(pg, found), lambda _: raw(graph.RENDERERS[fmt](pg, found)))


def _all_completed(catalog: Catalog, plan_id: str) -> bool:
    """Has the plan todos, and is every one completed (a sweep has nothing to run)?"""
    todos = catalog.plan_todos(plan_id)
    return bool(todos) and all(t.status == TodoStatus.completed for t in todos)


def _span(hours: float) -> str:
    """A duration for people: ``0.3s``, ``45s``, ``12.5m``, ``3.25h``."""
    secs = hours * 3600
    if secs < 10:
        return f"{secs:.1f}".removesuffix(".0") + "s"
    if secs < 60:
        return f"{secs:.0f}s"
    if secs < 3600:
        return f"{secs / 60:.1f}".removesuffix(".0") + "m"
    return f"{hours:.2f}".rstrip("0").rstrip(".") + "h"


def _estimate_human(doc: DryRunDocument) -> None:
    """Both strategies' critical-path estimates, and where their figures came from."""
    est = doc["strategy_estimate"]
    if not doc["todos"]:
        return
    if not est["hours"]:
        say("estimate: unknown (no todo has estimated_hours or a recorded run; "
            "`coord todo update ID --estimate H` sets one)")
        return
    eager, levels = est["eager_hours"], est["levels_hours"]
    gain = (f"eager saves {_span(levels - eager)} ({100 * (levels - eager) / levels:.0f}%)"
            if levels > eager else "no difference")
    say(f"estimate (critical path, every todo starting when its strategy lets it): "
        f"eager {_span(eager)}, levels {_span(levels)}; {gain}")
    sources = [f"{est['from_estimate']} todo(s) from estimated_hours",
               f"{est['from_history']} from the p50 of their recorded runs"]
    unknown = est["unknown"]
    if unknown:
        sources.append(f"{len(unknown)} todo(s) with no figure, counted 0 (so both are "
                       f"lower bounds): {esc(some(unknown))}")
    say(f"  figures: {'; '.join(sources)}")


def _templates_human(templates: list[TemplateDoc]) -> None:
    """Each template: the repos it selected, how many instances, what each repo gets."""
    for t in templates:
        deps = ", deps: follow (instances wait for their repo's providers')" if t["deps"] else ""
        say(f"template {esc(t['id'])} (for_each {esc(repr(t['for_each']))}{deps}): "
            f"{t['count']} instance(s) over {esc(some(t['repos'], 20))}")
        if t["branch"] is not None:
            for i in t["instances"]:
                after = f" after {esc(', '.join(i['after']))}" if i["after"] else ""
                what = (f"commits {esc(repr(i['commit']))} on branch {esc(t['branch'])}"
                        if i["commit"] else f"runs on branch {esc(t['branch'])}, no commit")
                say(f"  {esc(i['repo'])}: {esc(i['id'])} {what}{after}")


def _dry_run_human(doc: DryRunDocument) -> None:
    again = ", again: completed todos too" if doc["again"] else ""
    again += ", sequential: one todo at a time" if doc.get("sequential") else ""
    say(f"dry run of {esc(doc['plan'])} ({doc['strategy']}{again}): {doc['todos']} todo(s) in "
        f"{len(doc['levels'])} level(s); nothing enqueued")
    _templates_human(doc.get("templates") or [])
    for f in doc.get("warnings") or []:  # as `plan validate` warns
        say(f"[yellow]warning[/yellow] {f['code']}: {esc(f['message'])}")
    crit = set(doc["critical_path"])
    place = {t: i + 1 for todos in doc["start_order"].values() for i, t in enumerate(todos)}
    table("Levels", ["level", "todo", "queue", "priority", "left h", "start #", "crit"],
          [(i, esc(tid), esc(doc["queues"][tid]), styled(doc["priority"][tid]),
            f"{doc['remaining_hours'][tid]:g}", place.get(tid, ""), "*" if tid in crit else "")
           for i, level in enumerate(doc["levels"]) for tid in level], empty="nothing to run")
    say("start #: the todo's place in its repo's line when its slots are contended "
        "(priority, then remaining critical path in hours, then age)")
    for i, w in enumerate(doc.get("waves") or []):
        cap = f", {w['max_parallel']} at once" if w["max_parallel"] else ""
        soak = f", soak {w['soak']:g}s" if w["soak"] else ""
        say(f"wave {i + 1} {esc(w['name'])}: {esc(', '.join(w['todos'])) or 'no todo'}{cap}{soak}, "
            f"needs {w['success_rate']:.0%} to go on")
    say(f"critical path ({doc['critical_hours']:g}h of {doc['total_hours']:g}h): "
        f"{esc(' -> '.join(doc['critical_path'])) or '(empty)'}")
    for b in doc["blockers"]:
        say(f"[magenta]ignored blocker:[/magenta] {esc(b['todo'])} by {esc(b['blocker'])}: "
            f"{esc(b['reason'])}")
    if doc["skipped"]:
        why = ("completed, no run command" if doc["again"]
               else "already completed; --again runs them too")
        say(f"skipped ({why}): {esc(', '.join(doc['skipped']))}")
    _estimate_human(doc)


class _AtomicCommand(click.Command):
    """`--atomic` alone is a flag (its mode "finish"); it takes a value only as
    `--atomic=stop` or `--atomic stop`, so `coord plan sweep --atomic PLAN-001` never
    reads the plan as the mode."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        out: list[str] = []
        i = 0
        while i < end:
            if args[i] == "--atomic":
                mode = args[i + 1] if i + 1 < end and args[i + 1] in ("finish", "stop") else None
                out.append(f"--atomic={mode or 'finish'}")
                i += 2 if mode else 1
                continue
            out.append(args[i])
            i += 1
        return super().parse_args(ctx, out + args[end:])


@plan.command("sweep", cls=_AtomicCommand)
@click.argument("plan_id", metavar="PLAN")
@click.option("--strategy", type=click.Choice(["levels", "eager"]), default="levels",
              show_default=True, help="levels: a level starts when every todo of the one "
              "before it ended (one level runs at a time); eager: a todo starts as soon as "
              "its own blockers succeeded, faster when durations within a level vary a lot "
              "or chains are uneven. --dry-run estimates both.")
@click.option("--dry-run", is_flag=True, help="Print what would run and how long each "
              "strategy would take; enqueue nothing.")
@click.option("--again", is_flag=True, help="Run every todo of the plan, completed ones "
              "too (to verify again after upstream moved); the outcomes are recorded as "
              "for any sweep (a completed todo that fails now becomes failed).")
@click.option("--wait", is_flag=True, help="Wait for the sweep to end (embedded mode always waits).")
@click.option("--ignore-blockers", is_flag=True, help="Run although blockers outside the plan "
              "are unsatisfied.")
@click.option("--require-workers", is_flag=True,
              help="Refuse (exit 2) when a repo of the plan has no live worker.")
@click.option("--atomic", type=click.Choice(["finish", "stop"]),  # sweeps.spec.ATOMIC_MODES
              is_flag=False, flag_value="finish", default=None,
              help="All or nothing: on the first failed todo start nothing new, then roll "
              "back (run the undo: of what succeeded). --atomic (finish, the default) lets "
              "the running todos finish first; --atomic=stop kills them (recorded "
              "cancelled; a killed todo is not undone).")
@click.option("--ui", "ui", is_flag=True, help="Serve the web view on localhost while the "
              "sweep runs (with --wait, or embedded).")
@click.option("--ui-port", type=click.IntRange(1, 65535), default=None,
              help="Port of --ui's web view (default 8765); implies --ui.")
@click.option("--no-sync", "no_sync", is_flag=True,
              help="Do not write the outcome into the catalog when the sweep ends.")
@click.option("--no-cache", "no_cache", is_flag=True, help="Run every todo even when an "
              "earlier success has its cache key (cache: todos; successes are still stored).")
@order_options(
    "The dependency types that order deps: follow templates' instances "
    "(comma-separated; default the catalog's order.by, runtime,build,peer).",
    "A cycle among a deps: follow template's repos: group runs them as one "
    "group, one at a time in name order, with a warning; error refuses (exit 2). "
    "Default: the catalog's order.cycles (group).")
@click.option("--sequential", is_flag=True, help="One todo at a time, in DAG order (ties: "
              "the start rank, then the id), through the levels strategy: every level one "
              "todo (waves: one at a time each).")
@click.option("--merge-chains", "merge_chains", is_flag=True,
              help="Run a chain of same-repo todos (each the only successor of the one "
              "before, and it its only predecessor) as one task on one worker: no message "
              "between them; each keeps its own start, lease, checkpoint, events, retries "
              "and outcome. Runs the eager strategy.")
@click.option("--wait-timeout", "wait_timeout", default=None, metavar="DURATION",
              help="How long a todo may wait for a slot of its repo or of a shared resource "
              "before it ends failed, naming what it waited for (seconds, or 10m, 1h); a "
              "todo's own wait_timeout: wins. Default: until the sweep's deadline.")
@click.option("--trigger", hidden=True)  # JSON: coordination.firing's embedded firings
@json_and_context
def sweep_cmd(obj: Context, plan_id: str, strategy: str, dry_run: bool, wait: bool,
              ignore_blockers: bool, require_workers: bool, atomic: str | None, ui: bool,
              ui_port: int | None, no_sync: bool, again: bool, no_cache: bool,
              order_by: str | None, cycles: str | None, sequential: bool,
              merge_chains: bool, wait_timeout: str | None, trigger: str | None,
              as_json: bool) -> None:
    """Run a plan's open todos on their repos' workers, or preview it with --dry-run.

    Choosing a strategy: eager beats levels when the todos of a level take very
    different times or the chains are uneven (a level's slowest todo no longer holds
    up the unrelated todos after it); levels, the default, runs one level at a time:
    each ends in a `level.done` event, and an --atomic sweep that stops has at most
    that one level in flight, nothing of a later level to undo. --dry-run prints
    the critical-path estimate of each (from estimated_hours, else the p50 of the
    todo's recorded runs); when they are equal, the level barriers cost nothing.

    \b
    Examples:
      coord plan sweep PLAN-001 --dry-run
      coord plan sweep PLAN-001 --wait
      coord plan sweep PLAN-001 --atomic --wait
      coord plan sweep PLAN-001 --atomic=stop --wait
      coord plan sweep PLAN-001 --wait --ui --ui-port 8765
      coord plan sweep PLAN-001 --again --strategy eager --wait
      coord plan sweep PLAN-001 --again --no-cache --wait
      coord plan sweep PLAN-001 --order-by runtime,dev --cycles error --dry-run
      coord plan sweep PLAN-001 --sequential --wait
      coord plan sweep PLAN-001 --merge-chains --wait
    """
    from coordination.catalog.selection.ordering import overriding  # lazy: off plan list/status
    from coordination.catalog.reads.cached import sweep_catalog  # lazy: off plan list/status

    waits_s = _wait_timeout(wait_timeout)
    # The catalog as written: a view of the cache, without the models (sweep_catalog says
    # when it is the models), read once for the whole command.
    written = sweep_catalog(obj.file)
    with overriding(written, order_by, cycles):
        warnings: list[str] = []
        planned = planned_for(obj.file, plan_id, warnings=warnings,  # a refused cycle: exit 2
                              raw=written)
        if not as_json and not dry_run:  # a dry run lists them with its other warnings
            for w in warnings:
                err_console().print(f"[yellow]warning:[/yellow] {esc(w)}")
        _sweep(obj, plan_id, strategy, dry_run, wait, ignore_blockers, require_workers,
               atomic, ui, ui_port, no_sync, again, no_cache, as_json, warnings,
               sequential=sequential, merge_chains=merge_chains, wait_timeout=waits_s,
               planned=planned, trigger=json.loads(trigger) if trigger else None)


def _wait_timeout(text: str | None) -> float | None:
    """``--wait-timeout``'s seconds (as the catalog's ``wait_timeout:`` reads them)."""
    if text is None:
        return None
    from coordination.catalog.governance import parse_duration  # lazy: pydantic

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--wait-timeout: {exc}", hint="e.g. --wait-timeout 90 or 10m") from None
    if seconds <= 0:
        raise UsageError("--wait-timeout must be more than 0 s", hint="e.g. --wait-timeout 10m")
    return seconds


def _sweep(obj: Context, plan_id: str, strategy: str, dry_run: bool, wait: bool,
           ignore_blockers: bool, require_workers: bool, atomic: str | None, ui: bool,
           ui_port: int | None, no_sync: bool, again: bool, no_cache: bool,
           as_json: bool, warnings: list[str], sequential: bool = False,
           merge_chains: bool = False, wait_timeout: float | None = None, *,
           planned: tuple[Catalog, Catalog], trigger: Trigger | None = None) -> None:
    """The sweep, or its dry run; ``planned``: the catalog as written and as the planner
    sees it (:func:`planned_for`, read once by the command)."""
    raw, catalog = planned
    if not dry_run:
        # lazy: the runtime (redis-py, the sweeps, Celery to send); a dry run loads none of it
        from coordination.cli.sweep import run_start

        if not again and _all_completed(catalog, plan_id):
            err_console().print(
                f"[yellow]nothing to run:[/yellow] every todo of {esc(plan_id)} is completed "
                f"(--again runs them all again; `coord plan reset {esc(plan_id)}` sets them "
                "pending)")

        if ui and ui_port is None:
            ui_port = DEFAULT_PORT
        code = run_start(obj.file, plan_id, strategy=strategy, wait=wait,
                         ignore_blockers=ignore_blockers, as_json=as_json,
                         require_workers=require_workers, atomic=atomic or False,
                         ui_port=ui_port,
                         sync=not no_sync, again=again, no_cache=no_cache,
                         warnings=warnings, sequential=sequential,
                         merge_chains=merge_chains, wait_timeout=wait_timeout, trigger=trigger)
        if isinstance(code, int) and code:
            sys.exit(code)
        return
    # lazy: the planner's graph modules, off plan list/status
    from coordination.planner.documents import dry_run_document

    p50, history_problem = _history_p50(obj.file, catalog, plan_id, again=again)
    if sequential and merge_chains:
        raise UsageError("--merge-chains and --sequential together",
                         hint="--sequential runs one todo at a time already; give one")
    doc = dry_run_document(catalog, plan_id, strategy="eager" if merge_chains else strategy,
                           ignore_blockers=ignore_blockers, keys=Keys(_namespace()),
                           again=again, p50_seconds=p50, written=raw, sequential=sequential)
    # the ordering's cycle groups, as `plan validate`'s findings are shown
    if warnings:
        from coordination.planner.validate import Finding  # lazy: as documents above

        doc["warnings"] = [*(doc.get("warnings") or []), *(
            Finding("warning", "dependency-cycle", w, [w.split(" ", 1)[0]]).to_dict()
            for w in warnings)]
    if history_problem:
        err_console().print(f"[yellow]warning:[/yellow] history not read "
                            f"({esc(history_problem)}): the estimates use estimated_hours only")
    emit(as_json, doc, _dry_run_human)


def _namespace() -> str:
    """The namespace the queues are named in: read without pydantic when the environment
    sets no setting but where Redis is, and says it plainly
    (:func:`coordination.settings_core.read_core`, ``alone``); else by the full settings,
    which refuse a bad variable (any of them, as a dry run always did) naming it."""
    # lazy: the settings' reading (stdlib), a dry run only
    from coordination.settings_core import read_core

    core = read_core(alone=True)
    if core is not None:
        return core.namespace
    from coordination.settings import get_settings  # lazy: pydantic, when core cannot say

    return get_settings().namespace


#: Days of recorded runs whose p50 stands in for a todo's missing estimated_hours in
#: the dry run's estimate (`coord history trends`' default window, so it shows the same).
HISTORY_DAYS = 30.0


def _history_p50(file: Path, catalog: Catalog, plan_id: str, *, again: bool
                 ) -> tuple[dict[str, float | None], str | None]:
    """Todo -> the p50 seconds of its recorded runs, for the todos of the plan a dry
    run shows that have no estimated_hours (history is not read when every one has
    one), and what stopped the read if something did: the dry run goes on without."""
    wanted = {t.id: t.repo for t in catalog.plan_todos(plan_id)
              if t.estimated_hours is None and (again or t.status != TodoStatus.completed)}
    if not wanted:
        return {}, None
    if nothing_recorded(file):  # embedded, never swept: no server to start for no runs
        return {}, None
    # lazy: the runtime (redis-py; embedded, its server started or joined), which a dry
    # run needs only to read history when a todo has no estimate
    import redis

    from coordination.runtime.context import get_runtime  # lazy: as redis
    from coordination.history.trends import trends  # lazy: as redis above

    try:
        store = get_runtime(file).history()
        try:
            figures = trends(store, days=HISTORY_DAYS, repos=set(wanted.values()))["todos"]
        finally:
            store.close()
    except (redis.RedisError, OSError, CoordError) as exc:
        return {}, f"{type(exc).__name__}: {exc}"
    return {t: figures[t]["p50_s"] for t in wanted if t in figures}, None


def _reset_human(doc: PlanReset) -> None:
    would = "would be " if doc["dry_run"] else ""
    if doc["reset"]:
        say(f"{len(doc['reset'])} todo(s) of {esc(doc['plan'])} {would}set back to pending: "
            + esc(some([f"{t} ({doc['was'][t]})" for t in doc["reset"]], 20)))
    else:
        say(f"no todo of {esc(doc['plan'])} to set back: "
            + ("every one is pending already" if doc["already_pending"] else "it has none"))
    if doc["reset"] and doc["already_pending"]:
        say(f"[dim]pending already: {esc(some(doc['already_pending'], 20))}[/dim]")
    if doc["plan_was"] != doc["plan_status"]:
        say(f"{esc(doc['plan'])} {would or 'is '}{doc['plan_status']} (was {doc['plan_was']})")
    if doc["dry_run"]:
        say("dry run: nothing changed")


@plan.command("reset")
@click.argument("plan_id", metavar="PLAN")
@click.option("--todos", "todos", multiple=True, metavar="ID,...",
              help="Only these todos of the plan (commas or repeats); by default every "
              "todo of it. An id not in the plan: exit 2, nothing changed.")
@click.option("--dry-run", is_flag=True, help="Print what would change; change nothing.")
@json_and_context
def reset_cmd(obj: Context, plan_id: str, todos: tuple[str, ...], dry_run: bool,
              as_json: bool) -> None:
    """Set a plan's todos back to pending and the plan to active, in one audited edit,
    so that its next sweep runs them again. (`plan sweep --again` runs every todo
    without changing the catalog first; its outcome is recorded either way.)

    \b
    Examples:
      coord plan reset PLAN-001
      coord plan reset PLAN-001 --todos TODO-003,TODO-005 --dry-run
    """
    wanted = split_list(todos) if todos else None
    doc = obj.manager.plans.reset(plan_id, wanted, dry_run=dry_run)
    emit(as_json, doc, _reset_human)


# The edits of plans live in plan_edit.py (this module is long enough).
for _command in plan_edit.COMMANDS:
    plan.add_command(_command)
plan.add_command(plan_optimize.optimize_cmd)
