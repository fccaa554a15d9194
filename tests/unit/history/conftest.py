"""History fixtures: one store per backend (Redis on fakeredis, SQLite in tmp_path)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from coordination.keys import Keys
from coordination.runtime.history import HistoryStore, RedisHistory, SqliteHistory


@pytest.fixture(params=["redis", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HistoryStore]:
    s: Any
    if request.param == "redis":
        s = RedisHistory(fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True),
                         Keys("test"), days=90)
    else:
        s = SqliteHistory(tmp_path / ".ecosystem.yaml.coord.history.sqlite", days=90)
    yield s
    s.close()
