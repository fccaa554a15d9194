"""Results passed between todos: ``$COORD_OUTPUT`` in, ``COORD_IN_*`` out.

A todo may write ``KEY=VALUE`` lines, or one JSON object, to the file named by
``$COORD_OUTPUT``. When it succeeds its worker parses that file
(:func:`parse_outputs`, at most :data:`OUTPUT_CAP` bytes) and keeps the result
with its checkpoint (the ``outputs`` field, written by the same fenced finish
as its status). Every todo that depends on it, directly or not, gets each value
as ``COORD_IN_<TODO_ID>_<KEY>`` and all of them as one JSON object in
``$COORD_INPUTS`` (:func:`inputs_env`).

Where a dependent's inputs come from (:func:`gather_inputs`):

* ancestors in the same sweep: their checkpoints (a resume keeps the
  checkpoints of the todos it does not run again, so their outputs carry over);
* ancestors outside it (completed by an earlier sweep, whose outputs its sync
  wrote into the catalog's ``outputs:``): frozen into the spec when the sweep
  starts (:func:`external_inputs`; ``SweepSpec.inputs`` and ``inputs_of``).

Outputs are evidence (:mod:`coordination.trust.evidence`, kind ``outputs``): the
worker that writes them into a checkpoint seals them (:func:`outputs_fields`: the
``outputs_seal`` field beside ``outputs``), bound to their sweep and todo and the run
whose outcome seal is beside them (an earlier run's put back is refused), so a
record written into Redis by anyone without ``COORD_SIGNING_KEY``, or copied from
another todo or sweep, is refused by every reader that hands it on
(:func:`outputs_refusal`): :func:`gather_inputs` raises :class:`InputsRefused` and the
dependent fails before it runs, naming the record; a sync leaves them out of the
catalog.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from coordination.catalog.selection.ordering import reachable
from coordination.trust.evidence import (
    KID,
    OUTCOME_FIELD,
    SIG,
    EvidenceKind,
    policy_of,
    refusal,
    seal,
)

if TYPE_CHECKING:
    from coordination.runtime.context import Runtime
    from coordination.sweeps.spec import SweepSpec

#: The most a todo may write to ``$COORD_OUTPUT``.
OUTPUT_CAP = 64 * 1024
#: What a key must look like (it becomes part of an environment variable's name,
#: upper-cased with ``-`` as ``_``: ``build-id`` is ``COORD_IN_<TODO>_BUILD_ID``).
KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


class OutputsRefused(ValueError):
    """What a todo wrote to ``$COORD_OUTPUT`` cannot be kept; the message says why."""


class InputsRefused(ValueError):
    """An ancestor's outputs record failed its seal: nothing of it may be handed on; the
    message names the record and why."""


#: The checkpoint field holding the seal of its ``outputs`` (``{"sig", "kid"}``; None:
#: written without a key).
SEAL_FIELD = "outputs_seal"


def outputs_about(sweep_id: str, todo_id: str, run: object) -> dict[str, object]:
    """What an outputs record is about: its sweep and todo, and the run that ended the
    todo (supplied by the reader: where it found the record, and the run its outcome
    seal names, never the record itself). A resume hands on the outputs of a todo it
    does not run again with that run's outcome; the outputs of an earlier run of a todo
    that ran again, put back beside the later outcome, fail their seal."""
    return {"sweep": sweep_id, "todo": todo_id, "run": run}


def outcome_run(checkpoint: Mapping[str, Any]) -> object:
    """The run a checkpoint's outcome seal names (None: none)."""
    stamp = checkpoint.get(OUTCOME_FIELD)
    return stamp.get("run") if isinstance(stamp, Mapping) else None


def outputs_what(sweep_id: str, todo_id: str) -> str:
    """How a refusal names an outputs record."""
    return f"outputs record of {todo_id} in sweep {sweep_id}"


def outputs_fields(keys: tuple[str, ...] | list[str], sweep_id: str, todo_id: str,
                   outputs: Mapping[str, str], *, run: int) -> dict[str, object]:
    """The checkpoint fields of a todo that finishes with ``outputs`` in run ``run``
    (the run its outcome is sealed in, in the same write): them and their seal under
    ``keys[0]`` (None without a key: written in the same step, so a seal of an earlier
    run never stays beside other outputs)."""
    values = {str(k): str(v) for k, v in outputs.items()}
    sealed = seal(EvidenceKind.outputs, outputs_about(sweep_id, todo_id, int(run)), {"outputs": values},
                  keys)
    stamp = {SIG: sealed[SIG], KID: sealed[KID]} if SIG in sealed else None
    return {"outputs": values, SEAL_FIELD: stamp}


def outputs_refusal(settings: Any, sweep_id: str, todo_id: str,
                    checkpoint: Mapping[str, Any]) -> str | None:
    """None if the outputs in ``checkpoint`` (a todo's, or its change run's) may be handed
    on by a process of ``settings``; else why not, naming the record. No outputs: none."""
    outputs = checkpoint.get("outputs")
    if not outputs:
        return None
    stamp = checkpoint.get(SEAL_FIELD)
    record: dict[str, Any] = {"outputs": outputs}
    if isinstance(stamp, Mapping):
        record.update({k: stamp.get(k) for k in (SIG, KID)})
    why = refusal(EvidenceKind.outputs, outputs_about(sweep_id, todo_id, outcome_run(checkpoint)),
                  record, policy_of(settings), outputs_what(sweep_id, todo_id))
    if why is None and not isinstance(outputs, Mapping):
        why = f"{outputs_what(sweep_id, todo_id)}: not an object of KEY -> VALUE"
    return why


def too_big(size: int) -> str:
    """Why results of ``size`` bytes are refused."""
    return (f"$COORD_OUTPUT holds {size:,} bytes, over the {OUTPUT_CAP // 1024} KiB cap "
            "(write large results to a file and pass its path)")


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return json.dumps(value)  # refuses nothing: json.loads gave only finite numbers
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _finite(text: str) -> float:
    raise OutputsRefused(f"$COORD_OUTPUT holds {text}, not a finite number")


def parse_outputs(data: bytes) -> dict[str, str]:
    """The outputs a todo wrote: one JSON object (values that are not text are kept
    as their JSON), else ``KEY=VALUE`` lines (blank lines and ``#`` comments
    skipped; the value is everything after the first ``=``, as written). Raises
    :class:`OutputsRefused` naming the line or key at fault."""
    if len(data) > OUTPUT_CAP:
        raise OutputsRefused(too_big(len(data)))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OutputsRefused(f"$COORD_OUTPUT is not UTF-8 (byte {exc.start})") from None
    stripped = text.strip()
    out: dict[str, str] = {}
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped, parse_constant=_finite)
        except json.JSONDecodeError as exc:
            raise OutputsRefused(
                f"$COORD_OUTPUT starts with '{{' but is not one JSON object: {exc.msg} "
                f"(line {exc.lineno}, column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise OutputsRefused("$COORD_OUTPUT is JSON but not an object")
        items: Iterable[tuple[str, object]] = obj.items()
        for key, value in items:
            _check_key(key, None)
            out[key] = _text(value)
        return _one_name_each(out)
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise OutputsRefused(f"$COORD_OUTPUT line {n} is not KEY=VALUE: {line[:80]!r}")
        key = key.strip()
        _check_key(key, n)
        out[key] = value
    return _one_name_each(out)


def _one_name_each(out: dict[str, str]) -> dict[str, str]:
    """``out``, unless two of its keys become one variable name (``version`` and
    ``VERSION``, ``build-id`` and ``build_id``): then which, so the todo fails naming
    them rather than handing on one of the two values silently."""
    seen: dict[str, str] = {}
    for key in out:
        name = env_part(key)
        if name in seen:
            raise OutputsRefused(
                f"$COORD_OUTPUT keys {seen[name]!r} and {key!r} both become "
                f"COORD_IN_<TODO>_{name} (keys are upper-cased, '-' read as '_'): "
                "write one of them, or give them names that differ")
        seen[name] = key
    return out


def _check_key(key: str, line: int | None) -> None:
    if not KEY_RE.match(key):
        where = f" (line {line})" if line is not None else ""
        raise OutputsRefused(
            f"$COORD_OUTPUT key {key[:80]!r}{where} is not a name: letters, digits, '_' "
            "and '-', starting with a letter or '_'")


def env_part(name: str) -> str:
    """A todo id or key as part of an environment variable's name."""
    return re.sub(r"[^A-Z0-9_]", "_", name.upper())


def env_name(todo_id: str, key: str) -> str:
    """``COORD_IN_<TODO_ID>_<KEY>`` (upper-cased, ``-`` as ``_``)."""
    return f"COORD_IN_{env_part(todo_id)}_{env_part(key)}"


def inputs_env(inputs: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The environment a dependent gets from its ancestors' outputs (todo -> outputs):
    one ``COORD_IN_*`` per value, and ``COORD_INPUTS`` with them all (always set,
    ``{}`` when there are none, so a todo can rely on it)."""
    env = {env_name(t, k): v for t in sorted(inputs) for k, v in inputs[t].items()}
    env["COORD_INPUTS"] = json.dumps({t: dict(inputs[t]) for t in sorted(inputs)},
                                     separators=(",", ":"), ensure_ascii=False)
    return env


def ancestors(preds: Mapping[str, Iterable[str]], todo_id: str) -> list[str]:
    """Every todo before ``todo_id`` in a graph given as todo -> its predecessors."""
    return sorted(reachable(preds, todo_id))


def external_inputs(preds: Mapping[str, Iterable[str]], outputs: Mapping[str, Mapping[str, str]],
                    in_sweep: Iterable[str]) -> tuple[dict[str, dict[str, str]],
                                                      dict[str, list[str]]]:
    """For a sweep of ``in_sweep``: the outputs of its todos' ancestors that it does
    not run (``outputs``: the catalog's, by todo), and for each of its todos which of
    them are its ancestors. ``preds``: the catalog's todo -> predecessors (todos only).
    Costs nothing when no todo has outputs."""
    if not outputs:
        return {}, {}
    sweep = set(in_sweep)
    given: dict[str, dict[str, str]] = {}
    of: dict[str, list[str]] = {}
    for t in sorted(sweep):
        outside = [a for a in ancestors(preds, t) if a not in sweep and outputs.get(a)]
        if outside:
            of[t] = outside
            for a in outside:
                given[a] = dict(outputs[a])
    return given, of


def gather_inputs(rt: Runtime, spec: SweepSpec, todo_id: str, *, read: bool = True
                  ) -> dict[str, dict[str, str]]:
    """The results a todo of ``spec`` gets (ancestor -> key -> value): those its spec
    froze from the catalog (the spec is signed), and its ancestors' in this sweep, read
    from their checkpoints in one command (only when ``read``: some todo of the sweep
    kept results, as its start said). Raises :class:`InputsRefused` when an ancestor's
    outputs fail their seal (:func:`outputs_refusal`): never hands a forged value on."""
    inputs = {a: dict(spec.inputs[a]) for a in spec.inputs_of.get(todo_id, ())
              if a in spec.inputs}
    if read:
        preds = {t: s.preds for t, s in spec.todos.items()}
        before = ancestors(preds, todo_id)
        if before:
            cps = rt.checkpoints.get_fields_all(spec.sweep_id, before,
                                                ("outputs", SEAL_FIELD, OUTCOME_FIELD))
            for a in before:
                cp = cps.get(a, {})
                why = outputs_refusal(rt.settings, spec.sweep_id, a, cp)
                ran, last = outcome_run(cp), spec.last_run(a)
                if why is None and cp.get("outputs") and isinstance(ran, int) and ran < last:
                    # (its whole checkpoint of an earlier run put back: sealed, but stale)
                    why = (f"{outputs_what(spec.sweep_id, a)}: of run {ran}, but run {last} "
                           f"ran {a} again: an earlier run's outputs put back")
                if why is not None:
                    raise InputsRefused(why)
                got = cp.get("outputs")
                if isinstance(got, dict) and got:
                    inputs[a] = {str(k): str(v) for k, v in got.items()}
    return inputs


def undo_inputs(rt: Runtime, sweep_id: str, todo_id: str) -> dict[str, dict[str, str]]:
    """What an undo command gets: what its own change wrote (the version it published,
    say), as ``COORD_IN_<ITSELF>_<KEY>``. Raises :class:`InputsRefused` when those
    outputs fail their seal (:func:`outputs_refusal`)."""
    kept = rt.checkpoints.get_change_run(sweep_id, todo_id) or {}
    why = outputs_refusal(rt.settings, sweep_id, todo_id, kept)
    if why is not None:
        raise InputsRefused(why)
    own = kept.get("outputs")
    return {todo_id: dict(own)} if isinstance(own, dict) and own else {}
