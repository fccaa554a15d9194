"""A follow that stops still gives every event written before it stopped: a sweep whose
last todos end between two reads of a waiting follower (its ``stop()`` sees the sweep
ended) must not lose their events (MCP's progress of a waited sweep counted nothing
when the sweep ended before the follower's first live read)."""

from __future__ import annotations

import fakeredis
import pytest

from coordination.keys import Keys
from coordination.runtime.events import EventLog

pytestmark = pytest.mark.timeout(30)

K = Keys("t")


def test_events_written_before_stop_said_the_end_are_still_given() -> None:
    r = fakeredis.FakeRedis(decode_responses=True)
    log = EventLog(r, K)
    log.emit("sweep.queued", sweep_id="S1", run=0)
    calls = []

    def stop() -> bool:  # the sweep ends between the replay and the first live read
        if not calls:
            log.emit("todo.succeeded", sweep_id="S1", todo_id="TODO-001")
            log.emit("sweep.finished", sweep_id="S1", status="succeeded")
        calls.append(True)
        return True

    kinds = [ev.kind for ev in log.follow("S1", block_ms=10, stop=stop)]
    assert kinds == ["sweep.queued", "todo.succeeded", "sweep.finished"]
