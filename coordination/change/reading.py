"""``coord change status``: per repo base, candidate, verified by, landed, state."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

from coordination.catalog.models import Catalog
from coordination.change.model import ChangePlan, change_of
from coordination.runtime.changes import ChangeState
from coordination.runtime.context import Runtime
from coordination.status import CHANGE_ENDED
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


# replaced by the landing rule's version at merge
# (the web view renders any document of this shape: its contract is the landing rule's;
# this one fills ``verify``, ``gates``, ``blockers`` and ``sweep`` from the records and the
# plan's last sweep as they are today, without the rule's re-read of each worktree's HEAD)
#: A verify or gate todo's status in the plan's last sweep -> its verdict.
_VERIFY_ENDED = {"failed": "failed", "skipped": "skipped", "cancelled": "cancelled"}
_GATE_VERDICT = {"succeeded": "approved", "awaiting_approval": "waiting", "failed": "rejected",
                 "cancelled": "expired"}
#: Sweeps looked through for the plan's last one (newest first).
_LAST_SWEEPS = 200


def last_sweep(rt: Runtime, plan_id: str) -> str | None:
    """The newest sweep of ``plan_id`` that Redis still keeps, or None."""
    for rec in rt.checkpoints.list_sweeps(limit=_LAST_SWEEPS):
        if rec.get("plan") == plan_id:
            return str(rec["id"])
    return None


# replaced by the landing rule's version at merge
def status_document(rt: Runtime, catalog: Catalog, base_dir: Path,
                    plan_id: str) -> dict[str, Any]:
    """``coord change status --json``: the change document plus ``landable``,
    ``blockers``, ``verify``, ``gates`` and ``sweep`` (the plan's last sweep)."""
    cp = change_of(catalog, plan_id, base_dir)
    st = rt.changes.read(plan_id)
    doc: dict[str, Any] = dict(document(cp, st, rt.changes.train()))
    sweep = last_sweep(rt, plan_id)
    gate_ids = [t.id for t in catalog.plan_todos(plan_id) if t.gate is not None]
    cps = rt.checkpoints.get_all(sweep, [*cp.verify_todos, *gate_ids]) if sweep else {}
    current = {name: r.candidate for name, r in st.repos.items()}
    verify: dict[str, dict[str, Any]] = {}
    for t in cp.verify_todos:
        rec = st.verifies.get(t)
        shas = rec.get("shas") if isinstance(rec, dict) else None
        ended = _VERIFY_ENDED.get(str((cps.get(t) or {}).get("status")))
        if ended:
            verdict, why = ended, (cps.get(t) or {}).get("reason") or f"{t} {ended} in {sweep}"
        elif isinstance(shas, dict) and shas and all(
                current.get(r) == shas.get(r) for r in cp.order):
            verdict, why = "passed", None
        elif isinstance(shas, dict) and shas:
            verdict, why = "stale", "a candidate moved since this verification"
        else:
            verdict, why = "missing", f"{t} has not verified the current candidates"
        verify[t] = {"verdict": verdict, "candidates": shas if isinstance(shas, dict) else None,
                     "why": why}
    gates: dict[str, dict[str, Any]] = {}
    for g in gate_ids:
        gcp = cps.get(g) or {}
        verdict = _GATE_VERDICT.get(str(gcp.get("status")), "missing")
        approvals = [str(a) for a in gcp.get("approvals") or []]
        gates[g] = {"verdict": verdict, "approvals": approvals,
                    "why": None if verdict == "approved" else (
                        gcp.get("reason") or f"gate {g} is {verdict}")}
    blockers = [{"kind": "verify", "id": t, "why": v["why"] or v["verdict"]}
                for t, v in verify.items() if v["verdict"] != "passed"]
    blockers += [{"kind": "gate", "id": g, "why": v["why"] or v["verdict"]}
                 for g, v in gates.items() if v["verdict"] != "approved"]
    blockers += [{"kind": "repo", "id": r, "why": why} for r, why in st.conflicts.items()]
    doc.update(landable=not blockers and doc["state"] not in (CS.landing, *CHANGE_ENDED),
               blockers=blockers, verify=verify, gates=gates, sweep=sweep)
    return doc
