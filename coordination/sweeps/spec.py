"""A sweep's frozen specification: what to run, where, and in which order.

Taken from the catalog when a sweep starts (and refreshed for the todos a
resume re-runs), stored with the sweep record, so workers run exactly what
the user saw at sweep time even if the catalog changes meanwhile, and a
worker needs no catalog of its own.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import NotRequired, TypedDict, TypeVar

from coordination.retry import backoff_cap
from coordination.status import NOT_STARTED as NOT_STARTED  # re-exported for older imports
from coordination.status import SWEEP_ACTIVE as SWEEP_ACTIVE
from coordination.status import SWEEP_LIVE as SWEEP_LIVE
from coordination.status import TERMINAL as TERMINAL
from coordination.trust.evidence import DIGEST_FIELDS, last_dispatch, spec_digest_of


def _fields(obj: object) -> dict[str, object]:
    """A dataclass's fields by name, in order, not copied (what ``to_json`` encodes).
    A todo without a cache leaves ``cache`` out, as a spec of before 0.3 reads."""
    data = {name: getattr(obj, name) for name in getattr(obj, "__dataclass_fields__")}
    if "cache" in data and data["cache"] is None:
        del data["cache"]
    if "wait_timeout" in data and data["wait_timeout"] is None:
        del data["wait_timeout"]  # (set on a todo, or on a sweep by --wait-timeout)
    if "upstream" in data and not data["upstream"]:
        del data["upstream"]  # (a cache: todo's only, and only when it has some)
    if "checks" in data and not data["checks"]:
        del data["checks"]  # (a todo with checked acceptance criteria only)
    if "mask_env" in data and not data["mask_env"]:
        del data["mask_env"]  # (a todo with mask_env: only)
    if "due" in data and data["due"] is None:
        del data["due"]  # (a todo with due: only)
    return data


class PushSpec(TypedDict):
    """What a sweep a push started runs its pushed repo's todos on, frozen and signed
    with its spec (:mod:`coordination.sweeps.starts.pushes`): the commit ``sha`` pushed
    to ``repo``'s ``branch``, fetched from ``remote`` (the catalog's ``url:`` it must name,
    when it says one); where ``forge`` says (a ``ForgeSpec``'s fields: names, never a
    token), the commit status ``context`` is posted on it, linking the sweep's page of
    the web view at ``ui_url`` (``COORD_UI_URL`` where the sweep started; None: no link)."""

    repo: str
    branch: str
    sha: str
    remote: str
    url: NotRequired[str | None]
    forge: NotRequired[dict[str, str | None] | None]
    context: NotRequired[str]
    ui_url: NotRequired[str | None]


#: A gate as frozen in a spec (the catalog's ``gate:``; ``expires`` in seconds or None).
GateSpec = TypedDict("GateSpec", {"approvals": int, "from": list[str],
                                  "starter_may_approve": bool, "expires": float | None,
                                  "on_expiry": str, "forge_reviews": NotRequired[bool]})


@dataclass(slots=True)
class TodoSpec:
    id: str
    repo: str
    queue: str
    run: str
    timeout: float
    retries: int
    env: dict[str, str] = field(default_factory=dict)
    path: str | None = None  # absolute checkout path as the sweeping CLI saw it
    preds: list[str] = field(default_factory=list)
    succs: list[str] = field(default_factory=list)
    level: int = 0
    estimated_hours: float | None = None
    undo: str | None = None  # the command a rollback runs (frozen with the spec)
    priority: str = "medium"
    resources: list[str] = field(default_factory=list)  # shared resources it leases
    #: its place in line for a contended slot (runtime.transitions.start_rank)
    rank: str = "29999999999999999"
    #: the todo's task (its title in history), cut to TITLE_CHARS
    title: str = ""
    #: a todo of a change's plan: its branch, commit message, verify flag, every repo's
    #: checkout/base/remote (coordination.change.model.TodoChange); None otherwise
    change: dict[str, object] | None = None
    #: a gate (no command): {approvals, from, starter_may_approve, expires (s), on_expiry}
    gate: GateSpec | None = None
    #: its result cache (``cache:``, resolved against its repo's): ``{"env": [...],
    #: "inputs": [...], "probes": [...]}``; None: off (left out of the JSON)
    cache: dict[str, list[str]] | None = None
    #: the pace buckets a start takes a token from (``SweepSpec.paces``)
    pace: list[str] = field(default_factory=list)
    #: a ``cache:`` todo's predecessors in the catalog that this sweep does not run (all
    #: of them for `todo run`): its key counts each by its last key, as it counts those
    #: the sweep runs (``preds``) by theirs, so both ways of running it compute one key
    upstream: list[str] = field(default_factory=list)
    #: its acceptance criteria's checks, ``[text, command]`` each: run in its checkout
    #: after its run succeeded, in order; the first that fails ends it failed
    checks: list[list[str]] = field(default_factory=list)
    #: seconds it may wait for a repo or resource slot before it ends failed (the
    #: catalog's ``wait_timeout:``); None: the sweep's, else the sweep's deadline
    wait_timeout: float | None = None
    #: the variables whose values its run's output, results and reason show as ``***``
    #: (the catalog's ``mask_env:``, its repo's and its own: sweeps/runlogs/masking.py); empty:
    #: none (then left out of the JSON)
    mask_env: list[str] = field(default_factory=list)
    #: when it must be finished (the catalog's ``due:``, Unix time); None: no due time
    #: (then left out of the JSON): sweeps/notices/overdue.py
    due: float | None = None


@dataclass(slots=True)
class WaveSpec:
    """One wave of a sweep: its todos start only after the wave before ended, soaked
    and met its criteria (``plan.waves`` in the catalog)."""

    name: str
    todos: list[str]
    max_parallel: int = 0  # 0: no cap
    soak: float = 0.0  # seconds
    success_rate: float = 1.0


class Strategy(StrEnum):
    """How a sweep sends its todos (``--strategy``)."""

    levels = "levels"  # a level at a time
    eager = "eager"  # each as soon as it may start


class Mode(StrEnum):
    """What a sweep's run runs."""

    run = "run"  # its todos' run: commands
    rollback = "rollback"  # their undo: commands, in reverse


class Atomic(StrEnum):
    """What an atomic sweep does with its running todos at its first failure."""

    off = ""  # not atomic (or a spec of before 0.3, whose record's ``atomic`` says)
    finish = "finish"  # let them finish, then roll back (``--atomic``)
    stop = "stop"  # kill them, then roll back (``--atomic=stop``)


@dataclass(slots=True)
class ForwardRun:
    """What a rollback's spec keeps of the run that applied the change (its own todos
    carry the undo order and the undo commands): the order and commands a resume
    (``sweep resume --reapply``) runs the change in again, as that run had them."""

    strategy: Strategy
    #: todo -> its predecessors (the DAG's edges), of the todos that have some
    preds: dict[str, list[str]] = field(default_factory=dict)
    #: todo -> its run: command, of the todos whose undo the rollback runs in its place
    runs: dict[str, str] = field(default_factory=dict)
    waves: list[WaveSpec] = field(default_factory=list)
    sequential: bool = False
    chains: dict[str, str] = field(default_factory=dict)


TITLE_CHARS = 200

_E = TypeVar("_E", bound=StrEnum)


def _member(kind: type[_E], value: str) -> _E:
    """``value`` as the member of ``kind`` it names; a string none names stays as it is
    (what a spec's reader did before the enums: compare it, find no match)."""
    try:
        return kind(value)
    except ValueError:
        return value  # type: ignore[return-value]


#: ``--strategy``'s values.
STRATEGIES = tuple(str(s) for s in Strategy)

#: ``--atomic``'s values.
ATOMIC_MODES = (str(Atomic.finish), str(Atomic.stop))


def atomic_mode(atomic: bool | str | None) -> Atomic:
    """``--atomic``'s value as a spec keeps it: "" (not atomic), "finish" or "stop"."""
    if atomic is None or atomic is False or atomic == "":
        return Atomic.off
    if atomic is True:
        return Atomic.finish
    if atomic not in ATOMIC_MODES:
        raise ValueError(f"unknown atomic mode {atomic!r}: one of {', '.join(ATOMIC_MODES)}")
    return Atomic(atomic)


@dataclass
class SweepSpec:
    sweep_id: str
    plan: str
    strategy: Strategy
    run: int  # 0 for the first run, +1 for every resume
    todos: dict[str, TodoSpec]
    levels: list[list[str]]  # levels of the todos this run dispatches
    concurrency: dict[str, int]
    catalog: str | None = None
    mode: Mode = Mode.run
    #: repo -> [failures, cooldown] of the repos with a circuit breaker
    breakers: dict[str, list[float]] = field(default_factory=dict)
    #: resource -> capacity, of the shared resources its todos lease
    capacity: dict[str, int] = field(default_factory=dict)
    #: an atomic sweep's first failure: "finish" lets running todos finish, "stop"
    #: kills them (their workers read it from here); "" not atomic, or a spec of before
    #: 0.3, whose record's ``atomic`` means "finish"
    atomic: Atomic = Atomic.off
    #: results of todos it does not run that its todos depend on (an earlier sweep's,
    #: from the catalog's ``outputs:``): todo -> key -> value; and which of those each
    #: of its todos gets (see :mod:`coordination.sweeps.outputs`)
    inputs: dict[str, dict[str, str]] = field(default_factory=dict)
    inputs_of: dict[str, list[str]] = field(default_factory=dict)
    #: the plan's waves, in order (empty: none; then the key is left out of the JSON)
    waves: list[WaveSpec] = field(default_factory=list)
    #: ``--no-cache``: run every todo even when an earlier success has its key (its
    #: success is still stored for later sweeps)
    no_cache: bool = False
    #: pace bucket (``repo:api``, ``tag:python``, ``host:github.com``) -> [seconds per
    #: token, burst], of the buckets its todos take tokens from (``pace:`` in the catalog)
    paces: dict[str, list[float]] = field(default_factory=dict)
    #: `plan sweep --again`: completed todos run too (its sync writes back what this run
    #: left of them, see :mod:`coordination.sweeps.writeback.sync`)
    again: bool = False
    #: todo -> the last run that dispatched it, of every todo a run after the first
    #: dispatched (this run's levels included; absent: run 0, which dispatches every
    #: todo). Kept from run to run and signed with the spec, so a reader tells a
    #: todo's outcome, or a gate's decision, of a run before the last that ran it (put
    #: back) from one a later run kept (``coordination.trust.evidence.last_dispatch``).
    dispatched: dict[str, int] = field(default_factory=dict)
    #: `plan sweep --sequential`: one todo at a time, in DAG order (every level holds
    #: one todo, every wave a max_parallel of 1); its resumes run one at a time too
    sequential: bool = False
    #: `plan sweep --merge-chains`: todo -> the next todo of its chain, which the worker
    #: that ran it runs next in the same task (no message), each todo with its own
    #: start, lease, checkpoint, events, retries and outcome (eager only)
    chains: dict[str, str] = field(default_factory=dict)
    #: ``plan sweep --wait-timeout``: the wait_timeout of its todos that set none
    wait_timeout: float | None = None
    #: a rollback's spec (mode "rollback"): the run that applied the change, as a
    #: resume runs it again (None otherwise, and in a rollback's spec of before it
    #: was kept; then left out of the JSON)
    forward: ForwardRun | None = None
    #: when its plan must be finished (the plan's ``due:``, Unix time); None: no due
    #: time (then left out of the JSON): sweeps/notices/overdue.py
    plan_due: float | None = None
    #: a sweep a push started: the commit its pushed repo's todos run on, and the commit
    #: status it posts there (None: any other sweep; then left out of the JSON)
    push: PushSpec | None = None

    def __post_init__(self) -> None:
        # (the JSON of a spec, and older callers, give plain strings: the same values;
        # one no member has is kept as it is, as before the enums)
        self.strategy = _member(Strategy, self.strategy)
        self.mode = _member(Mode, self.mode)
        self.atomic = _member(Atomic, self.atomic or "")

    @functools.cached_property
    def digest(self) -> str:
        """sha256 of what the sweep runs (not of its run number or levels, which a resume
        changes without changing what runs): :func:`coordination.trust.evidence.spec_digest_of`,
        which the landing rule computes from the spec's JSON. A fact of the spec, computed
        once, that gates' bindings and decisions are bound to."""
        return spec_digest_of(self.plan, {t: {f: getattr(s, f) for f in DIGEST_FIELDS}
                                          for t, s in self.todos.items()})

    def wait_timeout_of(self, todo_id: str) -> float | None:
        """Seconds ``todo_id`` may wait for a slot (its own, else the sweep's), or None."""
        own = self.todos[todo_id].wait_timeout
        return own if own is not None else self.wait_timeout

    def last_run(self, todo_id: str) -> int:
        """The last run of the sweep that dispatched ``todo_id`` (this one, an earlier
        one a resume kept it from, or 0)."""
        return last_dispatch(todo_id, self.run, self.level_of(), self.dispatched)

    def next_dispatched(self, run: int, levels: list[list[str]]) -> dict[str, int]:
        """:attr:`dispatched` of this sweep's next run ``run``, which dispatches
        ``levels`` (a spec of before the map was kept: its own levels counted too)."""
        out = dict(self.dispatched)
        if self.run:
            out.update((t, self.run) for lvl in self.levels for t in lvl)
        out.update((t, run) for lvl in levels for t in lvl)
        return out

    def sent_on_finish(self, todo_id: str) -> list[tuple[str, str]]:
        """``(todo, queue)`` of the successors the todo's finish sends when they are
        ready: an eager sweep's (in levels, the level's end sends them; in waves, the
        wave sends its todos, not a finishing predecessor)."""
        if self.strategy != Strategy.eager or self.waves:
            return []
        return [(s, self.todos[s].queue) for s in self.todos[todo_id].succs if s in self.todos]

    def pace_of(self, todo_id: str) -> list[tuple[str, float, int]]:
        """``(bucket, seconds per token, burst)`` of the buckets a todo's start takes a
        token from; none for a rollback's undo commands (as the breaker, pacing is for
        the change going out, not for taking it back)."""
        if self.mode == Mode.rollback:
            return []
        out = []
        for b in self.todos[todo_id].pace:
            iv, burst = self.paces.get(b, (0.0, 1))
            if iv > 0:
                out.append((b, float(iv), int(burst)))
        return out

    def breaker(self, repo: str) -> tuple[int, float] | None:
        b = self.breakers.get(repo)
        return (int(b[0]), float(b[1])) if b else None

    def breaker_of_run(self, repo: str) -> tuple[int, float] | None:
        """The breaker a run of a ``repo`` todo waits on and reports to: the repo's, but
        none in a rollback (the undo the user asked for runs whatever the breaker says,
        and does not count against it)."""
        return None if self.mode == Mode.rollback else self.breaker(repo)

    def resources_of(self, todo_id: str) -> list[tuple[str, int]]:
        """``(name, capacity)`` of the resources a todo leases, in name order."""
        return sorted((r, int(self.capacity.get(r, 1))) for r in self.todos[todo_id].resources)

    def to_json(self) -> str:
        # The fields as they are (vars, not asdict: asdict deep-copies every todo's
        # lists and dicts first, a fifth of a 400-todo sweep's start); same JSON.
        data = _fields(self)
        for name in ("atomic", "inputs", "inputs_of", "waves", "no_cache", "paces", "again",
                     "dispatched", "sequential", "chains", "forward", "plan_due", "push"):
            if not data[name]:
                del data[name]  # as a spec of before 0.3 reads: any coord can parse it
        return json.dumps(data, separators=(",", ":"), default=_fields)

    @classmethod
    def from_json(cls, text: str) -> SweepSpec:
        data = json.loads(text)
        # A worker keeps the spec of each sweep it runs: the strings every todo of a
        # repo repeats (repo, queue, checkout, priority, ids in preds and succs) are
        # kept once, not once per todo (a 10,000-todo spec: 13 -> 7 MB).
        same: dict[str, str] = {}

        def one(v: str) -> str:
            return same.setdefault(v, v)

        todos = {}
        for k, v in data["todos"].items():
            k = one(k)
            for f in ("id", "repo", "queue", "path", "priority", "run"):
                if isinstance(v.get(f), str):
                    v[f] = one(v[f])
            for f in ("preds", "succs"):
                if v.get(f):
                    v[f] = [one(x) for x in v[f]]
            todos[k] = TodoSpec(**v)
        data["todos"] = todos
        data["levels"] = [[one(t) for t in level] for level in data.get("levels", [])]
        data["waves"] = [WaveSpec(**w) for w in data.get("waves") or []]
        forward = data.get("forward")
        if forward:
            forward["waves"] = [WaveSpec(**w) for w in forward.get("waves") or []]
            forward["strategy"] = Strategy(forward["strategy"])
            data["forward"] = ForwardRun(**forward)
        return cls(**data)

    def wave_of(self) -> dict[str, int]:
        """Todo -> the index of its wave (empty without waves)."""
        cached: dict[str, int] | None = self.__dict__.get("_wave_of")
        if cached is None:
            cached = {t: i for i, w in enumerate(self.waves) for t in w.todos}
            self.__dict__["_wave_of"] = cached
        return cached

    def gates(self) -> list[str]:
        """The todos that are gates (wait for people), in id order."""
        return sorted(t for t, s in self.todos.items() if s.gate)

    def level_of(self) -> dict[str, int]:
        """Todo -> its level in this run (todos this run does not dispatch are absent)."""
        cached: dict[str, int] | None = self.__dict__.get("_level_of")
        if cached is None:
            cached = {t: i for i, level in enumerate(self.levels) for t in level}
            self.__dict__["_level_of"] = cached
        return cached

    @property
    def skip_walked(self) -> set[str]:
        """Todos this process already handed to a skip in this run (see
        :class:`coordination.sweeps.progress.SkipDependents`); never serialised."""
        walked: set[str] = self.__dict__.setdefault("_skip_walked", set())
        return walked

    def counters(self) -> dict[str, int]:
        """Initial level counters of this run, for the sweep record (see
        :mod:`coordination.runtime.transitions`)."""
        return {f"level_left:{i}": len(level) for i, level in enumerate(self.levels)} | {
            f"level_ok:{i}": 0 for i in range(len(self.levels))} | {
            f"level_said:{i}": 0 for i in range(len(self.levels))}

    def descendants_of(self, todo_ids: Iterable[str]) -> set[str]:
        """Every todo after any of ``todo_ids``, walked once (10,000 instances of a
        template asked for at once: one walk, not one each)."""
        seen: set[str] = set()
        stack = [s for t in todo_ids if t in self.todos for s in self.todos[t].succs]
        while stack:
            t = stack.pop()
            if t in seen or t not in self.todos:
                continue
            seen.add(t)
            stack.extend(self.todos[t].succs)
        return seen

    def descendants(self, todo_id: str, stop: set[str] | frozenset[str] = frozenset()
                    ) -> list[str]:
        """Every todo after ``todo_id``, not walking on from one in ``stop``."""
        seen: set[str] = set()
        stack = list(self.todos[todo_id].succs)
        out: list[str] = []
        while stack:
            t = stack.pop()
            if t in seen or t in stop or t not in self.todos:
                continue
            seen.add(t)
            out.append(t)
            stack.extend(self.todos[t].succs)
        return out


def forward_of(spec: SweepSpec, undone: Iterable[str]) -> ForwardRun | None:
    """What a rollback of ``spec`` keeps of the run that applied the change: ``spec``'s
    order, and the run: commands of ``undone`` (the todos whose undo: the rollback runs
    in their place). Of a rollback's own spec (a rollback retried), what it kept."""
    if spec.mode == Mode.rollback:
        return spec.forward
    return ForwardRun(strategy=spec.strategy,
                      preds={t: list(ts.preds) for t, ts in spec.todos.items() if ts.preds},
                      runs={t: spec.todos[t].run for t in undone},
                      waves=list(spec.waves), sequential=spec.sequential,
                      chains=dict(spec.chains))


def forward_spec(spec: SweepSpec) -> SweepSpec:
    """``spec`` as its sweep's next run is planned from (a resume, its dry run): of a
    rollback's spec, whose edges run the undos in reverse and whose commands are the
    undos, the run that applied the change (:attr:`SweepSpec.forward`): its edges,
    run: commands, strategy, waves, sequential and chains. Its run, levels and
    dispatched stay the rollback's (what that run dispatched). Any other spec as it is.

    A rollback's spec of before the forward run was kept gives back the order among
    the todos it compensated (each after everything it was undone after), levels."""
    if spec.mode != Mode.rollback:
        return spec
    fwd = spec.forward or ForwardRun(
        strategy=Strategy.levels, preds={t: list(ts.succs) for t, ts in spec.todos.items() if ts.succs})
    succs: dict[str, list[str]] = {t: [] for t in spec.todos}
    for t, before in fwd.preds.items():
        for p in before:
            if p in succs:
                succs[p].append(t)
    todos = {t: replace(ts, preds=list(fwd.preds.get(t, ())), succs=sorted(succs[t]),
                        run=fwd.runs.get(t, ts.run))
             for t, ts in spec.todos.items()}
    return replace(spec, todos=todos, strategy=fwd.strategy, mode=Mode.run, waves=fwd.waves,
                   sequential=fwd.sequential, chains=fwd.chains, forward=None)


SWEEP_MARGIN = 300.0  # seconds added to a sweep's computed deadline


def sweep_deadline(spec: SweepSpec, cap: float) -> float:
    """Seconds a sweep may take: per level, the busiest repo's serial budget."""

    total = 0.0
    for level in spec.levels:
        per_repo: dict[str, float] = {}
        for tid in level:
            t = spec.todos[tid]
            per_repo[t.repo] = (per_repo.get(t.repo, 0.0) + t.timeout * (t.retries + 1)
                                + backoff_cap(t.retries))
        total += max(
            (b / max(1, spec.concurrency.get(r, 1)) for r, b in per_repo.items()), default=0.0
        )
    # People and soaks take time too: a wave's soak, a gate's wait (all of the cap
    # when it never expires).
    total += sum(w.soak for w in spec.waves)
    for t in spec.todos.values():
        if t.gate:
            expires = t.gate.get("expires")
            total += float(expires) if expires is not None else cap
    # A paced bucket lets its todos start one interval apart at best: the slowest
    # bucket's whole line waits on top (other sweeps sharing it may slow it more).
    per_bucket: dict[str, int] = {}
    for t in spec.todos.values():
        for b in t.pace:
            per_bucket[b] = per_bucket.get(b, 0) + 1
    total += max((n * float(spec.paces.get(b, (0.0, 1))[0]) for b, n in per_bucket.items()),
                 default=0.0)
    return min(cap, total + SWEEP_MARGIN)
