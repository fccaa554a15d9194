"""The merge train: changes landed one after another, each verified on top of the
candidates of the changes ahead of it (as Zuul's dependent pipelines do).

A pass over the train builds each change's *train candidate* per repo: its own
commits (what its todos made, kept as ``own`` SHAs) with the candidates of the
changes ahead merged in, then runs its verify todos (``verify``, given by the
caller: the CLI runs them as sweeps). A change that fails verification leaves the
train and the pass starts again: those behind it are rebuilt from their own
commits without it and verified again. Once every change of the train is
verified, they land head first; one whose landing fails (reverted) leaves the
train, and those behind it verify again without it.

A ``land: pr`` change is landed the same way, through its pull requests: once verified
on its train candidates, those are published (each branch pushed, its pull request
updated, ``coord/verify`` posted on the new heads: :mod:`coordination.change.pulls.publish`),
then merged as ``coord change land`` merges them, only when each forge says it may.

Nothing is verified twice: a change the landing rule finds verified on its train
candidates already (the first in line with nothing ahead, verified by its sweep; one
rebuilt over the same changes ahead, into the same SHAs) is not verified again; and
a change with a rejected gate leaves the train without being verified (``rejected``).

A change is verified when the landing rule (:func:`coordination.change.rule.judge`)
finds every verify todo passed on its train candidates (the verify callback's
word alone is not enough: the records it left are). One that is not leaves the
train ``failed_verification`` with the real reason (which todo, its exit code,
its last line) and stays so until a verify todo passes on new candidates; it
lands (through :meth:`Lander.land`, the same rule) only once ahead of nothing
failing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coordination.change import git as g
from coordination.change.pulls.forges import ChangeForges
from coordination.change.landing import NOT_READY, Lander
from coordination.change.landing_evidence import current_candidates
from coordination.change.model import ChangePlan
from coordination.change.pulls.publish import Publisher
from coordination.change.reading import rejection
from coordination.change.rule import judge
from coordination.errors import CoordError
from coordination.forge.base import ForgeFactory
from coordination.runtime.changes import RepoRecord
from coordination.runtime.context import Runtime
from coordination.runtime.freeze import refuse_if_frozen
from coordination.status import ChangeHeadline
from coordination.status import ChangeState as CS

#: plan -> (its change, repo concurrency)
Resolve = Callable[[str], tuple[ChangePlan, dict[str, int]]]
#: runs a change's verify todos; None when they all passed, else why not
Verify = Callable[[ChangePlan], str | None]


def _own(rt: Runtime, cp: ChangePlan) -> dict[str, str]:
    """The change's own candidate per repo (before any train merge), kept once."""
    st = rt.changes.read(cp.plan)
    own = rt.changes.own(cp.plan)
    for repo in cp.targets:
        rec = st.repos.get(repo)
        if repo not in own and rec is not None:
            own[repo] = g.head(rec.worktree)
    rt.changes.set_own(cp.plan, own)
    return own


def _build(rt: Runtime, cp: ChangePlan, ahead: dict[str, list[tuple[str, str]]]) -> str | None:
    """Reset each repo's worktree to the change's own commits and merge the train
    candidates ahead of it; None, or why it could not (a conflict)."""
    st = rt.changes.read(cp.plan)
    own = _own(rt, cp)
    for repo, t in cp.targets.items():
        rec = st.repos.get(repo)
        if rec is None or repo not in own:
            return f"{repo}: no candidate yet (run the plan first)"
        wt = rec.worktree
        untrusted = g.untrusted_git(repo, t.checkout, t.checkout, wt, remote=t.remote,
                                    url=t.url, trusted=t.land_hooks)
        if untrusted:  # before any git runs there (a reset, a fetch, a merge)
            return untrusted
        g.git(wt, "reset", "--quiet", "--hard", own[repo], hooks=t.land_hooks)
        # what landed before it included
        base_sha = g.fetch(t.checkout, t.remote, t.base, hooks=t.land_hooks)
        # The lander's identity, the Coord-Change trailer and hooks as the landing's own
        # merges have them (a hook a todo wrote into the worktree never runs here). Dated
        # as its own commit: the same change over the same changes ahead is built into the
        # same SHAs on every pass, so what was verified on them stays verified (a pass
        # started again after a drop behind it verifies nothing twice).
        ident, _ = g.identity(wt)
        when = g.git(wt, "show", "-s", "--format=%ct", own[repo]) + " +0000"
        ident = {**ident, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
        for plan, sha in [(f"{t.remote}/{t.base}", base_sha), *ahead.get(repo, [])]:
            try:
                g.git(wt, "merge", "--no-edit", "--quiet", "-m",
                      g.trailer(f"Train: {plan} ahead of {cp.plan}", cp.plan),
                      "--end-of-options", sha, env=ident, hooks=t.land_hooks)
            except g.GitError:
                g.git(wt, "merge", "--abort", check=False, hooks=t.land_hooks)
                return f"{repo}: does not merge with {plan} ahead of it"
        head = g.head(wt)
        if head != rec.candidate or base_sha != rec.base_sha:
            rt.changes.set_repo(cp.plan, repo, RepoRecord(rec.base, rec.remote, base_sha,
                                                          head, wt))
    return None


def _unverified(rt: Runtime, cp: ChangePlan) -> str | None:
    """Why the landing rule does not find ``cp`` verified on its train candidates
    (its verify todos' records), or None."""
    j = judge(rt, cp)
    bad = [b for b in j.blockers if b.kind in ("verify", "evidence", "repo")]
    return "; ".join(str(b) for b in bad) or None


def _drop(rt: Runtime, cp: ChangePlan, why: str) -> None:
    """The change leaves the train unverified: ``failed_verification`` with ``why`` on
    the train candidates it failed on; its worktrees go back to its own commits (the
    train's merges of those ahead were never its own), which a fix is made on."""
    st = rt.changes.read(cp.plan)
    failed = current_candidates(cp, st)
    own = rt.changes.own(cp.plan)
    for repo, rec in st.repos.items():
        t = cp.targets.get(repo)
        if t is not None and g.untrusted_git(repo, t.checkout, rec.worktree, remote=t.remote,
                                             url=t.url, trusted=t.land_hooks):
            continue  # no git runs there: its worktree stays on the train's candidate
        if repo in own and failed.get(repo) not in (None, own[repo]):
            g.git(rec.worktree, "reset", "--quiet", "--hard", own[repo])
            # its base: where its own commits left the (since fetched) base
            base = g.git(rec.worktree, "merge-base", own[repo], rec.base_sha, check=False)
            rt.changes.set_repo(cp.plan, repo, RepoRecord(rec.base, rec.remote,
                                                          base or rec.base_sha, own[repo],
                                                          rec.worktree))
    rt.changes.set_own(cp.plan, {})
    rt.changes.drop(cp.plan, why, {r: s for r, s in failed.items() if s})


def _land(rt: Runtime, cp: ChangePlan, concurrency: dict[str, int],
          factory: ForgeFactory | None) -> dict[str, Any]:
    """Land ``cp`` (``land: pr``: its train candidates published first)."""
    forges = ChangeForges(cp, factory) if cp.land == "pr" else None
    if forges is not None:
        out = Publisher(rt, cp, forges).publish()
        if not out.ok:
            return {"plan": cp.plan, "state": NOT_READY, "reason": "publishing failed: " + "; ".join(
                f"{r.repo}: {r.why}" for r in out.repos if r.action == "refused")}
    return Lander(rt, cp, concurrency=concurrency, forges=forges).land().document()


def run_train(rt: Runtime, resolve: Resolve, verify: Verify, *,
              factory: ForgeFactory | None = None) -> list[dict[str, Any]]:
    """Run the train to its end; one result per change that left it, in order
    (``factory``: the forges of ``land: pr`` changes, default each repo's own)."""
    results: list[dict[str, Any]] = []
    while True:
        train = rt.changes.train()
        if not train:
            return results
        # A freeze stops the train where it is (FleetFrozen), never drops a change from it.
        refuse_if_frozen(rt, "run the merge train")
        ahead: dict[str, list[tuple[str, str]]] = {}
        failed = False
        gone: set[str] = set()  # left the train rejected, this pass
        for plan in train:
            cp: ChangePlan | None = None
            try:
                cp, _ = resolve(plan)
                rejected = rejection(judge(rt, cp))
                if rejected:  # never verified: no verification lifts a rejected gate
                    rt.changes.leave_train(plan)
                    rt.changes.set_own(plan, {})
                    results.append({"plan": plan, "state": ChangeHeadline.rejected,
                                    "reason": rejected})
                    gone.add(plan)
                    continue  # never ahead of anything: those behind stay as they are
                # verified already on these candidates (the first in line with nothing
                # ahead, one rebuilt as it was): not run again
                why = _build(rt, cp, ahead) or (_unverified(rt, cp) and (
                    verify(cp) or _unverified(rt, cp)))
            except CoordError as exc:
                why = str(exc)
            if why or cp is None:
                why = why or f"{plan} is not a change"
                if cp is not None:  # failed_verification, with why, until verified again
                    _drop(rt, cp, why)
                rt.changes.leave_train(plan)
                results.append({"plan": plan, "state": CS.failed_verification, "reason": why})
                failed = True
                break  # those behind verify again without it
            st = rt.changes.read(plan)
            for repo in cp.targets:
                ahead.setdefault(repo, []).append((plan, st.repos[repo].candidate))
        if failed:
            continue
        for plan in [p for p in train if p not in gone]:
            cp, concurrency = resolve(plan)
            refuse_if_frozen(rt, f"land {plan} (the merge train)")
            try:
                out = _land(rt, cp, concurrency, factory)
            except CoordError as exc:
                out = {"plan": plan, "state": NOT_READY, "reason": str(exc)}
            rt.changes.leave_train(plan)
            rt.changes.set_own(plan, {})
            results.append(out)
            if out["state"] != CS.landed:
                break  # those behind verify again without it
