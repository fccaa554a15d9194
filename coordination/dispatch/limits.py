"""How long a catalog's todos and sweeps may take: what sizes the broker's visibility
timeout and result expiry (:mod:`coordination.dispatch.app`). Kept apart from the
app so that the CLI's send path sizes them without importing Celery."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coordination.retry import backoff_cap

if TYPE_CHECKING:
    from coordination.catalog.models import Catalog

DEFAULT_LONGEST_TODO = 3600.0


def todo_budget(timeout: float, retries: int) -> float:
    """Upper bound in seconds on one todo's run time, retries and backoff included."""
    return timeout * (retries + 1) + backoff_cap(retries)


def limits_from_catalog(catalog: Catalog) -> tuple[float, float]:
    """(longest todo budget, a bound on the longest sweep) for a catalog."""
    longest = DEFAULT_LONGEST_TODO
    total = 0.0
    for todo in catalog.coordination.todos:
        b = todo_budget(todo.timeout, todo.retries)
        longest = max(longest, b)
        total += b
    return longest, total + 3600.0
