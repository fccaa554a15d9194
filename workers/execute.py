"""Run one todo's shell command on a worker.

A todo is an arbitrary shell command from the catalog (``make test``, a
script that starts servers in the background, ...). What a worker needs from
running it:

* **Nothing outlives the todo.** The command runs in its own session and
  process group, and every process left in that group when the command's
  shell exits is killed. The group is also killed when the *worker* dies,
  even by SIGKILL, through the guard described below.
* **Bounded resources.** stdout and stderr are read concurrently into ring
  buffers holding only the last ``tail_bytes`` of each; a todo printing
  gigabytes costs no memory and little CPU (large reads, large pipes).
* **Every wait ends.** A timeout, or a ``should_stop`` callback (lease lost,
  sweep cancelled), kills the group: SIGTERM, then SIGKILL after
  ``kill_grace`` seconds.
* **No exceptions for the command's failures.** A command that cannot start
  (missing cwd, ...) gives ``outcome="error"``; a failing one gives its exit
  code.

The guard
---------
``PR_SET_PDEATHSIG`` is not used: it fires when the spawning *thread* exits
(workers use thread pools) and only reaches the direct child. Instead the
worker creates a pipe and keeps its write end; the read end becomes the
shell's stdin. The shell runs :data:`_GUARD_SCRIPT`, which

1. moves the pipe to fd 3 and points stdin at ``/dev/null``;
2. double-forks a tiny guard subshell (so the command's own ``wait`` never
   waits for it) that ignores TERM/INT/HUP/QUIT, has its stdout/stderr on
   ``/dev/null`` (so it never keeps the output pipes open), blocks in
   ``read`` on fd 3 and, at EOF, runs ``kill -KILL 0``: SIGKILL to its whole
   process group, i.e. the todo's group;
3. closes fd 3 and ``eval``\\ s the command in the shell itself, so
   ``exit N``, ``$$``, ``wait`` and background jobs behave as with
   ``sh -c command``.

Only the worker holds the write end (it is close-on-exec, and subprocess is
used with ``close_fds=True``, so other todos' children never inherit it).
EOF therefore arrives exactly when the worker closes it - after the command's
shell has exited, to sweep up leftovers - or when the kernel closes it
because the worker died. Processes that leave the group themselves
(``setsid``, ``set -m``) escape the guard, as they would escape any
group-based kill.

Exit codes
----------
``exit_code`` is the shell's exit status, 0-255. If the shell itself was
killed by signal N (e.g. the command ``exec``-ed a program that crashed) it is
reported as ``128 + N``, as a shell reports a child killed by a signal. When
run_command killed the group (timeout, stop) ``exit_code`` is ``None``.
"""

from __future__ import annotations

import fcntl
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["ExecResult", "run_command"]

SHELL = "/bin/sh"

# $0 is "coord-todo" (shows in the shell's error messages), $1 the command.
# `eval "shift; $1"` expands $1 first, then runs with no positional parameters,
# like `sh -c command` would.
_GUARD_SCRIPT = r"""exec 3<&0 </dev/null
( ( trap '' TERM INT HUP QUIT; read _ <&3; kill -KILL 0 ) >/dev/null 2>&1 & )
exec 3<&-
eval "shift; $1"
"""

_READ_SIZE = 1 << 20
# Bigger pipes mean fewer wake-ups for chatty commands. Linux caps unprivileged
# requests at /proc/sys/fs/pipe-max-size (1 MiB by default); failures are ignored.
_PIPE_SIZE = 1 << 20
_MAX_WAIT = 3600.0


@dataclass
class ExecResult:
    """What happened to one command. ``outcome`` says how it ended:

    ``"exited"`` on its own, ``"timeout"``, ``"stopped"`` because
    ``should_stop`` asked (``reason`` is what it returned), or ``"error"``
    when it could not be started.
    """

    exit_code: int | None
    outcome: str
    reason: str | None
    duration: float
    stdout_tail: str
    stderr_tail: str
    stdout_bytes: int
    stderr_bytes: int
    pid: int | None

    @property
    def ok(self) -> bool:
        """True only for a command that ran to completion and exited 0."""
        return self.outcome == "exited" and self.exit_code == 0

    def output_tail(self, limit: int = 4096) -> str:
        """A short combined tail for status displays.

        The last ``limit`` characters of stdout, then of stderr, each under a
        label that says when it was truncated; empty streams are left out.
        """
        parts: list[str] = []
        for name, text, total in (
            ("stdout", self.stdout_tail, self.stdout_bytes),
            ("stderr", self.stderr_tail, self.stderr_bytes),
        ):
            if not text:
                continue
            shown = text[-limit:] if limit > 0 else ""
            if len(shown) == len(text) == total:
                label = f"--- {name} ---"
            else:
                label = f"--- {name} (last {len(shown)} chars of {total} bytes) ---"
            parts.append(f"{label}\n{shown}")
        return "\n".join(parts)


class _Tail:
    """Keeps the last ``limit`` bytes of a stream and counts all of it.

    The buffer may grow to twice the limit before it is trimmed, so trimming
    (a memmove) is amortised over at least ``limit`` bytes of input.
    """

    __slots__ = ("limit", "buf", "total")

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self.buf = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        if self.limit == 0:
            return
        if len(data) >= self.limit:
            self.buf[:] = data[-self.limit :]
            return
        self.buf += data
        if len(self.buf) > 2 * self.limit:
            del self.buf[: len(self.buf) - self.limit]

    def text(self) -> str:
        data = self.buf[-self.limit :] if self.limit else b""
        return bytes(data).decode("utf-8", errors="replace")


def _signal_exit_code(returncode: int) -> int:
    """Popen's ``-N`` (killed by signal N) as a shell would report it."""
    return 128 - returncode if returncode < 0 else returncode


def _start_error(cwd: str, exc: Exception) -> str:
    """A reason for a failed start that names the path at fault."""
    if isinstance(exc, OSError) and exc.filename is not None and os.fsdecode(exc.filename) == cwd:
        if isinstance(exc, FileNotFoundError):
            return f"cannot start: cwd {cwd} does not exist"
        if isinstance(exc, NotADirectoryError):
            return f"cannot start: cwd {cwd} is not a directory"
        if isinstance(exc, PermissionError):
            return f"cannot start: cwd {cwd} is not accessible (permission denied)"
        return f"cannot start: cwd {cwd}: {exc.strerror or exc}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"cannot start {os.fsdecode(exc.filename)}: {exc.strerror or exc}"
    return f"cannot start: {exc}"


def _close(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def run_command(
    command: str,
    *,
    cwd: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    timeout: float,
    tail_bytes: int = 64 * 1024,
    should_stop: Callable[[], str | None] | None = None,
    on_start: Callable[[int], None] | None = None,
    poll: float = 0.1,
    kill_grace: float = 2.0,
) -> ExecResult:
    """Run ``command`` with ``/bin/sh`` in ``cwd`` and wait for it, within ``timeout`` s.

    ``env`` is added on top of ``os.environ``; stdin is ``/dev/null``.
    ``on_start(pid)`` is called once the shell runs; the pid is also the
    process group id. ``should_stop()`` is polled about every ``poll``
    seconds; a non-None return is the reason to stop: the group is killed and
    the outcome is ``"stopped"``.

    Exceptions raised by ``on_start`` or ``should_stop`` propagate, after the
    command's process group has been killed and reaped: a failing callback
    never leaves a todo running unsupervised.

    Safe to call from several threads at once; calls share no state.
    """
    cwd_s = os.fspath(cwd)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)

    start = time.monotonic()
    guard_r: int | None = None
    guard_w: int | None = None
    out_r: int | None = None
    out_w: int | None = None
    err_r: int | None = None
    err_w: int | None = None
    try:
        # All close-on-exec: only the child's dup2'd 0/1/2 survive exec, and
        # no other todo's child (spawned by another thread) inherits them.
        guard_r, guard_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        for fd in (out_w, err_w):
            try:
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
            except OSError:
                pass
        proc = subprocess.Popen(
            [SHELL, "-c", _GUARD_SCRIPT, "coord-todo", command],
            cwd=cwd_s,
            env=full_env,
            stdin=guard_r,
            stdout=out_w,
            stderr=err_w,
            start_new_session=True,
            close_fds=True,
        )
    except (OSError, ValueError) as exc:
        for maybe_fd in (guard_r, guard_w, out_r, out_w, err_r, err_w):
            _close(maybe_fd)
        return ExecResult(
            exit_code=None,
            outcome="error",
            reason=_start_error(cwd_s, exc),
            duration=time.monotonic() - start,
            stdout_tail="",
            stderr_tail="",
            stdout_bytes=0,
            stderr_bytes=0,
            pid=None,
        )
    # The child has its copies; the worker keeps only the read ends of the
    # output pipes and the guard's write end.
    for fd in (guard_r, out_w, err_w):
        _close(fd)
    assert out_r is not None and err_r is not None and guard_w is not None
    return _Supervisor(
        proc,
        guard_w=guard_w,
        out_r=out_r,
        err_r=err_r,
        start=start,
        timeout=timeout,
        tail_bytes=tail_bytes,
        should_stop=should_stop,
        on_start=on_start,
        poll=poll,
        kill_grace=kill_grace,
    ).run()


class _Supervisor:
    """The wait loop of one run: output, exit, timeout, stop, kill, guard.

    Everything happens in the calling thread around one selector (epoll on
    Linux) watching both output pipes and, where available, a pidfd that
    becomes readable when the shell exits - so the loop wakes on output or
    exit at once and otherwise only when a deadline or a ``should_stop``
    poll is due.
    """

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        *,
        guard_w: int,
        out_r: int,
        err_r: int,
        start: float,
        timeout: float,
        tail_bytes: int,
        should_stop: Callable[[], str | None] | None,
        on_start: Callable[[int], None] | None,
        poll: float,
        kill_grace: float,
    ) -> None:
        self.proc = proc
        self.guard_w: int | None = guard_w
        self.start = start
        self.timeout = timeout
        self.deadline = start + timeout
        self.should_stop = should_stop
        self.on_start = on_start
        self.poll = max(0.001, poll)
        self.kill_grace = max(0.0, kill_grace)
        self.tails = {out_r: _Tail(tail_bytes), err_r: _Tail(tail_bytes)}
        self.out_r = out_r
        self.err_r = err_r
        self.open_fds: set[int] = {out_r, err_r}
        self.pidfd: int | None = None
        self.returncode: int | None = None
        self.outcome = "exited"
        self.reason: str | None = None
        self.killing = False  # a stop was decided: SIGTERM sent
        self.kill_at = 0.0  # when to escalate to SIGKILL
        self.killed = False  # SIGKILL sent
        self.drain_until: float | None = None

    # -- signals -----------------------------------------------------------

    def _signal_group(self, sig: int) -> None:
        """Signal the todo's group. Only while the guard pipe is open: the
        guard keeps the group (and so its id) alive, so the id cannot have
        been reused by an unrelated process."""
        if self.guard_w is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _release_guard(self) -> None:
        """Close the guard pipe: the guard SIGKILLs whatever is left in the group."""
        _close(self.guard_w)
        self.guard_w = None

    def _begin_kill(self, outcome: str, reason: str, now: float) -> None:
        self.outcome = outcome
        self.reason = reason
        self.killing = True
        self.kill_at = now + self.kill_grace
        self._signal_group(signal.SIGTERM)

    # -- loop --------------------------------------------------------------

    def run(self) -> ExecResult:
        sel = selectors.DefaultSelector()
        try:
            try:
                self.pidfd = os.pidfd_open(self.proc.pid)
            except (AttributeError, OSError):
                self.pidfd = None
            for fd in self.open_fds:
                sel.register(fd, selectors.EVENT_READ)
            if self.pidfd is not None:
                sel.register(self.pidfd, selectors.EVENT_READ)
            if self.on_start is not None:
                self.on_start(self.proc.pid)
            self._loop(sel)
        finally:
            # Normal end: no-ops. An exception (from a callback, or an
            # interrupt): the group still dies and the shell is reaped.
            self._signal_group(signal.SIGKILL)
            self._release_guard()
            if self.returncode is None:
                self.returncode = self.proc.wait()
            sel.close()
            for leftover in (*self.open_fds, self.pidfd):
                _close(leftover)
            self.open_fds.clear()
            self.pidfd = None

        if self.outcome == "exited":
            exit_code: int | None = _signal_exit_code(self.returncode)
        else:
            exit_code = None
        out, err = self.tails[self.out_r], self.tails[self.err_r]
        return ExecResult(
            exit_code=exit_code,
            outcome=self.outcome,
            reason=self.reason,
            duration=time.monotonic() - self.start,
            stdout_tail=out.text(),
            stderr_tail=err.text(),
            stdout_bytes=out.total,
            stderr_bytes=err.total,
            pid=self.proc.pid,
        )

    def _loop(self, sel: selectors.BaseSelector) -> None:
        next_check = self.start + self.poll
        while True:
            now = time.monotonic()
            exited = self.returncode is not None

            if not exited and not self.killing:
                if now >= self.deadline:
                    self._begin_kill("timeout", f"timed out after {self.timeout:g}s", now)
                elif self.should_stop is not None and now >= next_check:
                    why = self.should_stop()
                    now = time.monotonic()
                    next_check = now + self.poll
                    if why is not None:
                        self._begin_kill("stopped", str(why), now)
            if self.killing and not self.killed and now >= self.kill_at:
                self.killed = True
                self._signal_group(signal.SIGKILL)

            if exited and self.guard_w is not None:
                # After a normal exit, leftovers die now. After a kill, give
                # TERM-handling processes their grace while they still hold
                # the output pipes; once the pipes are at EOF or the grace is
                # over, the guard finishes the job.
                if not self.killing or not self.open_fds or self.killed:
                    self._release_guard()
                    self.drain_until = now + max(self.kill_grace, 0.5)
            if exited and self.guard_w is None:
                if not self.open_fds or (self.drain_until is not None and now >= self.drain_until):
                    # Pipes still open past the drain: held by a process that
                    # left the group; stop reading rather than hang.
                    return

            wake: list[float] = []
            if not exited:
                if self.killing:
                    if not self.killed:
                        wake.append(self.kill_at)
                else:
                    wake.append(self.deadline)
                    if self.should_stop is not None:
                        wake.append(next_check)
                if self.pidfd is None:
                    wake.append(now + self.poll)
            else:
                if self.guard_w is not None and not self.killed:
                    wake.append(self.kill_at)
                if self.drain_until is not None:
                    wake.append(self.drain_until)
            # Capped: epoll cannot take an infinite timeout (timeout=inf is allowed).
            wait = min(max(0.0, min(wake) - now), _MAX_WAIT) if wake else None

            check_exit = self.pidfd is None
            for key, _ in sel.select(wait):
                fd = key.fd
                if fd == self.pidfd:
                    # Exited. From here on (should the reap somehow not
                    # happen yet) fall back to polling.
                    sel.unregister(fd)
                    _close(fd)
                    self.pidfd = None
                    check_exit = True
                    continue
                try:
                    data = os.read(fd, _READ_SIZE)
                except BlockingIOError:
                    continue
                if data:
                    self.tails[fd].add(data)
                else:
                    sel.unregister(fd)
                    self.open_fds.discard(fd)
                    _close(fd)
            if check_exit and self.returncode is None:
                self.returncode = self.proc.poll()
