"""`coord freeze` / `coord unfreeze`: the fleet's emergency stop
(:mod:`coordination.sweeps.governance.freeze` says what it refuses and lets through)."""

from __future__ import annotations

from pathlib import Path

import click

from coordination.cli.context import Context
from coordination.cli.render import emit, esc, json_and_context, say
from coordination.runtime.context import get_runtime


def _who(file: Path) -> str:
    from coordination.catalog.audit.log import who  # lazy: git

    return who(file.resolve().parent if file.exists() else Path.cwd())


def _audited(a: bool | str) -> str:
    return "" if a is True else f" [yellow]({esc(str(a))})[/yellow]" if a else ""


@click.command()
@click.option("--reason", default="", help="Why: shown by every refusal, `coord doctor`, "
              "`change status` and the web view, and kept in the audit log.")
@json_and_context
def freeze(obj: Context, reason: str, as_json: bool) -> None:
    """Freeze the fleet: refuse new sweeps and landings until `coord unfreeze`
    (plan sweep, todo run, coord run, sweep resume and unpause, schedules' firings,
    push triggers, change land and the merge train), for every catalog and machine
    of the namespace. Running sweeps go on: stop them with `coord sweep pause --all`
    or `coord sweep cancel --all`. Rollbacks, reverts, pauses and cancels stay allowed.
    A refusal exits 1 and says who froze the fleet, when and why. Audited. The freeze
    is kept in Redis and beside the catalog (.coord/freeze.json): one removed from
    Redis alone is put back (and said: fleet.refrozen).

    \b
    Examples:
      coord freeze --reason "incident 4711: bad release of core"
      coord sweep pause --all
      coord unfreeze
    """
    from coordination.sweeps.governance import freeze as freezing  # lazy: the sweeps

    out = freezing.freeze(get_runtime(obj.file), obj.file, who=_who(obj.file),
                          reason=reason.strip())

    def human(d: freezing.FreezeResult) -> None:
        said = f"by {esc(str(d['by']))} at {esc(str(d['at']))}" + (
            f": {esc(str(d['reason']))}" if d["reason"] else "")
        if d["changed"]:
            say(f"the fleet is frozen {said}{_audited(d['audited'])}; nothing new starts or "
                "lands until `coord unfreeze` (running sweeps go on: `coord sweep pause --all`)")
        else:
            say(f"the fleet was already frozen {said}")
        _kept(d["kept"])

    emit(as_json, out, human)


@click.command()
@json_and_context
def unfreeze(obj: Context, as_json: bool) -> None:
    """End the freeze: new sweeps and landings may start again (paused sweeps stay paused:
    `coord sweep unpause ID`). Clears it in Redis and beside the catalog; a freeze
    record that cannot be read is lifted too. Audited.

    \b
    Example:
      coord unfreeze
    """
    from coordination.sweeps.governance import freeze as freezing  # lazy: the sweeps

    out = freezing.unfreeze(get_runtime(obj.file), obj.file, who=_who(obj.file))

    def human(d: freezing.FreezeResult) -> None:
        say(f"the fleet is no longer frozen{_audited(d['audited'])}" if d["changed"]
            else "the fleet was not frozen")
        _kept(d["kept"])

    emit(as_json, out, human)


def _kept(k: bool | str) -> None:
    if k is not True:
        say(f"[yellow]warning: {esc(str(k))}[/yellow]")
