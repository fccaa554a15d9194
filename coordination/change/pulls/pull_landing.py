"""Landing by pull request (``land: pr``): each repo's pull request merged through its
forge, providers first, each pinned to the head coord verified.

Prepare (:meth:`coordination.change.landing.Lander.prepare`) judges the landing rule
with every pull request as its forge says it now (read fresh, never cached):
published, open, its head the candidate, and mergeable as the forge says (reviews as
its protection requires, required checks green, no conflict). Then, per repo in
order, under its repo lease (:func:`merge_one`):

- the pull request is read again: merged or closed by hand since is noticed and stops
  the landing (never overwritten); a head that is not the verified candidate stops it
  before any merge is asked;
- the forge is asked whether it would merge it *now* (a provider merged before it may
  have changed that), then to merge it pinned to the candidate (GitHub and GitLab
  ``sha``, Gitea ``head_commit_id``): a head that moved meanwhile is refused by the
  forge itself (``HeadMoved``), never merged;
- the step is recorded ``landing`` before the merge is asked, ``landed`` with the
  commit the merge left on the base after; a landing killed in between is carried on:
  a pull request merged at the candidate is its own merge (nothing is merged twice).

A base that requires a merge queue (GitHub: a ruleset's ``merge_queue`` rule; GitLab: a
project that runs merge trains), as the forge's mergeability says, takes no direct
merge: the pull request is enqueued instead, pinned to the candidate (GitHub: GraphQL
``enqueuePullRequest`` with ``expectedHeadOid``; GitLab: the merge request with
``auto_merge`` and ``sha``), and the landing waits, its repo lease held, polling the
queue's entry (:mod:`coordination.change.pulls.merge_queue`, which a revert shares;
one read each: the entry, the pull request's state, head and merge) until the queue
merged it (the next repo is landed then: a consumer is enqueued only once its providers
merged) or removed it unmerged (the landing stops, naming the entry's last state and the
forge's reason when it gives one). A queue still busy after
:data:`~coordination.change.pulls.merge_queue.QUEUE_WAIT` seconds leaves the landing
under way: ``land`` again carries on (a pull request still queued is not enqueued
twice). Where the base names a queue and the forge calls the pull request not mergeable
now, its queue entry is read first: one still queued (its checks running in the queue,
which a forge may report as not mergeable) is waited for as the first landing would,
never recorded ``not_landed`` while the queue may still merge it.

There is no undo a forge would take without review: a merge refused mid-way stops the
landing (:func:`stop`): ``partially_landed`` naming the pull request and the forge's
reason and what merged (``reverted``, nothing merged, when it was the first);
``coord change revert`` opens revert pull requests for what merged
(:mod:`coordination.change.pulls.pull_revert`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from coordination.change import git as g
from coordination.change.blockers import short
from coordination.change.pulls.forges import ChangeForges
from coordination.change.pulls.merge_queue import forge_refused, in_queue, through_queue
from coordination.change.manifest import Manifest, ManifestRepo
from coordination.errors import ForgeError
from coordination.forge.base import Forge, PullRequest, QueueEntry, QueueKind
from coordination.runtime.change_records import StepRecord
from coordination.runtime.changes import ChangeStore
from coordination.runtime.context import Runtime
from coordination.runtime.events import Prepared as Said
from coordination.runtime.leases import Lease
from coordination.status import ChangeState as CS
from coordination.status import StepState as Step
from coordination.status import EventKind


class Steps(Protocol):
    """What a pull request's merge is done with: the lander's leases, fenced step
    writes and faults (:class:`coordination.change.landing.Lander`)."""

    rt: Runtime
    store: ChangeStore
    fault: Callable[[str, str], None]

    @property
    def forges(self) -> ChangeForges: ...

    def _lease(self, repo: str) -> AbstractContextManager[Lease]: ...

    def _step(self, m: Manifest, lease: Lease, repo: str, rec: StepRecord,
              said: Said | None = None) -> None: ...

    def _hooks(self, repo: str) -> bool: ...


def merge_one(ld: Steps, m: Manifest, e: ManifestRepo, step: StepRecord) -> str | None:
    """Merge ``e``'s pull request (see the module): None, or why the landing stops."""
    repo, number, cand = e["repo"], int(e.get("pr") or 0), e["candidate"]
    ref = f"{repo}: pull request #{number}"
    if not number:
        return f"{repo}: the manifest names no pull request (coord change publish {m['plan']})"
    forge = ld.forges.of(repo)
    with ld._lease(repo) as lease:
        try:
            pr = forge.get_pr(number)
        except ForgeError as exc:
            return f"{ref}: the forge could not be read: {exc.message}"
        why = _not_ours(ld, m, e, pr, ref)
        if why:  # (before anything: not even a merge done before is taken as this one)
            ld._step(m, lease, repo, StepRecord.new(state=Step.not_landed, why=why))
            return why
        if step.state and pr.merged:  # resumed: did the merge asked before happen?
            if pr.head_sha == cand and pr.merge_sha:
                _landed(ld, m, lease, e, pr.merge_sha, step.pre)
                return None
            return (f"{ref} was merged at {short(pr.head_sha)}, not the verified "
                    f"{short(cand)}: not by this landing")
        why = _refusal(ref, pr, cand)
        queue: QueueKind | None = None
        entry: QueueEntry | None = None
        if not why:
            why, queue = _unmergeable(ref, forge, number)
        if why and queue:  # in the queue already (a landing cut off): the queue's to merge
            entry = in_queue(forge, number)
            why = None if entry is not None else why
        if why:
            ld._step(m, lease, repo, StepRecord.new(state=Step.not_landed, why=why))
            return why
        # (queued by the landing cut off: the base it recorded before it enqueued)
        pre = step.pre if entry is not None and step.state == Step.landing and step.pre \
            else _base_now(ld, e)
        ld._step(m, lease, repo, StepRecord.new(state=Step.landing, pre=pre))
        ld.fault("before-land", repo)
        if queue:
            return _through_queue(ld, m, lease, e, pr, pre, queue, entry)
        try:
            res = forge.merge(number, sha=cand, method=_method(m))  # type: ignore[arg-type]
        except ForgeError as exc:
            why = forge_refused(f"{ref} ({pr.url})", cand, exc, "merged", "merge it",
                                "merging it")
        else:
            ld.fault("after-land", repo)
            _landed(ld, m, lease, e, res.sha, pre)
            return None
        ld._step(m, lease, repo, StepRecord.new(state=Step.not_landed, why=why))
        return why


def _through_queue(ld: Steps, m: Manifest, lease: Lease, e: ManifestRepo, pr: PullRequest,
                   pre: str | None, kind: QueueKind,
                   entry: QueueEntry | None = None) -> str | None:
    """Enqueue ``pr`` pinned to the candidate (unless a landing before this one did:
    ``entry``) and wait until the queue merged it (None) or removed it (why the landing
    stops): :func:`coordination.change.pulls.merge_queue.through_queue`."""
    repo = e["repo"]
    merged, why = through_queue(ld.forges.of(repo), pr.number, e["candidate"],
                                f"{repo}: pull request #{pr.number} ({pr.url})", kind,
                                again=f"coord change land {m['plan']}", entry=entry,
                                poll=ld.rt.settings.merge_queue_poll)
    if merged is None:
        ld._step(m, lease, repo, StepRecord.new(state=Step.not_landed, why=why))
        return why
    _landed(ld, m, lease, e, merged.merge_sha or "", pre)
    return None


def _not_ours(ld: Steps, m: Manifest, e: ManifestRepo, pr: PullRequest, ref: str) -> str | None:
    """Why ``pr`` (the manifest's pull request of ``e``, as its forge says it now) is not
    this change's to merge: its base is not the repo's landing base (the signed
    manifest's), or the sealed pull request record names another number (#78: a number
    swapped in Redis would merge another pull request of the same head elsewhere)."""
    repo = e["repo"]
    if pr.base_branch != e["base"]:
        return (f"{ref} ({pr.url}) is into {pr.base_branch}, not {e['base']}, the base "
                f"{repo} lands on: not merged")
    st = ld.store.read(m["plan"])
    rec = st.pulls.get(repo)
    if rec is None:
        said = st.refused_pulls.get(f"pr:{repo}")
        return (f"{ref}: " + (f"{said}: not taken" if said else
                              "no pull request record of it") + ": not merged")
    if rec.number != pr.number:
        return (f"{ref}: the sealed pull request record names #{rec.number}, not "
                f"#{pr.number}: not merged")
    return None


def _refusal(ref: str, pr: PullRequest, cand: str) -> str | None:
    """Why ``pr`` may not be merged on the candidate ``cand`` whatever the forge says."""
    if pr.merged:
        return (f"{ref} ({pr.url}) was merged by hand"
                + (f" (as {short(pr.merge_sha)})" if pr.merge_sha else "")
                + ", not by this landing: coord merges nothing over it")
    if not pr.is_open:
        return f"{ref} ({pr.url}) was closed by hand: coord does not reopen it"
    if pr.head_sha != cand:
        return (f"{ref} ({pr.url}): its head is {short(pr.head_sha)}, not the verified "
                f"{short(cand)} (someone pushed to its branch, or it was not published "
                "since): not merged")
    return None


def _unmergeable(ref: str, forge: Forge, number: int) -> tuple[str | None, QueueKind | None]:
    """Why the forge would not merge it now (each reason), None: it would; and the
    merge queue its base requires (read with the rest: GitHub's rulesets, GitLab's
    project), None: a direct merge."""
    try:
        mg = forge.mergeability(number)
    except ForgeError as exc:
        return f"{ref}: the forge could not say whether it merges: {exc.message}", None
    if mg.mergeable:
        return None, mg.merge_queue
    said = "; ".join(f"{b.kind}: {b.detail}" for b in mg.blockers) or mg.forge_state
    return (f"{ref} ({mg.pr.url}): the forge would not merge it now: "
            f"{said or 'not mergeable'}"), mg.merge_queue


def _base_now(ld: Steps, e: ManifestRepo) -> str | None:
    """The base on the remote just before the merge (what a revert puts back)."""
    try:
        return g.remote_sha(e["worktree"], e["remote"], e["base"], hooks=ld._hooks(e["repo"]))
    except g.GitError:
        return None


def _landed(ld: Steps, m: Manifest, lease: Lease, e: ManifestRepo, sha: str,
            pre: str | None) -> None:
    ld._step(m, lease, e["repo"], StepRecord.new(state=Step.landed, landed=sha, pre=pre or None),
             ld.rt.events.prepare(EventKind.repo_landed, plan=m["plan"], repo=e["repo"], sha=sha))


def _method(m: Manifest) -> str:
    return str(m.get("merge_method") or "merge")


def stop(ld: Steps, m: Manifest, failure: str) -> tuple[str, str, list[str]]:
    """A merge refused mid-way: the landing stops where it is (see the module): its
    state, why, and the repos it merged."""
    plan = m["plan"]
    order = [e["repo"] for e in m["repos"]]
    st = ld.store.read(plan)
    merged = [r for r in order if st.step(r).state == Step.landed]
    if merged:
        state = CS.partially_landed
        why = (f"{failure}; merged: " + ", ".join(
            f"{r} (#{e.get('pr')})" for e in m["repos"] for r in [e["repo"]] if r in merged)
            + f" (coord change revert {plan} opens revert pull requests for them)")
    else:
        state = CS.reverted
        why = f"{failure}; nothing was merged"
    ld.store.end_landing(plan, state, why, ld.rt.events.prepare(
        EventKind.change_reverted, plan=plan, reason=why, state=state, left_landed=merged))
    return state, why, merged
