"""Reverts verified like changes (``land: pr``): the revert candidates run the change's
verify todos together, and ``coord/verify`` is posted on each revert pull request's head
from that evidence, so a branch protection that requires it never blocks coord's own
revert, and no revert merges unverified.

The **revert candidates** are what every repo of the change will hold once each revert
pull request merged: a repo with an open revert pull request, its revert commit; any
other repo (never landed, or reverted already), its base on the remote now. Each
repo's worktree is put on its revert candidate (as the merge train puts a change's
worktrees on its train candidates), so a verify todo run now is given exactly that set
(:func:`coordination.change.todos.enter`) and its record is about it.

Then the landing rule's verify verdicts (:func:`coordination.change.rule.judge`) on that
set say the status: ``success`` when every verify todo passed on it, ``failure`` when
one failed (or was skipped, cancelled, its record refused), else ``pending``. When they
do not pass (not run on this set yet, or failed: each ``coord change revert`` is a new
try), ``verify`` (the CLI's: each verify todo as ``coord todo run``, as the train runs
them) runs them once and the rule is asked again: its records, never the callback's
word, decide. A set verified already is not run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from coordination.change import git as g
from coordination.change.model import ChangePlan
from coordination.change.rule import judge
from coordination.errors import CoordError, ForgeError
from coordination.forge.base import CommitStatus, StatusState
from coordination.runtime.changes import RepoRecord
from coordination.status import StepState as Step

if TYPE_CHECKING:
    from coordination.change.manifest import Manifest
    from coordination.change.revert import Reverter

#: runs a change's verify todos (on its worktrees as they are); None when each passed,
#: else why not (the train's :data:`coordination.change.train.Verify`)
Verify = Callable[[ChangePlan], "str | None"]


@dataclass(frozen=True)
class RevertVerdict:
    """The revert candidates' verification: the status posted, and why not success."""

    state: StatusState
    candidates: dict[str, str]
    why: str | None = None


def revert_candidates(rv: Reverter, m: Manifest) -> tuple[dict[str, str], str | None]:
    """repo -> its revert candidate (see the module), each worktree put on it; ({}, why)
    when one cannot be (no git runs in a worktree whose own config would run a
    program; a base gone)."""
    plan = m["plan"]
    st = rv.store.read(plan)
    out: dict[str, str] = {}
    for repo, t in rv.cp.targets.items():
        rec = st.repos.get(repo)
        if rec is None or not rec.worktree:
            return {}, f"{repo}: no worktree of the change to verify its revert in"
        untrusted = rv._untrusted(repo, rec.worktree, remote=t.remote)
        if untrusted:
            return {}, untrusted
        step, pull = st.step(repo), st.revert_pulls.get(repo)
        hooks = rv._hooks(repo)
        try:
            if step.state == Step.reverting and step.revert and pull is not None:
                sha = step.revert
            else:
                base = g.fetch(rec.worktree, t.remote, t.base, hooks=hooks)
                if base is None:
                    return {}, f"{repo}: {t.remote}/{t.base} is gone"
                sha = base
            if g.read_head(rec.worktree) != sha:
                g.git(rec.worktree, "reset", "--quiet", "--hard", sha, hooks=hooks)
        except g.GitError as exc:
            return {}, f"{repo}: putting its worktree on the revert candidate: {exc}"
        if rec.candidate != sha:
            rv.store.set_repo(plan, repo, RepoRecord(rec.base, rec.remote, rec.base_sha, sha,
                                                     rec.worktree))
        out[repo] = sha
    return out, None


def _judged(rv: Reverter, cands: dict[str, str]) -> tuple[StatusState, str | None]:
    j = judge(rv.rt, rv.cp, None, dict(cands), remotes=False)
    if j.verified and not j.vetoed and not j.dropped:
        return StatusState.success, None
    said = "; ".join(f"{t}: {v.verdict}" + (f" ({v.why})" if v.why else "")
                     for t, v in j.verify.items() if v.verdict != "passed")
    if not j.verify:
        said = f"{rv.cp.plan} has no verify todo"
    return (StatusState.failure if j.vetoed else StatusState.pending), said or "not verified"


def verify_reverts(rv: Reverter, m: Manifest, verify: Verify | None) -> RevertVerdict:
    """Verify the revert candidates (see the module), running the verify todos when
    they have not passed on them yet; nothing is posted here."""
    cands, why = revert_candidates(rv, m)
    if why:
        return RevertVerdict(StatusState.pending, {}, why)
    state, why = _judged(rv, cands)
    if state is not StatusState.success and verify is not None:
        try:
            ran = verify(rv.cp)
        except CoordError as exc:
            ran = str(exc)
        state, why = _judged(rv, cands)
        if state is not StatusState.success and ran:
            why = f"{why}; {ran}" if why else ran
    return RevertVerdict(state, cands, why)


def post_verdict(rv: Reverter, m: Manifest, verdict: RevertVerdict) -> str | None:
    """``coord/verify`` on each open revert pull request's head, from ``verdict`` (only
    where it differs from what coord posted there last); None, or why one failed."""
    plan = m["plan"]
    st = rv.store.read(plan)
    words = {StatusState.success: "the revert candidates passed every verify todo",
             StatusState.failure: "a verify todo failed on the revert candidates",
             StatusState.pending: "the revert candidates are not verified yet"}
    for repo, pull in st.revert_pulls.items():
        if st.step(repo).state != Step.reverting or pull.head is None:
            continue
        if (pull.status_sha, pull.status) == (pull.head, verdict.state.value):
            continue
        try:
            rv.forges.of(repo).post_status(pull.head, CommitStatus(
                state=verdict.state, description=words.get(verdict.state, "")))
        except ForgeError as exc:
            return f"{repo}: posting coord/verify on its revert pull request: {exc.message}"
        rv.store.set_pull(plan, repo, pull.but(status_sha=pull.head, status=verdict.state.value),
                          revert=True)
    return None
