"""``coord change status``: per repo base, candidate, verified by, landed, state; per
verify todo and gate its verdict on the current candidates; whether the change may
land and every reason it may not (the landing rule, :mod:`coordination.change.rule`).

For hundreds of repos, :func:`summary` gives the human view's shape: the count of
repos in each state, then only those that need attention (:func:`needs_attention`).

:func:`status_document` is the one reading the CLI (``change status --json``), the
web view and MCP call.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, TypedDict

from coordination.catalog.models import Catalog
from coordination.change.model import ChangePlan, change_of
from coordination.change.rule import Judgement, judge, unchecked
from coordination.change.standing import Base, read_bases
from coordination.runtime.change_records import REVERT_COMMAND, REVERTING, LanderRecord
from coordination.runtime.changes import FAILED_VERIFICATION, ChangeState
from coordination.runtime.context import Runtime
from coordination.runtime.freeze import iso
from coordination.processes import ended
from coordination.status import ChangeState as CS

#: A landing step's state -> the repo's state it shows as.
_STEP_STATE = {CS.landing: CS.landing, REVERTING: CS.landing, CS.landed: CS.landed,
               CS.reverted: CS.reverted, CS.revert_failed: CS.revert_failed}


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
            return {"state": CS.interrupted, "resume": f"coord change land {plan}",
                    "why": f"the landing stopped half-way: {why}"}
        return None
    if st.state not in (CS.landed, CS.partially_landed):
        return None
    if lander and op == "revert":
        why = gone(lander, st)
    elif not lander and any(s.by == REVERT_COMMAND and s.state in (CS.reverted, REVERTING)
                            for s in st.steps.values()):
        why = "no process is recorded as reverting it"
    else:
        why = None
    if not why:
        return None
    done = sorted(r for r, s in st.steps.items() if s.state == CS.reverted)
    return {"state": CS.revert_interrupted, "resume": f"coord change revert {plan}",
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


def repo_state(st: ChangeState, repo: str, j: Judgement) -> str:
    state = st.step(repo).state
    if state in _STEP_STATE:
        return str(_STEP_STATE[state])
    if repo in st.conflicts:
        return CS.conflict
    verified = j.verified and not j.vetoed and not j.dropped  # (the train's drop stands)
    return CS.verified if verified and j.candidates.get(repo) else CS.drafted


def document(cp: ChangePlan, st: ChangeState, train: list[str], j: Judgement,
             bases: dict[str, Base] | None = None) -> ChangeDocument:
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
            landed=step.landed, reverted=step.revert if step.state == CS.reverted else None,
            state=repo_state(st, name, j),
            why=step.why or st.conflicts.get(name) or (
                UNCHANGED if step.empty and rec and rec.candidate == rec.base_sha else None))
    states = {r["state"] for r in repos.values()}
    state: str
    if j.dropped:
        state = FAILED_VERIFICATION
    elif st.state and st.state != FAILED_VERIFICATION:
        state = st.state
    elif CS.conflict in states:
        state = CS.conflict
    elif rejection(j):  # a rejected gate: never headlined verified (0.4 was, green)
        state = CS.rejected
    elif repos and states == {CS.verified}:
        state = CS.verified
    else:
        state = CS.drafted
    reason = st.reason if st.state != FAILED_VERIFICATION or j.dropped else None
    if state == CS.rejected:
        reason = rejection(j)
    stopped = interruption(cp.plan, st)
    if stopped:
        state = stopped["state"]
        reason = f"{stopped['why']}; run {stopped['resume']} to carry it on"
    return ChangeDocument(resume=stopped["resume"] if stopped else None,
                          plan=cp.plan, branch=cp.branch, land=cp.land, state=state,
                          reason=reason, order=cp.order,
                          train=train.index(cp.plan) if cp.plan in train else None, repos=repos,
                          waves=[{"name": w.name, "repos": list(w.repos), "soak": w.soak}
                                 for w in cp.waves])


def status_of(rt: Runtime, cp: ChangePlan, *, ask_remotes: bool = False) -> StatusDocument:
    """The status document of the change ``cp`` (see :func:`status_document`)."""
    st = rt.changes.read(cp.plan)
    bases = read_bases(cp, st, ask=ask_remotes)
    j = judge(rt, cp, st, bases=bases, remotes=ask_remotes)
    doc = document(cp, st, rt.changes.train(), j, bases)
    return StatusDocument(**doc, landable=j.landable,
                          blockers=[b.document() for b in j.blockers],
                          verify={t: v.document() for t, v in j.verify.items()},
                          gates={t: v.document() for t, v in j.gates.items()},
                          sweep=j.sweep, bases_checked=all(b.checked for b in bases.values()),
                          frozen=None,
                          unchecked=unchecked(cp, st),
                          prepare={r: st.prepares[r].document for r in cp.targets
                                   if r in st.prepares})


def status_document(rt: Runtime, catalog: Catalog, base_dir: Path, plan_id: str, *,
                    ask_remotes: bool = False) -> StatusDocument:
    """``coord change status PLAN --json``: every repo's state (its candidate re-read
    from its worktree now), each verify todo's and gate's verdict on the current
    candidates, ``landable`` and its ``blockers`` (the landing rule's, the same
    :func:`coordination.change.rule.judge` that ``change land`` applies, with each
    repo's base on its remote read now: :mod:`coordination.change.standing`; a
    network remote only with ``ask_remotes``, else ``bases_checked`` is false)."""
    doc = status_of(rt, change_of(catalog, plan_id, base_dir), ask_remotes=ask_remotes)
    held = rt.freeze().get()
    doc["frozen"] = None if held is None else {**held, "at": iso(held["at"])}
    return doc


#: The order states are counted in (``coord change status``).
STATE_ORDER = (CS.landed, CS.landing, CS.verified, CS.drafted, CS.conflict, CS.reverted,
               CS.revert_failed)
#: A repo in one of these needs someone: no verified candidate, a conflict, left landed.
ATTENTION = frozenset({CS.drafted, CS.conflict, CS.revert_failed})
#: ... and, when the change stopped half-way, a repo whose landing was put back.
_STOPPED = frozenset({CS.partially_landed, CS.revert_failed})


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
    done = doc["state"] == CS.landed  # (its repos' "already landed" is no call to act)
    return [r for r in doc["repos"].values()
            if r["state"] in ATTENTION or (r["repo"] in named and not (
                done and r["state"] == CS.landed))
            or (stopped and r["state"] == CS.reverted)]


def summary(doc: StatusDocument) -> dict[str, Any]:
    """``{"repos": N, "states": counts, "waves": [{"name", "repos": N, "states"}],
    "attention": [repo documents]}`` of a status document."""
    repos = doc["repos"]
    return {"repos": len(repos), "states": counts(list(repos.values())),
            "waves": [{"name": w["name"], "repos": len(w["repos"]),
                       "states": counts([repos[r] for r in w["repos"] if r in repos])}
                      for w in doc.get("waves", [])],
            "attention": needs_attention(doc)}
