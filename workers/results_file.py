"""The file a todo writes its results to (``$COORD_OUTPUT``), one per run.

Each worker process makes one private directory (``mkdtemp``: mode 0700, a name no one
can guess) and names each run's file in it by the todo and a count: no other user can
create, replace or read an entry there, which is what ``mkstemp``'s random name in the
shared temporary directory was for, and a run's file costs one ``open`` where
``mkstemp`` drew a random name per run (a tenth of a todo's own work on the worker).
A directory removed under a running worker (a cleaner of /tmp) is made again.

A worker that runs its todos as another user (``coord worker --todo-user``) gives each
run's file to that user, and lets that user's group through the directory (mode 0710,
the group the todo user's): the todo writes its own file, and no one else can create,
replace or remove an entry there.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading

from workers.execute import todo_user

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class ResultFiles:
    """This process's results files (see the module docstring); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dir: str | None = None
        self._pid = 0
        self._count = itertools.count()

    def new(self, todo_id: str) -> str:
        """A new, empty file for a run of ``todo_id``: its path."""
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

    def _directory(self) -> str:
        with self._lock:
            if self._dir is None or self._pid != os.getpid():  # (a forked worker: its own)
                self._dir, self._pid = tempfile.mkdtemp(prefix="coord-results-"), os.getpid()
                user = todo_user()
                if user is not None:  # its todos reach their own files, nothing more
                    os.chown(self._dir, -1, user.gid)
                    os.chmod(self._dir, 0o710)
            return self._dir

    def remove_all(self) -> None:
        """This process's directory and what is left in it (its runs' files are removed
        as each run is read)."""
        with self._lock:
            if self._dir is not None and self._pid == os.getpid():
                shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def empty(path: str) -> None:
    """What an earlier attempt wrote is not the next one's."""
    try:
        os.truncate(path, 0)
    except FileNotFoundError:  # removed by the todo: the next attempt starts without one
        pass
