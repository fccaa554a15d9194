"""A change's state kept beside the catalog around the change commands
(:mod:`coordination.change.mirror`): carried in before they read it, kept after a
landing or revert ends."""

from __future__ import annotations

from pathlib import Path

from coordination.change.mirror import carry_over, save, where
from coordination.cli.context import Context
from coordination.cli.render import err_console, esc
from coordination.runtime.context import Runtime


def carried(obj: Context, rt: Runtime, plan_id: str) -> None:
    """The change's record kept beside the catalog, carried into the Redis in use when
    it is newer (landed or reverted in the other mode), and said."""
    came = carry_over(rt, Path(obj.file), plan_id)
    if came:
        err_console().print(f"{esc(plan_id)}: its landing state was carried over from "
                            f"{esc(came)}, as kept beside the catalog")


def kept(obj: Context, rt: Runtime, plan_id: str) -> None:
    """After a landing or revert: its record kept beside the catalog (said if not)."""
    try:
        save(rt, Path(obj.file), plan_id)
    except OSError as exc:
        err_console().print(f"[yellow]warning:[/yellow] the state of {esc(plan_id)} is not "
                            f"kept beside the catalog ({esc(exc)}): only {esc(where(rt))} "
                            "knows it")
