"""The Redis client every stateful part of the runtime talks to.

Embedded and distributed modes use the same client and the same code path; only
the URL differs: ``COORD_REDIS_URL``, or the unix socket of the catalog's own
server (:mod:`coordination.connection.embedded_server`). The unit tier hands the
runtime an in-process stand-in instead (:func:`stand_in`, fakeredis with Lua
through lupa, a dev dependency), which runs the very same scripts.

A script (:class:`LuaScript`) runs by EVALSHA on any client, sent in full only when
the server does not know it; the runtime's scripts themselves, and how each is put
together, are :mod:`coordination.runtime.scripts`'.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import redis
from redis.exceptions import NoPermissionError, NoScriptError, ResponseError

from coordination.connection.embedded_server import joined
from coordination.redis_url import is_sentinel

if TYPE_CHECKING:
    import fakeredis  # lazy: fakeredis, the in-process stand-in only
    from redis.typing import EncodableT

    from coordination.settings import Settings

T = TypeVar("T")
log = logging.getLogger("coord.redis")

SOCKET_TIMEOUT = 5.0  # seconds; safety never depends on it (see leases.Heartbeat.doomed)

_lock = threading.Lock()
_real_clients: dict[str, redis.Redis] = {}
_embedded_server: fakeredis.FakeServer | None = None
_embedded_client: redis.Redis | None = None


def get_redis(settings: Settings | None = None) -> redis.Redis:
    """A client for ``COORD_REDIS_URL``, one per URL per process: a connection pool per
    process is what redis-py expects (it resets the pool itself after a fork).
    Embedded mode has no URL until its server runs: :meth:`Runtime.create` starts or
    joins it and uses :func:`real_client`."""
    if settings is None:
        # lazy: every setting (pydantic), not read by `sweep status` (Runtime.reader)
        from coordination.settings import get_settings

        settings = get_settings()
    if settings.redis_url:
        return _real_client(settings.redis_url)
    # Embedded: the one catalog server this process joined (its in-process workers'
    # broker, setting a malformed message aside, reaches it here).
    servers = joined()
    if len(servers) != 1:
        raise RuntimeError("no COORD_REDIS_URL: embedded mode reaches its server "
                           "through Runtime.create(catalog=...)")
    return _real_client(servers[0])


def real_client(url: str) -> redis.Redis:
    """A client of ``url``, one per URL per process (see :func:`get_redis`)."""
    return _real_client(url)


def _real_client(url: str) -> redis.Redis:
    with _lock:
        client = _real_clients.get(url)
        if client is None:
            # Timeouts: a call over a cut network (packets dropped, nobody told)
            # must fail, not hang a heartbeat or supervisor thread forever.
            # (TCP keepalive: a unix socket has none to set)
            keepalive = {} if url.startswith("unix:") else {"socket_keepalive": True}
            if is_sentinel(url):
                # lazy: redis-py's Sentinel client, for a sentinel:// URL only
                from coordination.connection.sentinel import sentinel_master

                client = sentinel_master(
                    url, decode_responses=True, health_check_interval=30,
                    socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT,
                    socket_keepalive=True)
            else:
                client = redis.Redis.from_url(
                    url, decode_responses=True, health_check_interval=30,
                    socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT,
                    **keepalive)
            _real_clients[url] = client
        return client


def embedded_server() -> fakeredis.FakeServer:
    """The one in-memory server of this process (created on first use)."""
    global _embedded_server
    import fakeredis  # lazy: fakeredis, the in-process stand-in only

    with _lock:
        if _embedded_server is None:
            _embedded_server = fakeredis.FakeServer()
            compile_scripts_once(_embedded_server)
        return _embedded_server


class _LuaRuntime(Protocol):
    """What :class:`CompiledScripts` calls of lupa's ``LuaRuntime`` itself."""

    def execute(self, code: str | bytes, /) -> object: ...

    def compile(self, code: str | bytes, /) -> Callable[..., object]: ...


class CompiledScripts:
    """fakeredis's Lua runtime (lupa), compiling each script once instead of on every call.

    fakeredis runs a script as ``runtime.execute(source)``: it parses and compiles the
    source anew at every EVAL/EVALSHA (0.2-0.4 ms for a transition script here, a
    quarter of its cost), then runs a full ``collectgarbage()``. This stands in for the
    runtime: a script's compiled chunk is kept (by source; a chunk re-runs its top level
    at every call, as a fresh execute would) and the full collection runs every
    ``GC_EVERY`` calls (Lua's own incremental collector runs meanwhile); everything else
    goes to the runtime. Embedded mode only: a real Redis caches scripts itself.
    """

    GC_EVERY = 100
    KEEP = 256  # scripts kept compiled (coord has a dozen; a test may EVAL many)

    def __init__(self, runtime: _LuaRuntime) -> None:
        self._runtime = runtime
        self._chunks: dict[str | bytes, Callable[..., object]] = {}
        self._gc_calls = 0

    def execute(self, code: str | bytes, *args: object) -> object:
        if code == "collectgarbage()":
            self._gc_calls += 1
            return None if self._gc_calls % self.GC_EVERY else self._runtime.execute(code)
        chunk = self._chunks.get(code)
        if chunk is None:
            if len(self._chunks) >= self.KEEP:
                self._chunks.clear()
            chunk = self._chunks[code] = self._runtime.compile(code)
        return chunk(*args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._runtime, name)


def compile_scripts_once(server: fakeredis.FakeServer) -> bool:
    """Give ``server`` a :class:`CompiledScripts` runtime; False (and nothing changed)
    when this fakeredis keeps its Lua runtime elsewhere: scripts then run as before,
    only slower."""
    import fakeredis  # lazy: fakeredis, the in-process stand-in only

    try:
        fakeredis.FakeRedis(server=server).eval("return 1", 0)  # creates the runtime
    except Exception:  # noqa: BLE001 - no Lua (lupa missing): nothing to speed up
        return False
    runtime = getattr(server, "_lua_runtime", None)
    if runtime is None or not hasattr(runtime, "compile"):
        return False
    if not isinstance(runtime, CompiledScripts):
        server._lua_runtime = CompiledScripts(runtime)  # type: ignore[attr-defined]
    return True


def stand_in() -> redis.Redis:
    """A client of this process's in-process stand-in (fakeredis): what the unit tier
    hands :meth:`Runtime.create` instead of a server."""
    return _embedded()


def _embedded() -> redis.Redis:
    global _embedded_client
    import fakeredis  # lazy: fakeredis, the in-process stand-in only

    server = embedded_server()
    with _lock:
        if _embedded_client is None:
            _embedded_client = fakeredis.FakeRedis(server=server, decode_responses=True)
        return _embedded_client


def is_embedded(r: redis.Redis) -> bool:
    """True for a fakeredis client (some callers poll instead of blocking there)."""
    return type(r).__module__.startswith("fakeredis")


def reset_embedded() -> None:
    """Drop the embedded server and its client, so the next test starts empty."""
    global _embedded_server, _embedded_client
    with _lock:
        _embedded_server = None
        _embedded_client = None


@dataclass(frozen=True)
class LuaScript:
    """One script, run by EVALSHA on any client; sent in full only when the
    server does not know it yet (first use, restart, SCRIPT FLUSH).

    Unlike ``r.register_script`` it holds no client, so caching it process-wide
    keeps no client (or embedded server full of data) alive.
    """

    name: str
    text: str
    sha: str

    def __call__(self, r: redis.Redis, keys: Sequence[str] = (),
                 args: Sequence[EncodableT] = ()) -> Any:
        """The script's reply: its shape is the script's (see its header), so its caller
        reads it. Sent on this thread's own connection of ``r``'s pool (:func:`own_client`)."""
        own = own_client(r)
        try:
            try:
                return own.evalsha(self.sha, len(keys), *keys, *args)
            except NoScriptError:
                # EVAL also caches the script server-side for the next EVALSHA.
                return own.eval(self.text, len(keys), *keys, *args)
        except ResponseError as exc:
            if isinstance(exc, NoPermissionError) or ACL_REFUSED not in str(exc):
                raise
            raise self.refused(r, keys) or exc from None

    def after(self, r: redis.Redis, before: Callable[[Any], None], keys: Sequence[str] = (),
              args: Sequence[EncodableT] = ()) -> Any:
        """The script's reply, as :meth:`__call__`'s, run after the commands ``before``
        puts on a pipeline of ``r`` (no transaction), all in one round trip: writes that
        must reach Redis no later than the script but need not be atomic with it (an
        attempt's log end before its todo's finish). Their errors are not the script's:
        they are left to their writer's care (a log write never fails a todo), and the
        script is still run. A server that does not know the script yet: it is sent
        alone, by :meth:`__call__`, after them."""
        pipe = own_client(r).pipeline(transaction=False)
        before(pipe)
        pipe.evalsha(self.sha, len(keys), *keys, *args)
        replies = pipe.execute(raise_on_error=False)
        reply = replies[-1]
        for failed in replies[:-1]:
            if isinstance(failed, Exception):
                log.warning("a write sent with script %s failed: %s", self.name, failed)
                break
        if isinstance(reply, NoScriptError):
            return self(r, keys, args)
        if isinstance(reply, ResponseError):
            if isinstance(reply, NoPermissionError) or ACL_REFUSED not in str(reply):
                raise reply
            raise self.refused(r, keys) or reply from None
        return reply

    def queue(self, pipe: Any, keys: Sequence[str], args: Sequence[EncodableT]) -> None:
        """Queue the script on ``pipe``, a MULTI transaction another caller runs (a
        WATCHed compare-and-set), to run with its other commands at once. By EVAL, as
        :meth:`in_transaction`."""
        pipe.eval(self.text, len(keys), *keys, *args)

    def in_transaction(self, r: redis.Redis, queue: Callable[[Any], None],
                       keys: Sequence[str], args: Sequence[EncodableT]) -> list[Any]:
        """Run the commands ``queue`` puts in a MULTI pipeline of ``r``, then the script,
        at once; the replies. By EVAL: a script the server does not know yet would fail
        inside the transaction (after the commands before it). A refusal of one of its
        commands by the user's ACL is named as :meth:`__call__` names it."""
        pipe = r.pipeline(transaction=True)
        queue(pipe)
        self.queue(pipe, keys, args)
        try:
            return list(pipe.execute())
        except ResponseError as exc:
            if isinstance(exc, NoPermissionError) or ACL_REFUSED not in str(exc):
                raise
            raise self.refused(r, keys) or exc from None

    def replicated(self, r: redis.Redis, keys: Sequence[str], args: Sequence[EncodableT],
                   replicas: int, timeout_ms: int
                   ) -> tuple[Any, int, dict[str, Any], tuple[str, int] | None]:
        """The script's reply; how many replicas had its writes (and everything the master
        had before them) within ``timeout_ms`` (``WAIT replicas``); the master's
        ``INFO replication`` right after; and the server's address. One round trip, one
        connection: ``WAIT`` counts the writes of its own connection."""
        where: list[tuple[str, int] | None] = [None]

        def run(first: str) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            # The pipeline's connection, taken here to learn where it went (released
            # by the pipeline as its own).
            conn = pipe.connection = r.connection_pool.get_connection()
            if first == "evalsha":
                pipe.evalsha(self.sha, len(keys), *keys, *args)
            else:
                pipe.eval(self.text, len(keys), *keys, *args)
            pipe.wait(replicas, timeout_ms)
            pipe.info("replication")
            out = list(pipe.execute(raise_on_error=False))
            host, port = getattr(conn, "host", None), getattr(conn, "port", None)
            where[0] = (str(host), int(port)) if host is not None and port is not None else None
            return out

        try:
            res, acked, info = run("evalsha")
            if isinstance(res, NoScriptError):
                res, acked, info = run("eval")
            for part in (res, acked, info):
                if isinstance(part, Exception):
                    raise part
        except ResponseError as exc:
            if isinstance(exc, NoPermissionError) or ACL_REFUSED not in str(exc):
                raise
            raise self.refused(r, keys) or exc from None
        return res, int(acked), dict(info), where[0]

    def refused(self, r: redis.Redis, keys: Sequence[str]) -> NoPermissionError | None:
        """The NOPERM of the command this script runs that the user may not run: Redis
        says only that the script ran one (:data:`ACL_REFUSED`). Each of the script's
        commands is tried once on scratch keys of the namespace of ``keys``."""
        from coordination.connection.preflight import denied_commands  # lazy: on an error only

        namespace = str(keys[0]).split(":", 1)[0] if keys else "coord"
        try:
            denied = denied_commands(r, namespace, self.commands)
        except Exception:  # noqa: BLE001 - then the script's own error stands
            return None
        if not denied:
            return None
        return NoPermissionError(f"this user has no permissions to run the '{denied[0]}' "
                                 f"command (in coord's {self.name} script)")

    @property
    def commands(self) -> list[str]:
        """The Redis commands the script calls, lower case."""
        return sorted({c.lower() for c in _CALLED.findall(self.text)})


class _Own(threading.local):
    """A thread's own clients (see :func:`own_client`), by the client they stand for."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.clients: weakref.WeakKeyDictionary[redis.Redis, redis.Redis] = (
            weakref.WeakKeyDictionary())


_own = _Own()
#: Connections kept by threads of this process at most (a worker of 200 repos has 200
#: pool threads, a fleet of them would hold a Redis connection each); past it a thread
#: uses the pool as before.
OWN_MAX = 16
_kept = [0, os.getpid()]  # how many are kept now, and in which process (a fork: none)
_kept_lock = threading.Lock()


def _keep() -> bool:
    """Whether this thread may keep a connection of its own (counted until it is dropped)."""
    with _kept_lock:
        if _kept[1] != os.getpid():
            _kept[:] = [0, os.getpid()]
        if _kept[0] >= OWN_MAX:
            return False
        _kept[0] += 1
        return True


def _dropped(pid: int) -> None:
    with _kept_lock:
        if _kept[1] == pid and _kept[0] > 0:
            _kept[0] -= 1


def own_client(r: redis.Redis) -> redis.Redis:
    """This thread's client of ``r``'s connection pool that keeps one connection for
    itself (redis-py's ``single_connection_client``), made on first use: a command on it
    skips the pool's checkout and return, which for a worker's start and finish scripts
    were a third of their cost on its side (a lock, four counters, an event; the poll
    of the socket for a closed or dirty connection stays). Replies, retries, timeouts
    and reconnects are redis-py's, as on ``r``; the connection goes back to the pool
    when the thread ends or ``r`` is dropped. ``r`` itself where that does not apply: a
    client of one connection already, a Sentinel's or another kind of pool (which choose a
    connection per command), the in-process stand-in, a pipeline; and for threads past
    the first :data:`OWN_MAX` of the process that keep one. A forked process makes its
    own."""
    if (type(r) is not redis.Redis or r.connection is not None
            or type(r.connection_pool) is not redis.ConnectionPool):
        return r
    if _own.pid != os.getpid():  # forked: the parent's connections are the parent's
        _own.pid, _own.clients = os.getpid(), weakref.WeakKeyDictionary()
    client = _own.clients.get(r)
    if client is None:
        if not _keep():
            return r
        try:
            client = redis.Redis(connection_pool=r.connection_pool,
                                 single_connection_client=True)
        except BaseException:
            _dropped(os.getpid())
            raise
        weakref.finalize(client, _dropped, os.getpid())
        _own.clients[r] = client
    conn = client.connection
    if conn is not None and conn.is_connected:
        # The pool's own check before it hands out a connection (one poll of the
        # socket): one closed by the server (a restart, a CLIENT KILL, its timeout) or
        # left with a reply unread is made afresh before anything is sent on it.
        try:
            stale = conn.can_read()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            stale = True
        if stale:
            conn.disconnect()  # type: ignore[no-untyped-call]
    return client


#: What Redis answers when a script calls a command its user may not run.
ACL_REFUSED = "can't run this command"
_CALLED = re.compile(r"redis\.p?call\(\s*['\"]([A-Za-z]+)['\"]")


class NotReplicated(redis.ConnectionError):
    """No replica confirmed a write within its wait: it may not survive a failover.
    A ``ConnectionError``, so what rides out a reconnect (:func:`riding_out`, a lease's
    heartbeat) tries again: the retry, answered by whichever master is current, writes
    and waits again."""


#: Redis that cannot be reached or written now (refused, reset, timed out, no replica
#: confirmed a write, LOADING, READONLY from a master a failover demoted): a delivery
#: that meets one gives up and its todo is sent again (its lease expires, or it was
#: never started). Any other error (OOM, NOPERM, a script's error) is an answer, not an
#: outage: the todo ends failed naming it (:func:`coordination.sweeps.turns.coord_error`).
UNREACHABLE: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError,
                                            redis.exceptions.ReadOnlyError)

#: How long a transition waits for a replica to confirm it (milliseconds, at most).
REPLICA_WAIT_MS = 1000


def replica_wait_ms(lease_ttl: float) -> int:
    """How long a transition or a renewal waits for the replicas: a second, or a quarter
    of the lease TTL when that is shorter (a renewal must leave time to try again)."""
    return max(10, min(REPLICA_WAIT_MS, int(lease_ttl * 250)))

#: Seconds a master must show fewer replicas online than before for the count a write
#: must reach to come down (a replica that died, or a master a failover replaced).
REPLICA_GONE_AFTER = 5.0


@dataclass
class _Replicas:
    replid: str = ""  # the master's replication id (a promoted replica takes a new one)
    wanted: int = 0  # every replica seen online lately
    fewer_since: float | None = None  # since when the master has shown fewer
    alone: bool = False  # said so: this master has no replica to wait for


_replicas_seen: dict[int, _Replicas] = {}


#: Seconds the sentinels' answer "the master is at host:port" is trusted (per client).
MASTER_FRESH = 0.25
_master_named: dict[int, tuple[float, tuple[str, int]]] = {}


def _named_master(r: redis.Redis, where: tuple[str, int] | None) -> bool:
    """Is ``where`` the master the sentinels name now (asked at most every
    :data:`MASTER_FRESH` s)? True for a client not managed by Sentinel."""
    pool = r.connection_pool
    manager, service = getattr(pool, "sentinel_manager", None), getattr(pool, "service_name", None)
    if manager is None or service is None or where is None:
        return True
    now = time.monotonic()
    seen = _master_named.get(id(r))
    if seen is None or now - seen[0] >= MASTER_FRESH or seen[1] != where:
        host, port = manager.discover_master(service)
        seen = (now, (str(host), int(port)))
        _master_named[id(r)] = seen
    return seen[1] == where


def _online(info: dict[str, Any]) -> int:
    """Replicas in sync with the master (``state=online``) in its INFO replication."""
    return sum(1 for k, v in info.items()
               if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online")


def run_replicated(script: LuaScript, r: redis.Redis, keys: Sequence[str],
                   args: Sequence[EncodableT], timeout_ms: int) -> tuple[Any, bool]:
    """``script``'s reply, and whether every replica this master has shown online
    lately had its writes within ``timeout_ms``.

    Every one, not one: Sentinel promotes the replica whose offset it last saw
    highest, from an INFO up to a second old, not the one that answered a WAIT. And
    lately, not just now: when Sentinel promotes a replica of a master that is still
    up (it looked down), that replica leaves it at once, and until the old master is
    demoted a WAIT there is answered by the replicas left; they follow the new master
    next and drop what it never had. So on one master (one replication id) the count
    only comes down once it has shown fewer replicas for :data:`REPLICA_GONE_AFTER` s
    (meanwhile writes are unconfirmed, and retried); a new master (a new replication
    id: a promoted replica's) waits for the replicas it has, or for as many as the old
    one had less the promoted one until they follow it (again for at most
    :data:`REPLICA_GONE_AFTER` s). The count read right
    after the WAIT also catches a replica that came online since the last call; one
    that comes online after it synced from a master that already had the write.

    Only replicas that are there count: a master with none online (never had one, or
    its last one gone for :data:`REPLICA_GONE_AFTER` s, or a failover that left none)
    takes writes unconfirmed, with a warning in the log (once per such spell), in
    ``coord_redis_replicas`` and in ``coord doctor``: waiting for a replica that is not
    there would stop every todo, where a failover has nowhere to go anyway. A
    client's first write asks the master's INFO first (once) for the count to wait
    for."""
    seen = _replicas_seen.get(id(r))
    if seen is None:
        # First write of this client: how many replicas are there to wait for (one
        # round trip, once; a master that changes meanwhile shows a new replid below).
        first = dict(r.info("replication"))
        seen = _replicas_seen.setdefault(id(r), _Replicas(
            str(first.get("master_replid", "")), _online(first)))
    res, acked, info, where = script.replicated(r, keys, args, seen.wanted, timeout_ms)
    if not _named_master(r, where):
        # A master the sentinels no longer name (a failover demoted it in their view,
        # not yet in its own): whatever it confirms is dropped when it is converted.
        # Its idle connections go; the retry connects to the master they name.
        r.connection_pool.disconnect(inuse_connections=False)
        return res, False
    online, replid = _online(info), str(info.get("master_replid", ""))
    now = time.monotonic()
    if replid != seen.replid:
        # A new master (a failover promoted one of the replicas): the others should
        # follow it, so until they do (for REPLICA_GONE_AFTER s at most) it is waited
        # for as many as the old master had, less the promoted one.
        follow = seen.wanted - 1 if seen.replid else 0
        seen.replid, seen.wanted = replid, max(online, follow)
        seen.fewer_since = now if follow > online else None
    elif online >= seen.wanted:
        seen.wanted, seen.fewer_since = online, None
    elif seen.fewer_since is None:
        seen.fewer_since = now
    elif now - seen.fewer_since >= REPLICA_GONE_AFTER:
        seen.wanted, seen.fewer_since = online, None
    if seen.wanted == 0 and seen.fewer_since is None:
        if not seen.alone:
            seen.alone = True
            at = f" at {where[0]}:{where[1]}" if where else ""
            log.warning("the Redis master%s has no replica online: coord's writes go on "
                        "unconfirmed, and a failover now would lose them (start a replica "
                        "of it; see `coord doctor`)", at)
    elif seen.alone and seen.wanted > 0:
        seen.alone = False
        log.info("the Redis master has %d replica(s) online again: writes wait for them",
                 seen.wanted)
    return res, acked >= seen.wanted


def riding_out(call: Callable[[], T], until: float,
               on_wait: Callable[[], None] | None = None) -> T:
    """``call()``, tried again with a growing pause while Redis cannot be reached
    (refused, reset, timed out), until monotonic time ``until``; then the error stands.
    ``on_wait`` runs at each wait. What a worker's writes and a waiting command's reads
    go through to outlive a Redis restart."""
    delay = 0.05
    while True:
        try:
            return call()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if time.monotonic() + delay > until:
                raise
            if on_wait is not None:
                on_wait()
            log.warning("Redis unreachable (%s); retrying in %.2f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
