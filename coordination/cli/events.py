"""`coord events [--sweep ID] [--todo ID] [--follow] [--limit N]`: the event ledger.

Events are read from Redis streams, so a reader that starts late or
reconnects misses nothing. Embedded (no COORD_REDIS_URL), the events of sweeps
that ended in earlier processes are loaded from beside the catalog first. Without --follow, --json prints one JSON array;
with --follow, --json prints one JSON object per line (JSON Lines), the only
way a stream that does not end can be read by scripts.

--follow prints what happens from now on (``tail -f`` of a log that only grows:
no backlog replayed, #50), or first the newest ``--limit N`` events; with --sweep,
a sweep's story: all of that sweep's events (or its newest ``--limit``), then new
ones until it ends.
"""

from __future__ import annotations

import datetime as dt
import sys

import click

from coordination.cli.context import Context, nothing_recorded, refuse_unrecorded
from coordination.cli.render import console, esc, json_and_context, print_json, table
from coordination.jsonable import dumps
from coordination.runtime.context import get_runtime
from coordination.runtime.events import Event
from coordination.sweeps import SweepService, ended_by, over
from coordination.sweeps.service import about_todo


def _line(ev: Event) -> str:
    ts = dt.datetime.fromtimestamp(ev.ts, dt.timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    extra = " ".join(f"{k}={v}" for k, v in ev.data.items() if v not in (None, "", [], {}))
    who = " ".join(x for x in (ev.sweep_id or "", ev.todo_id or "") if x)
    return f"[dim]{ts}[/dim] [bold]{ev.kind:<22}[/bold] {esc(who)} [dim]{esc(extra)}[/dim]"


def _past(svc: SweepService | None, sweep_id: str | None, todo: str | None,
          limit: int | None, as_json: bool) -> None:
    """``coord events`` without ``--follow``: the past events (the newest ``limit``), as
    one JSON array or a line each. ``svc`` None: nothing is recorded yet (no server is
    started to say so)."""
    if as_json:
        print_json(svc.events(sweep_id, limit=limit, todo=todo)
                   if svc is not None and limit != 0 else [])
        return
    evs = svc.rt.events.read(sweep_id=sweep_id) if svc is not None and limit != 0 else []
    if todo is not None:
        evs = [e for e in evs if about_todo(e, todo)]
    if limit is not None:
        evs = evs[-limit:] if limit else []
    if not evs:
        table(None, [], [], empty="no events")
    for e in evs:
        console().print(_line(e), soft_wrap=True)


#: ``--follow`` without ``--sweep`` or ``--limit``: past events shown before new ones
#: (none: the ledger's backlog is ``coord events``'s, not a live reader's).
FOLLOW_BACKLOG = 0


@click.command()
@click.option("--sweep", "sweep_id", default=None, help="Only this sweep's events.")
@click.option("--todo", "todo", default=None, metavar="TODO",
              help="Only this todo's events: an id (TODO-010[api], an instance of a template) "
                   "or a template's id (TODO-010: all its instances').")
@click.option("--follow", "-F", is_flag=True, help="Keep printing new events (until the sweep ends, with --sweep).")
@click.option("--limit", "-n", type=click.IntRange(0), default=None,
              help="At most this many past events, the newest. With --follow, printed before "
                   "new ones: default none without --sweep (only what happens from now on), "
                   "a sweep's all with it.")
@json_and_context
def events(obj: Context, sweep_id: str | None, todo: str | None, follow: bool,
           limit: int | None, as_json: bool) -> None:
    """Show the event ledger (sweep, level and todo state changes).

    \b
    Examples:
      coord events --sweep PLAN-001-20261121093000-ab12
      coord events --sweep PLAN-001-20261121093000-ab12 --todo 'TODO-010[api]'
      coord events --follow --json | jq .kind      # what happens from now on
      coord events --follow -n 10                   # the last 10, then live
    """
    if sweep_id is not None:
        refuse_unrecorded(obj.file, f"unknown sweep {sweep_id!r}")
    elif not follow and nothing_recorded(obj.file):  # none yet, and no server to start
        _past(None, None, None, limit, as_json)
        return
    rt = get_runtime(obj.file)
    svc = SweepService(rt, obj.file)
    if sweep_id is not None:
        rec = svc.record(sweep_id)  # unknown: exit 2
        if todo is not None:
            svc.check_todo(rec, todo)  # not in it: exit 2
    # An ended sweep's end (said: over) may be before the events shown: show them and
    # stop there.
    ended = follow and sweep_id is not None and limit is not None and over(rt, sweep_id)
    if not follow:
        _past(svc, sweep_id, todo, limit, as_json)
        return
    last = limit if limit is not None else (None if sweep_id else FOLLOW_BACKLOG)

    def show(e: Event) -> None:
        if as_json:
            sys.stdout.write(dumps(e.to_dict(), pretty=False) + "\n")  # JSON Lines
            sys.stdout.flush()
        else:
            console().print(_line(e), soft_wrap=True)

    try:
        if todo is not None and last != 0:
            # The todo's own newest `last` come first (tail_start counts every event):
            # read them, then follow on from the newest event read.
            past = rt.events.read(sweep_id=sweep_id)
            mine = [e for e in past if about_todo(e, todo)]
            for e in mine if last is None else mine[-last:]:
                show(e)
            if sweep_id is not None and (ended or any(ended_by(rt, sweep_id, e) for e in past)):
                return
            after = past[-1].id if past else "0-0"
        else:
            after = "0-0" if last is None else rt.events.tail_start(sweep_id, last)
        for e in rt.events.follow(sweep_id=sweep_id, after=after, block_ms=500,
                                  stop=(lambda: True) if ended else None):
            if todo is None or about_todo(e, todo):
                show(e)
            if sweep_id is not None and ended_by(rt, sweep_id, e):
                break
    except KeyboardInterrupt:
        pass
