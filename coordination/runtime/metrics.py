"""What Prometheus reads of coord: durable counters, and the state they sit beside.

Counters (todos sent, todos ended by status, run times, lost runs) are integers in
Redis, so they survive every process and any number of scrapers of any host read the
same numbers. Two places, so that a todo's run costs no Redis command to count:

- A run that ran (its finish: ``lua/todo_finish.lua``) is counted by its finish script,
  in the same write, into the sweep's own ``m:<repo>`` field (JSON: run-time bucket per
  status, milliseconds; one field per repo, so a finish handles its repo's counts, not
  the run's). The run's ``mrepos`` (written as it starts: :func:`run_fields`) lists
  those repos. When the run ends, ``lua/metrics_fold.lua`` moves the counts into the
  namespace's hash (``Keys.metrics``) in one step (:meth:`MetricCounters.fold`, from
  ``recording.keep``).
- Everything else is rare or batched and goes straight into the namespace's hash right
  after the change (:class:`MetricCounters`, ``lua/metrics_add.lua``: a chunk of
  counters a command): sends, todos ended without running (skips, cancels), lost runs.
  A process that dies in between loses that count (the same trade as
  ``CountTerminal``).

A counter is the namespace's hash plus the own counts of every sweep not yet folded,
read with a seqlock on the hash's ``folds`` (:meth:`MetricsReader.live_sweeps`), so a
fold never shows a run twice or not at all.

Gauges (todos by status in the live sweeps, workers, queues, breakers) are read at
scrape time (:meth:`MetricsReader.read`), in a handful of pipelined round trips:
nothing is kept between scrapes here but the caller's cache of who owns which todo
(a run's spec is frozen, so it is read once per run).

Run times are kept as a histogram: a count per bucket (:data:`BUCKETS`, seconds,
not cumulative), a count and a sum in milliseconds per repo (integers, so the CLI
needs no command its ACL lacks).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from dataclasses import dataclass, field
from operator import itemgetter

import redis

from coordination.keys import Keys
from coordination.runtime.queues import BROKER_PRIORITIES
from coordination.runtime.scripts import lua
from coordination.runtime.store import Store
from coordination.runtime.sweep_fields import todo_field
from coordination.runtime.workers import WorkerRecord, WorkerRegistry
from coordination.status import BreakerState

log = logging.getLogger("coord.metrics")

#: Upper bounds (seconds) of the run-time histogram's buckets; +Inf is implied.
BUCKETS: tuple[float, ...] = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0,
                              1800.0, 3600.0, 7200.0)



def sent_field(repo: str) -> str:
    """Messages sent to ``repo``'s queue (one per todo sent, first, level or again)."""
    return f"sent:{repo}"


def chained_field(repo: str) -> str:
    """Todos of ``repo`` a worker ran on in the task of the one before (``--merge-chains``):
    handed on, with no message sent."""
    return f"chained:{repo}"


def ended_field(repo: str, status: str) -> str:
    return f"ended:{repo}:{status}"


def lost_field(repo: str) -> str:
    return f"lost:{repo}"


def bucket_field(repo: str, status: str, index: int) -> str:
    """Runs of ``repo`` that ended ``status`` and took at most ``BUCKETS[index]`` s and
    more than the bucket before (``index == len(BUCKETS)``: longer than every bound).
    Written by ``lua/todo_finish.lua`` (same names)."""
    return f"dur:{repo}:{status}:{index}"


def duration_sum_field(repo: str) -> str:
    return f"dur_ms:{repo}"


FOLDS = "folds"  # how many runs' own counts were folded in (the scrape's seqlock)
#: A run's own counts of one repo, in its sweep hash (``lua/todo_finish.lua``).
OWN_PREFIX = "m:"
#: The sweep record field listing the repos whose own counts the run may hold.
OWN_REPOS = "mrepos"


def run_fields(repos: Iterable[str]) -> dict[str, object]:
    """What a run's record gets as it starts (a sweep's first run, a resume, a
    rollback): the repos whose own counts its finishes write, for the fold and for a
    scrape to find them (a field a repo, never a scan of the sweep's hash)."""
    return {OWN_REPOS: sorted(set(repos))}


@dataclass(frozen=True)
class Outcome:
    """One todo that reached a terminal status without a finish script counting it."""

    repo: str
    status: str


@dataclass
class Counters:
    """The durable counters, parsed (repo-keyed)."""

    sent: dict[str, int] = field(default_factory=dict)  # messages
    chained: dict[str, int] = field(default_factory=dict)  # todos run on, no message
    ended: dict[tuple[str, str], int] = field(default_factory=dict)  # (repo, status)
    lost: dict[str, int] = field(default_factory=dict)
    buckets: dict[str, list[int]] = field(default_factory=dict)  # per bucket, not cumulative
    duration_ms: dict[str, int] = field(default_factory=dict)
    duration_n: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, object]) -> Counters:
        out = cls()
        out.add(raw)
        return out

    def add(self, raw: Mapping[str, object]) -> None:
        """Add counts named as in the metrics hash (the hash itself, or a sweep's own)."""
        def bump(d: dict[Any, int], k: Any, n: int) -> None:
            d[k] = d.get(k, 0) + n

        for name, value in raw.items():
            try:
                n = int(str(value))
            except (TypeError, ValueError):
                continue
            kind, _, rest = str(name).partition(":")
            if kind == "sent":
                bump(self.sent, rest, n)
            elif kind == "chained":
                bump(self.chained, rest, n)
            elif kind == "lost":
                bump(self.lost, rest, n)
            elif kind == "ended":
                repo, _, status = rest.rpartition(":")
                bump(self.ended, (repo, status), n)
            elif kind == "dur":
                head, _, idx = rest.rpartition(":")
                repo, _, status = head.rpartition(":")
                if idx.isdigit() and int(idx) <= len(BUCKETS):
                    self.buckets.setdefault(repo, [0] * (len(BUCKETS) + 1))[int(idx)] += n
                    bump(self.duration_n, repo, n)
                    bump(self.ended, (repo, status), n)
            elif kind == "dur_ms":
                bump(self.duration_ms, rest, n)

    def repos(self) -> set[str]:
        return ({*self.sent, *self.chained, *self.lost, *self.buckets, *self.duration_n}
                | {r for r, _ in self.ended})


class MetricCounters(Store):
    """Moves the durable counters; never raises (a count is not worth a failed todo)."""

    def _incr(self, deltas: Mapping[str, int]) -> None:
        if not deltas:
            return
        try:
            lua("metrics_add")(self.r, [self.keys.metrics],
                               [x for name, by in deltas.items() for x in (name, by)])
        except redis.RedisError as exc:
            log.warning("metrics: %d counts not recorded (%s)", len(deltas), exc)

    def count_sent(self, repos: Iterable[str]) -> None:
        """Messages sent, one per repo named (a repo may be named many times)."""
        deltas: dict[str, int] = {}
        for repo in repos:
            deltas[sent_field(repo)] = deltas.get(sent_field(repo), 0) + 1
        self._incr(deltas)

    def count_chained(self, repos: Iterable[str]) -> None:
        """Todos a worker ran on in one task (``--merge-chains``), one per repo named:
        dispatched, with no message sent."""
        deltas: dict[str, int] = {}
        for repo in repos:
            deltas[chained_field(repo)] = deltas.get(chained_field(repo), 0) + 1
        self._incr(deltas)

    def count_outcomes(self, outcomes: Iterable[Outcome]) -> None:
        """Todos that ended without a finish script counting them (skips, cancels,
        poison), a count per repo and status."""
        deltas: dict[str, int] = {}
        for o in outcomes:
            name = ended_field(o.repo, o.status)
            deltas[name] = deltas.get(name, 0) + 1
        self._incr(deltas)

    def fold(self, sweep_id: str) -> None:
        """An ended run's own counts into the namespace's (``lua/metrics_fold.lua``);
        called once per run, by whoever ended it (``recording.keep``)."""
        try:
            lua("metrics_fold")(self.r, [self.keys.sweep(sweep_id), self.keys.metrics], [])
        except redis.RedisError as exc:
            log.warning("metrics: sweep %s's counts not folded (%s); they stay counted "
                        "with the sweep until it expires", sweep_id, exc)

    def count_lost(self, repo: str, n: int = 1) -> None:
        """Runs lost with their worker (a lease that expired while it ran)."""
        self._incr({lost_field(repo): n})


@dataclass
class Snapshot:
    """What one scrape read (see :meth:`MetricsReader.read`)."""

    counters: Counters
    #: sweep id -> its status, for every sweep kept (listed in the sweeps index)
    sweeps: dict[str, str]
    #: (todo status, repo) -> todos of the live sweeps
    todos: dict[tuple[str, str], int]
    workers: list[WorkerRecord]
    #: queue name -> messages waiting (every priority list)
    queues: dict[str, int]
    #: repo -> breaker state
    breakers: dict[str, BreakerState]
    #: shared resource (the catalog's ``resources:``) -> its use now
    resources: dict[str, ResourceUse] = field(default_factory=dict)
    #: repo -> its recoveries, from the history (:func:`coordination.stats.flow.recoveries`)
    recovery: dict[str, Recovery] = field(default_factory=dict)


@dataclass(frozen=True)
class ResourceUse:
    """A shared resource at one scrape: its slots, how many are held, how many todos
    wait in its line and how long the first of them has waited (seconds; 0: none)."""

    capacity: int
    used: int
    waiting: int
    wait_seconds: float


@dataclass(frozen=True)
class Recovery:
    """A repo's recoveries (first failure to next success) in the history kept: the
    latest one's duration, their mean and how many (seconds)."""

    last: float
    mean: float
    count: int


_T = todo_field("")
#: A checkpoint's status, found without parsing its JSON: a status is a bare word, each
#: checkpoint has one, and text fields escape their quotes, so nothing can imitate it.
_STATUS = re.compile(r'"status":"([a-z_]+)"')


@dataclass(frozen=True)
class TodoOwners:
    """One run's todos as a scrape reads them (built once per run: its spec is frozen):
    the checkpoint fields in HMGET order, and per repo a picker of its todos' replies."""

    fields: list[str]
    groups: list[tuple[str, Callable[[Sequence[str | None]], tuple[str | None, ...]]]]

    @classmethod
    def of(cls, owners: Mapping[str, str]) -> TodoOwners:
        ids = list(owners)
        where: dict[str, list[int]] = {}
        for i, t in enumerate(ids):
            where.setdefault(owners[t], []).append(i)
        groups = []
        for repo, idx in sorted(where.items()):
            pick = itemgetter(*idx)
            groups.append((repo, pick if len(idx) > 1 else _one(pick)))
        return cls([_T + t for t in ids], groups)


def _one(pick: Callable[[Sequence[str | None]], str | None]
         ) -> Callable[[Sequence[str | None]], tuple[str | None, ...]]:
    return lambda values: (pick(values),)


def _json_list(text: str | None) -> list[str]:
    try:
        got = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(x) for x in got] if isinstance(got, list) else []


def _add_json(counters: Counters, text: str | None) -> None:
    """Counts kept as a JSON object (a run's own, of a repo) added to ``counters``."""
    if not text:
        return
    try:
        counts = json.loads(text)
    except ValueError:
        return
    if isinstance(counts, dict):
        counters.add(counts)


class MetricsReader:
    """Reads a :class:`Snapshot` in a few pipelined round trips."""

    def __init__(self, r: redis.Redis, keys: Keys, workers: WorkerRegistry) -> None:
        self.r = r
        self.keys = keys
        self.worker_registry = workers

    def live_sweeps(self, known: Sequence[str] = ()) -> tuple[
            Counters, dict[str, str], dict[str, int], list[str]]:
        """The counters, every kept sweep's status, the live ones' runs, and the sweep
        ids read (hand them back as ``known`` next time: they are read in the first
        round trip).

        Two round trips when no sweep was added since ``known`` (else three): the hash,
        the sweeps index and every known sweep's status, run and the repos of its own
        counts not folded yet; then those counts (a field a repo) and the hash's
        ``folds`` again. A fold between the two reads of ``folds`` (the run's counts may
        be in both or neither) makes it read again, three times at most."""
        ids = sorted(set(known))
        read: list[str] = []
        for _attempt in range(4):
            read = ids
            pipe = self.r.pipeline(transaction=False)
            pipe.hgetall(self.keys.metrics)
            pipe.zrange(self.keys.sweeps, 0, -1)
            pipe.smembers(self.keys.active_sweeps)
            for sid in ids:
                pipe.hmget(self.keys.sweep(sid), ["status", "run", "metrics", OWN_REPOS])
            raw, listed, active_raw, *recs = pipe.execute()
            active = {str(a) for a in active_raw}
            now = {str(i) for i in listed} | active
            if not now <= set(ids):
                ids = sorted(set(ids) | now)  # new sweeps: read them too
                continue
            # The runs not folded yet: their counts of each repo (a second round trip,
            # then the hash's `folds` again).
            own = [(sid, [OWN_PREFIX + r for r in _json_list(rec[3])])
                   for sid, rec in zip(ids, recs) if rec[3]]
            pipe = self.r.pipeline(transaction=False)
            for sid, fields in own:
                pipe.hmget(self.keys.sweep(sid), fields or ["status"])
            pipe.hget(self.keys.metrics, FOLDS)
            *own_values, folds_after = pipe.execute()
            if str((raw or {}).get(FOLDS)) == str(folds_after):
                break
        counters = Counters.parse(raw or {})
        for values in own_values:
            for text in values:
                _add_json(counters, text)
        statuses: dict[str, str] = {}
        runs: dict[str, int] = {}
        for sid, (status, run, legacy, _repos) in zip(read, recs):
            _add_json(counters, legacy)  # a run of before 0.4 kept them in one field
            if status is None or sid not in now:
                continue  # gone (expired)
            statuses[sid] = str(status).strip('"')
            if sid in active:
                try:
                    runs[sid] = int(str(run or 0))
                except ValueError:
                    runs[sid] = 0
        return counters, statuses, runs, sorted(now)

    def replicas(self) -> int:
        """Replicas in sync with coord's Redis master (``INFO replication``, those
        ``state=online``): the ones a start, a renewal or a finish waits for. 0 on a
        Sentinel-managed master means its writes go unconfirmed and a failover has
        nowhere to go (``coord_redis_replicas``)."""
        info = dict(self.r.info("replication"))
        return sum(1 for k, v in info.items()
                   if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online")

    def read(self, owners: Mapping[str, TodoOwners], repos: Iterable[str],
             queues: Iterable[str], *, counters: Counters, sweeps: dict[str, str]) -> Snapshot:
        """The live sweeps' todos counted by status and repo (``owners``: sweep -> its
        run's :class:`TodoOwners`; a todo with no checkpoint yet is pending), the workers,
        the queues' lengths and the ``repos``' breakers: one pipelined round trip besides
        the workers' own.

        A sweep's checkpoints are one HMGET of its todos' ``t:`` fields (never the output
        tails). Measured at 10,000 todos: 2.6 ms of the server's time, where ``HSCAN MATCH
        t:*`` took 28 ms and HGETALL 15 ms."""
        workers = self.worker_registry.live()
        queue_names = sorted(set(queues))
        repo_names = sorted(set(repos))
        sweep_ids = sorted(owners)
        pipe = self.r.pipeline(transaction=False)
        for sid in sweep_ids:
            if owners[sid].fields:
                pipe.hmget(self.keys.sweep(sid), owners[sid].fields)
        for q in queue_names:
            for pri in BROKER_PRIORITIES:
                pipe.llen(self.keys.broker_queue(q, pri))
        for repo in repo_names:
            pipe.hget(self.keys.breaker(repo), "state")
        replies = iter(pipe.execute())
        todos: dict[tuple[str, str], int] = {}
        for sid in sweep_ids:
            if owners[sid].fields:
                _count(todos, owners[sid], next(replies))
        lengths = {q: sum(_int(next(replies)) for _ in BROKER_PRIORITIES) for q in queue_names}
        breakers: dict[str, BreakerState] = {}
        for repo in repo_names:
            state = next(replies)
            try:
                breakers[repo] = (BreakerState(str(state)) if isinstance(state, str) and state
                                  else BreakerState.closed)
            except ValueError:
                breakers[repo] = BreakerState.closed
        return Snapshot(counters=counters, sweeps=sweeps, todos=todos, workers=workers,
                        queues=lengths, breakers=breakers)


def _int(value: object) -> int:
    return int(value) if isinstance(value, (int, str, bytes)) else 0


def _count(into: dict[tuple[str, str], int], owners: TodoOwners,
           values: Sequence[str | None]) -> None:
    """Add one sweep's todos to ``(status, repo)`` counts, a repo at a time: its
    checkpoints joined and searched by one regex (no checkpoint, or none with a status:
    pending). At 10,000 todos a call per todo was most of the exporter's time."""
    for repo, pick in owners.groups:
        mine = pick(values)
        present = [v for v in mine if v]
        statuses = _STATUS.findall("\x00".join(present))
        for status, n in Counter(statuses).items():
            into[(status, repo)] = into.get((status, repo), 0) + n
        pending = len(mine) - len(statuses)
        if pending:
            into[("pending", repo)] = into.get(("pending", repo), 0) + pending
