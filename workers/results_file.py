"""The file a todo writes its results to (``$COORD_OUTPUT``), one per run.

Each worker process makes one private directory (``mkdtemp``: mode 0700, a name no one
can guess) and names each run's file in it by the todo and a count: no other user can
create, replace or read an entry there, which is what ``mkstemp``'s random name in the
shared temporary directory was for, and a run's file costs one ``open`` where
``mkstemp`` drew a random name per run (a tenth of a todo's own work on the worker).
A directory removed under a running worker (a cleaner of /tmp) is made again.

A run that left its file empty (what most todos do) hands it to the next run of the same
thread (:meth:`ResultFiles.done`): renamed to the new run's name, checked still a regular,
empty file of this user's with one link, its mode 0600. Making a file and removing it
cost the worker 0.04-0.25 ms of CPU per run on the development machine's ext4 /tmp,
depending on the hour, the rename and its check 0.02-0.09 ms (issue #82); a file something
wrote to is removed and the next run gets a new one, as every run did before.

Each directory's name holds its process's id (``coord-results-<pid>-<random>``): a process
killed before it could remove its own (SIGKILL, the OOM killer) leaves it behind, and the
next worker process to make one removes those of processes no longer running
(:func:`remove_stale`: a few at a time, so that a machine's backlog never holds up a
todo for long).

A worker that runs its todos as another user (``coord worker --todo-user``) gives each
run's file to that user, and lets that user's group through the directory (mode 0710,
the group the todo user's): the todo writes its own file, and no one else can create,
replace or remove an entry there.
"""

from __future__ import annotations

import itertools
import os
import shutil
import stat
import tempfile
import threading

from coordination.processes import remove_left_behind
from workers.execute import todo_user

#: The directories' names: this, the process's id, a dash and mkdtemp's random part.
PREFIX = "coord-results-"
#: A directory of a process no longer running is removed once untouched this long
#: (seconds): a process of another pid namespace sharing the temporary directory keeps
#: its own, and a busy one touches it with every run.
STALE_AFTER = 600.0
#: Directories removed at most by one process as it makes its own.
STALE_LIMIT = 32

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class ResultFiles:
    """This process's results files (see the module docstring); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dir: str | None = None
        self._pid = 0
        self._count = itertools.count()
        self._spare = threading.local()  # .path, .pid: this thread's last run's empty file

    def new(self, todo_id: str) -> str:
        """A new, empty file for a run of ``todo_id``: its path."""
        reused = self._reuse(todo_id)
        if reused is not None:
            return reused
        for _ in range(2):
            directory = self._directory()
            path = os.path.join(directory, f"{todo_id}-{next(self._count)}.out")
            try:
                fd = os.open(path, _CREATE, 0o600)
                try:
                    user = todo_user()
                    if user is not None:  # the todo (another user) writes it
                        os.fchown(fd, user.uid, user.gid)
                finally:
                    os.close(fd)
                return path
            except FileNotFoundError:  # the directory went: make another
                with self._lock:
                    if self._dir == directory:
                        self._dir = None
        raise FileNotFoundError(f"cannot create a results file in {tempfile.gettempdir()}")

    def done(self, path: str, *, empty: bool) -> None:
        """A run is over with its file: removed, or, ``empty`` (the caller saw it so),
        kept for this thread's next run (:meth:`new`). Never raises."""
        if empty and todo_user() is None:  # (a todo user's file stays its own run's)
            self._spare.path, self._spare.pid = path, os.getpid()
            return
        try:
            os.unlink(path)
        except OSError:
            pass

    def _reuse(self, todo_id: str) -> str | None:
        """This thread's last run's file, renamed for ``todo_id``'s run, when it is still
        a regular, empty file of this user's with one link (mode 0600 again); else
        None (it is removed, and a new one is made)."""
        old = getattr(self._spare, "path", None)
        if old is None:
            return None
        self._spare.path = None
        if self._spare.pid != os.getpid() or todo_user() is not None:
            return None
        path = os.path.join(os.path.dirname(old), f"{todo_id}-{next(self._count)}.out")
        try:
            os.rename(old, path)
        except OSError:
            return None
        try:
            st = os.lstat(path)
            if (not stat.S_ISREG(st.st_mode) or st.st_size or st.st_nlink != 1
                    or st.st_uid != os.geteuid()):  # (a symlink, a FIFO put in its place...)
                raise OSError
            if stat.S_IMODE(st.st_mode) != 0o600:
                os.chmod(path, 0o600)
        except OSError:
            _unlink(path)
            return None
        return path

    def _directory(self) -> str:
        with self._lock:
            if self._dir is None or self._pid != os.getpid():  # (a forked worker: its own)
                self._dir = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
                self._pid = os.getpid()
                remove_stale(os.path.dirname(self._dir))
                user = todo_user()
                if user is not None:  # its todos reach their own files, nothing more
                    os.chown(self._dir, -1, user.gid)
                    os.chmod(self._dir, 0o710)
            return self._dir

    def remove_all(self) -> None:
        """This process's directory and what is left in it (a run's file is removed once
        read, or kept, empty, for its thread's next run)."""
        with self._lock:
            if self._dir is not None and self._pid == os.getpid():
                shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def remove_stale(directory: str, now: float | None = None, limit: int = STALE_LIMIT) -> int:
    """Remove (``limit`` at most) the results directories in ``directory`` (the
    temporary directory) that processes of this user left behind: those whose process
    no longer runs, untouched for :data:`STALE_AFTER`. Returns how many went; never
    raises. Only the names are read of the rest (a directory of before 0.7, with no
    process id in its name, is left alone)."""
    return remove_left_behind(directory, PREFIX, older_than=STALE_AFTER, limit=limit,
                              directories=True, now=now)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def empty(path: str) -> None:
    """What an earlier attempt wrote is not the next one's."""
    try:
        os.truncate(path, 0)
    except FileNotFoundError:  # removed by the todo: the next attempt starts without one
        pass
