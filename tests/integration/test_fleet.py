"""The fleet on real workers and a real redis-server: contended slots in rank order,
a breaker's whole cycle, a shared resource never oversubscribed, unattended repos."""

from __future__ import annotations

import pytest

from tests.integration.helpers import TIMED, Cluster, T, intervals, max_overlap, wait_until

pytestmark = pytest.mark.timeout(150)


def started_order(cluster: Cluster, sid: str) -> list[str]:
    return [e["todo_id"] for e in cluster.events(sid) if e["kind"] == "todo.started"]


def test_six_ready_todos_on_a_one_slot_repo_start_in_rank_order(cluster: Cluster) -> None:
    # Catalog order is the worst order; priorities and the critical path decide.
    cluster.write_catalog({"a": 1, "b": 1}, [
        T("TODO-001", "a", "sleep 0.2", priority="low"),
        T("TODO-002", "a", "sleep 0.2"),
        T("TODO-003", "a", "sleep 0.2", estimated_hours=1),
        T("TODO-004", "a", "sleep 0.2", priority="high"),
        T("TODO-005", "a", "sleep 0.2", estimated_hours=1),
        T("TODO-006", "a", "sleep 0.2", priority="critical"),
        T("TODO-007", "b", "true", estimated_hours=6, blocked_by=["TODO-005"]),
    ])
    dry = cluster.cli_json("plan", "sweep", "PLAN-001", "--dry-run")
    expected = ["TODO-006", "TODO-004", "TODO-005", "TODO-003", "TODO-002", "TODO-001"]
    assert dry["start_order"]["a"] == expected
    sid = cluster.start_sweep(strategy="eager")  # no worker yet: all six wait in the queue
    w = cluster.start_worker("a", extra=("--repo", "b"))  # 3 consumer slots for 2 repo slots
    st = cluster.wait_sweep(sid)
    assert st["status"] == "succeeded", st
    order = [t for t in started_order(cluster, sid) if t != "TODO-007"]
    # The worker takes the three top-ranked messages at once (broker priority, prefetch 1 on
    # 3 threads), and whichever of them reaches the free slot first takes it: nothing is
    # contended yet. From then on the slot is contended and the line decides, in rank order.
    assert order[0] in expected[:3], order
    assert order[1:] == [t for t in expected if t != order[0]], order
    assert w.alive()


def swept_behind_a_breaker(cluster: Cluster, breaker: tuple[int, int], todos: list[T]) -> str:
    """``todos`` of repo a, whose breaker is (failures, cooldown) ``breaker``, swept
    eagerly by a worker: the sweep's id."""
    cluster.write_catalog({"a": 1}, todos, breakers={"a": breaker})
    cluster.start_worker("a")
    return cluster.start_sweep(strategy="eager")


def test_breaker_opens_holds_half_opens_and_closes(cluster: Cluster) -> None:
    sid = swept_behind_a_breaker(cluster, (2, 2), [
        T("TODO-001", "a", "exit 3", priority="critical"),
        T("TODO-002", "a", "exit 3", priority="critical"),
        T("TODO-003", "a", "true", priority="high"),
        T("TODO-004", "a", "true"),
        T("TODO-005", "a", "true"),
    ])
    st = cluster.wait_sweep(sid, timeout=90)
    assert st["status"] == "failed", st  # the two failures; the rest ran after all
    assert {t: v["status"] for t, v in st["todos"].items()} == {
        "TODO-001": "failed", "TODO-002": "failed", "TODO-003": "succeeded",
        "TODO-004": "succeeded", "TODO-005": "succeeded"}
    evs = cluster.events(sid)
    kinds = [e["kind"] for e in evs]
    opened = kinds.index("repo.breaker_open")
    closed = kinds.index("repo.breaker_closed")
    assert evs[opened]["repo"] == "a" and evs[opened]["failures"] == 2
    held_at = [i for i, k in enumerate(kinds) if k == "todo.held"]
    assert held_at and all(opened < i < closed for i in held_at), kinds
    # The probe: the first in line once the cooldown passed; its success closed the breaker.
    probe = [e for e in evs if e["kind"] == "todo.started" and e.get("probe")]
    assert [e["todo_id"] for e in probe] == ["TODO-003"]
    assert probe[0]["ts"] - evs[opened]["ts"] >= 2  # not before the cooldown
    assert evs[closed]["by"] == "probe"
    # Nothing started while the breaker was open, except the probe.
    between = [e["todo_id"] for e in evs[opened:closed] if e["kind"] == "todo.started"]
    assert between == ["TODO-003"]
    assert cluster.cli_json("repo", "list")[0]["breaker_state"]["state"] == "closed"


def test_repo_reset_closes_the_breaker_and_held_todos_run(cluster: Cluster) -> None:
    sid = swept_behind_a_breaker(cluster, (1, 3600), [
        T("TODO-001", "a", "exit 1", priority="critical"),
        T("TODO-002", "a", "true"),
        T("TODO-003", "a", "true"),
    ])
    wait_until(lambda: all(cluster.checkpoint(sid, t).get("status") == "held"
                           for t in ("TODO-002", "TODO-003")), 30, "both todos held")
    listed = cluster.cli_json("repo", "list")[0]
    assert listed["breaker_state"]["state"] == "open" and listed["breaker"]["failures"] == 1
    assert cluster.status(sid)["status"] == "running"  # held, not failed: the sweep waits
    out = cluster.cli_json("repo", "reset", "a")
    assert (out["was"], out["state"]) == ("open", "closed")
    st = cluster.wait_sweep(sid)
    assert st["todos"]["TODO-002"]["status"] == st["todos"]["TODO-003"]["status"] == "succeeded"
    bad = cluster.cli("repo", "reset", "nope")
    assert bad.returncode == 2 and "unknown repo 'nope'" in bad.stderr


def test_a_capacity_one_resource_is_never_oversubscribed(cluster: Cluster) -> None:
    # One worker serves three repos; a and b share the one staging database, c does not.
    todos = [T(f"TODO-00{i}", repo, TIMED.format(s=0.4), resources=res)
             for i, (repo, res) in enumerate([("a", ["db"]), ("a", ["db"]), ("b", ["db"]),
                                              ("b", ["db"]), ("c", []), ("c", [])], start=1)]
    cluster.write_catalog({"a": 2, "b": 2, "c": 2}, todos, resources={"db": 1})
    elsewhere = cluster.root / "checkouts" / "c"  # c's checkout is not where the catalog says
    elsewhere.mkdir(parents=True)
    w = cluster.start_worker("a", extra=("--repo", "b", "--repo", "c", "--path", f"c={elsewhere}"))
    assert sorted(cluster.cli_json("workers")[0]["repos"]) == ["a", "b", "c"]
    st = cluster.wait_sweep(cluster.start_sweep())
    assert st["status"] == "succeeded", st
    spans = intervals({t.id: elsewhere if t.repo == "c" else cluster.repo_dir(t.repo)
                       for t in todos})
    assert max_overlap([spans[f"TODO-00{i}"] for i in range(1, 5)]) == 1
    assert max_overlap([spans["TODO-005"], spans["TODO-006"]]) == 2  # c is not held back
    assert w.alive()


def test_queued_todos_of_an_unattended_repo_are_said_in_watch(cluster: Cluster) -> None:
    cluster.env["COORD_UNATTENDED_AFTER"] = "1"
    cluster.write_catalog({"a": 1, "b": 1}, [T("TODO-001", "a", "true"),
                                            T("TODO-002", "b", "true")])
    cluster.start_worker("a")
    sid = cluster.start_sweep()
    watch = cluster.popen("sweep", "watch", sid)
    wait_until(lambda: any(e["kind"] == "repo.unattended" for e in cluster.events(sid)), 30,
               "repo.unattended")
    [ev] = [e for e in cluster.events(sid) if e["kind"] == "repo.unattended"]
    assert ev["repo"] == "b" and ev["todos"] == ["TODO-002"]
    cluster.start_worker("b")
    out, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err
    assert "unattended: 1 queued todo(s) of b and no live worker serves it" in err
    assert "coord worker --repo b" in err
