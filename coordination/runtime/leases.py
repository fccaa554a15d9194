"""Repo leases: ``SET NX PX`` locks with an owner token and a fencing number.

A repo with ``concurrency: N`` has N slot keys; holding any one of them is the
right to run one of that repo's todos. A slot is granted with its todo's start
(``lua/todo_start.lua``), which increments the repo's fence counter in the same
step, so grants are totally ordered: a write carrying an older fence than one
already stored comes from a holder that was overtaken, and is refused (see
``checkpoints.write`` and ``lua/todo_finish.lua``).

The token, not the key, is what a holder owns: extend and release compare it
inside Lua, so a holder whose lease expired can neither renew nor delete the
lease of whoever holds the slot now.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from coordination.connection.client import NotReplicated, replica_wait_ms, run_replicated
from coordination.keys import Keys
from coordination.runtime.scripts import lua
from coordination.runtime.store import Store

if TYPE_CHECKING:
    from redis.typing import EncodableT

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lease:
    """One granted slot of a repo's lease (granted with a todo's start: see
    :meth:`coordination.runtime.transitions.Transitions.start`)."""

    repo: str
    slot: int
    token: str
    fence: int
    ttl_ms: int
    namespace: str = "coord"
    #: Slots of shared resources granted with the repo slot, under the same token:
    #: renewed, checked and released together with it.
    extra: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return Keys(self.namespace).lease(self.repo, self.slot)

    @property
    def keys(self) -> list[str]:
        """Every key of this lease: the repo slot first."""
        return [self.key, *self.extra]


def new_token() -> str:
    """An owner token that also says who owns it (host:pid:random)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"


class Replicated(Store):
    """What runs the scripts a lease holder counts on (a start, a finish, a renewal):
    leases of ``lease_ttl`` seconds, and with ``replicas`` to wait for, each script's
    write WAITs for them (:func:`~coordination.connection.client.run_replicated`)."""

    def __init__(self, r: redis.Redis, keys: Keys, lease_ttl: float, replicas: int) -> None:
        super().__init__(r, keys)
        self.ttl_ms = max(1, int(lease_ttl * 1000))
        #: Non-zero: every replica the master has online lately must have a start, a
        #: finish or a renewal before the caller acts on it (0: no WAIT; a sentinel://
        #: Redis: 1; a master with no replica online takes it unconfirmed, see
        #: run_replicated).
        self.replicas = replicas
        self.wait_ms = replica_wait_ms(lease_ttl)

    def _run(self, name: str, keys: Sequence[str], args: Sequence[EncodableT],
             before: Callable[[Any], None] | None = None) -> tuple[Any, bool]:
        """Script ``name``'s reply, and whether enough replicas have it (always True
        without replicas to wait for). ``before``: commands it puts on a pipeline go
        first, in the same round trip (:meth:`LuaScript.after`); with replicas to wait
        for, in a round trip of their own before it (a WAIT counts its connection's
        writes: the script's own call keeps one connection)."""
        if not self.replicas:
            if before is not None:
                return lua(name).after(self.r, before, keys, args), True
            return lua(name)(self.r, keys, args), True
        if before is not None:
            pipe = self.r.pipeline(transaction=False)
            before(pipe)
            pipe.execute(raise_on_error=False)
        return run_replicated(lua(name), self.r, keys, args, self.wait_ms)

    def _not_replicated(self, what: str) -> NotReplicated:
        """The error of a write no replica confirmed in time (``what``: its name)."""
        return NotReplicated(f"no replica confirmed {what} within {self.wait_ms} ms")


class LeaseManager(Replicated):
    """Renews and releases the lease slots of repos (a slot is granted only with
    its todo's start: :meth:`coordination.runtime.transitions.Transitions.start`)."""

    def __init__(self, r: redis.Redis, keys: Keys, ttl: float, replicas: int = 0) -> None:
        super().__init__(r, keys, ttl, replicas)
        self.ttl = ttl

    def extend(self, lease: Lease) -> bool:
        """Renew for another TTL; False if the lease is no longer this token's.

        With replicas to wait for, a renewal no replica confirmed raises
        :class:`NotReplicated` (a failover could lose it, and the new master expire the
        lease while this holder still counted on it): the heartbeat tries again sooner,
        and gives the run up once its last confirmed renewal is a TTL old."""
        res, acked = self._run("lease_extend", lease.keys, [lease.token, lease.ttl_ms])
        if res and not acked:
            raise self._not_replicated(f"the renewal of {lease.key}")
        return bool(res)

    def release(self, lease: Lease) -> bool:
        """Give the slot back; False (and nothing deleted) if not ours any more."""
        res = lua("lease_release")(self.r, lease.keys, [lease.token])
        return bool(res)

    def release_keys(self, keys: list[str], token: str) -> int:
        """Free the slot ``keys`` still held by ``token`` (the supervisor breaking a
        wait on a holder that is gone); how many it freed."""
        return int(lua("lease_release")(self.r, keys, [token]))

    def waited(self, repos: list[str], resources: list[str]) -> tuple[list[str], list[str]]:
        """Of ``repos`` and ``resources``, those whose line someone waits in (one ZCARD
        each, pipelined)."""
        pipe = self.r.pipeline(transaction=False)
        for name in repos:
            pipe.zcard(self.keys.waiters(f"repo:{name}"))
        for name in resources:
            pipe.zcard(self.keys.waiters(f"resource:{name}"))
        counts = pipe.execute()
        return ([n for n, c in zip(repos, counts) if c],
                [n for n, c in zip(resources, counts[len(repos):]) if c])

    def take_waits_turn(self, ms: int) -> bool:
        """One process at a time looks at the waits across sweeps, for ``ms``
        (:func:`coordination.sweeps.waits.supervise_waits`): True when this caller has it."""
        return bool(self.r.set(self.keys.supervisor_lock("~waits"), "1", nx=True,
                               px=max(1, ms)))

    def leave_lines(self, lines: list[str], member: str) -> None:
        """Take a waiter out of ``lines`` (``repo:api``, ``resource:db``) at once, when
        its todo ended while it waited (otherwise it ranks ahead until it is stale)."""
        pipe = self.r.pipeline(transaction=False)
        for line in lines:
            pipe.zrem(self.keys.waiters(line), member)
            pipe.zrem(self.keys.waiters_seen(line), member)
        pipe.execute()

    def holder(self, repo: str, slot: int) -> str | None:
        """The token holding one slot (tokens start with host:pid)."""
        value = self.r.get(self.keys.lease(repo, slot))
        return value if value is None else str(value)

    def holders(self, repo: str, concurrency: int) -> list[str | None]:
        slots = [self.keys.lease(repo, i) for i in range(max(1, concurrency))]
        return [v if v is None else str(v) for v in self.r.mget(slots)]

    def lines(self, repos: dict[str, int], resources: dict[str, int]
              ) -> tuple[dict[str, Line], dict[str, Line]]:
        """Every slot of ``repos`` (name -> concurrency) and ``resources`` (name ->
        capacity), their holders and waiting lines, in one pipelined round trip
        (``coord resources``: a snapshot, not a transaction)."""
        pipe = self.r.pipeline(transaction=False)
        wanted: list[tuple[str, str, list[str]]] = []
        for kind, items, key in (("repo", repos, self.keys.lease),
                                 ("resource", resources, self.keys.resource)):
            for name, n in items.items():
                slot_keys = [key(name, i) for i in range(max(1, int(n)))]
                for k in slot_keys:
                    pipe.get(k)
                    pipe.pttl(k)
                line = f"{kind}:{name}"
                pipe.zrange(self.keys.waiters(line), 0, -1)
                pipe.zrange(self.keys.waiters_seen(line), 0, -1, withscores=True)
                wanted.append((kind, name, slot_keys))
        replies = iter(pipe.execute())
        out: dict[str, dict[str, Line]] = {"repo": {}, "resource": {}}
        for kind, name, slot_keys in wanted:
            slots = []
            for i in range(len(slot_keys)):
                token, ttl = next(replies), next(replies)
                slots.append(SlotState(i, None if token is None else str(token),
                                       int(ttl) if token is not None and int(ttl) >= 0 else None))
            members, seen = next(replies), dict(next(replies))
            waiting = [w for m in members
                       if (w := parse_waiter(str(m), seen.get(m))) is not None]
            out[kind][name] = Line(slots, waiting)
        return out["repo"], out["resource"]


@dataclass(frozen=True)
class SlotState:
    """One lease slot as ``coord resources`` shows it: its holder's token (None: free)
    and how long until it expires unless renewed (ms)."""

    slot: int
    token: str | None
    ttl_ms: int | None


@dataclass(frozen=True)
class Waiter:
    """One todo in a line for a slot, in the order it will be served."""

    sweep_id: str
    todo_id: str
    since: float  # when it started waiting (s since the epoch)
    last_seen: float | None  # when it last asked (a waiter not seen for 5 s is dropped)


@dataclass(frozen=True)
class Line:
    """A repo's or shared resource's slots and who waits for them."""

    slots: list[SlotState]
    waiting: list[Waiter]


def parse_waiter(member: str, seen: float | None) -> Waiter | None:
    """A waiters-set member (:func:`coordination.runtime.transitions.waiter_rank`:
    rank, 14 digits of ms since the epoch, ``|sweep/todo``); None if not one."""
    head, bar, ids = member.rpartition("|")
    sweep_id, slash, todo_id = ids.rpartition("/")
    if not bar or not slash or len(head) < 14 or not head[-14:].isdigit():
        return None
    return Waiter(sweep_id, todo_id, int(head[-14:]) / 1000, seen)


class Heartbeat:
    """Keeps one lease alive from a daemon thread until stopped or lost.

    The lease is lost when an extend says the token no longer holds it, or
    when Redis keeps failing until the lease would have expired anyway; then
    ``on_lost`` runs once (the worker kills its todo's process group there).
    """

    def __init__(
        self,
        leases: LeaseManager,
        lease: Lease,
        interval: float,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.leases = leases
        self.lease = lease
        self.interval = interval
        self.on_lost = on_lost
        self.lost = False
        self.last_ok = time.monotonic()  # the lease was granted or renewed no earlier
        # A renewal sent at t expires no earlier than t + TTL, and it was sent at most
        # one round trip before it was seen: stop this much before the TTL runs out.
        self.margin = max(0.2, 0.15 * lease.ttl_ms / 1000.0)
        self._stop = threading.Event()
        # Made by start(): a worker starts it only for a command that runs long
        # (workers/runner.py); a thread's making was about half of what a short todo's
        # heartbeat cost (issue #82).
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        if self._thread is not None:
            raise RuntimeError("a heartbeat is started once")
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat:{self.lease.repo}:{self.lease.slot}",
            daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing (does not release the lease); returns once the thread ended."""
        self._stop.set()
        thread = self._thread
        if (thread is not None and thread.is_alive()
                and threading.current_thread() is not thread):
            thread.join()

    def doomed(self) -> bool:
        """True once the lease may expire before we could renew it: no renewal has
        succeeded for TTL - margin. Unlike ``lost``, it does not wait for a renewal
        call to fail: over a cut network that call can hang past the TTL, when
        someone else may already hold the lease."""
        return self.lost or time.monotonic() - self.last_ok > self.lease.ttl_ms / 1000.0 - self.margin

    def renew_now(self) -> None:
        """Renew the lease once, now, from the caller's thread (after a long step before
        the command starts: a fetch, a new worktree); a failure is left to the
        heartbeat's own renewals, which decide from here on."""
        sent = time.monotonic()
        try:
            if self.leases.extend(self.lease):
                self.last_ok = sent
        except redis.RedisError:
            pass

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        ttl = self.lease.ttl_ms / 1000.0
        # The first renewal is due an interval after the grant (or the last renewal),
        # however late the thread was started.
        wait = max(0.0, self.last_ok + self.interval - time.monotonic())
        while not self._stop.wait(wait):
            wait = self.interval
            last_ok = self.last_ok
            try:
                sent = time.monotonic()
                if self.leases.extend(self.lease):
                    self.last_ok = sent
                    continue
                log.warning("lease %s no longer held by this worker", self.lease.key)
            except redis.RedisError as exc:
                # The lease may still be alive on the server: retry sooner than
                # usual until it would have expired.
                if time.monotonic() - last_ok < ttl:
                    log.warning("heartbeat of %s failed, retrying: %s", self.lease.key, exc)
                    wait = min(self.interval, max(0.05, ttl / 10))
                    continue
                log.warning("heartbeat of %s failed past the TTL: %s", self.lease.key, exc)
            self._lose()
            return

    def _lose(self) -> None:
        self.lost = True
        self._stop.set()
        if self.on_lost is not None:
            try:
                self.on_lost()
            except Exception:  # a failing callback must not hide the loss
                log.exception("on_lost callback of %s failed", self.lease.key)
