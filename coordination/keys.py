"""Every Redis key and queue name coord uses, built from the namespace.

No other module writes a key literal: it calls one of these. Keys of one
sweep share the ``{sweep}`` hash tag so a Redis Cluster keeps them on one slot
(our Lua scripts touch several of them at once).
"""

from __future__ import annotations

import hashlib

import re
from dataclasses import dataclass


def glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis glob pattern (``*?[]\\`` escaped): a namespace
    or a sweep id matched as it is, in a SCAN or an ACL key pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def sweep_stem(name: str) -> str:
    """What a sweep id of plan (or todo) ``name`` starts with: the name, an instance's
    brackets spelled with a dash (``TODO-010[api]`` -> ``TODO-010-api``), since a sweep
    id goes into URLs and shell lines as it is."""
    return name.replace("[", "-").replace("]", "")


@dataclass(frozen=True)
class Keys:
    namespace: str = "coord"

    # -- queues ---------------------------------------------------------------
    def repo_queue(self, repo: str) -> str:
        """Queue of one repo's todos: ``<ns>.repo.<repo>``."""
        return f"{self.namespace}.repo.{repo}"

    @property
    def control_queue(self) -> str:
        """Queue of barriers, finalisers and supervisor passes."""
        return f"{self.namespace}.control"

    # -- leases ---------------------------------------------------------------
    def lease(self, repo: str, slot: int) -> str:
        """One of a repo's ``concurrency`` lease slots."""
        return f"{self.namespace}:lease:{repo}:{slot}"

    def fence(self, repo: str) -> str:
        """Counter incremented on every grant of a lease of ``repo``."""
        return f"{self.namespace}:fence:{repo}"

    def breaker(self, repo: str) -> str:
        """Hash: a repo's circuit breaker (state, failures, opened_at, probe...)."""
        return f"{self.namespace}:breaker:{repo}"

    def waiters(self, line: str) -> str:
        """Sorted set of the todos waiting for a slot of one line (``repo:<name>`` or
        ``resource:<name>``), all scored 0 and ordered by their rank (lexically)."""
        return f"{self.namespace}:waiters:{line}"

    def waiters_seen(self, line: str) -> str:
        """Sorted set: the same waiters scored by when they last asked (liveness)."""
        return f"{self.namespace}:waiters:{line}:seen"

    @property
    def wake_prefix(self) -> str:
        """Prefix of each waiter's wake-up list (``<prefix><rank>``), pushed to when
        a slot it waits for is released."""
        return f"{self.namespace}:wake:"

    def wake(self, rank: str) -> str:
        return self.wake_prefix + rank

    def resource(self, name: str, slot: int) -> str:
        """One of a shared resource's ``capacity`` lease slots."""
        return f"{self.namespace}:resource:{name}:{slot}"

    def resource_fence(self, name: str) -> str:
        """Counter incremented on every grant of a slot of resource ``name``."""
        return f"{self.namespace}:fence:resource:{name}"

    def pace(self, bucket: str) -> str:
        """String: one pace bucket's theoretical arrival time (GCRA, server clock), named
        by its pace key and value (``repo:api``, ``tag:python``, ``host:github.com``):
        shared by every sweep and worker of the namespace (``pace_take`` in
        lua/_common.lua); expires once full again."""
        return f"{self.namespace}:pace:{bucket}"

    # -- notifications ----------------------------------------------------------
    @property
    def notify_targets(self) -> str:
        """String, JSON: the catalog's ``notify:`` webhooks as last published by a CLI
        (workers deliver without a catalog of their own)."""
        return f"{self.namespace}:notify:targets"

    @property
    def notify_cursors(self) -> str:
        """Hash: event stream -> the last id the outbox was filled from (the global
        stream's and each followed sweep's), plus ``follow:<sweep>`` entries."""
        return f"{self.namespace}:notify:cursors"

    @property
    def notify_deliveries(self) -> str:
        """Hash: delivery id -> JSON of one delivery (target, event, attempts, status,
        last error); written with HSETNX, so an event is put in the outbox once."""
        return f"{self.namespace}:notify:deliveries"

    @property
    def notify_due(self) -> str:
        """Sorted set: ids of deliveries not yet done, scored by when they are due."""
        return f"{self.namespace}:notify:due"

    @property
    def notify_log(self) -> str:
        """Sorted set: every delivery id by creation time (``coord notify log``; trimmed)."""
        return f"{self.namespace}:notify:log"

    @property
    def notify_lanes(self) -> str:
        """Sorted set: each webhook's lane (a hash of its URL) with deliveries not yet
        done, scored by when its first one is due (one lane, one POST at a time, in
        event order; lanes go concurrently)."""
        return f"{self.namespace}:notify:lanes"

    def notify_lane(self, lane: str) -> str:
        """Sorted set: one lane's delivery ids not yet done, scored by event order."""
        return f"{self.namespace}:notify:lane:{lane}"

    @property
    def notify_lease(self) -> str:
        """The outbox's lease: the one worker that fills and delivers it now."""
        return f"{self.namespace}:notify:lease"

    # -- sweeps and checkpoints -----------------------------------------------
    @property
    def sweeps(self) -> str:
        """Sorted set of sweep ids scored by creation time (a resume re-scores: see
        ``CheckpointStore.persist_sweep``)."""
        return f"{self.namespace}:sweeps"

    @property
    def active_sweeps(self) -> str:
        """Set of sweep ids that are queued or running (what supervisors look at)."""
        return f"{self.namespace}:sweeps:active"

    def sweep(self, sweep_id: str) -> str:
        """Hash: the sweep record (plan, strategy, status, run, spec...), its counters
        and its todos' checkpoints (see :mod:`coordination.runtime.checkpoints`)."""
        return f"{self.namespace}:sweep:{{{sweep_id}}}"

    def legacy_checkpoint_prefix(self, sweep_id: str) -> str:
        """coord 0.1 kept a hash per checkpoint, ``<prefix><todo>`` (read once, by
        ``runtime/migrations/v01_checkpoint_hashes.py``)."""
        return f"{self.namespace}:sweep:{{{sweep_id}}}:todo:"

    def legacy_remaining(self, sweep_id: str) -> str:
        """coord 0.1's hash of eager counts, todo -> predecessors not yet succeeded."""
        return f"{self.namespace}:sweep:{{{sweep_id}}}:remaining"

    def sweep_events(self, sweep_id: str) -> str:
        """Stream of one sweep's events (replay)."""
        return f"{self.namespace}:sweep:{{{sweep_id}}}:events"

    def sweep_log_keys(self, sweep_id: str) -> str:
        """Set: every key of the sweep's todos' logs (each todo's attempts and each
        attempt's output), so the sweep's retention reaches them (``runtime/logs.py``)."""
        return f"{self.namespace}:sweep:{{{sweep_id}}}:logs"

    def todo_attempts(self, sweep_id: str, todo_id: str) -> str:
        """Hash: attempt number -> JSON of one attempt of a todo in the sweep (run,
        worker, start, end, exit code, bytes, truncated): `coord logs`' history."""
        return f"{self.namespace}:sweep:{{{sweep_id}}}:attempts:{todo_id}"

    def attempt_log(self, sweep_id: str, todo_id: str, attempt: int) -> str:
        """Stream: one attempt's output as it was written (``s`` stdout|stderr|coord,
        ``d`` text), masked and capped by the worker, ending with an ``end`` entry."""
        return f"{self.namespace}:sweep:{{{sweep_id}}}:log:{todo_id}:{attempt}"

    def supervisor_lock(self, sweep_id: str) -> str:
        """Short lock so one supervisor pass at a time works on a sweep."""
        return f"{self.namespace}:sweep:{{{sweep_id}}}:supervisor"

    # -- workers and the broker -----------------------------------------------
    @property
    def workers(self) -> str:
        """Sorted set of worker names scored by their last heartbeat (unix time)."""
        return f"{self.namespace}:workers"

    def worker(self, name: str) -> str:
        """JSON of one live worker (who, which repos, what it holds); expires with it."""
        return f"{self.namespace}:worker:{name}"

    @property
    def dead_letters(self) -> str:
        """List of malformed broker messages set aside by workers (newest first)."""
        return f"{self.namespace}:deadletters"

    @property
    def celery_prefix(self) -> str:
        """Prefix of every key Celery/kombu writes (broker queues, unacked, results)."""
        return f"{self.namespace}:celery:"

    def broker_queue(self, queue: str, priority: int = 0) -> str:
        """Redis list behind a kombu queue (priority 0 is the plain name)."""
        name = queue if not priority else f"{queue}\x06\x16{priority}"
        return self.celery_prefix + name

    def broker_binding(self, exchange: str) -> str:
        """Set of kombu's bindings of a direct exchange (``_kombu.binding.<exchange>``):
        coord's queues are bound to the exchange of their own name."""
        return f"{self.celery_prefix}_kombu.binding.{exchange}"

    def broker_binding_permanent(self, exchange: str) -> str:
        """kombu's copy of :meth:`broker_binding` that its binding sweep keeps."""
        return f"{self.celery_prefix}_kombu.binding_permanent.{exchange}"

    # -- metrics ----------------------------------------------------------------
    @property
    def metrics(self) -> str:
        """Hash of durable counters (``sent:<repo>``, ``ended:<repo>:<status>``,
        ``lost:<repo>``, run-time buckets): what ``coord metrics`` exposes as
        Prometheus counters, so they survive restarts and every scraper reads the
        same numbers (``runtime/metrics.py``)."""
        return f"{self.namespace}:metrics"

    # -- history ----------------------------------------------------------------
    @property
    def history_index(self) -> str:
        """Sorted set of ``<sweep>:<run>`` of every recorded sweep run, scored by its end
        (COORD_HISTORY_DAYS trims it and the hashes below)."""
        return f"{self.namespace}:history:index"

    @property
    def history_runs(self) -> str:
        """Hash ``<sweep>:<run>`` -> JSON of one ended run: its sweep row and todo rows
        (without output tails)."""
        return f"{self.namespace}:history:runs"

    @property
    def history_tails(self) -> str:
        """Hash ``<sweep>:<run>`` -> JSON {todo: output tail} of one ended run (kept apart:
        trends never read them)."""
        return f"{self.namespace}:history:tails"

    # -- result cache (runtime/cache.py) ------------------------------------------
    def cache_entry(self, key: str) -> str:
        """String, JSON: the successful run stored under a cache key (exit code, output
        tail, duration, worker, key parts); expires after COORD_CACHE_DAYS."""
        return f"{self.namespace}:cache:entry:{key}"

    def cache_recent(self, todo_id: str) -> str:
        """List of the cache keys a todo's successful runs were stored under, newest
        first (capped): where `coord why` finds the nearest earlier entry."""
        return f"{self.namespace}:cache:todo:{todo_id}"

    def cache_lookup(self, todo_id: str, sweep_id: str | None = None) -> str:
        """String, JSON: what a todo's last cache lookup found (hit, or a miss and why),
        in one sweep (``sweep_id``) or in any (None): what `coord why` prints."""
        if sweep_id is None:
            return f"{self.namespace}:cache:why:{todo_id}"
        return f"{self.namespace}:cache:why:{{{sweep_id}}}:{todo_id}"

    @property
    def cache_salt(self) -> str:
        """String: the namespace's random salt for hashing env values into keys (set
        once, SET NX), so a stored hash cannot be checked against guessed values
        without access to the namespace."""
        return f"{self.namespace}:cache:salt"

    # -- carried over ---------------------------------------------------------------
    @property
    def migrated_02(self) -> str:
        """String, JSON: a catalog's coord 0.2 file (embedded sweeps and history, beside
        the catalog) was carried over into this server: from where, when, how much. Set
        once (SET NX), after everything was written
        (``runtime/migrations/v02_embedded_file.py``)."""
        return f"{self.namespace}:migrated:0.2"

    @property
    def layout_version(self) -> str:
        """Integer: the layout the namespace's records were brought to by the upgrade
        steps a runtime runs when opened (``runtime/migrations``); absent: none ran."""
        return f"{self.namespace}:migrated:layout"

    # -- who may use the namespace ------------------------------------------------
    @property
    def catalog_claim(self) -> str:
        """String, JSON: the catalog this namespace belongs to (its path and host), set
        once (SET NX) by the first worker or CLI that used it; the workers and CLIs of
        another catalog refuse it unless told to share it (``connection/claim.py``)."""
        return f"{self.namespace}:catalog"

    def acl_probe(self, token: str, kind: str) -> str:
        """Scratch keys (and a channel) on which a starting worker runs each command it
        needs once, to name a missing ACL permission up front (``connection/preflight.py``);
        deleted at once, and they expire anyway."""
        return f"{self.namespace}:acl-probe:{token}:{kind}"

    def acl_person(self, name: str) -> str:
        """String, JSON: what a person's ACL user (``coord-person-<name>``) was given when
        ``coord acl --person`` last wrote it (repos, role, the plans and todos whose
        sweeps it may write, who and when): what its CLI reads to refuse, saying why, a
        sweep outside its repos before Redis does (``runtime/acl/__init__.py``). Written by the
        admin who applies the user; the person reads its own, never writes it."""
        return f"{self.namespace}:acl:person:{name}"

    def sweep_scope(self, name: str) -> str:
        """The glob of every key of every sweep of plan (or todo) ``name``: a sweep's
        keys all start ``<ns>:sweep:{<id>`` and its id is ``<stem>-<14-digit UTC
        stamp>-<hex>`` (:func:`sweep_stem`, ``sweeps/planning.new_sweep_id``), so a
        person's ACL user is given write on its repos' plans' sweeps by name."""
        stem = glob_escape(sweep_stem(name))
        return f"{glob_escape(self.namespace)}:sweep:{{{stem}-{'[0-9]' * 14}-*"

    def pidbox_channel(self, db: int) -> str:
        """Celery's remote-control channel (a kombu fanout a worker subscribes to by
        pattern): a Redis ACL must name it as it is, since ``&<ns>:*`` does not cover a
        PSUBSCRIBE of another pattern."""
        return f"{self.celery_prefix}/{db}.celery.pidbox"

    # -- operations: schedules, the fleet's freeze --------------------------------
    @property
    def beat_prefix(self) -> str:
        """celery-redbeat's key prefix (``redbeat_key_prefix``): its schedule sorted set
        (``<prefix>:schedule``), its lock (``<prefix>:lock``) and an entry hash per
        scheduled plan (``<prefix>plan:<PLAN>``) live under it (``coord beat``)."""
        return f"{self.namespace}:beat:"

    @property
    def beat_schedule(self) -> str:
        """celery-redbeat's sorted set of schedule entries (its ``schedule_key``: the beat
        prefix and ``:schedule``), each a key under :attr:`beat_prefix` scored by when it
        is next due: `coord schedule list` reads it to report an entry the catalog does
        not name (``runtime/schedules.py``)."""
        return f"{self.beat_prefix}:schedule"

    @property
    def schedules(self) -> str:
        """Hash: per scheduled plan, its last firing claimed (``fired:<PLAN>``: the firing
        time, who claimed it, the sweep it started) and its last skipped firing
        (``skipped:<PLAN>``): ``runtime/schedules.py``."""
        return f"{self.namespace}:schedules"

    @property
    def overdue_unswept(self) -> str:
        """Hash: the todos past their ``due:`` that no sweep was running, said overdue
        once (``d:<TODO>@<due>``: when; a new due time is said again) by `coord beat`
        (``runtime/overdue.py``)."""
        return f"{self.namespace}:overdue"

    @property
    def freeze(self) -> str:
        """String: the fleet's freeze (who, when, why) while `coord freeze` holds; absent
        when not frozen (``runtime/freeze.py``)."""
        return f"{self.namespace}:freeze"

    # -- changes ----------------------------------------------------------------
    def change(self, plan: str) -> str:
        """Hash: one change (a plan with ``change:``): each repo's base and candidate,
        its verify records, its landing manifest and steps (``runtime/changes.py``)."""
        return f"{self.namespace}:change:{{{plan}}}"

    def change_lander(self, plan: str) -> str:
        """String with a TTL: the process landing or reverting the change is alive
        (renewed while it runs; gone: it died, wherever it ran: ``runtime/changes.py``)."""
        return f"{self.namespace}:change-lander:{{{plan}}}"

    def webhook_delivery(self, kind: str, delivery: str) -> str:
        """String with a TTL (a day): a forge's webhook delivery id seen (its SHA-256:
        the id is the sender's text), so a replay starts or changes nothing
        (``runtime/deliveries.py``)."""
        digest = hashlib.sha256(delivery.encode("utf-8", "replace")).hexdigest()
        return f"{self.namespace}:webhook-delivery:{kind}:{digest}"

    def change_forge(self, plan: str) -> str:
        """Hash: repo -> what its pull request's forge said last (state, reviews, checks,
        mergeability) and when: read by ``change status`` within a minimum interval, kept
        fresh by forge webhooks (``runtime/changes.py``; a cache: losing it costs a read)."""
        return f"{self.namespace}:change-forge:{{{plan}}}"

    @property
    def change_train(self) -> str:
        """Sorted set: the merge train, plan ids scored by when they were queued (the
        order they land in: ``coord change queue``)."""
        return f"{self.namespace}:change-train"

    # -- events ---------------------------------------------------------------
    @property
    def events(self) -> str:
        """Capped stream of the namespace's events: those of no sweep, and a sweep's
        own (not its todos': those are in its stream only; see runtime/events.py)."""
        return f"{self.namespace}:events"

    @property
    def events_channel(self) -> str:
        """Pub/sub channel on which every event is also published (live): a message per
        script call, the JSON array of its events (see runtime/events.py)."""
        return f"{self.namespace}:events:live"

    # -- shared context (coord context) -----------------------------------------------
    def context_lru(self, scope: str) -> str:
        """Sorted set: a context scope's keys (scope ``sweep:<id>`` or ``plan:<id>``),
        scored by their last use (``context_clock``), least recent first: what LRU
        eviction takes (``runtime/shared_context.py``, ``lua/context_set.lua``)."""
        return f"{self.namespace}:ctx:{{{scope}}}:lru"

    def context_value_prefix(self, scope: str) -> str:
        """Strings, JSON: the prefix of a scope's values (``context_value``), which the
        eviction script completes with the key it evicts."""
        return f"{self.namespace}:ctx:{{{scope}}}:v:"

    def context_value(self, scope: str, key: str) -> str:
        """String, JSON: one context value and its seal (expiring with its TTL)."""
        return f"{self.context_value_prefix(scope)}{key}"

    def context_clock(self, scope: str) -> str:
        """Integer: a scope's use counter, the LRU's score (ties impossible, unlike time)."""
        return f"{self.namespace}:ctx:{{{scope}}}:clock"

    @property
    def context_stats(self) -> str:
        """Hash: context hits, misses and evictions by scope kind (``hits:sweep``...),
        what `coord metrics` exposes as ``coord_context_*_total``."""
        return f"{self.namespace}:ctx-stats"
