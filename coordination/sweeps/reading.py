"""Reading sweeps: the documents ``coord sweep status|list --json`` print."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NotRequired, TypedDict

from coordination.errors import NotFoundError, RuntimeFault
from coordination.runtime.context import Runtime
from coordination.runtime.sweep_fields import (
    RECORD_FIELDS,
    Checkpoint,
    SweepRecord,
    accepted_waves,
)
from coordination.status import SUCCESSFUL, TERMINAL, TodoStatus
from coordination.sweeps.outputs import outputs_refusal
from coordination.sweeps.runner import orphaned
from coordination.sweeps.spec import Mode, SweepSpec
from coordination.sweeps.spec_store import load_spec

if TYPE_CHECKING:  # the history store is only passed in: reading a sweep needs none of it
    from coordination.runtime.history import HistoryStore, Record

#: How many recent sweeps are looked through for ones to sync (`todo run`).
RECENT = 50

#: Todo statuses whose last lines of output people are shown without ``--json``
#: (`sweep status`, `sweep watch`, the end of every ``--wait``, `todo show`).
FAILED = (TodoStatus.failed.value, TodoStatus.compensation_failed.value)
#: How many lines of a failed todo's output they are shown unless ``--lines N``.
DEFAULT_LINES = 5
#: The label a stream's part of an output tail starts with
#: (:meth:`workers.execute.ExecResult.output_tail`).
_LABEL = re.compile(r"^--- (stdout|stderr)(?: \(last \d+ chars of \d+ bytes\))? ---$")


def iso(ts: object) -> str | None:
    if ts is None or ts == "":
        return None
    return dt.datetime.fromtimestamp(float(str(ts)), dt.timezone.utc).isoformat(
        timespec="milliseconds")


class TodoEntry(TypedDict):
    """One todo of ``coord sweep status --json``."""

    status: str
    attempts: int
    exit_code: int | None
    worker: str | None
    started_at: str | None
    finished_at: str | None
    output_tail: str
    repo: str | None
    reason: str | None
    duration: float | None
    stdout_bytes: int | None
    stderr_bytes: int | None
    lost_runs: int
    worker_gone: bool  # running, but its worker stopped beating (see mark_gone)
    outputs: dict[str, str]  # what it wrote to $COORD_OUTPUT ({}: nothing)
    #: its outputs record failed its seal (forged, copied): why; they are handed on to
    #: no todo and a sync leaves them out of the catalog
    outputs_refused: NotRequired[str]
    #: ``cached``: the earlier run it reused (sweep_id, run, todo_id, worker, finished_at)
    cached_from: NotRequired[dict[str, object]]
    #: queued waiting for a pace token: when one is due (its ``reason`` says which bucket)
    starts_at: NotRequired[str | None]
    #: a todo a rollback undid (or tried to): its undo's output tail ("" before the undo
    #: ran), while ``output_tail`` stays its change's own (see :func:`split_tails`)
    undo_output_tail: NotRequired[str]


#: A wave's states (the sweep record's ``wave_state``; ``pending``: not started).
RUNNING, SOAKING, HALTED, DONE = "running", "soaking", "halted", "done"
#: The reason a wave an unpause accepted gives (``sweep status``, the web view).
ACCEPTED = "accepted by an unpause after it halted"


class WaveRow(TypedDict):
    """One wave of ``sweep status --json``'s ``"waves"``."""

    name: str
    index: int
    state: str  # pending | running | soaking | halted | done
    todos: list[str]
    max_parallel: int
    soak: float
    success_rate: float
    succeeded: int
    ended: int
    soak_until: NotRequired[float | None]
    reason: NotRequired[str | None]


def waves_document(spec: SweepSpec, record: Mapping[str, object],
             status: Mapping[str, str]) -> list[WaveRow]:
    """The ``"waves"`` of ``sweep status --json`` (see :mod:`.waves`): each wave's name, todos, settings,
    counts and state (``pending`` before it starts)."""
    current = record.get("wave")
    state = record.get("wave_state")
    accepted = set(accepted_waves(record))
    out: list[WaveRow] = []
    for i, w in enumerate(spec.waves):
        sts = [status.get(t, TodoStatus.pending) for t in w.todos]
        if current is None or i > int(str(current)):
            st = "pending"
        elif i < int(str(current)):
            st = DONE
        else:
            st = str(state or RUNNING)
        row: WaveRow = {
            "name": w.name, "index": i, "state": st, "todos": list(w.todos),
            "max_parallel": w.max_parallel, "soak": w.soak, "success_rate": w.success_rate,
            "succeeded": sum(1 for s in sts if s in SUCCESSFUL),
            "ended": sum(1 for s in sts if s in TERMINAL)}
        if i == current and state == SOAKING:
            until = record.get("wave_until")
            row["soak_until"] = float(str(until)) if until is not None else None
        if i == current and state == HALTED:
            reason = record.get("wave_reason")
            row["reason"] = str(reason) if reason is not None else None
        elif st == DONE and i in accepted:
            row["reason"] = ACCEPTED
        out.append(row)
    return out


class EventWave(TypedDict):
    """A wave as the sweep's events tell it, for a sweep whose status has no waves any
    more (a rollback's run has none: its undos run all at once). ``todos`` is empty:
    the events count a wave's todos (``count``) without naming them; ``succeeded`` is
    None where no event said."""

    name: str
    index: int
    state: str
    todos: list[str]
    count: int | None
    succeeded: int | None
    max_parallel: int
    success_rate: float | None
    reason: str | None
    from_events: bool


def waves_from_events(rt: Runtime, sweep_id: str,
                      names: Callable[[], list[str]] | None = None) -> list[EventWave]:
    """The waves of a sweep whose current run's spec has none (a rollback's), from its
    ``wave.*`` events (what `coord sweep watch` shows): each wave's name, state and what
    its events counted. A wave that never started is named from ``names()`` (the plan's
    waves in the catalog) when they are as many as the sweep had, else by its index.
    Empty when the sweep never had waves."""
    rows: dict[int, EventWave] = {}
    total = 0

    def row(k: int, name: str | None) -> EventWave:
        if k not in rows:
            rows[k] = {"name": name or f"wave {k + 1}", "index": k, "state": "pending",
                       "todos": [], "count": None, "succeeded": None, "max_parallel": 0,
                       "success_rate": None, "reason": None, "from_events": True}
        elif name:
            rows[k]["name"] = name
        return rows[k]

    for ev in rt.events.read(sweep_id):
        if not ev.kind.startswith("wave."):
            continue
        d = ev.data
        try:
            k = int(d["index"])
        except (KeyError, TypeError, ValueError):
            continue
        w = row(k, str(d["wave"]) if d.get("wave") is not None else None)
        if ev.kind == "wave.started":
            total = max(total, int(d.get("waves") or 0))
            for later in [i for i in rows if i > k]:  # a new run starts its waves again
                rows[later]["state"] = "pending"
            w["state"], w["reason"] = "running", None
            w["count"] = int(d["todos"]) if d.get("todos") is not None else None
            w["max_parallel"] = int(d.get("max_parallel") or 0)
        elif ev.kind == "wave.soaking":
            w["state"] = "soaking"
            if d.get("succeeded") is not None:
                w["succeeded"] = int(d["succeeded"])
        elif ev.kind == "wave.done":
            w["state"] = "done"
            if d.get("succeeded") is not None:
                w["succeeded"] = int(d["succeeded"])
            if d.get("accepted"):
                w["reason"] = ACCEPTED
        elif ev.kind == "wave.halted":
            w["state"] = "halted"
            w["reason"] = str(d["reason"]) if d.get("reason") is not None else None
    planned: list[str] | None = None
    for k in range(total):
        if k not in rows:  # (never started: its name from the catalog, if it still fits)
            if planned is None:
                planned = names() if names is not None else []
            row(k, planned[k] if len(planned) == total else None)
    return [rows[k] for k in sorted(rows)]


class GateEntry(TypedDict):
    """One gate of ``coord sweep status --json``'s ``"gates"``."""

    status: str
    needed: int
    approvals: list[str]  # who approved it (under its current binding)
    rejected_by: str | None
    approvers: list[str]  # its from: (empty: anyone)
    starter_may_approve: bool
    started_by: str | None
    waiting_since: str | None
    expires_at: str | None
    on_expiry: str
    votes: list[dict[str, object]]  # every decision: by, decision, at, comment, current
    refused: list[str]  # votes under its binding that do not count (forged, unsigned...)


class StatusDocument(TypedDict):
    """``coord sweep status --json``."""

    sweep_id: str
    plan: str | None
    strategy: str | None
    status: str
    reason: str | None
    run: int
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    deadline: str | None
    levels: list[list[str]]
    counts: dict[str, int]
    todos: dict[str, TodoEntry]
    synced: NotRequired[dict[str, object]]  # what a sync wrote (``--wait``)
    gates: NotRequired[dict[str, GateEntry]]  # a sweep with gates
    #: a sweep of a plan with waves; after a rollback (whose run has none), the waves it
    #: went through as its events tell them (:func:`waves_from_events`)
    waves: NotRequired[list[WaveRow] | list[EventWave]]
    #: a sweep that rolled back: why ("after TODO-018 failed: exit 1", "by user")
    rollback_reason: NotRequired[str]
    #: embedded, live, and the process running it is gone: why (sweeps/runner.py)
    orphaned: NotRequired[str]
    #: what started it (sweeps/starts/triggers.py); None: a sweep recorded before coord said
    trigger: dict[str, object] | None


class SweepRow(TypedDict):
    """One row of ``coord sweep list --json``."""

    sweep_id: str | None
    plan: str | None
    strategy: str | None
    status: str | None
    created_at: str | None
    finished_at: str | None
    reason: str | None
    #: what started it: cli, schedule or push (None: recorded before coord said)
    trigger: str | None
    #: embedded, live, and the process running it is gone: why (as ``sweep status``)
    orphaned: NotRequired[str]


def todo_entry(cp: Checkpoint, repo: str | None) -> TodoEntry:
    """One todo of ``coord sweep status --json`` from its checkpoint."""
    entry: TodoEntry = {
        "status": cp.get("status", TodoStatus.pending),
        "attempts": int(cp.get("attempts") or 0),
        "exit_code": cp.get("exit_code"),
        "worker": cp.get("worker"),
        "started_at": iso(cp.get("started_at")),
        "finished_at": iso(cp.get("finished_at")),
        "output_tail": cp.get("output_tail") or "",
        "repo": repo,
        "reason": cp.get("reason"),
        "duration": cp.get("duration"),
        "stdout_bytes": cp.get("stdout_bytes"),
        "stderr_bytes": cp.get("stderr_bytes"),
        "lost_runs": int(cp.get("lost_runs") or 0),
        "worker_gone": False,
        "outputs": dict(cp.get("outputs") or {}),
    }
    reused = cp.get("cached_from")
    if isinstance(reused, dict) and entry["status"] == TodoStatus.cached:
        entry["cached_from"] = reused
    if cp.get("paced_until") is not None and entry["status"] == TodoStatus.queued:
        entry["starts_at"] = iso(cp.get("paced_until"))
    return entry


def mark_gone(rt: Runtime, todos: dict[str, TodoEntry]) -> None:
    """Flag the running todos whose worker stopped beating (``GONE_AFTER`` of its beats,
    :meth:`WorkerRegistry.gone`): what people see seconds after a worker died, while the
    todo stays ``running`` until its lease expires and the supervisor runs it again."""
    running = {t: v["worker"] for t, v in todos.items()
               if v["status"] == TodoStatus.running and v["worker"]}
    if not running:
        return
    try:
        gone = rt.workers.gone(running.values())
    except Exception:  # liveness is advisory: a status never fails on it
        return
    for t, worker in running.items():
        todos[t]["worker_gone"] = worker in gone


def summarize(cps: dict[str, Checkpoint]) -> dict[str, int]:
    """How many todos are in each status."""
    out: dict[str, int] = {}
    for cp in cps.values():
        s = cp.get("status", TodoStatus.pending)
        out[s] = out.get(s, 0) + 1
    return out


def sweep_row(rec: SweepRecord, *, embedded: bool = False) -> SweepRow:
    """One row of ``coord sweep list --json`` from a sweep record; ``embedded``: the
    runtime's mode, in which a live sweep whose process is gone is marked ``orphaned``
    (its ``status`` stays, as in ``sweep status``)."""
    row: SweepRow = {
        "sweep_id": rec.get("id"),
        "plan": rec.get("plan"),
        "strategy": rec.get("strategy"),
        "status": rec.get("status"),
        "created_at": iso(rec.get("created_at")),
        "finished_at": iso(rec.get("finished_at")),
        "reason": rec.get("reason"),
        "trigger": str((_trigger(rec) or {}).get("kind") or "") or None,
    }
    gone = orphaned(rec, embedded)
    if gone is not None:
        row["orphaned"] = gone
    return row


def _trigger(rec: SweepRecord) -> dict[str, object] | None:
    """A record's ``trigger`` (an object), or None."""
    got = rec.get("trigger")
    return dict(got) if isinstance(got, dict) else None


def vanished(sweep_id: str) -> RuntimeFault:
    return RuntimeFault(
        f"sweep {sweep_id} vanished from Redis while it ran (its record is gone: "
        "Redis restarted without persistence, or was flushed or evicted)",
        hint="run Redis with --appendonly yes and --maxmemory-policy noeviction; "
        "start the sweep again",
    )


def missing(rt: Runtime, sweep_id: str) -> NotFoundError:
    """The error of a sweep with no record."""
    hint = "see `coord sweep list`"
    if rt.embedded:
        hint = ("embedded sweeps are kept beside the catalog they ran from (by its "
                "embedded server), for COORD_RETENTION_DAYS; see `coord sweep list` "
                "(and --file)")
    return NotFoundError(f"unknown sweep {sweep_id!r}", hint=hint)


def record(rt: Runtime, sweep_id: str) -> SweepRecord:
    """The sweep's record; :class:`NotFoundError` if there is none."""
    rec = rt.checkpoints.get_sweep(sweep_id)
    if rec is None:
        raise missing(rt, sweep_id)
    return rec


#: The record fields a status document is made from: all but the spec, which
#: load_spec reads (once per run per process), not a second time here (5 MB at 10,000).
STATUS_FIELDS = tuple(f for f in RECORD_FIELDS if f != "spec")


def status(rt: Runtime, sweep_id: str,
           wave_names: Callable[[str], list[str]] | None = None) -> StatusDocument:
    """``coord sweep status --json``. ``wave_names(plan)``: the plan's waves as the
    catalog names them, for a rolled-back sweep's waves that never started."""
    rec = rt.checkpoints.get_sweep_fields(sweep_id, STATUS_FIELDS)
    if rec is None:
        raise missing(rt, sweep_id)
    spec = load_spec(rt, sweep_id, rec)
    ids = list(spec.todos) if spec else []
    cps = rt.checkpoints.get_all(sweep_id, ids)
    todos = {tid: todo_entry(cps.get(tid) or Checkpoint(status=TodoStatus.pending),
                             spec.todos[tid].repo if spec else None)
             for tid in ids}
    for tid, entry in todos.items():
        if entry["outputs"]:
            why = outputs_refusal(rt.settings, sweep_id, tid, cps.get(tid) or {})
            if why is not None:
                entry["outputs_refused"] = why
    mark_gone(rt, todos)
    if spec is not None and spec.mode == Mode.rollback:
        undone = [t for level in spec.levels for t in level]
        for t, change in rt.checkpoints.get_change_runs(sweep_id, undone).items():
            split_tails(todos[t], cps.get(t) or Checkpoint(status=TodoStatus.pending), change)
    doc: StatusDocument = {
        "sweep_id": sweep_id,
        "plan": rec.get("plan"),
        "strategy": rec.get("strategy"),
        "status": rec.get("status", ""),
        "reason": rec.get("reason"),
        "run": int(rec.get("run") or 0),
        "created_at": iso(rec.get("created_at")),
        "started_at": iso(rec.get("started_at")),
        "finished_at": iso(rec.get("finished_at")),
        "deadline": iso(rec.get("deadline")),
        "levels": spec.levels if spec else [],
        "counts": summarize(cps),
        "todos": todos,
        "trigger": _trigger(rec),
    }
    if rec.get("rollback_reason"):
        doc["rollback_reason"] = str(rec.get("rollback_reason"))
    if spec is not None and spec.gates():
        doc["gates"] = gate_entries(rt, spec, cps, rec)
    if spec is not None and spec.waves:
        doc["waves"] = waves_document(spec, rec, {t: v["status"] for t, v in todos.items()})
    elif spec is not None and rec.get("wave") is not None:
        # A run without waves of a sweep that had them (a rollback's undos run at once):
        # the waves it went through, from its events (what the web view shows too).
        plan = str(rec.get("plan") or "")
        told = waves_from_events(rt, sweep_id, None if wave_names is None or not plan
                                 else lambda: wave_names(plan))
        if told:
            doc["waves"] = told
    gone = orphaned(rec, rt.settings.embedded)
    if gone is not None:
        doc["orphaned"] = gone
    return doc


def split_tails(entry: TodoEntry, cp: Checkpoint, change: Checkpoint) -> None:
    """A todo of a rollback: its undo writes the checkpoint's output tail anew, so the
    tail of its change's own run (kept apart when the rollback started) is put back
    in ``output_tail`` and the undo's goes to ``undo_output_tail``. (A todo's attempts
    count on across runs: more than the change's means the undo started.)"""
    if int(cp.get("attempts") or 0) > int(change.get("attempts") or 0):
        entry["undo_output_tail"] = entry["output_tail"]
    else:
        entry["undo_output_tail"] = ""
    entry["output_tail"] = str(change.get("output_tail") or "")


def gate_entries(rt: Runtime, spec: SweepSpec, cps: dict[str, Checkpoint],
                 rec: SweepRecord) -> dict[str, GateEntry]:
    """The ``"gates"`` of a status document: each gate's state, who approved, its votes."""
    ids = spec.gates()
    votes = rt.checkpoints.gate_votes(spec.sweep_id, ids)
    out: dict[str, GateEntry] = {}
    for g in ids:
        cp = cps.get(g) or Checkpoint(status=TodoStatus.pending)
        gate = spec.todos[g].gate
        assert gate is not None  # (spec.gates() are the todos that have one)
        binding = cp.get("binding")
        mine = sorted(votes.get(g, {}).items(), key=lambda kv: float(
            str((kv[1] or {}).get("at") or 0)) if isinstance(kv[1], dict) else 0.0)
        out[g] = {
            "status": str(cp.get("status") or TodoStatus.pending),
            "needed": int(gate.get("approvals") or 1),
            "approvals": [str(u) for u in cp.get("approvals") or []],
            "rejected_by": str(cp["rejected_by"]) if cp.get("rejected_by") else None,
            "approvers": list(gate.get("from") or []),
            "starter_may_approve": gate.get("starter_may_approve") is not False,
            "started_by": rec.get("started_by"),
            "waiting_since": iso(cp.get("waiting_since")),
            "expires_at": iso(cp.get("expires_at")),
            "on_expiry": str(gate.get("on_expiry") or "cancel"),
            "votes": [{"by": u, "decision": v.get("d"), "at": iso(v.get("at")),
                       "comment": v.get("c") or "", "current": v.get("b") == binding}
                      for u, v in mine if isinstance(v, dict)],
            "refused": [str(w) for w in cp.get("refused") or []],
        }
    return out


def last_lines(output_tail: str | None, lines: int = DEFAULT_LINES,
               ) -> list[tuple[str, list[str]]]:
    """The last ``lines`` lines of a todo's output, from the tail its checkpoint (or its
    history record) keeps: stderr's first, then stdout's if stderr had fewer, as
    ``[(stream, lines), ...]`` (streams without a line left out; trailing blank lines
    dropped). The tail holds stdout then stderr, each under a ``--- stdout ---`` label;
    text before any label (a tail cut at its front, as history keeps it) is ``output``."""
    if lines <= 0 or not output_tail:
        return []
    parts: dict[str, list[str]] = {}
    current = "output"
    for line in output_tail.splitlines():
        m = _LABEL.match(line)
        if m:
            current = m.group(1)
            parts.setdefault(current, [])
        else:
            parts.setdefault(current, []).append(line)
    out: list[tuple[str, list[str]]] = []
    left = lines
    for stream in ("stderr", "stdout", "output"):
        text = parts.get(stream, [])
        while text and not text[-1].strip():
            text = text[:-1]
        if text and left > 0:
            out.append((stream, text[-left:]))
            left -= len(out[-1][1])
    return out


def failed_todos(todos: dict[str, TodoEntry]) -> list[str]:
    """The todos of a status document whose output people should see (:data:`FAILED`)."""
    return [t for t, v in todos.items() if v["status"] in FAILED]


def last_failure(store: HistoryStore, todo_id: str, *, repo: str | None = None,
                 ) -> Record | None:
    """The newest history record of ``todo_id`` (of ``repo``) that failed, with its output
    tail: what `coord todo show` prints of a todo a sync marked ``failed``. None when none
    of its runs in the history (``COORD_HISTORY_DAYS``) failed."""
    for rec in store.scan(kinds={"todo"}, since=None, repo=repo, text=todo_id):
        if rec.get("todo_id") == todo_id and rec.get("status") in FAILED:
            return rec
    return None
