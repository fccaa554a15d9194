"""Counts a process's Redis round trips, for bench/peers.py (issue #82): loaded at start
(as ``sitecustomize``) by every process whose PYTHONPATH begins with this folder, coord's
and raw Celery's alike, when ``COORD_BENCH_RTT`` names a folder.

A round trip is one send of redis-py's connections (``send_packed_command``): a command,
a pipeline or a transaction sent at once, a script call, a blocking pop. coord and raw
Celery (kombu) both talk to Redis through redis-py, so the same count applies to both,
and it does not depend on the machine's load. Each process keeps its running total in
``<folder>/<pid>`` (written every 0.1 s by a thread of its own, and at exit); the bench
sums a contender's files before and after a sweep. Never imported by coord itself."""

from __future__ import annotations

import atexit
import os
import threading


def _install(folder: str) -> None:
    from redis.connection import AbstractConnection

    state = {"n": 0, "pid": os.getpid(), "said": -1}
    lock = threading.Lock()
    real = AbstractConnection.send_packed_command

    def send_packed_command(self, command, check_health=True):  # type: ignore[no-untyped-def]
        with lock:
            state["n"] += 1
        return real(self, command, check_health)

    AbstractConnection.send_packed_command = send_packed_command  # type: ignore[method-assign]

    def write() -> None:
        n = state["n"]
        if n == state["said"]:
            return
        state["said"] = n
        path = os.path.join(folder, str(os.getpid()))
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            f.write(str(n))
        os.replace(tmp, path)

    def loop() -> None:
        ev = threading.Event()
        while not ev.wait(0.1):
            try:
                write()
            except OSError:
                return

    def start() -> None:
        threading.Thread(target=loop, name="bench-rtt", daemon=True).start()

    def forked() -> None:  # a forked child counts its own from 0
        state["n"], state["said"], state["pid"] = 0, -1, os.getpid()
        start()

    os.register_at_fork(after_in_child=forked)
    atexit.register(lambda: write())
    start()


_folder = os.environ.get("COORD_BENCH_RTT")
if _folder and os.path.isdir(_folder):
    try:
        _install(_folder)
    except ImportError:  # a process with no redis-py: nothing to count
        pass
