"""Run one todo's shell command on a worker.

A todo is an arbitrary shell command from the catalog (``make test``, a
script that starts servers in the background, ...). What a worker needs from
running it:

* **Nothing outlives the todo.** The command runs in its own session and
  process group, and every process left in that group when the command's
  shell exits is killed. The group is also killed when the *worker* dies,
  even by SIGKILL, through the warden described below.
* **Bounded resources.** stdout and stderr are read concurrently into ring
  buffers holding only the last ``tail_bytes`` of each; a todo printing
  gigabytes costs no memory and little CPU (large reads, large pipes).
* **Every wait ends.** A timeout, or a ``should_stop`` callback (lease lost,
  sweep cancelled), kills the group: SIGTERM, then SIGKILL after
  ``kill_grace`` seconds.
* **No exceptions for the command's failures.** A command that cannot start
  (missing cwd, ...) gives ``outcome="error"``; a failing one gives its exit
  code.

The warden
----------
``PR_SET_PDEATHSIG`` is not used: it fires when the spawning *thread* exits
(workers use thread pools) and only reaches the direct child. Instead each
worker process starts one small *warden* process (on its first todo) and keeps
the write end of a pipe to it. The warden ignores TERM/INT/HUP/QUIT, sits in
its own session, and learns from the pipe which process groups are the todos'
(``+PGID`` when one starts, ``-PGID`` once its leftovers are dead). When the
pipe reaches EOF - the worker exited or died, even by SIGKILL, since the
kernel closes the worker's fds - it SIGKILLs every group still registered.

A todo spawned but not registered yet (the worker died in between) is found
by a token: before each spawn the worker tells the warden ``?TOKEN`` and puts
the token in the todo's environment (``COORD_TODO_GUARD``); at EOF the warden
kills the group of any process whose environment still carries a token it was
told of and never saw resolved.

A worker of several processes (``coord worker`` of several repos, an embedded sweep's
workers) starts one warden for all of them before it forks them, instead of one each
(an interpreter each: 4-5 MB of the machine's memory): a pipe per process, the
process's death ending its pipe alone (:func:`shared_warden`). A process started
again after a death starts its own, as does any process whose warden died.

Leftovers of a todo that ended normally are killed by the worker itself: the
exited shell is left unreaped (a zombie) while its group is SIGKILLed, so the
group id cannot have been reused by an unrelated process. Processes that
leave the group themselves (``setsid``, ``set -m``) escape, as they would
escape any group-based kill.

The command runs as ``sh -c command`` (``exit N``, ``$$``, ``wait`` and
background jobs behave as they always do); the warden is not its child, so a
``wait`` never waits for it. One warden per worker process costs a few
microseconds per todo (two short pipe writes) where a guard per todo cost two
forks of the shell.

Exit codes
----------
``exit_code`` is the shell's exit status, 0-255. If the shell itself was
killed by signal N (e.g. the command ``exec``-ed a program that crashed) it is
reported as ``128 + N``, as a shell reports a child killed by a signal. When
run_command killed the group (timeout, stop) ``exit_code`` is ``None``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from coordination.trust.secrets import without_secrets_b

__all__ = ["ExecResult", "TodoUser", "run_command", "set_todo_user", "todo_user"]

SHELL = "/bin/sh"

#: The environment variable carrying a todo's warden token (see the module docs).
GUARD_ENV = "COORD_TODO_GUARD"
_GUARD_ENV_B = GUARD_ENV.encode()

# The warden, run with ``python -I -S -c SCRIPT NAME PREFIX [FD...]``: stdlib only, no
# site, no user paths. It reads channels, one per worker process it covers: its stdin
# (the tokens' prefix PREFIX; "-": no stdin channel) and each FD, a pipe inherited from
# the process that started it (a worker of several processes: :func:`shared_warden`),
# whose prefix its worker process says first. Lines: ``@PREFIX`` (the channel's
# tokens' prefix), ``+PGID N`` (todo N's group; no N from a replacement warden),
# ``-PGID`` (that group is gone), ``!N`` (todo N never started), ``=N`` (all below N
# seen). At a channel's EOF: SIGKILL every group registered on it, and the group of any
# process whose environment carries ``NAME=PREFIXN`` for an N it never registered (a
# spawn the worker process died before registering). Ns come about in order, so the set
# of those seen stays small: everything below ``low`` was seen. It exits once every
# channel has ended.
_WARDEN_SCRIPT = r"""
import os, select, signal, sys
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(s, signal.SIG_IGN)
name = sys.argv[1]
class Channel:
    def __init__(self, prefix):
        self.prefix, self.groups, self.seen, self.low, self.buf = prefix, set(), set(), 0, b""
    def saw(self, n):
        self.seen.add(n)
        while self.low in self.seen:
            self.seen.discard(self.low)
            self.low += 1
    def line(self, line):
        op, args = line[:1], line[1:].split()
        if op == b"+":
            self.groups.add(int(args[0]))
            if len(args) > 1:
                self.saw(int(args[1]))
        elif op == b"-":
            self.groups.discard(int(args[0]))
        elif op == b"!":
            self.saw(int(args[0]))
        elif op == b"=":  # a replacement warden: everything below N was seen
            self.low = max(self.low, int(args[0]))
            self.seen = {n for n in self.seen if n >= self.low}
        elif op == b"@":
            self.prefix = args[0].decode()
    def end(self):
        groups = self.groups
        mark = ("%s=%s" % (name, self.prefix)).encode()
        for pid in os.listdir("/proc") if self.prefix else ():
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/environ" % pid, "rb") as f:
                    env = f.read()
            except OSError:
                continue
            at = env.find(mark)
            if at < 0 or (at and env[at - 1] != 0):
                continue
            end = env.find(b"\0", at)
            try:
                n = int(env[at + len(mark):end if end >= 0 else None])
            except ValueError:
                continue
            if n >= self.low and n not in self.seen:
                try:
                    groups.add(os.getpgid(int(pid)))
                except OSError:
                    pass
        for g in groups:
            try:
                os.killpg(g, signal.SIGKILL)
            except OSError:
                pass
channels = {} if sys.argv[2] == "-" else {0: Channel(sys.argv[2])}
channels.update((int(fd), Channel("")) for fd in sys.argv[3:])
poller = select.poll()
for fd in channels:
    poller.register(fd, select.POLLIN)
while channels:
    for fd, _ in poller.poll():
        ch = channels.get(fd)
        if ch is None:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        *lines, ch.buf = (ch.buf + data if data else ch.buf + b"\n").split(b"\n")
        for line in lines:
            try:
                ch.line(line)
            except (ValueError, IndexError):
                pass
        if not data:
            poller.unregister(fd)
            del channels[fd]
            ch.end()
"""


@dataclass(frozen=True)
class TodoUser:
    """The OS user a worker running as root runs its todos as (``coord worker
    --todo-user NAME``): a todo then cannot read the worker's ``/proc/<pid>/environ``
    or memory (root reads any process; another user reads none of root's)."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str

    @classmethod
    def named(cls, name: str) -> TodoUser:
        """The user ``name`` (or a numeric uid) as the system knows it; ValueError
        saying why it cannot run todos (unknown, root)."""
        import pwd  # lazy: POSIX only, and only with --todo-user

        try:
            entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
        except (KeyError, OverflowError):
            raise ValueError(f"no user {name!r} on this machine") from None
        if entry.pw_uid == 0:
            raise ValueError(f"user {name!r} is root: todos would read the worker's "
                             "memory and environment")
        groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
        return cls(entry.pw_name, entry.pw_uid, entry.pw_gid, groups, entry.pw_dir)


_todo_user: TodoUser | None = None


def set_todo_user(user: TodoUser | None) -> None:
    """Run this process's todos (and its forks') as ``user`` from now on (None: as
    itself). Only root may: the spawn changes user before the command starts."""
    global _todo_user
    _todo_user = user


def todo_user() -> TodoUser | None:
    """The user todos run as (None: this process's own)."""
    return _todo_user


class _Warden:
    """This process's warden: started on first use, again after a fork or its death."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0  # the process that owns _fd
        self._proc: subprocess.Popen[bytes] | None = None
        self._live: set[int] = set()
        self._next = 0
        self._inflight: set[int] = set()  # tokens handed out, their todo not registered

    def token(self) -> bytes:
        """A new todo's token (its ``COORD_TODO_GUARD``): this process's pid and a count.
        The warden runs before the token is handed out, so it covers the spawn."""
        with self._lock:
            if self._fd is None or self._pid != os.getpid():
                self._start()
            n, self._next = self._next, self._next + 1
            self._inflight.add(n)
        return b"%d.%d" % (os.getpid(), n)

    def _start(self) -> int:
        r, w = os.pipe()
        try:
            self._proc = _warden_process(f"{os.getpid()}.", stdin=r)
        except BaseException:
            os.close(w)
            raise
        finally:
            os.close(r)
        self._fd, self._pid = w, os.getpid()
        # A warden that died is replaced, told what it knew: the live groups, and
        # every count handed out as seen except those whose spawn is in flight.
        low = min(self._inflight, default=self._next)
        lines = [b"=%d\n" % low]
        lines += [b"!%d\n" % n for n in range(low, self._next) if n not in self._inflight]
        lines += [b"+%d\n" % g for g in self._live]
        os.write(w, b"".join(lines))
        return w

    def _say(self, line: bytes) -> None:
        with self._lock:
            fd = self._fd if self._pid == os.getpid() else None
            if fd is None:
                fd = self._start()
            try:
                os.write(fd, line)  # a short write to a pipe is atomic
            except BrokenPipeError:
                os.close(fd)
                self._fd = None
                os.write(self._start(), line)

    def register(self, pgid: int, token: bytes) -> None:
        n = token.split(b".")[1]
        with self._lock:
            self._live.add(pgid)
            self._inflight.discard(int(n))
        self._say(b"+%d %s\n" % (pgid, n))

    def forget(self, pgid: int) -> None:
        with self._lock:
            self._live.discard(pgid)
        self._say(b"-%d\n" % pgid)

    def never_started(self, token: bytes) -> None:
        n = token.split(b".")[1]
        with self._lock:
            self._inflight.discard(int(n))
        self._say(b"!%s\n" % n)

    def adopt(self, fd: int) -> None:
        """In a forked worker process: say its todos to the warden its parent started for
        its worker processes (``fd``: this one's channel; :func:`shared_warden`) instead
        of starting one of its own. Its tokens' prefix is said first. Should that warden
        be gone, the first line starts one of its own, as after any warden's death."""
        with self._lock:
            self._fd, self._pid, self._proc = fd, os.getpid(), None
        self._say(b"@%d.\n" % os.getpid())

    def after_fork(self) -> None:
        """In a forked child: the parent's warden is the parent's; start a new one."""
        self._lock = threading.Lock()
        if self._fd is not None:
            _close(self._fd)
        self._fd, self._proc, self._live, self._next = None, None, set(), 0
        self._inflight = set()


def _warden_process(prefix: str, stdin: int | None = None, channels: list[int] | None = None
                    ) -> subprocess.Popen[bytes]:
    """A warden running :data:`_WARDEN_SCRIPT`: its stdin a channel of tokens ``prefix``
    ("-": none, stdin then /dev/null), each of ``channels`` (inherited) another."""
    fds = channels or []
    return subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _WARDEN_SCRIPT, GUARD_ENV, prefix, *map(str, fds)],
        stdin=subprocess.DEVNULL if stdin is None else stdin, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # without coord's secrets: it is dumpable (an exec), and a todo of the same user
        # could read its /proc/<pid>/environ
        env=without_secrets_b(getattr(os.environ, "_data", None) or os.environb),
        start_new_session=True, close_fds=True, pass_fds=fds)


_warden = _Warden()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_warden.after_fork)


def shared_warden(processes: int) -> list[int]:
    """One warden for ``processes`` worker processes about to be forked from this one,
    instead of one each (a warden is an interpreter: 4-5 MB of a machine's memory): the
    write end of each one's channel, in order. The forked process ``i`` keeps the
    ``i``-th (:func:`adopt_warden`) and closes the others; this process closes each once
    its process is forked, so that a channel ends with its process's death, whatever
    kills it. [] if it cannot start: each process then starts its own on its first
    todo. The warden lives until every channel has ended (it is this process's child:
    whoever reaps this process's children reaps it)."""
    pipes: list[tuple[int, int]] = []
    try:
        for _ in range(processes):
            pipes.append(os.pipe())
        _shared.append(_warden_process("-", channels=[r for r, _ in pipes]))
    except OSError:
        for r, w in pipes:
            _close(r)
            _close(w)
        return []
    for r, _ in pipes:
        _close(r)
    return [w for _, w in pipes]


#: The shared wardens this process started (kept: a Popen collected while its process
#: runs warns).
_shared: list[subprocess.Popen[bytes]] = []


def end_shared_wardens(timeout: float = 5.0) -> None:
    """Once the processes a shared warden covered are gone: wait for it to end (it
    kills what their todos left first), ``timeout`` s at most, and reap it."""
    end = time.monotonic() + timeout
    for proc in list(_shared):
        try:
            proc.wait(max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            continue
        _shared.remove(proc)


def adopt_warden(fd: int) -> None:
    """In a forked worker process: ``fd`` is its channel to the warden its parent
    started (:func:`shared_warden`); its todos are said there."""
    _warden.adopt(fd)


_READ_SIZE = 1 << 20
# Bigger pipes mean fewer wake-ups for chatty commands. Linux caps unprivileged
# requests at /proc/sys/fs/pipe-max-size (1 MiB by default); failures are ignored.
# Only a chatty command's pipe grows (a read this big says it is one): most todos write
# a few lines, and two fcntl calls per spawn, each allocating a 1 MiB pipe's ring, were
# a tenth of what the spawn adds to subprocess.run's.
_PIPE_SIZE = 1 << 20
_CHATTY = 16 << 10
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
    on_output: Callable[[bool, bytes], None] | None = None,
) -> ExecResult:
    """Run ``command`` with ``/bin/sh`` in ``cwd`` and wait for it, within ``timeout`` s.

    ``env`` is added on top of ``os.environ`` less its secrets (none of coord's reaches a
    command: :mod:`coordination.trust.secrets`); stdin is ``/dev/null``.
    ``on_start(pid)`` is called once the shell runs; the pid is also the
    process group id. ``on_output(stderr, data)`` is handed every chunk read
    (``stderr``: from its stderr), as read (a todo's log: coordination.sweeps.runlogs.attempt_log). ``should_stop()`` is polled about every ``poll``
    seconds; a non-None return is the reason to stop: the group is killed and
    the outcome is ``"stopped"``.

    Exceptions raised by ``on_start`` or ``should_stop`` propagate, after the
    command's process group has been killed and reaped: a failing callback
    never leaves a todo running unsupervised.

    Safe to call from several threads at once; calls share no state.
    """
    cwd_s = os.fspath(cwd)
    token = _warden.token()
    start = time.monotonic()
    try:
        proc, out_r, err_r = _spawn(command, cwd_s, _child_env(env, token), token)
    except (OSError, ValueError) as exc:
        _warden.never_started(token)
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
    return _Supervisor(
        proc,
        out_r=out_r,
        err_r=err_r,
        start=start,
        timeout=timeout,
        tail_bytes=tail_bytes,
        should_stop=should_stop,
        on_start=on_start,
        poll=poll,
        kill_grace=kill_grace,
        on_output=on_output,
    ).run()


def _child_env(env: Mapping[str, str] | None, token: bytes) -> dict[bytes, bytes]:
    """The command's environment: the worker's without a secret coord holds (the signing
    key, passwords, forge tokens: :func:`~coordination.trust.secrets.without_secrets_b`),
    ``env`` on top, and the warden's token. Bytes all along: the worker's environment
    copied without decoding it, so the spawn does not decode and encode every variable
    again (a fifth of its cost)."""
    full_env = without_secrets_b(getattr(os.environ, "_data", None) or os.environb)
    user = _todo_user
    if user is not None:  # its own home and name, not the worker's (root's)
        full_env.update({b"HOME": os.fsencode(user.home), b"USER": os.fsencode(user.name),
                         b"LOGNAME": os.fsencode(user.name)})
    if env:
        full_env.update((os.fsencode(k), os.fsencode(v)) for k, v in env.items())
    full_env[_GUARD_ENV_B] = token
    return full_env


def _spawn(command: str, cwd: str, env: dict[bytes, bytes], token: bytes
           ) -> tuple[subprocess.Popen[bytes], int, int]:
    """The shell started on ``command`` in a session of its own, its output into two
    fresh pipes, and registered with the warden: the process and the pipes' read ends
    (the worker keeps only those). Should it not start, every pipe end is closed and
    the error raised."""
    fds: list[int] = []
    try:
        # All close-on-exec: only the child's dup2'd 0/1/2 survive exec, and
        # no other todo's child (spawned by another thread) inherits them.
        out_r, out_w = os.pipe()
        fds += (out_r, out_w)
        err_r, err_w = os.pipe()
        fds += (err_r, err_w)
        user = _todo_user
        # --todo-user: groups, group and user changed in the child before the exec
        as_user: dict[str, object] = {} if user is None else {
            "user": user.uid, "group": user.gid, "extra_groups": list(user.groups)}
        proc = subprocess.Popen(  # type: ignore[call-overload]
            # $0 is "coord-todo": it names the todo in the shell's own error messages
            [SHELL, "-c", command, "coord-todo"],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out_w,
            stderr=err_w,
            start_new_session=True,
            close_fds=True,
            **as_user,
        )
    except (OSError, ValueError):
        for fd in fds:
            _close(fd)
        raise
    _warden.register(proc.pid, token)
    # The child has its copies; the worker keeps only the read ends.
    for fd in (out_w, err_w):
        _close(fd)
    return proc, out_r, err_r


class _Supervisor:
    """The wait loop of one run: output, exit, timeout, stop, kill, warden.

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
        out_r: int,
        err_r: int,
        start: float,
        timeout: float,
        tail_bytes: int,
        should_stop: Callable[[], str | None] | None,
        on_start: Callable[[int], None] | None,
        poll: float,
        kill_grace: float,
        on_output: Callable[[bool, bytes], None] | None = None,
    ) -> None:
        self.proc = proc
        self.on_output = on_output
        # The shell is not reaped until its group is dead: while it is a zombie its
        # pid, and so the group id, cannot be taken by another process.
        self.held = True
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
        self.grown: set[int] = set()  # pipes made bigger (see _CHATTY)
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
        """Signal the todo's group. Only while the shell is unreaped: its pid (the
        group id) cannot have been reused by an unrelated process."""
        if not self.held:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _release(self) -> None:
        """Kill whatever is left in the group, tell the warden, then reap the shell."""
        if not self.held:
            return
        self._signal_group(signal.SIGKILL)
        _warden.forget(self.proc.pid)
        self.held = False
        code = self.proc.wait()
        if self.returncode is None:
            self.returncode = code

    def _exited(self) -> int | None:
        """The shell's return code (Popen's convention) once it exited, without reaping it."""
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # reaped elsewhere: Popen knows its code
            return self.proc.wait()
        if info is None or info.si_pid == 0:
            return None
        if info.si_code == os.CLD_EXITED:
            return info.si_status
        return -info.si_status

    def _begin_kill(self, outcome: str, reason: str, now: float) -> None:
        self.outcome = outcome
        self.reason = reason
        self.killing = True
        self.kill_at = now + self.kill_grace
        self._signal_group(signal.SIGTERM)

    # -- loop --------------------------------------------------------------

    def run(self) -> ExecResult:
        sel = select.epoll()  # Linux, as pidfd and the warden's /proc scan are
        try:
            try:
                self.pidfd = os.pidfd_open(self.proc.pid)
            except (AttributeError, OSError):
                self.pidfd = None
            for fd in self.open_fds:
                sel.register(fd, select.EPOLLIN)
            if self.pidfd is not None:
                sel.register(self.pidfd, select.EPOLLIN)
            if self.on_start is not None:
                self.on_start(self.proc.pid)
            self._loop(sel)
        finally:
            # Normal end: no-op. An exception (from a callback, or an
            # interrupt): the group still dies and the shell is reaped.
            self._release()
            sel.close()
            for leftover in (*self.open_fds, self.pidfd):
                _close(leftover)
            self.open_fds.clear()
            self.pidfd = None

        if self.outcome == "exited" and self.returncode is not None:
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

    def _loop(self, sel: select.epoll) -> None:
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

            if exited and self.held:
                # After a normal exit, leftovers die now. After a kill, give
                # TERM-handling processes their grace while they still hold
                # the output pipes; once the pipes are at EOF or the grace is
                # over, SIGKILL finishes the job.
                if not self.killing or not self.open_fds or self.killed:
                    self._release()
                    self.drain_until = now + max(self.kill_grace, 0.5)
            if exited and not self.held:
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
                if self.held and not self.killed:
                    wake.append(self.kill_at)
                if self.drain_until is not None:
                    wake.append(self.drain_until)
            # Capped: epoll cannot take an infinite timeout (timeout=inf is allowed).
            wait = min(max(0.0, min(wake) - now), _MAX_WAIT) if wake else None

            check_exit = self.pidfd is None
            for fd, _ in sel.poll(-1 if wait is None else wait):
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
                    if self.on_output is not None:
                        self.on_output(fd == self.err_r, data)
                    if len(data) >= _CHATTY and fd not in self.grown:
                        self.grown.add(fd)  # a chatty command: a bigger pipe, fewer wake-ups
                        with contextlib.suppress(OSError):
                            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
                else:
                    sel.unregister(fd)
                    self.open_fds.discard(fd)
                    _close(fd)
            if check_exit and self.returncode is None:
                self.returncode = self._exited()
