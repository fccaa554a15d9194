"""`coord sweep ...` (list, status, and the verbs that steer a sweep) and the running
half of `coord plan sweep`; how a sweep is shown is :mod:`coordination.cli.sweep_render`.

Human output of a sweep goes to stderr (progress, summary) so that stdout
holds only the sweep id — `ID=$(coord plan sweep PLAN-001)` works — or, with
``--json``, exactly one JSON document.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from coordination.catalog.reads import live
from coordination.cli.context import Context, nothing_recorded, refuse_unrecorded
from coordination.cli.render import (arg, emit, err_console, esc, json_and_context, print_json,
                                     say, split_list, styled, table)
from coordination.cli.sweep_render import (follow_sweep, lines_option, render_status,
                                           render_summary)
from coordination.cli.unattended import warn_unattended
from coordination.errors import UsageError
from coordination.names import some
from coordination.runtime.context import every_setting, get_runtime
from coordination.status import SWEEP_LIVE
from coordination.sweeps import SweepService
from coordination.lazy import LazyModule
from coordination.sweeps.reading import DEFAULT_LINES, StatusDocument, SweepRow
from coordination.sweeps.summary import MOST_ROWS


if TYPE_CHECKING:
    from coordination import launch as launching
    from coordination.sweeps.steering import CancelResult, Steered
    from coordination.sweeps.starts.triggers import Trigger
else:
    # Loaded on first use: starting or attaching to a sweep (Celery, the embedded
    # workers); `sweep status` and `sweep list` only read.
    launching = LazyModule("coordination.launch")


def _service(obj: Context, *, reader: bool = False) -> SweepService:
    """The sweep service of the CLI's catalog (``reader``: for a command that only reads,
    whose runtime reads the rest of the settings on first use: Runtime.reader)."""
    return SweepService(get_runtime(obj.file, reader=reader), obj.file)


def _names(value: object) -> list[str]:
    """The ids in a list field of a steering document (whose values are typed object)."""
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []


#: ``--no-sync`` on every command that waits for a sweep to end.
no_sync_option = click.option(
    "--no-sync", "no_sync", is_flag=True,
    help="Do not write the outcome into the catalog when the sweep ends.")


def finish(svc: SweepService, st: StatusDocument, *, as_json: bool, sync: bool,
           ok: str = "succeeded", lines: int = DEFAULT_LINES,
           warnings: list[str] | None = None) -> int:
    """Sync the outcome into the catalog (a sweep of this catalog only), render it (each
    failed todo with its last ``lines`` lines of output), and return the exit code (0
    when the sweep ended ``ok``). ``warnings``: the ordering's (``--json`` only; the
    command printed them on stderr before the sweep)."""
    if sync and svc.ran_from_here(st["sweep_id"]):
        launching.settle(svc, st)
    elif not sync and svc.catalog_path is not None:
        # --no-sync: the next command must not write it either (coordination.sweeps.writeback.live);
        # `coord sweep sync ID` still does when asked.
        live.unmark(svc.catalog_path, st["sweep_id"])
    elif sync and not as_json:
        err_console().print(f"[yellow]not synced[/yellow]: {esc(st['sweep_id'])} ran from "
                            "another catalog (pass its --file to sync it)")
    if as_json:
        print_json({**st, "warnings": warnings} if warnings is not None else st)
    else:
        render_status(st, to_stderr=True, lines=lines)
        if sync and st.get("synced"):
            s = st["synced"]
            reset, unrun = _names(s.get("reset")), _names(s.get("unrun"))
            err_console().print(
                f"catalog {esc(s['catalog'])}: {len(_names(s['completed']))} todos completed, "
                f"{len(_names(s['failed']))} failed, {len(_names(s.get('skipped')))} skipped"
                + (f", {len(reset)} undone (pending again)" if reset else "")
                + (f", {len(unrun)} not run this time (pending again)" if unrun else "")
                + (f"; {esc(s['plan'])} completed" if s.get("plan_completed") else "")
                + (f"; {esc(s['plan'])} active again" if s.get("reopened") else "")
                + _refused_line(s.get("refused")))
        # The last line names the outcome and its trigger, after the catalog's line.
        from coordination.sweeps.rollback import ending  # lazy: it loads the catalog's models

        last = ending(st["status"], st.get("reason"), st.get("rollback_reason"))
        if last:
            err_console().print(esc(last), soft_wrap=True)
    return 0 if st["status"] == ok else 1


def _embedded() -> bool:
    """Embedded mode (no COORD_REDIS_URL), by every setting (a bad one fails here)."""
    return every_setting().embedded


def run_start(file: Path, plan_id: str, *, strategy: str, wait: bool, ignore_blockers: bool,
              as_json: bool, todo_id: str | None = None, require_workers: bool = False,
              atomic: bool | str = False, ui_port: int | None = None, sync: bool = True,
              again: bool = False, no_cache: bool = False, sequential: bool = False,
              merge_chains: bool = False, warnings: list[str] | None = None,
              wait_timeout: float | None = None, trigger: Trigger | None = None) -> int:
    """`coord plan sweep PLAN` (not --dry-run), or with ``todo_id`` `coord todo run ID`.
    Embedded mode (no COORD_REDIS_URL) runs the workers (forked by this process) and always waits.
    ``ui_port``: serve the web view on localhost at that port while the sweep runs."""
    if ui_port is not None and not wait and not _embedded():
        # Usage first: nothing is planned or touched for a command that cannot run.
        raise UsageError("--ui serves the web view while the sweep runs: it needs --wait",
                         hint="add --wait, or run `coord ui` beside the sweep")
    launch = launching.prepare(file, plan_id=plan_id or None, todo_id=todo_id, strategy=strategy,
                     ignore_blockers=ignore_blockers, atomic=atomic, again=again,
                     no_cache=no_cache, sequential=sequential, merge_chains=merge_chains,
                     trigger=trigger)
    spec, svc = launch.spec, launch.svc
    if wait_timeout is not None:  # `plan sweep --wait-timeout`: todos without their own
        spec.wait_timeout = wait_timeout
    if launch.embedded:
        wait = True
        if not as_json:
            err_console().print(f"[dim]embedded mode (COORD_REDIS_URL unset): running "
                                f"{len(spec.todos)} todos of {esc(launch.name)} on this process's "
                                f"workers[/dim]")
    else:
        warn_unattended(launch.unattended(), require=require_workers)
    with launch.workers(), _web_view(svc, file, ui_port):
        sweep_id = launch.start()
        if ui_port is not None:
            err_console().print(f"web view: http://127.0.0.1:{ui_port}/sweeps/{sweep_id}")
        if not wait:
            if as_json:
                print_json({**launch.queued_document(sweep_id),
                            **({"warnings": warnings} if warnings is not None else {})})
            else:
                click.echo(sweep_id)
                err_console().print(f"queued {len(spec.todos)} todos in {len(spec.levels)} "
                                    f"levels; watch with `coord sweep watch {arg(sweep_id)}`")
            return 0
        if not as_json:
            click.echo(sweep_id)
        if sync:
            launching.ready_to_settle(svc.catalog_path)
        st = follow_sweep(svc, sweep_id, as_json=as_json, total=len(spec.todos))
    return finish(svc, st, as_json=as_json, sync=sync, warnings=warnings)


@contextmanager
def _web_view(svc: SweepService, file: Path, port: int | None) -> Iterator[None]:
    """With a port: the web view on localhost for as long as the block (the sweep) lasts."""
    if port is None:
        yield
        return
    # lazy: starlette and uvicorn load only with --ui (see coordination.ui)
    from coordination.ui import app as web_app, server as web_server

    settings = svc.rt.settings
    users = web_server.load_users(settings.ui_users)
    with web_server.Background(web_app.create_app(svc.rt, file, auth=settings.ui_auth,
                                                  users=users), "127.0.0.1", port):
        yield


# -- coord sweep ------------------------------------------------------------------------
@click.group()
def sweep() -> None:
    """Sweeps: list, status, watch, pause, unpause, resume, rollback, cancel, sync.

    \b
    Examples:
      coord sweep list
      coord sweep status PLAN-001-20261121093000-ab12 --json
      coord sweep resume PLAN-001-20261121093000-ab12 --wait
    """


@sweep.command("list")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True,
              help="Show at most this many sweeps, newest first.")
@click.option("--quiet", "-q", is_flag=True,
              help="Print only the sweeps' ids, one a line, newest first (for scripts: "
              "ID=$(coord sweep list --limit 1 -q) is the newest sweep's).")
@json_and_context
def list_(obj: Context, limit: int, quiet: bool, as_json: bool) -> None:
    """Recent sweeps, newest first.

    \b
    Examples:
      coord sweep list --limit 5 --json
      ID=$(coord sweep list --limit 1 --quiet)
    """
    if quiet and as_json:
        raise UsageError("--quiet prints ids, --json a document: give one of them")
    # embedded, never swept: no sweep to list, and no server to start for none
    rows = [] if nothing_recorded(obj.file) else _service(obj).list(limit=limit)
    if quiet:
        for r in rows:
            click.echo(r["sweep_id"])
        return
    emit(as_json, rows, lambda rs: table(
        "sweeps", ["sweep", "plan", "strategy", "status", "trigger", "created", "finished",
                   "reason"],
        [[esc(r["sweep_id"]), esc(r["plan"]), esc(r["strategy"]), _listed_status(r),
          esc(r.get("trigger") or ""), r["created_at"], r["finished_at"], esc(r.get("reason"))]
         for r in rs],
        empty="no sweeps yet"))


def _listed_status(row: SweepRow) -> str:
    """A sweep's status in `sweep list`: an orphaned one says so, not "running"."""
    if row.get("orphaned"):
        return f"[yellow]orphaned: {esc(row.get('orphaned'))}[/yellow]"
    return esc(row["status"])


@sweep.command()
@click.argument("sweep_id")
@lines_option
@click.option("--all", "every", is_flag=True,
              help=f"A row per todo however many (a sweep of more than {MOST_ROWS} shows "
              "its counts by status and the todos to look at: failed, held, waiting for "
              "approval, running...). --json always has every todo.")
@json_and_context
def status(obj: Context, sweep_id: str, lines: int, every: bool, as_json: bool) -> None:
    """One sweep and the state of each of its todos; each failed todo's last lines of
    output (--lines).

    \b
    Examples:
      coord sweep status SWEEP_ID --lines 20
      coord sweep status SWEEP_ID --all
      coord sweep status SWEEP_ID --json
    """
    refuse_unrecorded(obj.file, f"unknown sweep {sweep_id!r}")
    svc = _service(obj, reader=True)
    if not as_json and not every:
        # A big sweep is summarised from its tally: a few fields and the todos shown,
        # not every checkpoint and its spec (None: read it all, as --json does).
        brief = svc.summary(sweep_id)
        if brief is not None:
            render_summary(brief, lines=lines)
            return
    st = svc.status(sweep_id)
    emit(as_json, st, lambda doc: render_status(doc, lines=lines, every=every))


@sweep.command()
@click.argument("sweep_id")
@no_sync_option
@lines_option
@json_and_context
def watch(obj: Context, sweep_id: str, no_sync: bool, lines: int, as_json: bool) -> None:
    """Follow a sweep live until it ends, then write its outcome into the catalog
    (unless --no-sync) and show each failed todo's last lines of output (--lines);
    exit 0 if it succeeded, 1 if not.

    \b
    Example:
      ID=$(coord plan sweep PLAN-001) && coord sweep watch $ID
    """
    svc = _service(obj)
    if svc.rt.settings.embedded and svc.record(sweep_id).get("status") in SWEEP_LIVE:
        # Embedded: nobody else may be running its todos (the process that started it
        # may be gone); this process lends it workers while it watches, and leaves the
        # sweep as it is if it stops watching (another may take over).
        try:  # orphaned (its process is gone): this one runs it while it watches
            adopted = launching.adopt(obj.file, sweep_id)
        except UsageError:  # another process adopted it just now
            adopted = None
        if adopted:
            err_console().print(f"sweep {esc(sweep_id)} was orphaned ({esc(adopted[1])}): "
                                "this process adopts it and runs it while it watches")
        launch = adopted[0] if adopted else launching.attach(obj.file, sweep_id)
        with launch.workers(own=False):
            st = follow_sweep(launch.svc, sweep_id, as_json=as_json)
    else:
        st = follow_sweep(svc, sweep_id, as_json=as_json)
    sys.exit(finish(svc, st, as_json=as_json, sync=not no_sync, lines=lines))


def _resume_embedded(file: Path, sweep_id: str, picked: list[str] | None, *,
                     as_json: bool, sync: bool, reapply: bool = False,
                     no_cache: bool = False) -> int:
    """Embedded: the sweep kept beside the catalog re-runs on this process's workers,
    always waited for, like `coord plan sweep`."""
    adopted = launching.adopt(file, sweep_id)
    if adopted is not None:
        # Its process is gone (SIGKILL, OOM): this one takes it over and finishes it
        # as it stands (what ran stays; --only and --reapply do not apply).
        launch, why = adopted
        err_console().print(f"sweep {esc(sweep_id)} was orphaned ({esc(why)}): this process "
                            "adopts it and runs what is left")
        with launch.workers():
            st = follow_sweep(launch.svc, sweep_id, as_json=as_json)
        return finish(launch.svc, st, as_json=as_json, sync=sync)
    launch = launching.attach(file, sweep_id)
    svc = launch.svc
    with launch.workers():
        out = svc.resume(sweep_id, only=picked, reapply=reapply, no_cache=no_cache)
        _say_kept_asked(out)
        launch.runs_it()
        if not out["rerun"]:
            emit(as_json, out, lambda o: err_console().print("nothing to resume"))
            return 0
        if not as_json:
            click.echo(sweep_id)
        st = follow_sweep(svc, sweep_id, as_json=as_json)
    return finish(svc, st, as_json=as_json, sync=sync)


def _say_resume_preview(sweep_id: str, o: dict[str, object]) -> None:
    """`sweep resume --dry-run` for people: each todo that would re-run and why, then
    those kept as they are."""
    if not o["rerun"]:
        say(f"{esc(sweep_id)}: nothing would re-run")
        return
    was = o["was"]
    assert isinstance(was, dict)
    skip = o.get("would_skip") or {}  # a blocker failed: skipped at run time
    assert isinstance(skip, dict)
    table(f"Resume of {esc(sweep_id)} would re-run", ["todo", "was", "why"],
          [(esc(t), styled(str(was[t])),
            f"would be skipped: {esc(skip[t])}" if t in skip else
            "compensated: applied again (--reapply)" if was[t] == "compensated"
            else "depends on --only" if t in _names(o["dependents"])
            else "did not succeed")
           for t in _names(o["rerun"])])
    if o["keep"]:  # a fleet's: ten named, the rest counted (--json has all)
        say(f"kept as they are: {esc(some(_names(o['keep'])))}")


def _say_kept_asked(out: Mapping[str, object]) -> None:
    """--only named todos that already succeeded: a resume keeps them; say how to run one
    again rather than leave the user wondering why it did not."""
    kept = out.get("kept_asked")
    if isinstance(kept, list) and kept:
        err_console().print(f"already succeeded, kept: {esc(some(kept))} (a resume re-runs "
                            f"what did not succeed; to run one again: coord todo run "
                            f"{arg(kept[0])})")


@sweep.command()
@click.argument("sweep_id")
@click.option("--wait", is_flag=True, help="Follow it to the end and sync the catalog.")
@no_sync_option
@click.option("--dry-run", is_flag=True, help="Print what would re-run (dependents included); change nothing.")
@click.option("--only", "only", default=None, metavar="TODO,...",
              help="Re-run only these todos and what depends on them, of those that did not "
              "succeed (one that did is kept, and said so).")
@click.option("--reapply", is_flag=True, help="Also re-run compensated todos (a rollback "
              "undid their change: this applies it again); refused (exit 2) without it.")
@click.option("--no-cache", "no_cache", is_flag=True, help="Run every todo again even when "
              "an earlier success has its cache key (successes are still stored).")
@json_and_context
def resume(obj: Context, sweep_id: str, wait: bool, no_sync: bool, dry_run: bool,
           only: str | None, reapply: bool, no_cache: bool, as_json: bool) -> None:
    """Re-run only the failed, skipped, cancelled or never-run todos of a sweep.

    Commands are re-read from the catalog, so a fixed `run:` takes effect. A todo
    a rollback compensated is run again only with --reapply; a sweep whose
    rollback did not finish (rollback_failed) is finished with `coord sweep
    rollback ID`, or re-applied with --reapply.

    \b
    Examples:
      coord sweep resume SWEEP_ID --dry-run
      coord sweep resume SWEEP_ID --only TODO-004 --wait
      coord sweep resume SWEEP_ID --reapply --wait
      coord sweep resume SWEEP_ID --no-cache --wait
    """
    svc = _service(obj)
    picked = split_list(only) if only else None
    if only is not None and not picked:
        raise UsageError("--only needs at least one todo id", hint="--only TODO-004,TODO-007")
    if dry_run:
        preview = svc.resume(sweep_id, only=picked, dry_run=True, reapply=reapply)
        _say_kept_asked(preview)
        emit(as_json, preview, lambda o: _say_resume_preview(sweep_id, o))
        return
    if svc.rt.settings.embedded:
        sys.exit(_resume_embedded(obj.file, sweep_id, picked, as_json=as_json,
                                  sync=not no_sync, reapply=reapply, no_cache=no_cache))
    out = svc.resume(sweep_id, only=picked, reapply=reapply, no_cache=no_cache)
    _say_kept_asked(out)
    if out.get("reopened"):  # (approvals of what no longer runs: people decide again)
        err_console().print(f"gates approved for another spec wait again: "
                            f"{esc(some(_names(out['reopened'])))}")
    if not wait or not out["rerun"]:

        def human(o: dict[str, object]) -> None:
            click.echo(sweep_id)
            err_console().print(f"re-running {esc(some(_names(o['rerun'])))}" if o["rerun"]
                                else "nothing to resume")

        emit(as_json, out, human)
        return
    if not as_json:
        click.echo(sweep_id)
    st = follow_sweep(svc, sweep_id, as_json=as_json)
    sys.exit(finish(svc, st, as_json=as_json, sync=not no_sync))


@sweep.command()
@click.argument("sweep_id")
@click.option("--dry-run", is_flag=True, help="Print what would be undone, in which order; "
              "change nothing.")
@click.option("--wait", is_flag=True, help="Follow the rollback to its end and sync the "
              "catalog (undone todos pending again).")
@no_sync_option
@json_and_context
def rollback(obj: Context, sweep_id: str, dry_run: bool, wait: bool, no_sync: bool,
             as_json: bool) -> None:
    """Undo a sweep: run the `undo:` command of every todo that succeeded, in reverse
    dependency order (a todo's undo after the undos of everything that depends on it).

    Todos end `compensated` or `compensation_failed`; the sweep `rolled_back` or
    `rollback_failed`. A todo without `undo:` is listed as not compensable.

    Of a `rollback_failed` (or cancelled) rollback: retry exactly the undos it left
    (`compensation_failed`, skipped, cancelled) in the same order, `undo:` re-read
    from the catalog (so a fixed one takes effect); what was compensated stays.

    \b
    Examples:
      coord sweep rollback SWEEP_ID --dry-run
      coord sweep rollback SWEEP_ID --wait
      coord sweep rollback SWEEP_ID --dry-run   # rollback_failed: the undos it would retry
    """
    svc = _service(obj)
    if dry_run or not svc.rt.settings.embedded:
        sys.exit(_rollback(svc, sweep_id, dry_run=dry_run, wait=wait, as_json=as_json,
                           sync=not no_sync))
    # Embedded: the undos run on this process's workers, always waited for.
    launch = launching.attach(obj.file, sweep_id)
    with launch.workers():
        code = _rollback(launch.svc, sweep_id, dry_run=False, wait=True, as_json=as_json,
                         sync=not no_sync, started=launch.runs_it)
    sys.exit(code)


def _rollback(svc: SweepService, sweep_id: str, *, dry_run: bool, wait: bool,
              as_json: bool, sync: bool, started: Callable[[], None] | None = None) -> int:
    """``started``: called once the rollback is under way (embedded: this process runs
    it)."""
    out = svc.rollback(sweep_id, dry_run=dry_run)
    if started is not None and not dry_run:
        started()
    levels = out.get("levels")
    steps = list(levels) if isinstance(levels, (list, tuple)) else []

    retry = bool(out.get("retry"))
    was = out.get("was") if isinstance(out.get("was"), dict) else {}
    assert isinstance(was, dict)

    def named(level: object) -> str:
        """A step's todos; a retry's with what each undo was ("TODO-003 (compensation_failed)")."""
        return ", ".join(f"{t} ({was[t]})" if t in was else t for t in _names(level))

    def show(o: dict[str, object]) -> None:
        if dry_run:
            if not o["compensate"]:
                say(f"{esc(sweep_id)}: nothing to undo")
            else:
                table(f"Rollback of {esc(sweep_id)} would {'retry' if retry else 'undo'}, "
                      "in this order", ["step", "todos"],
                      [(str(i + 1), esc(named(level))) for i, level in enumerate(steps)])
            if retry and o.get("compensated"):
                say(f"compensated already (not run again): "
                    f"{esc(', '.join(_names(o.get('compensated'))))}")
        else:
            click.echo(sweep_id)
            err_console().print(f"{'retrying the undos of' if retry else 'rolling back'} "
                                f"{len(_names(o['compensate']))} todos in "
                                f"{len(steps)} steps" if o["compensate"]
                                else "nothing to undo: rolled back")
        if o["not_compensable"]:
            err_console().print(f"[yellow]not compensable[/yellow] (succeeded, no undo:): "
                                f"{esc(', '.join(_names(o['not_compensable'])))}")

    if dry_run or not wait or not out["compensate"]:
        emit(as_json, out, show)
        if not dry_run and not out["compensate"] and out["status"] != "rolled_back":
            return 1
        return 0
    if not as_json:
        show(out)
    st = follow_sweep(svc, sweep_id, as_json=as_json)
    if as_json:
        if sync and svc.ran_from_here(sweep_id):
            launching.settle(svc, st)
        print_json({**st, "not_compensable": out["not_compensable"]})
        return 0 if st["status"] == "rolled_back" else 1
    return finish(svc, st, as_json=False, sync=sync, ok="rolled_back")


def _steers(said: Callable[[str, Any], str]) -> click.Command:
    """`coord sweep VERB SWEEP_ID [--json]` from the function that says what the verb did,
    for people (its name the verb and the service's method, its docstring the help)."""

    @click.argument("sweep_id")
    @json_and_context
    def command(obj: Context, sweep_id: str, as_json: bool) -> None:
        out = getattr(_service(obj), said.__name__)(sweep_id)
        emit(as_json, out, lambda o: err_console().print(said(sweep_id, o)))

    return sweep.command(said.__name__, help=said.__doc__)(command)


def _steers_all(said: Callable[[str, Any], str]) -> click.Command:
    """As :func:`_steers`, with ``--all``: the verb on every live sweep of the namespace
    instead of one (each reported; exit 1 when one of them could not be)."""

    @click.argument("sweep_id", required=False)
    @click.option("--all", "every", is_flag=True,
                  help="Every live sweep of the namespace (each one reported).")
    @json_and_context
    def command(obj: Context, sweep_id: str | None, every: bool, as_json: bool) -> None:
        if every == (sweep_id is not None):
            raise UsageError(f"give a sweep id or --all (not {'both' if every else 'neither'})",
                             hint=f"coord sweep {said.__name__} SWEEP_ID, or "
                                  f"coord sweep {said.__name__} --all")
        svc = _service(obj)
        if sweep_id is not None:
            out = getattr(svc, said.__name__)(sweep_id)
            emit(as_json, out, lambda o: err_console().print(said(sweep_id, o)))
            return
        done = svc.on_every_live(said.__name__)
        emit(as_json, {"sweeps": done, "count": len(done)}, lambda _: _say_every(said, done))
        if any("error" in o for o in done):
            sys.exit(1)

    return sweep.command(said.__name__, help=said.__doc__)(command)


def _say_every(said: Callable[[str, Any], str], done: list[dict[str, object]]) -> None:
    if not done:
        err_console().print("no live sweep")
    for o in done:
        sid = str(o["sweep_id"])
        err_console().print(f"sweep {esc(sid)}: {esc(o['error'])}" if "error" in o
                            else said(sid, o))


@_steers_all
def pause(sweep_id: str, o: Steered) -> str:
    """Start nothing new: running todos finish and are recorded; the deadline stops.
    --all: every live sweep of the namespace (with `coord freeze`: an emergency stop).

    \b
    Examples:
      coord sweep pause SWEEP_ID && coord sweep unpause SWEEP_ID
      coord freeze --reason "incident" && coord sweep pause --all --json
    """
    return (f"sweep {esc(sweep_id)} paused: nothing new starts; running todos finish"
            if o["changed"] else f"sweep {esc(sweep_id)} was already paused")


@_steers
def unpause(sweep_id: str, o: Steered) -> str:
    """Carry on with a paused sweep (its deadline moves by the time it was paused).

    \b
    Example:
      coord sweep unpause PLAN-001-20261121093000-ab12
    """
    return (f"sweep {esc(sweep_id)} {o['status']} again after {o['paused_for']:.0f} s paused"
            if o["changed"] else f"sweep {esc(sweep_id)} is {o['status']}, not paused")


@_steers_all
def cancel(sweep_id: str, o: CancelResult) -> str:
    """Stop dispatching, revoke what is queued, terminate what runs. --all: every live
    sweep of the namespace.

    \b
    Examples:
      coord sweep cancel PLAN-001-20261121093000-ab12 --json
      coord sweep cancel --all
    """
    return (f"sweep {esc(sweep_id)} cancelled" if o["cancelled"]
            else f"sweep {esc(sweep_id)} already {o['status']}")


@_steers
def sync(sweep_id: str, o: dict[str, object]) -> str:
    """Write a finished sweep's outcome into the catalog (completed + actual_hours).

    \b
    Example:
      coord sweep sync PLAN-001-20261121093000-ab12
    """
    return (f"{esc(o['catalog'])}: completed {esc(', '.join(_names(o['completed'])) or 'none')}; "
            f"failed {esc(', '.join(_names(o['failed'])) or 'none')}; "
            f"skipped {esc(', '.join(_names(o.get('skipped'))) or 'none')}"
            + (f"; undone (pending again) {esc(', '.join(_names(o.get('reset'))))}"
               if o.get("reset") else "")
            + (f"; not run this time (pending again) {esc(', '.join(_names(o.get('unrun'))))}"
               if o.get("unrun") else "")
            + (f"; {esc(o['plan'])} completed" if o.get("plan_completed") else "")
            + (f"; {esc(o['plan'])} active again" if o.get("reopened") else "")
            + _refused_line(o.get("refused")))


def _refused_line(refused: object) -> str:
    """What a sync did not write, and why (an outcome whose seal failed)."""
    if not isinstance(refused, dict) or not refused:
        return ""
    return "; not written (their outcome was refused): " + "; ".join(
        f"{esc(str(t))}: {esc(str(why))}" for t, why in sorted(refused.items()))
