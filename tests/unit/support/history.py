"""Shared history helpers for unit tests: known data sets written straight into a store."""

from __future__ import annotations

import time
from typing import Any

from coordination.runtime.history import HistoryStore

DAY = 86400.0


def todo(sweep_id: str, todo_id: str, repo: str, status: str, duration: float | None,
         at: float, *, run: int = 0, title: str = "", reason: str | None = None,
         tail: str = "", plan: str = "PLAN-001", blocked_by: list[str] | None = None,
         ) -> dict[str, Any]:
    return {"blocked_by": blocked_by or [],
            "started_at": None if duration is None else at - duration,
            "sweep_id": sweep_id, "run": run, "plan": plan, "todo_id": todo_id, "repo": repo,
            "title": title or f"do {todo_id}", "status": status, "attempts": 1,
            "exit_code": 0 if status == "succeeded" else 1, "duration": duration,
            "worker": "w1", "reason": reason, "output_tail": tail, "finished_at": at}


def run(store: HistoryStore, sweep_id: str, todos: list[dict[str, Any]], at: float, *,
        status: str = "succeeded", reason: str | None = None, run_no: int = 0,
        plan: str = "PLAN-001", started: float | None = None) -> bool:
    counts: dict[str, int] = {}
    for t in todos:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    sweep = {"sweep_id": sweep_id, "run": run_no, "plan": plan, "sweep_kind": "plan",
             "status": status, "reason": reason,
             "started_at": at - 10 if started is None else started, "finished_at": at,
             "counts": counts, "todos": len(todos)}
    return store.record(sweep, todos)


def now() -> float:
    return time.time()
