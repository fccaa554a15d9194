"""Options several commands share, declared once (their help texts their own where the
commands differ)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from coordination.cli.render import json_and_context


F = TypeVar("F", bound=Callable[..., Any])


def order_options(order_by_help: str, cycles_help: str) -> Callable[[F], F]:
    """``--order-by TYPES`` and ``--cycles group|error``: which dependency types order
    repos, and what a cycle among them does (`coord run`, `coord plan sweep`)."""

    def declare(f: F) -> F:
        f = click.option("--cycles", type=click.Choice(["group", "error"]), default=None,
                         help=cycles_help)(f)
        return click.option("--order-by", "order_by", default=None, metavar="TYPES",
                            help=order_by_help)(f)

    return declare


def criteria_options(flag: str, criterion_help: str, check_help: str, *,
                     metavar: str | None = None,
                     aliases: tuple[str, ...] = ()) -> Callable[[F], F]:
    """``--<flag> TEXT`` (repeated: the criteria) and ``--check CMD`` (the i-th checks the
    i-th criterion; see :func:`coordination.cli.criteria_flags.paired_criteria`)."""

    def declare(f: F) -> F:
        f = click.option("--check", "checks", multiple=True, metavar="CMD", help=check_help)(f)
        return click.option(*aliases, f"--{flag}", "criteria", multiple=True, metavar=metavar,
                            help=criterion_help)(f)

    return declare


def listen_options(port: click.IntRange, default_port: int, port_help: str,
                   address_help: str) -> Callable[[F], F]:
    """``--port`` and ``--address`` of a command that serves HTTP (`coord ui`, `coord
    metrics`), localhost unless told."""

    def declare(f: F) -> F:
        f = click.option("--address", default="127.0.0.1", show_default=True,
                         help=address_help)(f)
        return click.option("--port", type=port, default=default_port, show_default=True,
                            help=port_help)(f)

    return declare


def one_item(command: Callable[[Callable[..., None]], click.Command], argument: str,
             metavar: str | None = None) -> Callable[[Callable[..., None]], click.Command]:
    """A command on one item (`show`, `close`, `remove`...): the item's id as ``argument``
    (shown as ``metavar``), ``--json``, and the CLI's context passed in."""

    def declare(f: Callable[..., None]) -> click.Command:
        return command(click.argument(argument, metavar=metavar)(json_and_context(f)))

    return declare
