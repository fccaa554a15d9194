"""The landing rule: when a change may land, and every reason it may not (one function).

:func:`judge` is called by everything that decides or says whether a change lands:
``coord change land`` and its ``--dry-run`` (through :meth:`Lander.prepare`), the
merge train (``coord change queue --land``), and ``coord change status`` (the CLI,
the web view and MCP, through :func:`coordination.change.reading.status_document`).

A change is landable only when, for its *current candidate set* (every repo's
candidate: the HEAD of its change worktree, re-read now):

- the plan's sweep pointer (which sweep is its last, at which run, and where each
  verify todo last started) is sealed (:mod:`coordination.trust.evidence`, kind
  ``sweep``) and names the run its sweep is at: a pointer moved to an older sweep
  (whose gate was approved) is refused, naming it; and it is the one the newest
  freshness anchor outside Redis names (:func:`fresh`, :mod:`coordination.change.anchor`):
  an earlier sweep's genuine pointer and records put back are refused as a replay;
- every verify todo of the plan has a success recorded on exactly that set (a verify
  todo verifies the set it ran on, not each repo it was given), from the run the
  pointer says it last started in, its record sealed (kind ``verify``) about the
  plan, the todo, that set, that sweep and run; a record that fails its check (an
  older success put back after a later failure among them) is refused, naming it;
- no verify todo failed, was skipped or cancelled in the run it last started in
  after its success, whether or not it left a record (a worker that died leaves
  none);
- every gate of the plan is approved in the plan's last sweep (its checkpoint's
  status: succeeded = approved, awaiting_approval = waiting, failed = rejected,
  cancelled = expired, not reached = missing), by a decision sealed by coord's count
  (kind ``decision``, checked as what follows a gate checks it:
  :func:`coordination.trust.evidence.decision_refusal`: this sweep, gate, binding,
  what the last run runs, these approvers and votes, of a run no earlier than the last
  that opened the gate) and by votes that count as the gate's count made them count
  (:func:`coordination.trust.approvers.verified`: seals, ``from:``, SSH signatures
  with ``approvers:``, the starter, one key one approver) under the gate's binding
  computed again from the signed spec (never the one Redis holds), for what the catalog says
  the plan runs now: a command, env, undo, gate or edge edited since the sweep froze
  it makes its approval stale;
- every other todo the plan's last sweep ran (the todos its frozen spec ran, whether
  the catalog still has them or not) ended, and not failed: one that ended counts only
  with its outcome sealed (kind ``outcome``: status, exit code, the run that ended it)
  by whoever ended it, in the last run that dispatched it or a later one (the spec
  keeps which run that was), and one that reads not ended blocks, naming it (or, while
  the sweep runs, the sweep is said to be still running) (:func:`run_blockers`); a
  failed verify record on the current set of a todo that is no verify todo of the
  plan now (deleted, ``verify:`` turned off) still vetoes it;
- the merge train did not drop it (``failed_verification``), or every verify todo
  passed since, on the current set (each by a record newer than the drop);
- every repo has a candidate, none in conflict, and no repo's own git config (which a
  todo can write) makes git run a program (unless it says ``land_hooks: true``);
- the change is not landed or reverted already on these candidates, and (when the
  caller read them: ``change status``; prepare asks the remotes itself) no repo's
  base moved on its remote, is gone, or is its candidate already
  (:mod:`coordination.change.standing`).

Each reason is a :class:`Blocker`: its kind (verify, gate, repo, run, train,
evidence, state), what it is about (a todo id or a repo) and why, said so a person knows
what to run next.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from coordination.change import anchor
from coordination.change import git as g
from coordination.change import standing
from coordination.change.model import BOUND, ChangePlan, definition
from coordination.errors import CoordError
from coordination.runtime.changes import (
    FAILED_VERIFICATION,
    ChangeState,
    pointer_about,
    verify_about,
)
from coordination.runtime.context import Runtime
from coordination.runtime.sweep_fields import Checkpoint
from coordination.status import ChangeState as CS
from coordination.status import SWEEP_LIVE, TERMINAL, TodoStatus
from coordination.trust import evidence, signing
from coordination.trust.approvers import (
    START_FIELDS,
    Approvers,
    Starter,
    starter_of,
    verified,
    votes_of,
)
from coordination.trust.signing import Policy

BlockerKind = Literal["verify", "gate", "repo", "run", "train", "evidence", "state"]

#: A gate's status in the plan's last sweep -> its verdict.
GATE_VERDICTS = {TodoStatus.succeeded: "approved", TodoStatus.awaiting_approval: "waiting",
                 TodoStatus.failed: "rejected", TodoStatus.cancelled: "expired"}
#: Statuses of a todo of the last sweep that block the landing (the run failed).
RUN_FAILED = frozenset({TodoStatus.failed, TodoStatus.compensation_failed})
#: A verify todo's status in the run it last started in that vetoes its success
#: (record or none) -> its verdict.
VERIFY_VETO = {TodoStatus.failed: "failed", TodoStatus.compensation_failed: "failed",
               TodoStatus.skipped: "skipped", TodoStatus.cancelled: "cancelled"}
#: ... and the statuses of one that has not ended yet.
NOT_ENDED = frozenset({TodoStatus.pending, TodoStatus.queued, TodoStatus.held,
                       TodoStatus.running, TodoStatus.awaiting_approval})


@dataclass(frozen=True)
class Blocker:
    kind: BlockerKind
    id: str  # a todo id, a repo name, or the plan (train)
    why: str

    def document(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id, "why": self.why}

    def __str__(self) -> str:
        return f"{self.id}: {self.why}"


@dataclass(frozen=True)
class VerifyVerdict:
    verdict: str  # passed | failed | missing | skipped | cancelled | refused | stale
    candidates: dict[str, str] | None  # the set its last record ran on
    why: str | None

    def document(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "candidates": self.candidates, "why": self.why}


@dataclass(frozen=True)
class GateVerdict:
    verdict: str  # approved | waiting | rejected | expired | missing | refused | stale
    approvals: list[str]
    why: str | None

    def document(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "approvals": self.approvals, "why": self.why}


@dataclass
class Judgement:
    """The rule applied to a change now: its candidate set, each verify todo's and
    gate's verdict, and every blocker (none: landable)."""

    plan: str
    candidates: dict[str, str | None]
    verify: dict[str, VerifyVerdict] = field(default_factory=dict)
    gates: dict[str, GateVerdict] = field(default_factory=dict)
    blockers: list[Blocker] = field(default_factory=list)
    sweep: str | None = None
    #: the train dropped it and nothing since lifted that: ``failed_verification``
    dropped: bool = False

    @property
    def landable(self) -> bool:
        return not self.blockers

    @property
    def verified(self) -> bool:
        """Every verify todo passed on the current set (and there is one)."""
        return bool(self.verify) and all(v.verdict == "passed" for v in self.verify.values())

    @property
    def vetoed(self) -> bool:
        """A verify todo failed, was skipped or cancelled, or its record refused, on
        the current set: no success on that set counts for it."""
        return any(v.verdict in ("failed", "skipped", "cancelled", "refused")
                   for v in self.verify.values())

    def verified_by(self) -> list[str]:
        """The verify todos whose success covers the current set (none when vetoed, or
        while the train's drop stands)."""
        if self.vetoed or self.dropped:
            return []
        return sorted(t for t, v in self.verify.items() if v.verdict == "passed")


def current_candidates(cp: ChangePlan, st: ChangeState) -> dict[str, str | None]:
    """Every repo's candidate now: the HEAD of its change worktree, re-read (None: no
    candidate yet, or its worktree is gone)."""
    out: dict[str, str | None] = {}
    for repo in cp.targets:
        rec = st.repos.get(repo)
        if rec is None or not rec.worktree or not Path(rec.worktree).is_dir():
            out[repo] = None
            continue
        try:
            out[repo] = g.read_head(rec.worktree)  # its files: no git process per repo
        except g.GitError:
            out[repo] = None
    return out


def _short(sha: str | None) -> str:
    return (sha or "nothing")[:12]


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


def _anchor(pointer: dict[str, Any], todo: str) -> tuple[str, int] | None:
    """The (sweep, run) the pointer says verify todo ``todo`` last started in."""
    at = (pointer.get("verify") or {}).get(todo) if isinstance(pointer.get("verify"), dict) \
        else None
    if isinstance(at, list) and len(at) == 2 and isinstance(at[0], str):
        try:
            return at[0], int(at[1])
        except (TypeError, ValueError):
            return None
    return None


def _run_of(record: dict[str, Any]) -> tuple[Any, Any]:
    return record.get("sweep"), record.get("run")


def _verify_verdict(cp: ChangePlan, todo: str, record: dict[str, Any] | None,
                    cands: dict[str, str] | None, last: Checkpoint | None,
                    anchor: tuple[str, int] | None, since: float,
                    policy: Policy) -> VerifyVerdict:
    """``last``: the todo's checkpoint in the run it last started in (``anchor``, as the
    plan's sweep pointer says; without one, the plan's last sweep)."""
    status = str(last.get("status")) if last else None
    where = (f" in run {anchor[1]} of sweep {anchor[0]}" if anchor else "")
    ran_on = record.get("shas") if isinstance(record, dict) else None
    ran: dict[str, str] | None = dict(ran_on) if isinstance(ran_on, dict) else None
    # The record is of the run the todo last started in (no anchor: it cannot be told,
    # and a reader that needs no seals takes it as it is).
    same = record is not None and (anchor is None or _run_of(record) == anchor)
    what = f"verify record verify:{todo} of {cp.plan}"
    if record is not None:
        # Its seal, about what it says it is of (the set, sweep and run it names): a
        # record forged or altered is named as such, whatever else is wrong.
        forged = evidence.refusal("verify", verify_about(cp.plan, todo, ran or {},
                                                         *_run_of(record)),
                                  record, policy, what)
        if forged:
            return VerifyVerdict("refused", ran, forged)
    veto = VERIFY_VETO.get(status) if status else None  # type: ignore[call-overload]
    if veto and not (same and record is not None and (
            (veto == "failed" and record.get("ok") is not True)  # its own record says so
            or _ended_at(last, since) < float(record.get("at") or 0))):
        reason = last.get("reason") if last else None
        left = ""
        if record is None and veto == "failed":
            left = (" and left no verify record (its worker died, or writing the record "
                    "failed)")
        elif not same and record is not None:
            rs, rr = _run_of(record)
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
        rs, rr = _run_of(record)
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
        moved = [f"{r} {_short((ran or {}).get(r))} -> {_short(s)}" for r, s in cands.items()
                 if (ran or {}).get(r) != s]
        return VerifyVerdict("stale", ran, f"{todo} ran on other candidates ("
                             + ", ".join(moved) + f"): run it again (coord todo run {todo} "
                             "--wait)")
    # (its seal, checked above, covers the set it names, which is this one, and the run
    # it names, which is the one the pointer says the todo last started in)
    if record.get("ok") is not True:
        code = record.get("exit_code")
        reason = record.get("reason")
        last_line = record.get("last")
        return VerifyVerdict("failed", ran, f"{todo} failed on these candidates"
                             + (f" in sweep {record.get('sweep')}" if record.get("sweep") else "")
                             + (f" (exit {code})" if code is not None else "")
                             + (f": {reason}" if reason and reason != f"exit {code}" else "")
                             + (f": {last_line}" if last_line else "")
                             + "; fix the change and run it again")
    return VerifyVerdict("passed", ran, None)


@dataclass(frozen=True)
class GateContext:
    """What a gate's votes are checked against: the gate as the catalog says it, who
    proves approvers (the allowed-signers file), who started the sweep."""

    spec: dict[str, Any]
    approvers: Approvers
    started_by: str | Starter | None = None  # (with approvers:, the start's proof)


def backing(votes: str, gate: str, sweep: str, last: Checkpoint | None, approvals: list[str],
            needed: int, policy: Any, ctx: GateContext | None = None) -> str | None:
    """None when a gate that reads approved is backed by ``needed`` approvals under its
    binding whose votes count (``votes``: its votes field as stored): seals, and
    ``ctx``'s checks, those the gate's count made (``from:``, the SSH signature with
    an allowed-signers file, the starter, one key one approver); else why not. The
    gate's status and approvals are plain checkpoint fields: a writer without the key
    could set them, but not seal (nor sign) the votes behind them."""
    ctx = ctx or GateContext({}, Approvers(None))
    cast = votes_of(votes)
    binding = str((last or {}).get("binding") or "")
    try:
        counted, _, refused = verified(sweep, gate, ctx.spec, binding, cast,
                                       started_by=ctx.started_by, approvers=ctx.approvers,
                                       policy=policy)
    except CoordError as exc:  # ssh-keygen missing: nothing can be checked, nothing counts
        counted, refused = [], {who: f"{exc}" for who in approvals}
    good: list[str] = []
    said: list[str] = []
    for who in approvals:
        v = cast.get(who)
        if not isinstance(v, dict) or v.get("d") != "approve" or v.get("b") != binding:
            said.append(f"vote of {who} on gate {gate} of sweep {sweep}: no approving vote "
                        "under the gate's binding")
        elif who in counted:
            good.append(who)
        else:
            said.append(refused.get(who) or f"vote of {who} on gate {gate} of sweep {sweep}: "
                        "does not count")
    if len(good) >= needed:
        return None
    return (f"gate {gate} reads approved in sweep {sweep}, but only {len(good)} of the "
            f"{needed} approvals it needs are votes that count"
            + (f" ({'; '.join(said)})" if said else "")
            + ": its record was not written by coord's count; sweep the plan again for a "
            "new decision")


def _gate_verdict(gate: str, last: Checkpoint | None, sweep: str | None, gone: bool,
                  votes: str = "", needed: int = 1, policy: Any = None,
                  ctx: GateContext | None = None, changed: list[str] | None = None,
                  plan: str = "", decided: str | None = None) -> GateVerdict:
    """``decided``: why the gate's sealed decision is refused (None: it holds, or the
    gate does not read approved, or no spec to check it against)."""
    if sweep is None:
        return GateVerdict("missing", [], f"gate {gate}: the plan was not swept since it "
                           "became a change (coord plan sweep)")
    if gone:
        return GateVerdict("missing", [], f"gate {gate}: the plan's last sweep {sweep} is "
                           "gone from Redis (expired): sweep the plan again")
    status = str(last.get("status")) if last else str(TodoStatus.pending)
    approvals = [str(u) for u in (last.get("approvals") if last else None) or []]
    verdict = GATE_VERDICTS.get(status, "missing")  # type: ignore[call-overload]
    if verdict == "approved":
        if decided:
            return GateVerdict("refused", approvals, (
                f"{decided}: the gate reads approved, but not by a decision coord's count "
                f"sealed for it; sweep the plan again for a new decision (coord plan sweep "
                f"{plan} --again)"))
        unbacked = backing(votes, gate, sweep, last, approvals, needed, policy, ctx)
        if unbacked:
            return GateVerdict("refused", approvals, unbacked)
        if changed:
            return GateVerdict("stale", approvals, (
                f"gate {gate} approved for another binding: the catalog changed "
                + ", ".join(changed) + f" since sweep {sweep} froze the plan: re-run or "
                f"resume (coord plan sweep {plan} --again; or coord sweep resume {sweep}), "
                "then approve it again"))
        return GateVerdict(verdict, approvals, None)
    if verdict == "waiting":
        why = (f"gate {gate} is waiting for approval in sweep {sweep}"
               f" ({len(approvals)} so far): coord approve {gate} --sweep {sweep}")
    elif verdict == "rejected":
        by = last.get("rejected_by") if last else None
        why = (f"gate {gate} was rejected in sweep {sweep}" + (f" by {by}" if by else "")
               + ": sweep the plan again for a new decision")
    elif verdict == "expired":
        why = (f"gate {gate} expired (or its sweep ended) in sweep {sweep} without approval: "
               "sweep the plan again")
    else:
        why = f"gate {gate} was never reached in sweep {sweep} (status {status})"
    return GateVerdict(verdict, approvals, why)


def _decision(spec: dict[str, Any], sweep: str, gate: str, cpt: Checkpoint, votes: str,
              digest: list[str], run: int, policy: Policy) -> str | None:
    """Why gate ``gate``'s sealed decision (the ``decision`` field of its checkpoint
    ``cpt``, which reads passed) is refused, as what follows a gate checks it
    (:func:`coordination.trust.evidence.decision_refusal`, the check of
    :mod:`coordination.sweeps.decisions`): sealed for this sweep, gate, binding, what
    the sweep's last run runs (``spec``, its frozen spec, signature checked), these
    approvers and their ``votes``, in a run from the last that opened the gate on; None
    if it holds. A rollback's spec runs undo commands, not what the gate approved:
    nothing to check against (the sweep pointer, which no rollback moves, refuses it)."""
    if spec.get("mode") == "rollback":
        return None
    frozen = spec.get("todos") or {}
    if not digest:
        digest.append(evidence.spec_digest_of(spec.get("plan"), {
            t: d for t, d in frozen.items() if isinstance(d, dict)}))
    try:
        cast = json.loads(votes) if votes else {}
    except ValueError:
        cast = {}
    rules = (frozen.get(gate) or {}).get("gate") if isinstance(frozen.get(gate), dict) else None
    try:
        needed = int((rules or {}).get("approvals") or 1)
    except (TypeError, ValueError, AttributeError):
        needed = 1
    return evidence.decision_refusal(
        policy, sweep, gate, cpt, cast if isinstance(cast, dict) else {}, digest=digest[0],
        needed=needed, run=run,
        last_run=evidence.last_dispatch(gate, run, evidence.dispatched_now(spec.get("levels")),
                                        spec.get("dispatched")))


def _rolled_back(spec: dict[str, Any], sweep: str, gate: str, last: Mapping[str, Checkpoint],
                 digest: list[str]) -> str | None:
    """Why gate ``gate``'s binding as its checkpoint holds it is not the one computed
    again from the sweep's signed spec (``spec``) and its predecessors' outcomes as
    ``last`` holds them (:func:`coordination.trust.evidence.binding_of`, as every
    count computes it): a binding rolled back in Redis to the one older votes were cast
    under. None: the same (or a rollback's spec, which runs undo commands)."""
    if spec.get("mode") == "rollback":
        return None
    frozen = spec.get("todos") or {}
    if not digest:
        digest.append(evidence.spec_digest_of(spec.get("plan"), {
            t: d for t, d in frozen.items() if isinstance(d, dict)}))
    mine = frozen.get(gate) if isinstance(frozen.get(gate), dict) else {}
    preds = [str(p) for p in (mine or {}).get("preds") or [] if p in frozen]
    binding = evidence.binding_of(digest[0], {p: last.get(p) or {} for p in preds})
    held = str((last.get(gate) or {}).get("binding") or "")
    if held == binding:
        return None
    return (f"gate {gate} of sweep {sweep}: the binding its checkpoint holds "
            f"({held[:12] or 'none'}) is not the one the sweep's signed spec and its "
            f"predecessors' outcomes give ({binding[:12]}): the binding (rolled back to the "
            "one older votes were cast under) or a predecessor's outcome was rewritten in "
            "Redis, or a predecessor ran again since the gate passed; the votes behind it "
            "count for nothing here")


def changed_since(cp: ChangePlan, frozen: dict[str, Any]) -> list[str]:
    """What the catalog changed (``cp``: as it says the plan now) in the todos a sweep
    froze (``frozen``: its spec's todos): ``TODO-002 (run, env)``, ``TODO-003
    (edges)``, ``TODO-004 (removed)``, in todo order; empty when nothing that a gate's
    approval is bound to changed."""
    out: list[str] = []
    for tid in sorted(frozen):
        t = frozen[tid]
        if not isinstance(t, dict):
            continue
        now = cp.definitions.get(tid)
        if now is None:
            out.append(f"{tid} (removed)")
            continue
        was = definition(t)
        fields = [f for f in BOUND if was[f] != now[f]]
        preds = sorted(p for p in cp.preds.get(tid, ()) if p in frozen)
        if sorted(str(p) for p in t.get("preds") or []) != preds:
            fields.append("edges")
        if fields:
            out.append(f"{tid} ({', '.join(fields)})")
    return out


def _pointer(cp: ChangePlan, st: ChangeState, policy: Policy
             ) -> tuple[dict[str, Any], str | None]:
    """The plan's sweep pointer if it may be trusted (else empty), and why not."""
    p = st.pointer
    if not p:
        return {}, None
    what = f"sweep pointer of change {cp.plan} (its field sweep, naming sweep {p.get('sweep')})"
    why = evidence.refusal("sweep", pointer_about(cp.plan), p, policy, what)
    if why:
        return {}, (f"{why}; no sweep of the plan is taken for its last: sweep the plan again "
                    f"(coord plan sweep {cp.plan})")
    return p, None


def _frozen(rt: Runtime, sweep: str, rec: dict[str, Any], policy: Policy
            ) -> tuple[dict[str, Any] | None, str | None]:
    """The sweep's spec as its last run froze it (its stored JSON, its signature checked
    for that run: ``todos``, what it runs; ``levels``, what the run dispatched;
    ``dispatched``, the last run that dispatched each todo), or why it cannot be read."""
    text = rec.get("spec")
    run = rec.get("run")
    try:
        run_no = int(run or 0)
    except (TypeError, ValueError):
        run_no = -1
    why = signing.refusal(sweep, run_no, text, rec.get("spec_sig"), rec.get("spec_key_id"),
                          policy)
    if why is None and isinstance(text, str):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("todos"), dict):
            return doc, None
        why = "spec unreadable"
    return None, f"the spec of the plan's last sweep {sweep}: {why or 'none'}"


def _run_no(rec: Mapping[str, Any]) -> int:
    try:
        return int(str(rec.get("run") or 0))
    except ValueError:
        return 0


def _listed(items: list[str], most: int = 3) -> str:
    return ", ".join(items[:most]) + (f", and {len(items) - most} more" if len(items) > most
                                      else "")


def run_blockers(cp: ChangePlan, sweep: str, rec: Mapping[str, Any],
                 spec: dict[str, Any] | None, last: dict[str, Checkpoint],
                 policy: Policy) -> list[Blocker]:
    """"No todo of the plan's last run failed", on evidence that cannot be skipped: every
    todo the plan's last sweep ran (its frozen spec's todos, whether the catalog still
    has them or not; and the catalog's todos it has a checkpoint of), but its verify
    todos and gates (their verify records and sealed decisions say for them):

    - one that failed blocks (``run``), naming it;
    - one that ended otherwise counts only with its outcome sealed by whoever ended it
      (:func:`coordination.trust.evidence.outcome_refusal`: status, exit code, run),
      in the last run that dispatched it (the spec says which:
      :func:`coordination.trust.evidence.last_dispatch`) or a later one, never an
      earlier one put back (``evidence``);
    - one the sweep ran that has not ended: while the sweep is live, one blocker says the
      sweep is still running and which; once it ended, each blocks (``run``), naming it:
      a failure rewritten to ``pending`` is not an outcome."""
    frozen = spec.get("todos") if spec else None
    ran: dict[str, Any] = frozen if isinstance(frozen, dict) else {}
    skip = {*cp.verify_todos, *cp.gates,
            *(t for t, d in ran.items() if isinstance(d, dict) and d.get("gate"))}
    run = _run_no(rec)
    state = str(rec.get("status") or "")
    now = evidence.dispatched_now(spec.get("levels")) if spec else None
    dispatched = spec.get("dispatched") if spec else None
    out: list[Blocker] = []
    waiting: list[str] = []
    for todo in sorted(t for t in {*ran, *cp.todos} if t not in skip):
        c = last.get(todo)
        status = str(c.get("status")) if c else "no checkpoint"
        if status in RUN_FAILED:
            reason = c.get("reason") if c else None
            said = f"{todo} {status} in the plan's last sweep {sweep}" + (
                f" ({reason})" if reason else "")
            out.append(Blocker("run", todo, said + (
                f": coord sweep resume {sweep}" if todo in cp.todos else
                f" and is no longer a todo of {cp.plan} in the catalog: the last run of "
                f"the plan failed; sweep the plan again (coord plan sweep {cp.plan})")))
            continue
        if c and status in TERMINAL:
            why = evidence.outcome_refusal(
                policy, sweep, todo, c, run,
                evidence.last_dispatch(todo, run, now, dispatched) if spec else None)
            if why:
                out.append(Blocker("evidence", todo, f"{why}: whether it failed cannot be "
                                   f"told; run it again (coord sweep resume {sweep} --only "
                                   f"{todo}), or sweep the plan again (coord plan sweep "
                                   f"{cp.plan} --again)"))
            continue
        if todo not in ran:
            continue  # (in the catalog since the sweep froze the plan: it never ran there)
        if state in SWEEP_LIVE:
            waiting.append(f"{todo} is {status}")
            continue
        out.append(Blocker("run", todo, (
            f"{todo} is {status} in the plan's last sweep {sweep}, which ended "
            f"{state or '(no status)'}: it has no outcome of the sweep's last run (its "
            "checkpoint was rewritten, or lost), so whether it failed cannot be told; run "
            f"it again (coord sweep resume {sweep} --only {todo})")))
    if waiting:
        doing = {"paused": "paused", "rolling_back": "rolling back"}.get(state, "running")
        out.append(Blocker("run", cp.plan, (
            f"the plan's last sweep {sweep} is still {doing} ({_listed(waiting)}): wait for "
            f"it to end (coord sweep watch {sweep})")))
    return out


def _vetoes_of_former(cp: ChangePlan, st: ChangeState, cands: dict[str, str] | None,
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
        if todo in cp.verify_todos or not isinstance(record, dict) or record.get("ok") is True:
            continue
        ran = record.get("shas")
        if not isinstance(ran, dict) or {r: ran.get(r) for r in cp.targets} != cands:
            continue
        code = record.get("exit_code")
        last = record.get("last") or record.get("reason")
        forged = evidence.refusal("verify", verify_about(cp.plan, todo, ran, *_run_of(record)),
                                  record, policy, f"verify record verify:{todo} of {cp.plan}")
        out[todo] = VerifyVerdict("failed", dict(ran), (
            f"{todo} failed on these candidates"
            + (f" in sweep {record.get('sweep')}" if record.get("sweep") else "")
            + (f" (exit {code})" if code is not None else "") + (f": {last}" if last else "")
            + f", and is no verify todo of {cp.plan} now (deleted from the catalog, or its "
            "verify: turned off): its failure still vetoes these candidates"
            + (f" ({forged})" if forged else "")
            + "; fix the change (a new commit) and verify it again"))
    return out


def _standing(cp: ChangePlan, st: ChangeState, now: dict[str, str | None],
              bases: Mapping[str, standing.Base] | None) -> list[Blocker]:
    """Where the change stands against its remotes: each repo's base as ``bases`` read
    it now (moved, gone, the candidate already: in ``land --dry-run``'s words; not
    given: prepare checks the remotes itself), then a landing or revert of it already
    made on the candidates it has now."""
    out: list[Blocker] = []
    for repo, base in (bases or {}).items():
        rec, cand = st.repos.get(repo), now.get(repo)
        if not base.checked or rec is None or cand is None or repo in st.conflicts:
            continue
        problem, _ = standing.base_problem(repo, cp.targets[repo], rec, cand, base.sha)
        if problem:
            out.append(Blocker("repo", repo, problem.removeprefix(f"{repo}: ")))
    said = standing.ended(cp, st, now)
    if said:
        out.append(Blocker("state", cp.plan, said))
    return out


def _untrusted_git(cp: ChangePlan, st: ChangeState) -> list[Blocker]:
    """Repos whose own git config (the checkout's, the worktree's: a todo can write
    them) makes git run a program: coord runs no git there to land (unless the repo
    says ``land_hooks: true``); or whose remote there is not the catalog's ``url:``."""
    out: list[Blocker] = []
    for repo, t in cp.targets.items():
        rec = st.repos.get(repo)
        if rec is None:
            continue
        dirs = [d for d in (t.checkout, rec.worktree) if d and Path(d).is_dir()]
        why = g.untrusted_git(repo, t.checkout, *dirs, remote=t.remote, url=t.url,
                              trusted=t.land_hooks)
        if why:
            out.append(Blocker("repo", repo, why.removeprefix(f"{repo}: ")))
    return out


def fresh(rt: Runtime, cp: ChangePlan, pointer: Mapping[str, Any], policy: Policy, *,
          remotes: bool) -> list[Blocker]:
    """The pointer Redis holds is the newest sweep's: the newest freshness anchor found
    outside Redis (:mod:`coordination.change.anchor`: beside the catalog; with
    ``remotes``, on each repo's remote too) anchors exactly it (sweep, run, where each
    verify todo last started). An anchor whose seal fails blocks too (fail closed).
    No anchor anywhere (a plan last swept before 0.5): nothing to check against."""
    repos = {r: (t.checkout, t.remote) for r, t in cp.targets.items()}
    if remotes:
        repos = anchor.on_catalog_url(cp.plan, repos,
                                      {r: t.url for r, t in cp.targets.items()})
    newest, refused = anchor.newest(cp.base_dir, repos, rt.keys.namespace, cp.plan, policy,
                                    remotes=remotes)
    out = [Blocker("evidence", cp.plan, f"{why}: sweep the plan again (coord plan sweep "
                   f"{cp.plan})") for why in refused]
    if newest is not None:
        why = anchor.replayed(cp.plan, pointer, newest)
        if why:
            out.append(Blocker("evidence", cp.plan, why))
    return out


def unchecked(cp: ChangePlan, st: ChangeState) -> list[str]:
    """The repos of the change (landing order) that no verify todo of their own (one whose
    ``repo:`` is it) checks: a broken library checked only by a consumer's suite. A repo
    with no commit on the branch (nothing to land) is not one."""
    own = {str(cp.definitions.get(t, {}).get("repo") or "") for t in cp.verify_todos}
    out = []
    for repo in cp.targets:
        rec = st.repos.get(repo)
        if repo not in own and not (rec is not None and rec.candidate == rec.base_sha):
            out.append(repo)
    return out


def own_verify_blockers(cp: ChangePlan, st: ChangeState) -> list[Blocker]:
    """``change: {require_own_verify: true}``: each repo :func:`unchecked` blocks."""
    if not cp.require_own_verify:
        return []
    return [Blocker("repo", r, "no verify todo of its own checks it (change: "
                    "require_own_verify: true): add one with repo: " + r + " and verify: true")
            for r in unchecked(cp, st)]


def prepare_blockers(cp: ChangePlan, st: ChangeState) -> list[Blocker]:
    """A repo whose ``prepare:`` failed in its new worktree (its todos did not run there)."""
    out = []
    for repo, doc in sorted(st.prepares.items()):
        if repo in cp.targets and not doc.get("ok"):
            lines = [ln.strip() for ln in str(doc.get("output") or "").splitlines() if ln.strip()]
            code = doc.get("exit_code")
            out.append(Blocker("repo", repo, "prepare failed" + (
                f" (exit {code})" if code is not None else "") + (
                f": {lines[-1][:300]}" if lines else "") + f"; fix it (coord repo update {repo} "
                f"--prepare CMD) or what it needs, then run the plan again"))
    return out


@dataclass
class Evidence:
    """What the landing rule reads, read once before any check runs (Prefect's
    orchestration context): the change, the candidate set judged, the trusted sweep
    pointer, and the plan's last sweep as Redis holds it. The checks read it; none
    writes Redis."""

    rt: Runtime
    cp: ChangePlan
    st: ChangeState
    now: dict[str, str | None]  # every repo's candidate (None: none yet)
    bases: Mapping[str, standing.Base] | None
    remotes: bool
    policy: Policy
    pointer: dict[str, Any]  # the sweep pointer if it may be trusted, else empty
    refused_pointer: str | None  # why it may not
    sweep: str | None  # the plan's last sweep, as the pointer names it
    #: the set judged, when every repo has a candidate (else None)
    cands: dict[str, str] | None = None
    rec: dict[str, Any] = field(default_factory=dict)  # the sweep's fields read
    gone: bool = False  # the sweep is gone from Redis
    since: float = 0.0  # when the sweep was created
    spec: dict[str, Any] | None = None  # its last run's frozen spec (signature checked)
    unreadable: str | None = None  # why that spec cannot be read
    last: dict[str, Checkpoint] = field(default_factory=dict)  # its todos' checkpoints


def _evidence(rt: Runtime, cp: ChangePlan, st: ChangeState, now: dict[str, str | None],
              bases: Mapping[str, standing.Base] | None, remotes: bool) -> Evidence:
    policy = evidence.policy_of(rt.settings)
    pointer, refused = _pointer(cp, st, policy)
    sweep = pointer.get("sweep") if isinstance(pointer.get("sweep"), str) else None
    complete = all(now.values()) and bool(now)
    ev = Evidence(rt, cp, st, now, bases, remotes, policy, pointer, refused, sweep,
                  {r: s for r, s in now.items() if s} if complete else None)
    if sweep:
        # (its spec always: which todos it ran, deleted from the catalog since or not)
        wanted = ("created_at", "run", "status", *START_FIELDS, "spec", "spec_sig",
                  "spec_key_id")
        found = rt.checkpoints.get_sweep_fields(sweep, wanted)
        ev.gone = found is None
        ev.rec = dict(found or {})
        ev.since = float(str(ev.rec.get("created_at") or 0))
        if not ev.gone:
            ev.spec, ev.unreadable = _frozen(rt, sweep, ev.rec, policy)
        ids = sorted({*cp.verify_todos, *cp.gates, *cp.todos,
                      *(ev.spec or {}).get("todos", {})})
        ev.last = rt.checkpoints.get_all(sweep, ids) if ids and not ev.gone else {}
    return ev


#: A check of the landing rule: the evidence (and the judgement so far, whose verdicts
#: it may fill in) -> its blockers, in the order they are told.
Check = Callable[[Evidence, Judgement], list[Blocker]]


def check_pointer(ev: Evidence, j: Judgement) -> list[Blocker]:
    """The sweep pointer is sealed, and the newest freshness anchor names it."""
    if ev.refused_pointer:
        return [Blocker("evidence", ev.cp.plan, ev.refused_pointer)]
    return fresh(ev.rt, ev.cp, ev.pointer, ev.policy, remotes=ev.remotes)


def check_candidates(ev: Evidence, j: Judgement) -> list[Blocker]:
    """Every repo has a candidate, not in conflict, not landed by a stopped per-wave
    landing."""
    cp, st, out = ev.cp, ev.st, []
    for repo, sha in ev.now.items():
        if sha is None:
            out.append(Blocker("repo", repo, "no candidate yet (run the plan: "
                               f"coord plan sweep {cp.plan})"))
        elif repo in st.conflicts:
            out.append(Blocker("repo", repo, f"conflict: {st.conflicts[repo]}"))
        elif st.state == CS.partially_landed and \
                st.steps.get(repo, {}).get("state") == CS.landed:
            out.append(Blocker("repo", repo, "landed by a per-wave landing that stopped "
                               f"(partially_landed): take it out first (coord change "
                               f"revert {cp.plan}), then land the change again"))
    return out


def check_standing(ev: Evidence, j: Judgement) -> list[Blocker]:
    """Where the change stands against its remotes (a repo already told of: not again)."""
    told = {b.id for b in j.blockers if b.kind == "repo"}
    return _standing(ev.cp, ev.st, ev.now, {r: b for r, b in (ev.bases or {}).items()
                                            if r not in told})


def check_git_trusted(ev: Evidence, j: Judgement) -> list[Blocker]:
    return _untrusted_git(ev.cp, ev.st)


def check_has_verify(ev: Evidence, j: Judgement) -> list[Blocker]:
    if ev.cp.verify_todos:
        return []
    return [Blocker("verify", ev.cp.plan, f"{ev.cp.plan} has no verify todo: add one with "
                    "verify: true")]


def check_own_verify(ev: Evidence, j: Judgement) -> list[Blocker]:
    return own_verify_blockers(ev.cp, ev.st)


def check_prepare(ev: Evidence, j: Judgement) -> list[Blocker]:
    return prepare_blockers(ev.cp, ev.st)


def check_pointer_run(ev: Evidence, j: Judgement) -> list[Blocker]:
    """The pointer names the run its sweep is at."""
    said, cp = ev.pointer.get("run"), ev.cp
    if not ev.sweep or ev.gone or said is None or str(ev.rec.get("run") or 0) == str(said):
        return []
    return [Blocker("evidence", cp.plan, (
        f"the sweep pointer of change {cp.plan} names run {said} of sweep {ev.sweep}, "
        f"but the sweep is at run {ev.rec.get('run') or 0}: it ran again since (a "
        "rollback), or the pointer is an older one put back; sweep the plan again "
        f"(coord plan sweep {cp.plan})"))]


def check_verify_passed(ev: Evidence, j: Judgement) -> list[Blocker]:
    """Each verify todo passed on the set judged, in the run it last started in (the
    pointer's anchor); then each repo whose candidate moved since."""
    cp, sweep, cands = ev.cp, ev.sweep, ev.cands
    anchors = {t: _anchor(ev.pointer, t) for t in cp.verify_todos}
    elsewhere: dict[str, list[str]] = {}
    for t, a in anchors.items():
        if a is not None and a[0] != sweep:
            elsewhere.setdefault(a[0], []).append(t)
    runs_of: dict[str, dict[str, Checkpoint]] = {
        s: ev.rt.checkpoints.get_all(s, ts) for s, ts in sorted(elsewhere.items())}
    out: list[Blocker] = []
    moved: dict[str, str] = {}
    for todo in cp.verify_todos:
        a = anchors[todo]
        in_last = a is None or a[0] == sweep
        v = _verify_verdict(cp, todo, ev.st.verifies.get(todo), cands,
                            ev.last.get(todo) if in_last else runs_of[a[0]].get(todo),  # type: ignore[index]
                            a, ev.since if in_last else 0.0, ev.policy)
        j.verify[todo] = v
        if v.verdict == "passed":
            continue
        out.append(Blocker("evidence" if v.verdict == "refused" else "verify", todo,
                           v.why or v.verdict))
        if v.verdict == "stale" and v.candidates and cands:
            for repo, sha in cands.items():
                was = v.candidates.get(repo)
                if was and was != sha and repo not in moved:
                    moved[repo] = (f"candidate moved {_short(was)} -> {_short(sha)} since "
                                   f"{todo} ran on it: verify again")
    return out + [Blocker("repo", r, why) for r, why in sorted(moved.items())]


def check_former_verify(ev: Evidence, j: Judgement) -> list[Blocker]:
    """A failed verify record of a todo the catalog no longer calls a verify todo of the
    plan (deleted, or verify: turned off) still vetoes the set it failed on."""
    out = []
    for todo, v in _vetoes_of_former(ev.cp, ev.st, ev.cands, ev.policy).items():
        j.verify[todo] = v
        out.append(Blocker("verify", todo, v.why or v.verdict))
    return out


def check_gates_approved(ev: Evidence, j: Judgement) -> list[Blocker]:
    """Every gate approved in the plan's last sweep, by a sealed decision and votes
    that count, for what the plan runs now."""
    cp, sweep, last, spec = ev.cp, ev.sweep, ev.last, ev.spec
    frozen: dict[str, Any] = (spec or {}).get("todos") or {}
    changed: list[str] | None = None
    digest: list[str] = []  # (what the last run runs, computed once a gate needs it)
    signers = Approvers(Path(cp.allowed_signers) if cp.allowed_signers else None)
    started = starter_of(ev.rec, sweep or "", signers) if cp.gates else None
    out: list[Blocker] = []
    for gate in cp.gates:
        votes = ""
        decided: str | None = None
        if sweep and not ev.gone and (last.get(gate) or {}).get("status") == TodoStatus.succeeded:
            votes = ev.rt.checkpoints.gate_read(sweep, gate)[1]
            if changed is None:
                if ev.unreadable:
                    out.append(Blocker("evidence", cp.plan, ev.unreadable + ": what its "
                                       "gates approved cannot be checked; sweep the "
                                       f"plan again (coord plan sweep {cp.plan})"))
                changed = changed_since(cp, frozen)
            if spec is not None:
                decided = (_decision(spec, sweep, gate, last[gate], votes, digest,
                                     _run_no(ev.rec), ev.policy)
                           or _rolled_back(spec, sweep, gate, last, digest))
        gv = _gate_verdict(gate, last.get(gate), sweep, ev.gone, votes,
                           cp.gate_needs.get(gate, 1), ev.policy,
                           GateContext(cp.gate_specs.get(gate) or {}, signers, started),
                           changed, cp.plan, decided)
        j.gates[gate] = gv
        if gv.verdict != "approved":
            out.append(Blocker("evidence" if gv.verdict == "refused" else "gate", gate,
                               gv.why or gv.verdict))
    return out


def check_run_ended(ev: Evidence, j: Judgement) -> list[Blocker]:
    """The plan's last sweep is there, its spec readable, every todo it ran ended and
    not failed."""
    cp, sweep = ev.cp, ev.sweep
    if ev.gone:
        return [Blocker("run", cp.plan, f"the plan's last sweep {sweep} is gone "
                        "from Redis (expired): what it ran cannot be checked; sweep "
                        f"the plan again (coord plan sweep {cp.plan})")]
    if not sweep:
        return []
    out = []
    if ev.spec is None and ev.unreadable and not any(
            b.kind == "evidence" and b.id == cp.plan for b in j.blockers):
        out.append(Blocker("evidence", cp.plan, ev.unreadable + ": what the plan's "
                           "last run ran cannot be checked; sweep the plan again "
                           f"(coord plan sweep {cp.plan})"))
    return out + run_blockers(cp, sweep, ev.rec, ev.spec, ev.last, ev.policy)


def check_train_drop(ev: Evidence, j: Judgement) -> list[Blocker]:
    """The merge train did not drop it, or every verify todo passed again since."""
    st = ev.st
    if st.state != FAILED_VERIFICATION or _verified_since_drop(ev.cp, st, ev.cands, j):
        return []
    j.dropped = True
    return [Blocker("train", ev.cp.plan, "dropped from the merge train: "
                    + (st.reason or "verification failed")
                    + "; it stays failed_verification until every verify todo "
                    "of the plan passed again since, on its candidates now")]


#: The landing rule's checks, in the order their blockers are told (one policy).
CHECKS: tuple[Check, ...] = (
    check_pointer, check_candidates, check_standing, check_git_trusted, check_has_verify,
    check_own_verify, check_prepare, check_pointer_run, check_verify_passed,
    check_former_verify, check_gates_approved, check_run_ended, check_train_drop)


def judge(rt: Runtime, cp: ChangePlan, st: ChangeState | None = None,
          candidates: dict[str, str | None] | None = None,
          bases: Mapping[str, standing.Base] | None = None, *,
          remotes: bool = True) -> Judgement:
    """The landing rule for ``cp`` now: :data:`CHECKS` applied in order to the evidence
    read once. ``candidates``: the set to judge (default: every worktree's HEAD re-read
    now; prepare passes the one it would land). ``bases``: each repo's base on its
    remote as read now (``change status``; prepare checks the remotes itself and passes
    none). ``remotes``: the freshness anchors on the repos' remotes are read too (land,
    its dry run, the train; ``change status`` only when it asks the remotes), else only
    the one beside the catalog."""
    st = st if st is not None else rt.changes.read(cp.plan)
    now = candidates if candidates is not None else current_candidates(cp, st)
    ev = _evidence(rt, cp, st, now, bases, remotes)
    j = Judgement(plan=cp.plan, candidates=dict(now), sweep=ev.sweep)
    for check in CHECKS:
        j.blockers.extend(check(ev, j))
    return j


def _verified_since_drop(cp: ChangePlan, st: ChangeState, cands: dict[str, str] | None,
                         j: Judgement) -> bool:
    """Was a change the train dropped verified again: every verify todo of the plan
    passed on the candidates now, each by a record written after the drop? (A success
    of before the drop does not count: the train stops at a change's first failing
    verify todo, so the others' older successes on its own commits are still there.)
    A drop that says not when it was (written before 0.4 kept it): the set must also
    differ from the one dropped."""
    if cands is None or not cp.verify_todos:
        return False
    if any(j.verify.get(t) is None or j.verify[t].verdict != "passed" for t in cp.verify_todos):
        return False
    dropped = st.dropped or {}
    try:
        at = float(dropped["at"])
    except (KeyError, TypeError, ValueError):
        return cands != dropped.get("shas")
    return all(_at(st.verifies.get(t)) > at for t in cp.verify_todos)


def _at(record: Any) -> float:
    """When a verify record was written (0: it does not say)."""
    try:
        return float(record.get("at") or 0) if isinstance(record, dict) else 0.0
    except (TypeError, ValueError):
        return 0.0
