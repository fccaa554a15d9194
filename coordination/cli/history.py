"""`coord history search|trends`: what ended sweeps did, and catalog edits.

The history is in Redis: the team's (distributed), or the catalog's embedded server
(embedded), reached through the catalog's runtime. Catalog edits are read from the
audit log. See :mod:`coordination.history`.
"""

from __future__ import annotations

import click

from coordination.cli.context import Context
from coordination.cli.render import console, emit, esc, json_and_context, styled, table
from coordination.history.search import search_document
from coordination.history.trends import Trends, trends_document
from coordination.jsonable import JSONValue
from coordination.runtime.context import get_runtime
from coordination.runtime.history import HistoryStore, Record

KINDS = ("todo", "sweep", "edit")


@click.group()
def history() -> None:
    """History of ended sweeps (todos, sweeps) and catalog edits: search, trends.

    \b
    Examples:
      coord history search "connection refused" --repo api --since 7d
      coord history search migrate --kind todo --json
      coord history trends --days 30
    """


def _store(obj: Context) -> HistoryStore:
    """The history of the catalog's runtime (embedded: its server, started or joined)."""
    return get_runtime(obj.file).history()


def _when(value: JSONValue) -> str:
    return str(value or "")[:19].replace("T", " ")


def _text(value: JSONValue) -> str:
    """A record's text field: "" when it is missing or empty."""
    return str(value or "")


def _what(rec: Record) -> tuple[str, str, str, str]:
    """(id, repo, status, text) of one record for the table."""
    if rec["kind"] == "todo":
        text = _text(rec.get("title"))
        if rec.get("reason"):
            text += f" - {rec['reason']}"
        return (f"{rec['todo_id']} ({rec['sweep_id']})", _text(rec.get("repo")),
                _text(rec.get("status")), text)
    if rec["kind"] == "sweep":
        tally = rec.get("counts")
        counts = ", ".join(f"{n} {s}" for s, n in sorted(
            tally.items() if isinstance(tally, dict) else ()))
        return (str(rec["sweep_id"]), "", _text(rec.get("status")),
                f"{rec.get('plan') or ''}: {rec.get('reason') or ''} ({counts})")
    touched = rec.get("ids")
    ids = ", ".join(str(i) for i in touched) if isinstance(touched, list) else ""
    return (f"#{rec.get('seq')} {rec.get('op') or ''}", "", "edit",
            f"{rec.get('who') or ''}: {ids}" + (f" - {rec['command']}" if rec.get("command") else ""))


@history.command()
@click.argument("text")
@click.option("--repo", default=None, help="Only what concerns this repo.")
@click.option("--kind", type=click.Choice(KINDS), default=None,
              help="Only todo runs, sweep runs, or catalog edits.")
@click.option("--since", default=None, metavar="DATE",
              help="Only since: 2026-11-01, 2026-11-01T09:30 (UTC), or 7d / 12h ago.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="At most this many records, most relevant first.")
@json_and_context
def search(obj: Context, text: str, repo: str | None, kind: str | None, since: str | None,
           limit: int, as_json: bool) -> None:
    """Find TEXT in todo titles and ids, reasons, output tails, sweep reasons and
    catalog edits, most relevant first (BM25; newest first among equals). A record
    matches when it holds every word of TEXT by its stem, in any order ("failing test"
    finds "tests failed"), or TEXT as written; --json gives each a score. Case and
    Unicode compatibility forms are ignored (NFKC, case folded: STRASSE finds Straße,
    ＡＰＩ finds api); "" finds everything, newest first; at most 1,000 characters.

    \b
    Example:
      coord history search "connection refused" --repo api --since 7d
    """
    found = search_document(obj.file, text, history=lambda: _store(obj), repo=repo, kind=kind,
                            since=since, limit=limit)

    def human(recs: list[Record]) -> None:
        rows = []
        for r in recs:
            ident, rrepo, status, what = _what(r)
            score = r.get("score")
            rows.append((_when(r.get("finished_at")), r["kind"], esc(ident), esc(rrepo),
                         styled(status) if r["kind"] != "edit" else status, esc(what),
                         "" if score is None else f"{score:.2f}"))
        table(f"History: {esc(repr(text))}" if text else "History",
              ["at (UTC)", "kind", "what", "repo", "status", "detail", "score"], rows,
              empty="nothing found")

    emit(as_json, found, human)


def _bar(fraction: float | None, width: int = 10) -> str:
    if fraction is None:
        return ""
    n = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * n + "[dim]" + "·" * (width - n) + "[/dim]"


@history.command()
@click.option("--repo", default=None, help="Only this repo's todos.")
@click.option("--days", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Over the last N days.")
@json_and_context
def trends(obj: Context, repo: str | None, days: float, as_json: bool) -> None:
    """Success rate and p50/p95 duration per repo and per todo; the flakiest and the
    slowest todos; velocity (todos completed per ISO week, per repo and per plan); and
    bottlenecks (repos by the time other repos' todos waited, ready but blocked, on
    theirs). A run is a todo that ended succeeded or failed.

    \b
    Example:
      coord history trends --days 30 --json
    """
    doc = trends_document(history=lambda: _store(obj), repo=repo, days=days)

    def human(d: Trends) -> None:
        if not d["repos"]:
            console().print(f"[dim]no todo ran in the last {days:g} days[/dim]")
            return
        longest = max((f["p95_s"] or 0.0) for f in d["repos"].values()) or 1.0
        table(f"Repos, last {days:g} days", ["repo", "runs", "ok", "failed", "success", "",
                                              "p50 s", "p95 s", ""],
              [(esc(r), f["runs"], f["succeeded"], f["failed"], _pct(f["success_rate"]),
                _bar(f["success_rate"]), _secs(f["p50_s"]), _secs(f["p95_s"]),
                _bar((f["p95_s"] or 0.0) / longest))
               for r, f in d["repos"].items()])
        if d["flakiest"]:
            table("Flakiest (both outcomes; most flips first)",
                  ["todo", "repo", "runs", "failed", "success", "flips"],
                  [(esc(x["todo"]), esc(x["repo"]), x["runs"], x["failed"],
                    _pct(x["success_rate"]), x["flips"]) for x in d["flakiest"]])
        if d["slowest"]:
            top = d["slowest"][0]["p95_s"] or 1.0
            table("Slowest (by p95)", ["todo", "repo", "runs", "p50 s", "p95 s", ""],
                  [(esc(x["todo"]), esc(x["repo"]), x["runs"], _secs(x["p50_s"]),
                    _secs(x["p95_s"]), _bar((x["p95_s"] or 0.0) / top)) for x in d["slowest"]])
        v = d["velocity"]
        if v["weeks"]:
            weeks = v["weeks"][-8:]  # the table's width; --json has them all
            peak = max(v["total"].values()) or 1
            table("Velocity (todos completed per ISO week)", ["", *weeks],
                  [("all", *(v["total"][w] for w in weeks)),
                   *((f"repo {esc(r)}", *(n[w] for w in weeks)) for r, n in v["repos"].items()),
                   *((f"plan {esc(p)}", *(n[w] for w in weeks)) for p, n in v["plans"].items()),
                   ("", *(_bar(v["total"][w] / peak, 4) for w in weeks))])
        if d["bottlenecks"]:
            most = d["bottlenecks"][0]["wait_s"] or 1.0
            table("Bottlenecks (time other repos' todos waited, ready but blocked, on this one)",
                  ["repo", "waited s", "waits", "dependents", "worst s", ""],
                  [(esc(b["repo"]), _secs(b["wait_s"]), b["waits"], b["dependents"],
                    _secs(b["worst_s"]), _bar(b["wait_s"] / most)) for b in d["bottlenecks"]])

    emit(as_json, doc, human)


def _pct(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.0f}%"


def _secs(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"
