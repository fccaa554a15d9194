"""What a sync may write into the catalog: the sealed outcomes of a sweep whose spec
verifies, never a plain status (#59).

The sync (:meth:`coordination.sweeps.service.SweepService.sync`: ``sweep sync``, ``sweep
watch``, ``plan sweep --wait``, and the catch-up every `coord` command makes,
:mod:`coordination.sweeps.writeback.live`) turns a sweep's outcomes into catalog edits: a todo
``completed`` is what the next ``todo run`` takes for a passed blocker. Until 0.6 it read
the todos' plain statuses and the sweep's plain ``plan``: a keyless writer made failed
todos, and another plan's, ``completed``. Now, before anything is written:

- the sweep's spec must pass its signature check (a refusal: nothing of the sweep is
  written, said); its plan, its catalog, which todos it ran and ``again`` are the
  spec's, never the record's fields;
- each todo's outcome is read again with its seal and taken only when the seal holds
  (:func:`coordination.trust.evidence.outcome_refusal`: status, exit code, the run that
  ended it, in the window of the last run that dispatched it); a gate that reads passed,
  only on a decision that holds (:func:`coordination.sweeps.governance.decisions.gate_refusals`). A
  gate rejected or expired is said so by coord's count without a seal: taken as it reads
  (it only ever keeps what follows it from running);
- every outcome refused is left out and reported (``refused``: todo -> why): the
  catalog keeps what it said of that todo.

Without a key (and without ``COORD_REQUIRE_SIGNED=1``) nothing is sealed and everything
is taken as it reads, as every other evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from coordination.errors import OperationFailed
from coordination.runtime.context import Runtime
from coordination.status import SUCCESSFUL
from coordination.sweeps.governance import decisions
from coordination.sweeps.spec import SweepSpec
from coordination.sweeps.spec_store import load_checked
from coordination.sweeps.writeback.sync import WRITTEN, Outcome
from coordination.trust import evidence
from coordination.trust.evidence import policy_of


@dataclass
class Sealed:
    """What a sync of one sweep may write: its outcomes and the spec's facts."""

    spec: SweepSpec
    outcomes: dict[str, Outcome]
    #: todo -> why its outcome is not written
    refused: dict[str, str] = field(default_factory=dict)


def signed_spec(rt: Runtime, sweep_id: str, catalog: Path | None) -> SweepSpec:
    """The sweep's spec if its signature holds and it ran from ``catalog``; else
    OperationFailed, naming why nothing of the sweep is written."""
    checked = load_checked(rt, sweep_id)
    policy = policy_of(rt.settings)
    if checked is None or checked.spec is None:
        raise OperationFailed(f"sweep {sweep_id}: no spec to sync it by",
                              hint="nothing of it was written into the catalog")
    if checked.refusal is not None and (policy.keys or policy.require_signed):
        raise OperationFailed(
            f"sweep {sweep_id}: its spec fails its check ({checked.refusal}): nothing of it "
            "is written into the catalog",
            hint="the sweep's record was written by someone without COORD_SIGNING_KEY; "
            "sweep the plan again")
    spec = checked.spec
    if catalog is not None and spec.catalog and \
            Path(spec.catalog).resolve() != catalog.resolve():
        raise OperationFailed(f"sweep {sweep_id} ran from {spec.catalog}, not this catalog "
                              f"({catalog}): nothing of it is written here")
    return spec


def sealed_outcomes(rt: Runtime, sweep_id: str, spec: SweepSpec,
                    todos: Mapping[str, Outcome]) -> Sealed:
    """``todos`` (the status document's outcomes) as a sync may write them: the spec's
    todos only, each one whose outcome's seal holds, as it reads with its seal (one read)."""
    policy = policy_of(rt.settings)
    ids = [t for t in spec.todos if t in todos]
    out = Sealed(spec, {})
    if not (policy.keys or policy.require_signed):
        out.outcomes = {t: todos[t] for t in ids}
        return out
    cps = rt.checkpoints.get_fields_all(sweep_id, ids,
                                        ("status", "exit_code", evidence.OUTCOME_FIELD))
    gates = [t for t in ids if spec.todos[t].gate]
    passed = [g for g in gates if (cps.get(g) or {}).get("status") in SUCCESSFUL]
    out.refused.update(decisions.gate_refusals(rt, spec, passed) if passed else {})
    for t in ids:
        cp = cps.get(t) or {}
        status = cp.get("status")
        if t in out.refused:
            continue
        if status != todos[t]["status"]:  # (rewritten since the document was read)
            out.refused[t] = (f"outcome record of {t} in sweep {sweep_id}: read "
                              f"{todos[t]['status']}, then {status}: rewritten meanwhile")
            continue
        if status in WRITTEN and not spec.todos[t].gate:
            why = evidence.outcome_refusal(policy, sweep_id, t, cp, current_run=spec.run,
                                           last_run=spec.last_run(t))
            if why is not None:
                out.refused[t] = why
                continue
        out.outcomes[t] = todos[t]
    return out
