"""Is a recorded process still running? Host, pid and the process's start time.

A process recorded as the one doing something (running an embedded sweep, landing or
reverting a change) is kept with its host, pid and start time, so a later process can
tell that it ended (SIGKILL, OOM, a reboot) without a chance of taking a reused pid for
it. Only a process on this host can be judged: one on another host is never taken for
gone (never guessed). :func:`alive` is the plain question of a pid on this host (the
embedded server's, its watchdog's: :mod:`coordination.connection.embedded_server`).
:func:`worker_identity` is the ``host:pid`` a worker records on a checkpoint when it
has no name. No Redis here: the records live wherever their owner keeps them.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import stat
import sys
import time
from pathlib import Path
from typing import TypedDict


class Runner(TypedDict):
    host: str
    pid: int
    started: str  # the kernel's start time of the process (clock ticks since boot), "" unknown


def start_time(pid: int) -> str | None:
    """The start time of process ``pid`` as ``/proc/<pid>/stat`` gives it (field 22,
    clock ticks after boot; a reused pid has another), "" where there is no /proc,
    None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "" if alive(pid) else None
    # comm (field 2) may hold spaces and parentheses: count after its last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else ""


def state(pid: int) -> str | None:
    """Process ``pid``'s state letter from ``/proc/<pid>/stat`` (field 3: ``R``, ``S``,
    ``T`` stopped, ``t`` traced, ``Z`` zombie, ...); None when it cannot be read (no
    such process, or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: the state follows its last ')'.
    fields = stat.rpartition(b")")[2].split()
    return fields[0].decode("ascii", "replace") if fields else None


def alive(pid: int) -> bool:
    """Whether ``pid`` runs on this host (a zombie does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return state(pid) != "Z"  # (unreadable: it answered the signal, so it runs)


def remove_left_behind(directory: str, prefix: str, *, older_than: float, limit: int,
                       directories: bool = False, suffix: str = "",
                       now: float | None = None) -> int:
    """Remove (``limit`` at most) what processes of this user that were killed (SIGKILL,
    the OOM killer: no clean-up of theirs ran) left in ``directory``: entries named
    ``<prefix><pid>-...<suffix>`` (``directories``: directories, else regular files) of a
    pid that no longer runs, untouched for ``older_than`` s (a process of another pid
    namespace sharing the directory may have that pid and still use its entry). Returns
    how many went; never raises. Only the names are read of the rest."""
    now = time.time() if now is None else now
    gone = 0
    try:
        entries = os.scandir(directory)
    except OSError:
        return 0
    with entries:
        for entry in entries:
            if gone >= limit:
                break
            if not entry.name.startswith(prefix) or not entry.name.endswith(suffix):
                continue
            pid, dash, _rest = entry.name[len(prefix):].partition("-")
            if not dash or not pid.isdigit() or alive(int(pid)):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
                kind = stat.S_ISDIR if directories else stat.S_ISREG
                if (not kind(st.st_mode) or st.st_uid != os.geteuid()
                        or now - st.st_mtime < older_than):
                    continue
                if directories:
                    import shutil  # lazy: `coord --help` imports this module (workers/starter.py)

                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            except OSError:
                continue
            gone += 1
    return gone


def worker_identity() -> str:
    """host:pid, recorded on checkpoints so a status names who ran a todo."""
    return f"{socket.gethostname()}:{os.getpid()}"


def this_process() -> Runner:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": start_time(pid) or ""}


def ended(runner: object) -> str | None:
    """Why the recorded runner is known to be gone ("its process ended (pid 123 on
    host)"), or None: alive, on another host, or not recorded (never guessed)."""
    if not isinstance(runner, dict):
        return None
    host, pid, started = runner.get("host"), runner.get("pid"), str(runner.get("started") or "")
    if host != socket.gethostname() or not isinstance(pid, int) or pid <= 0:
        return None
    now = start_time(pid)
    if now is not None and (not started or not now or now == started):
        return None
    return f"its process ended (pid {pid} on {host})"


#: prctl(2)'s options (linux/prctl.h).
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    """``prctl(option, value)``; whether it succeeded (False where there is no prctl:
    not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def die_with_parent() -> bool:
    """Have the kernel SIGKILL this process when the thread that forked it ends, however
    its parent ends (``PR_SET_PDEATHSIG``): for a process forked from a parent's only
    thread (a worker's processes, an embedded sweep's, the starter). The caller checks
    ``os.getppid()`` afterwards: a parent gone before the call is not signalled. Whether
    it is set (False: not Linux)."""
    return _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def subreaper(on: bool) -> bool:
    """Make this process (or no longer) the one its orphaned descendants are handed to
    (``PR_SET_CHILD_SUBREAPER``), so that it can reap them. Whether it succeeded."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0)


def fork_holding(signals: tuple[signal.Signals, ...]) -> tuple[int, set[int | signal.Signals]]:
    """``os.fork()`` with ``signals`` blocked from before it (in both processes after):
    ``(pid, mask)``, ``mask`` the one to set back once each has its handlers. One sent
    meanwhile is held, not taken by the default or by the parent's handler still in the
    child (set back to ignored, a held one is dropped). The mask is set back here if
    the fork fails."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        return os.fork(), mask
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise


def not_dumpable() -> bool:
    """Make this process not dumpable (``prctl(PR_SET_DUMPABLE, 0)``), so that no other
    process of its user (a todo it runs: code from a repo) can read its
    ``/proc/<pid>/environ`` or memory, nor ptrace it: a process holding a key or a
    password (a worker, `coord beat`, `coord ui`, a CLI running todos embedded) calls it
    first. Inherited by what it forks, reset by an exec (a todo's command is dumpable
    again, as it was). Root (CAP_SYS_PTRACE) still reads it: run todos as another user
    there (`coord worker --todo-user`). Whether it is now; False where there is no
    prctl (not Linux)."""
    return _prctl(PR_SET_DUMPABLE, 0)


def dumpable() -> bool | None:
    """Whether this process is dumpable (None: not known, not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return bool(ctypes.CDLL(None, use_errno=True).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
    except (OSError, AttributeError):
        return None
