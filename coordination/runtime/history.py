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
:mod:`coordination.history` reads it through :class:`HistoryStore` (`coord history
search|trends`); what is here is the store and the records' shape and order.
"""

from __future__ import annotations

import heapq
import json
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, cast

from coordination.jsonable import JSONObject, JSONValue
from coordination.stats.flow import Ended

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


#: How a document opens its store (:meth:`Runtime.history` of the catalog's runtime):
#: called once the arguments are known good, so bad input (exit 2) starts no server.
OpenStore = Callable[[], HistoryStore]


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
        pipe.zadd(self.keys.history_index,
                  {member: as_float(sweep.get("finished_at") or time.time())})
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
            end = as_float(sweep.get("finished_at") or 0)
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
                    if since is not None and as_float(row[_R_AT] or 0) < since:
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
                                None if duration is None else as_float(duration),
                                as_float(r[_R_AT] or 0)))
        out.sort(key=lambda o: o[4])
        return out


def as_float(value: object) -> float:
    """``float(value)`` of a number as a record holds it (a number, or its text)."""
    if isinstance(value, (int, float, str)):
        return float(value)
    raise TypeError(f"not a number: {value!r}")


def _int(value: object) -> int:
    """``int(value)`` of a count as a record holds it (a number, or its text)."""
    if isinstance(value, (int, float, str)):
        return int(value)
    raise TypeError(f"not a number: {value!r}")


_KIND_RANK = {"sweep": 0, "todo": 1, "edit": 2}


def order(rec: Record) -> Order:
    """The order of search results: newest first; at one instant a sweep before its
    todos before edits, then by sweep id (later run first), todo id, audit seq."""
    return (-as_float(rec.get("finished_at") or 0), _KIND_RANK[str(rec["kind"])],
            str(rec.get("sweep_id") or ""), -_int(rec.get("run") or 0),
            str(rec.get("todo_id") or ""), -_int(rec.get("seq") or 0))
