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
            # Pydantic models and the YAML round trip: off `coord todo list`, which reads
            # the validated-catalog cache without them.
            from coordination.catalog.manager import CoordinationManager

            self._manager = CoordinationManager(self.file)
        return self._manager


def current_file() -> Path | None:
    """The catalog file of the command running now (None outside a command)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(Context) if ctx is not None else None
    return obj.file if obj is not None else None
