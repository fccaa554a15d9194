"""A paced follow (a waiting `plan sweep --wait` reads a busy sweep's events in batches,
forty reads a second at most) still reads the sweep's own events, its end among them,
when they land: it waits out its pace in a blocking read of the stream they are also
written to, not in a sleep. On fakeredis and a real redis-server."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from coordination.runtime.events import EventLog

pytestmark = pytest.mark.timeout(60)

#: Far longer than the test may take, and than any machine has been up (the monotonic
#: clock starts near boot: a follow whose first live read was paced from zero waited out
#: ``PACE - uptime``, on a fresh machine only): a follow that slept out its pace never ends.
PACE = 1e9


def patience(log: EventLog) -> float:
    """How long the follow may take: 30 s, but less than the client's socket timeout
    (redis-py's default is 5 s), which would end a pace's blocking read early and pass a
    follow that waits its pace out."""
    pool = log.r.connection_pool
    conn = pool.get_connection()
    try:
        timeout = conn.socket_timeout
    finally:
        pool.release(conn)
    return min(30.0, 0.8 * timeout) if timeout else 30.0


def paced_follow(log: EventLog, live: Callable[[], None]) -> list[str]:
    """The kinds a follow of S1 paced at :data:`PACE` reads until S1's end (on a thread,
    given :func:`patience`); ``live()`` runs once, when its first live read has yielded:
    every later read comes after a pace."""
    log.emit("sweep.queued", sweep_id="S1")  # the replay's
    log.emit("todo.started", sweep_id="S1", todo_id="T1")
    kinds: list[str] = []

    def read() -> None:
        for ev in log.follow("S1", block_ms=50, pace=PACE):
            kinds.append(ev.kind)
            if len(kinds) == 2:  # the replay read both: the next ones are live
                log.emit("todo.succeeded", sweep_id="S1", todo_id="T1")
            elif len(kinds) == 3:
                live()
            if ev.kind == "sweep.finished":
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=patience(log))
    assert not reader.is_alive(), f"still waiting out its pace after {kinds}"
    return kinds


def test_an_end_written_before_the_pace_starts_ends_it(log: EventLog) -> None:
    kinds = paced_follow(log, lambda: log.emit("sweep.finished", sweep_id="S1",
                                               status="succeeded"))
    assert kinds == ["sweep.queued", "todo.started", "todo.succeeded", "sweep.finished"]


def test_an_end_landing_during_the_pace_ends_it(log: EventLog) -> None:
    def later() -> None:  # from another client's thread: lands while the reader waits
        log.emit("sweep.queued", sweep_id="OTHER")  # wakes it too: it reads, then waits on
        log.emit("todo.started", sweep_id="S1", todo_id="T2")
        log.emit("sweep.finished", sweep_id="S1", status="succeeded")

    emitter = threading.Thread(target=later, daemon=True)
    kinds = paced_follow(log, emitter.start)
    # The follow can read the end before the emitting thread has read its reply: let it,
    # before the fixture closes the server under it.
    emitter.join(timeout=patience(log))
    assert not emitter.is_alive()
    assert kinds == ["sweep.queued", "todo.started", "todo.succeeded", "todo.started",
                     "sweep.finished"]
