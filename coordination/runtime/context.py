"""The runtime's stateful parts bundled for one process.

Embedded and distributed modes build the same object on a real Redis; they
differ only by where its URL points: ``COORD_REDIS_URL``, or (unset) the
catalog's own server, started or joined on a unix socket beside the catalog
(:mod:`coordination.connection.embedded_server`). Opening one upgrades what an older
coord left behind, once (:mod:`coordination.runtime.migrations`: coord 0.1's
checkpoint hashes, and embedded, coord 0.2's file beside the catalog), so no read of a
sweep ever migrates. Unit tests may hand it a client of their own (an in-process
stand-in).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import redis

from coordination.connection.claim import check_claim
from coordination.connection.client import is_embedded, real_client
from coordination.connection.embedded_server import ensure_server
from coordination.keys import Keys
from coordination.redis_url import is_sentinel
from coordination.runtime.checkpoints import CheckpointStore
from coordination.runtime.events import EventLog
from coordination.runtime.migrations import upgrade
from coordination.runtime.workers import WorkerClock, WorkerRegistry
from coordination.settings_core import Core, read_core
from coordination.settings_defaults import read_plain

if TYPE_CHECKING:
    from coordination.connection.server_facts import ServerFacts
    from coordination.messages import Dispatcher
    from coordination.runtime.breakers import Breakers
    from coordination.runtime.deliveries import Deliveries
    from coordination.runtime.cache import ResultCache
    from coordination.runtime.changes import ChangeStore
    from coordination.runtime.freeze import FreezeStore
    from coordination.runtime.history import RedisHistory
    from coordination.runtime.gate_count import GateCounter
    from coordination.runtime.leases import LeaseManager
    from coordination.runtime.logs import LogStore
    from coordination.runtime.metrics import MetricCounters, MetricsReader
    from coordination.runtime.notify import Outbox
    from coordination.runtime.overdue import OverdueMarks
    from coordination.runtime.schedules import ScheduleStore
    from coordination.runtime.shared_context import ContextStore, RunCheck
    from coordination.runtime.transitions import Transitions
    from coordination.trust.signing import Policy
    from coordination.settings import Settings


#: (the field ``Runtime.redis`` hides the module inside the class)
RedisClient = redis.Redis


def every_setting() -> Settings:
    """Every setting, each checked (a bad one raises its SettingsError, naming the
    variable): without pydantic when the environment sets none but where Redis is (then
    every other one is its default: :func:`~coordination.settings_defaults.read_plain`),
    else the full settings."""
    plain = read_plain()
    if plain is not None:
        return cast("Settings", plain)
    # lazy: pydantic, only when the environment sets more than where Redis is
    from coordination.settings import get_settings

    return get_settings()


class ReadSettings:
    """What a :meth:`Runtime.reader` has for settings: where Redis is (the four
    :class:`~coordination.settings_core.Core` settings, read without pydantic), and every
    other setting read, and checked, on first use (a bad one raises its SettingsError
    then, naming the variable)."""

    def __init__(self, core: Core) -> None:
        self.ecosystem = core.ecosystem
        self.redis_url = core.redis_url
        self.namespace = core.namespace
        self.share_namespace = core.share_namespace
        self.embedded = core.embedded

    def __getattr__(self, name: str) -> Any:
        # lazy: every setting (pydantic), which `sweep status` never asks for
        from coordination.settings import get_settings

        return getattr(get_settings(), name)


@dataclass
class Runtime:
    #: Every setting: read at start (:meth:`create`), or a :class:`ReadSettings`
    #: (:meth:`reader`) that reads the ones past where Redis is on first use.
    settings: Settings
    keys: Keys
    redis: redis.Redis
    checkpoints: CheckpointStore
    workers: WorkerRegistry
    #: The Redis it talks to (the embedded server's unix:// URL, or COORD_REDIS_URL);
    #: None for a client handed in (Celery then uses its in-memory transport).
    url: str | None = None
    #: How todos are sent (given by whoever wires the process: worker, CLI, embedded).
    dispatcher: Dispatcher | None = field(default=None, repr=False)
    #: The catalog this runtime was opened for (None: none given, not embedded): its
    #: freeze is kept beside it too (:meth:`freeze`).
    catalog: Path | None = None
    #: The catalog file a `coord worker` was started with (its runtime is opened for
    #: none: :attr:`catalog` stays None, its freeze Redis's alone).
    worker_catalog: Path | None = None

    @property
    def own_catalog(self) -> Path | None:
        """The catalog file this process was given itself (a worker's, else the one this
        runtime was opened for); never a path read from Redis. What a push's forge and
        remote are read from (:mod:`coordination.sweeps.starts.push_source`). None: this
        process has none, and posts or fetches nothing a spec asks for."""
        return self.worker_catalog if self.worker_catalog is not None else self.catalog

    @classmethod
    def create(cls, settings: Settings | None = None, *, catalog: Path | None = None,
               client: RedisClient | None = None) -> Runtime:
        """The runtime of ``settings``: on ``COORD_REDIS_URL``, else on ``catalog``'s
        embedded server (default: ``settings.ecosystem``); or on ``client``. Every
        setting is read (and a bad one fails) here (:func:`every_setting`)."""
        return cls._build(settings if settings is not None else every_setting(),
                          catalog=catalog, client=client)

    @classmethod
    def reader(cls, catalog: Path | None = None) -> Runtime:
        """A runtime built from where its Redis is alone (:mod:`coordination.settings_core`,
        no pydantic), for a command that only reads (`sweep status`): its other settings
        are read, and checked, when first used (:class:`ReadSettings`); when the
        environment sets no other, every one at once without pydantic (:func:`every_setting`
        does the same). As :meth:`create` when those few settings need the full reading
        to judge them."""
        plain = read_plain()
        if plain is not None:
            return cls._build(cast("Settings", plain), catalog=catalog, client=None)
        core = read_core()
        if core is None:
            return cls.create(catalog=catalog)
        return cls._build(cast("Settings", ReadSettings(core)), catalog=catalog, client=None)

    @classmethod
    def _build(cls, settings: Settings, *, catalog: Path | None,
               client: RedisClient | None) -> Runtime:
        keys = Keys(settings.namespace)
        url: str | None
        embedded_catalog: Path | None = None
        if client is not None:
            r, url = client, None
        elif settings.redis_url:
            url = settings.redis_url
            r = real_client(url)
            if catalog is not None:
                # Another catalog's namespace is refused before anything is read or sent.
                check_claim(r, keys, catalog, share=settings.share_namespace, url=url)
        else:
            embedded_catalog = (catalog or settings.ecosystem).absolute()
            url = ensure_server(embedded_catalog)
            r = real_client(url)
        # Once per namespace (and embedded, per catalog): never on a read.
        upgrade(r, keys, catalog=embedded_catalog, settings=settings)
        return cls(settings=settings, keys=keys, url=url, redis=r,
                   checkpoints=CheckpointStore(r, keys), workers=WorkerRegistry(r, keys),
                   catalog=catalog if catalog is not None else embedded_catalog)

    @property
    def replicas(self) -> int:
        """Replicas a start, renewal or finish waits for: a Redis behind Sentinel can
        fail over to a replica that missed the last writes (ARCHITECTURE.md)."""
        return 1 if is_sentinel(self.url) else 0

    @functools.cached_property
    def events(self) -> EventLog:
        return EventLog(self.redis, self.keys, maxlen=self.settings.events_maxlen)

    # The stores below are imported on first use: `sweep status` reads a sweep with the
    # checkpoints and the workers' records only (their modules cost it ~10 ms).

    @functools.cached_property
    def leases(self) -> LeaseManager:
        from coordination.runtime.leases import LeaseManager  # lazy: not for `sweep status`

        return LeaseManager(self.redis, self.keys, ttl=self.settings.lease_ttl,
                            replicas=self.replicas)

    @functools.cached_property
    def transitions(self) -> Transitions:
        from coordination.runtime.transitions import Transitions  # lazy: not for `sweep status`

        return Transitions(self.redis, self.keys, lease_ttl=self.settings.lease_ttl,
                           replicas=self.replicas,
                           seal_keys=lambda: self.settings.signing_keys)

    @functools.cached_property
    def gates(self) -> GateCounter:
        from coordination.runtime.gate_count import GateCounter  # lazy: not for `sweep status`

        return GateCounter(self.checkpoints, self.transitions, lambda: self.policy,
                           lambda: self.settings.signing_keys)

    @functools.cached_property
    def deliveries(self) -> Deliveries:
        from coordination.runtime.deliveries import Deliveries  # lazy: webhooks only

        return Deliveries(self.redis, self.keys)

    @functools.cached_property
    def breakers(self) -> Breakers:
        from coordination.runtime.breakers import Breakers  # lazy: not for `sweep status`

        return Breakers(self.redis, self.keys, self.events)

    def claim(self, catalog: Path) -> None:
        """Refuse (or claim) the namespace for ``catalog``, as :meth:`create` does when
        given one (:func:`~coordination.connection.claim.check_claim`); embedded: nothing."""
        if self.settings.redis_url and self.url:
            check_claim(self.redis, self.keys, catalog, share=self.settings.share_namespace,
                        url=self.url)

    @property
    def embedded(self) -> bool:
        """Embedded mode: the catalog's own server (no ``COORD_REDIS_URL``)."""
        return self.settings.embedded

    @property
    def in_process(self) -> bool:
        """Is its Redis the in-process stand-in (no server to block on)?"""
        return is_embedded(self.redis)

    @property
    def metrics(self) -> MetricCounters:
        """The durable counters Prometheus reads (todos sent, ended, lost; run times)."""
        from coordination.runtime.metrics import MetricCounters  # lazy: not for `sweep status`

        return MetricCounters(self.redis, self.keys)

    def metrics_reader(self) -> MetricsReader:
        """What a scrape reads (:mod:`coordination.runtime.metrics`)."""
        from coordination.runtime.metrics import MetricsReader  # lazy: not for `sweep status`

        return MetricsReader(self.redis, self.keys, self.workers)

    def queue_lengths(self, queues: Iterable[str]) -> dict[str, int]:
        """Messages waiting in each of these broker queues (Flower's broker page, doctor)."""
        from coordination.runtime.queues import queue_lengths  # lazy: not for `sweep status`

        return queue_lengths(self.redis, self.keys, queues)

    def push_messages(self, messages: Iterable[tuple[str, int, str]], *,
                      declare: Iterable[str] = ()) -> None:
        """Push broker messages ``(queue, priority, JSON text)`` onto the queues' lists,
        one round trip (coordination.dispatch's BrokerDispatcher writes them)."""
        from coordination.runtime.queues import push_messages  # lazy: not for `sweep status`

        push_messages(self.redis, self.keys, messages, declare=declare)

    def server_facts(self) -> ServerFacts:
        """The Redis server's version, settings, memory, latency and clock (`coord doctor`)."""
        from coordination.connection.server_facts import read_server  # lazy: `coord doctor` only

        return read_server(self.redis)

    def worker_clocks(self) -> list[WorkerClock]:
        """Every live worker with its clock's skew against the server's (`coord doctor`)."""
        return self.workers.clocks(self.workers.live())

    def logs(self) -> LogStore:
        """Each todo attempt's whole output and record (`coord logs`): kept as long as
        its sweep (COORD_RETENTION_DAYS after its end)."""
        from coordination.runtime.logs import LogStore  # lazy: not for `sweep status`

        return LogStore(self.redis, self.keys, keep_s=self.settings.retention_days * 86400
                        + self.settings.sweep_deadline)

    def history(self) -> RedisHistory:
        """The run history, in the Redis this runtime talks to (either mode)."""
        # lazy: reading a sweep (`sweep status`, the waiting CLI) needs no history
        from coordination.runtime.history import RedisHistory

        return RedisHistory(self.redis, self.keys, days=self.settings.history_days)

    def results(self) -> ResultCache:
        """The result cache of ``cache:`` todos and `coord why`: one per runtime, so its
        salt is read once."""
        got: ResultCache | None = self.__dict__.get("_results")
        if got is None:
            from coordination.runtime.cache import ResultCache  # lazy: not for `sweep status`

            got = self.__dict__["_results"] = ResultCache(self.redis, self.keys,
                                                          days=self.settings.cache_days)
        return got

    @property
    def policy(self) -> Policy:
        """The evidence policy of this runtime's settings (its keys, whether unsigned
        records are accepted or signed ones required): read here once per check, handed
        down to :mod:`coordination.trust.evidence` with the facts it checks."""
        from coordination.trust.evidence import policy_of  # lazy: not for `sweep status`

        return policy_of(self.settings)

    def shared_context(self, runs: RunCheck | None = None) -> ContextStore:
        """The shared context of `coord context` (values by scope, LRU-capped, sealed);
        ``runs``: whether the run a value names still stands
        (:func:`coordination.sweeps.context_runs.run_check`)."""
        from coordination.runtime.shared_context import ContextStore  # lazy: as above

        return ContextStore(self.redis, self.keys, max_keys=self.settings.context_max_keys,
                            policy=self.policy, runs=runs)

    def outbox(self) -> Outbox:
        """The notifications outbox (webhooks, deliveries, the feed's cursors, its lease)."""
        # lazy: only workers, `coord notify` and a sweep's start (with webhooks) use it
        from coordination.runtime.notify import Outbox

        return Outbox(self.redis, self.keys)

    def freeze(self, catalog: Path | None = None) -> FreezeStore:
        """The fleet's freeze (`coord freeze`): read before anything new starts; in Redis
        and kept beside ``catalog`` (default this runtime's, if any)."""
        # lazy: not for `sweep status`
        from coordination.runtime.freeze import FreezeStore, freeze_file

        at = catalog if catalog is not None else self.catalog
        return FreezeStore(self.redis, self.keys, freeze_file(at) if at is not None else None,
                           self.events)

    def schedules(self) -> ScheduleStore:
        """Plans' schedules: firings claimed and skipped, redbeat's key prefix."""
        from coordination.runtime.schedules import ScheduleStore  # lazy: `coord beat` only

        return ScheduleStore(self.redis, self.keys)

    def overdue(self) -> OverdueMarks:
        """What sweeps have said is overdue (``todo.overdue``/``plan.overdue`` once)."""
        from coordination.runtime.overdue import OverdueMarks  # lazy: sweeps with due: only

        return OverdueMarks(self.redis, self.keys)

    @property
    def changes(self) -> ChangeStore:
        """Cross-repo changes' state (``coord change``), in the Redis this runtime talks to."""
        from coordination.runtime.changes import ChangeStore  # lazy: only changes need it

        return ChangeStore(self.redis, self.keys, self.settings.lease_ttl,
                           self.settings.signing_keys, policy=self.policy)

    @property
    def app(self) -> Any:
        """The Celery app of a Celery dispatcher (give one as ``dispatcher``)."""
        app = getattr(self.dispatcher, "app", None)
        if app is None:
            raise RuntimeError("this runtime was given no Celery app")
        return app


#: The embedded runtimes this process opened with :func:`get_runtime`, by server and
#: namespace (the CLI delivers what their webhook outboxes have due before it exits).
_EMBEDDED_OPENED: dict[tuple[str, str], Runtime] = {}


@functools.lru_cache(maxsize=4)
def get_runtime(catalog: Path | None = None, *, reader: bool = False) -> Runtime:
    """The process-wide runtime for the current settings (embedded: of ``catalog``'s
    server; default ``COORD_ECOSYSTEM``). ``reader``: for a command that only reads,
    built from where Redis is alone (:meth:`Runtime.reader`)."""
    return _opened(Runtime.reader(catalog) if reader else Runtime.create(catalog=catalog))


def _opened(rt: Runtime) -> Runtime:
    if rt.embedded and rt.url is not None:
        _EMBEDDED_OPENED[(rt.url, rt.keys.namespace)] = rt
    return rt


def embedded_opened() -> list[Runtime]:
    """The catalogs' embedded runtimes this process opened (:func:`get_runtime`)."""
    return list(_EMBEDDED_OPENED.values())
