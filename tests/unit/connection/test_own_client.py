"""A thread's script calls go over a connection it keeps (#64): no pool checkout and
return per call (a worker's start and finish scripts paid a third of their client-side
cost there), the connection back in the pool when the thread ends; redis-py's own
behaviour otherwise (a Redis restart is ridden out as before). A real redis-server."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from coordination.connection import client as client_module
from coordination.connection.client import LuaScript, own_client
from tests.servers import RedisServer

pytestmark = pytest.mark.timeout(60)

SCRIPT = LuaScript("incr", "return redis.call('INCR', KEYS[1])", "")


@pytest.fixture
def named(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the session's redis-server (an empty database), its connections named."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True,
                                  client_name="own-client-test")
    client.flushall()
    yield client
    client.close()


def script(r: redis.Redis) -> LuaScript:
    sha = r.script_load(SCRIPT.text)
    return LuaScript(SCRIPT.name, SCRIPT.text, sha)


def test_a_threads_script_calls_take_no_connection_from_the_pool_after_the_first(
        named: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    r = named
    incr = script(r)
    pool = r.connection_pool
    taken: list[Any] = []
    real = pool.get_connection

    def counted(*a: Any, **kw: Any) -> Any:
        taken.append(threading.get_ident())
        return real(*a, **kw)

    monkeypatch.setattr(pool, "get_connection", counted)
    assert [incr(r, ["n"]) for _ in range(20)] == list(range(1, 21))
    assert taken == [threading.get_ident()]  # its own connection, taken once
    assert own_client(r) is own_client(r) and own_client(r) is not r
    other: list[redis.Redis] = []
    t = threading.Thread(target=lambda: (incr(r, ["n"]), other.append(own_client(r))))
    t.start()
    t.join()
    assert len(taken) == 2 and other[0] is not own_client(r)  # another thread, its own
    assert r.get("n") == "21"


def test_a_thread_gives_its_connection_back_when_it_ends(named: redis.Redis) -> None:
    r = named
    incr = script(r)
    for _ in range(15):  # short-lived threads (a todo's heartbeat, say), one after another
        t = threading.Thread(target=incr, args=(r, ["n"]))
        t.start()
        t.join()
    gc.collect()
    mine = [c for c in r.client_list() if c.get("name") == "own-client-test"]
    assert len(mine) <= 3, mine  # reused from the pool: not one per thread, kept for ever
    assert r.get("n") == "15"


def test_clients_that_choose_their_connection_per_command_are_used_as_they_are(
        named: redis.Redis) -> None:
    r = named
    fake = fakeredis.FakeRedis(decode_responses=True)
    single = redis.Redis(connection_pool=r.connection_pool, single_connection_client=True)
    blocking = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(
        f"redis://127.0.0.1:{r.connection_pool.connection_kwargs['port']}/0"))
    try:
        for client in (fake, single, blocking, r.pipeline()):
            assert own_client(client) is client  # type: ignore[arg-type]
    finally:
        single.close()
        blocking.close()


def test_a_forked_process_makes_its_own(named: redis.Redis) -> None:
    r = named
    incr = script(r)
    incr(r, ["n"])
    parents = own_client(r)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a connection of its own, and the parent's left alone
        ok = own_client(r) is not parents and incr(r, ["n"]) == 2
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    os.close(read)
    assert own_client(r) is parents and incr(r, ["n"]) == 3  # the parent's still works


def test_a_redis_restart_is_ridden_out_as_before(named: redis.Redis) -> None:
    r = named
    incr = script(r)
    incr(r, ["n"])
    r.client_kill_filter(_type="normal", skipme=True)  # every other connection: ours too
    assert incr(r, ["n"]) == 2  # redis-py reconnects its connection, as on the pool


def test_past_so_many_threads_keeping_one_the_pool_serves_them(
        named: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker of 200 repos has 200 pool threads: a fleet of them must not hold a Redis
    connection per thread (Redis refuses clients past maxclients)."""
    r = named
    incr = script(r)
    monkeypatch.setattr(client_module, "OWN_MAX", client_module._kept[0] + 2)
    started, done = threading.Barrier(6), threading.Event()
    own: list[bool] = []

    def hold() -> None:
        incr(r, ["n"])
        own.append(own_client(r) is not r)
        started.wait()
        done.wait(10)

    threads = [threading.Thread(target=hold) for _ in range(5)]
    for t in threads:
        t.start()
    started.wait()
    assert sorted(own) == [False, False, False, True, True]  # two kept one, three use the pool
    done.set()
    for t in threads:
        t.join()
    gc.collect()
    late: list[bool] = []
    t = threading.Thread(target=lambda: late.append(own_client(r) is not r))
    t.start()
    t.join()
    assert late == [True]  # the ended threads gave their places back
    assert r.get("n") == "5"
