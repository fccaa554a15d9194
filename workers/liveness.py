"""The worker's liveness beat (see coordination/runtime/workers.py for the record).

A daemon thread publishes, every ``COORD_WORKER_HEARTBEAT`` seconds, who this
worker is, which repos it serves, which todos it runs and which Celery task
ids it holds (reserved or active, read from Celery's own worker state). A
failed beat (Redis away) is logged and retried at the next tick: liveness is
advisory, it never stops the worker.

Stopping cleanly is two steps: :meth:`WorkerBeat.stopping` when the shutdown
begins (the record says so at once and keeps beating while running todos finish,
so their status never reads "worker gone"), then :meth:`WorkerBeat.stop` when the
worker is done, which removes the record: it leaves `coord workers` at once
rather than after three missed beats. A beat in flight cannot write the record
back after it was removed (both hold one lock).
"""

from __future__ import annotations

import logging
import os
import pwd
import socket
import threading
import time

from celery.worker import state

from coordination.runtime.context import Runtime
from coordination.runtime.workers import WorkerRecord, WorkerRegistry
from workers.execute import todo_user
from workers.runner import running_todos

log = logging.getLogger("coord.liveness")


def held_task_ids() -> list[str]:
    """Task ids this process's Celery worker has reserved or is running."""
    ids: set[str] = set()
    for pool in (state.reserved_requests, state.active_requests):
        for req in tuple(pool):
            rid = getattr(req, "id", None)
            if rid:
                ids.add(str(rid))
    return sorted(ids)


def runs_as() -> tuple[str, bool]:
    """Who this worker's todos run as: the user's name, and whether it is root."""
    user = todo_user()
    if user is not None:
        return user.name, user.uid == 0
    uid = os.geteuid() if hasattr(os, "geteuid") else -1
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    return name, uid == 0


class WorkerBeat(threading.Thread):
    def __init__(self, registry: WorkerRegistry, name: str, repos: list[str], interval: float,
                 group: tuple[str, int] | None = None, keyed: bool = False) -> None:
        super().__init__(name="coord-liveness", daemon=True)
        self.registry = registry
        self.interval = interval
        self.record = WorkerRecord(
            name=name, host=socket.gethostname(), pid=os.getpid(), repos=list(repos),
            started_at=time.time(), beat=interval,
            group=group[0] if group else "", group_pid=group[1] if group else 0,
            keyed=keyed, todo_user=runs_as()[0], todos_as_root=runs_as()[1],
        )
        self._halt = threading.Event()
        self._wake = threading.Event()  # beat now (stopping, stopped), not at the next tick
        self._writing = threading.Lock()  # a beat and the removal never interleave

    def beat_once(self) -> None:
        with self._writing:
            if self._halt.is_set():
                return  # removed (or being removed): never written back
            self.record.running = running_todos()
            self.record.held = held_task_ids()
            self.registry.beat(self.record)

    def stopping(self) -> None:
        """The worker is shutting down: beat now saying so (it takes no new work), and
        go on beating while what it runs finishes. Safe in a signal handler: it only
        wakes the beat thread (no Redis call, no lock)."""
        self.record.stopping = True
        self._wake.set()

    def beat_safely(self) -> None:
        try:
            self.beat_once()
        except Exception as exc:  # Redis away: try again next tick
            log.warning("liveness beat failed: %s", exc)

    def run(self) -> None:
        # (the first beat is start_beat's, before the thread starts)
        while not self._halt.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self.beat_safely()

    def stop(self, *, leave: bool = True) -> None:
        """No more beats; with ``leave`` the record is removed (gone from `coord workers`)."""
        self._halt.set()
        self._wake.set()
        if leave:
            # Waits for a beat in flight (one round trip), so it cannot land after this.
            with self._writing:
                try:
                    self.registry.leave(self.record.name)
                except Exception as exc:
                    log.warning("could not remove worker record: %s", exc)


def start_beat(rt: Runtime, name: str, repos: list[str],
               group: tuple[str, int] | None = None) -> WorkerBeat:
    """The worker's beat, its first one written before this returns (a worker that
    says it is ready is listed by `coord workers`); ``group``: the name and pid of the
    `coord worker` process that forked this one (see workers/process_group.py)."""
    beat = WorkerBeat(rt.workers, name, repos, rt.settings.worker_heartbeat, group=group,
                      keyed=bool(rt.settings.signing_keys))
    beat.beat_safely()
    beat.start()
    return beat
