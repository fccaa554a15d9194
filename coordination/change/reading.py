"""``coord change status``: per repo base, candidate, verified by, landed, state; per
verify todo and gate its verdict on the current candidates; whether the change may
land and every reason it may not (the landing rule, :mod:`coordination.change.rule`).

For hundreds of repos, :func:`summary` gives the human view's shape: the count of
repos in each state, then only those that need attention (:func:`needs_attention`).

:func:`status_document` is the one reading the CLI (``change status --json``), the
web view and MCP call. A repo with a pull request (``coord change publish``) shows it as
its forge says it (number, URL, state, reviews, required checks, mergeability: read
with the forge's rate limit in mind, :mod:`coordination.change.pulls.forge_status`); with
``land: pr`` the forge's word is part of the landing rule's.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from coordination.catalog.models import Catalog
from coordination.change.pulls.forge_status import PullView, read_views
from coordination.change.pulls.forges import ChangeForges
from coordination.change.model import ChangePlan, change_of
from coordination.forge.base import ForgeFactory
from coordination.change.rule import Judgement, judge, unchecked
from coordination.change.standing import Base, read_bases
from coordination.runtime.change_records import (
    REVERT_COMMAND,
    REVERT_PR,
    LanderRecord,
)
from coordination.runtime.changes import FAILED_VERIFICATION, ChangeState
from coordination.runtime.context import Runtime
from coordination.runtime.freeze import iso
from coordination.processes import ended
from coordination.status import ChangeHeadline as Headline
from coordination.status import ChangeState as CS
from coordination.status import StepState as Step
from coordination.status import RepoState

#: A landing step's state -> the repo's state it shows as.
_STEP_STATE: dict[str, RepoState] = {
    Step.landing: RepoState.landing, Step.reverting: RepoState.landing,
    Step.landed: RepoState.landed, Step.reverted: RepoState.reverted,
    Step.revert_failed: RepoState.revert_failed}


class RepoDocument(TypedDict):
    repo: str
    order: int
    base: str
    remote: str
    base_sha: str | None
    candidate: str | None  # its worktree's HEAD, re-read
    worktree: str | None
    verified_by: list[str]  # verify todos whose success covers the current candidate set
    #: its base on its remote as read now: {"sha", "checked", "how"} (None: no candidate)
    base_now: dict[str, Any] | None
    landed: str | None
    reverted: str | None
    state: str
    why: str | None
    #: its pull request as its forge says it ({"number", "url", "state", "reviews",
    #: "checks", "mergeable", "blockers", "read_at", "source"...}; None: none published)
    pr: dict[str, Any] | None
    #: the pull request reverting it (``coord change revert`` of ``land: pr``), as
    #: recorded, with ``merge_queue`` ({"kind"}: through the base's queue; None: directly)
    revert_pr: dict[str, Any] | None


class ChangeDocument(TypedDict):
    plan: str
    branch: str
    land: str
    state: str
    reason: str | None
    order: list[str]
    train: int | None  # place in the merge train (0: next), None: not queued
    repos: dict[str, RepoDocument]
    #: ``land: per-wave``: the waves in order, {"name", "repos", "soak"} ([]: one landing)
    waves: list[dict[str, Any]]
    #: a landing or revert whose process died (state interrupted / revert_interrupted):
    #: the command that carries it on; None: nothing to carry on
    resume: str | None


class StatusDocument(ChangeDocument):
    """``coord change status --json`` (the web view's and MCP's too)."""

    landable: bool
    blockers: list[dict[str, str]]  # {"kind", "id", "why"}
    verify: dict[str, dict[str, Any]]  # todo -> {"verdict", "candidates", "why"}
    gates: dict[str, dict[str, Any]]  # todo -> {"verdict", "approvals", "why"}
    sweep: str | None  # the plan's last sweep
    #: every repo's base on its remote was read (False: a network remote not asked,
    #: ``base_now.checked``; ``coord change status --ask-remotes`` asks them)
    bases_checked: bool
    #: repos no verify todo of their own checks (``change: {require_own_verify: true}``:
    #: each is a blocker too)
    unchecked: list[str]
    #: repo -> how its ``prepare:`` last ran in a new worktree {"command", "ok",
    #: "exit_code", "output", "worktree", "at"} (a failure is a blocker)
    prepare: dict[str, dict[str, Any]]
    #: the fleet's freeze (`coord freeze`: `change land` is refused while it holds):
    #: {"by", "at", "reason"}, or None
    frozen: dict[str, Any] | None
    #: what a reader that may run no git (the web view for nobody signed in) left out,
    #: in words; None: nothing was
    left_out: str | None


#: What a document read without git leaves out (:func:`status_of`, ``git=False``).
LEFT_OUT = ("read without git (nobody is signed in to the web view, which then runs no "
            "git in a repository): each repo's base on its remote and the repos' own git "
            "config were not checked, so landable may miss a blocker they would name; "
            "sign in (serve the view with COORD_UI_AUTH) or run coord change status to "
            "see them")


def gone(lander: LanderRecord, st: ChangeState) -> str | None:
    """Why the recorded lander is known to be gone: its process ended (this host), or
    (another host) its lease expired, not renewed within its TTL; None: alive."""
    why = ended(lander.document)
    # (this host: its pid says it, alive or not; another: only its lease can)
    if why is None and st.lander_alive is False and lander.host != socket.gethostname():
        why = (f"its lease expired: no word from pid {lander.pid} on "
               f"{lander.host} within the lease's TTL")
    return why


def interruption(plan: str, st: ChangeState) -> dict[str, str] | None:
    """A landing or revert whose process died: ``{"state": interrupted |
    revert_interrupted, "why", "resume": the command that carries it on}``; None: none
    was under way, or its process is alive (on this host: its pid; on any: its lease).

    A landing: the change is ``landing`` and its lander's process ended. A revert: the
    change is still ``landed`` (or partly) and its reverter's process ended, or (no
    process recorded: one of before 0.5) a repo's revert step is there."""
    lander = st.lander
    op = lander.op if lander else None
    if lander and st.state == CS.landing and op == "land":
        why = gone(lander, st)
        if why:
            return {"state": Headline.interrupted, "resume": f"coord change land {plan}",
                    "why": f"the landing stopped half-way: {why}"}
        return None
    if st.state not in (CS.landed, CS.partially_landed):
        return None
    if lander and op == "revert":
        why = gone(lander, st)
    elif not lander and any(s.by == REVERT_COMMAND and s.state in (Step.reverted, Step.reverting)
                            for s in st.steps.values()):
        why = "no process is recorded as reverting it"
    else:
        why = None
    if not why:
        return None
    done = sorted(r for r, s in st.steps.items() if s.state == Step.reverted)
    return {"state": Headline.revert_interrupted, "resume": f"coord change revert {plan}",
            "why": "the revert stopped half-way"
                   + (f" (reverted: {', '.join(done)})" if done else "") + f": {why}"}


def rejection(j: Judgement) -> str | None:
    """Why the change is headlined ``rejected``: its gates the last sweep rejected (each
    as the landing rule says it); None: none was."""
    whys = [v.why or f"gate {t} was rejected" for t, v in j.gates.items()
            if v.verdict == "rejected"]
    return "; ".join(whys) or None


#: Why a repo whose branch has no commit (its candidate is its base) is left alone.
UNCHANGED = "no commit on the branch: nothing to land"


def repo_state(st: ChangeState, repo: str, j: Judgement) -> RepoState:
    step = st.step(repo)
    state = step.state
    if state == Step.reverting and step.by == REVERT_PR:
        return RepoState.reverting  # its revert pull request is open
    if state in _STEP_STATE:
        return _STEP_STATE[state]
    if repo in st.conflicts:
        return RepoState.conflict
    verified = j.verified and not j.vetoed and not j.dropped  # (the train's drop stands)
    return RepoState.verified if verified and j.candidates.get(repo) else RepoState.drafted


@dataclass(frozen=True)
class HeadlineFacts:
    """What a change's headline is computed from besides its stored state."""

    #: the merge train's drop stands (:attr:`Judgement.dropped`)
    dropped: bool
    #: its repos' states (:func:`repo_state`)
    repo_states: frozenset[str]
    #: why a gate of it was rejected (:func:`rejection`), None: none was
    rejected: str | None = None
    #: a landing or revert whose process died (:func:`interruption`'s state), None: none
    interrupted: str | None = None


def headline(stored: str | None, facts: HeadlineFacts) -> str:
    """What ``coord change status`` headlines a change as (a :class:`Headline`; a stored
    state this version does not know: as stored): a landing or revert stopped half-way;
    else the train's drop standing; else its stored state (a drop lifted since is none);
    else, from its repos and gates, conflict, rejected, verified or drafted."""
    if facts.interrupted:
        return Headline(facts.interrupted)
    if facts.dropped:
        return Headline.failed_verification
    if stored and stored != FAILED_VERIFICATION:
        return Headline(stored) if stored in Headline._value2member_map_ else stored
    states = facts.repo_states
    if RepoState.conflict in states:
        return Headline.conflict
    if facts.rejected:  # a rejected gate: never headlined verified (0.4 was, green)
        return Headline.rejected
    if states == {RepoState.verified}:
        return Headline.verified
    return Headline.drafted


def document(cp: ChangePlan, st: ChangeState, train: list[str], j: Judgement,
             bases: dict[str, Base] | None = None,
             pulls: dict[str, PullView] | None = None) -> ChangeDocument:
    repos: dict[str, RepoDocument] = {}
    by = j.verified_by()
    for i, (name, t) in enumerate(cp.targets.items()):
        rec = st.repos.get(name)
        step = st.step(name)
        repos[name] = RepoDocument(
            repo=name, order=i, base=t.base, remote=t.remote,
            base_sha=rec.base_sha if rec else None, candidate=j.candidates.get(name),
            worktree=rec.worktree if rec else None, verified_by=by,
            base_now=bases[name].document() if bases and name in bases else None,
            landed=step.landed, reverted=step.revert if step.state == Step.reverted else None,
            state=repo_state(st, name, j),
            why=step.why or st.conflicts.get(name) or (
                UNCHANGED if step.empty and rec and rec.candidate == rec.base_sha else None),
            pr=_pull_document(st, name, pulls),
            revert_pr=_revert_pull_document(st, name, pulls))
    stopped = interruption(cp.plan, st)
    rejected = rejection(j)
    state = headline(st.state, HeadlineFacts(
        j.dropped, frozenset(r["state"] for r in repos.values()), rejected,
        stopped["state"] if stopped else None))
    reason = st.reason if st.state != FAILED_VERIFICATION or j.dropped else None
    if stopped:
        reason = f"{stopped['why']}; run {stopped['resume']} to carry it on"
    elif state == Headline.rejected:
        reason = rejected
    return ChangeDocument(resume=stopped["resume"] if stopped else None,
                          plan=cp.plan, branch=cp.branch, land=cp.land, state=state,
                          reason=reason, order=cp.order,
                          train=train.index(cp.plan) if cp.plan in train else None, repos=repos,
                          waves=[{"name": w.name, "repos": list(w.repos), "soak": w.soak}
                                 for w in cp.waves])


def _pull_document(st: ChangeState, repo: str,
                   pulls: dict[str, PullView] | None) -> dict[str, Any] | None:
    """``repo``'s pull request: as its forge said it (read now or lately), else as
    recorded; None: it has none."""
    rec = st.pulls.get(repo)
    if rec is None:
        return None
    view = (pulls or {}).get(repo)
    if view is None:
        return {"number": rec.number, "url": rec.url, "state": None, "kind": rec.kind,
                "project": rec.project, "error": "not read", "head": rec.head}
    return view.document()


def _revert_pull_document(st: ChangeState, repo: str,
                          pulls: dict[str, PullView] | None) -> dict[str, Any] | None:
    """``repo``'s revert pull request as recorded, and ``merge_queue`` (``{"kind"}``):
    its base requires the forge's queue of that kind, as ``coord change revert`` read
    it last (opening or merging it), else as the forge said it of the change's pull
    request into the same base; None: a direct merge."""
    rec = st.revert_pulls.get(repo)
    if rec is None:
        return None
    if "merge_queue" in rec.document:
        kind = rec.document["merge_queue"]
    else:  # (a record of before it was kept)
        view = (pulls or {}).get(repo)
        kind = (view.merge_queue or {}).get("kind") if view is not None else None
    return {**rec.document, "merge_queue": {"kind": str(kind)} if kind else None}


def status_of(rt: Runtime, cp: ChangePlan, *, ask_remotes: bool = False,
              forges: ChangeForges | None = None, ask_forge: bool = True,
              git: bool = True) -> StatusDocument:
    """The status document of the change ``cp`` (see :func:`status_document`).
    ``git=False``: no git process (the web view for a stranger): the states, reasons,
    verdicts and ids the records hold, the bases on the remotes and the repos' git
    config left out, and ``left_out`` saying so."""
    st = rt.changes.read(cp.plan)
    if git:
        bases = read_bases(cp, st, ask=ask_remotes)
    else:
        bases = {r: Base(None, False, "not read: no git runs for this reader")
                 for r in cp.targets if r in st.repos}
    pulls = None
    # published: what its forges say (a read of the last seconds, or asked); a record
    # refused (not sealed by coord) is a blocker of the forge check, naming it
    if st.pulls or st.refused_pulls:
        pulls = read_views(rt, cp, st, forges or ChangeForges(cp), ask=ask_forge)
    j = judge(rt, cp, st, bases=bases, remotes=ask_remotes,
              pulls=pulls if cp.land == "pr" else None, git=git)
    doc = document(cp, st, rt.changes.train(), j, bases, pulls)
    return StatusDocument(**doc, landable=j.landable,
                          blockers=[b.document() for b in j.blockers],
                          verify={t: v.document() for t, v in j.verify.items()},
                          gates={t: v.document() for t, v in j.gates.items()},
                          sweep=j.sweep, bases_checked=all(b.checked for b in bases.values()),
                          frozen=None,
                          unchecked=unchecked(cp, st),
                          prepare={r: st.prepares[r].document for r in cp.targets
                                   if r in st.prepares},
                          left_out=None if git else LEFT_OUT)


def status_document(rt: Runtime, catalog: Catalog, base_dir: Path, plan_id: str, *,
                    ask_remotes: bool = False, factory: ForgeFactory | None = None,
                    ask_forge: bool = True, git: bool = True) -> StatusDocument:
    """``coord change status PLAN --json``: every repo's state (its candidate re-read
    from its worktree now), each verify todo's and gate's verdict on the current
    candidates, ``landable`` and its ``blockers`` (the landing rule's, the same
    :func:`coordination.change.rule.judge` that ``change land`` applies, with each
    repo's base on its remote read now: :mod:`coordination.change.standing`; a
    network remote only with ``ask_remotes``, else ``bases_checked`` is false); each
    pull request as its forge says it (``ask_forge`` False: only what was read last)."""
    cp = change_of(catalog, plan_id, base_dir)
    doc = status_of(rt, cp, ask_remotes=ask_remotes, forges=ChangeForges(cp, factory),
                    ask_forge=ask_forge, git=git)
    held = rt.freeze().get()
    doc["frozen"] = None if held is None else {**held, "at": iso(held["at"])}
    return doc


#: The order states are counted in (``coord change status``).
STATE_ORDER = (RepoState.landed, RepoState.landing, RepoState.verified, RepoState.drafted,
               RepoState.conflict, RepoState.reverted, RepoState.revert_failed)
#: A repo in one of these needs someone: no verified candidate, a conflict, left landed.
ATTENTION = frozenset({RepoState.drafted, RepoState.conflict, RepoState.revert_failed})
#: ... and, when the change stopped half-way, a repo whose landing was put back.
_STOPPED = frozenset({Headline.partially_landed, Headline.revert_failed})


def counts(repos: list[RepoDocument]) -> dict[str, int]:
    """How many of ``repos`` are in each state (known states in order, then others)."""
    out: dict[str, int] = {}
    for r in repos:
        out[r["state"]] = out.get(r["state"], 0) + 1
    known: dict[str, int] = {str(s): out[s] for s in STATE_ORDER if s in out}
    return {**known, **{s: n for s, n in sorted(out.items()) if s not in known}}


def needs_attention(doc: StatusDocument) -> list[RepoDocument]:
    """The repos someone must look at, in landing order: not verified (drafted), in
    conflict, left landed by a failed revert, named by a blocker (but a landed repo of
    a landed change), or (the change stopped half-way) whose landing was put back."""
    named = {b["id"] for b in doc["blockers"] if b["kind"] == "repo"}
    stopped = doc["state"] in _STOPPED
    done = doc["state"] == Headline.landed  # (its repos' "already landed" is no call to act)
    return [r for r in doc["repos"].values()
            if r["state"] in ATTENTION or (r["repo"] in named and not (
                done and r["state"] == RepoState.landed))
            or (stopped and r["state"] == RepoState.reverted)]


def summary(doc: StatusDocument) -> dict[str, Any]:
    """``{"repos": N, "states": counts, "waves": [{"name", "repos": N, "states"}],
    "attention": [repo documents]}`` of a status document."""
    repos = doc["repos"]
    return {"repos": len(repos), "states": counts(list(repos.values())),
            "waves": [{"name": w["name"], "repos": len(w["repos"]),
                       "states": counts([repos[r] for r in w["repos"] if r in repos])}
                      for w in doc.get("waves", [])],
            "attention": needs_attention(doc)}
