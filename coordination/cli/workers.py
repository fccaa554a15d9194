"""`coord workers` (who is alive) and `coord dead-letters` (messages set aside)."""

from __future__ import annotations

import datetime as dt
import json

import click

from coordination.cli.context import current_file
from coordination.cli.render import emit, esc, json_option, say, table
from coordination.jsonable import JSONObject, JSONValue
from coordination.names import some
from coordination.runtime.context import Runtime, get_runtime
from coordination.runtime.workers import WorkerDocument, worker_documents


def _runtime() -> Runtime:
    """COORD_REDIS_URL's, else the catalog's embedded server: where an embedded sweep's
    workers beat (and set malformed messages aside) while it runs."""
    return get_runtime(current_file())


def _when(ts: JSONValue) -> str:
    if not ts or not isinstance(ts, (int, float, str)):
        return ""
    return dt.datetime.fromtimestamp(float(ts), dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@click.command()
@json_option
def workers(as_json: bool) -> None:
    """List live workers: name, host, pid, repos, what they run, last beat.

    A worker of hundreds of repos shows ten of them and a count (--json lists all).
    A worker of several repos is listed once, whatever number of processes serve
    them (--json: "processes").

    A worker stopped cleanly (SIGTERM, Ctrl-C) shows as stopping while its running
    todos finish and leaves the list when it exits; one that dies leaves it after
    three missed beats (COORD_WORKER_HEARTBEAT, default 2 s).

    \b
    Example:
      coord workers --json
    """
    rt = _runtime()
    items = worker_documents(rt.workers.live())

    def human(ws: list[WorkerDocument]) -> None:
        table(
            "Workers",
            ["name", "host", "pid", "repos", "running", "last seen (UTC)"],
            [(esc(w["name"]) + (" (stopping)" if w.get("stopping") else ""), esc(w["host"]),
              w["pid"], esc(some(w["repos"])),  # a fleet's worker: ten, then a count
              esc(some(w["running"])), _when(w["last_seen"])) for w in ws],
            empty=("no live workers (an embedded sweep's are listed while it runs)"
                   if rt.settings.embedded else
                   "no live workers (start one with `coord worker --repo NAME`)"),
        )

    emit(as_json, items, human)


@click.command("dead-letters")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True,
              help="Newest first, at most this many.")
@click.option("--purge", is_flag=True, help="Delete them all (after printing them).")
@json_option
def dead_letters(limit: int, purge: bool, as_json: bool) -> None:
    """Show malformed broker messages that workers set aside instead of dying.

    \b
    Example:
      coord dead-letters --json | jq '.[].reason'
    """
    rt = _runtime()
    items: list[JSONObject] = []
    for text in rt.workers.dead_letters(limit):
        try:
            items.append(json.loads(text))  # what broker.dead_letter wrote: an object
        except ValueError:
            items.append({"raw": text, "reason": "unreadable dead-letter entry"})
    if purge:
        rt.workers.purge_dead_letters()

    def human(entries: list[JSONObject]) -> None:
        table(
            "Dead letters (newest first)",
            ["at (UTC)", "queue", "worker", "reason", "raw"],
            [(_when(e.get("at")), esc(e.get("queue")), esc(e.get("worker")), esc(e.get("reason")),
              esc(str(e.get("raw", ""))[:80])) for e in entries],
            empty="no dead letters",
        )
        if purge and entries:
            say(f"purged {len(entries)} shown (and any older) dead letters")

    emit(as_json, items, human)
