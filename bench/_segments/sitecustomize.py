"""Times the parts of a todo's turn in a `coord worker`, for bench/todo_path.py (issue
#82): loaded at start (as ``sitecustomize``) by a process whose PYTHONPATH begins with
this folder, when ``COORD_BENCH_SEGMENTS`` names a file. It wraps the functions a turn
goes through (the start script's call, the spawn, the supervisor, the finish script's
call...) so that each appends ``<thread> <mark> <time.time()> <time.thread_time()>`` to
that file as it is entered (``>``) and left (``<``); the bench reads them back per turn
(the thread's CPU beside the wall: what the turn itself spent, whatever the load). The wrapping costs
a few microseconds a mark, in the worker only. Never imported by coord itself."""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Any

#: (module, attribute) of each function timed; ``Class.method`` for a method.
TIMED = (
    ("workers.runner", "_run_one"),
    ("coordination.runtime.transitions", "Transitions._start"),
    ("workers.runner", "_prepare"),
    ("workers.execute", "_spawn"),
    ("workers.execute", "_Supervisor.run"),
    ("workers.runner", "_read_outputs"),
    ("coordination.runtime.transitions", "Transitions._finish"),
)


def _install(path: str) -> None:
    import importlib

    out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the process's life
    lock = threading.Lock()

    def mark(what: str) -> None:
        line = f"{threading.get_ident()} {what} {time.time():.6f} {time.thread_time():.6f}\n"
        with lock:
            out.write(line)

    for module, name in TIMED:
        mod = importlib.import_module(module)
        owner: Any = mod
        attr = name
        if "." in name:
            cls, attr = name.split(".")
            owner = getattr(mod, cls)
        real = getattr(owner, attr)

        def timed(*a: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            mark(_name + ">")
            try:
                return _real(*a, **kw)
            finally:
                mark(_name + "<")

        functools.update_wrapper(timed, real)
        setattr(owner, attr, timed)


if os.environ.get("COORD_BENCH_SEGMENTS"):
    _install(os.environ["COORD_BENCH_SEGMENTS"])
