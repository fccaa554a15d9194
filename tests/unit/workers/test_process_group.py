"""The parent of a worker of several repos (#64): it forks a process per share, starts
one that dies again once the worker was ready, and stops when one cannot start. Real
forks of this process, each running a small stand-in for a worker's life (the real ones:
tests/integration/test_worker_processes.py)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.waiting import wait_for
from workers.process_group import Group, ProcessGroup

pytestmark = pytest.mark.timeout(60)


def lives(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_a_process_that_cannot_start_stops_the_worker_with_its_code(tmp_path: Path) -> None:
    log = tmp_path / "lives"

    def serve(group: Group, ready: int) -> int:
        with open(log, "a") as fh:
            fh.write(f"{group.index} ")
        return 3 if group.index == 1 else _until_term(ready)

    code = ProcessGroup("w", [["a"], ["b"]], serve, loglevel="ERROR").run()
    assert code == 3
    assert sorted(lives(log)) == ["0", "1"]  # started once each: never again


def test_a_process_that_dies_once_ready_is_started_again(tmp_path: Path) -> None:
    log = tmp_path / "lives"

    def serve(group: Group, ready: int) -> int:
        with open(log, "a") as fh:
            fh.write(f"{group.index} ")
        if group.index == 1 and lives(log).count("1") == 1:
            os.write(ready, b"%d\n" % os.getpid())
            time.sleep(0.5)  # (the other says it is ready meanwhile)
            os._exit(9)  # dies, as the OOM killer would have it
        return _until_term(ready)

    def stop_once_restarted() -> None:
        wait_for(lambda: lives(log).count("1") == 2 or None, 30, "the second life")
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)  # to the parent: forwarded to each

    threading.Thread(target=stop_once_restarted, daemon=True).start()
    code = ProcessGroup("w", [["a"], ["b"]], serve, loglevel="ERROR").run()
    assert code == 0
    assert sorted(lives(log)) == ["0", "1", "1"]


def _until_term(ready: int) -> int:
    """Say ready, then wait for SIGTERM and stop cleanly (as Celery's warm shutdown)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    os.write(ready, b"%d\n" % os.getpid())
    stop.wait(30)
    return 0 if stop.is_set() else 1


def test_a_signal_to_a_process_before_its_handlers_are_its_own_is_not_lost(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGTERM the instant a process is forked (the parent's handlers still in it) is
    held until its handlers are the defaults and then ends it: not run by the parent's
    handler in the child and lost there, the process serving on as if never told."""
    log = tmp_path / "lives"
    real_fork, forks = os.fork, []

    def fork() -> int:
        forks.append(1)
        pid = real_fork()
        if pid == 0 and len(forks) == 1:  # the first process, at once
            os.kill(os.getpid(), signal.SIGTERM)
        return pid

    def serve(group: Group, ready: int) -> int:
        with open(log, "a") as fh:
            fh.write(f"{group.index} ")
        return 0

    monkeypatch.setattr(os, "fork", fork)
    code = ProcessGroup("w", [["a"], ["b"]], serve, loglevel="ERROR").run()
    assert "0" not in lives(log), lives(log)  # it never served: the signal ended it
    assert code != 0
