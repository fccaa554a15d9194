"""History fixtures: the history store (Redis history on fakeredis) that search and
trends read."""

from __future__ import annotations

from collections.abc import Iterator

import fakeredis
import pytest

from coordination.keys import Keys
from coordination.runtime.history import HistoryStore, RedisHistory


@pytest.fixture
def store() -> Iterator[HistoryStore]:
    s = RedisHistory(fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True),
                     Keys("test"), days=90)
    yield s
    s.close()
