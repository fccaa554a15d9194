"""What a succeeding distributed `coord plan sweep --wait` prints: its summary, no traceback."""

from __future__ import annotations

import pytest

from tests.integration.helpers import T, Cluster

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("strategy", ["levels", "eager"])
def test_waited_sweep_exits_without_tracebacks(cluster: Cluster, strategy: str) -> None:
    cluster.write_catalog({"api": 2, "web": 1}, [
        T("TODO-001", "api", "true"),
        T("TODO-002", "api", "true"),
        T("TODO-003", "web", "true", blocked_by=["TODO-001", "TODO-002"]),
        T("TODO-004", "web", "true", blocked_by=["TODO-003"]),
    ])
    cluster.start_workers(["api", "web"])
    res = cluster.cli("plan", "sweep", "PLAN-001", "--wait", "--strategy", strategy)
    assert res.returncode == 0, res.stderr[-3000:]
    for bad in ("Traceback", "Exception ignored", "Error"):
        assert bad not in res.stderr, res.stderr[-3000:]
