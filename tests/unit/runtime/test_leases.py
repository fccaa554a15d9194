"""Leases on the embedded (fakeredis) server: exclusivity, fences, tokens, heartbeat."""

from __future__ import annotations

import threading
import time

import fakeredis
import pytest
import redis

from coordination.keys import Keys
from coordination.runtime.client import get_redis, reset_embedded
from coordination.runtime.leases import Heartbeat, Lease, LeaseManager
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def r() -> redis.Redis:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


@pytest.fixture
def leases(r: redis.Redis) -> LeaseManager:
    return LeaseManager(r, Keys("t"), ttl=0.25)


def test_embedded_client_is_shared_and_runs_lua() -> None:
    reset_embedded()
    a, b = get_redis(), get_redis()
    a.set("x", "1")
    assert b.get("x") == "1"
    assert a.eval("return redis.call('GET', KEYS[1])", 1, "x") == "1"
    reset_embedded()
    assert get_redis().get("x") is None


def test_one_holder_at_concurrency_one(leases: LeaseManager) -> None:
    first = leases.try_acquire("api")
    assert first is not None and first.slot == 0
    assert leases.try_acquire("api") is None
    assert leases.holder("api", 0) == first.token
    assert leases.try_acquire("web") is not None  # other repos are independent


def test_n_holders_at_concurrency_n(leases: LeaseManager) -> None:
    got = [leases.try_acquire("api", 3) for _ in range(4)]
    assert [g.slot for g in got[:3] if g] == [0, 1, 2]
    assert got[3] is None
    assert leases.holders("api", 3) == [g.token for g in got[:3] if g]


def test_concurrent_acquirers_never_share_a_slot(r: redis.Redis) -> None:
    mgr = LeaseManager(r, Keys("t"), ttl=30)
    won: list[Lease] = []
    lock = threading.Lock()

    def grab() -> None:
        lease = mgr.try_acquire("api", 2)
        if lease:
            with lock:
                won.append(lease)

    threads = [threading.Thread(target=grab) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(lease.slot for lease in won) == [0, 1]
    assert len({lease.fence for lease in won}) == 2


def test_fence_increases_on_every_grant(leases: LeaseManager) -> None:
    fences = []
    for _ in range(5):
        lease = leases.try_acquire("api")
        assert lease is not None
        fences.append(lease.fence)
        assert leases.release(lease)
    assert fences == sorted(fences) and len(set(fences)) == 5


def test_wrong_token_cannot_release_or_extend(leases: LeaseManager) -> None:
    lease = leases.try_acquire("api")
    assert lease is not None
    forged = Lease(lease.repo, lease.slot, "someone-else", lease.fence, lease.ttl_ms, "t")
    assert not leases.release(forged)
    assert not leases.extend(forged)
    assert leases.is_held(lease)
    assert leases.release(lease)
    assert not leases.is_held(lease)
    assert not leases.release(lease)  # a second release is a no-op


def test_expiry_then_reacquire_gets_higher_fence(leases: LeaseManager) -> None:
    old = leases.try_acquire("api")
    assert old is not None
    assert wait_for(lambda: not leases.is_held(old))  # TTL 250 ms passes
    new = leases.try_acquire("api")
    assert new is not None and new.fence > old.fence
    assert not leases.extend(old)  # the old holder cannot renew the new lease
    assert not leases.release(old)
    assert leases.is_held(new)


def test_acquire_waits_for_expiry_and_honours_timeout_and_stop(leases: LeaseManager) -> None:
    held = leases.try_acquire("api")
    assert held is not None
    t0 = time.monotonic()
    assert leases.acquire("api", timeout=0.1) is None
    assert time.monotonic() - t0 < 1.0
    assert leases.acquire("api", timeout=5, should_stop=lambda: True) is None
    got = leases.acquire("api", timeout=5)  # the held lease expires after 250 ms
    assert got is not None and got.fence > held.fence


def test_lease_round_trips_as_dict(leases: LeaseManager) -> None:
    lease = leases.try_acquire("api")
    assert lease is not None
    assert Lease.from_dict(lease.to_dict()) == lease
    assert lease.key == Keys("t").lease("api", 0)


def test_heartbeat_keeps_lease_past_ttl(leases: LeaseManager) -> None:
    lease = leases.try_acquire("api")
    assert lease is not None
    lost = threading.Event()
    hb = Heartbeat(leases, lease, interval=0.05, on_lost=lost.set).start()
    try:
        time.sleep(0.75)  # three TTLs
        assert leases.is_held(lease) and not hb.lost and not lost.is_set()
    finally:
        t0 = time.monotonic()
        hb.stop()
        assert time.monotonic() - t0 < 0.5  # stop does not wait out an interval
    assert leases.release(lease)


@pytest.mark.parametrize("how", ["deleted", "taken"])
def test_heartbeat_reports_loss_once(leases: LeaseManager, r: redis.Redis, how: str) -> None:
    lease = leases.try_acquire("api")
    assert lease is not None
    calls: list[int] = []
    hb = Heartbeat(leases, lease, interval=0.05, on_lost=lambda: calls.append(1)).start()
    r.delete(lease.key)
    if how == "taken":
        assert leases.try_acquire("api") is not None
    assert wait_for(lambda: hb.lost)
    hb.stop()
    assert calls == [1]


def test_holder_stops_before_its_lease_can_expire_even_while_renewal_hangs(
    r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over a cut network a renewal call can hang past the TTL; by then another
    worker may hold the lease. ``doomed`` turns true TTL - margin after the last
    renewal, whatever the hanging call does, so the runner kills its command in time."""
    mgr = LeaseManager(r, Keys("coord"), ttl=1.0)
    lease = mgr.try_acquire("api")
    assert lease is not None
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
        assert r.pttl(lease.key) > 0  # and the server would still call it ours
    finally:
        release.set()
        hb.stop()


def test_a_heartbeat_started_late_renews_an_interval_after_the_grant(
    leases: LeaseManager,
) -> None:
    """A runner starts its heartbeat only once its command has run a little: the first
    renewal must still come an interval after the lease was granted, not after the
    thread started (else a late start eats into the TTL)."""
    lease = leases.try_acquire("api")
    assert lease is not None
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
