"""What every command gets as its click object: where the catalog is, and lazily a manager."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from coordination.catalog.manager import CoordinationManager


class Context:
    """The catalog file of this invocation, and a manager over it made on first use
    (`coord todo list` reads without one)."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self._manager: CoordinationManager | None = None

    @property
    def manager(self) -> CoordinationManager:
        if self._manager is None:
            # lazy: Pydantic models and the YAML round trip, off `coord todo list`, which
            # reads the validated-catalog cache without them.
            from coordination.catalog.manager import CoordinationManager

            self._manager = CoordinationManager(self.file)
        return self._manager

    def select_repos(self, values: tuple[str, ...] | list[str]) -> list[str]:
        """The repo names the ``--repos`` values of a write select, resolved against
        the catalog now (the catalog keeps names, not selectors): repeats join with
        commas into one selector, ``''`` is none, and the names are in the order
        written. A term matching nothing is the selectors' error (closest names)."""
        text = ",".join(v for v in values if v.strip())
        if not text:
            return []
        from coordination.catalog.selection.selectors import select  # lazy: only with --repos

        return select(self.manager.reads.catalog(), text, self.file.resolve().parent,
                      written_order=True).names


def current_file() -> Path | None:
    """The catalog file of the command running now (None outside a command)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(Context) if ctx is not None else None
    return obj.file if obj is not None else None


def nothing_recorded(file: Path) -> bool:
    """Embedded mode, and ``file`` has nothing a server could hand back: its server was
    never started and coord 0.2 left no file for a runtime to carry over. A command
    that only reads then answers without one, and starts no server (which would leave
    its directory beside the catalog). Asked of the filesystem, before any runtime is
    opened."""
    # lazy: the embedded server's files (redis-py), asked only by commands that read runs
    from coordination.connection.embedded_server import never_started

    if not never_started(file):
        return False
    # lazy: the 0.2 step (sqlite3), asked only of a catalog whose server never started
    from coordination.runtime.migrations.v02_embedded_file import old_file

    return not old_file(file.absolute()).exists()


def refuse_unrecorded(file: Path, what: str) -> None:
    """A read of ``what`` (an unknown sweep, a todo's logs) on a catalog with nothing
    recorded (:func:`nothing_recorded`): refused here, saying so (exit 2), so that the
    read starts no server only to find nothing."""
    if nothing_recorded(file):
        from coordination.errors import NotFoundError  # lazy: as the imports above

        raise NotFoundError(f"{what}: no sweep has run from {file} yet",
                            hint=f"start one: `coord plan sweep PLAN` (and --file {file})")
