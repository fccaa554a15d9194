"""Runtime-tier fixtures: the event log on each backend, and transitions with short leases."""

from __future__ import annotations

import pytest
import redis

from coordination.keys import Keys
from coordination.runtime.events import EventLog
from coordination.runtime.transitions import Transitions


@pytest.fixture
def tr(fake_r: redis.Redis) -> Transitions:
    """Starts whose leases expire after 250 ms unless renewed (on ``fake_r``)."""
    return Transitions(fake_r, Keys("t"), lease_ttl=0.25)


@pytest.fixture
def log(r: redis.Redis) -> EventLog:
    """The event log of namespace ``t`` on each backend."""
    return EventLog(r, Keys("t"))
