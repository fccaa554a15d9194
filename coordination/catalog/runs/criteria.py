"""A plan's checked completion criteria: running their checks, and their last results.

A criterion may carry a ``check`` (:class:`coordination.catalog.models.Criterion`): a
shell command from the catalog (never from a command line), run in the catalog's
directory by `coord plan status --check` and by the sync that would complete the plan
(:mod:`coordination.sweeps.writeback.sync`), through the dependency checks' runner
(:func:`coordination.catalog.runs.depcheck.run_check`: own session, stdin closed, bounded
output, a timeout that kills its process group).

Their last results are kept *beside* the catalog, in ``.<catalog>.coord.criteria.json``
(plan -> when, and each criterion's result), written under the catalog's lock, and each
run is an entry of the audit log (op ``plan.checked``: who, when, which failed, and the
digest of the results written: only results an entry vouches for are read). Not in
the catalog file itself: a result is an observation that changes each time it is taken
(time, exit status, output), and writing it there would make every check a diff of the
file people review; the audit log keeps the trace, and the file keeps only what people
decide (the criteria, their commands).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

from coordination.catalog.file.beside import Beside
from coordination.catalog.audit import log as audit
from coordination.catalog.runs.depcheck import SATISFIED, run_check
from coordination.catalog.models import Criterion, Plan, criterion_checks

if TYPE_CHECKING:
    from coordination.catalog.file.store import CatalogStore

#: Seconds a plan's criterion check may run before its process group is killed.
CHECK_TIMEOUT = 600.0


class CriterionResult(TypedDict):
    """One criterion's last check."""

    criterion: str
    check: str
    ok: bool
    exit_code: int | None
    reason: str
    output_tail: str
    at: str  # ISO time (UTC) of the run


def results_path(catalog: Path) -> Path:
    """``.<name>.coord.criteria.json`` beside the real catalog file."""
    return Beside.of(catalog).criteria_results.path


def digest(results: list[CriterionResult]) -> str:
    """sha256 of a plan's results as JSON (sorted keys): what its ``plan.checked`` audit
    entry records, and what :func:`read_results` checks the file against."""
    return hashlib.sha256(json.dumps(results, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode()).hexdigest()


def _raw_results(catalog: Path) -> dict[str, list[CriterionResult]]:
    try:
        data = Beside.of(catalog).criteria_results.read_json()
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): [cast(CriterionResult, r) for r in v if isinstance(r, dict)]
            for k, v in data.items() if isinstance(v, list)}


def read_results(catalog: Path) -> dict[str, list[CriterionResult]]:
    """Plan -> its criteria's last results ({}: none recorded, or unreadable). Only
    results the audit log vouches for: the file is beside the catalog, where anyone who
    can write the checkout can write it, and a plan completes on what it says; a plan's
    results whose digest is not the one its last ``plan.checked`` entry recorded
    (written by hand, or by a coord before 0.6) count as never checked
    (:func:`unvouched` names them)."""
    raw = _raw_results(catalog)
    vouched = audit.last_decisions(catalog, "plan.checked", list(raw))
    return {p: r for p, r in raw.items() if vouched.get(p, {}).get("results") == digest(r)}


def unvouched(catalog: Path) -> list[str]:
    """The plans whose results in the file no ``plan.checked`` entry vouches for (see
    :func:`read_results`): `coord audit --verify` reports them."""
    raw = _raw_results(catalog)
    vouched = audit.last_decisions(catalog, "plan.checked", list(raw))
    return [p for p, r in raw.items() if vouched.get(p, {}).get("results") != digest(r)]


def run_checks(catalog: Path, plan: Plan) -> list[CriterionResult]:
    """Run each checked criterion of ``plan`` in the catalog's directory, in order."""
    cwd = Path(os.path.realpath(catalog)).parent
    out: list[CriterionResult] = []
    for c in criterion_checks(plan.completion_criteria):
        r = run_check(plan.id, c.check, cwd, timeout=CHECK_TIMEOUT)
        out.append(CriterionResult(
            criterion=c.text, check=c.check, ok=r.status == SATISFIED, exit_code=r.exit_code,
            reason=r.reason, output_tail=r.output_tail,
            at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            .replace("+00:00", "Z")))
    return out


def record(store: CatalogStore, plan_id: str, results: list[CriterionResult]) -> None:
    """Keep ``results`` as the plan's last, beside the catalog, and note the run in the
    audit log; both under the catalog's lock."""
    with store._locked():
        data: dict[str, Any] = dict(read_results(store.path))  # (unvouched ones dropped)
        data[plan_id] = results
        Beside.of(store.path).criteria_results.write_str(
            json.dumps(data, indent=1, sort_keys=True))
        audit.record_decision(store._target(), store.read_bytes(),
                              who=audit.who(store.base_dir), op="plan.checked", ids=[plan_id],
                              decision={"ok": all(r["ok"] for r in results),
                                        "failed": [r["criterion"] for r in results
                                                   if not r["ok"]],
                                        "results": digest(results)})


def current(plan: Plan, results: list[CriterionResult]) -> list[CriterionResult | None]:
    """For each checked criterion of ``plan`` (in order), its last result if that was
    taken with the same text and command, else None (never checked as it is now)."""
    by = {(r.get("criterion"), r.get("check")): r for r in results}
    return [by.get((c.text, c.check)) for c in criterion_checks(plan.completion_criteria)]


def passed(plan: Plan, results: list[CriterionResult]) -> bool | None:
    """Do the plan's checks pass as last recorded? None: it has none; False: one
    failed, or was never checked as it is written now."""
    checks: list[Criterion] = criterion_checks(plan.completion_criteria)
    if not checks:
        return None
    return all(r is not None and r["ok"] for r in current(plan, results))
