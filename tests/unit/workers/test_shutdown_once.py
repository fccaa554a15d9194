"""A worker's shutdown handler runs once: Celery calls it from the handler of SIGTERM
and SIGINT, and a second signal can land while the first call is inside a lock it holds
(``Event.set``'s). Run again there, it waited on that lock forever: the worker said
"Warm shutdown" and never exited (seen: a `timeout` and a `pkill` both sending SIGTERM).
"""

from __future__ import annotations

import threading

import pytest

from workers.worker import once

pytestmark = pytest.mark.timeout(30)


def test_a_signal_landing_inside_the_handler_returns_at_once_and_the_first_call_finishes() -> None:
    lock = threading.Lock()  # as Event.set's: not re-entrant
    stopped: list[str] = []
    waited: list[bool] = []

    def stop() -> None:
        with lock:
            handler()  # a second SIGTERM handled right here, in the same thread
            stopped.append("stopped")

    def nested() -> None:
        got = lock.acquire(timeout=2)  # what a second run of ``stop`` would wait for
        waited.append(got)
        if got:
            lock.release()

    calls = iter([stop, nested])

    @once
    def handler() -> None:
        next(calls)()

    handler()
    assert waited == [], "the second call ran the handler again (it would wait on the lock forever)"
    assert stopped == ["stopped"]
    handler()  # and any later one
    assert stopped == ["stopped"]


def test_the_workers_shutdown_handler_is_run_once_when_a_second_signal_lands_inside_it() -> None:
    """The handler `coord worker` connects: a second ``worker_shutting_down`` sent while
    the first is inside the supervisor's ``Event.set`` (holding its lock) returns, and
    the first ends; without the guard this thread waits on that lock forever."""
    from types import SimpleNamespace

    from celery import signals
    from celery.worker import WorkController

    from workers.worker import _with_companions

    rt = SimpleNamespace(settings=SimpleNamespace(lease_ttl=5.0, supervise=True))
    before = list(signals.worker_shutting_down.receivers)
    ready_before = list(signals.worker_ready.receivers)
    try:
        _with_companions(WorkController, rt, rt.settings, "h", ["a"], None)  # type: ignore[arg-type]
        (added,) = [r for r in signals.worker_shutting_down.receivers if r not in before]
        handler = added[1]
        landed: list[bool] = []

        class SignalInside(threading.Event):
            def set(self) -> None:
                with self._cond:  # type: ignore[attr-defined]
                    if not landed:
                        landed.append(True)
                        signals.worker_shutting_down.send(sender=None)  # the second signal
                    self._flag = True  # type: ignore[attr-defined]
                    self._cond.notify_all()  # type: ignore[attr-defined]

        # The supervisor the handler stops: the one object of its kind it closes over.
        from coordination.sweeps.supervision import SupervisorThread

        cells = [c.cell_contents for c in (_unwrap(handler).__closure__ or ())]
        (sup,) = [c for c in cells if isinstance(c, SupervisorThread)]
        sup._halt = SignalInside()
        t = threading.Thread(target=signals.worker_shutting_down.send, kwargs={"sender": None},
                             daemon=True)
        t.start()
        t.join(timeout=5)
        assert not t.is_alive(), "the second signal ran the handler again: it waits forever"
        assert landed == [True] and sup._halt.is_set()
    finally:
        signals.worker_shutting_down.receivers[:] = before
        signals.worker_ready.receivers[:] = ready_before


def _unwrap(fn: object) -> object:
    """The function ``once`` wraps (its closure's ``handler``)."""
    for cell in getattr(fn, "__closure__", None) or ():
        if callable(cell.cell_contents) and getattr(cell.cell_contents, "__name__", "") == "_stop_supervisor":
            return cell.cell_contents
    return fn
