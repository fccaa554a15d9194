"""A `coord worker` of several repos: one worker process per share of them, under the
process a person started.

One Python process runs todos at about one core whatever the machine has: Celery's
consumer, the start and finish transitions, spawning and reaping the commands all take
turns at its interpreter lock. So `coord worker --repo a --repo b ...` forks one worker
process per usable core, at most one per repo (``--processes N`` says how many), each a
`coord worker` of its share of the repos (:func:`workers.embedded.process_groups`, the
busiest repos first), as embedded sweeps fork theirs. The process the person started (the
parent) runs no todo and, once it has forked them, talks to no Redis: it

* forwards signals, once each: its processes are in process groups of their own, so
  a terminal's Ctrl-C reaches the parent only. SIGTERM and SIGINT stop them warm
  (running todos finish), a second SIGINT cold, SIGQUIT cold, as Celery's own; SIGHUP,
  detached from a terminal, restarts the worker as Celery restarts one (a warm stop,
  then the same command line again), and stops it warm in a terminal;
* says "<name> ready." once every process is ready (each after its first liveness
  beat: `coord workers` lists all of them by then);
* starts a process that died again (the OOM killer, a crash) after a second, doubling
  up to :data:`RESTART_MAX` while it keeps dying young (one that dies before the worker
  was ready stops the worker: it cannot start); its running todos are lost with it
  (their process groups killed by the warden the processes share) and run again once
  their leases expire, as when a worker of one process dies. A process that exits 0 by
  itself was stopped on purpose (Celery's remote control): the others are stopped too;
* exits once all of them have, with the first non-zero exit code among them.

Killed (SIGKILL), the parent takes its processes with it: each gets SIGKILL from the
kernel when the parent ends (``PR_SET_PDEATHSIG``), and the todos' warden (one for
the worker's processes, started by the parent: :func:`workers.execute.shared_warden`)
kills the process groups of their todos. Only Linux has that, which is why other
platforms run a worker of several repos in one process
(:func:`workers.embedded.default_processes`). On Linux a starter forks them for the
process the person started (:mod:`workers.starter`), which then supervises them here.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from coordination.processes import die_with_parent, fork_holding

log = logging.getLogger("coord.worker")

#: Seconds before a process that died is started again: 1, 2, 4... up to this.
RESTART_MAX = 30.0
#: A process that ran this long before dying counts as having lived: its next restart
#: waits a second again.
LIVED = 60.0
#: The signals the parent handles; its processes get the default ones back (Celery
#: installs its own).
_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGCHLD)


@dataclass
class Group:
    """One worker process's share of the repos, and its life so far."""

    index: int
    repos: list[str]
    pid: int = 0
    started: float = 0.0
    failures: int = 0  # deaths in a row, each after a short life
    due: float | None = None  # when to start it again (monotonic), after a death
    ready: bool = False
    codes: list[int] = field(default_factory=list)  # exit codes, when it was asked to stop


class ProcessGroup:
    """The parent's side; :meth:`run` forks the processes and supervises them.
    ``serve(group, ready_fd)`` is a process's life, in the forked child: its exit code."""

    def __init__(self, name: str, shares: list[list[str]],
                 serve: Callable[[Group, int], int], loglevel: str = "INFO", *,
                 ready: tuple[int, int] | None = None, parent: int | None = None,
                 not_theirs: tuple[int, ...] = ()) -> None:
        """``ready``: the pipe the processes say they are ready on (the parent's, made
        before a starter forked them: workers/starter.py); ``parent``: the process
        that supervises them, when not this one (a starter's :meth:`fork_for`);
        ``not_theirs``: descriptors the processes close first (a starter's report)."""
        self.name = name
        self.loglevel = loglevel
        self.groups = [Group(i, list(repos)) for i, repos in enumerate(shares)]
        self.serve = serve
        self.forker = os.getpid()
        self.parent = self.forker if parent is None else parent
        self.signals: list[int] = []
        self.stopping: int | None = None  # the signal it is stopping with
        self.restart = False  # SIGHUP detached: run the same command line again after
        self.said_ready = False
        self.wake_r, self.wake_w = os.pipe()
        self.ready_r, self.ready_w = os.pipe() if ready is None else ready
        self._buf = b""
        self.not_theirs = not_theirs
        # Each process's channel to the todos' warden they share, until it is forked
        # (a process started again starts a warden of its own: this one's is gone)
        self.channels: dict[int, int] = {}

    # -- the parent's loop ----------------------------------------------------------
    def fork_for(self) -> list[int]:
        """In a starter (workers/starter.py): fork the processes for the parent
        that will supervise them (``parent``), their one warden first; their pids. Each
        process waits to be the parent's (the starter gone) before it goes on."""
        _say_to_console(self.loglevel)
        gc.freeze()  # what the starter made is shared by its processes, not copied
        self._fork_all()
        return [g.pid for g in self.groups]

    def _fork_all(self) -> None:
        """Each process forked, their one warden started first."""
        log.info("%s: %d worker processes for %d repos", self.name, len(self.groups),
                 sum(len(g.repos) for g in self.groups))
        from workers.execute import shared_warden  # lazy: a starter's parent stays small

        self.channels = dict(enumerate(shared_warden(len(self.groups))))
        for g in self.groups:
            self._fork(g)

    def run(self, adopted: list[int] | None = None) -> int:
        """Fork the processes (``adopted``: a starter forked them, these pids in order),
        supervise them until all have stopped; the exit code."""
        _say_to_console(self.loglevel)
        gc.freeze()  # what the parent has made so far is shared, not copied by collections
        for fd in (self.wake_r, self.wake_w, self.ready_r):
            os.set_blocking(fd, False)
        old = {sig: signal.signal(sig, self._on_signal) for sig in _HANDLED}
        old_wakeup = signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        try:
            if adopted is not None:
                for g, pid in zip(self.groups, adopted, strict=True):
                    g.pid, g.started = pid, time.monotonic()
                self._reap()  # (one that ended before the handlers were in woke nothing)
            else:
                self._fork_all()
            while any(g.pid for g in self.groups) or (
                    self.stopping is None and any(g.due is not None for g in self.groups)):
                self._turn()
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in old.items():
                signal.signal(sig, handler)
        from workers.execute import end_shared_wardens  # lazy: as in _fork_all

        end_shared_wardens()  # (their todos' warden: it ends with the last of them)
        code = next((c for g in self.groups for c in g.codes if c), 0)
        if self.restart:
            log.info("%s: restarting (SIGHUP)", self.name)
            sys.stdout.flush()
            sys.stderr.flush()
            os.execv(sys.executable, [sys.executable, *_command_line()[1:]])
        return code

    def _turn(self) -> None:
        """Wait for a signal, a process's word or death, or a restart that is due; act."""
        now = time.monotonic()
        due = [g.due for g in self.groups if g.due is not None and self.stopping is None]
        timeout = None if not due else max(0.0, min(due) - now)
        if self.signals:  # (got before its handlers were in: no wake-up byte for them)
            timeout = 0.0
        with contextlib.suppress(InterruptedError):
            select.select([self.wake_r, self.ready_r], [], [], timeout)
        _drain(self.wake_r)
        self._read_ready()
        while self.signals:
            self._forward(self.signals.pop(0))
        self._reap()
        now = time.monotonic()
        for g in self.groups:
            if self.stopping is None and g.pid == 0 and g.due is not None and g.due <= now:
                self._fork(g)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum != signal.SIGCHLD:
            self.signals.append(signum)

    def _forward(self, signum: int) -> None:
        """A person's signal to the worker: to each of its processes, once."""
        sig = signum
        if signum == signal.SIGHUP:
            self.restart = not sys.stdout.isatty()
            sig = signal.SIGTERM
        if self.stopping is None:
            log.info("%s: stopping (%s)", self.name, signal.Signals(signum).name)
            self.stopping = sig
        for g in self.groups:
            g.due = None
            if g.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(g.pid, sig)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            g = next((g for g in self.groups if g.pid == pid), None)
            if g is not None:
                self._ended(g, status)

    def _ended(self, g: Group, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        g.pid = 0
        what = f"worker process for {', '.join(g.repos)}"
        if self.stopping is not None:
            g.codes.append(code)
            return
        if code == 0:  # stopped on purpose (a remote shutdown): so is the worker
            log.info("%s: the %s stopped; stopping the others", self.name, what)
            g.codes.append(0)
            self._forward(signal.SIGTERM)
            return
        if not self.said_ready:  # it cannot start (its log says why): nor can the worker
            log.error("%s: the %s exited with %s before the worker was ready; stopping",
                      self.name, what, code)
            g.codes.append(code if code > 0 else 128 - code)
            self._forward(signal.SIGTERM)
            return
        lived = time.monotonic() - g.started
        g.failures = 1 if lived >= LIVED else g.failures + 1
        delay = min(RESTART_MAX, 2.0 ** (g.failures - 1))
        how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
        log.error("%s: the %s %s after %.0f s; starting it again in %.0f s", self.name, what,
                  how, lived, delay)
        g.due = time.monotonic() + delay

    def _read_ready(self) -> None:
        """A process's word that it is ready (its pid, a line); "ready." once all are."""
        try:
            self._buf += os.read(self.ready_r, 4096)
        except BlockingIOError:
            return
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            for g in self.groups:
                if line.strip() and g.pid == int(line):
                    g.ready = True
        if not self.said_ready and all(g.ready for g in self.groups):
            self.said_ready = True
            log.info("%s ready.", self.name)

    # -- a process's start ----------------------------------------------------------
    def _fork(self, g: Group) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        g.due, g.ready = None, False
        channel = self.channels.pop(g.index, None)
        # Held from before the fork until the child has its own handlers: one passed to it
        # meanwhile would run the parent's handler in the child and be lost there.
        pid, mask = fork_holding(_HANDLED)
        if pid != 0:  # (the parent's handlers are its own: it holds nothing)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if pid == 0:
            code = 1
            try:
                if self._child_setup(channel, mask):
                    code = self.serve(g, self.ready_w)
            except BaseException:  # noqa: BLE001 - a child never returns into the CLI
                log.exception("worker process %d stopped with an error", os.getpid())
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)  # never the parent's exit handlers or buffered output
        if channel is not None:  # the process's now: its death ends the channel
            os.close(channel)
        g.pid, g.started = pid, time.monotonic()

    def _child_setup(self, channel: int | None, mask: set[int | signal.Signals]) -> bool:
        """What a forked process does first; False when its parent is already gone.
        ``channel``: its own to the warden its todos share with the other processes';
        ``mask``: the signal mask to set once its handlers are the defaults."""
        if self.parent != self.forker:  # a starter's: the parent's once the starter is gone
            deadline = time.monotonic() + 60
            while os.getppid() == self.forker and time.monotonic() < deadline:
                time.sleep(0.001)
        # The kernel kills this process when the thread that is its parent (the parent's
        # main thread, which is the parent's only one) ends, whatever way.
        die_with_parent()
        if os.getppid() != self.parent:
            return False
        os.setpgid(0, 0)  # a terminal's signals are the parent's to forward
        signal.set_wakeup_fd(-1)
        for sig in _HANDLED:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # (one held meanwhile: now)
        for fd in (self.wake_r, self.wake_w, self.ready_r, *self.not_theirs,
                   *self.channels.values()):
            if fd >= 0:  # (the channels of processes forked after it: theirs alone)
                os.close(fd)
        self.channels = {}
        if channel is not None:
            from workers.execute import adopt_warden  # lazy: imported by serve's worker

            adopt_warden(channel)
        return True


def _command_line() -> list[str]:
    """This process's command line as it was started (``python -m MODULE ...`` too, which
    ``sys.argv`` no longer says)."""
    with open("/proc/self/cmdline", "rb") as fh:
        return [os.fsdecode(a) for a in fh.read().split(b"\0")[:-1]]


def _drain(fd: int) -> None:
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 4096):
            pass


def _say_to_console(loglevel: str) -> None:
    """The parent's own lines (its processes log through Celery's logging), on stderr
    beside theirs, at the worker's ``--loglevel``."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(
            "[%(asctime)s: %(levelname)s/coord worker] %(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.getLevelName(loglevel.upper()) if isinstance(
        logging.getLevelName(loglevel.upper()), int) else logging.INFO)
