"""The Celery task layer: what a worker does with a todo that is not its repo's."""

from __future__ import annotations

from typing import Any

import pytest

from workers.runner import WorkerInfo

pytestmark = pytest.mark.timeout(60)


def test_worker_refuses_a_todo_of_another_repo_and_reroutes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import tasks
    from workers.app import create_app

    app = create_app()
    sent: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(app, "send_task", lambda name, **kw: sent.append((name, kw)))
    ran: list[Any] = []
    monkeypatch.setattr("workers.runner.run_todo", lambda *a, **k: ran.append(a))
    tasks.register_worker(WorkerInfo(repo="api", name="api@test"))
    try:
        result = app.tasks["coord.run_todo"].apply(
            kwargs={"sweep_id": "S", "plan_id": "PLAN-001", "todo_id": "TODO-007", "repo": "web"},
            task_id="S:TODO-007:0",
        )
    finally:
        tasks.register_worker(WorkerInfo())
    assert ran == []  # never executed here
    assert result.state == "IGNORED"  # not counted as a result of this delivery
    assert len(sent) == 1
    name, kw = sent[0]
    assert name == "coord.run_todo"
    assert kw["queue"] == "coord.repo.web"
    assert kw["task_id"] == "S:TODO-007:0"  # same id: a duplicate, not a new todo
    assert kw["kwargs"]["repo"] == "web" and kw["kwargs"]["todo_id"] == "TODO-007"


def test_worker_of_the_right_repo_runs_its_todo(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import tasks
    from workers.app import create_app
    from workers.runner import Outcome

    app = create_app()
    ran: list[Any] = []

    def fake_run(rt: Any, sweep_id: str, todo_id: str, info: WorkerInfo, run: Any = None) -> Any:
        ran.append((sweep_id, todo_id, info.repo))
        return Outcome.done, {"status": "succeeded", "exit_code": 0}

    monkeypatch.setattr("workers.runner.run_todo", fake_run)
    tasks.register_worker(WorkerInfo(repo="web", name="web@test"))
    try:
        result = app.tasks["coord.run_todo"].apply(
            kwargs={"sweep_id": "S", "plan_id": "PLAN-001", "todo_id": "TODO-007", "repo": "web"},
        )
    finally:
        tasks.register_worker(WorkerInfo())
    assert ran == [("S", "TODO-007", "web")]
    assert result.state == "SUCCESS" and result.result["status"] == "succeeded"


def test_a_worker_of_several_repos_runs_theirs_in_their_checkouts_and_reroutes_others(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import tasks
    from workers.app import create_app
    from workers.runner import Outcome

    app = create_app()
    sent: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(app, "send_task", lambda name, **kw: sent.append((name, kw)))
    ran: list[Any] = []

    def fake_run(rt: Any, sweep_id: str, todo_id: str, info: WorkerInfo, run: Any = None) -> Any:
        ran.append((todo_id, sorted(info.repos)))
        return Outcome.done, {"status": "succeeded", "exit_code": 0}

    monkeypatch.setattr("workers.runner.run_todo", fake_run)
    info = WorkerInfo(paths={"api": "/src/api", "web": "/src/web"}, name="api+web@test")
    assert info.checkout("web") == "/src/web" and info.checkout("jobs") is None
    tasks.register_worker(info)
    try:
        for todo, repo in (("TODO-001", "api"), ("TODO-002", "web"), ("TODO-003", "jobs")):
            app.tasks["coord.run_todo"].apply(
                kwargs={"sweep_id": "S", "plan_id": "P", "todo_id": todo, "repo": repo})
    finally:
        tasks.register_worker(WorkerInfo())
    assert ran == [("TODO-001", ["api", "web"]), ("TODO-002", ["api", "web"])]
    assert [kw["queue"] for _n, kw in sent] == ["coord.repo.jobs"]  # not ours: re-routed
