"""Run a command as the child of a subreaper, so its orphans' CPU time is counted.

    python bench/_reaper.py -- COMMAND [ARGS...]

Used by bench/sweep.py to start the long-lived worker processes it measures. A process
whose parent exits before it (coord's worker double-forks a guard beside each todo's
shell) is re-parented to the nearest *child subreaper* (``PR_SET_CHILD_SUBREAPER``)
instead of pid 1. This wrapper is one: it reaps every process that lands on it, so their
user + system time adds to its own ``cutime``/``cstime`` (``/proc/PID/stat``), where the
bench's CPU meter reads it. Without it the guards' CPU would be nobody's.

The bench signals the whole process group (wrapper and command alike), so the wrapper
itself only notes SIGTERM, SIGINT and SIGHUP and keeps reaping; it exits with the
command's exit status once the command has exited (orphans still alive then are left to
the process group, which the bench kills).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f"reaper: prctl failed (errno {ctypes.get_errno()}); orphans go to pid 1",
              file=sys.stderr)
    child = subprocess.Popen(argv)  # handlers are reset in the child by exec

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda _signum, _frame: None)  # the group's signal reaches the command
    while True:
        try:
            pid, status = os.wait()  # the command, or an orphan re-parented to us
        except ChildProcessError:
            return 0
        if pid == child.pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            # what is already dead is counted; anything still alive is the group's to kill
            while True:
                try:
                    if os.waitpid(-1, os.WNOHANG)[0] == 0:
                        break
                except ChildProcessError:
                    break
            code = child.returncode
            return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
