"""`coord milestone`: the milestones of plans (add, update, delete). Parse, call the
manager, render."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from coordination.cli.context import Context
from coordination.cli.editing import deleting, given, updated
from coordination.cli.issue import date_type
from coordination.cli.render import emit, esc, json_and_context, say, split_list
from coordination.errors import UsageError

if TYPE_CHECKING:
    from coordination.catalog.edits.plan_edits import MilestoneChanges, MilestoneDeleted


def _date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value is not None else None


@click.group()
def milestone() -> None:
    """Milestones of plans: add, update, delete (`coord plan show` lists them).

    \b
    Examples:
      coord milestone add PLAN-001 --title "Staging green" --due 2026-12-01
      coord milestone update MS-003 --todos TODO-003,TODO-004
    """


@milestone.command("add")
@click.argument("plan_id", metavar="PLAN")
@click.option("--title", default="", help="What it marks.")
@click.option("--due", type=date_type, help="Due date, YYYY-MM-DD.")
@click.option("--todos", multiple=True, help="Its todos, comma-separated (TODO-1,TODO-2).")
@click.option("--deliverable", "deliverables", multiple=True,
              help="A deliverable; repeat for more.")
@json_and_context
def add_cmd(obj: Context, plan_id: str, title: str, due: dt.datetime | None,
            todos: tuple[str, ...], deliverables: tuple[str, ...], as_json: bool) -> None:
    """Add a milestone to a plan; prints its new id (unique across the catalog).

    \b
    Example:
      coord milestone add PLAN-001 --title "Staging green" --due 2026-12-01 \\
          --todos TODO-003,TODO-004 --deliverable "staging on 3.13"
    """
    added = obj.manager.milestones.add(plan_id, title, due=_date(due), todos=split_list(todos),
                                       deliverables=list(deliverables))
    emit(as_json, added, lambda m: say(esc(m.id)))


@milestone.command("update")
@click.argument("milestone_id", metavar="MS")
@click.option("--title", help="New title ('' to clear).")
@click.option("--due", type=date_type, help="New due date, YYYY-MM-DD.")
@click.option("--no-due", is_flag=True, help="Remove the due date.")
@click.option("--todos", multiple=True, help="Replace its todos, comma-separated ('' for none).")
@click.option("--deliverable", "deliverables", multiple=True,
              help="Replace the deliverables; repeat for more.")
@json_and_context
def update_cmd(obj: Context, milestone_id: str, title: str | None, due: dt.datetime | None,
               no_due: bool, todos: tuple[str, ...], deliverables: tuple[str, ...],
               as_json: bool) -> None:
    """Change fields of a milestone (only those given).

    \b
    Example:
      coord milestone update MS-002 --due 2026-12-20 --todos TODO-003,TODO-004,TODO-006
    """
    if due is not None and no_due:
        raise UsageError("--due and --no-due together", hint="give one of them")
    changes: MilestoneChanges = given(title=title)
    if due is not None or no_due:
        changes["due"] = _date(due)  # --no-due: None, which removes it
    changes.update(given(todos=split_list(todos) if todos else None,
                         deliverables=list(deliverables) if deliverables else None))
    updated(as_json, changes, lambda: obj.manager.milestones.update(milestone_id, **changes))


@deleting(milestone.command("delete"), "milestone_id", "MS",
          "Delete it even when todos are in its plan through it alone: they leave "
          "the plan.")
def delete_cmd(obj: Context, milestone_id: str, force: bool) -> MilestoneDeleted:
    """Delete a milestone. Refused (exit 2, naming them) while todos are in its plan
    through this milestone alone, unless --force.

    \b
    Example:
      coord milestone delete MS-002 --json
    """
    return obj.manager.milestones.delete(milestone_id, force=force)
