"""Hypothesis strategies of plans (random DAGs with estimates), for the planner's property
tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


@st.composite
def dags(draw: Any, max_n: int = 24) -> tuple[int, list[tuple[int, int]], list[float | None]]:
    n = draw(st.integers(1, max_n))
    perm = draw(st.permutations(range(n)))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                          max_size=3 * n))
    edges = sorted({(perm[min(a, b)], perm[max(a, b)]) for a, b in pairs if a != b})
    hours = draw(st.lists(st.one_of(st.none(), st.floats(0, 100).map(lambda h: round(h, 1))),
                          min_size=n, max_size=n))
    return n, edges, hours
