"""Unit-tier fixtures: an embedded runtime, and one Redis client per backend.

``redis_client`` runs a test on fakeredis (what embedded mode uses) and on a real
``redis-server`` (the session server of tests/conftest.py), as dramatiq does: the
Lua scripts and key semantics must agree on both.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from coordination.runtime.context import Runtime
from tests.unit.support.sweeps import fresh_runtime


@pytest.fixture
def rt() -> Iterator[Runtime]:
    from coordination.connection.client import reset_embedded
    from coordination.runtime.context import get_runtime

    runtime = fresh_runtime()
    assert runtime.settings.embedded
    yield runtime
    reset_embedded()
    get_runtime.cache_clear()


@pytest.fixture(params=["fakeredis", "redis-server"])
def redis_backend(request: pytest.FixtureRequest) -> Iterator[tuple[str, Any]]:
    """(backend name, a client class and kwargs maker) for each backend; the real one
    needs redis-server (skipped without it, a failure under COORD_REQUIRE_REDIS=1)."""
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()
        yield "fakeredis", lambda cls: cls(server=server, decode_responses=True)
        return
    if shutil.which("redis-server") is None and os.environ.get("COORD_REQUIRE_REDIS") != "1":
        pytest.skip("redis-server is not on PATH")
    srv = request.getfixturevalue("redis_server")
    probe = redis.Redis.from_url(srv.url)
    probe.flushall()
    probe.close()
    yield "redis-server", lambda cls: cls.from_url(srv.url, decode_responses=True)
