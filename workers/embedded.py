"""Embedded mode: the workers of the process that runs a sweep.

On the catalog's own Redis server (the runtime's ``url``) they are what `coord
worker` processes are: Celery workers consuming the repos' queues over kombu's
Redis transport, with a thread per slot (each repo's lease keeps it to its
concurrency), each with its liveness beat (so other terminals see them in `coord
workers`) and its webhook notifier. They run in child processes forked from this
one, one per core (at most one per repo), so that a sweep's Python work is not held
to one interpreter lock with the CLI's, and this process never imports Celery: each
worker does, after the fork. ``COORD_EMBEDDED_PROCESSES=0`` keeps them in this
process, as threads of one worker. On an in-process stand-in (no ``url``: the unit
tests') Celery's in-memory transport, one worker per repo queue, in this process.
The tasks and the events are those of the distributed mode either way.

A forked worker lives no longer than this process: it stops warm (running todos
finish) when told to, and at once, its todos' process groups killed by the
warden they share (started here: :func:`workers.execute.shared_warden`), when this
process is gone (its control pipe reads end of file; on Linux
the kernel also sends it SIGKILL). One that dies while this process still runs
its sweep ends that sweep ``failed`` (``on_fail``), never leaves it waiting for a
worker that will not come.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coordination.dispatch import dispatcher_for
from coordination.errors import RuntimeFault
from coordination.processes import die_with_parent, fork_holding
from coordination.runtime.context import Runtime
from workers.execute import adopt_warden, end_shared_wardens, shared_warden

if TYPE_CHECKING:
    from celery import Celery
    from celery.worker import WorkController

log = logging.getLogger("coord.embedded")

# The threads of an in-process worker are started before anything is sent, and a
# message sent to an exchange no queue is bound to yet would be dropped (the
# in-memory transport), hence the wait.
READY_TIMEOUT = 30.0
#: What the control pipe says to a forked worker: stop warm (running todos finish).
WARM = b"w"


def worker_name() -> str:
    """This process's worker name: in the checkpoints (who ran a todo) and the liveness
    beat alike, so a status can tell whether a running todo's worker still beats."""
    return f"embedded@{socket.gethostname()}:{os.getpid()}"


def _worker(app: Celery, hostname: str, queues: list[str], concurrency: int) -> WorkController:
    # lazy: Celery's worker, in the process that runs the workers only (a forked
    # worker, or this one with COORD_EMBEDDED_PROCESSES=0), never the sweeping CLI's
    from celery.worker import WorkController

    class _Ready(WorkController):  # type: ignore[misc]
        def __init__(self, *a: object, **kw: object) -> None:
            self.ready = threading.Event()
            super().__init__(*a, **kw)

        def on_consumer_ready(self, consumer: object) -> None:
            self.ready.set()

    worker: WorkController = _Ready(
        app=app,
        hostname=hostname,
        queues=queues,
        pool="threads",
        concurrency=concurrency,
        loglevel="WARNING",
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        ready_callback=None,
    )
    return worker


def _start(app: Celery, hostname: str, queues: list[str], concurrency: int
           ) -> tuple[WorkController, threading.Thread]:
    """Start one worker in a thread of this process; wait until its consumer is bound."""
    worker = _worker(app, hostname, queues, concurrency)
    t = threading.Thread(target=worker.start, name=f"worker-{hostname}", daemon=True)
    t.start()
    if not worker.ready.wait(READY_TIMEOUT):
        raise RuntimeFault(f"embedded worker {hostname} did not start within {READY_TIMEOUT:.0f} s")
    return worker, t


def _new_app(rt: Runtime) -> Any:
    # lazy: Celery, in the process that runs the workers only (see _worker)
    from workers.app import create_app

    return create_app(rt.settings, url=rt.url)


def _app(rt: Runtime) -> Any:
    """The runtime's Celery app, given its runtime (tasks find it there): the
    dispatcher's (coordination.launch.wire, or a sender's: made on first use, and made
    to serve), else a new one."""
    if getattr(rt.dispatcher, "app", None) is None:
        rt.dispatcher = dispatcher_for(rt, app=_new_app(rt))
    from workers.app import serving  # lazy: as _new_app

    app = serving(rt.app)
    app.coord_runtime = rt
    return app


def _identity(name: str) -> None:
    """Who runs this process's todos (their checkpoints' ``worker``), before any runs."""
    # lazy: the task module imports Celery: the process that runs the workers only
    from workers.tasks import register_worker
    from workers.runner import WorkerInfo  # lazy: beside it, for the same process

    register_worker(WorkerInfo(repo=None, name=name))


def _register(name: str, repos: dict[str, int], rt: Runtime) -> tuple[Any, Any]:
    """This process's liveness beat and (on a real server) its webhook notifier;
    returns (beat, notifier or None)."""
    # lazy: Celery's worker state (the beat reads it), in the process that runs the
    # workers only (see _worker)
    from workers.liveness import start_beat
    from coordination.sweeps.notices.notify import NotifierThread  # lazy: as start_beat

    beat = start_beat(rt, name, sorted(repos))
    notifier = None
    if rt.url is not None:
        # Webhooks are delivered while the workers run (what is left waits in the
        # outbox, in the embedded server, for the next one).
        notifier = NotifierThread(rt)
        notifier.start()
    return beat, notifier


def slots_of(repos: dict[str, int]) -> int:
    """Threads for a worker serving ``repos``: one per slot, and one more when it serves
    several repos (a message for a full repo waits in its line, not every thread)."""
    return sum(max(1, c) for c in repos.values()) + (1 if len(repos) > 1 else 0)


def process_groups(repos: dict[str, int], processes: int) -> list[dict[str, int]]:
    """``repos`` (name -> concurrency) dealt to at most ``processes`` workers, the
    busiest repos first, each to the worker with the fewest slots so far."""
    n = max(1, min(processes, len(repos)))
    groups: list[dict[str, int]] = [{} for _ in range(n)]
    for repo, conc in sorted(repos.items(), key=lambda rc: (-max(1, rc[1]), rc[0])):
        min(groups, key=lambda g: sum(max(1, c) for c in g.values()))[repo] = conc
    return [g for g in groups if g]


def default_processes() -> int:
    """Forked workers when ``COORD_EMBEDDED_PROCESSES`` is unset, and a `coord worker` of
    several repos' processes: one per usable core on Linux (the affinity mask, capped by
    the control group's CPU quota: :func:`cgroup_cpus`); none elsewhere (macOS's system frameworks are not safe to use in a child
    forked from a process that has threads, which is why Python stopped forking there
    by default), so the workers are threads of the sweeping process."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    quota = cgroup_cpus()
    return usable if quota is None else max(1, min(usable, quota))


def cgroup_cpus(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The CPUs this process's control group may use in time (a container's ``--cpus``,
    which the affinity mask does not show), rounded up; None when unlimited or unknown.
    cgroup v2 (``cpu.max``: "QUOTA PERIOD" or "max ..."), else v1 (``cpu.cfs_quota_us``,
    -1 unlimited, over ``cpu.cfs_period_us``)."""
    try:
        fields = (root / "cpu.max").read_text().split()
    except OSError:
        try:
            fields = [(root / "cpu" / f"cpu.cfs_{n}_us").read_text().strip()
                      for n in ("quota", "period")]
        except OSError:
            return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except (IndexError, ValueError):  # "max": no limit
        return None
    if quota <= 0 or period <= 0:
        return None
    return -(-quota // period)


def child_setup(parent: int, mask: set[int | signal.Signals]) -> bool:
    """What a forked worker does first; False when its parent is already gone. ``mask``:
    the signal mask to set once it ignores Ctrl-C (the parent's, held across the fork)."""
    # The kernel kills this process when the thread that forked it (the parent's main
    # thread) ends, whatever way the parent ends.
    die_with_parent()
    if os.getppid() != parent:
        return False
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    # Never a byte on the command's standard output (a --json document goes there).
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    return True


def serve(rt: Runtime, repos: dict[str, int], control: int) -> int:
    """A forked worker's life (its setup done: :func:`child_setup`): serve ``repos``
    until told to stop, or the parent is gone; its exit code."""
    name = worker_name()
    _identity(name)
    app = _app(rt)  # made here, after the fork (coordination.launch.wire)
    worker = _worker(app, name, [rt.keys.repo_queue(r) for r in sorted(repos)],
                     slots_of(repos))
    beat, notifier = _register(name, repos, rt)
    asked = threading.Event()

    def control_pipe() -> None:
        try:
            said = os.read(control, 1)
        except OSError:
            said = b""
        if said == WARM:
            asked.set()
            beat.stopping()  # `coord workers` says so while running todos finish
            # Celery's own way out (celery.contrib.testing's too): the consumer loop, in
            # this process's main thread, sees the flag at its next turn (within a
            # second) and stops warm there, its running todos finishing first; a flag set
            # before the loop runs stops it as it starts. Stopping the worker from this
            # thread instead (WorkController.stop) raced the loop it stops.
            celery_state.should_stop = 0
            # ... and this wakes its poll at once (kombu's Hub.call_soon is thread-safe:
            # its waker socket), or the loop saw the flag only when its poll timed out,
            # up to a second later: every embedded sweep's end waited for it.
            hub = getattr(worker, "hub", None)
            if hub is not None:
                hub.call_soon(_nothing)
            try:
                said = os.read(control, 1)  # a second Ctrl-C ends the parent: EOF
            except OSError:
                said = b""
        if not said:
            # The parent is gone: so is this worker, now. Its warden kills the
            # process groups of the todos it runs; their leases run out and the
            # next coord process carries the sweep on.
            os._exit(1)

    # lazy: Celery's worker state, in the process that runs the workers only (see _worker)
    from celery.worker import state as celery_state

    threading.Thread(target=control_pipe, name="coord-embedded-control", daemon=True).start()
    try:
        if asked.is_set():  # told to stop while it was being made: it never runs
            return 0
        # Returns once stopped: told to (the flag above; its running todos finished),
        # or by itself.
        worker.start()
        if not asked.is_set():
            log.error("embedded worker %s stopped by itself", name)
            return 1
        return 0
    finally:
        if notifier is not None:
            notifier.stop()
        beat.stop()  # gone from `coord workers` at once
        from workers.runner import leave_files  # lazy: Celery, after the fork (see _worker)

        leave_files()  # (it ends with os._exit: no exit handlers)


def _nothing() -> None:
    """A callback that only wakes an event loop."""


@dataclass
class _Child:
    pid: int
    control: int  # the write end of its control pipe
    repos: dict[str, int]
    exited: threading.Event


class _Forked:
    """Worker processes forked from this one; see the module docstring."""

    def __init__(self, rt: Runtime, groups: list[dict[str, int]],
                 on_fail: Callable[[str], None] | None) -> None:
        self.rt, self.on_fail = rt, on_fail
        self.children: list[_Child] = []
        self.stopping = False
        self.parent = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        channels = shared_warden(len(groups))  # one warden for their todos, not one each
        for i, group in enumerate(groups):
            self.children.append(self._fork(group, channels[i:]))
        for child in self.children:
            threading.Thread(target=self._watch, args=(child,), daemon=True,
                             name=f"coord-embedded-child-{child.pid}").start()

    def _fork(self, repos: dict[str, int], channels: list[int]) -> _Child:
        """``channels``: its channel to the shared warden first, then those of the
        processes forked after it (theirs alone); [] when each starts a warden of its own."""
        r, w = os.pipe()
        # Ctrl-C held from before the fork until the child ignores it (then dropped there:
        # the parent's to handle): in between it would raise the parent's
        # KeyboardInterrupt in the child, a worker dead at its start and the sweep failed.
        pid, mask = fork_holding((signal.SIGINT,))
        if pid == 0:  # the worker
            code = 1
            try:
                os.close(w)
                for sibling in self.children:  # its own pipe only: EOF must mean "parent gone"
                    os.close(sibling.control)
                for fd in channels[1:]:
                    os.close(fd)
                if child_setup(self.parent, mask):
                    if channels:
                        adopt_warden(channels[0])
                    code = serve(self.rt, repos, r)
            except BaseException:  # noqa: BLE001 - a child never returns into the CLI's code
                log.exception("embedded worker %d stopped with an error", os.getpid())
            finally:
                os._exit(code)  # never the parent's exit handlers or buffered output
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # (one held meanwhile: now)
        os.close(r)
        if channels:  # the process's now: its death ends the channel
            os.close(channels[0])
        return _Child(pid, w, repos, threading.Event())

    def _watch(self, child: _Child) -> None:
        status: int | None
        try:
            _pid, status = os.waitpid(child.pid, 0)
        except ChildProcessError:
            status = None
        child.exited.set()
        if self.stopping or self.on_fail is None:
            return
        what = ", ".join(sorted(child.repos))
        if status is not None and os.WIFSIGNALED(status):
            how = f"was killed by signal {os.WTERMSIG(status)}"
        else:
            code = None if status is None else os.waitstatus_to_exitcode(status)
            how = f"exited with {code}"
        log.error("the embedded worker process %d (%s) %s", child.pid, what, how)
        self.on_fail(f"the embedded worker process for {what} {how}")

    def stop(self) -> None:
        """Warm: each finishes its running todos, then exits; wait for all of them. An
        interrupt while waiting (a second Ctrl-C) leaves them: they end with this process."""
        self.stopping = True
        for child in self.children:
            try:
                os.write(child.control, WARM)
            except OSError:  # gone already
                pass
        for child in self.children:
            child.exited.wait()
        for child in self.children:
            os.close(child.control)
        end_shared_wardens()  # (their todos' warden: it ends with the last of them)


@contextmanager
def embedded_workers(rt: Runtime, repos: dict[str, int], *, processes: int | None = None,
                     on_fail: Callable[[str], None] | None = None) -> Iterator[None]:
    """Run workers for ``repos`` (name -> concurrency) while inside.

    ``processes``: how many forked worker processes may serve them (a real server
    only); None: ``COORD_EMBEDDED_PROCESSES``, else one per core; 0: threads of this
    process. ``on_fail(reason)``: a forked worker died before being told to stop."""
    if processes is None:
        processes = rt.settings.embedded_processes
        if processes is None:
            processes = default_processes()
    if rt.url is not None and processes > 0 and repos:
        if rt.dispatcher is None:  # each worker makes its app, after the fork
            rt.dispatcher = dispatcher_for(rt, app_factory=lambda: _new_app(rt))
        forked = _Forked(rt, process_groups(repos, processes), on_fail)
        try:
            yield
        finally:
            forked.stop()
        return
    name = worker_name()
    _identity(name)
    app = _app(rt)
    started: list[tuple[WorkController, threading.Thread]] = []
    beat: Any = None
    notifier: Any = None
    try:
        if rt.url is not None:
            started.append(_start(app, name, [rt.keys.repo_queue(r) for r in sorted(repos)],
                                  slots_of(repos)))
        else:
            for repo, conc in sorted(repos.items()):
                host = f"{repo}@embedded"
                started.append(_start(app, host, [rt.keys.repo_queue(repo)], max(1, conc)))
        beat, notifier = _register(name, repos, rt)
        yield
    finally:
        if notifier is not None:
            notifier.stop()
        if beat is not None:
            beat.stop()
        for worker, _ in started:
            try:
                worker.stop(in_sighandler=False, exitcode=0)
            except Exception:  # shutting down: report, keep stopping the others
                log.exception("stopping an embedded worker failed")
        for _, t in started:
            t.join(timeout=10)
