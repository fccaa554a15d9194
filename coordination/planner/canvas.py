"""Plan -> Celery canvas, pure: signatures built without an app, nothing sent.

Shape (levels strategy)::

    _chain([
        chord(group(todo, todo, ...), barrier(level 0)),   # a level of several todos
        todo, barrier(level 1),                            # a level of one todo: no chord
        ...,
        finalize,
    ])

Every todo signature carries its queue (``<ns>.repo.<repo>``) itself, because
chains have been seen to drop routes given only at the top; a deterministic
``task_id`` ``<sweep>:<todo>`` so a duplicate delivery is recognisably the same
task; and sweep/plan/todo ids as *stamps*. Stamps matter: Celery copies plain
``headers`` options into the message for a lone task, but drops them for
chord header tasks, while stamped headers survive every canvas primitive and
show up in Flower and in ``task.request``.

Why ``_chain`` and not ``chain``: ``chain(chord, task)`` folds the task into the
chord's body, so the finaliser would vanish into the last barrier's body; the
tree we compile is the tree we inspect and test. The chain's ``tasks`` list
is flat: JSON of 1,000 levels nests 9 deep. But when *applied*, Celery
hands every header task of a chord the rest of the chain, so each message of
level 0 carries the whole remaining canvas: O(levels x todos) bytes overall.
For big plans the runtime should enqueue :func:`compile_levels` one level at
a time from the barriers instead (see that function).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coordination.keys import Keys
from coordination.planner.analysis import Analysis, analyze
from coordination.planner.dag import PlanGraph

TASK_NAME = "coord.run_todo"
BARRIER_NAME = "coord.level_barrier"
FINALIZE_NAME = "coord.finalize_sweep"


def _stamped(sweep_id: str, plan_id: str, **more: Any) -> dict[str, Any]:
    """Options putting our ids both in ``headers`` and in Celery's stamps."""
    stamps = {"coord_sweep": sweep_id, "coord_plan": plan_id, **more}
    return {"headers": dict(stamps), "stamped_headers": list(stamps), **stamps}


def _run_suffix(run: int | None) -> str:
    return "" if run is None else f":{run}"


def todo_task_id(sweep_id: str, todo_id: str, run: int | None = None) -> str:
    """A todo's Celery task id: ``<sweep>:<todo>[:<run>]`` (duplicates share it)."""
    return f"{sweep_id}:{todo_id}" + _run_suffix(run)


def todo_signature(
    todo_id: str,
    repo: str,
    *,
    sweep_id: str,
    plan_id: str,
    keys: Keys,
    task_name: str = TASK_NAME,
    run: int | None = None,
) -> Any:
    """One todo's immutable signature on its repo's queue; kwargs are JSON only.

    ``run`` (0 for a sweep's first run, +1 per resume) ends the task id, so a
    resumed run is never mistaken for a revoked or finished earlier one.
    """
    from celery import signature

    return signature(
        task_name,
        kwargs={"sweep_id": sweep_id, "plan_id": plan_id, "todo_id": todo_id, "repo": repo},
        queue=keys.repo_queue(repo),
        task_id=todo_task_id(sweep_id, todo_id, run),
        immutable=True,
        **_stamped(sweep_id, plan_id, coord_todo=todo_id),
    )


def barrier_signature(
    level: int,
    todo_ids: list[str],
    *,
    sweep_id: str,
    plan_id: str,
    keys: Keys,
    barrier_name: str = BARRIER_NAME,
    run: int | None = None,
) -> Any:
    """The level-done task: immutable, so it never receives the chord's results."""
    from celery import signature

    return signature(
        barrier_name,
        kwargs={"sweep_id": sweep_id, "level": level, "todo_ids": list(todo_ids)},
        queue=keys.control_queue,
        task_id=f"{sweep_id}:level:{level}" + _run_suffix(run),
        immutable=True,
        **_stamped(sweep_id, plan_id, coord_level=level),
    )


def finalize_signature(
    *, sweep_id: str, plan_id: str, keys: Keys, finalize_name: str = FINALIZE_NAME
) -> Any:
    from celery import signature

    return signature(
        finalize_name,
        kwargs={"sweep_id": sweep_id},
        queue=keys.control_queue,
        task_id=f"{sweep_id}:finalize",
        immutable=True,
        **_stamped(sweep_id, plan_id),
    )


@dataclass
class LevelSpec:
    """One level: its todos' signatures and its barrier, not yet composed."""

    index: int
    todo_ids: list[str]
    todos: list[Any]  # celery Signatures, in todo_ids order
    barrier: Any

    def steps(self) -> list[Any]:
        """Chain elements of this level: ``[chord]``, or ``[todo, barrier]`` for one todo."""
        from celery import chord, group

        if len(self.todos) == 1:
            return [self.todos[0], self.barrier]
        return [chord(group(self.todos), self.barrier)]

    def signature(self) -> Any:
        """This level alone, ready to apply: the chord, or ``todo | barrier``."""
        from celery.canvas import _chain

        steps = self.steps()
        return steps[0] if len(steps) == 1 else _chain(steps)


def compile_levels(
    pg: PlanGraph,
    analysis: Analysis | None,
    *,
    sweep_id: str,
    plan_id: str,
    keys: Keys,
    task_name: str = TASK_NAME,
    barrier_name: str = BARRIER_NAME,
) -> list[LevelSpec]:
    """The levels as separate specs: the runtime enqueues level k+1 from barrier k.

    Each applied level is a chord of one group (depth constant, messages
    O(width)), so neither plan length nor size is limited by Celery's
    recursion or message size. Raises PlanError on a cycle.
    """
    if analysis is None:
        analysis = analyze(pg)
    nodes = pg.graph.nodes
    out: list[LevelSpec] = []
    for i, level in enumerate(analysis.levels):
        sigs = [
            todo_signature(tid, nodes[tid]["todo"].repo, sweep_id=sweep_id, plan_id=plan_id,
                           keys=keys, task_name=task_name)
            for tid in level
        ]
        barrier = barrier_signature(i, level, sweep_id=sweep_id, plan_id=plan_id, keys=keys,
                                    barrier_name=barrier_name)
        out.append(LevelSpec(i, list(level), sigs, barrier))
    return out


def compile_canvas(
    pg: PlanGraph,
    analysis: Analysis | None,
    *,
    sweep_id: str,
    plan_id: str,
    keys: Keys,
    task_name: str = TASK_NAME,
    barrier_name: str = BARRIER_NAME,
    finalize_name: str = FINALIZE_NAME,
) -> Any:
    """The whole plan as one flat chain of per-level chords ending with the finaliser."""
    from celery.canvas import _chain

    steps: list[Any] = []
    for spec in compile_levels(pg, analysis, sweep_id=sweep_id, plan_id=plan_id, keys=keys,
                               task_name=task_name, barrier_name=barrier_name):
        steps.extend(spec.steps())
    steps.append(finalize_signature(sweep_id=sweep_id, plan_id=plan_id, keys=keys,
                                    finalize_name=finalize_name))
    return _chain(steps)
