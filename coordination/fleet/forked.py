"""One function over many items in forked processes, while the parent goes on with
other work (``coord init`` reads its checkouts so, while it imports what it writes
the catalog with).

Reading a checkout is Python work (parsing TOML, JSON, XML, go.mod), which threads
would run one at a time; ``os.fork`` children start in a millisecond with everything
the parent imported. The parent is one of the readers: it forks one child fewer than
the cores it may use, and maps items itself once it has done its own work and asks for
the results; a child costs CPU the parent's share does not (its pages copied on write,
its results pickled and unpickled). Who maps which item is settled as they go: each
item's number is a ticket in a pipe, which every reader takes from (a read of a few
bytes from a pipe is one, whoever else reads it), so a parent busy with its own work
leaves the items to the children, and none waits on another with items left. Each
child sends its items' results back pickled through a pipe. Where fork is not to be
had (not POSIX, or a parent with threads running, where a forked child could inherit a
lock held by one of them; an idle timer is no such thread) or the items are few, the
parent maps them itself when asked for the results. An item a child took and sent
nothing back for (it died) is mapped again by the parent: the answer is the same either
way, only slower.
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

#: Items a reader is given at least: fewer are not worth a process.
MIN_SHARE = 8
#: Readers at most (the parent and its children), however many cores: past this the
#: parent's own part of the work (forking, unpickling, the catalog) is all that is left
#: to gain on.
MAX_CHILDREN = 32
#: Tickets at most (items are grouped above this, ``items[t::tickets]`` a ticket): all
#: are written into the pipe before any reader starts, and 2 bytes each stay well under
#: a pipe's buffer (64 KiB on Linux, 16 KiB at first on macOS).
MAX_TICKETS = 4096
_TICKET = 2  # bytes


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


def readers_for(n: int, limit: int | None = None) -> int:
    """How many processes ``n`` items are mapped in, the parent and its children: one
    per core (at most :data:`MAX_CHILDREN`), each with :data:`MIN_SHARE` items at least;
    0 (the parent maps them alone) where fork is not to be had or one would do."""
    if not _forkable():
        return 0
    k = min(limit or cores(), n // MIN_SHARE, MAX_CHILDREN)
    return k if k >= 2 else 0


class Forked(Generic[T, R]):
    """``fn`` mapped over ``items`` by ``readers`` processes: ``readers - 1`` children
    started at once, and the parent in :meth:`results` (in the items' order), which
    then waits for the children."""

    def __init__(self, fn: Callable[[T], R], items: Sequence[T], readers: int) -> None:
        self.fn, self.items = fn, list(items)
        self.tickets = min(len(self.items), MAX_TICKETS)
        self.procs: list[tuple[int, int]] = []  # (pid, read end of its results)
        # Every ticket is in the pipe, and its write end closed, before any child
        # starts: a reader that finds it empty knows that nothing is left to take.
        self.queue, write = os.pipe()
        try:
            with os.fdopen(write, "wb") as f:
                f.write(b"".join(t.to_bytes(_TICKET, "little") for t in range(self.tickets)))
            for _ in range(readers - 1):
                self._start()
        except BaseException:
            self.close()
            raise

    def _take(self) -> int | None:
        """The next ticket, None when none is left (or the queue is closed)."""
        try:
            got = os.read(self.queue, _TICKET)
        except OSError:
            return None
        return int.from_bytes(got, "little") if len(got) == _TICKET else None

    def _map(self) -> list[tuple[int, list[R]]]:
        """Tickets taken and mapped until none is left: ``(ticket, its items' results)``."""
        done = []
        while (t := self._take()) is not None:
            done.append((t, [self.fn(self.items[i]) for i in self._share(t)]))
        return done

    def _share(self, ticket: int) -> range:
        """The indexes of the items ``ticket`` stands for."""
        return range(ticket, len(self.items), self.tickets)

    def _start(self) -> None:
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no process to be had: the others take its tickets
            os.close(read)
            os.close(write)
            return
        if pid == 0:  # the child: map, send, and leave without the parent's exit work
            code = 1
            try:
                # No cyclic collection in a child that lives a moment: a collection
                # would walk (and so copy) every page of the parent it shares.
                gc.disable()
                os.close(read)
                for _, other in self.procs:  # the other children's: not this one's to hold
                    os.close(other)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                data = pickle.dumps(self._map(), protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write, "wb") as out:
                    out.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        self.procs.append((pid, read))

    def results(self) -> list[R]:
        out: dict[int, list[R]] = {}
        try:
            out.update(self._map())  # the parent's part, while the children do theirs
            while self.procs:
                pid, read = self.procs.pop(0)
                for entry in self._collect(pid, read):
                    match entry:
                        case tuple((int(t), list(got))) if (
                                0 <= t < self.tickets and t not in out
                                and len(got) == len(self._share(t))):
                            out[t] = got
            for t in range(self.tickets):  # taken by a child that died: mapped here
                if t not in out:
                    out[t] = [self.fn(self.items[i]) for i in self._share(t)]
        finally:
            self.close()
        return [out[i % self.tickets][i // self.tickets] for i in range(len(self.items))]

    @staticmethod
    def _collect(pid: int, read: int) -> list[object]:
        try:
            with os.fdopen(read, "rb") as f:
                data = f.read()
        finally:
            _, status = os.waitpid(pid, 0)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            return []
        try:
            got = pickle.loads(data)
        except Exception:  # noqa: BLE001 - a child cut short: its tickets are mapped again
            return []
        return got if isinstance(got, list) else []

    def close(self) -> None:
        """No child left: each not yet collected killed and reaped, its pipe closed (a
        caller that failed before asking for the results, an interrupt meanwhile); the
        tickets' pipe closed."""
        while self.procs:
            pid, read = self.procs.pop()
            os.close(read)
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        if self.queue >= 0:
            os.close(self.queue)
            self.queue = -1


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
    :func:`readers_for`), else mapped by the parent when its results are asked."""
    k = readers_for(len(items), limit)
    return Forked(fn, items, k) if k else Mapped(fn, items)
