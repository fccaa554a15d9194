"""Reverting a change landed by pull request (``land: pr``): a revert pull request per
merged repo, consumers first.

``coord change revert`` on such a change:

1. for each repo its landing merged, consumers first, makes the revert commit (the
   change taken back out of the base's head now, as :func:`coordination.change.revert.
   undo_commit` makes it: deterministic, by the lander, ``Coord-Change`` trailer),
   pushes it to ``coord-revert/<branch>`` (never the base) and opens a pull request of
   it into the base, labelled ``coord:PLAN``, its body naming what it takes back out;
   the repo's step says ``reverting`` (by :data:`REVERT_PR`) with that commit;
2. then verifies the revert candidates (each repo's revert commit, the others' base):
   the change's verify todos run on them together, as a landing's candidates, and
   ``coord/verify`` is posted on each revert pull request's head from that evidence
   (:mod:`coordination.change.revert_verify`); none merges before they passed;
3. then merges them, consumers first, each only when its forge says it may (its
   protection's reviews and checks, ``coord/verify`` among them: a revert is reviewed
   like any change) and pinned to the revert commit; where the base requires a merge
   queue (GitHub: a ruleset's ``merge_queue`` rule; GitLab: merge trains) it is added
   to the queue instead, pinned to the revert commit, and waited for as a landing's
   (:mod:`coordination.change.pulls.merge_queue`: one still queued, a revert cut off,
   is not enqueued twice), the next only once the queue merged it; it stops at the
   first that may not merge, or that the queue removed unmerged, saying why: running it
   again carries on (a revert the queue removed is enqueued again once its forge
   allows). A revert pull request merged by hand counts as merged.

The change ends ``reverted`` once every revert pull request merged; until then it
stays ``landed`` (or ``partially_landed``) and ``change status`` shows each repo
``reverting`` with its revert pull request.
"""

from __future__ import annotations

import time

from coordination.change import git as g
from coordination.change.pulls import pull_body
from coordination.change.pulls.forges import ChangeForges, label
from coordination.change.pulls.merge_queue import QUEUE_NAMES, in_queue, through_queue
from coordination.change.landing import beating, lander
from coordination.change.manifest import Manifest, ManifestRepo
from coordination.change.model import ChangePlan
from coordination.change.revert import Conflict, RepoPlan, Reverted, Reverter, undo_commit
from coordination.change.revert_verify import Verify, post_verdict, verify_reverts
from coordination.errors import ForgeError, HeadMoved, MergeRefused
from coordination.forge.base import ForgeFactory, NewPullRequest, QueueKind, StatusState
from coordination.runtime.change_records import REVERT_PR, PullRecord, StepRecord
from coordination.runtime.changes import ChangeState
from coordination.runtime.context import Runtime
from coordination.status import ChangeState as CS
from coordination.status import StepState as Step
from coordination.status import EventKind

#: The branch a repo's revert commit is pushed to.
REVERT_BRANCH = "coord-revert/{branch}"


def revert_branch(branch: str) -> str:
    return REVERT_BRANCH.format(branch=branch)


class PullReverter(Reverter):
    """A :class:`Reverter` that reverts a change landed by pull request through revert
    pull requests (one landed otherwise, as its manifest says, as before). ``verify``
    runs the change's verify todos on the revert candidates (the CLI's: ``coord todo
    run`` each); None: only evidence already recorded counts."""

    verify: Verify | None = None

    def check(self) -> tuple[list[RepoPlan], Manifest]:
        st, m = self._landed()
        if m["land"] != "pr":
            return super().check()
        return check(self, st, m), m

    def revert(self) -> Reverted:
        st, m = self._landed()
        if m["land"] != "pr":
            return super().revert()
        self.land_mode = m["land"]
        self.store.set_lander(m["plan"], lander("revert"))  # until it ends
        with beating(self.rt, m["plan"]):
            return revert(self, st, m)


def reverter_for(rt: Runtime, cp: ChangePlan, *, concurrency: dict[str, int] | None = None,
                 factory: ForgeFactory | None = None, verify: Verify | None = None) -> Reverter:
    """The reverter of ``cp``: revert pull requests for what its landing merged through
    a forge (their candidates verified by ``verify``), revert commits pushed otherwise
    (its manifest says which)."""
    rv = PullReverter(rt, cp, concurrency=concurrency, forges=ChangeForges(cp, factory))
    rv.verify = verify
    return rv


def revert(rv: Reverter, st: ChangeState, m: Manifest) -> Reverted:
    """Open (then merge, when the forges allow) the revert pull requests (see the
    module)."""
    plan = m["plan"]
    entries = list(reversed(m["repos"]))  # consumers first
    order = [e["repo"] for e in entries]
    todo = [e for e in entries if st.step(e["repo"]).state in (Step.landed, Step.reverting)
            and st.step(e["repo"]).landed]
    for e in todo:  # every revert pull request opened first: reviewers see them all
        if st.step(e["repo"]).state == Step.landed:
            why = _open(rv, m, e)
            if why:
                return _end(rv, m, order, why)
    if any(st.step(e["repo"]).state in (Step.landed, Step.reverting) for e in todo):
        why = _verified(rv, m)  # the revert candidates verified, coord/verify posted
        if why:
            return _end(rv, m, order, why)
    for e in todo:  # then merged in order, each when its forge allows
        why = _merge(rv, m, e)
        if why:
            return _end(rv, m, order, why)
    states = rv._states(m)
    if not any(s in (Step.landed, Step.reverting) for s in states.values()):
        reason = f"reverted by coord change revert (revert pull requests: {', '.join(order)})"
        rv.store.end_landing(plan, CS.reverted, reason, rv.rt.events.prepare(
            EventKind.change_reverted, plan=plan, reason="coord change revert",
            state=CS.reverted, left_landed=[]))
        return Reverted(plan, CS.reverted, None, order, reverted=[
            r for r, s in states.items() if s == Step.reverted], states=states, notes=rv.notes)
    return _end(rv, m, order, None)


def _end(rv: Reverter, m: Manifest, order: list[str], why: str | None) -> Reverted:
    """Not every revert merged yet: the change stays as it is (no process reverts it
    now), ``reverting`` said with why."""
    rv.store.set_lander(m["plan"], None)
    states = rv._states(m)
    pulls = rv.store.read(m["plan"]).revert_pulls
    waiting = [f"{r} #{pulls[r].number}" for r in order if r in pulls
               and states.get(r) == Step.reverting]
    reason = (why or "waiting for the revert pull requests to be approved") + (
        f" (open: {', '.join(waiting)}; coord change revert {m['plan']} again merges each "
        "once its forge allows, consumers first)" if waiting else "")
    return Reverted(m["plan"], Step.reverting, reason, order,
                    reverted=[r for r, s in states.items() if s == Step.reverted],
                    states=states, notes=rv.notes)


def _verified(rv: Reverter, m: Manifest) -> str | None:
    """Verify the revert candidates and post ``coord/verify`` on each open revert pull
    request's head from that evidence: None when they passed, else why not (nothing
    merges)."""
    if not any(st == Step.reverting for st in rv._states(m).values()):
        return None  # every revert pull request merged already
    verdict = verify_reverts(rv, m, getattr(rv, "verify", None))
    failed = post_verdict(rv, m, verdict) if verdict.candidates else None
    if verdict.state is StatusState.success:
        return failed
    word = "failed on" if verdict.state is StatusState.failure else "have not passed on"
    return (f"the change's verify todos {word} the revert candidates "
            f"({_set(verdict.candidates)}): {verdict.why}; no revert pull request is "
            "merged unverified" + (f" ({failed})" if failed else ""))


def _set(cands: dict[str, str]) -> str:
    return ", ".join(f"{r} {s[:12]}" for r, s in cands.items()) or "not made"


def _open(rv: Reverter, m: Manifest, e: ManifestRepo) -> str | None:
    """Make ``e``'s revert commit, push it to the revert branch, open its pull request;
    None, or why not."""
    repo, wt, base = e["repo"], e["worktree"], e["base"]
    cp = rv.cp
    forge = rv.forges.of(repo)
    with rv._lease(repo) as lease:
        st = rv.store.read(m["plan"])
        step = st.step(repo)
        if step.state != Step.landed or not step.landed:
            return None
        landed = step.landed
        now, why = rv._fetch_base(e)
        if why or now is None:
            return why or f"{repo}: {e['remote']}/{base} is gone"
        problem = rv._unrevertible(e, landed, now)
        if problem:
            return problem
        pre = step.pre if step.pre and g.is_ancestor(wt, step.pre, landed) else \
            g.git(wt, "rev-parse", "--verify", f"{landed}^1")
        try:
            commit = undo_commit(m, wt, landed, pre, now, rv._identity(e), rv._message(m, e))
        except Conflict as exc:
            return rv._conflict(e, now, exc)
        branch = revert_branch(cp.branch)
        there = g.remote_sha(wt, e["remote"], branch, hooks=rv._hooks(repo))
        mine = st.revert_pulls.get(repo)
        if there not in (None, commit) and not (mine and there == mine.head):
            return (f"{repo}: {e['remote']}/{branch} holds {there[:12] if there else ''}, "
                    "not coord's revert: coord does not overwrite it")
        if there != commit:
            refused = g.push(wt, e["remote"], commit, branch, there or "",
                             hooks=rv._hooks(repo))
            if refused:
                return f"{repo}: pushing {branch} was refused: {refused}"
        pull = st.pulls.get(repo)
        try:
            pr = forge.find_pr(branch, base=base) or forge.open_pr(NewPullRequest(
                head=branch, base=base, title=f"Revert {pull_body.title(cp)}",
                body=pull_body.revert_body(cp, repo, pull.number if pull else None,
                                           pull.url if pull else None, landed, commit),
                labels=(label(cp.plan),)))
        except ForgeError as exc:
            return f"{repo}: opening its revert pull request: {exc.message}"
        rec = PullRecord.new(kind=forge.kind, project=forge.project, number=pr.number,
                             url=pr.url, branch=branch, base=base, head=commit, by="revert",
                             at=time.time())
        # (through which queue it will merge, as its base says now: status says it)
        rv.store.set_pull(m["plan"], repo, rec.but(merge_queue=_base_queue(rv, e)),
                          revert=True)
        rv._step(m, lease, repo, StepRecord.new(state=Step.reverting, landed=landed, pre=pre,
                                                over=now, revert=commit, by=REVERT_PR))
    return None


def _merge(rv: Reverter, m: Manifest, e: ManifestRepo) -> str | None:
    """Merge ``e``'s revert pull request when its forge allows it (merged by hand:
    taken as merged), through its base's merge queue where the base requires one
    (:func:`coordination.change.pulls.merge_queue.through_queue`, as a landing's: one
    queued already is waited for, never enqueued twice); None when it is merged, else
    why not yet."""
    repo = e["repo"]
    with rv._lease(repo) as lease:
        st = rv.store.read(m["plan"])
        step, pull = st.step(repo), st.revert_pulls.get(repo)
        if step.state == Step.reverted:
            return None
        if step.state != Step.reverting or pull is None:
            return f"{repo}: no revert pull request (its step is {step.state})"
        forge = rv.forges.of(repo)
        ref = f"{repo}: revert pull request #{pull.number} ({pull.url})"
        try:
            pr = forge.get_pr(pull.number)
            if pr.merged:
                sha = pr.merge_sha or pr.head_sha
            elif not pr.is_open:
                return f"{ref} was closed by hand: reopen it, or revert {repo} by hand"
            else:
                mg = forge.mergeability(pull.number)
                if pull.document.get("merge_queue") != mg.merge_queue:  # (status says it)
                    rv.store.set_pull(m["plan"], repo, pull.but(merge_queue=mg.merge_queue),
                                      revert=True)
                # (in its queue already, a revert cut off: the queue's to merge)
                entry = (in_queue(forge, pull.number) if mg.merge_queue and not mg.mergeable
                         else None)
                if not mg.mergeable and entry is None:
                    said = "; ".join(f"{b.kind}: {b.detail}" for b in mg.blockers)
                    return f"{ref} is not mergeable yet: {said or mg.forge_state}"
                if mg.merge_queue:
                    merged, why = through_queue(forge, pull.number, pull.head, ref,
                                                mg.merge_queue, entry=entry,
                                                again=f"coord change revert {m['plan']}",
                                                poll=rv.rt.settings.merge_queue_poll)
                    if merged is None:
                        return why
                    sha = merged.merge_sha or pull.head
                else:
                    sha = forge.merge(pull.number, sha=pull.head, method="merge").sha
        except HeadMoved as exc:
            return f"{ref}: its head moved to {(exc.actual or '')[:12]}: not merged"
        except MergeRefused as exc:
            return f"{ref}: the forge refused to merge it: {exc.reason}"
        except ForgeError as exc:
            return f"{ref}: {exc.message}"
        rv._step(m, lease, repo, step.but(state=Step.reverted, revert=sha),
                 rv.rt.events.prepare(EventKind.repo_reverted, plan=m["plan"], repo=repo,
                                      sha=sha, reason="coord change revert"))
    return None


def check(rv: Reverter, st: ChangeState, m: Manifest) -> list[RepoPlan]:
    """``--dry-run``: per repo (consumers first) what reverting by pull request would do
    (a base that requires a merge queue, as its forge says now: through it)."""
    out: list[RepoPlan] = []
    for e in reversed(m["repos"]):
        repo, step = e["repo"], st.step(e["repo"])
        pull = st.revert_pulls.get(repo)
        if step.state == Step.reverted:
            out.append(RepoPlan(repo, "skip", step.landed, why="already reverted"))
        elif step.state == Step.reverting and pull is not None:
            queue = _base_queue(rv, e)
            how = (f"add its revert pull request #{pull.number} ({pull.url}) to the "
                   f"{QUEUE_NAMES[queue]}, pinned to its revert commit, and wait for the "
                   f"{QUEUE_NAMES[queue]} to merge it," if queue else
                   f"merge its revert pull request #{pull.number} ({pull.url})")
            out.append(RepoPlan(repo, "revert", step.landed, queue=queue, why=(
                f"would {how} once the change's verify todos passed on the revert "
                "candidates and its forge allows")))
        elif step.state == Step.landed and step.landed:
            plan = rv._check_one(m, e, step)
            if plan.action == "revert":
                plan.queue = _base_queue(rv, e)
                how = (f"add it to the {QUEUE_NAMES[plan.queue]} (pinned to the revert "
                       f"commit) once its forge allows, and wait for the "
                       f"{QUEUE_NAMES[plan.queue]} to merge it" if plan.queue else
                       "merge it once its forge allows")
                plan.why = (f"would open a revert pull request from "
                            f"{revert_branch(rv.cp.branch)}, verify the revert candidates "
                            f"with the change's verify todos, then {how}")
            out.append(plan)
        else:
            out.append(RepoPlan(repo, "skip", why="it never merged"))
    return out


def _base_queue(rv: Reverter, e: ManifestRepo) -> QueueKind | None:
    """The merge queue ``e``'s base requires, as its forge says now (its protection:
    GitHub's rulesets, GitLab's project); None: a direct merge, or the forge could not
    say (noted)."""
    try:
        return rv.forges.of(e["repo"]).protection(e["base"]).merge_queue
    except ForgeError as exc:
        note = (f"{e['repo']}: whether {e['base']} requires a merge queue could not be read "
                f"({exc.message}): its revert is merged as its forge then says")
        if note not in rv.notes:
            rv.notes.append(note)
        return None
