"""`coord notify add|remove|list|test|log`: webhooks of the catalog's ``notify:``, edited
(audited, checked by the loader), listed, tried and looked back at."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from coordination.cli.context import Context
from coordination.cli.render import emit, esc, json_and_context, say, split_list, table
from coordination.errors import OperationFailed, UsageError
from coordination.jsonable import JSONObject, JSONValue

if TYPE_CHECKING:
    from coordination.catalog.edits.notify_edits import NotifyRemoved
    from coordination.catalog.models import NotifyTarget
    from coordination.sweeps.notices.notify import LogEntry


def _when(ts: JSONValue) -> str:
    if not ts or not isinstance(ts, (int, float, str)):
        return ""
    return dt.datetime.fromtimestamp(float(ts), dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@click.group()
def notify() -> None:
    """Webhook notifications (`notify:` in the catalog): add, remove, list, test, log.

    \b
    Example:
      coord notify add https://hooks.example/coord --events sweep.finished,todo.failed
      coord notify test && coord notify log
    """


def _masked(url: str) -> str:
    """A webhook's url fit to print: user info, query values and token-like path
    segments masked, as `notify log` shows it (a Slack hook's path is its secret)."""
    from coordination.sweeps.notices.notify import redact  # lazy: redis, off the catalog's paths

    return redact(url)


def _shown(target: NotifyTarget | JSONObject) -> JSONObject:
    """A webhook as printed (text or --json): its url masked; the catalog keeps it whole,
    and `notify remove` takes the number where the url is masked."""
    doc = dict(target) if isinstance(target, dict) else target.model_dump(mode="json")
    return {**doc, "url": _masked(str(doc.get("url")))}


def _listed(targets: list[NotifyTarget]) -> list[JSONObject]:
    """`notify list --json`: each webhook with its number (from 1)."""
    return [{"index": i, **_shown(t)} for i, t in enumerate(targets, 1)]


def _targets_table(rows: list[JSONObject]) -> None:
    table("Webhooks", ["#", "url", "events", "secret_env", "format"],
          [(r["index"], esc(str(r["url"])),
            esc(", ".join(str(e) for e in r["events"] or ()))  # type: ignore[union-attr]
            , esc(str(r["secret_env"] or "")), r["format"]) for r in rows],
          empty="no webhooks (add one with `coord notify add URL`)")


@notify.command("list")
@json_and_context
def list_(obj: Context, as_json: bool) -> None:
    """The catalog's webhooks, numbered from 1 (`notify remove` takes the number);
    credentials and token-like parts of a url are masked, as `notify log` masks them.

    \b
    Example:
      coord notify list --json
    """
    emit(as_json, _listed(obj.manager.notify.targets()), _targets_table)


@notify.command("add")
@click.argument("url")
@click.option("--events", "events", multiple=True, metavar="A,B",
              help="The events to send, comma-separated (default: sweep.finished, "
              "todo.failed, gate.waiting, gate.expired, repo.breaker_open, repo.unattended).")
@click.option("--secret-env", metavar="NAME",
              help="The environment variable holding the signing secret (not the secret).")
@click.option("--format", "format_", metavar="json|slack",
              help="The body's format (default json).")
@json_and_context
def add(obj: Context, url: str, events: tuple[str, ...], secret_env: str | None,
        format_: str | None, as_json: bool) -> None:
    """Add a webhook to the catalog's notify: (one audited edit). The url, events,
    secret_env and format are checked as the catalog's loader checks them (its message,
    exit 2, nothing written); a url listed already is refused.

    \b
    Example:
      coord notify add https://hooks.example/coord --events sweep.finished,gate.waiting \\
          --secret-env COORD_HOOK_SECRET
    """
    target = obj.manager.notify.add(url, events=split_list(events), secret_env=secret_env,
                                    format=format_)
    emit(as_json, _shown(target), lambda t: say(f"added {esc(t['url'])}"))


@notify.command("remove")
@click.argument("which", metavar="URL|INDEX")
@json_and_context
def remove(obj: Context, which: str, as_json: bool) -> None:
    """Remove a webhook, named by its url or its number in `coord notify list`
    (one audited edit).

    \b
    Example:
      coord notify remove 2
    """
    gone: NotifyRemoved = obj.manager.notify.remove(which)
    doc: JSONObject = {"removed": _shown(gone["removed"]), "index": gone["index"]}
    emit(as_json, doc, lambda d: say(f"removed #{d['index']} "
                                     f"{esc(_shown(gone['removed'])['url'])}"))


@notify.command("test")
@json_and_context
def test(obj: Context, as_json: bool) -> None:
    """POST a `notify.test` event to every webhook of the catalog now, signed as the
    workers sign, and say what each answered (exit 1 if any failed). Also tells the
    workers the catalog's current webhooks.

    \b
    Example:
      coord notify test --json
    """
    from coordination.catalog.file.store import CatalogStore  # lazy: test only
    from coordination.runtime.context import get_runtime  # lazy: redis, test and log only
    from coordination.sweeps.notices.notify import publish, send_test, targets_of  # lazy: as above

    catalog = CatalogStore(obj.file).load()
    if not catalog.notify:
        raise UsageError(f"{obj.file} has no webhooks", hint="add a `notify:` list with a url "
                         "(see the docs' how-to on webhooks: docs/how-to/webhooks.md)")
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
@json_and_context
def log_(obj: Context, limit: int, as_json: bool) -> None:
    """Deliveries of the outbox, newest first: event, webhook (credentials masked),
    status (pending, delivered, failed: given up), attempts, last error, next try.

    What is due is delivered first, from this process (within 10 s), unless a worker
    holds the outbox: an embedded sweep's deliveries that failed are tried again here.

    \b
    Example:
      coord notify log --json | jq '.[] | select(.status != "delivered")'
    """
    from coordination.runtime.context import get_runtime  # lazy: redis, test and log only
    from coordination.sweeps.notices.notify import deliver_left, log_entries  # lazy: as above

    rt = get_runtime(obj.file)
    pending = deliver_left(rt)
    items = log_entries(rt, limit)

    def human(rows: list[LogEntry]) -> None:
        if not rows:
            say("no deliveries yet")
            return
        if pending:
            say(f"{pending} deliver{'y' if pending == 1 else 'ies'} pending (tried again at "
                "its next try: by a worker, else by the next coord command)")
        table("Deliveries", ["created (UTC)", "event", "sweep/todo", "url", "status",
                             "attempts", "last error", "next try (UTC)"],
              [(_when(r["created_at"]), esc(str(r["kind"])),
                esc("/".join(str(x) for x in (r["sweep_id"], r["todo_id"]) if x)),
                esc(str(r["url"])), r["status"], r["attempts"], esc(str(r["last_error"] or "")),
                _when(r["next_at"])) for r in rows])

    emit(as_json, items, human)
