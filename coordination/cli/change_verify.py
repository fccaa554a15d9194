"""The merge train's verification: a change's verify todos, each run as `coord todo run`
in a child process (its own one-todo sweep, lease, events and history, as by hand)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from coordination.change.model import ChangePlan


def verify_with_sweep(file: Path) -> Callable[[ChangePlan], str | None]:
    def verify(cp: ChangePlan) -> str | None:
        if not cp.verify_todos:
            return f"{cp.plan} has no verify todo"
        for tid in cp.verify_todos:
            proc = subprocess.run(
                [sys.executable, "-m", "coordination.cli.main", "--file", str(file), "todo",
                 "run", tid, "--wait", "--ignore-blockers", "--no-sync", "--json"],
                capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
                return f"verify todo {tid} failed ({last})"
        return None

    return verify
