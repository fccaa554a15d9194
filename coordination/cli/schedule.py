"""`coord schedule list` (each scheduled plan's next firings) and `coord beat` (the
process that fires them: :mod:`coordination.beat`)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import click

from coordination.cli.context import Context, nothing_recorded
from coordination.cli.render import emit, esc, json_and_context, say, table
from coordination.processes import not_dumpable
from coordination.runtime.context import get_runtime

if TYPE_CHECKING:
    from coordination.jsonable import JSONObject


@click.group()
def schedule() -> None:
    """Plans' schedules (`schedule:` on a plan): list them. `coord beat` runs them.

    \b
    Examples:
      coord schedule list
      coord schedule list --count 5 --json
    """


def _when(rec: object) -> str:
    """A firing record's time and outcome, for the table."""
    if not isinstance(rec, dict):
        return "never"
    due = str(rec.get("due") or "")
    if rec.get("sweep"):
        return f"{due} -> {rec['sweep']}"
    if rec.get("error"):
        return f"{due}: not started ({str(rec['error']).splitlines()[0]})"
    if rec.get("reason"):
        return f"{due}: {rec['reason']}"
    return f"{due} (claimed, no sweep recorded)"


@schedule.command("list")
@click.option("--count", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Next firings shown per plan.")
@json_and_context
def list_(obj: Context, count: int, as_json: bool) -> None:
    """Each scheduled plan: its cron and time zone, its next firings, the last one `coord
    beat` started (and its sweep) and the last one it skipped (missed with catchup: false);
    and any schedule entry in Redis the catalog does not name (`coord beat` refuses it).

    \b
    Examples:
      coord schedule list
      coord schedule list --json
    """
    from coordination.sweeps import SweepService  # lazy: the catalog's reader
    from coordination.sweeps.starts.schedules import (  # lazy: as above
        ForeignEntry,
        foreign_entries,
        schedule_rows,
        scheduled_plans,
    )

    state: dict[str, dict[str, JSONObject | None]]
    refused: list[ForeignEntry] = []
    if nothing_recorded(obj.file):  # embedded, never swept: nothing fired, no server to start
        catalog = obj.manager.reads.catalog()
        state = {p: {"fired": None, "skipped": None} for p in scheduled_plans(catalog)}
    else:
        rt = get_runtime(obj.file, reader=True)
        catalog = SweepService(rt, obj.file).catalog()
        wanted = scheduled_plans(catalog)
        state = rt.schedules().read(wanted)
        # What a `coord beat` would look at, whoever wrote it: only the catalog's fires.
        store = rt.schedules()
        refused = foreign_entries(store.entries(), store.beat_prefix, wanted)
    rows = schedule_rows(catalog, state, dt.datetime.now(dt.timezone.utc), count)

    def human(d: dict[str, Any]) -> None:
        table("schedules", ["plan", "cron", "zone", "catchup", "next", "last fired",
                            "last skipped"],
              [(esc(r["plan"]), esc(r["cron"]), esc(r["timezone"]),
                "yes" if r["catchup"] else "no", esc(", ".join(r["next"])),
                esc(_when(r["last_fired"])), esc(_when(r["last_skipped"])))
               for r in d["schedules"]],
              empty="no plan has a schedule: (add schedule: {cron: ...} to a plan)")
        if d["refused"]:
            say(f"[red]{len(d['refused'])} schedule entr{'y' if len(d['refused']) == 1 else 'ies'}"
                " in Redis the catalog does not name: `coord beat` refuses to fire "
                "them[/red] (someone wrote them into the Redis; `coord events` has each "
                "refusal)")
            for f in d["refused"]:
                say(f"  {esc(f['entry'])}: {esc(f['why'])}")

    emit(as_json, {"schedules": rows, "refused": refused}, human)


@click.command()
@click.option("--max-interval", type=click.FloatRange(1, 300), default=5.0, show_default=True,
              help="Seconds between two looks at the schedules at most; the lock's timeout "
                   "(how soon a standby beat takes over a dead one) is 5 times this.")
@click.option("--clock-offset", type=float, default=0.0, hidden=True)  # tests: seconds
@click.pass_obj
def beat(obj: Context, max_interval: float, clock_offset: float) -> None:
    """Fire the catalog's plans' schedules: Celery beat with celery-redbeat, the schedules
    and the lock in coord's Redis. Run one on each of two machines: one is active (it
    holds the lock), the other takes over within the lock's timeout if it dies, and a
    firing starts once. A firing starts a sweep as `coord plan sweep PLAN --again` would
    (every todo of the plan), named `schedule` in its record and the audit log. A firing
    missed while no beat ran starts once when the beat starts (catchup: true) or is
    skipped and logged (catchup: false). Edits of the catalog are picked up as they
    are saved. Embedded mode (no COORD_REDIS_URL): the beat runs beside the catalog's
    embedded server, and each firing runs in a `coord plan sweep` process of its own.
    Stop it with Ctrl-C or SIGTERM (it gives the lock back).

    \b
    Examples:
      coord beat
      COORD_REDIS_URL=redis://redis.lan:6379/0 coord beat --max-interval 10
    """
    not_dumpable()  # it holds the key and a password: no todo reads its memory
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s: "
                        "%(message)s")
    from coordination import beat as beating  # lazy: celery, redbeat

    say(f"coord beat: {esc(str(obj.file))}")
    beating.run(obj.file, max_interval=max_interval, clock_offset=clock_offset)
