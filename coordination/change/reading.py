"""``coord change status``: per repo base, candidate, verified by, landed, state."""

from __future__ import annotations

from typing import TypedDict

from coordination.change.model import ChangePlan
from coordination.runtime.changes import ChangeState
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
    candidate: str | None
    worktree: str | None
    verified_by: list[str]
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


def repo_state(st: ChangeState, repo: str) -> str:
    step = st.steps.get(repo, {})
    if step.get("state") in _STEP_STATE:
        return str(_STEP_STATE[step["state"]])
    if repo in st.conflicts:
        return CS.conflict
    return CS.verified if st.verified_by(repo) else CS.drafted


def document(cp: ChangePlan, st: ChangeState, train: list[str]) -> ChangeDocument:
    repos: dict[str, RepoDocument] = {}
    for i, (name, t) in enumerate(cp.targets.items()):
        rec = st.repos.get(name)
        step = st.steps.get(name, {})
        repos[name] = RepoDocument(
            repo=name, order=i, base=t.base, remote=t.remote,
            base_sha=rec.base_sha if rec else None, candidate=rec.candidate if rec else None,
            worktree=rec.worktree if rec else None, verified_by=st.verified_by(name),
            landed=step.get("landed"), reverted=step.get("revert") if step.get("state") ==
            CS.reverted else None, state=repo_state(st, name),
            why=step.get("why") or st.conflicts.get(name))
    states = {r["state"] for r in repos.values()}
    if st.state:
        state = st.state
    elif CS.conflict in states:
        state = CS.conflict
    elif repos and states == {CS.verified}:
        state = CS.verified
    else:
        state = CS.drafted
    return ChangeDocument(plan=cp.plan, branch=cp.branch, land=cp.land, state=state,
                          reason=st.reason, order=cp.order,
                          train=train.index(cp.plan) if cp.plan in train else None, repos=repos)
