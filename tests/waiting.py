"""Waiting on the system, with a deadline: the one polling helper of the test suite."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def wait_for(
    cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition", interval: float = 0.02
) -> Any:
    """Poll ``cond`` until it returns something truthy and return that value.

    At the deadline, fail naming ``what``: a test never sleeps a fixed time
    hoping the system got there.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


class Follower:
    """``log.follow(sweep_id)`` (an event log's live reader) on a thread of its own,
    each event it yields appended to ``got``, until :meth:`stop`."""

    def __init__(self, log: Any, sweep_id: str, block_ms: int, daemon: bool = False) -> None:
        self.got: list[Any] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(log, sweep_id, block_ms),
                                       daemon=daemon)
        self.thread.start()

    def _read(self, log: Any, sweep_id: str, block_ms: int) -> None:
        for ev in log.follow(sweep_id, block_ms=block_ms, stop=self.done.is_set):
            self.got.append(ev)

    def stop(self, timeout: float = 5.0) -> None:
        """Tell the reader to stop; wait up to ``timeout`` s for its thread to end."""
        self.done.set()
        self.thread.join(timeout=timeout)
