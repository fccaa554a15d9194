"""Sweep records and per-todo checkpoints: the runtime's source of truth.

A sweep is one Redis hash (``Keys.sweep``), so a transition reads everything
it decides on in one HMGET and writes what it changed in one HSET, and a whole
sweep is read, kept or dropped as one key whatever its size:

==================  ==================================================================
record fields       :data:`RECORD_FIELDS`, JSON text each (status, run, deadline, spec...)
counters            ``terminal``, ``level_left:<k>``, ``level_ok:<k>`` (integers)
``t:<todo>``        the todo's checkpoint: one JSON object. Absent: the todo is
                    pending and nothing has happened to it yet
``o:<todo>``        the output tail of its last run (text)
``c:<todo>``        a rolled-back todo: its checkpoint (with its output tail) as the
                    change's own run left it, before its undo ran (JSON)
``r:<todo>``        eager strategy: its predecessors not yet succeeded (integer)
``g:<todo>``        a gate's votes: person -> {d: approve|reject, b: binding, at, c: comment,
                    ssh: SSH signature, via, sig/kid: evidence seal} (sweeps/approvals.py)
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
==================  ==================================================================

Whether a todo belongs to a sweep is its spec's to say (workers check that
first); here a todo the sweep never touched reads as pending. Every transition
that depends on the current state (a status change, a claim, a lease holder's
write) happens in a Lua script that reads and writes in one step
(:mod:`coordination.runtime.transitions` and the scripts used below); plain
writes are for the one writer that owns a record at that moment.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, TypedDict, cast

import redis
from redis.typing import EncodableT, FieldT

from coordination.jsonable import JSONValue
from coordination.keys import Keys
from coordination.runtime.queues import queued_task_ids
from coordination.runtime.scripts import lua
from coordination.status import (  # noqa: F401 (TERMINAL re-exported)
    SWEEP_TRANSITIONS,
    TERMINAL,
    SweepStatus,
    TodoStatus,
)

if TYPE_CHECKING:
    from coordination.runtime.leases import Lease

log = logging.getLogger(__name__)

TODO_STATUSES = frozenset(TodoStatus)


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
    #: successors check (see :mod:`coordination.sweeps.decisions`)
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


class TransitionRefused(ValueError):
    """A caller asked for a sweep status change the status module does not allow."""


def legal_sources(new: str, allowed_from: Iterable[str]) -> list[str]:
    """The statuses of ``allowed_from`` a sweep may move to ``new`` from, by
    :data:`coordination.status.SWEEP_TRANSITIONS`: a compare-and-set never makes any
    other move. None of them: the caller asks for a move that can never be made (a
    bug), refused before Redis is touched."""
    target = SweepStatus(new)
    legal = sorted(str(s) for s in allowed_from if target in SWEEP_TRANSITIONS[SweepStatus(s)])
    if not legal:
        raise TransitionRefused(f"a sweep may not move from {', '.join(sorted(map(str, allowed_from))) or 'nothing'} "
                                f"to {target}: see coordination.status.SWEEP_TRANSITIONS")
    return legal



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
    "wave_reason", "again", "runner",
    "mrepos", "lost_look_at", "lost_look_lists", "suspect_look_at", "tally", "shape",
)
#: Record fields named per level or per repo (or, written with its spec, per todo: its
#: repo; counted per status: the tally): one of these prefixes and a suffix.
RECORD_PREFIXES = ("level_left:", "level_ok:", "unattended:", "p:", "n:")
#: The ``a:<k>`` fields of a sweep's tally (lua/_common.lua: TALLY_BUCKETS, tally_bucket).
TALLY_BUCKETS = 256
#: ``tally`` of a sweep that keeps one (absent: a sweep of before it, read in full).
TALLY_VERSION = 1
#: ``layout`` of a sweep recorded this way (sweeps of coord 0.1 have none: their
#: checkpoints were a hash each, moved in once when a runtime is opened:
#: :mod:`coordination.runtime.migrations`).
LAYOUT = 2

#: What a listing reads of each record: not the spec (megabytes at 10,000 todos), nor
#: the layout (which no read looks at).
_LIST_FIELDS = tuple(f for f in RECORD_FIELDS if f not in (
    "spec", "layout", "mrepos", "lost_look_at", "lost_look_lists", "suspect_look_at"))


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


def _check_record_fields(names: Iterable[str]) -> None:
    bad = [n for n in names if n not in RECORD_FIELDS and not n.startswith(RECORD_PREFIXES)]
    if bad:
        raise ValueError(f"unknown sweep record field(s) {bad}: declare them in "
                         "coordination.runtime.checkpoints.RECORD_FIELDS")


def _mapping(fields: Mapping[str, object]) -> dict[FieldT, EncodableT]:
    """Field -> JSON text, typed loosely for redis-py's HSET mapping."""
    return {k: encode(v) for k, v in fields.items()}


def _pairs(fields: Mapping[str, object]) -> list[str]:
    out: list[str] = []
    for k, v in fields.items():
        out += [k, encode(v)]
    return out


class CheckpointStore:
    """Reads and writes sweep records and todo checkpoints."""

    def __init__(self, r: redis.Redis, keys: Keys) -> None:
        self.r = r
        self.keys = keys

    # -- sweeps -----------------------------------------------------------------
    def create_sweep(self, sweep_id: str, record: Mapping[str, object]) -> None:
        """Write the sweep record and its index entry at once (MULTI/EXEC: a reader
        never finds the sweep listed without its record). Its todos are pending
        without a write each."""
        fields = dict(record)
        fields.setdefault("status", SweepStatus.queued.value)
        created = float(str(fields.setdefault("created_at", time.time())))
        fields["layout"] = LAYOUT
        _check_record_fields(fields)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.keys.sweep(sweep_id), mapping=_mapping(fields))
        pipe.zadd(self.keys.sweeps, {sweep_id: created})
        pipe.execute()

    def _record(self, sweep_id: str, names: tuple[str, ...], values: list[str | bytes | None]
                ) -> SweepRecord | None:
        rec = cast(SweepRecord, {k: decode(str(v)) for k, v in zip(names, values)
                                 if v is not None})
        if "status" not in rec:
            return None
        cast(dict[str, object], rec).pop("layout", None)
        rec["id"] = sweep_id
        return rec

    def get_sweep(self, sweep_id: str) -> SweepRecord | None:
        """The sweep record (:data:`RECORD_FIELDS`, one HMGET) with ``id`` added, or
        None if unknown."""
        values = self.r.hmget(self.keys.sweep(sweep_id), list(RECORD_FIELDS))
        return self._record(sweep_id, RECORD_FIELDS, values)

    def get_sweep_fields(self, sweep_id: str, fields: tuple[str, ...]) -> SweepRecord | None:
        """Some fields of the sweep record (one HMGET; never its large spec unless
        asked), with ``id`` added; None if the sweep is unknown (no ``status``)."""
        names = tuple(dict.fromkeys(("status", *fields)))
        values = self.r.hmget(self.keys.sweep(sweep_id), list(names))
        return self._record(sweep_id, names, values)

    def get_tally(self, sweep_id: str, fields: tuple[str, ...]
                  ) -> tuple[SweepRecord | None, Tally | None]:
        """Some record fields (as :meth:`get_sweep_fields`) and the sweep's tally, in one
        HMGET: the record is None for an unknown sweep, the tally None for a sweep that
        keeps none."""
        names = tuple(dict.fromkeys(("status", "tally", *fields)))
        counts = [count_field(s) for s in TodoStatus]
        buckets = [f"a:{k}" for k in range(TALLY_BUCKETS)]
        values = self.r.hmget(self.keys.sweep(sweep_id), [*names, *counts, *buckets])
        rec = self._record(sweep_id, names, values[:len(names)])
        if rec is None or rec.get("tally") is None:
            return rec, None
        tally = Tally(counts={}, attention={})
        for status, raw in zip(TodoStatus, values[len(names):len(names) + len(counts)]):
            if raw is not None and int(raw) != 0:
                tally["counts"][status.value] = int(raw)
        for raw in values[len(names) + len(counts):]:
            entries = json.loads(raw) if raw else None
            if isinstance(entries, dict):
                tally["attention"].update({str(t): str(st) for t, st in entries.items()})
        return rec, tally

    def get_rows(self, sweep_id: str, todo_ids: list[str], tails: Iterable[str] = ()
                 ) -> tuple[dict[str, Checkpoint], dict[str, str]]:
        """Checkpoints of ``todo_ids`` (with the output tails of ``tails``) and their
        repos (:func:`repo_field`), in one HMGET: what a status shows of a few todos."""
        with_tail = [t for t in dict.fromkeys(tails)]
        names = ([todo_field(t) for t in todo_ids] + [tail_field(t) for t in with_tail]
                 + [repo_field(t) for t in todo_ids])
        if not names:
            return {}, {}
        values = self.r.hmget(self.keys.sweep(sweep_id), names)
        n = len(todo_ids)
        tail_of = dict(zip(with_tail, values[n:n + len(with_tail)]))
        cps: dict[str, Checkpoint] = {}
        for t, raw in zip(todo_ids, values[:n]):
            cps[t] = checkpoint(raw, tail_of.get(t) or ("" if t in tail_of else None))
        repos = {t: str(decode(str(raw))) for t, raw in zip(todo_ids, values[n + len(with_tail):])
                 if raw is not None}
        return cps, repos

    def sweep_status(self, sweep_id: str) -> str | None:
        """The sweep's status, or None if it is unknown (one HGET)."""
        raw = self.r.hget(self.keys.sweep(sweep_id), "status")
        return None if raw is None else str(decode(str(raw)))

    def update_sweep(self, sweep_id: str, **fields: object) -> None:
        """Write record fields unconditionally; never its status (that is a
        compare-and-set: :meth:`set_sweep_status`)."""
        if "status" in fields:
            raise TransitionRefused("a sweep's status changes by set_sweep_status only")
        if fields:
            _check_record_fields(fields)
            self.r.hset(self.keys.sweep(sweep_id), mapping=_mapping(fields))

    def swap_sweep_field(self, sweep_id: str, name: str, old: object, new: object) -> bool:
        """Set record field ``name`` to ``new`` if it still holds ``old`` (None: absent),
        of a sweep that exists; False otherwise. The race it closes: two processes
        adopting one orphaned sweep at once (both saw its runner gone), only one of
        which may run it. WATCH/MULTI: the field's read and write are one step."""
        _check_record_fields((name,))
        key = self.keys.sweep(sweep_id)
        want = None if old is None else encode(old)
        with self.r.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                status, have = pipe.hmget(key, ["status", name])
                if status is None or (None if have is None else
                                      encode(decode(str(have)))) != want:
                    return False
                pipe.multi()
                pipe.hset(key, name, encode(new))
                pipe.execute()
                return True
            except redis.WatchError:
                return False

    def set_sweep_status(
        self, sweep_id: str, new: str, *, allowed_from: Iterable[str] | None = None,
        **fields: object
    ) -> bool:
        """Move the sweep to ``new`` if its status is in ``allowed_from`` (None: any
        status that may move to ``new``), with ``fields``, in one script call.

        Every move is checked against :data:`coordination.status.SWEEP_TRANSITIONS`
        first (:class:`TransitionRefused`). False when the sweep is unknown or in
        another state.
        """
        _check_record_fields(fields)
        target = SweepStatus(new)
        if allowed_from is None:
            allowed_from = [s for s, nxt in SWEEP_TRANSITIONS.items() if target in nxt]
        allowed = legal_sources(target, allowed_from)
        res = lua("status_cas")(self.r, [self.keys.sweep(sweep_id)],
                                [str(target), encode(allowed), *_pairs(fields)])
        return bool(res)

    def list_sweeps(self, limit: int = 50) -> list[SweepRecord]:
        """Newest first (records without their spec); ids whose record is gone are
        dropped from the index."""
        ids = [str(i) for i in self.r.zrevrange(self.keys.sweeps, 0, max(0, limit - 1))]
        pipe = self.r.pipeline(transaction=False)
        for sid in ids:
            pipe.hmget(self.keys.sweep(sid), list(_LIST_FIELDS))
        out: list[SweepRecord] = []
        gone: list[str] = []
        for sid, values in zip(ids, pipe.execute()):
            rec = self._record(sid, _LIST_FIELDS, values)
            if rec is None:
                gone.append(sid)
            else:
                out.append(rec)
        if gone:
            self.r.zrem(self.keys.sweeps, *gone)
        return out

    def _sweep_keys(self, sweep_id: str) -> list[str]:
        """The keys a sweep keeps while it is kept. Not its supervisor lock: that
        one always expires by itself within a supervise interval, and stretching
        it to the retention (or PERSISTing it on resume) would stop every
        supervisor pass over the sweep - a resumed sweep would never again have a
        lost todo re-sent or its deadline enforced."""
        return [self.keys.sweep(sweep_id), self.keys.sweep_events(sweep_id)]

    def expire_sweep(self, sweep_id: str, seconds: float, *, longest_sweep: float = 0.0) -> None:
        """Let an ended sweep's keys expire in ``seconds`` (retention), in one pipeline.

        Index entries scored before ``now - seconds - longest_sweep`` go too: an
        entry is scored by its sweep's latest (re)start, the sweep ended at most
        ``longest_sweep`` later and was kept ``seconds`` more, so its record is
        gone (``list_sweeps`` drops entries whose record went earlier).
        """
        ttl = max(1, int(seconds))
        pipe = self.r.pipeline(transaction=False)
        for key in self._sweep_keys(sweep_id):
            pipe.expire(key, ttl)
        pipe.zremrangebyscore(self.keys.sweeps, "-inf", f"({time.time() - seconds - longest_sweep}")
        pipe.execute()

    def persist_sweep(self, sweep_id: str) -> None:
        """Keep a sweep's keys again (it is running once more: resume).

        Its index entry is scored by this restart, so no trim drops it while it
        runs or is kept; a supervisor lock left from before is cleared, so the
        resumed sweep is supervised at once.
        """
        pipe = self.r.pipeline(transaction=False)
        for key in self._sweep_keys(sweep_id):
            pipe.persist(key)
        pipe.delete(self.keys.supervisor_lock(sweep_id))
        pipe.zadd(self.keys.sweeps, {sweep_id: time.time()})
        pipe.execute()

    # -- the active index, counters, the supervisor's turn ------------------------
    def activate(self, sweep_id: str) -> None:
        """List the sweep among those the supervisor passes look at."""
        self.r.sadd(self.keys.active_sweeps, sweep_id)

    def deactivate(self, sweep_id: str) -> None:
        self.r.srem(self.keys.active_sweeps, sweep_id)

    def active_sweeps(self) -> list[str]:
        return sorted(str(s) for s in self.r.smembers(self.keys.active_sweeps))

    def count_terminal(self, sweep_id: str, n: int = 1) -> None:
        """Count todos that reached a terminal status outside the transition scripts."""
        self.r.hincrby(self.keys.sweep(sweep_id), "terminal", n)

    def set_counters(self, sweep_id: str, counters: dict[str, int]) -> None:
        """The integer counters the transition scripts move (``level_left:<k>``...)."""
        _check_record_fields(counters)
        if counters:
            self.r.hset(self.keys.sweep(sweep_id),
                        mapping={k: str(v) for k, v in counters.items()})

    def levels_left(self, sweep_id: str, sizes: list[int]) -> list[int]:
        """Todos not yet ended per level (a level never counted reads as its size)."""
        values = self.r.hmget(self.keys.sweep(sweep_id),
                              [f"level_left:{i}" for i in range(len(sizes))])
        return [int(v) if v is not None else n for v, n in zip(values, sizes)]

    def level_succeeded(self, sweep_id: str, level: int) -> int:
        """How many todos of a level ended successfully."""
        return int(self.r.hget(self.keys.sweep(sweep_id), f"level_ok:{level}") or 0)

    def move_wave(self, sweep_id: str, seen: tuple[int | None, str | None],
                  **fields: object) -> bool:
        """Write the wave ``fields`` if the sweep's wave is still ``seen`` (index,
        state); False when another caller moved it first (``lua/wave_move.lua``)."""
        _check_record_fields(fields)
        index, state = seen
        res = lua("wave_move")(self.r, [self.keys.sweep(sweep_id)],
                               ["" if index is None else encode(index), state or "",
                                *_pairs(fields)])
        return bool(int(res))

    def gate_votes(self, sweep_id: str, todo_ids: list[str]) -> dict[str, dict[str, JSONValue]]:
        """Gate -> its votes (person -> {d, b, at, c}), of ``todo_ids`` that have any."""
        if not todo_ids:
            return {}
        raw = self.r.hmget(self.keys.sweep(sweep_id), [f"g:{t}" for t in todo_ids])
        out: dict[str, dict[str, JSONValue]] = {}
        for t, v in zip(todo_ids, raw):
            value = decode(v if isinstance(v, str) else v.decode()) if v else None
            if isinstance(value, dict):
                out[t] = value
        return out

    def gate_read(self, sweep_id: str, todo_id: str) -> tuple[Checkpoint | None, str]:
        """A gate's checkpoint and its votes field as stored (raw JSON text, '' when it
        has none): what a caller verifies, then hands back to ``lua/gate_decide.lua``
        as the compare-and-set value."""
        cp, raw = self.r.hmget(self.keys.sweep(sweep_id), [f"t:{todo_id}", f"g:{todo_id}"])
        text = (raw if isinstance(raw, str) else raw.decode()) if raw else ""
        return (checkpoint(cp) if cp else None), text

    def take_supervise_turn(self, sweep_id: str, ms: int) -> bool:
        """One supervisor pass at a time per sweep, for ``ms``: True when this caller
        has the turn. (All of a pass is idempotent; the turn only saves duplicates.)"""
        return bool(self.r.set(self.keys.supervisor_lock(sweep_id), "1", nx=True, px=max(1, ms)))

    def unattended_marks(self, sweep_id: str, repos: list[str]) -> dict[str, tuple[float, bool]]:
        """Repo -> (since when its queued todos wait with no live worker, whether
        ``repo.unattended`` was said) for the repos marked."""
        values = self.r.hmget(self.keys.sweep(sweep_id), [f"unattended:{r}" for r in repos])
        out: dict[str, tuple[float, bool]] = {}
        for repo, raw in zip(repos, values):
            mark = decode(str(raw)) if raw is not None else None
            if isinstance(mark, list) and len(mark) == 2:
                out[repo] = (float(str(mark[0])), bool(mark[1]))
        return out

    def set_unattended_marks(self, sweep_id: str,
                             marks: dict[str, tuple[float, bool] | None]) -> None:
        """Set (or, None, clear) repos' unattended marks."""
        self.update_sweep(sweep_id, **{f"unattended:{r}": None if m is None else list(m)
                                       for r, m in marks.items()})

    def queued_task_ids(self, queues: Iterable[str],
                        lists: Iterable[tuple[str, int]] = ()) -> set[str]:
        """Task ids of the messages waiting in these broker queues (every priority) and
        ``(queue, priority)`` lists (:mod:`.queues`)."""
        return queued_task_ids(self.r, self.keys, queues, lists)

    # -- todo checkpoints -------------------------------------------------------
    def get(self, sweep_id: str, todo_id: str) -> Checkpoint | None:
        """The todo's checkpoint with its output tail (pending if untouched); None if
        the sweep is unknown."""
        status, raw, tail = self.r.hmget(
            self.keys.sweep(sweep_id), ["status", todo_field(todo_id), tail_field(todo_id)])
        if status is None:
            return None
        return checkpoint(raw, tail)

    def keep_change_runs(self, sweep_id: str, cps: Mapping[str, Checkpoint],
                         commands: Mapping[str, str]) -> None:
        """Before a rollback resets these todos to run their undo (which writes their
        checkpoint and output tail anew): keep each one's checkpoint of the change's
        own run (with its tail, as read by :meth:`get_all`) and the command it ran,
        in one command."""
        if cps:
            self.r.hset(self.keys.sweep(sweep_id), mapping={
                change_field(t): encode({**cp, "command": commands.get(t)})
                for t, cp in cps.items()})

    def get_change_run(self, sweep_id: str, todo_id: str) -> ChangeRun | None:
        """A rolled-back todo's checkpoint of its change's own run (with its output
        tail and command); None if none was kept (:meth:`keep_change_runs`)."""
        raw = self.r.hget(self.keys.sweep(sweep_id), change_field(todo_id))
        return cast(ChangeRun, checkpoint(raw)) if raw else None

    def get_change_runs(self, sweep_id: str, todo_ids: list[str]) -> dict[str, ChangeRun]:
        """:meth:`get_change_run` of many todos in one command: those that have one."""
        if not todo_ids:
            return {}
        values = self.r.hmget(self.keys.sweep(sweep_id), [change_field(t) for t in todo_ids])
        return {t: cast(ChangeRun, checkpoint(raw)) for t, raw in zip(todo_ids, values) if raw}

    def get_all(self, sweep_id: str, todo_ids: list[str]) -> dict[str, Checkpoint]:
        """Checkpoints (with output tails) of many todos in one command; empty if the
        sweep is unknown."""
        names = ["status"]
        for t in todo_ids:
            names += [todo_field(t), tail_field(t)]
        values = self.r.hmget(self.keys.sweep(sweep_id), names)
        if values[0] is None:
            return {}
        return {t: checkpoint(values[1 + 2 * i], values[2 + 2 * i])
                for i, t in enumerate(todo_ids)}

    def count_outputs(self, sweep_id: str) -> None:
        """Note that one more todo of the sweep keeps results (``$COORD_OUTPUT``): from
        now on its todos' starts tell their workers to read their inputs. Written
        before that todo's finish, so no dependent can start without seeing it."""
        self.r.hincrby(self.keys.sweep(sweep_id), "outputs", 1)

    def get_fields_all(self, sweep_id: str, todo_ids: list[str], fields: tuple[str, ...]
                       ) -> dict[str, Checkpoint]:
        """``fields`` of many todos' checkpoints in one command, the fields a checkpoint
        lacks left out (``status`` always there); empty if the sweep is unknown.

        What a pass over a big sweep reads: not the output tails
        (``COORD_OUTPUT_TAIL_BYTES`` each), which a pass never looks at."""
        values = self.r.hmget(self.keys.sweep(sweep_id),
                              ["status", *(todo_field(t) for t in todo_ids)])
        if values[0] is None:
            return {}
        keep = {"status", *fields}
        out: dict[str, Checkpoint] = {}
        for t, raw in zip(todo_ids, values[1:]):
            cp = checkpoint(raw)
            out[t] = cast(Checkpoint, {k: v for k, v in cp.items() if k in keep})
        return out

    def orphaned(self, checkpoints: Mapping[str, Checkpoint]) -> list[str]:
        """Todos (of ``get_all``'s result) that are running under a lease no longer
        held by their token: candidates for re-dispatch.

        Only a hint, read in one pipelined round trip; the re-dispatched task's
        start (``lua/todo_start.lua``) decides atomically (a holder that renewed
        just now stays 'busy').
        """
        running = [
            (t, cp) for t, cp in checkpoints.items()
            if cp.get("status") == TodoStatus.running and cp.get("lease_key")
        ]  # fmt: skip
        if not running:
            return []
        pipe = self.r.pipeline(transaction=False)
        for _t, cp in running:
            pipe.get(str(cp.get("lease_key")))
        held = pipe.execute()
        return [t for (t, cp), cur in zip(running, held) if cur != cp.get("token")]

    def set_fields(self, sweep_id: str, todo_id: str, **fields: object) -> None:
        """Unconditional write (None removes a field), for the one coordinator that
        owns the todo now."""
        self.reset_todos(sweep_id, [todo_id], **fields)

    def reset_todos(self, sweep_id: str, todo_ids: Iterable[str], **fields: object) -> None:
        """:meth:`set_fields` of many todos, in one script call."""
        ids = list(todo_ids)
        if ids and fields:
            self._update(ids, "", "*", "", fields, sweep_id)

    def set_fields_if(self, sweep_id: str, todo_ids: Iterable[str], allowed_from: set[str],
                      **fields: object) -> int:
        """Write ``fields`` (None removes one) into the checkpoints of those of
        ``todo_ids`` whose status is in ``allowed_from``, their status left as it is, in
        one script call; how many it wrote."""
        ids = list(todo_ids)
        if not ids or not fields:
            return 0
        return self._update(ids, "", encode(sorted(allowed_from)), "", fields, sweep_id)

    def set_status_if(
        self,
        sweep_id: str,
        todo_id: str,
        new: str,
        allowed_from: set[str],
        *,
        expect_token: str | None = None,
        **fields: object,
    ) -> bool:
        """Compare-and-set of a todo's status (and ``fields`` with it)."""
        return bool(self._update([todo_id], new, encode(sorted(allowed_from)),
                                 expect_token or "", fields, sweep_id))

    def _update(self, todo_ids: list[str], new: str, allowed: str, token: str,
                fields: Mapping[str, object], sweep_id: str) -> int:
        """``lua/todo_update.lua``; returns how many todos it wrote."""
        if "output_tail" in fields:
            raise ValueError("a todo's output tail is written by its finish, not as a field")
        return int(lua("todo_update")(self.r, [self.keys.sweep(sweep_id)],
                                      [encode(todo_ids), new, allowed, token, encode(fields)]))

    def set_remaining(self, sweep_id: str, counts: dict[str, int]) -> None:
        """Eager: each todo's count of predecessors not yet succeeded."""
        if counts:
            self.r.hset(self.keys.sweep(sweep_id),
                        mapping={remaining_field(t): str(n) for t, n in counts.items()})

    def clear_remaining(self, sweep_id: str, todo_ids: Iterable[str]) -> None:
        names = [remaining_field(t) for t in todo_ids]
        if names:
            self.r.hdel(self.keys.sweep(sweep_id), *names)

    def write(self, sweep_id: str, todo_id: str, fields: Mapping[str, object], *,
              lease: Lease) -> bool:
        """A lease holder's fenced write; False if the holder was overtaken."""
        res = lua("checkpoint_write")(
            self.r,
            [self.keys.sweep(sweep_id), lease.key],
            [lease.token, lease.fence, todo_id, encode(fields)],
        )
        if res != "ok":
            log.info("rejected write to %s/%s by fence %s: %s", sweep_id, todo_id, lease.fence, res)
            return False
        return True

