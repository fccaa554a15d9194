"""`coord dep`: dependencies between repos: list, check, add, update, remove."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from coordination.catalog.runs import deptodos
from coordination.catalog.audit.log import operation
from coordination.catalog.runs.depcheck import CheckResult, check_document
from coordination.catalog.runs.deptodos import DepTodo
from coordination.catalog.models import Dependency
from coordination.cli.context import Context
from coordination.cli.options import one_item
from coordination.cli.editing import given, updated
from coordination.cli.render import emit, esc, json_and_context, say, styled, table
from coordination.errors import DependencyCheckFailed, UsageError

if TYPE_CHECKING:
    from coordination.catalog.edits.dependency_edits import DependencyChanges, DependencyDeleted

F = TypeVar("F", bound=Callable[..., Any])
DEP_TYPES = ("runtime", "build", "dev", "test", "api", "peer", "optional")
DEP_STATUSES = ("satisfied", "unsatisfied", "unknown")


@click.group()
def dep() -> None:
    """Inter-repo dependencies: list, check, add, update, remove.

    \b
    Examples:
      coord dep list --consumer api
      coord dep add --consumer web --provider api --type api
    """


@dep.command("list")
@click.option("--consumer", help="Only dependencies of this repo.")
@click.option("--provider", help="Only dependencies on this repo.")
@click.option("--type", "type_", type=click.Choice(DEP_TYPES), help="Only this type.")
@json_and_context
def list_deps(
    obj: Context, consumer: str | None, provider: str | None, type_: str | None, as_json: bool
) -> None:
    """List dependencies between repos.

    \b
    Example:
      coord dep list --consumer api
    """
    items = obj.manager.reads.list_dependencies(consumer=consumer, provider=provider, type=type_)

    def human(deps: list[Dependency]) -> None:
        table(
            "Dependencies",
            ["id", "consumer", "provider", "type", "version", "status", "validated by"],
            [
                (esc(d.id), esc(d.consumer), esc(d.provider), d.type.value,
                 esc(d.version_constraint), styled(d.status.value),
                 esc(d.validation.command) if d.validation else "")
                for d in deps
            ],
            empty="no dependencies match",
        )

    emit(as_json, items, human)


@dep.command("check")
@click.option("--consumer", help="Only check the dependencies of this repo.")
@click.option("--create-todos", "create_todos", is_flag=True,
              help="Make a todo in the consumer's repo for each unsatisfied dependency "
              "(labelled dep:<DEP id>; while one is open, a later run finds it and makes "
              "no other), in one audited edit; --json lists them under todos.")
@json_and_context
def check_deps(obj: Context, consumer: str | None, create_todos: bool, as_json: bool) -> None:
    """Run the validation commands and record satisfied/unsatisfied in the catalog.

    Each command runs in the consumer's checkout. Exit 1 when one is
    unsatisfied; dependencies without a validation command are skipped.

    \b
    Examples:
      coord dep check --consumer api --json
      coord dep check --create-todos
    """
    results = obj.manager.dependencies.check(consumer=consumer)
    failed = [r for r in results if r.status == "unsatisfied"]
    doc: dict[str, object] = dict(check_document(results))
    made: list[DepTodo] = []
    if create_todos:
        made = _create_todos(obj, results)
        doc["todos"] = made

    def human(_: object) -> None:
        table(
            "Dependency check",
            ["id", "consumer", "provider", "result", "exit", "time", "reason"],
            [
                (esc(r.id), esc(r.consumer), esc(r.provider), styled(r.status),
                 "" if r.exit_code is None else r.exit_code, f"{r.duration:.2f}s",
                 esc(r.reason))
                for r in results
            ],
            empty="no dependencies to check",
        )
        for r in failed:
            if r.output_tail.strip():
                say(f"[bold]{esc(r.id)} output (tail):[/bold]\n{esc(r.output_tail.rstrip())}")
        for m in made:
            did = "created" if m["created"] else "open already:"
            say(f"{did} {esc(m['todo'])} in {esc(m['repo'])} for {esc(m['dependency'])}")

    emit(as_json, doc, human)
    if failed:
        raise DependencyCheckFailed(
            f"{len(failed)} dependenc{'y' if len(failed) == 1 else 'ies'} unsatisfied: "
            + "; ".join(f"{r.id} ({r.reason})" for r in failed)
        )


def _create_todos(obj: Context, results: list[CheckResult]) -> list[DepTodo]:
    """A todo per unsatisfied dependency (found again while open), one audited edit."""
    catalog = obj.manager.reads.catalog()
    wanted = deptodos.unsatisfied(catalog, results)
    if not wanted:
        return []
    found = deptodos.already_open(catalog, wanted)
    if found is not None:
        return found
    with operation("dep_check_create_todos"):
        return obj.manager.store.update(deptodos.edit(str(obj.manager.store.path), wanted))


def _check_options(update: bool) -> Callable[[F], F]:
    """The options of a dependency's fields (``update``: no defaults, and --no-check)."""
    def wrap(f: F) -> F:
        opts = [
            click.option("--type", "type_", type=click.Choice(DEP_TYPES),
                         default=None if update else "runtime", show_default=not update,
                         help="What kind of dependency."),
            click.option("--version", "version_constraint",
                         help="Version constraint, free text (\">=2.0\")."),
            click.option("--status", type=click.Choice(DEP_STATUSES),
                         default=None if update else "unknown", show_default=not update,
                         help="Known state (`coord dep check` records it)."),
            click.option("--notes", default=None if update else "", help="Free text."),
            click.option("--check", "command",
                         help="Validation command, run in the consumer's checkout by "
                         "`coord dep check` (stored in the catalog)."),
            click.option("--expect", "expected_pattern",
                         help="Regular expression its output must match."),
            click.option("--check-timeout", "timeout", type=click.FloatRange(0, 3600,
                         min_open=True), help="Seconds the validation may take (default 60)."),
        ]
        if update:
            opts.append(click.option("--no-check", is_flag=True,
                                     help="Remove the validation command."))
        for o in reversed(opts):
            f = o(f)
        return f
    return wrap


@dep.command("add")
@click.option("--consumer", required=True, help="The repo that depends.")
@click.option("--provider", required=True, help="The repo it depends on.")
@_check_options(update=False)
@json_and_context
def add_dep(obj: Context, consumer: str, provider: str, type_: str,
            version_constraint: str | None, status: str, notes: str, command: str | None,
            expected_pattern: str | None, timeout: float | None, as_json: bool) -> None:
    """Add a dependency of one repo on another; prints its new id.

    \b
    Example:
      coord dep add --consumer web --provider libcore --type build --version ">=2.1" \\
          --check "pip show libcore" --expect "^Version: 2\\."
    """
    added = obj.manager.dependencies.add(
        consumer, provider, type=type_, version_constraint=version_constraint, status=status,
        notes=notes, command=command, expected_pattern=expected_pattern, timeout=timeout)
    emit(as_json, added, lambda d: say(esc(d.id)))


@dep.command("update")
@click.argument("dep_id", metavar="DEP")
@click.option("--consumer", help="New consumer repo.")
@click.option("--provider", help="New provider repo.")
@_check_options(update=True)
@json_and_context
def update_dep(obj: Context, dep_id: str, consumer: str | None, provider: str | None,
               type_: str | None, version_constraint: str | None, status: str | None,
               notes: str | None, command: str | None, expected_pattern: str | None,
               timeout: float | None, no_check: bool, as_json: bool) -> None:
    """Change fields of a dependency (only those given; '' clears a text field).

    \b
    Example:
      coord dep update DEP-003 --version v3 --check "cat api-version" --expect "^v3"
      coord dep update DEP-001 --no-check
    """
    changes: DependencyChanges = given(
        consumer=consumer, provider=provider, type=type_,
        version_constraint=version_constraint, status=status, notes=notes, command=command,
        expected_pattern=expected_pattern, timeout=timeout)
    if no_check:
        if command:
            raise UsageError("--check and --no-check together", hint="give one of them")
        changes["command"] = None
    updated(as_json, changes, lambda: obj.manager.dependencies.update(dep_id, **changes))


@one_item(dep.command("remove"), "dep_id", "DEP")
def remove_dep(obj: Context, dep_id: str, as_json: bool) -> None:
    """Remove a dependency (nothing else in the catalog names one).

    \b
    Example:
      coord dep remove DEP-003
    """
    def human(doc: DependencyDeleted) -> None:
        say(f"removed {esc(doc['deleted'])}")

    emit(as_json, obj.manager.dependencies.remove(dep_id), human)
