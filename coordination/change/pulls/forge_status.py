"""What each repo's forge says of its pull request: state, reviews, checks, whether it
would merge it; read with the forge's rate limit in mind, and what of it blocks a
``land: pr`` landing.

A read asks the forge once per pull request (:meth:`Forge.mergeability`: the pull
request, its reviews, its checks and the forge's own verdict) and keeps the answer
beside the change (:meth:`coordination.runtime.changes.ChangeStore.set_forge_view`). A
status read within :data:`POLL_INTERVAL` of the last read takes that one instead of
asking again, and one a webhook refreshed (:mod:`coordination.change.pulls.forge_events`)
for :data:`WEBHOOK_TTL`: with webhooks, ``change status`` asks the forge nothing.
A landing always asks (``fresh``): a safety decision never reads a cached verdict.

:func:`forge_blockers` is the landing rule's forge check
(:func:`coordination.change.rule.check_forge`): a repo with a commit and no pull
request, one closed or merged by hand (noticed, never overwritten), a head that is not
the candidate, and each reason the forge would not merge it (a missing review, a
failing required check, a conflict), per pull request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coordination.change.blockers import Blocker, short
from coordination.change.model import ChangePlan
from coordination.errors import ForgeError
from coordination.runtime.change_records import ForgeView, PullRecord
from coordination.runtime.changes import ChangeState
from coordination.status import StepState

if TYPE_CHECKING:
    from coordination.change.pulls.forges import ChangeForges
    from coordination.forge.base import Mergeability, QueueEntry
    from coordination.runtime.context import Runtime

log = logging.getLogger("coord.forge.views")

#: Seconds a status read takes the last read of a pull request instead of asking again.
POLL_INTERVAL = 30.0
#: ... and one a webhook made (an event of the pull request, its reviews or checks came).
WEBHOOK_TTL = 600.0


@dataclass(frozen=True)
class PullView:
    """A repo's pull request as its forge said it at ``read_at`` (``source``: poll,
    webhook, land; ``cached``: this read took it from the last one)."""

    repo: str
    kind: str
    project: str
    number: int
    url: str
    state: str | None = None  # open | closed | merged (None: not read)
    draft: bool = False
    head: str | None = None
    #: the branch it is into, as the forge said it (None: not said: an older view)
    base: str | None = None
    merge_sha: str | None = None
    approved_by: tuple[str, ...] = ()
    changes_requested_by: tuple[str, ...] = ()
    required_approvals: int | None = None
    #: every check: {"name", "state", "required", "url"}
    checks: tuple[dict[str, Any], ...] = ()
    required_checks: tuple[str, ...] | None = None
    checks_state: str | None = None
    mergeable: bool | None = None
    conflict: bool | None = None
    #: each reason the forge would not merge it: {"kind", "detail", "name"}
    blockers: tuple[dict[str, Any], ...] = ()
    forge_state: str = ""
    #: why the forge could not be read (its error, never a token)
    error: str | None = None
    read_at: float = 0.0
    source: str = "poll"
    cached: bool = False
    #: (the reviews as the forge gave them, for a gate that counts them)
    reviews: tuple[dict[str, Any], ...] = field(default=(), compare=False)
    #: its base requires a merge queue (GitHub: a ruleset's ``merge_queue``) or a
    #: merge train (GitLab: the project's ``merge_trains_enabled``): ``land`` adds it
    #: there; {"kind": "merge_queue" | "merge_train", "state", "position"} of its
    #: entry (state and position None: not queued yet); None: merged directly
    merge_queue: dict[str, Any] | None = None

    @property
    def ref(self) -> str:
        return f"{self.project}#{self.number}"

    def document(self) -> dict[str, Any]:
        return {"number": self.number, "url": self.url, "state": self.state,
                "draft": self.draft, "head": self.head, "base": self.base,
                "merge_sha": self.merge_sha,
                "kind": self.kind, "project": self.project,
                "reviews": {"approved_by": list(self.approved_by),
                            "changes_requested_by": list(self.changes_requested_by),
                            "required": self.required_approvals,
                            "each": [dict(r) for r in self.reviews]},
                "checks": {"state": self.checks_state,
                           "required": (None if self.required_checks is None
                                        else list(self.required_checks)),
                           "each": [dict(c) for c in self.checks]},
                "mergeable": self.mergeable, "conflict": self.conflict,
                "blockers": [dict(b) for b in self.blockers], "forge_state": self.forge_state,
                "error": self.error, "read_at": self.read_at, "source": self.source,
                "cached": self.cached,
                "merge_queue": None if self.merge_queue is None else dict(self.merge_queue)}

    @classmethod
    def of_document(cls, repo: str, d: Mapping[str, Any], *, source: str,
                    cached: bool) -> PullView:
        reviews = d.get("reviews") or {}
        checks = d.get("checks") or {}
        req = checks.get("required")
        return cls(repo=repo, kind=str(d.get("kind") or ""), project=str(d.get("project") or ""),
                   number=int(d.get("number") or 0), url=str(d.get("url") or ""),
                   state=d.get("state"), draft=bool(d.get("draft")), head=d.get("head"),
                   base=d.get("base") if isinstance(d.get("base"), str) else None,
                   merge_sha=d.get("merge_sha"),
                   approved_by=tuple(reviews.get("approved_by") or ()),
                   changes_requested_by=tuple(reviews.get("changes_requested_by") or ()),
                   required_approvals=reviews.get("required"),
                   reviews=tuple(r for r in reviews.get("each") or () if isinstance(r, dict)),
                   checks=tuple(c for c in checks.get("each") or () if isinstance(c, dict)),
                   required_checks=None if req is None else tuple(req),
                   checks_state=checks.get("state"), mergeable=d.get("mergeable"),
                   conflict=d.get("conflict"),
                   blockers=tuple(b for b in d.get("blockers") or () if isinstance(b, dict)),
                   forge_state=str(d.get("forge_state") or ""), error=d.get("error"),
                   read_at=float(d.get("read_at") or 0.0), source=source, cached=cached,
                   merge_queue=(dict(d["merge_queue"]) if isinstance(d.get("merge_queue"), dict)
                                else None))


def view_of(repo: str, pull: PullRecord, m: Mergeability, source: str,
            queue: QueueEntry | None = None) -> PullView:
    """The view of ``m``, the forge's answer about ``repo``'s pull request ``pull``
    (``queue``: its entry, where its base requires a merge queue, ``m.merge_queue``)."""
    pr, rv, ck = m.pr, m.reviews, m.checks
    return PullView(
        repo=repo, kind=pull.kind, project=pull.project, number=pr.number, url=pr.url,
        state=pr.state.value, draft=pr.draft, head=pr.head_sha, base=pr.base_branch,
        merge_sha=pr.merge_sha,
        approved_by=tuple(rv.approved_by), changes_requested_by=tuple(rv.changes_requested_by),
        required_approvals=rv.required,
        reviews=tuple({"author": r.author, "state": r.state.value, "commit": r.commit_sha}
                      for r in rv.reviews),
        checks=tuple({"name": c.name, "state": c.state.value, "required": c.required,
                      "url": c.url} for c in (ck.checks if ck else ())),
        required_checks=None if ck is None or ck.required is None else tuple(ck.required),
        checks_state=ck.state.value if ck else None, mergeable=m.mergeable,
        conflict=m.conflict,
        blockers=tuple({"kind": b.kind, "detail": b.detail, "name": b.name}
                       for b in m.blockers),
        forge_state=m.forge_state, read_at=time.time(), source=source,
        merge_queue=None if m.merge_queue is None else {
            "kind": m.merge_queue, "state": queue.state if queue else None,
            "position": queue.position if queue else None})


def error_view(repo: str, pull: PullRecord, exc: ForgeError) -> PullView:
    """A pull request its forge could not be asked about now (``exc`` says why)."""
    return PullView(repo=repo, kind=pull.kind, project=pull.project, number=pull.number,
                    url=pull.url, error=exc.message, read_at=time.time())


def read_views(rt: Runtime, cp: ChangePlan, st: ChangeState, forges: ChangeForges, *,
               fresh: bool = False, ask: bool = True, source: str = "poll",
               min_interval: float = POLL_INTERVAL) -> dict[str, PullView]:
    """repo -> its pull request as its forge says it, for every repo of ``cp`` with one.

    ``fresh``: ask the forge whatever was read before (a landing). Else a read of the
    last ``min_interval`` seconds (a webhook's: :data:`WEBHOOK_TTL`) is taken as it is;
    ``ask`` False: nothing is asked (what was read last, however old). A forge that
    cannot be read gives a view with its ``error`` (and what it said last is kept).

    A kept view is taken only sealed by the process that read it (or checked the
    webhook that made it) and of the pull request the sealed record names: any other
    (a keyless writer's ``"source": "webhook"``) is never taken, said in the log, and
    the forge is asked again (``ask`` False: a view whose error says so)."""
    kept, refused = rt.changes.checked_forge_views(cp.plan) if not fresh else ({}, {})
    out: dict[str, PullView] = {}
    now = time.time()
    for repo in cp.targets:
        pull = st.pulls.get(repo)
        if pull is None:
            continue
        last = kept.get(repo)
        why = refused.get(repo)
        if last is not None and not _of_pull(last.document, pull):
            why = (f"forge view of {repo}'s pull request in change {cp.plan}: it is of "
                   f"#{last.document.get('number')}, not of the recorded #{pull.number}")
            last = None
        if why:
            log.warning("%s: not taken, the forge is asked again: %s", cp.plan, why)
            if not ask:
                out[repo] = PullView(repo=repo, kind=pull.kind, project=pull.project,
                                     number=pull.number, url=pull.url, error=why)
                continue
        if last is not None and not fresh:
            ttl = WEBHOOK_TTL if last.source == "webhook" else min_interval
            if not ask or now - last.at < ttl:
                out[repo] = PullView.of_document(repo, last.document, source=last.source,
                                                 cached=True)
                continue
        if not ask:
            out[repo] = PullView(repo=repo, kind=pull.kind, project=pull.project,
                                 number=pull.number, url=pull.url,
                                 error="not read yet (coord change status PLAN asks the forge)")
            continue
        out[repo] = ask_forge(rt, cp, forges, repo, pull, source)
    return out


def _of_pull(doc: Mapping[str, Any], pull: PullRecord) -> bool:
    """Is the view ``doc`` of the pull request ``pull`` (its number, forge, project)?"""
    try:
        number = int(doc.get("number") or 0)
    except (TypeError, ValueError):
        return False
    return (number == pull.number and str(doc.get("project") or "") == pull.project
            and str(doc.get("kind") or "") == pull.kind)


def ask_forge(rt: Runtime, cp: ChangePlan, forges: ChangeForges, repo: str, pull: PullRecord,
              source: str) -> PullView:
    """Ask ``repo``'s forge about ``pull`` now, and keep the answer beside the change."""
    forge = forges.of(repo)
    try:
        m = forge.mergeability(pull.number)  # (says whether its base has a merge queue)
        queue = forge.queue_entry(pull.number) if m.pr.is_open and m.merge_queue else None
        view = view_of(repo, pull, m, source, queue)
    except ForgeError as exc:
        return error_view(repo, pull, exc)
    rt.changes.set_forge_view(cp.plan, repo, ForgeView(view.document(), view.read_at, source))
    return view


# -- the landing rule's forge check -------------------------------------------------------
def forge_blockers(cp: ChangePlan, st: ChangeState, now: Mapping[str, str | None],
                   views: Mapping[str, PullView]) -> list[Blocker]:
    """Why the forge would not merge the change's pull requests now (see the module)."""
    out: list[Blocker] = []
    for repo in cp.targets:
        step = st.step(repo)
        if step.state in (StepState.landed, StepState.landing):
            continue  # its landing's to say (merged by coord, or under way)
        rec, cand = st.repos.get(repo), now.get(repo)
        if rec is None or cand is None or cand == rec.base_sha:
            continue  # no candidate (said elsewhere), or no commit: nothing to merge
        out += repo_blockers(cp.plan, repo, cand, st.pulls.get(repo), views.get(repo),
                             st.refused_pulls.get(f"pr:{repo}"), cp.targets[repo].base)
    return out


def repo_blockers(plan: str, repo: str, cand: str, pull: PullRecord | None,
                  view: PullView | None, refused: str | None = None,
                  base: str | None = None) -> list[Blocker]:
    """Why ``repo``'s pull request may not be merged now, on the candidate ``cand``
    (``refused``: why the record Redis holds of it is not taken)."""
    if pull is None and refused:
        return [Blocker("forge", repo, f"{refused}: not taken; coord change publish "
                        f"{plan} finds the change's pull request on the forge again")]
    if pull is None:
        return [Blocker("forge", repo, f"no pull request yet: coord change publish {plan} "
                        "pushes its branch and opens one")]
    ref = f"{pull.project}#{pull.number}"
    if view is None or view.error:
        return [Blocker("forge", repo, f"pull request {ref}: the forge could not be read"
                        + (f": {view.error}" if view and view.error else ""))]
    if view.state == "merged":
        return [Blocker("forge", repo, f"pull request {ref} was merged by hand (not by "
                        f"coord change land{', as ' + short(view.merge_sha) if view.merge_sha else ''}"
                        "): coord merges nothing over it; take it out on the forge, or "
                        "revert the change there")]
    if view.state == "closed":
        return [Blocker("forge", repo, f"pull request {ref} was closed by hand: coord does "
                        f"not reopen it; reopen it on the forge, then coord change publish "
                        f"{plan}")]
    out: list[Blocker] = []
    if base is not None and view.base is not None and view.base != base:
        out.append(Blocker("forge", repo, f"pull request {ref} is into {view.base}, not "
                           f"the change's base {base}: coord merges nothing into another "
                           "base"))
    if view.head != cand:
        said = ("its branch is not published since the candidate moved"
                if view.head == pull.head else "someone pushed to its branch")
        out.append(Blocker("forge", repo, f"pull request {ref}: its head is "
                           f"{short(view.head)}, not the candidate {short(cand)} ({said}): "
                           f"coord change publish {plan} pushes the candidate"))
    if view.mergeable:
        return out
    for b in view.blockers:
        out.append(Blocker("forge", repo, f"pull request {ref}: {b.get('kind')}: "
                           f"{b.get('detail')}"))
    if not view.blockers:
        out.append(Blocker("forge", repo, f"pull request {ref}: the forge would not merge it "
                           f"({view.forge_state or 'it does not say why'})"))
    return out
