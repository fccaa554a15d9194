"""``coord change status``: per repo base, candidate, verified by, landed, state; per
verify todo and gate its verdict on the current candidates; whether the change may
land and every reason it may not (the landing rule, :mod:`coordination.change.rule`).

:func:`status_document` is the one reading the CLI (``change status --json``), the
web view and MCP call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from coordination.catalog.models import Catalog
from coordination.change.model import ChangePlan, change_of
from coordination.change.rule import Judgement, judge
from coordination.runtime.changes import FAILED_VERIFICATION, ChangeState
from coordination.runtime.context import Runtime
from coordination.status import ChangeState as CS

#: A landing step's state -> the repo's state it shows as.
_STEP_STATE = {CS.landing: CS.landing, "reverting": CS.landing, CS.landed: CS.landed,
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


class StatusDocument(ChangeDocument):
    """``coord change status --json`` (the web view's and MCP's too)."""

    landable: bool
    blockers: list[dict[str, str]]  # {"kind", "id", "why"}
    verify: dict[str, dict[str, Any]]  # todo -> {"verdict", "candidates", "why"}
    gates: dict[str, dict[str, Any]]  # todo -> {"verdict", "approvals", "why"}
    sweep: str | None  # the plan's last sweep


def repo_state(st: ChangeState, repo: str, j: Judgement) -> str:
    step = st.steps.get(repo, {})
    if step.get("state") in _STEP_STATE:
        return str(_STEP_STATE[step["state"]])
    if repo in st.conflicts:
        return CS.conflict
    return CS.verified if j.verified and not j.vetoed and j.candidates.get(repo) else CS.drafted


def document(cp: ChangePlan, st: ChangeState, train: list[str], j: Judgement) -> ChangeDocument:
    repos: dict[str, RepoDocument] = {}
    by = j.verified_by()
    for i, (name, t) in enumerate(cp.targets.items()):
        rec = st.repos.get(name)
        step = st.steps.get(name, {})
        repos[name] = RepoDocument(
            repo=name, order=i, base=t.base, remote=t.remote,
            base_sha=rec.base_sha if rec else None, candidate=j.candidates.get(name),
            worktree=rec.worktree if rec else None, verified_by=by,
            landed=step.get("landed"), reverted=step.get("revert") if step.get("state") ==
            CS.reverted else None, state=repo_state(st, name, j),
            why=step.get("why") or st.conflicts.get(name))
    states = {r["state"] for r in repos.values()}
    if j.dropped:
        state = FAILED_VERIFICATION
    elif st.state and st.state != FAILED_VERIFICATION:
        state = st.state
    elif CS.conflict in states:
        state = CS.conflict
    elif repos and states == {CS.verified}:
        state = CS.verified
    else:
        state = CS.drafted
    reason = st.reason if st.state != FAILED_VERIFICATION or j.dropped else None
    return ChangeDocument(plan=cp.plan, branch=cp.branch, land=cp.land, state=state,
                          reason=reason, order=cp.order,
                          train=train.index(cp.plan) if cp.plan in train else None, repos=repos)


def status_of(rt: Runtime, cp: ChangePlan) -> StatusDocument:
    """The status document of the change ``cp`` (see :func:`status_document`)."""
    st = rt.changes.read(cp.plan)
    j = judge(rt, cp, st)
    doc = document(cp, st, rt.changes.train(), j)
    return StatusDocument(**doc, landable=j.landable,
                          blockers=[b.document() for b in j.blockers],
                          verify={t: v.document() for t, v in j.verify.items()},
                          gates={t: v.document() for t, v in j.gates.items()},
                          sweep=j.sweep)


def status_document(rt: Runtime, catalog: Catalog, base_dir: Path, plan_id: str
                    ) -> StatusDocument:
    """``coord change status PLAN --json``: every repo's state (its candidate re-read
    from its worktree now), each verify todo's and gate's verdict on the current
    candidates, ``landable`` and its ``blockers`` (the landing rule's, the same
    :func:`coordination.change.rule.judge` that ``change land`` applies)."""
    return status_of(rt, change_of(catalog, plan_id, base_dir))
