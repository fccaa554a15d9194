"""Leases on the embedded (fakeredis) server: exclusivity, fences, tokens, heartbeat.

A lease is granted the way workers get one: with the start of a todo
(``Transitions.start``, ``lua/todo_start.lua``); renewed and released by
:class:`LeaseManager`.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis

from coordination.connection.client import get_redis, reset_embedded, stand_in
from coordination.keys import Keys
from coordination.runtime.leases import Heartbeat, Lease, LeaseManager
from coordination.runtime.transitions import Transitions
from tests.unit.support.runtime import new_sweep, start, started
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(60)

K = Keys("t")


@pytest.fixture
def leases(fake_r: redis.Redis) -> LeaseManager:
    return LeaseManager(fake_r, K, ttl=0.25)


@pytest.fixture(autouse=True)
def _a_sweep(fake_r: redis.Redis) -> None:
    """A running sweep S, whose todos may start."""
    new_sweep(fake_r, K)


def held(fake_r: redis.Redis, lease: Lease) -> bool:
    return all(v == lease.token for v in fake_r.mget(lease.keys))


def test_the_stand_in_is_shared_and_runs_lua() -> None:
    reset_embedded()
    a, b = stand_in(), stand_in()
    a.set("x", "1")
    assert b.get("x") == "1"
    assert a.eval("return redis.call('GET', KEYS[1])", 1, "x") == "1"
    reset_embedded()
    assert stand_in().get("x") is None


def test_get_redis_needs_a_url_or_one_joined_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Embedded mode reaches its server through Runtime.create; get_redis without a URL
    only finds the one server this process joined (its broker's dead letters)."""
    from coordination.connection import client

    monkeypatch.setattr(client, "joined", lambda: [])
    with pytest.raises(RuntimeError, match="COORD_REDIS_URL"):
        get_redis()
    monkeypatch.setattr(client, "joined", lambda: ["unix:///nowhere/redis.sock"])
    assert get_redis().connection_pool.connection_kwargs["path"] == "/nowhere/redis.sock"


def test_one_holder_at_concurrency_one(tr: Transitions, leases: LeaseManager) -> None:
    first = started(tr, "A")
    assert first.slot == 0 and first.key == K.lease("api", 0) and first.keys == [first.key]
    st = start(tr, "B")
    assert (st.verdict, st.detail, st.lease) == ("wait", "repo", None)
    assert leases.holder("api", 0) == first.token
    assert started(tr, "C", repo="web").slot == 0  # other repos are independent


def test_n_holders_at_concurrency_n(tr: Transitions, leases: LeaseManager) -> None:
    got = [started(tr, t, concurrency=3) for t in ("A", "B", "C")]
    assert sorted(g.slot for g in got) == [0, 1, 2]  # which first: the start's choice
    assert start(tr, "D", concurrency=3).verdict == "wait"
    assert leases.holders("api", 3) == [g.token for g in sorted(got, key=lambda g: g.slot)]


def test_concurrent_starts_never_share_a_slot(fake_r: redis.Redis) -> None:
    t = Transitions(fake_r, K, lease_ttl=30)
    won: list[Lease] = []
    lock = threading.Lock()

    def grab(todo: str) -> None:
        st = start(t, todo, concurrency=2)
        if st.lease is not None:
            with lock:
                won.append(st.lease)

    threads = [threading.Thread(target=grab, args=(f"T{i}",)) for i in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(lease.slot for lease in won) == [0, 1]
    assert len({lease.fence for lease in won}) == 2


def test_fence_increases_on_every_grant(tr: Transitions, leases: LeaseManager) -> None:
    fences = []
    for todo in ("A", "B", "C", "D", "E"):
        lease = started(tr, todo)
        fences.append(lease.fence)
        assert leases.release(lease)
    assert fences == sorted(fences) and len(set(fences)) == 5


def test_wrong_token_cannot_release_or_extend(
    fake_r: redis.Redis, tr: Transitions, leases: LeaseManager
) -> None:
    lease = started(tr, "A")
    forged = Lease(lease.repo, lease.slot, "someone-else", lease.fence, lease.ttl_ms, "t")
    assert not leases.release(forged)
    assert not leases.extend(forged)
    assert held(fake_r, lease)
    assert leases.release(lease)
    assert not held(fake_r, lease)
    assert not leases.release(lease)  # a second release is a no-op


def test_expiry_then_a_new_grant_has_a_higher_fence(
    fake_r: redis.Redis, tr: Transitions, leases: LeaseManager
) -> None:
    old = started(tr, "A")
    assert wait_for(lambda: not held(fake_r, old))  # TTL 250 ms passes
    new = started(tr, "B")
    assert new.key == old.key and new.fence > old.fence
    assert not leases.extend(old)  # the old holder cannot renew the new lease
    assert not leases.release(old)
    assert held(fake_r, new)


def test_heartbeat_keeps_lease_past_ttl(
    fake_r: redis.Redis, tr: Transitions, leases: LeaseManager
) -> None:
    lease = started(tr, "A")
    lost = threading.Event()
    hb = Heartbeat(leases, lease, interval=0.05, on_lost=lost.set).start()
    try:
        time.sleep(0.75)  # three TTLs
        assert held(fake_r, lease) and not hb.lost and not lost.is_set()
    finally:
        t0 = time.monotonic()
        hb.stop()
        assert time.monotonic() - t0 < 0.5  # stop does not wait out an interval
    assert leases.release(lease)


@pytest.mark.parametrize("how", ["deleted", "taken"])
def test_heartbeat_reports_loss_once(
    leases: LeaseManager, fake_r: redis.Redis, tr: Transitions, how: str
) -> None:
    lease = started(tr, "A")
    calls: list[int] = []
    hb = Heartbeat(leases, lease, interval=0.05, on_lost=lambda: calls.append(1)).start()
    fake_r.delete(lease.key)
    if how == "taken":
        assert started(tr, "B").key == lease.key  # the slot went to another todo
    assert wait_for(lambda: hb.lost)
    hb.stop()
    assert calls == [1]


def test_holder_stops_before_its_lease_can_expire_even_while_renewal_hangs(
    fake_r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over a cut network a renewal call can hang past the TTL; by then another
    worker may hold the lease. ``doomed`` turns true TTL - margin after the last
    renewal, whatever the hanging call does, so the runner kills its command in time."""
    mgr = LeaseManager(fake_r, K, ttl=1.0)
    lease = started(Transitions(fake_r, K, lease_ttl=1.0), "A")
    release = threading.Event()

    def hang(_lease: Lease) -> bool:
        release.wait(10)  # a read on a blackholed socket
        return True

    monkeypatch.setattr(mgr, "extend", hang)
    hb = Heartbeat(mgr, lease, interval=0.2).start()
    try:
        t0 = time.monotonic()
        assert not hb.doomed()
        wait_for(hb.doomed, 5, "the heartbeat to give its lease up")
        took = time.monotonic() - t0
        assert took <= 1.0 - hb.margin + 0.1, took  # before the TTL could run out
        assert not hb.lost  # the renewal call is still hanging
        assert fake_r.pttl(lease.key) > 0  # and the server would still call it ours
    finally:
        release.set()
        hb.stop()


def test_a_heartbeat_started_late_renews_an_interval_after_the_grant(
    tr: Transitions, leases: LeaseManager,
) -> None:
    """A runner starts its heartbeat only once its command has run a little: the first
    renewal must still come an interval after the lease was granted, not after the
    thread started (else a late start eats into the TTL)."""
    lease = started(tr, "A")
    hb = Heartbeat(leases, lease, interval=1.0)
    hb.last_ok -= 0.25  # granted 0.25 s before the heartbeat starts
    waits: list[float] = []

    class Stop:
        def wait(self, timeout: float) -> bool:
            waits.append(timeout)
            return True  # stop at once: only the first wait matters

        def set(self) -> None:
            pass

    hb._stop = Stop()  # type: ignore[assignment]
    hb._run()
    assert len(waits) == 1 and 0.7 <= waits[0] <= 0.76, waits



def test_a_renewal_now_moves_last_ok_and_a_failing_one_is_left_to_the_heartbeat(
        tr: Transitions, leases: LeaseManager) -> None:
    """``Heartbeat.renew_now``: the lease renewed from the caller's thread after a long
    step (a fetch, a new worktree); a Redis error is left to the heartbeat's renewals."""
    lease = started(tr, "A")
    hb = Heartbeat(leases, lease, interval=60)
    hb.last_ok -= 3.0
    before = hb.last_ok
    hb.renew_now()
    assert hb.last_ok > before + 2.9

    class Down:
        def extend(self, _lease: Lease) -> bool:
            raise redis.ConnectionError("gone")

    hb.leases = Down()  # type: ignore[assignment]
    seen = hb.last_ok
    hb.renew_now()  # no error: the heartbeat decides
    assert hb.last_ok == seen and not hb.lost
