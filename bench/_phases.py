"""`coord ARGS...` run in this process with the phases of `plan sweep --wait` clocked:
bench/fixed_cost.py's breakdown of the time a sweep's command spends outside the sweep.

Each function named in :data:`CLOCKED` is wrapped once its module is imported (an import
hook: nothing is imported earlier than coord imports it, so the start-up is as a user's),
and the wall-clock times of its first call and its last return are written, as JSON, to
the file named by ``$PHASES_OUT`` when the process exits (``{"probe": start of this
script, "calls": {name: [entered, returned]}}``).

    PHASES_OUT=phases.json python bench/_phases.py --file CATALOG plan sweep PLAN --wait --json
"""

from __future__ import annotations

import atexit
import functools
import importlib.abc
import importlib.machinery
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

PROBE = time.time()

#: module -> the names clocked in it (``Class.method`` for a method).
CLOCKED: dict[str, tuple[str, ...]] = {
    "coordination.cli.plan": ("sweep_cmd",),
    "coordination.launch": ("prepare", "Launch.start", "settle"),
    "coordination.cli.sweep": ("follow_sweep",),
}

calls: dict[str, list[float]] = {}


def clocked(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        span = calls.setdefault(name, [time.time(), 0.0])
        try:
            return fn(*args, **kwargs)
        finally:
            span[1] = time.time()

    return wrapper


def clock(module: ModuleType, names: Sequence[str]) -> None:
    for name in names:
        owner_name, _, attr = name.rpartition(".")
        owner: Any = getattr(module, owner_name) if owner_name else module
        target = getattr(owner, attr)
        if hasattr(target, "callback"):  # a click command: the function it calls
            target.callback = clocked(target.callback, name)
        else:
            setattr(owner, attr, clocked(target, name))


class ClockOnImport(importlib.abc.MetaPathFinder):
    """Finds the modules of :data:`CLOCKED` as usual, and clocks them once executed."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in CLOCKED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            clock(module, CLOCKED[fullname])

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def write() -> None:
    out = os.environ.get("PHASES_OUT")
    if out:
        with open(out, "w", encoding="utf-8") as f:
            json.dump({"probe": PROBE, "calls": calls}, f)


if __name__ == "__main__":
    sys.meta_path.insert(0, ClockOnImport())
    atexit.register(write)
    sys.argv = ["coord", *sys.argv[1:]]
    from coordination.cli.main import main

    main()
