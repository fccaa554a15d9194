"""`coord doctor` against a real redis-server of its own: configured wrong (allkeys-lru,
no persistence) it names both with their fix and exits 1; configured right, with a live
worker on this host, it finds nothing wrong and exits 0."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.integration.helpers import Cluster, T
from tests.servers import RedisServer, start_redis, stop_process

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server only this test configures (the session's is shared)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not on PATH")
    (tmp_path / "redis").mkdir()
    server = start_redis(binary, tmp_path / "redis")
    try:
        yield server
    finally:
        stop_process(server.proc)


def by_check(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["check"]: f for f in doc["findings"]}


def test_doctor_names_a_wrong_redis_then_passes_a_right_one(private_redis: RedisServer,
                                                            tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "c", private_redis.url)
    try:
        cluster.write_catalog({"api": 1}, [T("TODO-001", "api", "true")])
        r = redis.Redis.from_url(private_redis.url, decode_responses=True)
        r.config_set("maxmemory-policy", "allkeys-lru")  # and (from _start) no persistence

        wrong = cluster.cli_json("doctor", expect=1)
        found = by_check(wrong)
        assert wrong["ok"] is False and wrong["problems"] >= 2, wrong
        assert found["redis.maxmemory-policy"]["level"] == "problem"
        assert "allkeys-lru" in found["redis.maxmemory-policy"]["message"]
        assert "noeviction" in found["redis.maxmemory-policy"]["fix"]
        assert found["redis.persistence"]["level"] == "problem"
        assert "appendonly yes" in found["redis.persistence"]["fix"]
        assert found["redis.version"]["level"] == "ok"
        assert found["workers.api"]["level"] == "warning"  # no worker yet, nothing waiting

        r.config_set("maxmemory-policy", "noeviction")
        r.config_set("appendonly", "yes")
        cluster.start_worker("api")
        right = cluster.cli_json("doctor")
        found = by_check(right)
        assert right["ok"] is True and right["problems"] == 0, right
        assert found["redis.maxmemory-policy"]["level"] == "ok"
        assert found["redis.persistence"]["level"] == "ok"
        assert found["workers.api"]["level"] == "ok"
        # the worker runs on this host: its checkout is checked, and its clock
        assert found["checkout.api"]["level"] == "ok", found
        assert socket.gethostname() in found["checkout.api"]["message"]
        assert found["clock.workers"]["level"] == "ok"

        # A checkout that goes missing is a problem with its fix; human output too.
        shutil.rmtree(cluster.repo_dir("api"))
        res = cluster.cli("doctor")
        assert res.returncode == 1, res.stdout + res.stderr
        assert "checkout" in res.stdout and "clone api there" in res.stdout, res.stdout
    finally:
        cluster.close()
