"""`coord` entry point: the root group, lazy subcommands, error to exit-code mapping.

Each noun lives in its own module and is imported only when invoked, so
`coord todo list` imports neither Celery nor networkx.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":  # `python -m coordination.cli.main`: before the CLI's imports
    from workers.starter import start

    def _rerun(argv: list[str]) -> None:
        # lazy: this module under its own name, in a process started again after a death
        # by a parent that never loaded it (workers/starter.py)
        from coordination.cli.main import main

        main(argv)

    start(sys.argv[1:], _rerun)  # (a worker of several repos: see workers/starter.py)

import atexit  # noqa: E402
import gc
import importlib
import logging
import os
import threading
import time
from pathlib import Path

import click

from coordination.catalog.reads import live
from coordination.catalog.audit.log import invoked_as
from coordination.cli.context import Context
from coordination.cli.render import clean
from coordination.errors import CoordError

# name -> "module:attribute"; imported on first use.
COMMANDS: dict[str, tuple[str, str]] = {
    "issue": ("coordination.cli.issue:issue", "Cross-repo issues: list, show, create, update, close, delete, suggest, link."),
    "todo": ("coordination.cli.todo:todo", "Todos: list, show, create, update, complete, delete, run."),
    "plan": ("coordination.cli.plan:plan", "Plans: list, show, status, validate, graph, sweep, reset, create, update, delete, optimize."),
    "milestone": ("coordination.cli.milestone:milestone", "Milestones of plans: add, update, delete."),
    "dep": ("coordination.cli.dep:dep", "Inter-repo dependencies: list, check, add, update, remove."),
    "repo": ("coordination.cli.repo:repo", "Repos: list, status, blocking, reset, add, update, remove."),
    "sweep": ("coordination.cli.sweep:sweep", "Sweeps: list, status, watch, pause, unpause, resume, rollback, cancel, sync."),
    "run": ("coordination.cli.run:run", "Run a command in every selected repo (--repos SELECTOR), as a sweep."),
    "approve": ("coordination.cli.gates:approve", "Approve a sweep's gate (a todo with gate:)."),
    "reject": ("coordination.cli.gates:reject", "Reject a sweep's gate."),
    "approvers": ("coordination.cli.approvers:approvers", "Who may approve gates (SSH signatures): show, set, unset."),
    "change": ("coordination.cli.change:change", "Cross-repo changes: status, publish, land, queue (the merge train), revert, abandon, prune."),
    "events": ("coordination.cli.events:events", "Show (and follow) the event ledger."),
    "worker": ("coordination.cli.worker:worker", "Run a Celery worker for one or more repos."),
    "workers": ("coordination.cli.workers:workers", "List live workers and what they run."),
    "resources": ("coordination.cli.resources:resources", "Who holds which lease and resource slot, and who waits."),
    "dead-letters": ("coordination.cli.workers:dead_letters", "Malformed broker messages set aside."),
    "flower": ("coordination.cli.worker:flower", "Run Flower on coord's Celery app."),
    "logs": ("coordination.cli.logs:logs", "A todo's whole output, attempt by attempt; --follow while it runs."),
    "why": ("coordination.cli.why:why", "Why a cache: todo's last run was reused, or what changed."),
    "history": ("coordination.cli.history:history", "History of ended sweeps and catalog edits: search, trends."),
    "notify": ("coordination.cli.notify:notify", "Webhook notifications: add, remove, list, test, log."),
    "audit": ("coordination.cli.audit:audit", "The log of catalog edits made through coord; --verify."),
    "mcp": ("coordination.mcp_server.server:mcp", "Serve coord's tools to agents (MCP on stdio or HTTP)."),
    "ui": ("coordination.cli.ui:ui", "Serve a live web view of sweeps, plans, changes and repos."),
    "metrics": ("coordination.cli.metrics:metrics", "Serve coord's metrics for Prometheus."),
    "doctor": ("coordination.cli.doctor:doctor", "Check Redis, the catalog, workers and clocks."),
    "init": ("coordination.cli.init:init", "Write a catalog from a fleet of git checkouts; --check: drift."),
    "schema": ("coordination.cli.schema:schema", "Print the catalog's JSON Schema."),
    "context": ("coordination.cli.shared_context:context", "Values shared between todos: get, set, list, delete, export, import."),
    "forge": ("coordination.cli.forge:forge", "Forges (GitHub, GitLab, Gitea): their events in (webhook)."),
    "acl": ("coordination.cli.acl:acl", "Redis ACL users: one per repo's workers, one per role; --apply."),
    "beat": ("coordination.cli.schedule:beat", "Fire plans' schedules (Celery beat with celery-redbeat; one active)."),
    "schedule": ("coordination.cli.schedule:schedule", "Plans' schedules: list (next firings, last fired and skipped)."),
    "trigger": ("coordination.cli.trigger:trigger", "Start the plans an event starts: push (for CI without a webhook)."),
    "freeze": ("coordination.cli.freeze:freeze", "Refuse new sweeps and landings fleet-wide (an emergency stop)."),
    "unfreeze": ("coordination.cli.freeze:unfreeze", "End a freeze: new sweeps and landings may start again."),
}


class LazyGroup(click.Group):
    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: object) -> click.Context:
        # Catalog edits made by this command record its argv in the audit log (for as
        # long as the root context lives: the whole command).
        argv = list(args)
        ctx = super().make_context(info_name, args, parent, **extra)
        ctx.with_resource(invoked_as(argv))
        return ctx

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target[0].split(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command), target
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing help must not import every command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, help_) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--file",
    "-f",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Catalog file (default: $COORD_ECOSYSTEM, else ./ecosystem.yaml).",
)
@click.version_option(package_name="coord")
@click.pass_context
def cli(ctx: click.Context, file: Path | None) -> None:
    """coord: coordinate work across many repositories.

    \b
    Examples:
      coord todo list --repo api
      coord plan sweep PLAN-001 --wait
      coord sweep status SWEEP_ID --json
    """
    if file is None:
        file = Path(os.environ.get("COORD_ECOSYSTEM") or "ecosystem.yaml")
    ctx.obj = Context(file)
    if ctx.invoked_subcommand not in NO_CATCH_UP and live.of_this_redis(file):
        # A sweep of this catalog waits to be synced or runs: sync what ended, show
        # what runs (one scandir when none: no Redis is asked).
        from coordination.sweeps.writeback.live import catch_up  # lazy: only when a sweep is marked

        catch_up(file)


#: Commands that never catch up with the catalog's sweeps at start: long-running ones
#: do it per request, `sweep ...` syncs (watch, sync, rollback --wait) and reads sweeps
#: as they are, the others read no todo status.
NO_CATCH_UP = frozenset({"worker", "flower", "mcp", "ui", "metrics", "init", "schema",
                         "sweep"})


#: Seconds the cyclic garbage collector stays off after the CLI starts.
GC_PAUSE_S = 2.0

_gc_paused = False


def pause_gc(seconds: float = GC_PAUSE_S) -> None:
    """Keep the cyclic garbage collector off while the CLI starts, and out of its exit.

    Importing the libraries and loading the catalog creates a few hundred thousand
    objects that live until the process ends; the collector would walk them again and
    again while they are made, and once more when the interpreter exits. Measured on a
    400-todo catalog: `plan validate` 0.34 s -> 0.23 s, the waiting CLI of a 400-todo
    sweep 0.66 s -> 0.51 s of CPU. Reference counting still frees everything acyclic.

    - A process that lives longer than ``seconds`` (a worker, `coord ui`, a long
      `--wait`) gets the collector back: what exists then is collected once, the
      survivors are frozen (no later collection walks them again) and collection
      resumes as usual.
    - At exit, everything is frozen first (the last exit handler), so the interpreter's
      final collections skip it; files are still flushed and closed, threads joined
      and exit handlers run as at any exit.
    - A child made by ``os.fork`` (not by ``subprocess``, which execs) collects again.
    """
    global _gc_paused
    if _gc_paused or not gc.isenabled():
        return
    _gc_paused = True
    gc.disable()
    atexit.register(gc.freeze)  # registered first, so it runs after every other handler
    os.register_at_fork(after_in_child=gc.enable)

    def resume() -> None:
        gc.collect()
        gc.freeze()
        gc.enable()

    timer = threading.Timer(seconds, resume)
    timer.daemon = True
    timer.name = "coord-gc-resume"
    timer.start()


def deliver_webhooks_left() -> None:
    """Embedded: webhook deliveries an earlier sweep's process left pending (its
    receiver was down when it exited) go out once due, started by the next command that
    opened the catalog's runtime (`sweep list`, `sweep status`, `events`...) on its way
    out: from a detached process (:mod:`coordination.sweeps.notices.notify_later`, one at a
    time), so the command itself never waits on a slow receiver. A command that opened
    no runtime (`coord todo list`) imports and asks nothing; one that did asks Redis
    once, and starts the deliverer only when something is due."""
    context = sys.modules.get("coordination.runtime.context")
    if context is None:
        return
    notify = sys.modules.get("coordination.sweeps.notices.notify")
    for rt in context.embedded_opened():
        try:
            if not rt.outbox().left_due(time.time()):
                continue
            if notify is not None and notify.delivered_left(rt):
                continue  # (a sweep's exit or `notify log` delivered just now, from here)
            from coordination.sweeps.notices.notify_later import deliver_later  # lazy: as above

            deliver_later(rt)
        except Exception:  # noqa: BLE001 - leaving: never mask the command's outcome
            logging.getLogger("coord.notify").debug("delivering what was left failed",
                                                    exc_info=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: run the CLI, map coord errors to exit codes 1/2; before
    leaving (not on Ctrl-C), have what embedded webhooks have due delivered, in the
    background (:func:`deliver_webhooks_left`)."""
    try:
        _main(argv)
    except SystemExit as exc:
        if exc.code != 130:
            deliver_webhooks_left()
        raise


def _main(argv: list[str] | None) -> None:
    pause_gc()
    try:
        cli.main(args=argv, prog_name="coord", standalone_mode=False)
    except CoordError as exc:
        click.echo(f"error: {clean(exc, lines=True)}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:
        # Broker/Redis unreachable: a clear message, not a traceback. Checked by
        # module name so the CLI's start-up never imports redis or kombu.
        mod = type(exc).__module__ or ""
        if mod.startswith(("redis", "kombu")) or "OperationalError" in type(exc).__name__:
            # What is wrong, in words (the same as `coord worker` at start); password redacted.
            # lazy: only on this error; the CLI's start-up never imports redis or kombu.
            from coordination.connection.preflight import unreachable

            err = unreachable(exc, os.environ.get("COORD_REDIS_URL", ""))
            click.echo(f"error: {err}", err=True)
            sys.exit(err.exit_code)
        raise
    sys.exit(0)


if __name__ == "__main__":
    main()
