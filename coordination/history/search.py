"""`coord history search`: the run history's records and the catalog's edits that match
a text, most relevant first.

Runs are read through the runtime's store (:class:`~coordination.runtime.history.HistoryStore`,
which may skip runs that cannot match) and ranked by :mod:`coordination.stats.relevance`;
catalog edits are read from the audit log, where it is. Every match is compared by
:func:`~coordination.runtime.history.fold`, whatever the store.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from coordination.catalog.audit.log import log_path, read
from coordination.errors import UsageError
from coordination.jsonable import JSONValue
from coordination.runtime.history import (
    KINDS,
    HistoryStore,
    OpenStore,
    Record,
    as_float,
    fold,
    order,
)
from coordination.stats.relevance import rank, roots, stems

#: Longest search text (characters): longer is refused (exit 2), never sent anywhere.
MAX_SEARCH_CHARS = 1000
#: Most records a search by words ranks: the newest that may match (ranking reads and
#: indexes each one; a word in every record of a long history would cost seconds).
MAX_RANKED = 20_000

_TODO_TEXT = ("todo_id", "sweep_id", "title", "reason", "output_tail", "plan")


def _strings(value: object) -> list[str]:
    """The strings of a record's list (ids, repos); nothing when it has none."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _newest_first(streams: list[Iterator[Record]]) -> Iterator[Record]:

    return heapq.merge(*streams, key=order)


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """``2026-11-01``, ``2026-11-01T12:00`` (UTC unless it says), or ``7d``/``12h``/``30m``
    ago; ValueError otherwise."""
    text = text.strip()
    m = _RELATIVE.match(text)
    if m:
        return (now if now is not None else time.time()) - float(m.group(1)) * _UNIT[m.group(2)]
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def iso(ts: object) -> str | None:
    if ts in (None, ""):
        return None
    return dt.datetime.fromtimestamp(as_float(ts), dt.timezone.utc).isoformat(timespec="seconds")


def _haystack(rec: Record) -> str:
    parts: list[JSONValue]
    if rec["kind"] == "todo":
        parts = [rec.get(c) for c in _TODO_TEXT]
    elif rec["kind"] == "sweep":
        parts = [rec.get("sweep_id"), rec.get("plan"), rec.get("reason"), rec.get("status")]
    else:
        parts = [rec.get("op"), rec.get("who"), rec.get("command"),
                 " ".join(_strings(rec.get("ids"))),
                 json.dumps(rec.get("changes") or [], ensure_ascii=False)]
    return fold("\n".join(str(p) for p in parts if p not in (None, "")))


def _edits(audit_log: Path | None, *, since: float | None, repo: str | None,
           repo_of: dict[str, list[str]]) -> list[Record]:
    """The audit log's entries as ``edit`` records, newest first."""
    if audit_log is None or not audit_log.exists():
        return []

    out: list[Record] = []
    for e in read(audit_log):
        try:
            at = parse_since(str(e.get("at")))
        except ValueError:
            continue
        if since is not None and at < since:
            continue
        ids = [str(i) for i in e.get("ids") or ()]
        if repo is not None and not _edit_touches(e, ids, repo, repo_of):
            continue
        out.append({"kind": "edit", "seq": e.get("seq"), "finished_at": at, "who": e.get("who"),
                    "op": e.get("op"),
                    "command": " ".join(["coord", *e["argv"]]) if e.get("argv") else None,
                    "ids": [*ids], "changes": e.get("changes") or []})
    out.reverse()
    return out


def _edit_touches(entry: Mapping[str, object], ids: Sequence[str], repo: str,
                  repo_of: dict[str, list[str]]) -> bool:
    """Whether an audit entry (or its edit record) names ``repo``, or an id of it, or
    changes a ``repo`` field to or from it."""
    if repo in ids or any(repo in repo_of.get(i, ()) for i in ids):
        return True
    changes = entry.get("changes")
    for c in changes if isinstance(changes, list) else ():
        fields = c.get("fields") if isinstance(c, dict) else None
        if repo in _strings(fields.get("repo") if isinstance(fields, dict) else None):
            return True
    return False


def search(store: HistoryStore | None, text: str, *, repo: str | None = None,
           kind: str | None = None, since: float | None = None, limit: int = 20,
           audit_log: Path | None = None, repo_of: dict[str, list[str]] | None = None,
           repos: set[str] | None = None) -> list[Record]:
    """Records whose titles, tasks, reasons, output tails (edits: operation, command,
    ids, changes) match ``text``, most relevant first (:mod:`coordination.stats.relevance`:
    every word by its stem, or the text as written, by :func:`fold`), newest first among
    equals, at most ``limit``, each with its ``score``; empty ``text``: everything, newest
    first, ``score`` None. Ranked among the newest :data:`MAX_RANKED` records that may
    match (runs the store could not skip). ``repo_of`` maps catalog ids to their repos (edits by repo);
    ``repos``: only records that concern one of them (an MCP server's scope)."""
    kinds = {kind} if kind else set(KINDS)
    needle = fold(text)
    # The store may skip runs that hold neither the text as written nor every word's
    # root (a word matches by its stem: every form of it starts with the root).
    stemmed = stems(needle) if needle else []
    streams: list[Iterator[Record]] = []
    if store is not None and kinds & {"todo", "sweep"}:
        streams.append(store.scan(kinds=kinds & {"todo", "sweep"}, since=since, repo=repo,
                                  text=text or None, roots=roots(stemmed)))
    if "edit" in kinds:
        streams.append(iter(_edits(audit_log, since=since, repo=repo, repo_of=repo_of or {})))
    found: list[Record] = []
    for rec in _newest_first(streams):
        if repos is not None and not _concerns(rec, repos, repo_of or {}):
            continue
        found.append(rec)
        if len(found) >= (MAX_RANKED if needle else limit):
            break
    if not needle:
        return [_public(rec, None) for rec in found]
    scores = rank([_haystack(rec) for rec in found], needle)
    best = sorted(scores, key=lambda i: (-scores[i], i))[:limit]  # i: newest first
    return [_public(found[i], scores[i]) for i in best]


def _concerns(rec: Record, repos: set[str], repo_of: dict[str, list[str]]) -> bool:
    if rec["kind"] == "todo":
        return rec.get("repo") in repos
    if rec["kind"] == "sweep":
        return bool(repos & set(_strings(rec.get("repos"))))
    return any(_edit_touches(rec, _strings(rec.get("ids")), r, repo_of) for r in repos)


def _public(rec: Record, score: float | None) -> Record:
    """A record as --json prints it (times as ISO 8601 UTC, its search ``score``)."""
    rec = {**rec, "score": None if score is None else round(score, 4)}
    for k in ("finished_at", "started_at"):
        if k in rec:
            rec[k] = iso(rec[k])
    if rec["kind"] == "sweep":
        rec["sweep_kind"] = rec.get("sweep_kind") or "plan"
    return rec


def _repo_of(catalog: Path) -> dict[str, list[str]]:
    """Catalog id -> its repo (todos, issues), for edits filtered by repo."""

    if not catalog.exists():
        return {}
    # lazy: the catalog's models and YAML, only for a search that filters edits by repo
    from coordination.catalog.file.store import CatalogStore

    cat = CatalogStore(catalog).load()
    out = {t.id: [t.repo] for t in cat.coordination.todos}
    out.update({i.id: list(i.repos) for i in cat.coordination.issues})
    out.update({p.id: list(p.repos) for p in cat.coordination.plans})
    return out


def search_document(catalog: Path, text: str, *, history: OpenStore, repo: str | None = None,
                    kind: str | None = None, since: str | None = None, limit: int = 20,
                    repos: set[str] | None = None) -> list[Record]:
    """`coord history search --json`: UsageError (exit 2) for a bad kind or date, or
    search text longer than MAX_SEARCH_CHARS."""

    if len(text) > MAX_SEARCH_CHARS:
        raise UsageError(f"search text is {len(text):,} characters; at most "
                         f"{MAX_SEARCH_CHARS:,} are searched for",
                         hint="search for a shorter part of it")
    if kind is not None and kind not in KINDS:
        raise UsageError(f"unknown kind {kind!r}", hint=f"use one of {', '.join(KINDS)}")
    if limit < 1:
        raise UsageError(f"limit must be at least 1, not {limit}")
    start = None
    if since is not None:
        try:
            start = parse_since(since)
        except ValueError:
            raise UsageError(f"--since {since!r} is not a date",
                             hint="e.g. 2026-11-01, 2026-11-01T09:30, 7d, 12h") from None
    store = history() if kind != "edit" else None
    by_repo = (repo is not None or repos is not None) and kind in (None, "edit")
    repo_of = _repo_of(catalog) if by_repo else {}
    try:
        return search(store, text, repo=repo, kind=kind, since=start, limit=limit,
                      audit_log=log_path(catalog), repo_of=repo_of, repos=repos)
    finally:
        if store is not None:
            store.close()
