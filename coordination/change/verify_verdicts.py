"""The verdict of each verify todo of a change on the candidate set judged.

A verify todo passed when its record (sealed, kind ``verify``, about the plan, the
todo, the set it ran on, the sweep and run it ran in) is of the run the plan's sweep
pointer says it last started in, ran on exactly the set judged, and says it passed;
and nothing vetoes it in that run (failed, skipped, cancelled after the record). A
failed record of a todo that is no verify todo of the plan now still vetoes the set it
failed on; a change the merge train dropped counts as verified again only by records
written after the drop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from coordination.change.blockers import short
from coordination.change.model import ChangePlan
from coordination.runtime.change_records import VerifyRecord
from coordination.runtime.changes import ChangeState, verify_about
from coordination.runtime.sweep_fields import Checkpoint
from coordination.status import TodoStatus
from coordination.trust import evidence
from coordination.trust.evidence import EvidenceKind
from coordination.trust.signing import Policy

#: A verify todo's status in the run it last started in that vetoes its success
#: (record or none) -> its verdict.
VERIFY_VETO = {TodoStatus.failed: "failed", TodoStatus.compensation_failed: "failed",
               TodoStatus.skipped: "skipped", TodoStatus.cancelled: "cancelled"}
#: ... and the statuses of one that has not ended yet.
NOT_ENDED = frozenset({TodoStatus.pending, TodoStatus.queued, TodoStatus.held,
                       TodoStatus.running, TodoStatus.awaiting_approval})


@dataclass(frozen=True)
class VerifyVerdict:
    verdict: str  # passed | failed | missing | skipped | cancelled | refused | stale
    candidates: dict[str, str] | None  # the set its last record ran on
    why: str | None

    def document(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "candidates": self.candidates, "why": self.why}


def _ended_at(cp: Checkpoint | None, since: float) -> float:
    """When a todo of the last sweep ended (else when it started, else the sweep's
    creation ``since``: a todo skipped or cancelled unrun may carry neither)."""
    if not cp:
        return since
    try:
        return float(str(cp.get("finished_at") or cp.get("started_at") or since))
    except ValueError:
        return since


def _strict(policy: Policy) -> bool:
    """Evidence must be sealed (a key to check with, or COORD_REQUIRE_SIGNED=1)."""
    return bool(policy.keys or policy.require_signed)


def _what(cp: ChangePlan, todo: str) -> str:
    return f"verify record verify:{todo} of {cp.plan}"


def _forged(cp: ChangePlan, todo: str, record: VerifyRecord, policy: Policy) -> str | None:
    """Why ``record``'s seal fails, about what it says it is of (the set, sweep and run it
    names); None: it holds."""
    return evidence.refusal(EvidenceKind.verify, verify_about(cp.plan, todo, record.shas or {},
                                                   *record.ran_in),
                            record.document, policy, _what(cp, todo))


def _failure(todo: str, record: VerifyRecord, last: str | None) -> str:
    """``TODO failed on these candidates in sweep S (exit N)``, and its last words."""
    code = record.exit_code
    return (f"{todo} failed on these candidates"
            + (f" in sweep {record.sweep}" if record.sweep else "")
            + (f" (exit {code})" if code is not None else "") + (f": {last}" if last else ""))


def verify_verdict(cp: ChangePlan, todo: str, record: VerifyRecord | None,
                   cands: dict[str, str] | None, last: Checkpoint | None,
                   anchor: tuple[str, int] | None, since: float,
                   policy: Policy) -> VerifyVerdict:
    """``last``: the todo's checkpoint in the run it last started in (``anchor``, as the
    plan's sweep pointer says; without one, the plan's last sweep)."""
    status = str(last.get("status")) if last else None
    where = (f" in run {anchor[1]} of sweep {anchor[0]}" if anchor else "")
    ran = dict(record.shas) if record is not None and record.shas is not None else None
    # The record is of the run the todo last started in (no anchor: it cannot be told,
    # and a reader that needs no seals takes it as it is).
    same = record is not None and (anchor is None or record.ran_in == anchor)
    what = _what(cp, todo)
    if record is not None:
        # Its seal, about what it says it is of: a record forged or altered is named as
        # such, whatever else is wrong.
        forged = _forged(cp, todo, record, policy)
        if forged:
            return VerifyVerdict("refused", ran, forged)
    veto = VERIFY_VETO.get(status) if status else None  # type: ignore[call-overload]
    if veto and not (same and record is not None and (
            (veto == "failed" and not record.ok)  # its own record says so
            or _ended_at(last, since) < record.at)):
        reason = last.get("reason") if last else None
        left = ""
        if record is None and veto == "failed":
            left = (" and left no verify record (its worker died, or writing the record "
                    "failed)")
        elif not same and record is not None:
            rs, rr = record.ran_in
            left = (f"; {what} is of run {rr} of sweep {rs}, an earlier run (the later "
                    "run's worker died before writing one, or the record was put back)")
        return VerifyVerdict(veto, ran, f"{todo} was {status}{where}"
                             + (f" ({reason})" if reason else "") + left
                             + f": run it again (coord todo run {todo} --wait)")
    if record is None:
        if anchor and status in NOT_ENDED:
            return VerifyVerdict("missing", None, f"{todo} has not ended yet{where} "
                                 f"({status}): wait for it (coord sweep watch {anchor[0]})")
        return VerifyVerdict("missing", None, f"{todo} has no verify record: it never ended "
                             f"on these candidates (run it: coord todo run {todo} --wait)")
    if not same:
        rs, rr = record.ran_in
        if status in NOT_ENDED:
            return VerifyVerdict("missing", ran, f"{todo} is running again{where} ({status}; "
                                 f"its last record is of run {rr} of sweep {rs}): wait for it")
        return VerifyVerdict("refused", ran, f"{what}: of run {rr} of sweep {rs}, but {todo} "
                             f"last started{where} ({status or 'no status'}): a record of an "
                             "earlier run (put back after a later one, or the later run's "
                             f"record was lost): run it again (coord todo run {todo} --wait)")
    if anchor is None and _strict(policy):
        return VerifyVerdict("refused", ran, f"{what}: the plan's sweep pointer names no run "
                             f"{todo} started in, so the record cannot be told from an older "
                             f"one: run it again (coord todo run {todo} --wait)")
    if cands is None:
        return VerifyVerdict("stale", ran, "not every repo has a candidate yet")
    if ran is None or {r: ran.get(r) for r in cp.targets} != cands:
        moved = [f"{r} {short((ran or {}).get(r))} -> {short(s)}" for r, s in cands.items()
                 if (ran or {}).get(r) != s]
        return VerifyVerdict("stale", ran, f"{todo} ran on other candidates ("
                             + ", ".join(moved) + f"): run it again (coord todo run {todo} "
                             "--wait)")
    # (its seal, checked above, covers the set it names, which is this one, and the run
    # it names, which is the one the pointer says the todo last started in)
    if not record.ok:
        reason = record.reason
        return VerifyVerdict("failed", ran, _failure(todo, record, None)
                             + (f": {reason}" if reason and reason != f"exit {record.exit_code}"
                                else "")
                             + (f": {record.last}" if record.last else "")
                             + "; fix the change and run it again")
    return VerifyVerdict("passed", ran, None)


def vetoes_of_former(cp: ChangePlan, st: ChangeState, cands: dict[str, str] | None,
                     policy: Policy) -> dict[str, VerifyVerdict]:
    """The failed verify records, on exactly the set ``cands``, of todos that are no
    verify todos of the plan now (deleted from the catalog, or ``verify:`` turned off
    after they failed): a failure recorded on a set vetoes it whatever became of the
    todo (deleting the failing test does not make the change pass). A record whose
    seal fails still vetoes (refusing to land is the safe side) and says so."""
    if cands is None:
        return {}
    out: dict[str, VerifyVerdict] = {}
    for todo, record in sorted(st.verifies.items()):
        if todo in cp.verify_todos or record.ok:
            continue
        ran = record.shas
        if ran is None or {r: ran.get(r) for r in cp.targets} != cands:
            continue
        forged = _forged(cp, todo, record, policy)
        out[todo] = VerifyVerdict("failed", dict(ran), (
            _failure(todo, record, record.last or record.reason)
            + f", and is no verify todo of {cp.plan} now (deleted from the catalog, or its "
            "verify: turned off): its failure still vetoes these candidates"
            + (f" ({forged})" if forged else "")
            + "; fix the change (a new commit) and verify it again"))
    return out


def verified_since_drop(cp: ChangePlan, st: ChangeState, cands: dict[str, str] | None,
                        verdicts: dict[str, VerifyVerdict]) -> bool:
    """Was a change the train dropped verified again: every verify todo of the plan
    passed (``verdicts``) on the candidates now, each by a record written after the drop?
    (A success of before the drop does not count: the train stops at a change's first
    failing verify todo, so the others' older successes on its own commits are still
    there.) A drop that says not when it was (written before 0.4 kept it): the set must
    also differ from the one dropped."""
    if cands is None or not cp.verify_todos:
        return False
    if any(verdicts.get(t) is None or verdicts[t].verdict != "passed" for t in cp.verify_todos):
        return False
    dropped = st.dropped
    if dropped is None or dropped.at is None:
        return cands != (dropped.shas if dropped is not None else None)
    at = dropped.at
    return all((st.verifies[t].at if t in st.verifies else 0.0) > at for t in cp.verify_todos)
