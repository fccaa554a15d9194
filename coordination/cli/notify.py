"""`coord notify test|log`: webhooks of the catalog's ``notify:``, tried and looked back at."""

from __future__ import annotations

import datetime as dt

import click

from coordination.cli.context import Context
from coordination.cli.render import emit, esc, json_option, say, table
from coordination.errors import OperationFailed, UsageError
from coordination.jsonable import JSONValue
from coordination.catalog.store import CatalogStore
from coordination.runtime.context import get_runtime
from coordination.sweeps.notify import (
    LogEntry,
    deliver_left,
    log_entries,
    publish,
    send_test,
    targets_of,
)


def _when(ts: JSONValue) -> str:
    if not ts or not isinstance(ts, (int, float, str)):
        return ""
    return dt.datetime.fromtimestamp(float(ts), dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@click.group()
def notify() -> None:
    """Webhook notifications (`notify:` in the catalog): test, log.

    \b
    Example:
      coord notify test && coord notify log
    """


@notify.command("test")
@json_option
@click.pass_obj
def test(obj: Context, as_json: bool) -> None:
    """POST a `notify.test` event to every webhook of the catalog now, signed as the
    workers sign, and say what each answered (exit 1 if any failed). Also tells the
    workers the catalog's current webhooks.

    \b
    Example:
      coord notify test --json
    """
    catalog = CatalogStore(obj.file).load()
    if not catalog.notify:
        raise UsageError(f"{obj.file} has no webhooks", hint="add a `notify:` list with a url "
                         "(see the README, Notifications)")
    rt = get_runtime(obj.file)
    publish(rt, catalog.notify)
    results = send_test(rt, targets_of(catalog.notify))
    doc: list[dict[str, JSONValue]] = [{"url": r.url, "ok": r.ok, "status": r.status, "error": r.error,
            "delivery": r.delivery} for r in results]

    def human(rows: list[dict[str, JSONValue]]) -> None:
        table("Webhooks", ["url", "ok", "status", "error"],
              [(esc(str(r["url"])), "yes" if r["ok"] else "NO",
                "" if r["status"] is None else r["status"], esc(str(r["error"] or "")))
               for r in rows])

    emit(as_json, doc, human)
    failed = [f"{r.url} ({r.error})" for r in results if not r.ok]
    if failed:
        raise OperationFailed(f"{len(failed)} of {len(results)} webhook(s) failed: "
                              + ", ".join(failed))


@notify.command("log")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True,
              help="Newest first, at most this many.")
@json_option
@click.pass_obj
def log_(obj: Context, limit: int, as_json: bool) -> None:
    """Deliveries of the outbox, newest first: event, webhook (credentials masked),
    status (pending, delivered, failed: given up), attempts, last error, next try.

    What is due is delivered first, from this process (within 10 s), unless a worker
    holds the outbox: an embedded sweep's deliveries that failed are tried again here.

    \b
    Example:
      coord notify log --json | jq '.[] | select(.status != "delivered")'
    """
    rt = get_runtime(obj.file)
    pending = deliver_left(rt)
    items = log_entries(rt, limit)

    def human(rows: list[LogEntry]) -> None:
        if not rows:
            say("no deliveries yet")
            return
        if pending:
            say(f"{pending} deliver{'y' if pending == 1 else 'ies'} pending (tried again at "
                "its next try: by a worker, else by the next `coord notify log` or sweep)")
        table("Deliveries", ["created (UTC)", "event", "sweep/todo", "url", "status",
                             "attempts", "last error", "next try (UTC)"],
              [(_when(r["created_at"]), esc(str(r["kind"])),
                esc("/".join(str(x) for x in (r["sweep_id"], r["todo_id"]) if x)),
                esc(str(r["url"])), r["status"], r["attempts"], esc(str(r["last_error"] or "")),
                _when(r["next_at"])) for r in rows])

    emit(as_json, items, human)
