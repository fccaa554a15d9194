"""What may be sent now, and sending it.

A todo is sent in two moves: the queue script (``Transitions.queue``) moves it
``pending`` -> ``queued`` (nothing while the sweep is paused or over, and each
todo by one caller only, however many race), then one message per queued todo
goes to its repo's queue, in start order (a repo's queue hands them out in the
order they were sent). A sender that dies between the two leaves a ``queued``
todo with no message: the supervision pass sends it again
(:mod:`coordination.sweeps.lost`). Duplicates are harmless: the start script
lets one delivery run it.

Two things are not sent to a worker's queue. A gate (``gate:``, no command) is
opened instead: it waits for people (:mod:`.governance.gates`). And a sweep of a plan with
``waves:`` sends only todos of its current wave, at most the wave's ``max_parallel``
at once (the queue script counts the wave's todos in flight in the same step);
:mod:`.waves` starts each wave and tops it up.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from coordination.messages import BROKER_PRIORITY, Dispatcher, TodoMessage
from coordination.runtime.context import Runtime
from coordination.runtime.sweep_fields import remaining_field
from coordination.status import DONE, TodoStatus
from coordination.sweeps.governance.gates import open_gates
from coordination.sweeps.spec import Mode, Strategy, SweepSpec


def message(spec: SweepSpec, todo_id: str) -> TodoMessage:
    """The message of one todo of this run (task id ``<sweep>:<todo>:<run>``)."""
    t = spec.todos[todo_id]
    return TodoMessage(spec.sweep_id, spec.plan, todo_id, t.repo, spec.run,
                       priority=BROKER_PRIORITY.get(t.priority, BROKER_PRIORITY["medium"]))


def todo_task_id(spec: SweepSpec, todo_id: str) -> str:
    """The Celery task id of a todo in this run (what its message carries)."""
    return message(spec, todo_id).task_id


def dispatcher(rt: Runtime) -> Dispatcher:
    """The runtime's dispatcher, given it when it was made: by the worker, the launch
    (:func:`coordination.launch.wire`) or the sweep service
    (:func:`coordination.dispatch.sender`). Sending builds none."""
    if rt.dispatcher is None:
        raise RuntimeError("this runtime sends todos but was given no dispatcher: wire it "
                           "when it is made (coordination.dispatch.sender)")
    return rt.dispatcher


#: The longest a paced todo's message is delayed before its start asks again (seconds).
PACED_RECHECK = 300.0


def send_paced(rt: Runtime, spec: SweepSpec, todo_id: str, due: float) -> None:
    """Send a todo refused a pace token again, to start when the token is due.

    A broker-side delay (Celery's ``eta``): the worker that takes the message keeps it
    in memory, holding no pool slot and asking nothing until then, and nothing polls.
    The todo stays ``queued`` with ``paced_until`` in its checkpoint; a worker that dies
    holding the message loses it, and the supervision pass sends it again once it is
    overdue (:func:`coordination.sweeps.lost.resend_lost_messages`)."""
    m = message(spec, todo_id)
    # A long wait is asked again every PACED_RECHECK s: a message delayed past the broker's
    # visibility timeout (COORD_VISIBILITY_TIMEOUT) would be delivered twice.
    eta = min(due, time.time() + PACED_RECHECK)
    dispatcher(rt).send([TodoMessage(m.sweep_id, m.plan_id, m.todo_id, m.repo, m.run,
                                     priority=m.priority, eta=eta)])


def in_start_order(spec: SweepSpec, todo_ids: Iterable[str]) -> list[str]:
    """Higher priority first, then the longer remaining critical path (the rank)."""
    return sorted(todo_ids, key=lambda t: (spec.todos[t].rank, t))


def _gates(spec: SweepSpec, ids: list[str]) -> tuple[list[str], list[str]]:
    """``ids`` split into (gates, the others), each in the order given."""
    if spec.mode != Mode.run or not any(spec.todos[t].gate for t in ids):
        return [], ids  # (a rollback runs undos: a gate has none)
    return [t for t in ids if spec.todos[t].gate], [t for t in ids if not spec.todos[t].gate]


def send(rt: Runtime, spec: SweepSpec, todo_ids: Iterable[str]) -> None:
    """Send one message per todo, already ``queued`` (by a script, or lost and re-queued);
    a queued gate (an eager finish queued it) is opened instead, after the messages."""
    gates, ids = _gates(spec, in_start_order(spec, todo_ids))
    _messages(rt, spec, ids)
    if gates:
        open_gates(rt, spec, gates, allowed_from=(TodoStatus.queued,), now=time.time())


def _messages(rt: Runtime, spec: SweepSpec, todo_ids: list[str]) -> None:
    """One message per todo (no gate), in the order given, counted as sent."""
    if todo_ids:
        dispatcher(rt).send(message(spec, t) for t in todo_ids)
        rt.metrics.count_sent(spec.todos[t].repo for t in todo_ids)


def send_todos(rt: Runtime, spec: SweepSpec, todo_ids: Iterable[str], *, reason: str,
               allowed_from: tuple[TodoStatus, ...] = (TodoStatus.pending,)) -> list[str]:
    """Queue todos (``allowed_from``: not yet started) and send them, gates opened;
    returns those sent or opened. Waves: only the current wave's, up to its cap."""
    gates, ids = _gates(spec, in_start_order(spec, todo_ids))
    cap, counted = 0, list[str]()
    if spec.waves:
        rec = rt.checkpoints.get_sweep_fields(spec.sweep_id, ("wave", "wave_state"))
        k = (rec or {}).get("wave")
        if k is None or (rec or {}).get("wave_state") != "running":
            return []  # between waves (soaking, halted) or not started: nothing goes
        wave = spec.waves[int(k)]
        members = set(wave.todos)
        gates = [t for t in gates if t in members]
        ids = [t for t in ids if t in members]
        if wave.max_parallel:
            cap, counted = wave.max_parallel, [t for t in wave.todos if not spec.todos[t].gate]
    # The todos that run first, then the gates (which wait for people): no gate's opening
    # (its binding's read, a carried-over count) holds up a command's message.
    queued = rt.transitions.queue(spec.sweep_id, [(t, spec.todos[t].queue) for t in ids],
                                  via=reason, allowed_from=allowed_from, cap=cap,
                                  counted=counted)
    _messages(rt, spec, queued)  # (no gate among them: the gates are opened below)
    opened = [g for g, _ in open_gates(rt, spec, gates, allowed_from=allowed_from,
                                       now=time.time())] if gates else []
    return opened + queued


def send_level(rt: Runtime, spec: SweepSpec, level: int, *, reason: str) -> list[str]:
    """Queue and send a level's pending todos; returns those sent."""
    return send_todos(rt, spec, spec.levels[level], reason=reason)


def run_counts(rt: Runtime, spec: SweepSpec) -> dict[str, object]:
    """The counters a run starts with, written with its record (a start's, a resume's):
    each level's todos left (:meth:`SweepSpec.counters`) and, eager, each todo's
    predecessors left to succeed (a resume's kept todos count as done). Never written
    by the sender: the supervision pass carries on a run whose starter died before it
    sent anything, and a slow sender writing them after that would count its ended
    todos again."""
    fields: dict[str, object] = dict(spec.counters()) if spec.levels else {}
    if spec.strategy == Strategy.eager:
        fields.update({remaining_field(t): n for t, n in _remaining(rt, spec).items()})
    return fields


def _remaining(rt: Runtime, spec: SweepSpec) -> dict[str, int]:
    """Each todo's predecessors in the run left to succeed (a first run's: all of them)."""
    preds = sorted({p for s in spec.todos.values() for p in s.preds if p in spec.todos})
    done = {t for t, cp in rt.checkpoints.get_fields_all(spec.sweep_id, preds, ()).items()
            if cp.get("status") in DONE} if spec.run and preds else set()
    return {t: len([p for p in s.preds if p in spec.todos and p not in done])
            for t, s in spec.todos.items()}


def first_todos(rt: Runtime, spec: SweepSpec) -> list[str]:
    """Send what a new run starts with (its counters are in its record: :func:`run_counts`):
    its first level, or (eager) every todo with no predecessor left to succeed. Sent
    again by the supervision pass, after a grace, if its starter died first."""
    if spec.waves:
        return []  # the first wave starts them (:func:`coordination.sweeps.waves.start_wave`)
    if spec.strategy != Strategy.eager:
        first = list(spec.levels[0]) if spec.levels else []
    else:
        first = sorted(t for t, n in _remaining(rt, spec).items() if n == 0)
    return send_todos(rt, spec, first, reason="start") if first else []
