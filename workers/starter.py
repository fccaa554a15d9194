"""`coord worker` of several repos: a parent that never loads what its processes run.

A worker of several repos forks one worker process per share of its repos
(:mod:`workers.process_group`). The parent that supervises them runs no todo, but as
the forks' parent it kept every page of its image: each page both of its processes
wrote (CPython writes to every object it touches: its reference count, the code's
counters) was then held three times, once in each process and once, unchanged, in the
parent. So on Linux the process a person starts forks, before it imports anything of
coord's, a *starter*: the starter reads the command line and the catalog, checks Redis,
imports what the worker processes run and forks them, tells the parent who they are and
exits. Its processes are then the parent's (it is their subreaper, and their
``PR_SET_PDEATHSIG`` is set once they are), whose image is a bare interpreter's: the
pages both processes wrote are held twice, the starter's copy gone with it.

The parent supervises them as before (signals, "ready.", a dead process started again,
the exit code). A process it starts again after a death is forked from its own small
image and loads what it runs itself (more of its memory is its own than a process the
starter forked). Every process is forked from the one the person started, never
executed anew: none starts dumpable, with coord's secrets in an environment a todo of
the same user could read.

When the command turns out not to be a worker of several processes (one repo, one
process, a usage error, another command that merely named ``worker``), the starter
says so or finishes it, and the parent goes on as any `coord` command (or exits with
the starter's code, its output already written).

:func:`start` is the first thing `coord` does (coordination/cli/early.py, the console
script, and the top of ``python -m coordination.cli.main``).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coordination.processes import (  # (stdlib only)
    die_with_parent,
    fork_holding,
    not_dumpable,
    subreaper,
)

#: Signals the parent passes to the starter while it starts (then to the processes).
_PASSED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)


@dataclass(frozen=True)
class Handover:
    """In the starter: where its report goes, and what its processes need of the parent."""

    parent: int  # the pid of the process the person started
    report: int  # the write end of the report's pipe
    ready: int  # the write end of the parent's ready pipe (each process says its pid)


@dataclass(frozen=True)
class Member:
    """In a process the parent started again after a death: which share it serves."""

    index: int
    repos: list[str]
    group: str  # the worker's name (the parent's)
    ready: int


#: Set in the starter (:func:`start`), read by ``workers.worker.run_worker``.
handover: Handover | None = None
#: Set in a process started again (:func:`_restarted`), read by ``run_worker``.
member: Member | None = None


def several_repos(argv: list[str]) -> bool:
    """Whether ``argv`` (without the program) may be `coord worker` of several repos in
    several processes on Linux. A guess from the words alone, before any import: a wrong
    "yes" costs a fork (the starter then runs the command itself), a wrong "no" the
    memory this module saves."""
    if not sys.platform.startswith("linux"):
        return False
    at = 0  # past the root group's options (--file/-f FILE): the command's name
    while at < len(argv) and argv[at].startswith(("--file", "-f")):
        at += 2 if argv[at] in ("--file", "-f") else 1  # (--file=FILE, -fFILE: one word)
    if argv[at:at + 1] != ["worker"]:
        return False
    rest = argv[at + 1:]
    if "--help" in rest or "-h" in rest:
        return False
    for i, word in enumerate(rest):
        if word == "--processes" and rest[i + 1:i + 2] == ["1"] or word == "--processes=1":
            return False
    repos = sum(1 for w in rest if w == "--repo" or w.startswith("--repo="))
    return repos >= 2 or any(w == "--repos" or w.startswith("--repos=") for w in rest)


def start(argv: list[str], rerun: Callable[[list[str]], None]) -> None:
    """Where `coord` begins, before it imports the CLI. For a worker of several repos
    (:func:`several_repos`): fork the starter, which returns from here and runs the
    command; this process supervises what the starter forks and exits with the worker's
    code, or returns to run the command itself when the starter says it is not a worker
    of several processes. Returns at once for any other command. ``rerun(argv)``: the
    CLI run on ``argv`` (in a process started again after a death; it exits)."""
    if not several_repos(argv):
        return
    # First: it holds coord's secrets, and every process of the worker is its fork.
    not_dumpable()
    subreaper(True)
    report_r, report_w = os.pipe()
    ready_r, ready_w = os.pipe()
    parent = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    # A signal between the fork and this process's handlers would take its default, this
    # process's end: not the starter's code, and the starter ended by its parent's death,
    # not told. So they are held from before the fork until the handlers are in (in the
    # starter until the fork is done) and delivered then.
    pid, mask = fork_holding(_PASSED)
    if pid == 0:  # the starter: on to the CLI
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        die_with_parent()
        if os.getppid() != parent:
            os._exit(1)
        os.close(report_r)
        os.close(ready_r)
        global handover
        handover = Handover(parent, report_w, ready_w)
        return
    os.close(report_w)
    pending: list[int] = []  # for the processes, should the starter have forked them
    running = [pid]  # the starter, until reaped (its pid may then be another's)

    def passed(signum: int, _frame: object) -> None:
        pending.append(signum)
        for starter in running:
            _pass(starter, signum)

    old = {sig: signal.signal(sig, passed) for sig in _PASSED}
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # (one held meanwhile: passed now)
    chunks = []
    while chunk := os.read(report_r, 65536):
        chunks.append(chunk)
    os.close(report_r)
    _, status = os.waitpid(pid, 0)
    running.clear()
    report = json.loads(b"".join(chunks)) if chunks else None
    if report is None:  # it ran the command (or failed, or was stopped): its output is out
        code = os.waitstatus_to_exitcode(status)
        sys.exit(code if code >= 0 else 128 - code)
    if report.get("single"):  # a worker of one process: this one runs it
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if pending:  # told to stop before it started
            sys.exit(128 + pending[0])
        subreaper(False)
        os.close(ready_r)
        os.close(ready_w)
        return
    sys.exit(_supervise(report, argv, ready_r, ready_w, rerun, pending))


def _pass(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _supervise(report: dict[str, Any], argv: list[str], ready_r: int, ready_w: int,
               rerun: Callable[[list[str]], None], pending: list[int]) -> int:
    """The parent's life once the starter has forked the processes: theirs to supervise
    (``pending``: signals it got meanwhile, passed on to them first)."""
    # lazy: loaded once a starter has forked processes (a command that merely names
    # `worker` never needs it)
    from workers.process_group import Group, ProcessGroup

    name = str(report["name"])
    shares = [[str(r) for r in share] for share in report["shares"]]
    pids = [int(p) for p in report["pids"]]

    def serve(group: Group, ready: int) -> int:
        return _restarted(argv, Member(group.index, list(group.repos), name, ready), rerun)

    group = ProcessGroup(name, shares, serve, loglevel=str(report["loglevel"]),
                         ready=(ready_r, ready_w))
    # The list the starter's handler appends to, still in until the group's are: one
    # got before (or meanwhile) is the group's to pass on first, none lost in between.
    group.signals = pending
    return group.run(adopted=pids)


def _restarted(argv: list[str], who: Member, rerun: Callable[[list[str]], None]) -> int:
    """A process started again after a death (forked from the parent, its setup done):
    the command line run again as that share's worker process; its exit code."""
    global member
    member = who
    try:
        rerun(argv)  # (it loads what the starter loaded)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    return 0


def report(doc: dict[str, Any]) -> None:
    """In the starter: tell the parent (``{"single": true}``: run the worker yourself;
    else the processes it forked) and end, without exit handlers (they are the
    parent's, or the processes')."""
    assert handover is not None
    data = json.dumps(doc).encode()
    while data:
        data = data[os.write(handover.report, data):]
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
