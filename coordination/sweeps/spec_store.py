"""A sweep's frozen spec as the processes that run it read it: parsed once per
run, cached, and checked against its signature on the very text parsed.

The spec (:class:`~coordination.sweeps.spec.SweepSpec`) is frozen in the sweep's
record when it starts, resumes or rolls back (each a new ``run``). It can be
megabytes at 10,000 todos, so a process parses each run's spec once and keeps
the 32 most recent; a worker's threads that all get the first message of a
sweep at once wait for one parse.

Each cached spec carries its verdict (:class:`Checked`): the spec's text, its
signature and the record's run are read in one HMGET, the verdict is computed
on that text and the spec parsed from that same text, behind one door
(:func:`_check`), and the two are kept and evicted together. A spec read
again (evicted, or another run) is checked again: no verdict outlives the bytes
it was computed on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from coordination.runtime.context import Runtime
from coordination.runtime.sweep_fields import SweepRecord, repo_field
from coordination.sweeps.spec import Strategy, SweepSpec, sweep_deadline
from coordination.trust.signing import Policy, SpecRefused, refusal, sign


@dataclass(frozen=True)
class Checked:
    """A spec as parsed from one read of the record, and why it must not run (None:
    it may), computed on the same text. ``spec`` is None when the text could not be
    parsed (then ``refusal`` says so)."""

    spec: SweepSpec | None
    refusal: str | None


#: (sweep, run) -> (the policy it was checked under, the checked spec)
_spec_cache: OrderedDict[tuple[str, int], tuple[tuple[object, ...], Checked]] = OrderedDict()
_spec_lock = threading.Lock()
#: Held while a spec is read and parsed (3.6 MB of JSON and ~20 MB of objects at
#: 10,000 todos): concurrent first readers wait for one parse.
_spec_load_lock = threading.Lock()

#: Record fields a worker needs per todo; the spec itself is read once per run.
HEAD_FIELDS = ("status", "run", "deadline")
#: What a spec is checked with: read together, in one HMGET.
SPEC_FIELDS = ("run", "spec", "spec_sig", "spec_key_id")


def policy(rt: Runtime) -> Policy:
    """What this process accepts (COORD_SIGNING_KEY[_PREVIOUS], COORD_ACCEPT_UNSIGNED,
    COORD_REQUIRE_SIGNED)."""
    s = rt.settings
    return Policy(tuple(s.signing_keys), s.accept_unsigned, s.require_signed)


def sweep_head(rt: Runtime, sweep_id: str) -> SweepRecord | None:
    """The small fields of a sweep record (not its spec): one HMGET."""
    return rt.checkpoints.get_sweep_fields(sweep_id, HEAD_FIELDS)


def load_spec(rt: Runtime, sweep_id: str, record: SweepRecord | None = None) -> SweepSpec | None:
    """The sweep's spec, parsed once per (sweep, run) per process, whatever its
    signature says (for reading it: status, supervision); a worker about to run a
    command asks :func:`load_checked`. ``record`` needs only its ``run``."""
    checked = load_checked(rt, sweep_id, record)
    return None if checked is None else checked.spec


def load_checked(rt: Runtime, sweep_id: str, record: SweepRecord | None = None
                 ) -> Checked | None:
    """The sweep's spec with its verdict, parsed and checked once per (sweep, run) per
    process. ``record`` needs only its ``run`` (it says which cached spec to look
    for); on a miss the spec is read with its signature and run, and is that run's
    (a later one if the sweep moved on meanwhile). None: no such sweep, or no spec."""
    pol = policy(rt)
    if record is None:
        record = sweep_head(rt, sweep_id)
        if record is None:
            return None
    key = (sweep_id, _run(record.get("run")))
    hit = _cached(key, pol)
    if hit is not None:
        return hit
    with _spec_load_lock:
        hit = _cached(key, pol)  # parsed by another thread while this one waited
        if hit is not None:
            return hit
        fields = rt.checkpoints.get_sweep_fields(sweep_id, SPEC_FIELDS)
        if fields is None or fields.get("spec") is None:
            return None
        run = _run(fields.get("run"))
        checked = _check(sweep_id, run, fields, pol)
        _keep((sweep_id, run), pol, checked)
        return checked


def remember_written(rt: Runtime, spec: SweepSpec, fields: Mapping[str, object]) -> None:
    """Cache the spec this process has just written into its sweep's record (``fields``:
    what it wrote, the spec's text and signature among them), with the verdict computed
    on that text, as a read of the record would: the process that starts a sweep and
    follows it (a waiting CLI supervises) does not read back and parse what it holds.
    ``spec`` must be what ``fields["spec"]`` was made from (``spec.to_json()``)."""
    pol = policy(rt)
    _keep((spec.sweep_id, spec.run), pol, _check(spec.sweep_id, spec.run, fields, pol, spec))


def _keep(key: tuple[str, int], pol: Policy, checked: Checked) -> None:
    """Cache ``checked`` as this run's spec under ``pol``, the 32 most recent kept."""
    with _spec_lock:
        _spec_cache[key] = (pol.fingerprint, checked)
        _spec_cache.move_to_end(key)
        while len(_spec_cache) > 32:
            _spec_cache.popitem(last=False)


def cached_spec(sweep_id: str, run: int) -> SweepSpec | None:
    """The spec of this run of the sweep if this process has parsed it (no Redis)."""
    with _spec_lock:
        entry = _spec_cache.get((sweep_id, int(run)))
    return None if entry is None else entry[1].spec


def cached_checked(rt: Runtime, sweep_id: str, run: int) -> Checked | None:
    """This run's spec and verdict if this process has checked it (no Redis)."""
    return _cached((sweep_id, int(run)), policy(rt))


def derivable_spec(rt: Runtime, sweep_id: str, record: SweepRecord | None = None
                   ) -> SweepSpec | None:
    """The spec a resume or a rollback derives its next run from, which this process
    then signs: refused (:class:`SpecRefused`) when this process signs (it has a
    key) and the stored spec fails its check, so that no key-holder ever signs what
    someone wrote into Redis."""
    checked = load_checked(rt, sweep_id, record)
    if checked is None:
        return None
    if rt.settings.signing_keys and checked.refusal is not None:
        raise SpecRefused(
            f"sweep {sweep_id}: its stored spec fails its check ({checked.refusal}); "
            "nothing is signed from it",
            hint="start a new sweep of the plan")
    return checked.spec


def _cached(key: tuple[str, int], pol: Policy) -> Checked | None:
    with _spec_lock:
        entry = _spec_cache.get(key)
        if entry is None or entry[0] != pol.fingerprint:
            return None
        _spec_cache.move_to_end(key)
        return entry[1]


def _run(value: object) -> int:
    """A record's ``run`` (-1 when it is not a number: no spec's run matches it)."""
    try:
        return int(str(value or 0))
    except ValueError:
        return -1


def _check(sweep_id: str, run: int, fields: Mapping[str, object], pol: Policy,
           parsed: SweepSpec | None = None) -> Checked:
    """The one door of a spec's trust: the spec of ``fields`` (its text, signature and
    key id, as read together or just written) as run ``run`` of ``sweep_id``, with why
    it must not run: its signature's refusal under ``pol``
    (:func:`coordination.trust.signing.refusal`, on the very text), else why the text is
    unfit. ``parsed``: the spec that text was made from (not parsed again)."""
    text = fields.get("spec")
    spec, unfit = (parsed, None) if parsed is not None else _parse(sweep_id, run, text)
    why = refusal(sweep_id, run, text, fields.get("spec_sig"), fields.get("spec_key_id"), pol)
    return Checked(spec, why or unfit)


def _parse(sweep_id: str, run: int, text: object) -> tuple[SweepSpec | None, str | None]:
    """The spec parsed from ``text`` as run ``run`` of ``sweep_id``, and why it is unfit
    to run (None: fit). A spec whose own sweep id or run is not the record's is unfit,
    signed or not, and is given the record's, so that what ends its todos ends this
    sweep's (not the sweep it was copied from)."""
    try:
        if not isinstance(text, str):
            raise TypeError("not text")
        spec = SweepSpec.from_json(text)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        return None, f"spec unreadable: {exc}"
    if spec.sweep_id == sweep_id and spec.run == run:
        return spec, None
    why = (f"spec refused: it is run {spec.run} of sweep {spec.sweep_id}, "
           f"recorded as run {run} of sweep {sweep_id}")
    spec.sweep_id, spec.run = sweep_id, run
    return spec, why


def run_record(rt: Runtime, spec: SweepSpec, *, now: float) -> dict[str, object]:
    """The record fields that freeze ``spec`` as its sweep's run ``spec.run``, written
    by whatever starts a run (a sweep's start, a resume, a rollback) with its status:
    the spec's text, made once, its shape and size, its deadline from ``now``, its repos
    (for the metrics), and last the text's signature (COORD_SIGNING_KEY; without a key,
    none, clearing an old one). A later run (a resume, a rollback) is derived from the
    stored spec by :func:`derivable_spec`, which refuses one that fails its check: what
    is signed here was made from a spec that checked out."""
    from coordination.runtime.metrics import run_fields  # lazy: writers only, not a status

    text, keys = spec.to_json(), rt.settings.signing_keys
    fields: dict[str, object] = {
        "spec": text, "shape": shape(spec),
        "todos": len(spec.todos),  # what a listing shows progress against
        "deadline": now + sweep_deadline(spec, rt.settings.sweep_deadline),
        **run_fields(t.repo for t in spec.todos.values())}
    fields.update(sign(spec.sweep_id, spec.run, text, keys[0]) if keys
                  else {"spec_sig": None, "spec_key_id": None})
    return fields


def shape(spec: SweepSpec) -> dict[str, object]:
    """The record's ``shape``, written with every spec: what a status of a big sweep
    must know of the spec without reading it (megabytes at 10,000 todos): its gates and
    waves (their parts of the view read the spec), its mode, its first todos (what a
    sweep of no plan is called by)."""
    return {"gates": len(spec.gates()), "waves": len(spec.waves), "mode": spec.mode,
            "head": list(spec.todos)[:5]}


def repo_fields(spec: SweepSpec, todo_ids: Iterable[str]) -> dict[str, object]:
    """The record's ``p:<todo>`` fields of ``todo_ids``: each one's repo, for the rows a
    status reads from the tally (sweeps/summary.py)."""
    return {repo_field(t): spec.todos[t].repo for t in todo_ids}


def level_index(spec: SweepSpec, todo_id: str) -> int:
    """The todo's level in this run for the level counters (-1: eager, or not in this run)."""
    if spec.strategy != Strategy.levels:
        return -1
    return spec.level_of().get(todo_id, -1)
