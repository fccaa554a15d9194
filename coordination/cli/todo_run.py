"""`coord todo run ID`: one todo through the same runtime as a one-todo sweep."""

from __future__ import annotations

import sys

import click

from coordination.cli.context import Context
from coordination.cli.render import json_and_context


@click.command("run")
@click.argument("todo_id", metavar="ID")
@click.option("--wait", is_flag=True, help="Follow it to the end and sync the catalog (embedded always waits).")
@click.option("--ignore-blockers", is_flag=True, help="Run it although its blockers are not done.")
@click.option("--no-sync", "no_sync", is_flag=True,
              help="Do not write the outcome into the catalog when it ends.")
@click.option("--no-cache", "no_cache", is_flag=True, help="Run it even when an earlier "
              "success has its cache key (its success is still stored).")
@click.option("--require-workers", is_flag=True, help="Refuse (exit 2) when no live worker "
              "serves its repo, instead of queueing it (embedded: its own workers serve it).")
@json_and_context
def run(obj: Context, todo_id: str, wait: bool, ignore_blockers: bool, no_sync: bool,
        no_cache: bool, require_workers: bool, as_json: bool) -> None:
    """Run one todo as a one-todo sweep (lease, checkpoint, events, sync); prints its sweep id.

    Its blockers (todos completed, issues resolved or closed) must be done
    unless --ignore-blockers.

    \b
    Examples:
      coord todo run TODO-004 --wait
      coord todo run TODO-004 --no-cache --wait
      ID=$(coord todo run TODO-004) && coord sweep watch $ID
    """
    # lazy: the sweep commands (launch, Celery), off `coord todo list`, which loads this
    # module to register the command
    from coordination.cli.sweep import run_start

    sys.exit(run_start(obj.file, "", strategy="levels", wait=wait, ignore_blockers=ignore_blockers,
                       as_json=as_json, todo_id=todo_id, sync=not no_sync, no_cache=no_cache,
                       require_workers=require_workers))
