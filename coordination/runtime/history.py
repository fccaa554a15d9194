"""History of ended sweep runs: what ran, how it ended, how long it took.

One record per todo of a run that ended (kind ``todo``) and one for the run itself
(kind ``sweep``), written once when the run ends (see
:mod:`coordination.sweeps.recording`); catalog edits (kind ``edit``) come from the
audit log, read where it is, never copied.

One store, :class:`RedisHistory`, in the Redis the runtime talks to: the team's
(distributed), or the catalog's own embedded server (embedded), so every worker and
every CLI of either mode sees the same history through the same code. Runs older than
``COORD_HISTORY_DAYS`` are trimmed each time a run is recorded. A run is recorded at
most once (keyed by sweep id and run), so two processes that both finalise a run, or a
retried hook, leave one record. (coord 0.2 kept the embedded history in a SQLite file
beside the catalog: :mod:`coordination.runtime.migrations.v02_embedded_file`
carries it over, once.)
:func:`search` and :func:`trends` read it through :class:`HistoryStore`.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import math
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypedDict, cast

from coordination.catalog.audit import log_path, read
from coordination.errors import UsageError
from coordination.jsonable import JSONObject, JSONValue
from coordination.stats.flow import Bottleneck, Ended, Velocity, bottlenecks, velocity
from coordination.stats.relevance import rank, roots, stems

if TYPE_CHECKING:
    import redis

    from coordination.keys import Keys

KINDS = ("todo", "sweep", "edit")
TAIL_BYTES = 1024  # of a todo's output kept in its history record
#: Fields of a todo record, in order (its JSON keys).
TODO_FIELDS = ("sweep_id", "run", "plan", "todo_id", "repo", "title", "status", "attempts",
               "exit_code", "duration", "worker", "reason", "output_tail", "finished_at")
SWEEP_FIELDS = ("sweep_id", "run", "plan", "sweep_kind", "status", "reason", "started_at",
                "finished_at", "counts", "todos")
#: Outcomes that count as a run in trends (skipped or cancelled todos never ran).
SUCCEEDED, FAILED = "succeeded", "failed"

#: A row handed to :meth:`HistoryStore.record`: SWEEP_FIELDS of the run, or TODO_FIELDS
#: of one of its todos (JSON values: :mod:`coordination.sweeps.recording` builds them).
Row = Mapping[str, object]
#: A record read back (kind ``todo``, ``sweep`` or ``edit``): one JSON object of
#: `coord history search --json`.
Record = JSONObject
#: What :meth:`HistoryStore.outcomes` gives per todo record:
#: (todo, repo, status, duration, finished_at).
Outcome = tuple[str, str, str, float | None, float]
#: Where a record goes in search results (see :func:`order`).
Order = tuple[float, int, str, int, str, int]
#: Longest search text (characters): longer is refused (exit 2), never sent anywhere.
MAX_SEARCH_CHARS = 1000
#: Most records a search by words ranks: the newest that may match (ranking reads and
#: indexes each one; a word in every record of a long history would cost seconds).
MAX_RANKED = 20_000
#: Longest `history trends --days` (a century): any more is no window at all.
MAX_DAYS = 36500.0


def fold(text: str) -> str:
    """``text`` as search compares it: the one matching rule of every history read,
    whatever the store. Unicode compatibility caseless matching: NFKC, case folded, NFKC
    again (casefolding can leave text unnormalised), so ``STRASSE`` finds ``Straße``,
    ``ﬁle`` finds ``file``, a full-width ``ＡＰＩ`` finds ``api``, and a composed ``é``
    finds a decomposed one."""
    if text.isascii():  # the common case, and the same answer: ASCII is NFKC already
        return text.lower()
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def tail(text: str | None, limit: int = TAIL_BYTES) -> str:
    """The last ``limit`` bytes of ``text`` (whole characters)."""
    if not text:
        return ""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[-limit:].decode("utf-8", errors="ignore")


class HistoryStore(Protocol):
    """Where ended runs are recorded and read back."""

    def record(self, sweep: Row, todos: Sequence[Row]) -> bool:
        """Record one ended run (``sweep``: SWEEP_FIELDS, ``todos``: TODO_FIELDS each);
        False when that run (sweep id, run) was recorded before: nothing changes."""
        ...

    def scan(self, *, kinds: set[str], since: float | None, repo: str | None,
             text: str | None, roots: Sequence[str] = ()) -> Iterator[Record]:
        """Records of ``kinds`` (todo, sweep) newest run first. ``repo`` and ``since``
        filter exactly; ``text`` and ``roots`` are a hint: records that hold neither
        ``text`` nor every one of ``roots`` may be skipped, the caller checks the rest."""
        ...

    def outcomes(self, *, since: float | None, repo: str | None) -> list[Outcome]:
        """(todo, repo, status, duration, finished_at) of every todo record, oldest first."""
        ...

    def ended(self, *, since: float | None) -> list[Ended]:
        """Every run that ended since ``since``, newest first: (its sweep row, its todos'
        rows by ROW_FIELDS), for trends' figures that need a run's shape."""
        ...

    def trim(self, before: float) -> int:
        """Drop runs that ended before ``before``; how many went."""
        ...

    def close(self) -> None:
        """Let go of any connection (the store may be used again after)."""
        ...


# -- Redis ------------------------------------------------------------------------------
#: A Redis run's todo rows: TODO_FIELDS without what the run holds once (sweep_id, run,
#: plan) and without the output tail (kept apart).
#: ``started_at`` and ``blocked_by`` (its predecessors in the run) came in 0.5, last, so
#: a run recorded before reads them as missing (trends' bottlenecks skip such runs).
ROW_FIELDS = ("todo_id", "repo", "title", "status", "attempts", "exit_code", "duration",
              "worker", "reason", "finished_at", "started_at", "blocked_by")
_R_TODO, _R_REPO, _R_STATUS, _R_DURATION, _R_AT = 0, 1, 3, 6, 9


def _plain(needle: str) -> bool:
    """Can ``needle`` (folded) be looked for in the folded raw JSON text
    (``ensure_ascii=False``)? Not when JSON escapes one of its characters (quote,
    backslash, control characters), nor for characters folding could join to their
    neighbours (the JSON around a field is ASCII punctuation, which joins nothing)."""
    return (bool(needle) and not any(c in needle for c in '"\\') and needle.isprintable()
            and not unicodedata.combining(needle[0]))  # an accent joins the letter before


def _holds(body: str, tail_text: str | None, needle: str, roots: Sequence[str]) -> bool:
    """Whether a run's raw JSON (folded) may hold a record matching a search: the
    text itself, or (``roots``: a search by words) every word's root somewhere."""
    text = fold(body) + ("\n" + fold(tail_text) if tail_text else "")
    return needle in text or (bool(roots) and all(r in text for r in roots))


class RedisHistory:
    """History in Redis (the team's, or the catalog's embedded server): an index (sorted
    set by end time) and two hashes, one run per field: rows (small, what trends read)
    and output tails."""

    CHUNK = 200

    def __init__(self, r: redis.Redis, keys: Keys, *, days: float) -> None:
        self.r = r
        self.keys = keys
        self.days = days

    def record(self, sweep: Row, todos: Sequence[Row]) -> bool:
        new = self._put(sweep, todos)
        if new:
            self.trim(time.time() - self.days * 86400)
        return new

    def record_all(self, runs: Iterable[tuple[Row, Sequence[Row]]]) -> int:
        """Record many ended runs (each once, as :meth:`record`), trimming once at the
        end; how many were new."""
        new = sum(self._put(sweep, todos) for sweep, todos in runs)
        self.trim(time.time() - self.days * 86400)
        return new

    def _put(self, sweep: Row, todos: Sequence[Row]) -> bool:
        member = f"{sweep['sweep_id']}:{sweep['run']}"
        rows = [[t.get(f) for f in ROW_FIELDS] for t in todos]
        body = json.dumps({"sweep": sweep, "todos": rows}, separators=(",", ":"),
                          ensure_ascii=False)
        tails = {t["todo_id"]: t.get("output_tail") or "" for t in todos if t.get("output_tail")}
        # One round trip, the run's row last: it is what makes the run visible (readers
        # skip an index entry without one), so a writer cut off halfway leaves nothing
        # half-recorded, and the next call (a retry, a carry-over again) completes it.
        # A second writer of the same run rewrites the same tails and score.
        pipe = self.r.pipeline(transaction=False)
        if tails:
            pipe.hset(self.keys.history_tails, member,
                      json.dumps(tails, separators=(",", ":"), ensure_ascii=False))
        pipe.zadd(self.keys.history_index, {member: _float(sweep.get("finished_at") or time.time())})
        pipe.hsetnx(self.keys.history_runs, member, body)
        return bool(pipe.execute()[-1])

    def trim(self, before: float) -> int:
        old = [str(m) for m in self.r.zrangebyscore(self.keys.history_index, "-inf", f"({before}")]
        for i in range(0, len(old), 1000):
            part = old[i:i + 1000]
            pipe = self.r.pipeline(transaction=False)
            pipe.hdel(self.keys.history_runs, *part)
            pipe.hdel(self.keys.history_tails, *part)
            pipe.zrem(self.keys.history_index, *part)
            pipe.execute()
        return len(old)

    def close(self) -> None:
        pass

    def stamp(self) -> tuple[int, float]:
        """(runs kept, the newest one's end): changes whenever a run is recorded or
        trimmed, so a reader can keep what it computed from the history until then."""
        pipe = self.r.pipeline(transaction=False)
        pipe.zcard(self.keys.history_index)
        pipe.zrevrange(self.keys.history_index, 0, 0, withscores=True)
        count, newest = pipe.execute()
        return int(count), float(newest[0][1]) if newest else 0.0

    def _members(self, since: float | None) -> list[str]:
        low = "-inf" if since is None else since
        return [str(m) for m in self.r.zrevrangebyscore(self.keys.history_index, "+inf", low)]

    def _runs(self, since: float | None, *, tails: bool, needle: str | None = None,
              roots: Sequence[str] = (),
              ) -> Iterator[tuple[JSONObject, list[list[JSONValue]], dict[str, str]]]:
        """Runs newest end first (the sweep row, its todos' ROW_FIELDS rows, their output
        tails by todo); with ``needle`` (:func:`fold`-ed, :func:`_plain`), only runs whose
        folded raw JSON holds it, or every one of ``roots`` (:func:`_plain` each; the
        caller still checks each record by the same rule)."""
        members = self._members(since)
        for i in range(0, len(members), self.CHUNK):
            part = members[i:i + self.CHUNK]
            # (the client decodes replies: text, or None for a member trimmed meanwhile)
            bodies = cast("list[str | None]", self.r.hmget(self.keys.history_runs, part))
            tail_texts = (cast("list[str | None]", self.r.hmget(self.keys.history_tails, part))
                          if tails else [None] * len(part))
            for body, tail_text in zip(bodies, tail_texts):
                if body is None:
                    continue
                if needle is not None and not _holds(body, tail_text, needle, roots):
                    continue
                run = json.loads(body)
                yield run["sweep"], run["todos"], json.loads(tail_text) if tail_text else {}

    def scan(self, *, kinds: set[str], since: float | None, repo: str | None,
             text: str | None, roots: Sequence[str] = ()) -> Iterator[Record]:

        folded = fold(text) if text else ""
        plain = all(_plain(r) for r in roots)
        needle = folded if folded and _plain(folded) and plain else None
        # Runs come newest end first, and a run's records end no later than the run:
        # once a run ending at E is read, every pending record that ended after E
        # is in order.
        pending: list[tuple[Order, int, Record]] = []
        n = 0
        for sweep, rows, tails in self._runs(since, tails="todo" in kinds, needle=needle,
                                             roots=roots if plain else ()):
            end = _float(sweep.get("finished_at") or 0)
            while pending and pending[0][0][0] < -end:
                yield heapq.heappop(pending)[2]
            repos = sorted({str(r[_R_REPO]) for r in rows})
            found: list[Record] = []
            if "sweep" in kinds and (repo is None or repo in repos):
                found.append({"kind": "sweep", **sweep, "repos": [*repos]})
            if "todo" in kinds:
                head: Record = {"kind": "todo", "sweep_id": sweep["sweep_id"],
                                "run": sweep["run"], "plan": sweep.get("plan")}
                for row in rows:
                    if repo is not None and row[_R_REPO] != repo:
                        continue
                    if since is not None and _float(row[_R_AT] or 0) < since:
                        continue
                    rec: Record = {**head, **dict(zip(ROW_FIELDS, row))}
                    rec["output_tail"] = tails.get(str(rec["todo_id"]), "")
                    found.append({k: rec[k] for k in ("kind", *TODO_FIELDS)})
            for rec in found:
                n += 1
                heapq.heappush(pending, (order(rec), n, rec))
        while pending:
            yield heapq.heappop(pending)[2]

    def ended(self, *, since: float | None) -> list[Ended]:
        return [(sweep, [dict(zip(ROW_FIELDS, r)) for r in rows])
                for sweep, rows, _tails in self._runs(since, tails=False)]

    def outcomes(self, *, since: float | None, repo: str | None) -> list[Outcome]:
        out: list[Outcome] = []
        for _sweep, rows, _tails in self._runs(since, tails=False):
            for r in rows:
                if repo is None or r[_R_REPO] == repo:
                    duration = r[_R_DURATION]
                    out.append((str(r[_R_TODO]), str(r[_R_REPO]), str(r[_R_STATUS]),
                                None if duration is None else _float(duration),
                                _float(r[_R_AT] or 0)))
        out.sort(key=lambda o: o[4])
        return out


_TODO_TEXT = ("todo_id", "sweep_id", "title", "reason", "output_tail", "plan")
def _float(value: object) -> float:
    """``float(value)`` of a number as a record holds it (a number, or its text)."""
    if isinstance(value, (int, float, str)):
        return float(value)
    raise TypeError(f"not a number: {value!r}")


def _int(value: object) -> int:
    """``int(value)`` of a count as a record holds it (a number, or its text)."""
    if isinstance(value, (int, float, str)):
        return int(value)
    raise TypeError(f"not a number: {value!r}")


def _strings(value: object) -> list[str]:
    """The strings of a record's list (ids, repos); nothing when it has none."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


_KIND_RANK = {"sweep": 0, "todo": 1, "edit": 2}


def order(rec: Record) -> Order:
    """The order of search results: newest first; at one instant a sweep before its
    todos before edits, then by sweep id (later run first), todo id, audit seq."""
    return (-_float(rec.get("finished_at") or 0), _KIND_RANK[str(rec["kind"])],
            str(rec.get("sweep_id") or ""), -_int(rec.get("run") or 0),
            str(rec.get("todo_id") or ""), -_int(rec.get("seq") or 0))


def _newest_first(streams: list[Iterator[Record]]) -> Iterator[Record]:

    return heapq.merge(*streams, key=order)


# -- reading: search and trends -------------------------------------------------------------
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
    return dt.datetime.fromtimestamp(_float(ts), dt.timezone.utc).isoformat(timespec="seconds")


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


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least p% of values at or
    below it); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[k - 1]


class Figures(TypedDict):
    """A repo's or a todo's runs in `coord history trends --json`."""

    runs: int
    succeeded: int
    failed: int
    success_rate: float | None
    p50_s: float | None
    p95_s: float | None


class Flaky(TypedDict):
    """A todo with both outcomes (``flakiest``)."""

    todo: str
    repo: str
    runs: int
    failed: int
    success_rate: float | None
    flips: int


class Slow(TypedDict):
    """A todo by the p95 of its durations (``slowest``)."""

    todo: str
    repo: str
    runs: int
    p50_s: float | None
    p95_s: float


class Trends(TypedDict):
    """`coord history trends --json`."""

    repos: dict[str, Figures]
    todos: dict[str, Figures]
    flakiest: list[Flaky]
    slowest: list[Slow]
    velocity: Velocity
    bottlenecks: list[Bottleneck]


class _Tally:
    """Outcomes of one repo or todo, in time order: counts, durations, flips."""

    __slots__ = ("ok", "failed", "durations", "last", "flips", "repo")

    def __init__(self, repo: str) -> None:
        self.ok = self.failed = self.flips = 0
        self.durations: list[float] = []
        self.last: str | None = None
        self.repo = repo

    def add(self, status: str, duration: float | None) -> None:
        if status == SUCCEEDED:
            self.ok += 1
        elif status == FAILED:
            self.failed += 1
        else:
            return  # skipped, cancelled...: never ran
        if self.last is not None and status != self.last:
            self.flips += 1
        self.last = status
        if duration is not None:
            self.durations.append(float(duration))

    def figures(self) -> Figures:
        runs = self.ok + self.failed
        self.durations.sort()
        p50, p95 = percentile(self.durations, 50), percentile(self.durations, 95)
        return {"runs": runs, "succeeded": self.ok, "failed": self.failed,
                "success_rate": round(self.ok / runs, 4) if runs else None,
                "p50_s": None if p50 is None else round(p50, 3),
                "p95_s": None if p95 is None else round(p95, 3)}


TOP = 10  # entries of flakiest and slowest


def trends(store: HistoryStore | None, *, repo: str | None = None, days: float = 30.0,
           now: float | None = None, repos: set[str] | None = None) -> Trends:
    """Per repo and per todo over the last ``days``: runs (todos that ran to succeeded or
    failed), succeeded, failed, success_rate, p50_s and p95_s of their durations
    (nearest rank); ``flakiest``: todos with both outcomes, most outcome flips between
    consecutive runs first; ``slowest``: todos by p95; ``velocity`` and ``bottlenecks``:
    see :mod:`coordination.stats.flow`. One read of the store."""
    now = time.time() if now is None else now
    runs = [] if store is None else store.ended(since=now - days * 86400)
    outcomes = _outcomes(runs, repo)
    by_repo: dict[str, _Tally] = {}
    by_todo: dict[str, _Tally] = {}
    for todo_id, todo_repo, status, duration, _at in outcomes:  # oldest first
        if repos is not None and todo_repo not in repos:
            continue
        r = by_repo.get(todo_repo)
        if r is None:
            r = by_repo[todo_repo] = _Tally(todo_repo)
        t = by_todo.get(todo_id)
        if t is None:
            t = by_todo[todo_id] = _Tally(todo_repo)
        t.repo = todo_repo  # its latest repo
        r.add(status, duration)
        t.add(status, duration)
    per_repo = {name: by_repo[name].figures() for name in sorted(by_repo)}
    todos = {name: by_todo[name].figures() for name in sorted(by_todo)}
    flaky: list[Flaky] = [
        {"todo": name, "repo": by_todo[name].repo, "runs": f["runs"], "failed": f["failed"],
         "success_rate": f["success_rate"], "flips": by_todo[name].flips}
        for name, f in todos.items() if f["succeeded"] and f["failed"]]
    flaky.sort(key=lambda x: (-x["flips"] / max(1, x["runs"] - 1), -x["runs"], x["todo"]))
    slow: list[Slow] = [
        {"todo": name, "repo": by_todo[name].repo, "runs": f["runs"], "p50_s": f["p50_s"],
         "p95_s": p95} for name, f in todos.items() if (p95 := f["p95_s"]) is not None]
    slow.sort(key=lambda x: (-x["p95_s"], x["todo"]))
    return {"repos": per_repo, "todos": todos, "flakiest": flaky[:TOP], "slowest": slow[:TOP],
            "velocity": velocity(runs, now=now, repos=repos, repo=repo),
            "bottlenecks": bottlenecks(runs, repos=repos, repo=repo)}


def _outcomes(runs: Sequence[Ended], repo: str | None) -> list[Outcome]:
    """:meth:`HistoryStore.outcomes` of runs already read."""
    out: list[Outcome] = []
    for _sweep, rows in runs:
        for r in rows:
            if repo is None or r.get("repo") == repo:
                duration = r.get("duration")
                out.append((str(r.get("todo_id")), str(r.get("repo")), str(r.get("status")),
                            None if duration is None else _float(duration),
                            _float(r.get("finished_at") or 0)))
    out.sort(key=lambda o: o[4])
    return out


# -- the documents `coord history` and the MCP tools print ----------------------------------
def _repo_of(catalog: Path) -> dict[str, list[str]]:
    """Catalog id -> its repo (todos, issues), for edits filtered by repo."""

    if not catalog.exists():
        return {}
    # lazy: the catalog's models and YAML, only for a search that filters edits by repo
    from coordination.catalog.store import CatalogStore

    cat = CatalogStore(catalog).load()
    out = {t.id: [t.repo] for t in cat.coordination.todos}
    out.update({i.id: list(i.repos) for i in cat.coordination.issues})
    out.update({p.id: list(p.repos) for p in cat.coordination.plans})
    return out


#: How a document opens its store (:meth:`Runtime.history` of the catalog's runtime):
#: called once the arguments are known good, so bad input (exit 2) starts no server.
OpenStore = Callable[[], HistoryStore]


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


def trends_document(*, history: OpenStore, repo: str | None = None, days: float = 30.0,
                    repos: set[str] | None = None) -> Trends:
    """`coord history trends --json`."""

    if not 0 < days <= MAX_DAYS:  # NaN fails both
        raise UsageError(f"days must be more than 0 and at most {MAX_DAYS:g}, not {days:g}")
    store = history()
    try:
        return trends(store, repo=repo, days=days, repos=repos)
    finally:
        store.close()
