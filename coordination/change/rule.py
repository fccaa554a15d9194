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
  (:mod:`coordination.change.standing`);
- ``land: pr`` (when the caller read the forges: ``pulls``): every repo with a commit
  has its pull request, open (not closed or merged by hand), its head the candidate,
  and its forge would merge it: reviews as its protection requires, required checks
  green, no conflict (:func:`coordination.change.pulls.forge_status.forge_blockers`).

The checks are a pure policy over facts gathered before any runs
(:func:`coordination.change.landing_evidence.gather`: every git, Redis and file read, the
freshness anchor's write beside the catalog, each SSH signature's check): none runs
git or a process, reads or writes Redis or a file.

Each reason is a :class:`Blocker`: its kind (verify, gate, repo, run, train,
evidence, state, forge), what it is about (a todo id or a repo) and why, said so a person knows
what to run next.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from coordination.change import anchor
from coordination.change import standing
from coordination.change.blockers import Blocker, short
from coordination.change.pulls.forge_status import PullView, forge_blockers
from coordination.change.gate_verdicts import (
    GateContext,
    GateVerdict,
    changed_since,
    decision_refusal,
    gate_verdict,
    rolled_back,
)
from coordination.change.landing_evidence import Evidence, current_candidates, gather
from coordination.change.model import ChangePlan
from coordination.change.run_outcomes import run_blockers
from coordination.change.verify_verdicts import (
    VerifyVerdict,
    verified_since_drop,
    verify_verdict,
    vetoes_of_former,
)
from coordination.runtime.change_records import SweepPointer
from coordination.runtime.changes import FAILED_VERIFICATION, ChangeState
from coordination.runtime.context import Runtime
from coordination.status import ChangeState as CS
from coordination.status import StepState
from coordination.status import TodoStatus

__all__ = ["CHECKS", "Judgement", "judge", "unchecked"]


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


#: A check of the landing rule: the evidence (and the judgement so far, whose verdicts
#: it may fill in) -> its blockers, in the order they are told. Pure: it reads only
#: the evidence (never ``ev.rt``, git or a file).
Check = Callable[[Evidence, Judgement], list[Blocker]]


def check_pointer(ev: Evidence, j: Judgement) -> list[Blocker]:
    """The sweep pointer is sealed, and the newest freshness anchor names it."""
    if ev.refused_pointer:
        return [Blocker("evidence", ev.cp.plan, ev.refused_pointer)]
    return fresh(ev.cp, ev.pointer, ev.fresh_anchor, ev.anchors_refused)


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
                st.step(repo).state == StepState.landed:
            how = "a per-wave landing" if cp.land != "pr" else "a landing"
            out.append(Blocker("repo", repo, f"landed by {how} that stopped "
                               f"(partially_landed): take it out first (coord change "
                               f"revert {cp.plan}), then land the change again"))
    return out


def check_standing(ev: Evidence, j: Judgement) -> list[Blocker]:
    """Where the change stands against its remotes (a repo already told of: not again)."""
    told = {b.id for b in j.blockers if b.kind == "repo"}
    out = [Blocker("repo", r, why) for r, why in ev.base_problems.items() if r not in told]
    said = standing.ended(ev.cp, ev.st, ev.now)
    if said:
        out.append(Blocker("state", ev.cp.plan, said))
    return out


def check_git_trusted(ev: Evidence, j: Judgement) -> list[Blocker]:
    """No repo's own git config (which a todo can write) makes git run a program, and
    its remote is the catalog's. (Only git can say it: a reader that runs none leaves
    it out, and says so.)"""
    return [Blocker("repo", r, why) for r, why in ev.untrusted.items()] if ev.git else []


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
    said, cp = ev.pointer.run, ev.cp
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
    cp, cands = ev.cp, ev.cands
    anchors = {t: ev.pointer.started_in(t) for t in cp.verify_todos}
    elsewhere = ev.elsewhere
    out: list[Blocker] = []
    moved: dict[str, str] = {}
    for todo in cp.verify_todos:
        a = anchors[todo]
        if a is None or a[0] == ev.sweep:
            last, since = ev.last.get(todo), ev.since
        else:  # (a todo run of it, since the plan's last sweep)
            last, since = elsewhere[a[0]].get(todo), 0.0
        v = verify_verdict(cp, todo, ev.st.verifies.get(todo), cands, last, a, since, ev.policy)
        j.verify[todo] = v
        if v.verdict == "passed":
            continue
        out.append(Blocker("evidence" if v.verdict == "refused" else "verify", todo,
                           v.why or v.verdict))
        if v.verdict == "stale" and v.candidates and cands:
            for repo, sha in cands.items():
                was = v.candidates.get(repo)
                if was and was != sha and repo not in moved:
                    moved[repo] = (f"candidate moved {short(was)} -> {short(sha)} since "
                                   f"{todo} ran on it: verify again")
    return out + [Blocker("repo", r, why) for r, why in sorted(moved.items())]


def check_former_verify(ev: Evidence, j: Judgement) -> list[Blocker]:
    """A failed verify record of a todo the catalog no longer calls a verify todo of the
    plan (deleted, or verify: turned off) still vetoes the set it failed on."""
    out = []
    for todo, v in vetoes_of_former(ev.cp, ev.st, ev.cands, ev.policy).items():
        j.verify[todo] = v
        out.append(Blocker("verify", todo, v.why or v.verdict))
    return out


def check_gates_approved(ev: Evidence, j: Judgement) -> list[Blocker]:
    """Every gate approved in the plan's last sweep, by a sealed decision and votes
    that count, for what the plan runs now."""
    cp, sweep, last, spec = ev.cp, ev.sweep, ev.last, ev.spec
    changed: list[str] | None = None
    signers, started = ev.signers, ev.started
    out: list[Blocker] = []
    for gate in cp.gates:
        votes = ""
        decided: str | None = None
        if sweep and not ev.gone and (last.get(gate) or {}).get("status") == TodoStatus.succeeded:
            votes = ev.votes.get(gate, "")
            if changed is None:
                if ev.unreadable:
                    out.append(Blocker("evidence", cp.plan, ev.unreadable + ": what its "
                                       "gates approved cannot be checked; sweep the "
                                       f"plan again (coord plan sweep {cp.plan})"))
                changed = changed_since(cp, spec.todos if spec else {})
            if spec is not None:
                decided = (decision_refusal(spec, sweep, gate, last[gate], votes, ev.run,
                                            ev.policy)
                           or rolled_back(spec, sweep, gate, last))
        gv = gate_verdict(gate, last.get(gate), sweep, ev.gone, votes,
                          cp.gate_needs.get(gate, 1), ev.policy,
                          GateContext(cp.gate_specs.get(gate) or {}, signers, started,
                                      ev.proofs.get(gate, {})),
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
    if st.state != FAILED_VERIFICATION or verified_since_drop(ev.cp, st, ev.cands, j.verify):
        return []
    j.dropped = True
    return [Blocker("train", ev.cp.plan, "dropped from the merge train: "
                    + (st.reason or "verification failed")
                    + "; it stays failed_verification until every verify todo "
                    "of the plan passed again since, on its candidates now")]


def check_forge(ev: Evidence, j: Judgement) -> list[Blocker]:
    """``land: pr``: every pull request open, on the candidate, and mergeable as its
    forge says (only when the caller read the forges)."""
    if ev.pulls is None or ev.cp.land != "pr":
        return []
    return forge_blockers(ev.cp, ev.st, ev.now, ev.pulls)


#: The landing rule's checks, in the order their blockers are told (one policy).
CHECKS: tuple[Check, ...] = (
    check_pointer, check_candidates, check_standing, check_git_trusted, check_has_verify,
    check_own_verify, check_prepare, check_pointer_run, check_verify_passed,
    check_former_verify, check_gates_approved, check_run_ended, check_train_drop,
    check_forge)


def judge(rt: Runtime, cp: ChangePlan, st: ChangeState | None = None,
          candidates: dict[str, str | None] | None = None,
          bases: Mapping[str, standing.Base] | None = None, *,
          remotes: bool = True, pulls: Mapping[str, PullView] | None = None,
          git: bool = True) -> Judgement:
    """The landing rule for ``cp`` now: :data:`CHECKS` applied in order to the evidence
    read once. ``candidates``: the set to judge (default: every worktree's HEAD re-read
    now; prepare passes the one it would land). ``bases``: each repo's base on its
    remote as read now (``change status``; prepare checks the remotes itself and passes
    none). ``remotes``: the freshness anchors on the repos' remotes are read too (land,
    its dry run, the train; ``change status`` only when it asks the remotes), else only
    the one beside the catalog. ``pulls``: ``land: pr``, each repo's pull request as its
    forge says it (:func:`coordination.change.pulls.forge_status.read_views`; None: the forge
    is not judged). ``git=False``: a reader that may run no git (the web view for a
    stranger): the checks only git can make (the repos' own git config) are left out,
    and the caller says so."""
    st = st if st is not None else rt.changes.read(cp.plan)
    now = candidates if candidates is not None else current_candidates(cp, st)
    ev = gather(rt, cp, st, now, bases, remotes and git, pulls, git)
    j = Judgement(plan=cp.plan, candidates=dict(now), sweep=ev.sweep)
    for check in CHECKS:
        j.blockers.extend(check(ev, j))
    return j


# -- the repo-level checks -------------------------------------------------------------
def prepare_blockers(cp: ChangePlan, st: ChangeState) -> list[Blocker]:
    """A repo whose ``prepare:`` failed in its new worktree (its todos did not run there)."""
    out = []
    for repo, rec in sorted(st.prepares.items()):
        if repo in cp.targets and not rec.ok:
            lines = [ln.strip() for ln in rec.output.splitlines() if ln.strip()]
            code = rec.exit_code
            out.append(Blocker("repo", repo, "prepare failed" + (
                f" (exit {code})" if code is not None else "") + (
                f": {lines[-1][:300]}" if lines else "") + f"; fix it (coord repo update {repo} "
                f"--prepare CMD) or what it needs, then run the plan again"))
    return out


def fresh(cp: ChangePlan, pointer: SweepPointer, newest: anchor.Anchor | None,
          refused: list[str]) -> list[Blocker]:
    """The pointer Redis holds is the newest sweep's: the newest freshness anchor found
    outside Redis (``newest``, :func:`coordination.change.landing_evidence.newest_anchor`:
    beside the catalog; with the remotes asked, on each repo's remote too) anchors
    exactly it (sweep, run, where each verify todo last started). An anchor whose seal
    fails (``refused``) blocks too (fail closed). No anchor anywhere (a plan last swept
    before 0.5): nothing to check against."""
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
