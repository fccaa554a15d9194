"""`plan sweep --sequential` on a real distributed sweep: with a worker per repo (and
two slots on one) free to run several todos at once, the todos run one at a time, in
an order that follows the DAG, and the ties among free todos go by priority."""

from __future__ import annotations

import pytest

from tests.integration.helpers import PLAN, TIMED, Cluster, T, intervals, max_overlap

pytestmark = pytest.mark.timeout(180)

# A diamond (1 -> 2,3 -> 4) beside an independent pair (5 -> 6), over four repos: a
# levels or eager sweep runs 1, 5 (and later 2, 3, 6) at once.
DAG = {
    "TODO-001": ("a", [], None),
    "TODO-002": ("b", ["TODO-001"], None),
    "TODO-003": ("c", ["TODO-001"], "critical"),
    "TODO-004": ("c", ["TODO-002", "TODO-003"], None),
    "TODO-005": ("d", [], "low"),
    "TODO-006": ("a", ["TODO-005"], None),
}


def test_sequential_sweep_runs_one_todo_at_a_time_in_dag_order(cluster: Cluster) -> None:
    todos = [T(tid, repo, TIMED.format(s=0.3), blocked_by=preds, priority=prio)
             for tid, (repo, preds, prio) in DAG.items()]
    cluster.write_catalog({"a": 2, "b": 1, "c": 1, "d": 1}, todos)
    cluster.start_workers(["a", "a", "b", "c", "d"])

    st = cluster.cli_json("plan", "sweep", PLAN, "--sequential", "--wait", timeout=150)
    assert st["status"] == "succeeded", st

    spans = intervals({tid: cluster.repo_dir(repo) for tid, (repo, _, _) in DAG.items()})
    assert max_overlap(spans.values()) == 1, spans  # never two at once
    ran = sorted(spans, key=lambda t: spans[t][0])
    for tid, (_, preds, _) in DAG.items():
        for p in preds:
            assert spans[tid][0] >= spans[p][1], f"{tid} started before its predecessor {p} ended"
    # ties among the free todos go by the start rank: priority first (3 is critical,
    # 5 is low), then the longer chain behind (1 has three todos after it, 5 one)
    assert ran == ["TODO-001", "TODO-003", "TODO-002", "TODO-004", "TODO-005", "TODO-006"]
    status = cluster.cli_json("sweep", "status", st["sweep_id"])
    assert all(t["status"] == "succeeded" for t in status["todos"].values())
