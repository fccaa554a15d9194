"""Shared context on a real distributed sweep: a todo sets values with `coord context
set` (its sweep's scope from the environment its worker gives it, and its plan's with
--plan "$COORD_PLAN_ID"), a dependent in another repo reads them with `coord context
get`; outside the sweep, `--sweep ID` reads the same values, and the counts reach the
store's statistics. Then the cap's eviction order on the real server."""

from __future__ import annotations

import shlex
import sys

import pytest

from tests.integration.helpers import PLAN, Cluster, T

pytestmark = pytest.mark.timeout(180)

COORD = f"{shlex.quote(sys.executable)} -m coordination.cli.main context"


def test_a_todo_sets_a_value_and_a_dependent_reads_it(cluster: Cluster) -> None:
    out = cluster.root / "read.txt"
    cluster.write_catalog({"lib": 1, "app": 1}, [
        T("TODO-001", "lib", f"{COORD} set build '{{\"version\": \"7.1\"}}' && "
          f"{COORD} set channel '\"beta\"' --plan \"$COORD_PLAN_ID\" --ttl 600"),
        T("TODO-002", "app", f"{COORD} get build > {out} && "
          f"{COORD} get channel --raw --plan \"$COORD_PLAN_ID\" >> {out}",
          blocked_by=["TODO-001"]),
    ])
    cluster.start_workers(["lib", "app"])
    st = cluster.cli_json("plan", "sweep", PLAN, "--wait")
    assert st["status"] == "succeeded", (st, cluster.log_tails())
    assert out.read_text().splitlines() == ['{"version":"7.1"}', "beta"]
    sid = st["sweep_id"]
    got = cluster.cli_json("context", "get", "build", "--sweep", sid)
    assert got["value"] == {"version": "7.1"} and got["scope"] == f"sweep:{sid}"
    listed = cluster.cli_json("context", "list", "--plan", PLAN)
    assert [v["key"] for v in listed["values"]] == ["channel"]
    stats = cluster.rt.shared_context().stats()
    assert stats["hits:sweep"] >= 2 and stats["hits:plan"] >= 1


def test_eviction_order_on_the_real_server(cluster: Cluster) -> None:
    store = cluster.rt.shared_context()
    store.max_keys = 3
    scope = "sweep:evict-order"
    for k in ("a", "b", "c"):
        assert store.set(scope, k, "1") == []
    assert store.get(scope, "a") == "1"
    assert store.get(scope, "b") == "1"
    assert store.set(scope, "d", "1") == ["c"]
    assert store.set(scope, "e", "1") == ["a"]
    assert [e["key"] for e in store.entries(scope)] == ["b", "d", "e"]
