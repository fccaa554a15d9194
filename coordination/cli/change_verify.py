"""The merge train's verification: a change's verify todos, each run as `coord todo run`
in a child process (its own one-todo sweep, lease, events and history, as by hand).

The worker records each verify todo's end (sealed) for the landing rule; what this
returns is why the train drops the change: which todo, its exit code, its last line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coordination.change.model import ChangePlan


def _why(tid: str, proc: subprocess.CompletedProcess[str]) -> str:
    """Why ``coord todo run TID --wait --json`` did not succeed, from the sweep it ran
    (its status document): the todo's status, exit code and last line of output."""
    from coordination.sweeps.reading import last_lines  # lazy: only a failure needs it

    doc: Any = None
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        pass
    entry = doc.get("todos", {}).get(tid) if isinstance(doc, dict) else None
    if isinstance(entry, dict):
        status = entry.get("status") or "failed"
        code = entry.get("exit_code")
        lines = [ln for _, part in last_lines(entry.get("output_tail"), 1) for ln in part]
        last = lines[-1].strip() if lines else (entry.get("reason") or "")
        sweep = doc.get("sweep_id")
        return (f"verify todo {tid} {status}" + (f" (exit {code})" if code is not None else "")
                + (f": {last}" if last else "") + (f" [sweep {sweep}]" if sweep else ""))
    text = [ln.strip() for ln in (proc.stderr.strip() or proc.stdout.strip()).splitlines()
            if ln.strip()]
    said = [ln for ln in text if ln.lower().startswith("error")][:1] or text[-1:]
    return (f"verify todo {tid} failed: coord todo run exited {proc.returncode}"
            + (f": {said[0]}" if said else ""))


def verify_with_sweep(file: Path, *, require_workers: bool = False
                      ) -> Callable[[ChangePlan], str | None]:
    """``require_workers``: a todo no live worker serves is refused at once (said
    why) instead of waiting in the queue (a revert says so and carries on when run
    again)."""
    def verify(cp: ChangePlan) -> str | None:
        if not cp.verify_todos:
            return f"{cp.plan} has no verify todo"
        for tid in cp.verify_todos:
            proc = subprocess.run(
                [sys.executable, "-m", "coordination.cli.main", "--file", str(file), "todo",
                 "run", tid, "--wait", "--ignore-blockers", "--no-sync", "--json",
                 *(["--require-workers"] if require_workers else [])],
                capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                return _why(tid, proc)
        return None

    return verify
