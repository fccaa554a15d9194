"""A plan whose todos set and read a context value, for the context tests
(test_todo_secrets.py, test_sealed_decisions.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.integration.helpers import Cluster, T


def context_plan(cluster: Cluster, flag: Path, got: Path) -> None:
    """TODO-001 sets ``build`` to how many times it ran, and fails its first run (while
    ``flag`` is missing); TODO-002 reads it after."""
    coord = f"{sys.executable} -m coordination.cli.main context"
    setter = ('n=$(( $(cat n 2>/dev/null || echo 0) + 1 )); echo $n > n; '
              + coord + r' set build "{\"n\": $n}" && test -f ' + str(flag))
    cluster.write_catalog({"a": 1}, [
        T("TODO-001", "a", setter),
        T("TODO-002", "a", f"{coord} get build > {got}", blocked_by=["TODO-001"]),
    ])


def raw_value(cluster: Cluster, sid: str) -> str:
    value = cluster.rt.redis.get(cluster.rt.keys.context_value(f"sweep:{sid}", "build"))
    assert value is not None
    return str(value)
