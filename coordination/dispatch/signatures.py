"""A todo's Celery signature, built without an app; nothing is sent here.

Every todo signature carries its queue (``<ns>.repo.<repo>``) itself; a
deterministic ``task_id`` ``<sweep>:<todo>:<run>`` so a duplicate delivery is
recognisably the same task (the supervisor looks for it in the queues and in
what workers hold); and sweep/plan/todo ids as *stamps*, which survive every
canvas primitive and show up in Flower and in ``task.request``.

There is no chord: a level's todos are sent one message each, and the todo
that ends a level sends the next one (:mod:`coordination.runtime.transitions`
counts). No result is stored (``ignore_result``): checkpoints are the truth,
and a chord that never fires cannot hang a sweep that has none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coordination.keys import Keys
from coordination.messages import todo_task_id

if TYPE_CHECKING:
    from celery.canvas import Signature

__all__ = ["TASK_NAME", "todo_signature", "todo_task_id"]

TASK_NAME = "coord.run_todo"


def _stamped(sweep_id: str, plan_id: str, **more: str
             ) -> dict[str, str | dict[str, str] | list[str]]:
    """Options putting our ids both in ``headers`` and in Celery's stamps."""
    stamps = {"coord_sweep": sweep_id, "coord_plan": plan_id, **more}
    return {"headers": dict(stamps), "stamped_headers": list(stamps), **stamps}


def todo_signature(
    todo_id: str,
    repo: str,
    *,
    sweep_id: str,
    plan_id: str,
    keys: Keys,
    task_name: str = TASK_NAME,
    run: int | None = None,
    priority: int | None = None,
) -> Signature:
    """One todo's immutable signature on its repo's queue; kwargs are JSON only.

    ``run`` (0 for a sweep's first run, +1 per resume) ends the task id, so a
    resumed run is never mistaken for a revoked or finished earlier one.
    """
    from celery import signature  # lazy: celery only to send; reading commands load this package

    return signature(
        task_name,
        # The run too: a worker that has parsed that run's spec reads nothing before
        # its start script (which checks the sweep is still at that run).
        kwargs={"sweep_id": sweep_id, "plan_id": plan_id, "todo_id": todo_id, "repo": repo,
                **({} if run is None else {"run": run})},
        queue=keys.repo_queue(repo),
        task_id=todo_task_id(sweep_id, todo_id, run),
        immutable=True,
        ignore_result=True,
        **({} if priority is None else {"priority": priority}),
        **_stamped(sweep_id, plan_id, coord_todo=todo_id),
    )
