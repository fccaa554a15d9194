"""`coord plan create|update|delete`: plans as catalog edits (plan.py holds the reads
and sweeps). Parse, call the manager, render."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from coordination.cli.context import Context
from coordination.cli.issue import say_deleted
from coordination.cli.render import emit, json_option, say, split_list
from coordination.errors import UsageError

if TYPE_CHECKING:  # the manager's types: off `coord plan list`
    from coordination.catalog.structure import PlanChanges

PLAN_STATUSES = ("draft", "active", "completed", "cancelled")


@click.command("create")
@click.option("--title", required=True, help="One-line summary.")
@click.option("--description", default="", help="Longer text.")
@click.option("--status", type=click.Choice(PLAN_STATUSES), default="draft", show_default=True)
@click.option("--repos", multiple=True, help="Repos it touches, comma-separated (a,b).")
@click.option("--criterion", "criteria", multiple=True,
              help="A completion criterion; repeat for more.")
@json_option
@click.pass_obj
def create_cmd(obj: Context, title: str, description: str, status: str,
               repos: tuple[str, ...], criteria: tuple[str, ...], as_json: bool) -> None:
    """Create a plan; prints its new id (never one a deleted plan had).

    \b
    Example:
      coord plan create --title "Python 3.14" --repos libcore,api \\
          --criterion "every service on 3.14"
    """
    created = obj.manager.create_plan(title, description=description, status=status,
                                      repos=split_list(repos), criteria=list(criteria))
    emit(as_json, created, lambda p: say(p.id))


@click.command("update")
@click.argument("plan_id", metavar="PLAN")
@click.option("--title", help="New title.")
@click.option("--description", help="New description ('' to clear).")
@click.option("--status", type=click.Choice(PLAN_STATUSES), help="New status.")
@click.option("--repos", multiple=True, help="Replace the repos, comma-separated ('' for none).")
@click.option("--criterion", "criteria", multiple=True,
              help="Replace the completion criteria; repeat for more.")
@json_option
@click.pass_obj
def update_cmd(obj: Context, plan_id: str, title: str | None, description: str | None,
               status: str | None, repos: tuple[str, ...], criteria: tuple[str, ...],
               as_json: bool) -> None:
    """Change fields of a plan (only those given).

    \b
    Example:
      coord plan update PLAN-002 --status active --repos libcore,api,web
    """
    changes: PlanChanges = {}
    if title is not None:
        changes["title"] = title
    if description is not None:
        changes["description"] = description
    if status is not None:
        changes["status"] = status
    if repos:
        changes["repos"] = split_list(repos)
    if criteria:
        changes["completion_criteria"] = list(criteria)
    if not changes:
        raise UsageError("nothing to update", hint="pass at least one option; see --help")
    emit(as_json, obj.manager.update_plan(plan_id, **changes),
         lambda p: say(f"updated {p.id}"))


@click.command("delete")
@click.argument("plan_id", metavar="PLAN")
@click.option("--force", is_flag=True,
              help="Delete it even when todos belong to it: they stay, in no plan.")
@json_option
@click.pass_obj
def delete_cmd(obj: Context, plan_id: str, force: bool, as_json: bool) -> None:
    """Delete a plan and its milestones. Refused (exit 2, naming each todo by file and
    line) while todos belong to it, unless --force, which takes them out of the plan
    in the same edit.

    \b
    Example:
      coord plan delete PLAN-003
      coord plan delete PLAN-002 --force --json
    """
    emit(as_json, obj.manager.delete_plan(plan_id, force=force), say_deleted)


COMMANDS = (create_cmd, update_cmd, delete_cmd)
