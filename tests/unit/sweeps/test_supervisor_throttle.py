"""The periodic supervisor pass reads every checkpoint only when a sweep may need it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from coordination.sweeps.supervision import needs_full_pass

pytestmark = pytest.mark.timeout(10)


class Rt:
    def __init__(self) -> None:
        self.settings = SimpleNamespace(lease_ttl=10.0)
        self.record: dict[str, Any] = {"terminal": 0}
        self.checkpoints = self

    def update_sweep(self, sweep_id: str, **fields: Any) -> None:
        self.record.update(fields)


def test_moving_sweep_is_read_in_full_every_half_ttl_and_a_still_one_every_pass() -> None:
    rt = Rt()
    full = lambda now: needs_full_pass(rt, "S", dict(rt.record), now)  # noqa: E731
    assert full(100.0) is False  # first look: noted, nothing can be stuck yet
    assert full(101.0) is True  # nothing ended since the last full look: read everything
    rt.record["terminal"] = 5
    assert full(102.0) is False  # moving, and the last full pass is recent
    rt.record["terminal"] = 9
    assert full(105.0) is False
    assert full(106.0) is True  # moving, but half a lease TTL since the last full pass
    assert full(107.0) is True  # still: every pass


def test_a_big_moving_sweep_is_read_in_full_less_often_so_its_reads_stay_linear() -> None:
    """A full pass reads all n checkpoints: at a fixed period a sweep lasting in
    proportion to n would cost n^2 reads; the period grows with n past a few thousand."""
    rt = Rt()
    full = lambda now, n: needs_full_pass(rt, "S", dict(rt.record), now, n)  # noqa: E731
    assert full(100.0, 20_000) is False  # first look
    rt.record["terminal"] = 50
    assert full(106.0, 20_000) is False  # half a TTL, but 20,000 checkpoints: not yet
    rt.record["terminal"] = 90
    assert full(119.0, 20_000) is False
    assert full(120.5, 20_000) is True  # 20 s: 1,000 reads a second at most
    rt.record["terminal"] = 95
    assert full(126.0, 1_000) is True  # a small sweep: every half TTL, as before
    rt.record["terminal"] = 99
    assert full(127.0, 20_000) is False
    rt.record["terminal"] = 95
    assert full(128.0, 20_000) is True  # nothing ended since the last full look: every pass
