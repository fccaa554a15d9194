"""Prometheus exposition of coord (`coord metrics`, ``/metrics`` on `coord ui`).

A custom collector (:class:`CoordCollector`): every scrape reads Redis through the
runtime (:mod:`coordination.runtime.metrics`) and builds the families afresh, so
nothing here keeps a number a restart would lose, and two exporters of one namespace
answer alike. Counters are Redis's durable counters; gauges are read at scrape time.

Names follow celery-exporter where one applies (its dashboards and celery-mixin's
alerts work unchanged): ``celery_task_sent_total`` (messages: a todo a worker runs on in
a merged chain sends none, ``coord_todos_dispatched_total`` counts todos),
``celery_task_succeeded_total``,
``celery_task_failed_total`` and the ``celery_task_runtime`` histogram, labelled
``name`` (the task, ``coord.run_todo``) and ``queue_name`` (the repo's queue);
``celery_worker_up{hostname}``; ``celery_queue_length{queue_name}``. The rest are
``coord_*``, labelled ``repo`` where they are per repo.

What a scrape costs: four pipelined round trips (counters and sweep index; each kept
sweep's status; the live sweeps' checkpoints, queues and breakers; workers), and a
live sweep's spec is read once per run (its todos' repos are cached here); one more for
the shared resources' slots and lines when the catalog has ``resources:``, and, at most
once a minute (:data:`RECOVERY_EVERY`), one for the history's stamp (its runs are read
again, for recovery times, only when a run was recorded or trimmed since).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import redis
from prometheus_client import generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from coordination.redis_url import is_sentinel
from coordination.runtime.context import Runtime
from coordination.runtime.metrics import (
    BUCKETS,
    Counters,
    Recovery,
    ResourceUse,
    Snapshot,
    TodoOwners,
)
from coordination.stats.flow import recoveries
from coordination.status import BreakerState, SweepStatus, TodoStatus

log = logging.getLogger("coord.metrics")

#: The exposition's media type (Prometheus text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: Seconds a scrape keeps the recovery times it read from the history (a busy team
#: records a run every few seconds: without it every scrape would read the whole history).
RECOVERY_EVERY = 60.0
#: The Celery task every todo message names (celery-exporter's ``name`` label).
TASK_NAME = "coord.run_todo"
SUCCEEDED = (TodoStatus.succeeded, TodoStatus.compensated, TodoStatus.cached)  # cached: its message ended well
FAILED = (TodoStatus.failed, TodoStatus.compensation_failed)


#: What a scrape takes from the catalog: its repo names, its shared resources'
#: capacities (name -> slots), and per plan (every plan; "" for todos of none that have
#: one) the ``due:`` times (Unix) of its todos not completed: ``coord_todos_overdue``.
CatalogFacts = tuple[list[str], dict[str, int], dict[str, list[float]]]


def catalog_facts(path: Path | None) -> Callable[[], CatalogFacts]:
    """The catalog's repo names and shared resources, read again only when the file
    changed (a stat per scrape: loading a 10,000-todo catalog costs more than the rest
    of a scrape); none when there is no catalog or it does not load (the scrape goes
    on)."""
    seen: dict[str, tuple[int, int, int]] = {}
    facts: list[CatalogFacts] = [([], {}, {})]

    def read() -> CatalogFacts:
        if path is None:
            return [], {}, {}
        try:
            st = path.stat()
        except OSError:
            return [], {}, {}
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if seen.get("stamp") == stamp:
            return list(facts[0][0]), dict(facts[0][1]), dict(facts[0][2])
        # lazy: the catalog store (pydantic) only when a scrape asks
        from coordination.catalog.file.store import CatalogStore

        try:
            cat = CatalogStore(path).load()
            dues: dict[str, list[float]] = {p.id: [] for p in cat.coordination.plans}
            for t in cat.coordination.todos:
                if t.due is not None and t.status.value != "completed":
                    dues.setdefault(t.plan or "", []).append(t.due.timestamp())
            got: CatalogFacts = ([r.name for r in cat.repos],
                                 {x.name: x.capacity for x in cat.resources}, dues)
        except Exception as exc:  # noqa: BLE001 - a broken catalog must not stop a scrape
            log.debug("metrics: catalog %s not read: %s", path, exc)
            got = ([], {}, {})
        facts[0] = got
        seen["stamp"] = stamp
        return list(got[0]), dict(got[1]), dict(got[2])

    return read


def catalog_repos(path: Path | None) -> Callable[[], list[str]]:
    """The catalog's repo names (:func:`catalog_facts`)."""
    facts = catalog_facts(path)
    return lambda: facts()[0]


class CoordCollector(Collector):
    """Reads coord's state from Redis at every scrape (see the module's docstring)."""

    def __init__(self, rt: Runtime, repos: Callable[[], Iterable[str]] | None = None,
                 resources: Callable[[], Mapping[str, int]] | None = None,
                 dues: Callable[[], Mapping[str, list[float]]] | None = None) -> None:
        self.rt = rt
        self.repos = repos or (lambda: [])
        self.resources = resources or (lambda: {})
        self.dues = dues or (lambda: {})
        #: the history's stamp, when the recoveries were computed from it, and them
        #: (recomputed only when a run was recorded or trimmed, and at most every
        #: RECOVERY_EVERY seconds: reading the history is the dearest read)
        self._recovery: tuple[tuple[int, float], float, dict[str, Recovery]] | None = None
        #: (sweep, run) -> its todos and their repos, of the live sweeps (a run's spec
        #: is frozen)
        self._owners: dict[tuple[str, int], TodoOwners] = {}
        #: the sweep ids the last scrape read (this one reads them in its first round trip)
        self._known: list[str] = []

    def _todo_repos(self, runs: dict[str, int]) -> dict[str, TodoOwners]:
        """Sweep -> its todos and their repos, of the live sweeps, from each run's spec
        read once (as JSON: no signature check, no spec object)."""
        out: dict[str, TodoOwners] = {}
        keep: dict[tuple[str, int], TodoOwners] = {}
        for sid, run in runs.items():
            view = self._owners.get((sid, run))
            if view is None:
                owners = self._read_owners(sid)
                if owners is None:
                    continue
                view = TodoOwners.of(owners)
            keep[(sid, run)] = view
            out[sid] = view
        self._owners = keep
        return out

    def _read_owners(self, sweep_id: str) -> dict[str, str] | None:
        rec = self.rt.checkpoints.get_sweep_fields(sweep_id, ("spec",))
        spec: object = (rec or {}).get("spec")
        if isinstance(spec, str):
            try:
                spec = json.loads(spec)
            except ValueError:
                return None
        todos = spec.get("todos") if isinstance(spec, dict) else None
        if not isinstance(todos, dict):
            return None
        return {str(t): str(v.get("repo", "")) for t, v in todos.items() if isinstance(v, dict)}

    def snapshot(self) -> tuple[Snapshot, list[str]]:
        reader = self.rt.metrics_reader()
        counters, sweeps, runs, self._known = reader.live_sweeps(self._known)
        owners = self._todo_repos(runs)
        repos = set(self.repos()) | counters.repos()
        for view in owners.values():
            repos.update(repo for repo, _pick in view.groups)
        repos.discard("")
        keys = self.rt.keys
        queues = [keys.repo_queue(r) for r in repos] + [keys.control_queue]
        snap = reader.read(owners, repos, queues, counters=counters, sweeps=sweeps)
        snap.resources = self._resource_use(self.resources())
        snap.recovery = self._recoveries()
        for w in snap.workers:
            repos.update(w.repos)
        repos.update(snap.recovery)
        return snap, sorted(repos)

    def _resource_use(self, capacity: Mapping[str, int]) -> dict[str, ResourceUse]:
        """Each shared resource's slots held and line, in one pipelined round trip."""
        if not capacity:
            return {}
        _repos, lines = self.rt.leases.lines({}, dict(capacity))
        now = time.time()
        return {name: ResourceUse(
            capacity=len(line.slots), used=sum(1 for s in line.slots if s.token is not None),
            waiting=len(line.waiting),
            wait_seconds=round(max((now - w.since for w in line.waiting), default=0.0), 3))
            for name, line in lines.items()}

    def _recoveries(self) -> dict[str, Recovery]:
        """Repo -> its recoveries in the history kept (COORD_HISTORY_DAYS)."""
        store = self.rt.history()
        now = time.monotonic()
        if self._recovery is not None and now - self._recovery[1] < RECOVERY_EVERY:
            return self._recovery[2]
        stamp = store.stamp()
        if self._recovery is not None and self._recovery[0] == stamp:
            self._recovery = (stamp, now, self._recovery[2])
            return self._recovery[2]
        got = {repo: Recovery(last=round(times[-1], 3), mean=round(sum(times) / len(times), 3),
                              count=len(times))
               for repo, times in recoveries(store.ended(since=None)).items()}
        self._recovery = (stamp, now, got)
        return got

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("coord_redis_up", "1 when this scrape read coord's Redis")
        try:
            snap, repos = self.snapshot()
        except redis.RedisError as exc:
            log.warning("metrics: Redis unreachable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families(snap, repos, self.rt.keys.repo_queue)
        yield overdue_family(self.dues(), time.time())
        try:
            yield from context_families(self.rt.shared_context().stats())
        except redis.RedisError as exc:
            log.warning("metrics: cannot read the shared context's counts: %s", exc)
        if is_sentinel(self.rt.url):
            yield from self._replicas()

    def _replicas(self) -> Iterator[Metric]:
        """``coord_redis_replicas`` (Sentinel only: a lone master is the norm elsewhere):
        0 means writes go unconfirmed and a failover has nowhere to go."""
        try:
            n = self.rt.metrics_reader().replicas()
        except redis.RedisError as exc:
            log.warning("metrics: cannot read the master's replicas: %s", exc)
            return
        fam = GaugeMetricFamily("coord_redis_replicas",
                                "Replicas in sync with coord's Redis master (Sentinel)")
        fam.add_metric([], n)
        yield fam


def overdue_family(dues: Mapping[str, list[float]], now: float) -> Metric:
    """``coord_todos_overdue{plan}``: the catalog's todos past their ``due:`` and not
    completed, per plan (every plan, 0 included, so an alert reads a number, not an
    absence; "" for todos of no plan); read from the catalog (a todo stops counting when
    its outcome is synced into it)."""
    fam = GaugeMetricFamily("coord_todos_overdue",
                            "Todos past their due: time and not completed, per plan",
                            labels=["plan"])
    for plan, times in sorted(dues.items()):
        fam.add_metric([plan], sum(1 for due in times if due < now))
    return fam


def families(snap: Snapshot, repos: list[str], queue_of: Callable[[str], str]
             ) -> Iterator[Metric]:
    """Every family of one scrape (pure: ``snap`` holds what Redis said)."""
    c = snap.counters
    counts = _todo_counts(snap)
    live = _live_workers(snap, repos)
    yield from _celery_counters(c, queue_of)
    yield _runtime_histogram(
        "celery_task_runtime", "How long coord.run_todo ran (seconds), per queue",
        ["name", "queue_name"], c, lambda r: [TASK_NAME, queue_of(r)])
    yield _runtime_histogram(
        "coord_todo_duration_seconds", "How long todos' runs took, per repo (seconds)",
        ["repo"], c, lambda r: [r])
    yield from _broker_gauges(snap)
    yield from _sweep_gauges(snap, counts)
    ended = CounterMetricFamily("coord_todos_ended", "Todos that reached a terminal status",
                                labels=["repo", "status"])
    for (repo, status), n in sorted(c.ended.items()):
        ended.add_metric([repo, status], n)
    yield ended
    yield from _repo_families(snap, repos, live, queue_of)
    yield from _resource_families(snap.resources)
    yield from _recovery_families(snap.recovery)
    queued = {repo for (status, repo), n in counts.items() if status == TodoStatus.queued and n}
    unattended = GaugeMetricFamily(
        "coord_unattended_repos", "Repos with queued todos and no live worker")
    unattended.add_metric([], len([r for r in queued if not live.get(r)]))
    yield unattended


def _todo_counts(snap: Snapshot) -> dict[tuple[str, str], int]:
    """(status, repo) -> todos of the live sweeps, every status of a repo listed (0)."""
    counts = dict(snap.todos)
    for repo in sorted({repo for _status, repo in counts}):
        for status in [str(s) for s in TodoStatus]:
            counts.setdefault((status, repo), 0)
    return counts


def _live_workers(snap: Snapshot, repos: list[str]) -> dict[str, int]:
    """Repo -> live workers serving it (not those stopping), every repo of ``repos`` listed."""
    live: dict[str, int] = {r: 0 for r in repos}
    for w in snap.workers:
        if w.stopping:
            continue
        for repo in w.repos:
            live[repo] = live.get(repo, 0) + 1
    return live


def _broker_gauges(snap: Snapshot) -> Iterator[Metric]:
    """What Celery's exporters show: each live worker, each queue's length."""
    workers_up = GaugeMetricFamily("celery_worker_up", "1 per live coord worker",
                                   labels=["hostname"])
    for w in snap.workers:
        workers_up.add_metric([w.name], 1)
    yield workers_up
    queue_len = GaugeMetricFamily("celery_queue_length", "Messages waiting in a queue",
                                  labels=["queue_name"])
    for q, n in sorted(snap.queues.items()):
        queue_len.add_metric([q], n)
    yield queue_len


def _sweep_gauges(snap: Snapshot, counts: dict[tuple[str, str], int]) -> Iterator[Metric]:
    """Sweeps kept, by status; the live sweeps' todos, by status and repo."""
    sweeps = GaugeMetricFamily("coord_sweeps", "Sweeps kept in Redis, by status",
                               labels=["status"])
    by_status = {str(s): 0 for s in SweepStatus}
    for status in snap.sweeps.values():
        by_status[status] = by_status.get(status, 0) + 1
    for status, n in sorted(by_status.items()):
        sweeps.add_metric([status], n)
    yield sweeps
    todos = GaugeMetricFamily("coord_todos", "Todos of the live sweeps, by status and repo",
                              labels=["status", "repo"])
    for (status, repo), n in sorted(counts.items()):
        todos.add_metric([status, repo], n)
    yield todos


def _repo_families(snap: Snapshot, repos: list[str], live: dict[str, int],
                   queue_of: Callable[[str], str]) -> Iterator[Metric]:
    """Per repo: its live workers, its breaker, its lost runs."""
    # queue_name: the repo's queue, so a rule joins it with celery_queue_length by label
    # under any COORD_NAMESPACE (the queue's name starts with it), never by a spelled prefix.
    workers_live = GaugeMetricFamily("coord_workers_live", "Live workers serving a repo",
                                     labels=["repo", "queue_name"])
    for repo, n in sorted(live.items()):
        workers_live.add_metric([repo, queue_of(repo)], n)
    yield workers_live
    breaker = GaugeMetricFamily(
        "coord_repo_breaker_open", "1 while a repo's circuit breaker is open or half-open",
        labels=["repo"])
    for repo, state in sorted(snap.breakers.items()):
        breaker.add_metric([repo], 0 if state == BreakerState.closed else 1)
    yield breaker
    lost = CounterMetricFamily("coord_lost_runs", "Runs lost with their worker (lease expired)",
                               labels=["repo"])
    for repo in repos:
        lost.add_metric([repo], snap.counters.lost.get(repo, 0))
    yield lost


def context_families(stats: dict[str, int]) -> Iterator[Metric]:
    """``coord_context_{hits,misses,evictions}_total`` by scope kind (`coord context`;
    ``stats``: ``<stat>:<kind>`` -> count, :meth:`ContextStore.stats`)."""
    helps = {"hits": "Shared-context reads that found their value",
             "misses": "Shared-context reads that found none (never set, expired, evicted)",
             "evictions": "Shared-context values evicted (least recently used) by a full scope"}
    for stat, text in helps.items():
        fam = CounterMetricFamily(f"coord_context_{stat}", text, labels=["scope"])
        for field, n in sorted(stats.items()):
            name, _, kind = field.partition(":")
            if name == stat:
                fam.add_metric([kind], n)
        yield fam


def _resource_families(use: Mapping[str, ResourceUse]) -> Iterator[Metric]:
    """The shared resources' (catalog ``resources:``) use at this scrape."""
    label = ["resource"]
    capacity = GaugeMetricFamily("coord_resource_capacity",
                                 "Slots of a shared resource (its capacity:)", labels=label)
    used = GaugeMetricFamily("coord_resource_used",
                             "Slots of a shared resource held now", labels=label)
    waiting = GaugeMetricFamily("coord_resource_waiting",
                                "Todos in line for a shared resource's slot", labels=label)
    wait = GaugeMetricFamily(
        "coord_resource_wait_seconds",
        "How long the first todo in line for a shared resource has waited (0: nobody waits)",
        labels=label)
    for name, u in sorted(use.items()):
        capacity.add_metric([name], u.capacity)
        used.add_metric([name], u.used)
        waiting.add_metric([name], u.waiting)
        wait.add_metric([name], u.wait_seconds)
    yield from (capacity, used, waiting, wait)


def _recovery_families(recovery: Mapping[str, Recovery]) -> Iterator[Metric]:
    """Recovery times (first failure to next success) from the history kept."""
    label = ["repo"]
    last = GaugeMetricFamily(
        "coord_repo_recovery_seconds",
        "A repo's latest recovery: its first failed run to its next successful one (seconds)",
        labels=label)
    mean = GaugeMetricFamily(
        "coord_repo_recovery_mean_seconds",
        "A repo's mean time to recovery over the history kept (COORD_HISTORY_DAYS)",
        labels=label)
    count = GaugeMetricFamily("coord_repo_recoveries",
                              "A repo's recoveries in the history kept", labels=label)
    for repo, r in sorted(recovery.items()):
        last.add_metric([repo], r.last)
        mean.add_metric([repo], r.mean)
        count.add_metric([repo], r.count)
    yield from (last, mean, count)


def _celery_counters(c: Counters, queue_of: Callable[[str], str]) -> Iterator[Metric]:
    labels = ["name", "queue_name"]
    sent = CounterMetricFamily("celery_task_sent", "coord.run_todo messages sent (a todo "
                               "a worker runs on in a merged chain sends none)", labels=labels)
    for repo, n in sorted(c.sent.items()):
        sent.add_metric([TASK_NAME, queue_of(repo)], n)
    yield sent
    todos = CounterMetricFamily(
        "coord_todos_dispatched", "Todos handed to a repo's workers: by a message, or run "
        "on in the task of the todo before (--merge-chains)", labels=["repo"])
    for repo in sorted(c.sent.keys() | c.chained.keys()):
        todos.add_metric([repo], c.sent.get(repo, 0) + c.chained.get(repo, 0))
    yield todos
    for name, statuses, text in (("celery_task_succeeded", SUCCEEDED, "Todo runs that succeeded"),
                                 ("celery_task_failed", FAILED, "Todo runs that failed")):
        fam = CounterMetricFamily(name, text, labels=labels)
        per_repo: dict[str, int] = {}
        for (repo, status), n in c.ended.items():
            if status in statuses:
                per_repo[repo] = per_repo.get(repo, 0) + n
        for repo in sorted(set(per_repo) | set(c.sent)):
            fam.add_metric([TASK_NAME, queue_of(repo)], per_repo.get(repo, 0))
        yield fam


def _runtime_histogram(name: str, text: str, labels: list[str], c: Counters,
                       label_values: Callable[[str], list[str]]) -> HistogramMetricFamily:
    fam = HistogramMetricFamily(name, text, labels=labels)
    for repo in sorted(c.buckets.keys() | c.duration_n.keys()):
        counts = c.buckets.get(repo, [0] * (len(BUCKETS) + 1))
        cumulative, total = [], 0
        for bound, n in zip([*map(_le, BUCKETS), "+Inf"], counts):
            total += n
            cumulative.append((bound, float(total)))
        fam.add_metric(label_values(repo), cumulative, c.duration_ms.get(repo, 0) / 1000.0)
    return fam


def _le(bound: float) -> str:
    return f"{bound:g}" if bound != int(bound) else f"{bound:.1f}"


def registry(rt: Runtime, catalog: Path | None) -> CollectorRegistry:
    """A registry holding only coord's collector (no process or platform metrics of
    the exporter itself: they would describe the exporter, not coord)."""
    reg = CollectorRegistry(auto_describe=False)
    facts = catalog_facts(catalog)
    reg.register(CoordCollector(rt, lambda: facts()[0], lambda: facts()[1],
                                lambda: facts()[2]))
    return reg


def exposition(reg: CollectorRegistry) -> bytes:
    """The Prometheus text format of one scrape."""
    return bytes(generate_latest(reg))


def local_names(address: str | None = None) -> list[str]:
    """``Host`` names the exporter answers to without COORD_UI_HOSTS (as `coord ui`'s):
    localhost's, and the address it binds when that is one address."""
    names = ["localhost", "127.0.0.1", "[::1]"]
    if address and address not in ("0.0.0.0", "::", ""):
        names.append(f"[{address}]" if ":" in address else address.lower())
    return names


def host_name(header: str) -> str:
    """A ``Host`` header's name, its port dropped (``[::1]:9808`` -> ``[::1]``)."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[:end + 1] if end > 0 else header
    return header.split(":", 1)[0]


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def guarded(app: WSGIApp, hosts: Sequence[str]) -> WSGIApp:
    """``app`` answering only requests whose ``Host`` names one of ``hosts`` (400
    otherwise, saying nothing of the metrics): without it any web site the user
    visits could point a name of its own at this address (DNS rebinding) and read
    the exposition with the user's browser, as the web view, MCP over HTTP and
    Flower already refuse."""
    allowed = {h.lower() for h in hosts}

    def app_(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        host = host_name(str(environ.get("HTTP_HOST") or ""))
        if host not in allowed:
            body = (b"Invalid Host header: coord metrics answers "
                    + ", ".join(sorted(allowed)).encode()
                    + b" (name more hosts in COORD_UI_HOSTS)\n")
            start_response("400 Bad Request", [("Content-Type", "text/plain; charset=utf-8"),
                                               ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return app_
