"""One function over many items in forked processes, while the parent goes on with
other work (``coord init`` reads its checkouts so, while it imports what it writes
the catalog with).

Reading a checkout is Python work (parsing TOML, JSON, XML, go.mod), which threads
would run one at a time; ``os.fork`` children start in a millisecond with everything
the parent imported, and each maps the function over its share of the items
(``items[k::n]``: neighbours alike in size land apart) and sends the results back
pickled through a pipe. Where fork is not to be had (not POSIX, or a parent with
threads running, where a forked child could inherit a lock held by one of them; an
idle timer is no such thread) or the items are few, the parent maps them itself when asked for the results. A child
that dies or sends nothing readable has its share mapped again by the parent: the
answer is the same either way, only slower.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Items a child is given at least: fewer are not worth a process.
MIN_SHARE = 8
#: Children at most, however many cores: past this the parent's own share of the work
#: (forking, unpickling, the catalog) is all that is left to gain on.
MAX_CHILDREN = 32


def cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


#: A thread that says it holds nothing a child could wait on (set ``thread.<this> = True``):
#: the embedded server's reaper, blocked in its own child's ``wait`` (a lock no forked
#: reader touches), does not keep a fleet from being read in children.
FORK_SAFE = "coord_fork_safe"


def _forkable() -> bool:
    """May this process fork? On POSIX, from the main thread, with no other thread but
    idle daemon timers (the CLI's, that turns the garbage collector back on: it holds
    no lock while it waits, and a child needs nothing of it). Another thread may hold a
    lock a child would then wait on for ever."""
    if not hasattr(os, "fork") or threading.current_thread() is not threading.main_thread():
        return False
    return all((isinstance(t, threading.Timer) and t.daemon) or getattr(t, FORK_SAFE, False)
               for t in threading.enumerate() if t is not threading.main_thread())


def children_for(n: int, limit: int | None = None) -> int:
    """How many children ``n`` items are mapped in: one per core (at most
    :data:`MAX_CHILDREN`), each with :data:`MIN_SHARE` items at least; 0 (the parent maps
    them) where fork is not to be had or one child would do."""
    if not _forkable():
        return 0
    k = min(limit or cores(), n // MIN_SHARE, MAX_CHILDREN)
    return k if k >= 2 else 0


class Forked(Generic[T, R]):
    """``fn`` mapped over ``items``, started in children at once; :meth:`results` (in
    the items' order) waits for them."""

    def __init__(self, fn: Callable[[T], R], items: Sequence[T], children: int) -> None:
        self.fn, self.items = fn, list(items)
        self.shares = [list(range(k, len(self.items), children)) for k in range(children)]
        self.procs: list[tuple[int, int, list[int]]] = []  # (pid, read end, indexes)
        for share in self.shares:
            self._start(share)

    def _start(self, share: list[int]) -> None:
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no process to be had: the parent maps this share
            os.close(read)
            os.close(write)
            self.procs.append((-1, -1, share))
            return
        if pid == 0:  # the child: map, send, and leave without the parent's exit work
            code = 1
            try:
                # No cyclic collection in a child that lives a moment: a collection
                # would walk (and so copy) every page of the parent it shares.
                gc.disable()
                os.close(read)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                data = pickle.dumps([self.fn(self.items[i]) for i in share],
                                    protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write, "wb") as out:
                    out.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        self.procs.append((pid, read, share))

    def results(self) -> list[R]:
        out: dict[int, R] = {}
        try:
            while self.procs:
                pid, read, share = self.procs.pop(0)
                got = self._collect(pid, read)
                if got is None or len(got) != len(share):
                    got = [self.fn(self.items[i]) for i in share]  # mapped here instead
                out.update(zip(share, got))
        finally:
            self.close()
        return [out[i] for i in range(len(self.items))]

    @staticmethod
    def _collect(pid: int, read: int) -> list[R] | None:
        if pid < 0:
            return None
        try:
            with os.fdopen(read, "rb") as f:
                data = f.read()
        finally:
            _, status = os.waitpid(pid, 0)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            return None
        try:
            got = pickle.loads(data)
        except Exception:  # noqa: BLE001 - a child cut short: its share is mapped again
            return None
        return got if isinstance(got, list) else None

    def close(self) -> None:
        """No child left: each not yet collected killed and reaped, its pipe closed (a
        caller that failed before asking for the results, an interrupt meanwhile)."""
        while self.procs:
            pid, read, _ = self.procs.pop()
            if pid <= 0:
                continue
            os.close(read)
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


class Mapped(Generic[T, R]):
    """``fn`` over ``items`` in the parent, when asked (no child)."""

    def __init__(self, fn: Callable[[T], R], items: Sequence[T]) -> None:
        self.fn, self.items = fn, list(items)

    def results(self) -> list[R]:
        return [self.fn(x) for x in self.items]

    def close(self) -> None:
        """Nothing to stop."""


def start(fn: Callable[[T], R], items: Sequence[T], limit: int | None = None
          ) -> Forked[T, R] | Mapped[T, R]:
    """``fn`` over ``items``: started in children now when worth it (see
    :func:`children_for`), else mapped by the parent when its results are asked."""
    k = children_for(len(items), limit)
    return Forked(fn, items, k) if k else Mapped(fn, items)
