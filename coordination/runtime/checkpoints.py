"""Sweep records and per-todo checkpoints: the runtime's source of truth.

A sweep is one Redis hash (``Keys.sweep``), its fields laid out in
:mod:`coordination.runtime.sweep_fields`; :class:`CheckpointStore` reads and writes them.

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
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import redis
from redis.typing import EncodableT, FieldT

from coordination.jsonable import JSONValue
from coordination.runtime.queues import queued_task_ids
from coordination.runtime.scripts import lua
from coordination.runtime.store import Store
from coordination.runtime.sweep_fields import (
    LAYOUT,
    RECORD_FIELDS,
    RECORD_PREFIXES,
    TALLY_BUCKETS,
    ChangeRun,
    Checkpoint,
    SweepRecord,
    Tally,
    change_field,
    checkpoint,
    count_field,
    decode,
    encode,
    remaining_field,
    repo_field,
    tail_field,
    todo_field,
)
from coordination.status import (
    SWEEP_LIVE,
    SWEEP_TRANSITIONS,
    TERMINAL,
    SweepStatus,
    TodoStatus,
)

if TYPE_CHECKING:
    from coordination.runtime.events import Prepared
    from coordination.runtime.leases import Lease

log = logging.getLogger(__name__)


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


#: What a listing reads of each record: not the spec (megabytes at 10,000 todos), nor
#: the layout or an end not said yet (which no listing looks at).
_LIST_FIELDS = tuple(f for f in RECORD_FIELDS if f not in (
    "spec", "layout", "mrepos", "lost_look_at", "lost_look_lists", "suspect_look_at",
    "ending"))


def check_record_fields(names: Iterable[str]) -> None:
    bad = [n for n in names if n not in RECORD_FIELDS and not n.startswith(RECORD_PREFIXES)]
    if bad:
        raise ValueError(f"unknown sweep record field(s) {bad}: declare them in "
                         "coordination.runtime.sweep_fields.RECORD_FIELDS")


def _mapping(fields: Mapping[str, object]) -> dict[FieldT, EncodableT]:
    """Field -> JSON text, typed loosely for redis-py's HSET mapping."""
    return {k: encode(v) for k, v in fields.items()}


def _event_keys(ev: Prepared | None) -> list[str]:
    """The streams of an event a script writes with its change (none: no event)."""
    return [] if ev is None else ev.keys()


def _event_args(ev: Prepared | None) -> list[str | int]:
    """The event's text, channel and caps (``emit_prepared`` in ``lua/_common.lua``)."""
    return ["", ""] if ev is None else ev.args()


def _pairs(fields: Mapping[str, object]) -> list[str]:
    out: list[str] = []
    for k, v in fields.items():
        out += [k, encode(v)]
    return out


class GateFacts(NamedTuple):
    """A gate's records as one read found them (:meth:`CheckpointStore.count_read`)."""

    checkpoint: Checkpoint | None
    votes: str  # its votes field as stored ('' when none)
    preds: dict[str, Checkpoint]
    sweep: SweepRecord | None


class CheckpointStore(Store):
    """Reads and writes sweep records and todo checkpoints."""

    # -- sweeps -----------------------------------------------------------------
    def create_sweep(self, sweep_id: str, record: Mapping[str, object],
                     said: Prepared | None = None) -> None:
        """Write the sweep record, its index entry, (live) its place among the active
        sweeps and ``said`` (its ``sweep.queued``: :meth:`EventLog.prepare`) at once
        (MULTI/EXEC: a reader never finds the sweep listed without its record, and a
        starter that dies right after leaves it where the supervision passes look,
        its creation said). Its todos are pending without a write each."""
        fields = dict(record)
        fields.setdefault("status", SweepStatus.queued.value)
        created = float(str(fields.setdefault("created_at", time.time())))
        fields["layout"] = LAYOUT
        check_record_fields(fields)
        live = SweepStatus(str(fields["status"])) in SWEEP_LIVE

        def write(pipe: redis.client.Pipeline) -> None:
            pipe.hset(self.keys.sweep(sweep_id), mapping=_mapping(fields))
            pipe.zadd(self.keys.sweeps, {sweep_id: created})
            if live:
                pipe.sadd(self.keys.active_sweeps, sweep_id)

        if said is None:
            pipe = self.r.pipeline(transaction=True)
            write(pipe)
            pipe.execute()
        else:
            said.written_with(self.r, write)

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
            check_record_fields(fields)
            self.r.hset(self.keys.sweep(sweep_id), mapping=_mapping(fields))

    def swap_sweep_field(self, sweep_id: str, name: str, old: object, new: object) -> bool:
        """Set record field ``name`` to ``new`` if it still holds ``old`` (None: absent),
        of a sweep that exists; False otherwise. The race it closes: two processes
        adopting one orphaned sweep at once (both saw its runner gone), only one of
        which may run it. WATCH/MULTI: the field's read and write are one step."""
        check_record_fields((name,))
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
        self, sweep_id: str, new: str, said: Prepared | None = None, /, *,
        allowed_from: Iterable[str] | None = None, **fields: object
    ) -> bool:
        """Move the sweep to ``new`` if its status is in ``allowed_from`` (None: any
        status that may move to ``new``), with ``fields``, in one script call; ``said``:
        an event (:meth:`EventLog.prepare`) written in the same step, only if it moved.

        Every move is checked against :data:`coordination.status.SWEEP_TRANSITIONS`
        first (:class:`TransitionRefused`). False when the sweep is unknown or in
        another state.
        """
        check_record_fields(fields)
        target = SweepStatus(new)
        if allowed_from is None:
            allowed_from = [s for s, nxt in SWEEP_TRANSITIONS.items() if target in nxt]
        allowed = legal_sources(target, allowed_from)
        res = lua("status_cas")(self.r, [self.keys.sweep(sweep_id), self.keys.active_sweeps,
                                         *_event_keys(said)],
                                [str(target), encode(allowed), sweep_id, *_event_args(said),
                                 *_pairs(fields)])
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
        lost todo re-sent or its deadline enforced. Its todos' logs too (the set that
        lists them, read here: ``runtime/logs.py``)."""
        listed = self.keys.sweep_log_keys(sweep_id)
        logs = sorted(cast("set[str]", self.r.smembers(listed)))
        return [self.keys.sweep(sweep_id), self.keys.sweep_events(sweep_id), listed, *logs]

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
    def deactivate(self, sweep_id: str, said: Prepared | None = None) -> bool:
        """Take an ended (or gone) sweep off the active ones, and say its end: the
        record's ``ending``, written to ``said``'s streams (:meth:`EventLog.sweep_streams`;
        None: nothing said) in the same step, only by the call that takes it off. One
        live again (a resume that landed since it was read ended) stays. True: taken off
        by this call (``lua/sweep_delist.lua``)."""
        res = lua("sweep_delist")(
            self.r, [self.keys.sweep(sweep_id), self.keys.active_sweeps, *_event_keys(said)],
            [sweep_id, *(said.args()[1:] if said is not None else ())])
        return bool(res)

    def active_sweeps(self) -> list[str]:
        return sorted(str(s) for s in self.r.smembers(self.keys.active_sweeps))

    def count_terminal(self, sweep_id: str, n: int = 1) -> None:
        """Count todos that reached a terminal status outside the transition scripts."""
        self.r.hincrby(self.keys.sweep(sweep_id), "terminal", n)

    def levels_left(self, sweep_id: str, sizes: list[int]) -> list[int]:
        """Todos not yet ended per level (a level never counted reads as its size)."""
        values = self.r.hmget(self.keys.sweep(sweep_id),
                              [f"level_left:{i}" for i in range(len(sizes))])
        return [int(v) if v is not None else n for v, n in zip(values, sizes)]

    def level_succeeded(self, sweep_id: str, level: int) -> int:
        """How many todos of a level ended successfully."""
        return int(self.r.hget(self.keys.sweep(sweep_id), f"level_ok:{level}") or 0)

    def say_level(self, sweep_id: str, run: int, level: int, said: Prepared) -> bool:
        """Say that ``level`` of run ``run`` ended (``said``: its ``level.done``) unless it
        was said already, and mark it said (``lua/level_said.lua``); True if said now."""
        return bool(int(lua("level_said")(self.r, [self.keys.sweep(sweep_id), *said.keys()],
                                          [level, run, *said.args()])))

    def unsaid_levels(self, sweep_id: str, levels: int) -> dict[int, int]:
        """The levels of the current run that ended (none of their todos left) and were
        not said to (``level_said:<k>`` 0; a run of before 0.6 has no marks: none), each
        with how many of its todos succeeded."""
        names = [f for i in range(levels) for f in (f"level_left:{i}", f"level_said:{i}",
                                                    f"level_ok:{i}")]
        got: list[Any] = self.r.hmget(self.keys.sweep(sweep_id), names) if levels else []
        left, said, ok = got[0::3], got[1::3], got[2::3]
        return {i: int(ok[i] or 0) for i in range(levels)
                if left[i] is not None and int(left[i]) == 0
                and said[i] is not None and int(said[i]) == 0}

    def move_wave(self, sweep_id: str, seen: tuple[int | None, str | None],
                  said: Prepared | None = None, /, **fields: object) -> bool:
        """Write the wave ``fields`` if the sweep's wave is still ``seen`` (index,
        state), with the event ``said`` that says so (:meth:`EventLog.prepare`) in the
        same step; False when another caller moved it first (``lua/wave_move.lua``)."""
        check_record_fields(fields)
        index, state = seen
        res = lua("wave_move")(self.r, [self.keys.sweep(sweep_id), *_event_keys(said)],
                               ["" if index is None else encode(index), state or "",
                                *_event_args(said), *_pairs(fields)])
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
        facts = self.count_read(sweep_id, todo_id, (), ())
        return facts.checkpoint, facts.votes

    def count_read(self, sweep_id: str, todo_id: str, preds: Sequence[str],
                   fields: tuple[str, ...]) -> GateFacts:
        """What a count of gate ``todo_id``'s votes goes by, in one command: its
        checkpoint and votes field as stored (raw JSON text, '' when it has none: the
        compare-and-set value ``lua/gate_decide.lua`` is handed back), the checkpoints
        of ``preds`` (its predecessors; one with none reads ``pending``, as every read of
        a checkpoint) and ``fields`` of the sweep record (None for an unknown sweep),
        all as of one instant."""
        rec_names = tuple(dict.fromkeys(("status", *fields)))
        names = [f"t:{todo_id}", f"g:{todo_id}", *(f"t:{p}" for p in preds), *rec_names]
        values = self.r.hmget(self.keys.sweep(sweep_id), names)
        cp, raw = values[0], values[1]
        text = (raw if isinstance(raw, str) else raw.decode()) if raw else ""
        n = 2 + len(preds)
        return GateFacts(checkpoint(cp) if cp else None, text,
                         {p: checkpoint(v) for p, v in zip(preds, values[2:n])},
                         self._record(sweep_id, rec_names, values[n:]))

    def evidence_read(self, sweep_id: str, todo_ids: Sequence[str], gates: Sequence[str]
                      ) -> tuple[dict[str, Checkpoint], dict[str, dict[str, Any]]]:
        """The checkpoints of ``todo_ids`` (those it has) and the votes of ``gates`` (its
        votes field as stored, decoded; none when it has none or holds no object), in
        one command: the records a caller checks before it goes by their statuses."""
        names = [*(f"t:{t}" for t in todo_ids), *(f"g:{g}" for g in gates)]
        values = self.r.hmget(self.keys.sweep(sweep_id), names) if names else []
        cps = {t: checkpoint(raw) for t, raw in zip(todo_ids, values) if raw}
        votes: dict[str, dict[str, Any]] = {}
        for g, raw in zip(gates, values[len(todo_ids):]):
            got = decode(raw if isinstance(raw, str) else raw.decode()) if raw else None
            votes[g] = got if isinstance(got, dict) else {}
        return cps, votes

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
                             marks: dict[str, tuple[float, bool] | None],
                             said: Prepared | None = None) -> None:
        """Set (or, None, clear) repos' unattended marks, with ``said`` (the
        ``repo.unattended`` of the marks that say it was said: :meth:`EventLog.prepare`)
        in the same step (MULTI/EXEC): a pass dying in between neither loses it nor
        leaves it to be said again."""
        fields = {f"unattended:{r}": None if m is None else list(m) for r, m in marks.items()}
        if said is None:
            self.update_sweep(sweep_id, **fields)
            return
        check_record_fields(fields)

        def write(pipe: redis.client.Pipeline) -> None:
            pipe.hset(self.keys.sweep(sweep_id), mapping=_mapping(fields))

        said.written_with(self.r, write)

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

    def first_unended(self, todo_id: str, sweep_ids: Sequence[str]) -> str | None:
        """The first of ``sweep_ids`` (newest first) that has not ended, holds ``todo_id``
        (its spec named it: its repo field) and in which the todo has not ended (pending,
        queued, running...), in one round trip: where ``coord logs --follow`` waits for
        an attempt that has written nothing yet."""
        if not sweep_ids:
            return None
        pipe = self.r.pipeline(transaction=False)
        for sid in sweep_ids:
            pipe.hmget(self.keys.sweep(sid), ["status", repo_field(todo_id), todo_field(todo_id)])
        for sid, (status, repo, raw) in zip(sweep_ids, pipe.execute()):
            if (status is not None and decode(str(status)) in SWEEP_LIVE and repo is not None
                    and checkpoint(raw).get("status", TodoStatus.pending) not in TERMINAL):
                return sid
        return None

    def own_todos(self, sweep_id: str) -> list[str]:
        """The todos the sweep was started with (their repo fields, written with its own
        spec), whatever spec its record holds now: a spec copied in from another sweep
        names other todos. One HSCAN: for the rare paths that cannot trust the spec."""
        prefix = repo_field("")
        return sorted(str(f)[len(prefix):] for f, _ in
                      self.r.hscan_iter(self.keys.sweep(sweep_id), match=f"{prefix}*",
                                        count=1000))

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
        said: Prepared | None = None,
        **fields: object,
    ) -> bool:
        """Compare-and-set of a todo's status (and ``fields`` with it); ``said``: an event
        (:meth:`EventLog.prepare`) written in the same step, only if it moved."""
        return bool(self._update([todo_id], new, encode(sorted(allowed_from)),
                                 expect_token or "", fields, sweep_id, said))

    def _update(self, todo_ids: list[str], new: str, allowed: str, token: str,
                fields: Mapping[str, object], sweep_id: str,
                said: Prepared | None = None) -> int:
        """``lua/todo_update.lua``; returns how many todos it wrote."""
        if "output_tail" in fields:
            raise ValueError("a todo's output tail is written by its finish, not as a field")
        return int(lua("todo_update")(
            self.r, [self.keys.sweep(sweep_id), *_event_keys(said)],
            [encode(todo_ids), new, allowed, token, encode(fields), *_event_args(said)]))

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

