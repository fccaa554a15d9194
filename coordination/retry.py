"""Retry backoff of a todo's command: the delay before each retry, and the
longest total a todo's retries can wait (which the sweep's deadline and the
broker's visibility timeout are sized from)."""

from __future__ import annotations

import random

BACKOFF_BASE = 1.0
BACKOFF_MAX = 60.0


def backoff_delay(attempt: int, base: float = BACKOFF_BASE) -> float:
    """Exponential backoff with full jitter before retry ``attempt`` (1-based)."""
    return float(random.uniform(0, min(BACKOFF_MAX, base * (2 ** (attempt - 1)))))


def backoff_cap(retries: int, base: float = BACKOFF_BASE) -> float:
    """Longest total backoff ``retries`` retries can take."""
    return sum(min(BACKOFF_MAX, base * 2.0 ** (a - 1)) for a in range(1, retries + 1))
