"""Retry backoff of a todo's command: the delay before each retry, and the
longest total a todo's retries can wait (which the sweep's deadline and the
broker's visibility timeout are sized from); and riding out Redis being away."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("coord.retry")

BACKOFF_BASE = 1.0
BACKOFF_MAX = 60.0


def backoff_delay(attempt: int, base: float = BACKOFF_BASE) -> float:
    """Exponential backoff with full jitter before retry ``attempt`` (1-based)."""
    return float(random.uniform(0, min(BACKOFF_MAX, base * (2 ** (attempt - 1)))))


def backoff_cap(retries: int, base: float = BACKOFF_BASE) -> float:
    """Longest total backoff ``retries`` retries can take."""
    return sum(min(BACKOFF_MAX, base * 2.0 ** (a - 1)) for a in range(1, retries + 1))


def riding_out(call: Callable[[], T], until: float,
               on_wait: Callable[[], None] | None = None) -> T:
    """``call()``, tried again with a growing pause while Redis cannot be reached
    (refused, reset, timed out), until monotonic time ``until``; then the error stands.
    ``on_wait`` runs at each wait. What a worker's writes and a waiting command's reads
    go through to outlive a Redis restart."""
    import redis

    delay = 0.05
    while True:
        try:
            return call()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if time.monotonic() + delay > until:
                raise
            if on_wait is not None:
                on_wait()
            log.warning("Redis unreachable (%s); retrying in %.2f s", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
