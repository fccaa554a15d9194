"""The landing rule: when a change may land, and every reason it may not (one function).

:func:`judge` is called by everything that decides or says whether a change lands:
``coord change land`` and its ``--dry-run`` (through :meth:`Lander.prepare`), the
merge train (``coord change queue --land``), and ``coord change status`` (the CLI,
the web view and MCP, through :func:`coordination.change.reading.status_document`).

A change is landable only when, for its *current candidate set* (every repo's
candidate: the HEAD of its change worktree, re-read now):

- every verify todo of the plan has a success recorded on exactly that set (a verify
  todo verifies the set it ran on, not each repo it was given), its record sealed
  (:mod:`coordination.runtime.evidence`, kind ``verify``) about the plan, the todo
  and that set; a record that fails its check is refused, naming it and why;
- no verify todo failed on it, and none was skipped or cancelled in the plan's last
  sweep after its success;
- every gate of the plan is approved in the plan's last sweep (its checkpoint's
  status: succeeded = approved, awaiting_approval = waiting, failed = rejected,
  cancelled = expired, not reached = missing);
- no other todo of the plan's last sweep failed;
- the merge train did not drop it (``failed_verification``), or a verify todo has
  passed since on another candidate set;
- every repo has a candidate, none in conflict.

Each reason is a :class:`Blocker`: its kind (verify, gate, repo, run, train,
evidence), what it is about (a todo id or a repo) and why, said so a person knows
what to run next.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from coordination.change import git as g
from coordination.change.model import ChangePlan
from coordination.runtime import evidence
from coordination.runtime.changes import FAILED_VERIFICATION, ChangeState, verify_about
from coordination.runtime.checkpoints import Checkpoint
from coordination.runtime.context import Runtime
from coordination.status import ChangeState as CS
from coordination.status import TodoStatus

BlockerKind = Literal["verify", "gate", "repo", "run", "train", "evidence"]

#: A gate's status in the plan's last sweep -> its verdict.
GATE_VERDICTS = {TodoStatus.succeeded: "approved", TodoStatus.awaiting_approval: "waiting",
                 TodoStatus.failed: "rejected", TodoStatus.cancelled: "expired"}
#: Statuses of a todo of the last sweep that block the landing (the run failed).
RUN_FAILED = frozenset({TodoStatus.failed, TodoStatus.compensation_failed})


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
    verdict: str  # approved | waiting | rejected | expired | missing | refused
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
        """The verify todos whose success covers the current set (none when vetoed)."""
        if self.vetoed:
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


def _verify_verdict(cp: ChangePlan, todo: str, record: dict[str, Any] | None,
                    cands: dict[str, str] | None, last: Checkpoint | None, sweep: str | None,
                    since: float, policy: Any) -> VerifyVerdict:
    status = str(last.get("status")) if last else None
    in_sweep = f" in the plan's last sweep {sweep}" if sweep else ""
    ran_on = record.get("shas") if isinstance(record, dict) else None
    ran: dict[str, str] | None = dict(ran_on) if isinstance(ran_on, dict) else None
    if status in (TodoStatus.skipped, TodoStatus.cancelled) and (
            record is None or _ended_at(last, since) >= float(record.get("at") or 0)):
        reason = last.get("reason") if last else None
        return VerifyVerdict(status, ran, f"{todo} was {status}{in_sweep}"
                             + (f" ({reason})" if reason else "")
                             + f": run it again (coord todo run {todo} --wait)")
    if record is None:
        return VerifyVerdict("missing", None, f"{todo} has no verify record: it never ended "
                             f"on these candidates (run it: coord todo run {todo} --wait)")
    if cands is None:
        return VerifyVerdict("stale", ran, "not every repo has a candidate yet")
    if ran is None or {r: ran.get(r) for r in cp.targets} != cands:
        moved = [f"{r} {_short((ran or {}).get(r))} -> {_short(s)}" for r, s in cands.items()
                 if (ran or {}).get(r) != s]
        return VerifyVerdict("stale", ran, f"{todo} ran on other candidates ("
                             + ", ".join(moved) + f"): run it again (coord todo run {todo} "
                             "--wait)")
    what = f"verify record verify:{todo} of {cp.plan}"
    why = evidence.refusal("verify", verify_about(cp.plan, todo, cands), record, policy, what)
    if why:
        return VerifyVerdict("refused", ran, why)
    if record.get("ok") is not True:
        code = record.get("exit_code")
        reason = record.get("reason")
        last = record.get("last")
        return VerifyVerdict("failed", ran, f"{todo} failed on these candidates"
                             + (f" in sweep {record.get('sweep')}" if record.get("sweep") else "")
                             + (f" (exit {code})" if code is not None else "")
                             + (f": {reason}" if reason and reason != f"exit {code}" else "")
                             + (f": {last}" if last else "")
                             + "; fix the change and run it again")
    return VerifyVerdict("passed", ran, None)


def backing(votes: str, gate: str, sweep: str, last: Checkpoint | None, approvals: list[str],
            needed: int, policy: Any) -> str | None:
    """None when a gate that reads approved is backed by ``needed`` approvals under its
    binding whose votes' seals hold (``votes``: its votes field as stored); else why
    not. The gate's status and approvals are plain checkpoint fields: a writer without
    the key could set them, but not seal the votes behind them."""
    try:
        cast = json.loads(votes) if votes else {}
    except ValueError:
        cast = {}
    cast = cast if isinstance(cast, dict) else {}
    binding = str((last or {}).get("binding") or "")
    good: list[str] = []
    said: list[str] = []
    for who in approvals:
        v = cast.get(who)
        what = f"vote of {who} on gate {gate} of sweep {sweep}"
        if not isinstance(v, dict) or v.get("d") != "approve" or v.get("b") != binding:
            said.append(f"{what}: no approving vote under the gate's binding")
            continue
        why = evidence.refusal("vote", evidence.vote_about(sweep, gate, binding, who), v,
                               policy, what)
        if why:
            said.append(why)
        else:
            good.append(who)
    if len(good) >= needed:
        return None
    return (f"gate {gate} reads approved in sweep {sweep}, but only {len(good)} of the "
            f"{needed} approvals it needs are votes whose seals hold"
            + (f" ({'; '.join(said)})" if said else "")
            + ": its record was not written by coord's count; sweep the plan again for a "
            "new decision")


def _gate_verdict(gate: str, last: Checkpoint | None, sweep: str | None, gone: bool,
                  votes: str = "", needed: int = 1, policy: Any = None) -> GateVerdict:
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
        unbacked = backing(votes, gate, sweep, last, approvals, needed, policy)
        if unbacked:
            return GateVerdict("refused", approvals, unbacked)
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


def judge(rt: Runtime, cp: ChangePlan, st: ChangeState | None = None,
          candidates: dict[str, str | None] | None = None) -> Judgement:
    """The landing rule for ``cp`` now. ``candidates``: the set to judge (default:
    every worktree's HEAD re-read now; prepare passes the one it would land)."""
    st = st if st is not None else rt.changes.read(cp.plan)
    now = candidates if candidates is not None else current_candidates(cp, st)
    j = Judgement(plan=cp.plan, candidates=dict(now), sweep=st.sweep)
    complete = all(now.values()) and bool(now)
    cands: dict[str, str] | None = (
        {r: s for r, s in now.items() if s} if complete else None)
    for repo, sha in now.items():
        if sha is None:
            j.blockers.append(Blocker("repo", repo, "no candidate yet (run the plan: "
                                      f"coord plan sweep {cp.plan})"))
        elif repo in st.conflicts:
            j.blockers.append(Blocker("repo", repo, f"conflict: {st.conflicts[repo]}"))
        elif st.state == CS.partially_landed and \
                st.steps.get(repo, {}).get("state") == CS.landed:
            j.blockers.append(Blocker("repo", repo, "landed by a per-wave landing that stopped "
                                      f"(partially_landed): take it out first (coord change "
                                      f"revert {cp.plan}), then land the change again"))
    if not cp.verify_todos:
        j.blockers.append(Blocker("verify", cp.plan, f"{cp.plan} has no verify todo: add "
                                  "one with verify: true"))
    ids = sorted({*cp.verify_todos, *cp.gates, *cp.todos})
    last: dict[str, Checkpoint] = {}
    since, gone = 0.0, False
    if st.sweep:
        rec = rt.checkpoints.get_sweep_fields(st.sweep, ("created_at",))
        gone = rec is None
        since = float(str((rec or {}).get("created_at") or 0))
        last = rt.checkpoints.get_all(st.sweep, ids) if ids and not gone else {}
    policy = evidence.policy_of(rt.settings)
    moved: dict[str, str] = {}
    for todo in cp.verify_todos:
        v = _verify_verdict(cp, todo, st.verifies.get(todo), cands, last.get(todo),
                            st.sweep, since, policy)
        j.verify[todo] = v
        if v.verdict == "passed":
            continue
        j.blockers.append(Blocker("evidence" if v.verdict == "refused" else "verify", todo,
                                  v.why or v.verdict))
        if v.verdict == "stale" and v.candidates and cands:
            for repo, sha in cands.items():
                was = v.candidates.get(repo)
                if was and was != sha and repo not in moved:
                    moved[repo] = (f"candidate moved {_short(was)} -> {_short(sha)} since "
                                   f"{todo} ran on it: verify again")
    j.blockers.extend(Blocker("repo", r, why) for r, why in sorted(moved.items()))
    for gate in cp.gates:
        votes = ""
        if st.sweep and not gone and (last.get(gate) or {}).get("status") == \
                TodoStatus.succeeded:
            votes = rt.checkpoints.gate_read(st.sweep, gate)[1]
        gv = _gate_verdict(gate, last.get(gate), st.sweep, gone, votes,
                           cp.gate_needs.get(gate, 1), policy)
        j.gates[gate] = gv
        if gv.verdict != "approved":
            j.blockers.append(Blocker("evidence" if gv.verdict == "refused" else "gate", gate,
                                      gv.why or gv.verdict))
    if gone:
        j.blockers.append(Blocker("run", cp.plan, f"the plan's last sweep {st.sweep} is gone "
                                  "from Redis (expired): what it ran cannot be checked; sweep "
                                  f"the plan again (coord plan sweep {cp.plan})"))
    skip = {*cp.verify_todos, *cp.gates}
    for todo in cp.todos:
        cpt = last.get(todo)
        if todo not in skip and cpt and cpt.get("status") in RUN_FAILED:
            reason = cpt.get("reason")
            j.blockers.append(Blocker("run", todo, f"{todo} {cpt.get('status')} in the plan's "
                                      f"last sweep {st.sweep}" + (f" ({reason})" if reason
                                                                  else "")
                                      + f": coord sweep resume {st.sweep}"))
    if st.state == FAILED_VERIFICATION:
        dropped = (st.dropped or {}).get("shas")
        lifted = (cands is not None and cands != dropped
                  and any(v.verdict == "passed" for v in j.verify.values()))
        if not lifted:
            j.dropped = True
            j.blockers.append(Blocker("train", cp.plan, "dropped from the merge train: "
                                      + (st.reason or "verification failed")
                                      + "; it stays failed_verification until a verify todo "
                                      "passes on new candidates"))
    return j
