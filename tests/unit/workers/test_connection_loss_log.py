"""What a worker's log says of a todo still running when the broker connection is lost:
Celery (set to cancel such tasks) said "Terminating it instead", then, as the threads
pool cannot stop a thread, "Failed to cancel active request" with a NotImplementedError's
traceback: per running todo, at every failover (about 38 a sentinel soak). The todo in
fact runs on under its lease: one line says so (workers/app.py's filter). Celery's own
method is run here, with a stand-in for the rest of its consumer."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from celery.concurrency.thread import TaskPool
from celery.worker import state
from celery.worker.consumer.consumer import Consumer

from coordination.settings import Settings
from workers.app import create_app

pytestmark = pytest.mark.timeout(60)


class Running:
    """A request of a todo still running, unacknowledged (acks late)."""

    task = SimpleNamespace(acks_late=True)
    kwargs = {"sweep_id": "PLAN-001-20261129-ab12", "plan_id": "PLAN-001",
              "todo_id": "TODO-001", "repo": "api", "run": 0}
    acknowledged = False
    time_start = 1.0
    worker_pid = None

    def cancel(self, pool: TaskPool) -> None:  # Celery's Request.cancel, its first step
        pool.terminate_job(self.worker_pid, 15)

    def __repr__(self) -> str:
        return "<Request: coord.todo[TODO-001]>"


def test_a_running_todo_at_a_connection_loss_is_said_to_run_on_in_one_line(
        caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0"))
    assert app.conf.worker_cancel_long_running_tasks_on_connection_loss
    consumer = SimpleNamespace(app=app, connection=None, pool=TaskPool(limit=1),
                               qos_global=False, max_prefetch_count=1)
    request = Running()
    state.active_requests.add(request)
    try:
        with caplog.at_level(logging.INFO, logger="celery.worker.consumer.consumer"):
            Consumer.on_connection_error_after_connected(consumer, ConnectionError("gone"))
    finally:
        state.active_requests.discard(request)
        consumer.pool.on_stop()
    said = [(r.levelno, r.getMessage(), r.exc_info) for r in caplog.records
            if "TODO-001" in r.getMessage()]
    assert said == [(logging.WARNING, "PLAN-001-20261129-ab12/TODO-001 runs on after the "
                     "broker connection was lost (a thread is not stopped; its lease keeps "
                     "another delivery from running it)", None)], said
    assert not any("Terminating" in r.getMessage() or r.exc_info for r in caplog.records)
