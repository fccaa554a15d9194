"""`coord dep`: dependencies between repos, and checking them."""

from __future__ import annotations

import click

from coordination.catalog.depcheck import check_document
from coordination.catalog.models import Dependency
from coordination.cli.context import Context
from coordination.cli.render import emit, esc, json_option, say, styled, table
from coordination.errors import DependencyCheckFailed

DEP_TYPES = ("runtime", "build", "dev", "test", "api")


@click.group()
def dep() -> None:
    """Inter-repo dependencies: list, check."""


@dep.command("list")
@click.option("--consumer", help="Only dependencies of this repo.")
@click.option("--provider", help="Only dependencies on this repo.")
@click.option("--type", "type_", type=click.Choice(DEP_TYPES), help="Only this type.")
@json_option
@click.pass_obj
def list_deps(
    obj: Context, consumer: str | None, provider: str | None, type_: str | None, as_json: bool
) -> None:
    """List dependencies between repos.

    \b
    Example:
      coord dep list --consumer api
    """
    items = obj.manager.list_dependencies(consumer=consumer, provider=provider, type=type_)

    def human(deps: list[Dependency]) -> None:
        table(
            "Dependencies",
            ["id", "consumer", "provider", "type", "version", "status", "validated by"],
            [
                (d.id, esc(d.consumer), esc(d.provider), d.type.value,
                 esc(d.version_constraint), styled(d.status.value),
                 esc(d.validation.command) if d.validation else "")
                for d in deps
            ],
            empty="no dependencies match",
        )

    emit(as_json, items, human)


@dep.command("check")
@click.option("--consumer", help="Only check the dependencies of this repo.")
@json_option
@click.pass_obj
def check_deps(obj: Context, consumer: str | None, as_json: bool) -> None:
    """Run the validation commands and record satisfied/unsatisfied in the catalog.

    Each command runs in the consumer's checkout. Exit 1 when one is
    unsatisfied; dependencies without a validation command are skipped.

    \b
    Example:
      coord dep check --consumer api --json
    """
    results = obj.manager.check_dependencies(consumer=consumer)
    failed = [r for r in results if r.status == "unsatisfied"]
    doc = check_document(results)

    def human(_: object) -> None:
        table(
            "Dependency check",
            ["id", "consumer", "provider", "result", "exit", "time", "reason"],
            [
                (r.id, esc(r.consumer), esc(r.provider), styled(r.status),
                 "" if r.exit_code is None else r.exit_code, f"{r.duration:.2f}s",
                 esc(r.reason))
                for r in results
            ],
            empty="no dependencies to check",
        )
        for r in failed:
            if r.output_tail.strip():
                say(f"[bold]{r.id} output (tail):[/bold]\n{esc(r.output_tail.rstrip())}")

    emit(as_json, doc, human)
    if failed:
        raise DependencyCheckFailed(
            f"{len(failed)} dependenc{'y' if len(failed) == 1 else 'ies'} unsatisfied: "
            + "; ".join(f"{r.id} ({r.reason})" for r in failed)
        )
