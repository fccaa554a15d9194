"""`plan sweep --merge-chains` on a real distributed sweep: a chain of same-repo todos
(lib: 1 -> 2 -> 3) is one broker message, run by one worker; each of its todos keeps
its own start, checkpoint, events, retries and outcome; what follows the chain in
another repo, and a todo beside it, are sent as usual; a failure inside the chain
ends the chain there (its dependents skipped)."""

from __future__ import annotations

import pytest

from tests.integration.helpers import PLAN, TIMED, Cluster, T, intervals

pytestmark = pytest.mark.timeout(180)


def test_a_chain_runs_as_one_task_each_todo_keeping_its_own_record(cluster: Cluster) -> None:
    flaky = cluster.root / "flaky"
    cluster.write_catalog({"lib": 1, "app": 1}, [
        T("TODO-001", "lib", TIMED.format(s=0.2)),
        # fails its first attempt, succeeds its retry: the retry stays the todo's own
        T("TODO-002", "lib", f"{TIMED.format(s=0.2)}; test -e {flaky} || "
          f"{{ touch {flaky}; exit 1; }}", blocked_by=["TODO-001"], retries=1),
        T("TODO-003", "lib", TIMED.format(s=0.2), blocked_by=["TODO-002"]),
        T("TODO-004", "app", TIMED.format(s=0.2), blocked_by=["TODO-003"]),
        T("TODO-005", "app", TIMED.format(s=0.2)),
    ])
    cluster.start_workers(["lib", "app"])
    st = cluster.cli_json("plan", "sweep", PLAN, "--merge-chains", "--wait", timeout=150)
    assert st["status"] == "succeeded", (st, cluster.log_tails())
    assert st["strategy"] == "eager"
    sid = st["sweep_id"]

    (lib,) = [w for w in cluster.workers if w.repo == "lib"]
    assert lib.log_text().count(" received") == 1, lib.log_text()[-3000:]  # one message
    status = cluster.cli_json("sweep", "status", sid)
    todos = status["todos"]
    assert all(todos[t]["status"] == "succeeded" for t in todos), todos
    assert todos["TODO-002"]["attempts"] == 2 and todos["TODO-001"]["attempts"] == 1
    assert len({todos[t]["worker"] for t in ("TODO-001", "TODO-002", "TODO-003")}) == 1
    kinds = [(e["kind"], e.get("todo_id")) for e in cluster.events(sid)]
    for t in ("TODO-001", "TODO-002", "TODO-003", "TODO-004", "TODO-005"):
        assert kinds.count(("todo.started", t)) >= 1 and kinds.count(("todo.succeeded", t)) == 1
    # The metrics say one message to lib and three todos handed to its workers (0.5's
    # celery_task_sent_total counted three "messages")
    from prometheus_client import generate_latest

    from coordination.ops.metrics import registry

    metrics = generate_latest(registry(cluster.rt, cluster.eco)).decode()
    assert 'celery_task_sent_total{name="coord.run_todo",queue_name="coord.repo.lib"} 1.0' \
        in metrics, metrics
    assert 'coord_todos_dispatched_total{repo="lib"} 3.0' in metrics, metrics
    assert 'coord_todos_dispatched_total{repo="app"} 2.0' in metrics, metrics
    spans = intervals({t: cluster.repo_dir("lib") for t in ("TODO-001", "TODO-002", "TODO-003")}
                      | {t: cluster.repo_dir("app") for t in ("TODO-004", "TODO-005")})
    assert spans["TODO-001"][1] <= spans["TODO-002"][0]
    assert spans["TODO-002"][1] <= spans["TODO-003"][0] <= spans["TODO-003"][1] <= \
        spans["TODO-004"][0]


def test_a_failure_in_the_chain_ends_it_there(cluster: Cluster) -> None:
    out = cluster.root / "ran3"
    cluster.write_catalog({"lib": 1}, [
        T("TODO-001", "lib", "true"),
        T("TODO-002", "lib", "exit 4", blocked_by=["TODO-001"]),
        T("TODO-003", "lib", f"touch {out}", blocked_by=["TODO-002"]),
    ])
    cluster.start_workers(["lib"])
    st = cluster.cli_json("plan", "sweep", PLAN, "--merge-chains", "--wait", expect=1,
                          timeout=150)
    assert st["status"] == "failed"
    todos = cluster.cli_json("sweep", "status", st["sweep_id"])["todos"]
    assert [todos[t]["status"] for t in ("TODO-001", "TODO-002", "TODO-003")] == [
        "succeeded", "failed", "skipped"]
    assert todos["TODO-002"]["exit_code"] == 4 and not out.exists()
