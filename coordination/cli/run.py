"""`coord run CMD --repos SEL`: one command across the selected repos, as a real sweep.

One todo per selected repo (``RUN-<repo>``, see :mod:`coordination.sweeps.adhoc`),
providers before consumers (``--order deps``), sent, leased, checkpointed, cached and
watched like any sweep's todos; `coord sweep status|watch|resume|cancel` and the web
view take the sweep. Nothing is written to the catalog unless ``--save-as`` keeps
the run as a plan; the run itself (who, when, the command, the selection) is
recorded in the audit log before anything is sent: if it cannot be recorded, nothing
runs. Ends with a table per repo (status, seconds, exit, last line); exit 1 when one
failed.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from coordination import launch as launching
from coordination.catalog.audit import log as audit
from coordination.catalog.models import Catalog
from coordination.catalog.selection.ordering import Ordering
from coordination.catalog.runs.runplan import save_run_plan
from coordination.catalog.selection.selectors import select
from coordination.catalog.file.store import CatalogStore
from coordination.cli.context import Context
from coordination.cli.options import order_options
from coordination.cli.render import (arg, err_console, esc, json_and_context, plural, print_json,
                                     table)
from coordination.cli.sweep_render import follow_sweep
from coordination.cli.unattended import warn_unattended
from coordination.errors import UsageError
from coordination.runtime.context import get_runtime
from coordination.settings import get_settings
from coordination.sweeps import SweepService, new_sweep_id, person_scope
from coordination.sweeps.adhoc import RUN_KIND, RUN_PREFIX, run_graph, run_ordering, run_spec
from coordination.sweeps.reading import StatusDocument, last_lines

#: What a successful end is called in the summary.
OK = ("succeeded", "cached")


@click.command("run")
@click.argument("command", nargs=-1, required=True)
@click.option("--repos", "selector", required=True, metavar="SELECTOR",
              help="Which repos: names, globs, tag:T, role:R, changed:REF, NAME..., ...NAME, "
              "NAME^..., ...^NAME, !EXCLUDED, joined by commas; A&B: what both select "
              "(tag:python&changed:main asks git in the Python repos only); exclusions "
              "alone: every repo but those ('!legacy'). changed:REF: changed since "
              "the merge-base of REF and HEAD (a branch behind REF is not changed); "
              "changed: alone: each repo from its own default branch (origin/HEAD, else "
              "its default_branch).")
@click.option("--order", type=click.Choice(["deps", "none"]), default="deps", show_default=True,
              help="deps: a repo's todo after those of the selected repos it depends on, "
              "through unselected ones too (web -> api -> db: db before web).")
@order_options(
    "The dependency types that order (comma-separated; default the catalog's "
    "order.by, runtime,build,peer): --order-by runtime,dev orders by dev edges too.",
    "A cycle among ordering edges: group (default) runs its repos as one group, "
    "one at a time in name order, with a warning; error refuses (exit 2). Default: "
    "the catalog's order.cycles.")
@click.option("--strategy", type=click.Choice(["levels", "eager"]), default="levels",
              show_default=True, help="Send a level at a time, or each todo once it may start.")
@click.option("--wait", is_flag=True, help="Follow it to the end (embedded always waits).")
@click.option("--cache", is_flag=True, help="Reuse an earlier success whose key (checkout, "
              "command, env) matches, and store this run's successes.")
@click.option("--timeout", type=click.FloatRange(1, 7 * 24 * 3600), default=3600,
              show_default=True, help="Seconds each repo's command may run.")
@click.option("--save-as", "save_as", default=None, metavar="PLAN",
              help="Keep the run as a plan in the catalog (a new PLAN-n id, or a title) and "
              "run that plan.")
@click.option("--require-workers", is_flag=True,
              help="Refuse (exit 2) when a selected repo has no live worker (distributed).")
@json_and_context
def run(obj: Context, command: tuple[str, ...], selector: str, order: str,
        order_by: str | None, cycles: str | None, strategy: str,
        wait: bool, cache: bool, timeout: float, save_as: str | None,
        require_workers: bool, as_json: bool) -> None:
    """Run CMD in every selected repo's checkout, as a sweep; prints a summary per repo.

    The repo reaches the command through the environment only (COORD_REPO,
    COORD_REPO_PATH, COORD_REPO_TAGS), never pasted into it. One argument is a
    shell command as written; several are quoted and joined.

    \b
    Examples:
      coord run 'make test' --repos 'tag:python,!legacy'
      coord run 'git status --short' --repos '...api' --order none
      coord run 'make lint' --repos 'tag:python&changed:origin/main' --cache
      coord run 'git pull --ff-only' --repos '!legacy'
      coord run 'make upgrade' --repos 'svc-*' --save-as 'Upgrade the services'
      coord run 'npm test' --repos '*' --order-by runtime,dev --cycles error
    """
    text = command[0] if len(command) == 1 else shlex.join(command)
    sys.exit(run_command(obj.file, text, selector, order=order, strategy=strategy, wait=wait,
                         cache=cache, timeout=timeout, save_as=save_as,
                         require_workers=require_workers, as_json=as_json,
                         order_by=order_by, cycles=cycles))


def run_command(file: Path, command: str, selector: str, *, order: str = "deps",
                strategy: str = "levels", wait: bool = False, cache: bool = False,
                timeout: float = 3600, save_as: str | None = None,
                require_workers: bool = False, as_json: bool = False,
                order_by: str | None = None, cycles: str | None = None) -> int:
    """`coord run` (the library call the command is a thin layer over); its exit code."""
    _check_usage(command, order, order_by, cycles)
    store = CatalogStore(file)
    catalog = store.load()
    chosen = select(catalog, selector, file.resolve().parent).names
    # The one ordering (a cycle a group, or refused with --cycles error) before anything
    # is written or sent.
    ordering = run_ordering(catalog, chosen, order, by=order_by, cycles=cycles)
    warnings = ordering.warnings if ordering is not None else []
    if not as_json:
        for w in warnings:
            err_console().print(f"[yellow]warning:[/yellow] {esc(w)}")
    if save_as is not None:
        launch, saved = _saved_plan(store, catalog, command, selector, chosen, save_as,
                                    order=order, strategy=strategy, cache=cache,
                                    timeout=timeout, ordering=ordering, as_json=as_json)
    else:
        launch, saved = _adhoc(file, catalog, command, chosen, order=order, strategy=strategy,
                               cache=cache, timeout=timeout, ordering=ordering), None
    spec, svc = launch.spec, launch.svc
    if launch.embedded:
        wait = True
        if not as_json:
            err_console().print(f"[dim]embedded mode (COORD_REDIS_URL unset): running "
                                f"{plural(len(spec.todos), 'repo')} on this process's workers[/dim]")
    else:
        warn_unattended(launch.unattended(), require=require_workers)
    sweep_id = new_sweep_id(launch.name)
    # A person's user may not write an ad-hoc run's keys: refused before its audit entry.
    person_scope.refuse_start(launch.svc.rt, spec, sweep_id)
    # The command line is recorded before anything is sent: no record, no run.
    _audit(store, sweep_id, command, selector, chosen, order=order, strategy=strategy,
           cache=cache, saved=saved, ordering=ordering)
    said: dict[str, object] = {"command": command, "selector": selector, "repos": chosen,
                               "warnings": warnings, **({"saved_as": saved} if saved else {}),
                               **({"cycle_edges_dropped": ordering.dropped}
                                  if ordering is not None and ordering.dropped else {})}
    with launch.workers():
        launch.sweep_id = sweep_id
        svc.start_spec(spec, sweep_id, kind=launch.kind)
        launch.runs_it()
        if not wait:
            _report_queued(launch, sweep_id, said, as_json=as_json)
            return 0
        if not as_json:
            err_console().print(f"sweep {esc(sweep_id)}")
        st = follow_sweep(svc, sweep_id, as_json=as_json, total=len(spec.todos))
    if saved:
        st["synced"] = svc.sync(sweep_id, status=st)
    return _report_end(st, ordering, said, as_json=as_json)


def _check_usage(command: str, order: str, order_by: str | None, cycles: str | None) -> None:
    """Refuse a run that cannot start, before anything is read or written."""
    if not command.strip():
        raise UsageError("coord run needs a command", hint="coord run 'make test' --repos tag:python")
    if order == "none" and (order_by is not None or cycles is not None):
        raise UsageError("--order-by and --cycles say how --order deps orders; --order none "
                         "orders nothing", hint="drop --order none, or drop --order-by/--cycles")


def _saved_plan(store: CatalogStore, catalog: Catalog, command: str, selector: str,
                chosen: list[str], save_as: str, *, order: str, strategy: str, cache: bool,
                timeout: float, ordering: Ordering | None,
                as_json: bool) -> tuple[launching.Launch, dict[str, object]]:
    """--save-as: the run kept as a plan in the catalog (a todo per repo, each after its
    providers), and the launch of that plan."""
    graph = run_graph(catalog, chosen, order, ordering=ordering)
    providers = {r: [p[len(RUN_PREFIX):] for p in graph.predecessors(f"{RUN_PREFIX}{r}")]
                 for r in chosen}
    pid, ids = save_run_plan(store, save_as, command, chosen, providers, selector=selector,
                             cache=cache, timeout=timeout)
    launch = launching.prepare(store.path, plan_id=pid, strategy=strategy)
    if not as_json:
        err_console().print(f"saved as plan {esc(pid)} ({len(ids)} todos)")
    return launch, {"plan": pid, "todos": ids}


def _adhoc(file: Path, catalog: Catalog, command: str, chosen: list[str], *, order: str,
           strategy: str, cache: bool, timeout: float,
           ordering: Ordering | None) -> launching.Launch:
    """The launch of a run that writes nothing to the catalog: its spec built here."""
    rt = get_runtime(file)
    svc = SweepService(rt, file)
    spec = run_spec(rt.keys, catalog, file, command, chosen, order=order,
                    strategy=strategy, cache=cache, timeout=timeout, ordering=ordering)
    launching.wire(rt, svc, with_tasks=rt.settings.embedded)
    return launching.Launch(svc, spec, "RUN", RUN_KIND)


def _report_queued(launch: launching.Launch, sweep_id: str, said: dict[str, object], *,
                   as_json: bool) -> None:
    """A run not waited for: its queued document, or its id and how to watch it."""
    if as_json:
        print_json({**launch.queued_document(sweep_id), **said})
        return
    click.echo(sweep_id)
    err_console().print(f"queued {plural(len(launch.spec.todos), 'repo')} in "
                        f"{plural(len(launch.spec.levels), 'level')}; watch with "
                        f"`coord sweep watch {arg(sweep_id)}`")


def _report_end(st: StatusDocument, ordering: Ordering | None, said: dict[str, object], *,
                as_json: bool) -> int:
    """An ended run: a row per repo and a count of those that succeeded; its exit code."""
    sweep_id = st["sweep_id"]
    rows = summary(st, ordering)
    failed = [r for r in rows if r["status"] not in OK]
    if as_json:
        extra: dict[str, object] = {k: said[k] for k in ("saved_as", "cycle_edges_dropped")
                                    if k in said}
        print_json({"sweep_id": sweep_id, "status": st["status"], "reason": st.get("reason"),
                    "command": said["command"], "selector": said["selector"],
                    "repos": said["repos"], "summary": rows, "warnings": said["warnings"],
                    **extra})
    else:
        grouped = any(r["group"] is not None for r in rows)
        table(None, ["level", "repo", *(["group"] if grouped else []), "status", "seconds",
                     "exit", "last line"],
              [(str(r["level"]), esc(r["repo"]),
                *([f"cycle {r['group']}" if r["group"] is not None else ""] if grouped else []),
                r["status"], "" if r["seconds"] is None else f"{r['seconds']:.1f}",
                "" if r["exit_code"] is None else str(r["exit_code"]), esc(r["last_line"]))
               for r in rows], empty="no repos",
              no_wrap=("level", "repo", "group", "status", "seconds", "exit"))
        ok = len(rows) - len(failed)
        err_console().print(f"{ok} of {len(rows)} repos succeeded"
                            + (f"; failed or not run: {esc(', '.join(str(r['repo']) for r in failed[:10]))}"
                               + (", ..." if len(failed) > 10 else "") if failed else "")
                            + (f" (sweep {esc(sweep_id)}: {st['status']}"
                               + (f", {esc(st['reason'])}" if st.get("reason") else "") + ")"))
    return 0 if st["status"] == "succeeded" and not failed else 1


def summary(st: StatusDocument, ordering: Ordering | None = None) -> list[dict[str, object]]:
    """A row per repo of an ended sweep's status document, in the order they ran: the
    ordering's level, then name (a cycle's group together, in name order; ``group`` its
    number, else None); without an ordering (``--order none``) by name at level 0.
    Each: level, group, repo, todo, status, seconds, exit code, the last line of its
    output (stdout's when it succeeded, else stderr's first)."""
    rank = {r: i for i, r in enumerate(ordering.run_order())} if ordering else {}
    level = ordering.level_of() if ordering else {}
    group = ordering.group_of() if ordering else {}
    rows: list[dict[str, object]] = []
    for tid, v in st["todos"].items():
        parts = dict(last_lines(v.get("output_tail"), 1))
        ok = v["status"] in OK
        line = (parts.get("stdout") or parts.get("output") or parts.get("stderr") if ok
                else parts.get("stderr") or parts.get("stdout") or parts.get("output")) or []
        repo = str(v.get("repo") or tid)
        rows.append({"level": level.get(repo, 0), "group": group.get(repo),
                     "repo": repo, "todo": tid, "status": v["status"],
                     "seconds": v.get("duration"), "exit_code": v.get("exit_code"),
                     "last_line": (line[-1] if line else (v.get("reason") or "")).strip()})
    return sorted(rows, key=lambda r: (rank.get(str(r["repo"]), len(rank)), str(r["repo"])))


def _audit(store: CatalogStore, sweep_id: str, command: str, selector: str, repos: list[str], *,
           order: str, strategy: str, cache: bool, saved: dict[str, object] | None,
           ordering: Ordering | None = None) -> None:
    store.record_decision(
        who=audit.who(store.path.resolve().parent), op="run", ids=[sweep_id],
        decision={"sweep_id": sweep_id, "command": command, "selector": selector,
                  "repos": repos, "order": order, "strategy": strategy, "cache": cache,
                  **({"groups": ordering.groups} if ordering and ordering.groups else {}),
                  "embedded": get_settings().embedded,
                  **({"saved_as": saved["plan"]} if saved else {})})
