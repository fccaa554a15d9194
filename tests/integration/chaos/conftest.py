"""The chaos tier: real redis-server, real `coord worker` processes, and faults.

Each test that restarts or cuts Redis gets its own redis-server (``own_redis``,
restartable on the same port, with or without AOF) and a :class:`Cluster` on it
(``chaos``); the rest use the session server through ``cluster``. Timings are
short on purpose (lease TTL 2 s, supervisor every 0.5 s, lost messages re-sent
after 3 s, worker beats every 0.5 s) so the whole tier stays within minutes.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.integration.chaos.proxy import Proxy
from tests.integration.helpers import Cluster, close_after_test
from tests.servers import redis_binary
from tests.waiting import wait_for

CHAOS_ENV = {"COORD_LOST_AFTER": "3", "COORD_WORKER_HEARTBEAT": "0.5"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: fault injection against real Redis and workers")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.chaos)


class OwnRedis:
    """A redis-server of one test: ``kill()`` (SIGKILL), ``start()`` again on the same port."""

    def __init__(self, workdir: Path, *, aof: bool) -> None:
        binary = redis_binary()
        self.binary, self.dir, self.aof = binary, workdir, aof
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=2)

    def start(self) -> None:
        cmd = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "yes" if self.aof else "no", "--appendfsync", "always",
               "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def up() -> bool:
            try:
                return bool(self.client().ping())
            except redis.RedisError:
                return False

        wait_for(up, 15, f"redis-server on {self.port}", interval=0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.kill()


@pytest.fixture
def own_redis(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[OwnRedis]:
    aof = bool(getattr(request, "param", False))
    d = tmp_path / "own-redis"
    d.mkdir()
    server = OwnRedis(d, aof=aof)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def chaos(own_redis: OwnRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A Cluster on this test's own redis-server, with the chaos timings."""
    monkeypatch.setenv("COORD_REDIS_URL", own_redis.url)
    from coordination.settings import get_settings

    get_settings.cache_clear()
    c = Cluster(tmp_path / "cluster", own_redis.url)
    c.env.update(CHAOS_ENV)
    try:
        yield c
    finally:
        close_after_test(request, [c])
        get_settings.cache_clear()


@pytest.fixture
def fast(cluster: Cluster) -> Cluster:
    """The session-server cluster with the chaos timings."""
    cluster.env.update(CHAOS_ENV)
    return cluster


@pytest.fixture
def proxy(own_redis: OwnRedis) -> Iterator[Proxy]:
    p = Proxy(own_redis.port)
    try:
        yield p
    finally:
        p.close()


def elapsed(since: float) -> str:
    return f"{time.time() - since:.1f} s"
