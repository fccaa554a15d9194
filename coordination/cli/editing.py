"""The steps the catalog's edit commands share: the values an update was given, an
update's end (refused when it changes nothing), and a delete command (``--force``,
``--json``) with what it says of the references that went with the item."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, Union

import click

from coordination.cli.render import emit, esc, json_and_context, say
from coordination.errors import UsageError

if TYPE_CHECKING:  # the manager's documents: off `coord todo list`
    from coordination.catalog.edits.document import ReferenceDict
    from coordination.catalog.edits.issue_edits import IssueDeleted
    from coordination.catalog.edits.plan_edits import MilestoneDeleted, PlanDeleted
    from coordination.catalog.edits.todo_edits import TodoDeleted

    Deleted = Union[IssueDeleted, TodoDeleted, PlanDeleted, MilestoneDeleted]

D = TypeVar("D")


def given(**values: object) -> Any:
    """The values that were given (not None), in the order named: the fields an update
    changes (``''`` is given: it clears a text field), typed by the caller as the
    manager's TypedDict of those changes."""
    return {k: v for k, v in values.items() if v is not None}


def due_value(text: str) -> str | dt.date | None:
    """``--due`` as the catalog writes it (a day as a date, an instant as its text; None
    for '': removed), checked as the model checks a ``due:`` (its message, exit 2)."""
    from coordination.catalog.due import parse_due  # stdlib only: how `due:` is read

    text = text.strip()
    if not text:
        return None
    try:
        parse_due(text)
    except ValueError as exc:
        raise UsageError(f"bad --due: {exc}") from None
    return dt.date.fromisoformat(text) if len(text) == 10 else text


def updated(as_json: bool, changes: Mapping[str, object], update: Callable[[], D], *,
            key: str = "id") -> D:
    """An update command's end: exit 2 when no option changes anything, else the update
    made and ``updated ID`` (``key``: the attribute that names the item); the item."""
    if not changes:
        raise UsageError("nothing to update", hint="pass at least one option; see --help")
    item = update()
    emit(as_json, item, lambda i: say(f"updated {esc(getattr(i, key))}"))
    return item


def say_deleted(doc: Deleted) -> None:
    """``deleted ID`` and, when references went with it, which lists lost it."""
    say(f"deleted {esc(doc['deleted'])}")
    forced = [d for d in doc["dropped"] if not d["mirror"]]
    mirrors = [d for d in doc["dropped"] if d["mirror"]]

    def where(d: ReferenceDict) -> str:
        who = f"{d['plan']}/{d['id']}" if d.get("plan") else d["id"]
        return esc(f"{who}.{d['field']}")

    if forced:
        say(f"dropped {esc(doc['deleted'])} from " + ", ".join(where(d) for d in forced))
    if mirrors:
        say(f"[dim]and from {', '.join(where(d) for d in mirrors)} (its own relations)[/dim]")


def deleting(command: Callable[[Callable[..., None]], click.Command], argument: str,
             metavar: str, force_help: str) -> Callable[[Callable[..., Deleted]], click.Command]:
    """A delete command from the function that deletes (given the context, the id as
    ``argument`` and ``force``; its docstring the help): ``--force`` (``force_help``),
    ``--json``, and :func:`say_deleted` for people."""

    def make(delete: Callable[..., Deleted]) -> click.Command:
        def run(obj: object, /, as_json: bool, **given_: object) -> None:
            emit(as_json, delete(obj, **given_), say_deleted)

        run.__doc__ = delete.__doc__  # the command's help
        declared = json_and_context(run)
        declared = click.option("--force", is_flag=True, help=force_help)(declared)
        return command(click.argument(argument, metavar=metavar)(declared))

    return make
