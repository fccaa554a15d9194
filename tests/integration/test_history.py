"""History on real workers and a real redis-server: a sweep's todos, recorded by the
worker that finalised it, found by `coord history search` and counted by `trends`."""

from __future__ import annotations

import pytest

from tests.integration.helpers import PLAN, Cluster, T

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_a_sweeps_history_is_searchable_and_counted(cluster: Cluster) -> None:
    cluster.write_catalog({"hist-a": 1, "hist-b": 1}, [
        T("TODO-001", "hist-a", "echo needle-in-the-haystack-42"),
        T("TODO-002", "hist-b", "echo 2 tests failed, fell over >&2; exit 3",
          blocked_by=["TODO-001"]),
    ])
    cluster.start_workers({"hist-a": 1, "hist-b": 1})
    st = cluster.cli_json("plan", "sweep", PLAN, "--wait", expect=1, timeout=120)
    sid = st["sweep_id"]
    assert st["status"] == "failed"

    [hit] = cluster.cli_json("history", "search", "NEEDLE-in-the-haystack")
    assert (hit["kind"], hit["sweep_id"], hit["todo_id"], hit["repo"]) == (
        "todo", sid, "TODO-001", "hist-a")
    assert hit["status"] == "succeeded" and hit["worker"] and hit["duration"] is not None
    [bad] = cluster.cli_json("history", "search", "fell over", "--repo", "hist-b")
    assert (bad["todo_id"], bad["exit_code"], bad["status"]) == ("TODO-002", 3, "failed")
    # Ranked, by stems: "failing test" finds "tests failed" (not as written), with a score.
    [ranked] = cluster.cli_json("history", "search", "failing test", "--kind", "todo")
    assert (ranked["todo_id"], ranked["repo"]) == ("TODO-002", "hist-b")
    assert ranked["score"] > 0
    assert cluster.cli_json("history", "search", "failing test", "--repo", "hist-a",
                            "--kind", "todo") == []
    [sweep] = cluster.cli_json("history", "search", "", "--kind", "sweep")
    assert (sweep["sweep_id"], sweep["status"], sweep["counts"]) == (
        sid, "failed", {"succeeded": 1, "failed": 1})

    trends = cluster.cli_json("history", "trends", "--days", "1")
    assert trends["repos"]["hist-a"]["runs"] == 1 and trends["repos"]["hist-a"]["success_rate"] == 1.0
    assert trends["repos"]["hist-b"]["failed"] == 1 and trends["repos"]["hist-b"]["success_rate"] == 0.0
    assert [x["todo"] for x in trends["slowest"]] and not trends["flakiest"]
    # TODO-001 completed this week; hist-b's TODO-002 waited, ready but blocked, on it.
    velocity = trends["velocity"]
    assert velocity["total"][velocity["weeks"][-1]] == 1
    assert velocity["repos"]["hist-a"][velocity["weeks"][-1]] == 1
    assert velocity["plans"][PLAN][velocity["weeks"][-1]] == 1
    [waited_on] = trends["bottlenecks"]
    assert (waited_on["repo"], waited_on["waits"], waited_on["dependents"]) == ("hist-a", 1, 1)
    assert waited_on["wait_s"] > 0

    # In the team's Redis, once: another process finalising again records nothing.
    from coordination.sweeps.progress import finish_if_done as maybe_finish
    from coordination.sweeps.recording import record_run

    rt = cluster.rt
    assert maybe_finish(rt, sid, full=True) is None
    record_run(rt, sid)
    assert rt.redis.zcard(rt.keys.history_index) == 1
    assert len(cluster.cli_json("history", "search", "", "--limit", "100")) == 3 + len(
        cluster.cli_json("history", "search", "", "--kind", "edit", "--limit", "100"))
