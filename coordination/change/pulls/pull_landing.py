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
queue's entry (:func:`_through_queue`; one read each: the entry, the pull request's
state, head and merge) until the queue merged it (the next repo is landed then: a
consumer is enqueued only once its providers merged) or removed it unmerged (the
landing stops, naming the entry's last state and the forge's reason when it gives one).
A queue still busy after :data:`QUEUE_WAIT` seconds leaves the landing under way:
``land`` again carries on (a pull request still queued is not enqueued twice).

There is no undo a forge would take without review: a merge refused mid-way stops the
landing (:func:`stop`): ``partially_landed`` naming the pull request and the forge's
reason and what merged (``reverted``, nothing merged, when it was the first);
``coord change revert`` opens revert pull requests for what merged
(:mod:`coordination.change.pulls.pull_revert`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Protocol

from coordination.change import git as g
from coordination.change.blockers import short
from coordination.change.pulls.forges import ChangeForges
from coordination.change.manifest import Manifest, ManifestRepo
from coordination.errors import ForgeError, HeadMoved, MergeRefused, OperationFailed
from coordination.forge.base import Forge, PullRequest, QueueEntry, QueueKind
from coordination.runtime.change_records import StepRecord
from coordination.runtime.changes import ChangeStore
from coordination.runtime.context import Runtime
from coordination.runtime.events import Prepared as Said
from coordination.runtime.leases import Lease
from coordination.status import ChangeState as CS
from coordination.status import StepState as Step
from coordination.status import EventKind

log = logging.getLogger(__name__)

#: How long a landing waits for a merge queue to merge or remove one pull request; it
#: asks first after COORD_MERGE_QUEUE_POLL s, each wait after doubled up to QUEUE_POLL_MAX
#: times that.
QUEUE_WAIT = 4 * 3600.0
QUEUE_POLL_MAX = 15


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
        if not why:
            why, queue = _unmergeable(ref, forge, number)
        if why:
            ld._step(m, lease, repo, StepRecord.new(state=Step.not_landed, why=why))
            return why
        pre = _base_now(ld, e)
        ld._step(m, lease, repo, StepRecord.new(state=Step.landing, pre=pre))
        ld.fault("before-land", repo)
        if queue:
            return _through_queue(ld, m, lease, e, pr, pre, queue)
        try:
            res = forge.merge(number, sha=cand, method=_method(m))  # type: ignore[arg-type]
        except ForgeError as exc:
            why = _forge_refused(f"{ref} ({pr.url})", cand, exc, "merged", "merge it",
                                 "merging it")
        else:
            ld.fault("after-land", repo)
            _landed(ld, m, lease, e, res.sha, pre)
            return None
        ld._step(m, lease, repo, StepRecord.new(state=Step.not_landed, why=why))
        return why


def _forge_refused(ref: str, cand: str, exc: ForgeError, done: str, verb: str,
                   doing: str) -> str:
    """Why the landing stops when the forge would not merge (or enqueue) the pull
    request ``ref`` pinned to the candidate ``cand``: its head moved (``HeadMoved``),
    the forge refused (``MergeRefused``, in its words), or the request failed."""
    if isinstance(exc, HeadMoved):
        return (f"{ref}: its head moved to {short(exc.actual)} since coord verified "
                f"{short(cand)}: not {done}")
    if isinstance(exc, MergeRefused):
        return f"{ref}: the forge refused to {verb}: {exc.reason}"
    return f"{ref}: {doing} failed: {exc.message}"


#: How each kind of merge queue is named in what a landing says.
QUEUE_NAMES = {"merge_queue": "merge queue", "merge_train": "merge train"}


def _through_queue(ld: Steps, m: Manifest, lease: Lease, e: ManifestRepo, pr: PullRequest,
                   pre: str | None, kind: QueueKind) -> str | None:
    """Enqueue ``pr`` pinned to the candidate (unless a landing before this one did)
    and wait until the queue merged it (None) or removed it (why the landing stops)."""
    repo, number, cand = e["repo"], pr.number, e["candidate"]
    ref, forge = f"{repo}: pull request #{number} ({pr.url})", ld.forges.of(repo)
    name = QUEUE_NAMES[kind]
    try:
        entry = forge.queue_entry(number)
        if not entry.queued and not entry.merged:
            entry = forge.enqueue(number, sha=cand)
            log.info("%s: added to the %s at %s (position %s)", ref, name, short(cand),
                     entry.position)
    except ForgeError as exc:
        why = _forge_refused(ref, cand, exc, "enqueued", f"add it to the {name}",
                             f"adding it to the {name}")
    else:
        return _queue_wait(ld, m, lease, e, ref, entry, pre, name)
    ld._step(m, lease, repo, StepRecord.new(state=Step.not_landed, why=why))
    return why


def _queue_wait(ld: Steps, m: Manifest, lease: Lease, e: ManifestRepo, ref: str,
                entry: QueueEntry, pre: str | None, name: str) -> str | None:
    repo, number, forge = e["repo"], entry.number, ld.forges.of(e["repo"])
    first = ld.rt.settings.merge_queue_poll
    deadline, delay, seen = time.monotonic() + QUEUE_WAIT, first, entry
    while not entry.merged and entry.queued:
        if time.monotonic() > deadline:
            raise OperationFailed(
                f"{ref}: still in the {name} ({entry.state}, position "
                f"{entry.position or 'unsaid'}) after {QUEUE_WAIT:g}s",
                hint=f"coord change land {m['plan']} again carries on (it is not enqueued twice)")
        time.sleep(delay)
        delay = min(delay * 2, first * QUEUE_POLL_MAX)
        seen = entry
        try:
            entry = forge.queue_entry(number)
        except ForgeError as exc:
            log.warning("%s: its %s entry could not be read: %s", ref, name, exc.message)
    if not entry.merged:
        said = f" ({entry.reason})" if entry.reason else ""
        why = (f"{ref} left the {name} unmerged (its entry was last "
               f"{seen.state or 'unknown'}; the pull request is "
               f"{(entry.pr_state or 'open').lower()}){said}: the {name} removed it (a "
               "failed check or a conflict in it) or someone did; not merged")
        ld._step(m, lease, repo, StepRecord.new(state=Step.not_landed, why=why))
        return why
    if entry.head_sha is None:  # (a forge whose entry does not say: read it)
        merged = forge.get_pr(number)
        entry = replace(entry, head_sha=merged.head_sha, merge_sha=merged.merge_sha)
    if entry.head_sha != e["candidate"]:
        why = (f"{ref} was merged at {short(entry.head_sha)}, not the verified "
               f"{short(e['candidate'])}")
        ld._step(m, lease, repo, StepRecord.new(state=Step.not_landed, why=why))
        return why
    _landed(ld, m, lease, e, entry.merge_sha or "", pre)
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
