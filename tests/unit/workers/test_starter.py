"""workers/starter.py: a worker of several repos forks a starter before the CLI loads,
and the process a person started supervises what the starter forks, or runs the command
itself when the starter says it is not a worker of several processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workers.starter import several_repos

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[3]
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


@linux
@pytest.mark.parametrize(("argv", "several"), [
    (["worker", "--repo", "a", "--repo", "b"], True),
    (["--file", "eco.yaml", "worker", "--repo=a", "--repo=b", "--path", "a=x"], True),
    (["worker", "--repos", "tag:python"], True),
    (["worker", "--repos=svc-*", "--processes", "2"], True),
    (["worker", "--repo", "a"], False),
    (["worker", "--repo", "a", "--repo", "b", "--processes", "1"], False),
    (["worker", "--repo", "a", "--repo", "b", "--processes=1"], False),
    (["worker", "--repo", "a", "--repo", "b", "--help"], False),
    (["workers", "--repo", "a", "--repo", "b"], False),
    (["-f", "eco.yaml", "worker", "--repo", "a", "--repo", "b"], True),
    (["--file=eco.yaml", "worker", "--repos", "a*"], True),
    (["-feco.yaml", "worker", "--repos", "a*"], True),
    (["--file=x.yaml", "-f", "eco.yaml", "worker", "--repos", "a*"], True),
    (["todo", "create", "--task", "worker", "--repo", "a", "--repo", "b"], False),
    (["--file", "worker", "todo", "list", "--repo", "a", "--repo", "b"], False),
    (["todo", "list"], False),
    ([], False),
])
def test_which_command_lines_get_a_starter(argv: list[str], several: bool) -> None:
    assert several_repos(argv) is several


# What `coord` does: start(), then the command (``rerun`` is not called here).
SCRIPT = """
import os, sys, time
from workers import starter

started = os.getpid()
starter.start(["worker", "--repo", "a", "--repo", "b"], rerun=lambda argv: None)
who = "starter" if starter.handover is not None else "started"
print(who, os.getpid(), os.getppid(), flush=True)
if who == "starter":
    mode = sys.argv[1]
    if mode == "single":
        starter.report({"single": True})
    if mode == "sleep":
        time.sleep(30)
    sys.exit(3)  # a usage error, say: its code is the worker's
sys.exit(0)
"""


# The same, with a SIGTERM to the started process the instant its fork returns: before
# its handlers are in (the worst moment; a person's Ctrl-C can land there).
EARLY = """
import os, signal
real_fork = os.fork

def fork():
    pid = real_fork()
    if pid:
        os.kill(os.getpid(), signal.SIGTERM)
    return pid

os.fork = fork
""" + SCRIPT


def run(mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)


@linux
def test_a_command_the_starter_ends_is_the_started_process_s_exit_code() -> None:
    r = run("exit")
    lines = r.stdout.splitlines()
    assert r.returncode == 3, r
    [(who, pid, ppid)] = [line.split() for line in lines]  # once: the starter's
    assert who == "starter" and pid != ppid


@linux
def test_a_worker_of_one_process_is_run_by_the_started_process() -> None:
    r = run("single")
    assert r.returncode == 0, r
    assert [line.split()[0] for line in r.stdout.splitlines()] == ["starter", "started"]


@linux
def test_a_signal_while_the_starter_starts_is_passed_to_it() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, "sleep"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("starter")
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 128 + signal.SIGTERM  # the starter's end, passed on
        assert time.monotonic() - start < 10
    finally:
        proc.kill()
        proc.wait()


@linux
def test_a_signal_the_instant_the_starter_is_forked_is_held_and_passed_to_it() -> None:
    r = subprocess.run([sys.executable, "-c", EARLY, "sleep"], cwd=ROOT, capture_output=True,
                       text=True, timeout=30)
    # Not -SIGTERM (the started process ended by it, the starter left to its
    # parent-death signal): the signal held until its handlers were in, then passed on.
    assert r.returncode == 128 + signal.SIGTERM, r


# The starter forks two stand-in processes and reports them; ``{at_run}`` is what
# happens as the parent begins to supervise them, before the group's handlers are in
# (while the starter's forwarding handler still is); ``{life}`` each stand-in's life
# once the parent has adopted it.
ADOPTED = """
import os, signal, sys, time
from coordination.processes import state
from workers import process_group, starter

real_run = process_group.ProcessGroup.run

def run(self, adopted=None):
    {at_run}
    return real_run(self, adopted)

process_group.ProcessGroup.run = run
starter.start(["worker", "--repo", "a", "--repo", "b"], rerun=lambda argv: None)
assert starter.handover is not None
forker, pids = os.getpid(), []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        os.close(starter.handover.report)  # (the starter's: its end is the report's)
        deadline = time.monotonic() + 30
        while os.getppid() == forker and time.monotonic() < deadline:
            time.sleep(0.001)  # (adopted by the parent once the starter is gone)
        {life}
        os._exit(1)
    pids.append(pid)
starter.report({{"name": "w", "shares": [["a"], ["b"]], "pids": pids, "loglevel": "ERROR"}})
"""


def adopted(at_run: str, life: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", ADOPTED.format(at_run=at_run, life=life)],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)


@linux
def test_a_signal_as_the_parent_takes_the_processes_over_is_passed_to_them() -> None:
    # (the stand-ins never say they are ready: the signal is passed on at once)
    r = adopted("os.kill(os.getpid(), signal.SIGTERM)", "time.sleep(30)")
    assert r.returncode == 0, r  # both stopped at the SIGTERM passed on: 0


@linux
def test_processes_that_ended_before_the_parent_took_them_over_are_seen() -> None:
    """Dead before the supervisor's SIGCHLD handler was in (so no wake-up came of it):
    reaped at its start, the worker stopped with their code, not waiting for ever."""
    r = adopted('while not all(state(p) == "Z" for p in adopted): time.sleep(0.01)',
                "os._exit(3)")
    assert r.returncode == 3, r
