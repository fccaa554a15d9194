"""A todo's state changes, each one Lua script call: one round trip, all or nothing.

================  ============================================================
start             sweep dispatching, predecessors succeeded, a lease slot taken
                  with the next fence, checkpoint claimed, ``todo.started``
                  (``lua/todo_start.lua``)
finish            fenced outcome write, lease released, counters, ``todo.<status>``,
                  eager successors whose last predecessor this was queued
                  (``lua/todo_finish.lua``)
end               skip / cancel / refuse todos that are not running, with
                  counters and events (``lua/todo_end.lua``)
queue             pending -> queued for dispatch, with ``todo.queued``; nothing
                  while the sweep is paused or over (``lua/todo_queue.lua``)
================  ============================================================

**Sealed where written.** Every ending a script writes carries its outcome seal
(``trust/evidence.py``: the status, exit code and run, under the runtime's key),
made here, just before the script runs, with the run the caller names: the start
script's skip and poison, a finish, a lost run's poison, an end. No caller hands a
seal in, so none can forget one; a call without a run writes the ending unsealed
(what the landing rule then refuses). Which code may run these scripts at all is
the door in :mod:`coordination.sweeps.progress`.

Each script reads what it decides on from the sweep's hash in one HMGET (the
sweep's status and run, the todo's checkpoint, its predecessors' or
successors', the counters) and writes what it changed in one HSET; the
commands of an uncontended start and finish are counted in
``tests/unit/runtime/test_transitions.py``. The counters: ``terminal`` (todos
ended this run; the one that reaches the sweep's size finalises it) and, for
the levels strategy, ``level_left:<k>`` / ``level_ok:<k>`` (the finisher that
brings a level to zero sends the next level). Which statuses may move where is
:mod:`coordination.status`; the scripts get its tables, not copies.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any


import redis

from coordination.connection.client import NotReplicated, riding_out
from coordination.keys import Keys
from coordination.planner.ranking import DEFAULT_RANK
from coordination.runtime.checkpoints import check_record_fields, legal_sources
from coordination.runtime.leases import Lease, Replicated, new_token
from coordination.runtime.scripts import lua
from coordination.runtime.sweep_fields import encode
from coordination.status import SUCCESSFUL, TERMINAL, SweepStatus, TodoStatus
from coordination.trust.evidence import OUTCOME_FIELD, outcome_stamp

if TYPE_CHECKING:
    from coordination.runtime.events import Prepared


def waiter_rank(rank: str, since: float, sweep_id: str, todo_id: str) -> str:
    """One waiter's member in a line: its rank, then age (who waits longest goes
    first among equals), then its ids (unique, and stable across its retries)."""
    return f"{rank}{int(since * 1000):014d}|{sweep_id}/{todo_id}"


class StartVerdict(StrEnum):
    """What ``lua/todo_start.lua`` answered (its first reply element), or, for a start
    no replica confirmed, what :meth:`Transitions.start` made of it (``unconfirmed``)."""

    started = "started"  # run it under the lease it was given
    gone = "gone"  # the sweep is missing, paused or over: ``detail`` is its status
    run = "run"  # the sweep is at another run than the caller's spec: ``detail`` is it
    terminal = "terminal"  # already ended: a duplicate delivery
    skipped = "skipped"  # a predecessor did not succeed: ``detail`` says which
    premature = "premature"  # predecessors not done: ``waiting`` lists them
    wait = "wait"  # no free slot: ``detail`` is ``repo`` or the resource
    paced = "paced"  # no pace token: ``detail`` is when one is due (unix s)
    held = "held"  # its repo's breaker is open (``detail`` ``new``: held just now)
    busy = "busy"  # a live holder runs it
    stale = "stale"  # another delivery owns it
    poisoned = "poisoned"  # this takeover was its last allowed lost run: it is failed
    #: recorded on a master, confirmed by no replica while the caller's patience lasted:
    #: never run, given back (``given_back``: queued again, to send), ``detail`` says why
    unconfirmed = "unconfirmed"


class LostVerdict(StrEnum):
    """What ``lua/todo_lost.lua`` answered about a running todo whose lease is gone."""

    requeued = "requeued"  # back to queued: send it again
    poisoned = "poisoned"  # its max_lost-th lost run: failed
    alive = "alive"  # its holder renewed after all: nothing to do
    changed = "changed"  # someone else moved it meanwhile
    gone = "gone"  # the sweep is gone


log = logging.getLogger("coord.transitions")


@dataclass(frozen=True)
class Started:
    """What :meth:`Transitions.start` answered (see :class:`StartVerdict`)."""

    verdict: StartVerdict
    detail: str = ""
    lease: Lease | None = None
    attempts: int = 0
    taken_over: bool = False
    waiting: list[str] = field(default_factory=list)
    terminal: int = 0
    level_done: bool = False
    #: how many of the sweep's todos kept results (``$COORD_OUTPUT``): 0, no inputs
    outputs: int = 0
    #: ``unconfirmed``: its start was given back, queued again (else it had moved on)
    given_back: bool = False


@dataclass(frozen=True)
class Finished:
    """What :meth:`Transitions.finish` answered: ``ok`` or ``rejected`` (``detail``
    says which check refused the write: the caller was overtaken)."""

    ok: bool
    detail: str = ""
    terminal: int = 0
    level_done: bool = False
    queued: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Ended:
    terminal: int
    todos: list[str]
    levels_done: list[int]
    #: the sweep made the move it was asked to (or none was asked): False, nothing written
    moved: bool = True


@dataclass(frozen=True)
class SweepMove:
    """A sweep's own status move, made in the same step as the ending of its todos
    (:meth:`Transitions.end`): to ``to`` from one of ``allowed_from``, with ``fields``."""

    to: SweepStatus
    allowed_from: frozenset[SweepStatus]
    fields: Mapping[str, object] = field(default_factory=dict)

    def arg(self) -> str:
        """The script's argument; a move :data:`~coordination.status.SWEEP_TRANSITIONS`
        never makes, or an undeclared field, is refused before Redis is touched."""
        check_record_fields(self.fields)
        return json.dumps({"to": str(self.to), "from": legal_sources(self.to, self.allowed_from),
                           "fields": {k: encode(v) for k, v in self.fields.items()}},
                          separators=(",", ":"))


class Transitions(Replicated):
    """The todo transitions of :mod:`coordination.runtime.transitions`."""

    def __init__(self, r: redis.Redis, keys: Keys, *, lease_ttl: float,
                 sweep_events_maxlen: int = 20_000, replicas: int = 0,
                 seal_keys: Callable[[], Sequence[str]] = tuple) -> None:
        super().__init__(r, keys, lease_ttl, replicas)
        #: The keys an ending is sealed with, the current one first (empty: unsealed),
        #: read at each seal: the runtime's settings (read again when they change).
        self.seal_keys = seal_keys
        #: Answers of finishes no replica confirmed yet, by lease token (see finish).
        self._unconfirmed: dict[str, Finished] = {}
        # Todo events go to their sweep's stream only (see emit in lua/_common.lua).
        self._ledger_args = [str(sweep_events_maxlen), keys.events_channel]

    def seal(self, sweep_id: str, todo_id: str, run: int | None, status: TodoStatus,
             exit_code: object = None) -> dict[str, object] | None:
        """The outcome seal of ``todo_id`` ending ``status`` (``exit_code``) in ``run``
        (:func:`~coordination.trust.evidence.outcome_stamp`); None without a key, or
        without a run (nothing to bind it to: written unsealed)."""
        if run is None:
            return None
        return outcome_stamp(list(self.seal_keys()), sweep_id, todo_id, run, status, exit_code)

    def _ledger(self, sweep_id: str) -> list[str]:
        """KEYS[1..2] of every transition script: the sweep's stream and hash."""
        return [self.keys.sweep_events(sweep_id), self.keys.sweep(sweep_id)]

    def start(self, sweep_id: str, todo_id: str, *, repo: str, concurrency: int,
              preds: Sequence[str], worker: str, level: int = -1, max_lost: int = 0,
              token: str | None = None, now: float | None = None,
              resources: Sequence[tuple[str, int]] = (), breaker: tuple[int, float] | None = None,
              rank: str | None = None, probe_for: float = 3600.0,
              waiter_stale: float = 5.0, waited: bool = False, run: int | None = None,
              pace: Sequence[tuple[str, float, int]] = (),
              patience: float | None = None) -> Started:
        """Try to start a todo (see ``lua/todo_start.lua``). Pass the same ``token``
        to retry a call whose reply was lost: it answers ``started`` again.

        ``resources``: ``(name, capacity)`` of the shared resources it needs;
        ``breaker``: the repo's ``(failures, cooldown)``; ``rank``: where it stands
        in line when slots are contended (:func:`waiter_rank`; the same string on
        every retry of one delivery); ``waited``: an earlier call of this delivery
        answered ``wait`` (it stands in line: the call that ends its wait leaves it);
        ``run``: the run of the caller's spec (answered ``run`` when the sweep is at
        another one: the caller reads the current spec and asks again); ``pace``:
        ``(bucket, seconds per token, burst)`` of the pace buckets the start must take
        a token from (answered ``paced`` with when one is due when any is empty).
        The two endings the script may decide itself, ``skipped`` and ``failed``
        (poisoned), are both sealed for ``run`` before it runs, and the one it decides
        is written with it. ``patience`` (monotonic): asked again, with the same token,
        while Redis cannot be reached or no replica confirmed the start, until then
        (a call whose reply was lost is answered ``started`` again); a start still
        unconfirmed then is given back, never run (``unconfirmed``). None: asked once."""
        token = token or start_token(self.keys, sweep_id, todo_id)  # (one for every ask)
        seals = (self.seal(sweep_id, todo_id, run, TodoStatus.skipped),
                 self.seal(sweep_id, todo_id, run, TodoStatus.failed))
        once = functools.partial(
            self._start, sweep_id, todo_id, repo=repo, concurrency=concurrency, preds=preds,
            worker=worker, level=level, max_lost=max_lost, token=token, now=now,
            resources=resources, breaker=breaker, rank=rank, probe_for=probe_for,
            waiter_stale=waiter_stale, waited=waited, run=run, pace=pace, seals=seals)
        if patience is None:
            return once()
        try:
            return riding_out(once, patience)
        except NotReplicated as exc:
            return self._give_back(sweep_id, todo_id, token, exc)

    def _give_back(self, sweep_id: str, todo_id: str, token: str,
                   exc: NotReplicated) -> Started:
        """A start no replica confirmed for as long as the caller could wait: recorded
        on the master, never run. Given back (queued, no lost run: nothing ran, so
        nothing "died while running it"); if even that cannot be written, the error
        stands (the lease then expires as any lost run's)."""
        why = f"its start was not confirmed by a replica ({exc}); sent again"
        log.warning("%s/%s: %s", sweep_id, todo_id, why)
        try:
            back = self.unstart(sweep_id, todo_id, token=token, why=why)
        except redis.RedisError:
            raise exc from None
        return Started(StartVerdict.unconfirmed, detail=why, given_back=back == "given_back")

    def _start(self, sweep_id: str, todo_id: str, *, repo: str, concurrency: int,
               preds: Sequence[str], worker: str, level: int, max_lost: int,
               token: str, now: float | None, resources: Sequence[tuple[str, int]],
               breaker: tuple[int, float] | None, rank: str | None, probe_for: float,
               waiter_stale: float, waited: bool, run: int | None,
               pace: Sequence[tuple[str, float, int]],
               seals: tuple[Mapping[str, object] | None, Mapping[str, object] | None]
               ) -> Started:
        """One call of the start script (see :meth:`start`)."""
        rank = rank or waiter_rank(DEFAULT_RANK, 0.0, sweep_id, todo_id)
        slots = [self.keys.lease(repo, i) for i in range(max(1, concurrency))]
        res_keys: list[str] = []
        res_caps: list[int] = []
        res_names: list[str] = []
        for name, cap in sorted(resources):
            cap = max(1, int(cap))
            line = f"resource:{name}"
            res_keys += [self.keys.resource_fence(name), self.keys.waiters(line),
                         self.keys.waiters_seen(line),
                         *(self.keys.resource(name, i) for i in range(cap))]
            res_caps.append(cap)
            res_names.append(name)
        brk_n, brk_cooldown = breaker or (0, 0.0)
        res, acked = self._run(
            "todo_start",
            [*self._ledger(sweep_id), self.keys.fence(repo),
             self.keys.breaker(repo), self.keys.waiters(f"repo:{repo}"),
             self.keys.waiters_seen(f"repo:{repo}"), *slots, *res_keys,
             *(self.keys.pace(bucket) for bucket, _iv, _burst in pace)],
            [*self._ledger_args, len(slots), token, self.ttl_ms, encode(worker),
             encode(time.time() if now is None else now), max_lost, sweep_id, todo_id, level,
             brk_n, brk_cooldown, probe_for, rank, waiter_stale, int(waited),
             "" if run is None else str(run), len(res_names), *res_caps,
             *res_names, repo, len(pace),
             *(x for _b, iv, burst in pace for x in (repr(float(iv)), int(burst))),
             *(encode(dict(x)) if x else "" for x in seals), *preds],
        )
        verdict = StartVerdict(str(res[0]))
        if verdict == StartVerdict.started and not acked:
            # Not on a replica yet: a failover now would lose it, and the slot could go
            # to a second run. Not run: the caller asks again with the same token, and
            # the answer (this start again, renewed, or a fresh one on a new master)
            # comes with a new WAIT.
            raise self._not_replicated(f"the start of {todo_id}")
        if verdict == StartVerdict.started:
            extra = tuple(json.loads(res[5] or "[]")) if len(res) > 5 else ()
            lease = Lease(repo, int(res[1]), token, int(res[2]), self.ttl_ms, self.keys.namespace,
                          extra=extra)
            return Started(verdict, lease=lease, attempts=int(res[3] or 1),
                           taken_over=bool(int(res[4])),
                           outputs=int(res[6] or 0) if len(res) > 6 else 0)
        if verdict == StartVerdict.skipped:
            return Started(verdict, detail=str(res[1]), terminal=int(res[2]),
                           level_done=bool(int(res[3])))
        if verdict == StartVerdict.poisoned:
            return Started(verdict, terminal=int(res[1]), level_done=bool(int(res[2])))
        if verdict == StartVerdict.premature:
            return Started(verdict, waiting=list(json.loads(res[1])))
        if verdict == StartVerdict.held:
            return Started(verdict, detail="new" if int(res[1]) else "")
        return Started(verdict, detail=str(res[1]) if len(res) > 1 else "")

    def wait_turn(self, rank: str, timeout: float) -> bool:
        """Block up to ``timeout`` s until a finishing holder wakes this waiter;
        True when woken. (Embedded: fakeredis blocks by polling, fine in-process.)"""
        got = self.r.blpop([self.keys.wake(rank)], timeout=max(0.01, timeout))
        return got is not None

    def finish(self, sweep_id: str, todo_id: str, *, lease: Lease, status: TodoStatus,
               fields: Mapping[str, object], event: Mapping[str, object], level: int = -1,
               successors: Sequence[tuple[str, str]] = (), now: float | None = None,
               breaker: tuple[int, float] | None = None,
               resources: Sequence[str] = (), run: int | None = None,
               patience: float | None = None,
               before: Callable[[Any], None] | None = None) -> Finished:
        """Record a run's outcome (see ``lua/todo_finish.lua``), sealed for ``run``
        (status, exit code, run: the landing rule trusts "no todo of the last run
        failed" only sealed) in the same fenced write that releases the lease.
        ``successors`` are ``(todo, queue)`` pairs of an eager sweep, looked at on
        success only; ``resources``: the names of the resources whose slots
        ``lease.extra`` holds. ``patience`` (monotonic): asked again while Redis cannot
        be reached or no replica confirmed it, until then; a finish recorded on a master
        that no replica confirmed in that time is answered as recorded (a failover
        losing it makes the todo run again, after this run). None: asked once.
        ``before``: writes sent ahead of the script in its round trip (the attempt's log
        end, :meth:`~coordination.runtime.logs.LogStore.queue`); it puts them on the
        first try's pipeline only (``AttemptLog.queue_end``)."""
        if status not in TERMINAL:
            raise ValueError(f"{status!r} is not a terminal status")
        if run is not None:
            code = fields.get("exit_code")
            fields = {**fields, "exit_code": code,
                      OUTCOME_FIELD: self.seal(sweep_id, todo_id, run, status, code)}
        once = functools.partial(self._finish, sweep_id, todo_id, lease=lease, status=status,
                                 fields=fields, event=event, level=level,
                                 successors=successors, now=now, breaker=breaker,
                                 resources=resources, before=before)
        if patience is None:
            return once()
        try:
            return riding_out(once, patience)
        except (redis.ConnectionError, redis.TimeoutError):
            fin = self._unconfirmed.pop(lease.token, None)  # recorded, not confirmed
            if fin is None:
                raise
            log.warning("%s/%s: its outcome is recorded but no replica confirmed it",
                        sweep_id, todo_id)
            return fin

    def _finish(self, sweep_id: str, todo_id: str, *, lease: Lease, status: TodoStatus,
                fields: Mapping[str, object], event: Mapping[str, object], level: int,
                successors: Sequence[tuple[str, str]], now: float | None,
                breaker: tuple[int, float] | None, resources: Sequence[str],
                before: Callable[[Any], None] | None = None) -> Finished:
        """One call of the finish script (see :meth:`finish`)."""
        fields = dict(fields)
        tail = str(fields.pop("output_tail", None) or "")
        succ = list(successors) if status in SUCCESSFUL else []
        extra = list(lease.extra)
        names = sorted(resources)[:len(extra)]
        res, acked = self._run(
            "todo_finish",
            [*self._ledger(sweep_id), lease.key,
             self.keys.breaker(lease.repo), self.keys.waiters(f"repo:{lease.repo}"),
             *extra, *(self.keys.waiters(f"resource:{n}") for n in names)],
            [*self._ledger_args, lease.token, lease.fence, str(status),
             json.dumps(event, separators=(",", ":")), sweep_id, todo_id,
             encode(time.time() if now is None else now), level, (breaker or (0, 0.0))[0],
             lease.repo, len(extra), self.keys.wake_prefix, self.ttl_ms, encode(fields), tail,
             *(x for pair in succ for x in pair)],
            before=before,
        )
        if res[0] == "again":
            # This outcome is recorded already: by this call's first try, whose answer
            # is kept until a replica confirms it (below); else by a call whose reply
            # was lost, as before: the caller is told it was overtaken.
            fin = self._unconfirmed.pop(lease.token, None)
            if fin is None:
                return Finished(False, detail="status")
        elif res[0] != "ok":
            self._unconfirmed.pop(lease.token, None)
            return Finished(False, detail=str(res[1]))
        else:
            fin = Finished(True, terminal=int(res[1]), level_done=bool(int(res[2])),
                           queued=list(json.loads(res[3])))
        if not acked:
            # Recorded, not yet on the replicas: a failover now could lose it (the todo
            # would then run again once its lease expired on the new master). Asked
            # again by the caller: answered 'again' (with a write a WAIT covers) by this
            # master, or recorded afresh by a new master that lost it.
            self._unconfirmed[lease.token] = fin
            raise self._not_replicated(f"the outcome of {todo_id}")
        return fin

    def lost(self, sweep_id: str, todo_id: str, *, repo: str, token: str, max_lost: int,
             now: float, why: str, level: int = -1, breaker: tuple[int, float] | None = None,
             run: int | None = None) -> LostVerdict:
        """A running todo whose lease is gone: ``requeued`` to run again, or
        ``poisoned`` (failed) at its ``max_lost``-th lost run, written with its outcome
        seal ending ``failed`` in ``run``, made before the script runs; the lost run
        counts against the repo's breaker. See :class:`LostVerdict` and
        ``lua/todo_lost.lua``."""
        seal = self.seal(sweep_id, todo_id, run, TodoStatus.failed)
        res = lua("todo_lost")(
            self.r,
            [*self._ledger(sweep_id), self.keys.breaker(repo)],
            [*self._ledger_args, token, max_lost, encode(now), why, level,
             (breaker or (0, 0.0))[0], repo, sweep_id, todo_id,
             encode(dict(seal)) if seal else ""],
        )
        return LostVerdict(str(res))

    def unstart(self, sweep_id: str, todo_id: str, *, token: str, why: str,
                now: float | None = None) -> str:
        """Give back a start its worker gave up on before running anything (see
        ``lua/todo_unstart.lua``): ``given_back`` (queued again, no lost run counted), or
        ``changed`` / ``gone``. Not waited for: a failover that loses it leaves the
        start, whose lease then expires as any lost run's."""
        return str(lua("todo_unstart")(
            self.r, self._ledger(sweep_id),
            [*self._ledger_args, token, encode(time.time() if now is None else now), why,
             sweep_id, todo_id]))

    def end(self, sweep_id: str, todos: Iterable[tuple[str, int]], status: TodoStatus,
            allowed_from: Iterable[TodoStatus], *, event: Mapping[str, object],
            now: float | None = None, run: int | None = None,
            sweep_to: SweepMove | None = None, said: Prepared | None = None) -> Ended:
        """End ``(todo, level)``s that are in ``allowed_from`` as ``status`` (see
        ``lua/todo_end.lua``), each written with its outcome seal for ``run`` (None:
        unsealed, as a todo of a spec that fails its check ends); ``event`` holds the
        reason and other event fields. ``sweep_to``: the sweep's own move, in the same
        step (refused: nothing is written, and ``moved`` is False). ``said``: an event
        of one of these todos (:meth:`EventLog.prepare`), written after theirs in the
        same step if it ended that todo."""
        todos = list(todos)
        if not todos and sweep_to is None:
            return Ended(0, [], [])
        if said is not None and said.streams != (self.keys.sweep_events(sweep_id),):
            raise ValueError("an ending says only events of its sweep's todos")

        def sealed(t: str) -> str:
            stamp = self.seal(sweep_id, t, run, status)
            return json.dumps(stamp, separators=(",", ":")) if stamp else ""

        res = lua("todo_end")(
            self.r,
            self._ledger(sweep_id),
            [*self._ledger_args, str(status), json.dumps(sorted(str(s) for s in allowed_from)),
             sweep_id, encode(time.time() if now is None else now),
             json.dumps(event, separators=(",", ":")),
             "" if sweep_to is None else sweep_to.arg(), "" if said is None else said.text,
             *(x for t, level in todos for x in (str(t), str(level), sealed(t)))],
        )
        return Ended(int(res[0]), list(json.loads(res[1])), [int(x) for x in json.loads(res[2])],
                     moved=sweep_to is None or bool(int(res[3])))

    def queue(self, sweep_id: str, todos: Iterable[tuple[str, str]], *, via: str,
              allowed_from: Iterable[TodoStatus] = (TodoStatus.pending,),
              now: float | None = None, cap: int = 0, counted: Sequence[str] = ()
              ) -> list[str]:
        """Queue ``(todo, queue)``s for dispatch (see ``lua/todo_queue.lua``);
        returns those it queued: send a message for each of them. ``cap``: at most
        that many of ``counted`` (a wave's todos) queued, held or running at once,
        these included (in the order given)."""
        todos = list(todos)
        if not todos:
            return []
        res = lua("todo_queue")(
            self.r,
            self._ledger(sweep_id),
            [*self._ledger_args, sweep_id, encode(time.time() if now is None else now), via,
             json.dumps(sorted(str(s) for s in allowed_from)), str(max(0, int(cap))),
             json.dumps(list(counted)) if cap > 0 else "[]",
             *(x for pair in todos for x in pair)],
        )
        return list(json.loads(res))

    # -- gates: todos that wait for people (lua/gate_open.lua, lua/gate_decide.lua) --
    def open_gates(self, sweep_id: str, gates: Iterable[GateOpening], *,
                   allowed_from: Iterable[TodoStatus], now: float | None = None
                   ) -> list[tuple[str, int]]:
        """Move gates whose predecessors succeeded to ``awaiting_approval`` with
        ``gate.waiting``; returns ``(todo, approvals already given)`` of those opened
        (approvals of an earlier run under the same binding still count)."""
        args: list[str] = []
        for g in gates:
            args += [g.todo_id, g.binding, encode(g.expires_at or 0), str(g.needed),
                     json.dumps(g.event, separators=(",", ":"))]
        if not args:
            return []
        res = lua("gate_open")(
            self.r, self._ledger(sweep_id),
            [*self._ledger_args, sweep_id, encode(time.time() if now is None else now),
             json.dumps(sorted(str(s) for s in allowed_from)), *args])
        return [(str(t), int(n)) for t, n in json.loads(res)]

    def decide_gate(self, sweep_id: str, todo_id: str, *, who: str, decision: str,
                    binding: str, seen: str, counted: Sequence[str],
                    vote: Mapping[str, object] | None = None, refused: Sequence[str] = (),
                    comment: str = "", level: int = -1,
                    successors: Sequence[tuple[str, str]] = (), now: float | None = None,
                    sealed: Mapping[str, object] | None = None) -> GateDecision:
        """Record ``who``'s ``vote`` ("approve" or "reject") on a waiting gate, or with
        ``who`` empty only settle it: ``counted`` are the approvers whose votes the
        caller verified under ``binding`` in the votes field it read (``seen``, raw);
        ``refused``, the votes it refused and why. ``changed`` when either moved since
        (read and verify again); ``sealed``: the seal of the decision should the
        count pass it (kept as the gate's ``decision``); see ``lua/gate_decide.lua``."""
        if decision not in ("approve", "reject"):
            raise ValueError(f"unknown decision {decision!r}")
        res = lua("gate_decide")(
            self.r, self._ledger(sweep_id),
            [*self._ledger_args, sweep_id, todo_id, encode(time.time() if now is None else now),
             level, who, decision, comment,
             json.dumps(dict(vote), separators=(",", ":")) if vote is not None else "",
             binding, seen, json.dumps(sorted(set(counted))), json.dumps(list(refused)),
             votes_digest(seen),
             json.dumps(dict(sealed), separators=(",", ":")) if sealed else "",
             *(x for pair in successors for x in pair)])
        verdict = str(res[0])
        if verdict in ("approved", "rejected"):
            return GateDecision(verdict, int(res[1] or 0), terminal=int(res[2]),
                                level_done=bool(int(res[3])), queued=list(json.loads(res[4])))
        if verdict == "counted":
            return GateDecision(verdict, int(res[1]))
        return GateDecision(verdict, 0, detail=str(res[1]))


def start_token(keys: Keys, sweep_id: str, todo_id: str) -> str:
    """The owner token of a todo's start (a fresh one per delivery): who owns it
    (host:pid:random, as every lease token begins), then its sweep's hash and its todo,
    so that a start that has to wait can flag the holder, whose finish then wakes the
    line (lua/todo_start.lua); to everything else a token is opaque."""
    return f"{new_token()}|{keys.sweep(sweep_id)}|{todo_id}"


def start_token_todo(keys: Keys, token: str) -> tuple[str, str] | None:
    """The sweep and todo a :func:`start_token` names; None for any other token (a
    landing step's, another namespace's)."""
    parts = token.split("|")
    head = keys.sweep("")[:-1]  # "<ns>:sweep:{"
    if len(parts) == 3 and parts[1].startswith(head) and parts[1].endswith("}"):
        return parts[1][len(head):-1], parts[2]
    return None


def votes_digest(raw: str) -> str:
    """What a gate's checkpoint keeps of the votes field a settling counted (its
    ``settled``): a pass finding the same digest has nothing new to count."""
    return hashlib.sha1(raw.encode()).hexdigest()


@dataclass(frozen=True)
class GateOpening:
    """A gate to open: its binding (what its approvals are bound to), when it expires
    (None: never), how many approvals it needs, its ``gate.waiting`` event's fields."""

    todo_id: str
    binding: str
    expires_at: float | None
    needed: int
    event: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class GateDecision:
    """What ``lua/gate_decide.lua`` answered: ``approved`` (passed), ``rejected``,
    ``counted`` (verified approvals so far), ``changed`` (the votes or
    binding moved since the caller read them), ``status`` (not waiting: ``detail`` is
    its status), ``gone`` (the sweep ended: ``detail``)."""

    verdict: str
    approvals: int
    detail: str = ""
    terminal: int = 0
    level_done: bool = False
    queued: list[str] = field(default_factory=list)
