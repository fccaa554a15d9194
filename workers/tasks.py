"""coord's Celery tasks, registered on an app by :func:`register`.

One task, ``coord.run_todo`` (its name is fixed: messages name it). There are
no barrier or finaliser tasks: the todo that ends a level sends the next one,
and the one that ends the sweep finalises it (see
:mod:`coordination.runtime.transitions`). Supervision is not a task either: it
runs as a thread in every worker and in any CLI that waits, so it needs no
scheduler and no message can be lost for it.

The task stores no result (checkpoints are the truth). It raises ``Ignore``
when another delivery owns the todo or when it came too early. Whatever the
messages fail to do, the supervisor does.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery, Task
from celery.exceptions import Ignore

from coordination.dispatch import dispatcher_for
from coordination.runtime.context import Runtime, get_runtime
from workers import runner
from workers.runner import Outcome, WorkerInfo

log = logging.getLogger("coord.tasks")

#: Every task a coord app registers, and nothing else (see :func:`drop_foreign_tasks`).
TASK_NAMES = frozenset({"coord.run_todo"})

# What this process's worker serves. One `coord worker` process serves one
# repo; the embedded workers share a process and serve every repo, each on
# its own queue. (Celery's request.hostname cannot tell embedded workers
# apart: under the threads pool it is the machine's name.)
_worker = WorkerInfo()
_worker_lock = threading.Lock()


def register_worker(info: WorkerInfo) -> None:
    global _worker
    with _worker_lock:
        _worker = info


def worker_info() -> WorkerInfo:
    with _worker_lock:
        return _worker


def _runtime(app: Celery) -> Runtime:
    """The runtime bound to this app (set by whoever created the worker)."""
    rt: Runtime | None = getattr(app, "coord_runtime", None)
    if rt is None:
        rt = get_runtime()
        rt.dispatcher = dispatcher_for(rt, app=app)
        app.coord_runtime = rt
    return rt


def register(app: Celery) -> None:
    """Define coord's tasks on ``app``."""

    # shared=False: a shared task is added to every app created later in the process
    # (tests, embedded runs), each new app collecting all the earlier closures.
    @app.task(name="coord.run_todo", bind=True, shared=False, acks_late=True,
              reject_on_worker_lost=True, ignore_result=True)
    def run_todo(self: Task, sweep_id: str, plan_id: str, todo_id: str, repo: str,
                 run: int | None = None) -> dict[str, object]:
        rt = _runtime(self.app)
        info = worker_info()
        if info.repos and repo not in info.repos:
            # Misrouted: never run another repo's todo. Send it to its own queue.
            log.warning("worker for %s got %s of repo %s; re-routing",
                        ", ".join(sorted(info.repos)), todo_id, repo)
            self.app.send_task(
                self.name,
                kwargs={"sweep_id": sweep_id, "plan_id": plan_id, "todo_id": todo_id, "repo": repo,
                        "run": run},
                queue=rt.keys.repo_queue(repo),
                task_id=self.request.id,
                headers={"coord_sweep": sweep_id, "coord_plan": plan_id, "coord_todo": todo_id},
            )
            raise Ignore()
        outcome, detail = runner.run_todo(rt, sweep_id, todo_id, info, run)
        if outcome in (Outcome.premature, Outcome.lost, Outcome.paced,
                       Outcome.unconfirmed) or (
            outcome is Outcome.duplicate and "claim" in detail
        ):
            log.info("%s/%s: %s %s", sweep_id, todo_id, outcome.value, detail)
            raise Ignore()
        return {"todo_id": todo_id, "outcome": outcome.value, **detail}


def drop_foreign_tasks(app: Celery) -> None:
    """Finalize ``app`` and unregister every task that is not one of :data:`TASK_NAMES`.

    A worker runs whatever registered task a message names. Celery registers its
    built-ins on every app at finalize (``celery.map``, ``celery.starmap`` and
    ``celery.chunks`` run any other task with any arguments; ``celery.group``,
    ``celery.chain``, ``celery.chord``, ``celery.chord_unlock``, ``celery.accumulate``,
    ``celery.backend_cleanup``), plus any ``@shared_task`` imported in the process.
    coord needs none of them: chords on the Redis backend (and on the embedded
    cache backend) are joined by the result backend itself (``on_chord_part_return``
    counts the header and sends the body), never by ``celery.chord_unlock``, which only
    serves backends without native joins; chain, group and chord signatures are
    applied by the sender's canvas code, which never looks those task names up;
    ``celery.accumulate`` serves ``Task.replace``, unused here; ``celery.backend_cleanup``
    is for beat on backends that cannot expire results, and Redis expires them.

    A message naming any other task is refused by the worker: logged as
    "Received unregistered task", rejected (not redelivered), marked failed.
    """
    app.finalize()  # runs Celery's built-in registrations now, so they can be dropped
    for name in sorted(set(app.tasks) - TASK_NAMES):
        app.tasks.unregister(name)
    missing = TASK_NAMES - set(app.tasks)
    if missing:
        raise RuntimeError(f"coord tasks not registered: {sorted(missing)}")
