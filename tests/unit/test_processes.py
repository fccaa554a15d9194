"""coordination.processes: a process's state and liveness, read as the kernel says them.

``gitsafe._stop`` waits on :func:`processes.state` for a stopped git before it reads its
children, and every "is its runner alive" check goes through :func:`processes.alive`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordination import processes
from tests.waiting import wait_for

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A `sleep` whose command name holds ") S " (comm may hold spaces and parentheses:
    the state is the field after the *last* ')'), killed and reaped at the end."""
    odd = tmp_path / "a) S (b"
    odd.symlink_to("/bin/sleep")
    proc = subprocess.Popen([str(odd), "30"])
    yield proc
    if proc.returncode is None:
        proc.kill()
        proc.wait(timeout=10)


def test_state_reads_running_stopped_and_zombie_past_an_odd_command_name(
        sleeper: subprocess.Popen[bytes]) -> None:
    pid = sleeper.pid
    wait_for(lambda: processes.state(pid) == "S", what="the sleeper asleep")
    assert processes.alive(pid)

    os.kill(pid, signal.SIGSTOP)
    wait_for(lambda: processes.state(pid) == "T", what="the sleeper stopped")
    assert processes.alive(pid)  # stopped is still alive

    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: processes.state(pid) == "Z", what="the sleeper a zombie")
    assert not processes.alive(pid)  # a zombie does not run

    sleeper.wait(timeout=10)
    assert processes.state(pid) is None  # reaped: nothing to read
    assert not processes.alive(pid)


def test_state_of_this_process_and_of_no_process() -> None:
    assert processes.state(os.getpid()) == "R"  # reading its own stat, it runs
    assert processes.state(2**22 + 1) is None  # above pid_max's ceiling: never a process
    assert not processes.alive(0) and not processes.alive(-1)
