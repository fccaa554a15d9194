"""Integration fixtures: one real ``redis-server`` per test session, on a free port.

Without ``redis-server`` on PATH the integration tests are skipped, unless
``COORD_REQUIRE_REDIS=1`` (CI), where a missing server is a failure: a green
run must not silently mean "nothing ran".
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

if TYPE_CHECKING:
    from tests.integration.helpers import Cluster

HERE = Path(__file__).resolve().parent
START_TIMEOUT = 15.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration carries the ``integration`` marker."""
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@dataclass
class RedisServer:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    dir: Path

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(binary: str, workdir: Path) -> RedisServer:
    """Start redis-server and wait until it answers PING (a free port can be
    taken by someone else between our probe and the server's bind: retry)."""
    last_output = ""
    for _attempt in range(3):
        port = _free_port()
        log = workdir / f"redis-{port}.log"
        # fmt: off
        cmd = [
            binary, "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", str(workdir), "--logfile", str(log),
        ]
        # fmt: on
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        url = f"redis://127.0.0.1:{port}/0"
        probe = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if probe.ping():
                    probe.close()
                    return RedisServer(url, port, proc, workdir)
            except redis.RedisError:
                time.sleep(0.05)
        probe.close()
        _stop(proc)
        last_output = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"redis-server did not answer PING in {START_TIMEOUT}s:\n{last_output}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not on PATH; install redis (e.g. apt-get install redis-server)"
        if os.environ.get("COORD_REQUIRE_REDIS") == "1":
            pytest.fail(f"COORD_REQUIRE_REDIS=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    server = _start(binary, tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        _stop(server.proc)


@pytest.fixture
def redis_url(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty database, and COORD_REDIS_URL pointing at it for this test."""
    if redis_server.proc.poll() is not None:
        pytest.fail("the session redis-server has exited", pytrace=False)
    client = redis_server.client()
    client.flushall()
    client.close()
    monkeypatch.setenv("COORD_REDIS_URL", redis_server.url)
    from coordination.settings import get_settings

    get_settings.cache_clear()
    yield redis_server.url
    get_settings.cache_clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Remember each phase's report on the item, so fixtures can tell a failed test."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def cluster(redis_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Catalog, `coord worker` subprocesses and CLI processes of one test; all killed after it.

    When the test failed, the workers' log tails are printed (pytest shows them).
    """
    from tests.integration.helpers import Cluster

    c = Cluster(tmp_path, redis_url)
    try:
        yield c
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(c.log_tails())
        c.close()
