"""The fields of a sweep's Redis hash: their names, their types as read, their JSON.

A sweep is one Redis hash (``Keys.sweep``), so a transition reads everything
it decides on in one HMGET and writes what it changed in one HSET, and a whole
sweep is read, kept or dropped as one key whatever its size:

==================  ==================================================================
record fields       :data:`RECORD_FIELDS`, JSON text each (status, run, deadline, spec...)
counters            ``terminal``, ``level_left:<k>``, ``level_ok:<k>`` (integers);
                    ``level_said:<k>``: 1 once the level's ``level.done`` was said
                    (lua/level_said.lua), 0 before; absent in runs of before 0.6
``t:<todo>``        the todo's checkpoint: one JSON object. Absent: the todo is
                    pending and nothing has happened to it yet
``o:<todo>``        the output tail of its last run (text)
``c:<todo>``        a rolled-back todo: its checkpoint (with its output tail) as the
                    change's own run left it, before its undo ran (JSON)
``r:<todo>``        eager strategy: its predecessors not yet succeeded (integer)
``g:<todo>``        a gate's votes: person -> {d: approve|reject, b: binding, at, c: comment,
                    ssh: SSH signature, via, sig/kid: evidence seal} (sweeps/governance/approvals.py)
``m:<repo>``        the run's own metric counts of the repo (JSON), written by its
                    finishes and folded into ``Keys.metrics`` when it ends, with the
                    ``mrepos`` it lists (runtime/metrics.py)
``n:<status>``      its tally: how many todos are in that status (pending: untouched
                    ones too), moved with every status change by the transition scripts
``a:<k>``           ... and which todos are in a status people should look at
                    (``status.ATTENTION``), JSON ``{todo: status}``, spread over
                    :data:`TALLY_BUCKETS` fields (lua/_common.lua, ``tally_move``)
``p:<todo>``        the todo's repo (JSON), for the rows of a status read from the tally
``w:<todo>``        "1" while someone waits for a slot its run holds: its finish wakes the
                    line (lua/todo_start.lua); absent or "": nobody, the line not looked at
``d:<todo>``        set once when the supervision pass said the todo overdue (``d:@plan``:
                    its plan): runtime/overdue.py
==================  ==================================================================

What reads and writes them is :class:`coordination.runtime.checkpoints.CheckpointStore`
(and the transition scripts, :mod:`coordination.runtime.transitions`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TypedDict, cast

from coordination.jsonable import JSONValue
from coordination.status import TodoStatus


class Checkpoint(TypedDict, total=False):
    """A todo's checkpoint within one run of a sweep (``t:<todo>``, JSON), as read.

    ``status`` is always there (pending when nothing happened to the todo yet);
    ``output_tail`` only when the read asked for tails. Written by the transition
    scripts (start, finish, lost, end, queue) and :meth:`CheckpointStore.reset_todos`.
    """

    status: str
    attempts: int
    exit_code: int | None
    worker: str | None
    started_at: float | None
    finished_at: float | None
    duration: float | None
    reason: str | None
    output_tail: str
    stdout_bytes: int
    stderr_bytes: int
    lost_runs: int
    lost_reason: str | None
    lease_key: str | None
    token: str | None
    fence: int | None
    resource_keys: list[str]
    queued_at: float | None
    held_at: float | None
    lost_at: float | None
    suspect_at: float | None
    #: what it wrote to ``$COORD_OUTPUT`` (key -> value), when it succeeded
    outputs: dict[str, str]
    #: their seal (``{"sig", "kid"}``, None when written without a key): see
    #: :func:`coordination.sweeps.outputs.outputs_fields`
    outputs_seal: dict[str, str] | None
    #: the seal of its status and exit code, by whoever ended it, with the run that
    #: did (``{"run", "sig", "kid"}``; None without a key): see
    #: :func:`coordination.trust.evidence.outcome_stamp`
    outcome_seal: dict[str, object] | None
    # a gate (lua/gate_open.lua, lua/gate_decide.lua)
    binding: str  # what its approvals are bound to (spec digest, predecessors' outcomes)
    waiting_since: float
    expires_at: float | None
    needed: int
    approvals: list[str]  # who approved it under its binding (votes that verified)
    refused: list[str]  # the votes that did not verify, and why
    settled: str  # sha1 of the votes field last counted (lua/gate_decide.lua)
    rejected_by: str | None
    #: the seal of the decision that passed it (``{"run", "sig", "kid"}``): what its
    #: successors check (see :mod:`coordination.sweeps.governance.decisions`)
    decision: dict[str, object] | None
    #: a ``cache:`` todo's key (its dependents' keys include it), and for ``cached``
    #: the run it reused (see :mod:`coordination.runtime.cache`)
    cache_key: str | None
    cached_from: dict[str, object] | None


class ChangeRun(Checkpoint, total=False):
    """A rolled-back todo's checkpoint of its change's own run (``c:<todo>``, JSON),
    kept when its undo started: the checkpoint, its output tail, and the command."""

    command: str | None


class SweepRecord(TypedDict, total=False):
    """A sweep's record: the :data:`RECORD_FIELDS` read (with ``id``), as read.

    ``status`` is always there (a record without one is an unknown sweep); a
    partial read (:meth:`CheckpointStore.get_sweep_fields`) holds what it asked for.
    ``unattended:<repo>`` marks are read by name, outside this type."""

    id: str
    plan: str
    strategy: str
    kind: str
    status: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    deadline: float | None
    reason: str | None
    run: int
    spec: str
    spec_sig: str | None
    spec_key_id: str | None
    catalog: str | None
    atomic: bool
    terminal: int
    full_pass_terminal: int | None
    full_pass_at: float | None
    paused_at: float | None
    paused_from: str | None
    paused_total: float
    synced_at: float | None
    rollback_of: str | None
    rollback_reason: str | None
    not_compensable: list[str]
    stopped_run: int | None  # the run an atomic sweep's first failure stopped
    stopped_by: str | None  # ... and that failure ("TODO-018 failed: exit 1")
    todos: int
    outputs: int  # how many of its todos kept results ($COORD_OUTPUT)
    started_by: str | None  # who started the sweep (a gate may refuse their approval)
    #: with the catalog's approvers:, the starter's SSH signature of the start (over
    #: sshsig.start_message) and its key's fingerprint: who started it, proven
    starter_sig: str | None
    starter_key: str | None
    wave: int | None  # the current wave's index (a sweep of a plan with waves:)
    wave_state: str | None  # running | soaking | halted | done
    wave_until: float | None  # a soaking wave's end
    wave_reason: str | None  # why the wave halted
    waves_accepted: list[int] | None  # the waves of this run an unpause accepted
    again: bool  # `plan sweep --again`: completed todos ran too (its sync reads it)
    #: embedded: the process running it ({"host", "pid", "started"}: sweeps/runner.py)
    runner: dict[str, object] | None
    #: the repos whose own metric counts the run's finishes write (runtime/metrics.py)
    mrepos: list[str]
    #: the supervisor's last look for lost messages, by whichever worker took the pass
    #: (sweeps/lost.py): a full look's time and the broker lists it read, a suspects' look
    lost_look_at: float | None
    lost_look_lists: int
    suspect_look_at: float | None
    #: what started it: ``{"kind": "cli" | "schedule" | "push", ...}`` with the firing's
    #: time (schedule) or the push's repo, branch and SHA (push): sweeps/starts/triggers.py
    trigger: dict[str, object] | None
    #: the end event of its run, stored by the move that ended it and said (then
    #: dropped) by whoever takes it off the active sweeps (lua/sweep_delist.lua)
    ending: str | None
    #: a push's sweep: the run whose final commit status was posted, written after the
    #: post (a later ender of that run posts it no more): sweeps/notices/commit_status.py
    status_posted: int | None


#: The fields of a sweep record (the sweep's ``terminal`` count included; per-level
#: counters are under RECORD_PREFIXES, the todos' fields under t:/o:/r:). A
#: write of any other name is refused: get_sweep reads exactly these, so an
#: undeclared field would be written and never read.
RECORD_FIELDS = (
    "plan", "strategy", "kind", "status", "created_at", "started_at", "finished_at",
    "deadline", "reason", "run", "spec", "spec_sig", "spec_key_id", "catalog", "atomic",
    "terminal", "full_pass_terminal", "full_pass_at", "paused_at", "paused_from",
    "paused_total", "synced_at", "rollback_of", "rollback_reason", "not_compensable",
    "todos", "layout", "stopped_run", "stopped_by", "outputs",
    "started_by", "starter_sig", "starter_key", "wave", "wave_state", "wave_until",
    "wave_reason", "waves_accepted", "again", "runner",
    "mrepos", "lost_look_at", "lost_look_lists", "suspect_look_at", "tally", "shape",
    "trigger", "ending", "status_posted",
)
#: Record fields named per level or per repo (or, written with its spec, per todo: its
#: repo and, eager, its predecessors left to succeed; counted per status: the tally):
#: one of these prefixes and a suffix.
RECORD_PREFIXES = ("level_left:", "level_ok:", "level_said:", "unattended:", "p:", "n:",
                   "r:")
#: The ``a:<k>`` fields of a sweep's tally (lua/_common.lua: TALLY_BUCKETS, tally_bucket).
TALLY_BUCKETS = 256
#: ``tally`` of a sweep that keeps one (absent: a sweep of before it, read in full).
TALLY_VERSION = 1
#: ``layout`` of a sweep recorded this way (sweeps of coord 0.1 have none: their
#: checkpoints were a hash each, moved in once when a runtime is opened:
#: :mod:`coordination.runtime.migrations`).
LAYOUT = 2


def accepted_waves(record: Mapping[str, object]) -> list[int]:
    """The record's ``waves_accepted``: the indexes of the waves of its run an unpause
    accepted (empty when none was, or the field is absent)."""
    got = record.get("waves_accepted")
    return [int(str(i)) for i in got] if isinstance(got, list) else []


def todo_field(todo_id: str) -> str:
    """The sweep-hash field of a todo's checkpoint."""
    return f"t:{todo_id}"


def tail_field(todo_id: str) -> str:
    """The sweep-hash field of a todo's last output tail."""
    return f"o:{todo_id}"


def repo_field(todo_id: str) -> str:
    """The sweep-hash field of a todo's repo (written with its spec)."""
    return f"p:{todo_id}"


def count_field(status: str) -> str:
    """The sweep-hash field of its tally's count of todos in ``status``."""
    return f"n:{status}"


def tally_bucket(todo_id: str) -> int:
    """The ``a:<k>`` field a todo's attention entry is kept in: lua/_common.lua's
    ``tally_bucket``, over the id's UTF-8 bytes."""
    h = 0
    for b in todo_id.encode("utf-8"):
        h = (h * 31 + b) % 65521
    return h % TALLY_BUCKETS


class Tally(TypedDict):
    """A sweep's tally as read: how many todos in each status (those counted, zero
    left out; pending includes the todos nothing happened to yet), and the todos in
    an attention status (todo -> status)."""

    counts: dict[str, int]
    attention: dict[str, str]


def change_field(todo_id: str) -> str:
    """The sweep-hash field of a rolled-back todo's checkpoint of its change's own run."""
    return f"c:{todo_id}"


def remaining_field(todo_id: str) -> str:
    """The sweep-hash field of a todo's count of predecessors not yet succeeded."""
    return f"r:{todo_id}"


def encode(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def decode(raw: str) -> JSONValue:
    """JSON value of a field; text written by something else comes back as is."""
    try:
        value: JSONValue = json.loads(raw)
    except ValueError:
        return raw
    return value


def checkpoint(raw: str | bytes | None, tail: str | bytes | None = None) -> Checkpoint:
    """A todo's checkpoint from its ``t:`` field (and its ``o:`` tail, when read);
    ``raw``/``tail`` as a decoding client returns them (str, or None when absent)."""
    parsed = json.loads(raw) if raw else {}
    # ([] is how one cjson spells an empty object)
    cp = cast(Checkpoint, parsed if isinstance(parsed, dict) else {})
    cp.setdefault("status", TodoStatus.pending.value)
    cast(dict[str, object], cp).pop("has_tail", None)
    if tail is not None:
        cp["output_tail"] = tail if isinstance(tail, str) else tail.decode()
    return cp
