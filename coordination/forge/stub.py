"""A forge in memory, for unit tests (dramatiq's ``StubBroker``): the whole
:class:`~coordination.forge.base.Forge` protocol over a few dicts, with the levers a test
pulls as the people and CI around a forge would (push a head, approve, set a check,
protect a branch, refuse a merge, merge or close by hand).

The semantics follow the real clients': ``merge`` pinned to the head (``HeadMoved``),
refused with a reason (``MergeRefused``) while a blocker stands or a refusal is set,
``open_pr`` idempotent for the same head and base. Integration tests use the HTTP fakes
of ``tests/forges/`` instead, which real git and the forges' OpenAPI descriptions keep
honest; this one needs no network and no git."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from coordination.errors import (
    ForgeAuthError,
    ForgeConfigError,
    ForgeError,
    ForgeNotFound,
    HeadMoved,
    MergeRefused,
)
from coordination.forge import spec_of
from coordination.forge.base import (
    DEFAULT_TOKEN_ENV,
    Check,
    Checks,
    CheckState,
    CommitStatus,
    ForgeSpec,
    Mergeability,
    MergeMethod,
    MergeResult,
    NewPullRequest,
    PRState,
    ProjectClient,
    Protection,
    PullRequest,
    QueueEntry,
    RepoLike,
    Review,
    Reviews,
    ReviewState,
    StatusState,
)
from coordination.forge.issues import StubIssues
from coordination.forge.verdict import blockers

_STATUS_CHECK = {StatusState.success: CheckState.success, StatusState.pending: CheckState.pending,
                 StatusState.failure: CheckState.failure, StatusState.error: CheckState.failure}


def fake_sha(*parts: str) -> str:
    """A 40-hex commit id made from ``parts`` (deterministic)."""
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()


@dataclass
class _PR:
    number: int
    head: str
    base: str
    title: str
    body: str
    draft: bool
    labels: list[str]
    state: PRState = PRState.open
    merge_sha: str | None = None
    head_sha: str | None = None  # frozen at merge/close; live from the branch while open


@dataclass
class StubForge(ProjectClient):
    """One project on an in-memory forge. ``calls`` records every protocol call by
    name and main argument (a test asserts "one PR opened", "merged at sha X")."""

    spec: ForgeSpec = field(default_factory=lambda: ForgeSpec(
        "stub", "acme/app", "http://stub.invalid", DEFAULT_TOKEN_ENV["stub"]))
    login: str = "coord-bot"
    branches: dict[str, str] = field(default_factory=dict)
    prs: dict[int, _PR] = field(default_factory=dict)
    statuses: dict[str, dict[str, Check]] = field(default_factory=dict)
    review_log: dict[int, list[Review]] = field(default_factory=dict)
    protections: dict[str, Protection] = field(default_factory=dict)
    conflicts: set[int] = field(default_factory=set)
    refusals: dict[int, str] = field(default_factory=dict)
    #: merge method -> why the project's settings refuse it (merge_refusal)
    method_refusals: dict[str, str] = field(default_factory=dict)
    comments: dict[int, list[str]] = field(default_factory=dict)
    calls: list[tuple[str, object]] = field(default_factory=list)
    #: Set: every call raises ForgeAuthError naming this variable (a missing token).
    token_missing: str | None = None
    #: Method name -> an error its next call raises (once).
    fail_next: dict[str, ForgeError] = field(default_factory=dict)
    _numbers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _issues: StubIssues | None = None

    def issue_tracker(self) -> StubIssues:
        """The project's issues (:mod:`coordination.forge.issues`), kept with it."""
        if self._issues is None:
            self._issues = StubIssues(self.spec)
        return self._issues

    # what people and CI do --------------------------------------------------------------

    def push(self, branch: str, sha: str | None = None) -> str:
        """The branch's head becomes ``sha`` (made up when not given)."""
        sha = sha or fake_sha(branch, self.branches.get(branch, ""))
        self.branches[branch] = sha
        return sha

    def protect(self, branch: str, *, approvals: int = 0, checks: Sequence[str] = ()) -> None:
        self.protections[branch] = Protection(branch, True, True, approvals, tuple(checks))

    def review(self, number: int, by: str, state: ReviewState = ReviewState.approved) -> None:
        self.review_log.setdefault(number, []).append(
            Review(by, state, self._pr(number).head_sha or self.branches.get(
                self._pr(number).head)))

    def set_check(self, sha: str, name: str, state: CheckState = CheckState.success) -> None:
        self.statuses.setdefault(sha, {})[name] = Check(name, state)

    def merge_by_hand(self, number: int) -> None:
        self._merge(self._pr(number), "merge")

    def close_by_hand(self, number: int) -> None:
        pr = self._pr(number)
        pr.head_sha, pr.state = self.branches.get(pr.head), PRState.closed

    # the protocol ----------------------------------------------------------------------

    def _enter(self, name: str, arg: object = None) -> None:
        self.calls.append((name, arg))
        if self.token_missing:
            raise ForgeAuthError(f"{self.token_missing} is not set", variable=self.token_missing,
                                 forge=self.kind, project=self.project)
        if name in self.fail_next:
            raise self.fail_next.pop(name)

    def _pr(self, number: int) -> _PR:
        if number not in self.prs:
            raise ForgeNotFound(f"{self.project}: no pull request #{number}", forge=self.kind,
                                project=self.project, status=404)
        return self.prs[number]

    def _record(self, pr: _PR) -> PullRequest:
        head = pr.head_sha if pr.head_sha is not None else self.branches.get(pr.head, "")
        return PullRequest(pr.number, f"https://stub.invalid/{self.project}/pull/{pr.number}",
                           pr.state, head, pr.head, pr.base, pr.title, pr.body, pr.draft,
                           tuple(pr.labels), pr.merge_sha, self.login)

    def user(self) -> str:
        self._enter("user")
        return self.login

    def find_pr(self, head: str, *, base: str | None = None,
                state: Literal["open", "all"] = "open") -> PullRequest | None:
        self._enter("find_pr", head)
        for pr in sorted(self.prs.values(), key=lambda p: -p.number):
            if pr.head == head and base in (None, pr.base) and (
                    state == "all" or pr.state is PRState.open):
                return self._record(pr)
        return None

    def get_pr(self, number: int) -> PullRequest:
        self._enter("get_pr", number)
        return self._record(self._pr(number))

    def list_prs(self, *, label: str | None = None,
                 state: Literal["open", "closed", "all"] = "open") -> list[PullRequest]:
        self._enter("list_prs", label)
        want = {"open": {PRState.open}, "closed": {PRState.closed, PRState.merged},
                "all": set(PRState)}[state]
        return [self._record(p) for p in sorted(self.prs.values(), key=lambda p: -p.number)
                if p.state in want and (label is None or label in p.labels)]

    def open_pr(self, new: NewPullRequest) -> PullRequest:
        self._enter("open_pr", new.head)
        if new.head not in self.branches:
            raise ForgeNotFound(f"{self.project}: branch {new.head!r} is not on the forge "
                                "(push it first)", forge=self.kind, project=self.project)
        for pr in self.prs.values():
            if pr.head == new.head and pr.base == new.base and pr.state is PRState.open:
                return self._record(pr)
        n = next(self._numbers)
        self.prs[n] = _PR(n, new.head, new.base, new.title, new.body, new.draft,
                          list(dict.fromkeys(new.labels)))
        return self._record(self.prs[n])

    def update_pr(self, number: int, *, title: str | None = None, body: str | None = None,
                  draft: bool | None = None,
                  labels: Sequence[str] | None = None) -> PullRequest:
        self._enter("update_pr", number)
        pr = self._pr(number)
        pr.title = pr.title if title is None else title
        pr.body = pr.body if body is None else body
        pr.draft = pr.draft if draft is None else draft
        pr.labels = pr.labels if labels is None else list(dict.fromkeys(labels))
        return self._record(pr)

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        self._enter("add_labels", number)
        pr = self._pr(number)
        pr.labels = list(dict.fromkeys([*pr.labels, *labels]))

    def close_pr(self, number: int) -> PullRequest:
        self._enter("close_pr", number)
        pr = self._pr(number)
        if pr.state is PRState.open:
            pr.head_sha, pr.state = self.branches.get(pr.head), PRState.closed
        return self._record(pr)

    def comment(self, number: int, body: str) -> None:
        self._enter("comment", number)
        self._pr(number)
        self.comments.setdefault(number, []).append(body)

    def post_status(self, sha: str, status: CommitStatus) -> None:
        self._enter("post_status", (sha, status.context, status.state.value))
        self.statuses.setdefault(sha, {})[status.context] = Check(
            status.context, _STATUS_CHECK[status.state], url=status.target_url,
            description=status.description)

    def protection(self, branch: str) -> Protection:
        self._enter("protection", branch)
        return self.protections.get(branch, Protection(branch, False, True, 0, ()))

    def _reviews(self, pr: _PR) -> Reviews:
        latest: dict[str, Review] = {}
        for r in self.review_log.get(pr.number, []):
            latest[r.author] = r
        prot = self.protections.get(pr.base)
        return Reviews(
            tuple(a for a, r in latest.items() if r.state is ReviewState.approved),
            tuple(a for a, r in latest.items() if r.state is ReviewState.changes_requested),
            prot.required_approvals if prot else 0, None, tuple(latest.values()))

    def reviews(self, number: int) -> Reviews:
        self._enter("reviews", number)
        return self._reviews(self._pr(number))

    def _checks(self, sha: str, branch: str | None) -> Checks:
        prot = self.protections.get(branch) if branch else None
        required = (prot.required_checks or ()) if prot else (() if branch else None)
        found = tuple(replace(c, required=required is not None and c.name in required)
                      for c in self.statuses.get(sha, {}).values())
        return Checks(sha, found, required)

    def checks(self, sha: str, *, branch: str | None = None) -> Checks:
        self._enter("checks", sha)
        return self._checks(sha, branch)

    def mergeability(self, number: int) -> Mergeability:
        self._enter("mergeability", number)
        return self._mergeability(self._pr(number))

    def _mergeability(self, pr: _PR) -> Mergeability:
        number = pr.number
        rec = self._record(pr)
        reviews, checks = self._reviews(pr), self._checks(rec.head_sha, pr.base)
        found = blockers(rec, reviews, checks, number in self.conflicts)
        return Mergeability(rec, not found, found, reviews, checks,
                            number in self.conflicts, "clean" if not found else "blocked")

    def merge_refusal(self, branch: str, method: MergeMethod) -> str | None:
        self._enter("merge_refusal", (branch, method))
        return self.method_refusals.get(method)

    # (no merge queue: its mergeability says none; queues and trains are tried over the
    # HTTP fakes, tests/forges/)
    def enqueue(self, number: int, *, sha: str) -> QueueEntry:
        raise ForgeError(f"{self.project}: the stub forge has no merge queue",
                         forge=self.kind, project=self.project)

    def queue_entry(self, number: int) -> QueueEntry:
        pr = self._pr(number)
        rec = self._record(pr)
        return QueueEntry(number, rec.merged, pr_state=pr.state.value.upper(),
                          head_sha=rec.head_sha, merge_sha=rec.merge_sha)

    def merge(self, number: int, *, sha: str, method: MergeMethod = "merge",
              title: str | None = None, message: str | None = None) -> MergeResult:
        self._enter("merge", (number, sha, method))
        pr = self._pr(number)
        head = self.branches.get(pr.head, "")
        if pr.state is PRState.open and head != sha:
            raise HeadMoved(f"{self.project}#{number}: its head is {head[:12]}, not the "
                            f"verified {sha[:12]}; nothing merged", number=number, expected=sha,
                            actual=head, forge=self.kind, project=self.project, status=409)
        reason = self.refusals.get(number)
        if reason is None:
            found = self._mergeability(pr).blockers
            reason = "; ".join(b.detail for b in found) if found else None
        if reason:
            raise MergeRefused(f"{self.project}#{number}: the forge refused the merge: {reason}",
                               number=number, reason=reason, forge=self.kind,
                               project=self.project, status=405)
        return MergeResult(number, self._merge(pr, method), sha, method, message or "")

    def _merge(self, pr: _PR, method: str) -> str:
        head = self.branches.get(pr.head, "")
        merged = fake_sha(method, self.branches.get(pr.base, ""), head)
        self.branches[pr.base] = merged
        pr.state, pr.merge_sha, pr.head_sha = PRState.merged, merged, head
        return merged


@dataclass
class StubForges:
    """A :class:`~coordination.forge.base.ForgeFactory` of stub forges, one per project
    (a test reaches it as ``forges[project]``). With ``tokens=True`` a repo whose
    token variable is not in the ``env`` it is called with gets a forge whose every
    call raises ``ForgeAuthError`` naming it, as the real clients do."""

    tokens: bool = False
    forges: dict[str, StubForge] = field(default_factory=dict)

    def __getitem__(self, project: str) -> StubForge:
        return self.forges[project]

    def __call__(self, repo: RepoLike, env: Mapping[str, str] | None = None) -> StubForge:
        if repo.forge is None:
            raise ForgeConfigError(f"repo {repo.name!r} names no forge")
        spec = spec_of(repo.forge, repo=repo.name)
        forge = self.forges.setdefault(spec.project, StubForge(spec))
        if self.tokens:
            forge.token_missing = None if (env or {}).get(spec.token_env) else spec.token_env
        return forge


__all__ = ["StubForge", "StubForges", "fake_sha"]
