"""What coord asks of a forge (GitHub, GitLab, Gitea/Forgejo), and the typed records it
gets back: the :class:`Forge` protocol every kind implements (``github.py``,
``gitlab.py``, ``gitea.py``, and ``stub.py`` in memory for unit tests), as dramatiq's
brokers sit behind ``broker.py``.

The records are the forge's answers in coord's words, the same for every kind: a pull
request (GitLab's merge request; ``number`` is GitLab's ``iid``), its reviews, the
checks of a commit (GitHub's statuses and check runs, GitLab's commit statuses and
pipelines, Gitea's statuses), whether the forge would merge it and, when not, each
reason as a :class:`Blocker`. Errors are :mod:`coordination.errors`' ``ForgeError``
family. Nothing here knows of changes, plans or landings (``change/`` asks; this floor
answers).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit

#: The forges coord speaks to; ``stub`` only in code (tests), never in a catalog.
Kind = Literal["github", "gitlab", "gitea", "stub"]
KINDS: tuple[str, ...] = ("github", "gitlab", "gitea")
MergeMethod = Literal["merge", "squash", "rebase"]
MERGE_METHODS: tuple[str, ...] = ("merge", "squash", "rebase")
#: A base that takes no direct merge: GitHub's merge queue (a ruleset's ``merge_queue``
#: rule), GitLab's merge train (the project's ``merge_trains_enabled``).
QueueKind = Literal["merge_queue", "merge_train"]

#: The commit status coord posts on each verified head (branch protection may require it).
VERIFY_CONTEXT = "coord/verify"
#: The environment variable of the webhook secret when a forge names none.
WEBHOOK_SECRET_ENV = "COORD_FORGE_WEBHOOK_SECRET"

#: Per kind: the default API root, and the token's variable.
DEFAULT_API: dict[str, str] = {
    "github": "https://api.github.com",
    "gitlab": "https://gitlab.com/api/v4",
    "gitea": "https://gitea.com/api/v1",
}
DEFAULT_TOKEN_ENV: dict[str, str] = {
    "github": "GITHUB_TOKEN",
    "gitlab": "GITLAB_TOKEN",
    "gitea": "GITEA_TOKEN",
    "stub": "COORD_STUB_FORGE_TOKEN",
}
#: The path a self-hosted forge's API lives under, added to an ``api:`` given as a bare
#: host (``https://ghe.example.com`` -> ``https://ghe.example.com/api/v3``).
API_PATH: dict[str, str] = {"github": "/api/v3", "gitlab": "/api/v4", "gitea": "/api/v1"}


class PRState(str, enum.Enum):
    """Where a pull request stands. ``merged`` is its own state (GitHub and Gitea say
    ``closed`` + ``merged: true``; coord never confuses the two)."""

    open = "open"
    closed = "closed"
    merged = "merged"


class ReviewState(str, enum.Enum):
    """One reviewer's latest word on a pull request."""

    approved = "approved"
    changes_requested = "changes_requested"
    commented = "commented"
    dismissed = "dismissed"
    pending = "pending"


class CheckState(str, enum.Enum):
    """A check's (or a commit's combined) state. ``missing``: required by the branch's
    protection but not reported on this commit at all."""

    success = "success"
    pending = "pending"
    failure = "failure"
    missing = "missing"


class StatusState(str, enum.Enum):
    """What coord may post as a commit status (``coord/verify``)."""

    success = "success"
    failure = "failure"
    pending = "pending"
    error = "error"


@dataclass(frozen=True)
class ForgeSpec:
    """A repo's ``forge:`` with every default filled in (:func:`spec_of`): what a client
    is built from. ``api`` is the API root (no trailing slash); ``token_env`` and
    ``webhook_secret_env`` name variables, never hold their values."""

    kind: Kind
    project: str
    api: str
    token_env: str
    webhook_secret_env: str = WEBHOOK_SECRET_ENV
    #: ``token`` or ``app`` (a GitHub App: coordination.forge.app_auth); ``ca_file``: a
    #: CA bundle the forge's TLS certificate is verified with (None: the system's).
    auth: str = "token"
    app_id_env: str = "GITHUB_APP_ID"
    app_key_env: str = "GITHUB_APP_PRIVATE_KEY"
    ca_file: str | None = None

    @property
    def host(self) -> str:
        """The API's host (a rate limit and a pace key are per host)."""
        return urlsplit(self.api).hostname or ""


class ProjectClient:
    """A client of one forge project (the REST clients' base, the stub): its kind and
    project are its spec's."""

    spec: ForgeSpec

    @property
    def kind(self) -> Kind:
        return self.spec.kind

    @property
    def project(self) -> str:
        return self.spec.project


class Clock(Protocol):
    """Time as the client waits on it (tests give one that never really sleeps)."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...  # the wall clock (GitHub's X-RateLimit-Reset is epoch seconds)

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class Options:
    """How a client talks to its forge. ``deadline``: the longest coord waits out one
    rate limit (a limit that resets later raises ``ForgeRateLimited`` at once, saying
    when it resets); ``retries``: attempts after a 5xx or a dropped connection, with
    :func:`coordination.retry.backoff_delay` between; ``timeout``: one request's;
    ``transport``: an ``httpx.BaseTransport`` instead of the network (tests);
    ``merge_wait``: the longest :meth:`Forge.mergeability` waits for a forge still
    computing conflicts."""

    timeout: float = 30.0
    deadline: float = 300.0
    retries: int = 4
    backoff_base: float = 0.5
    merge_wait: float = 20.0
    clock: Clock = field(default_factory=SystemClock)
    transport: object | None = None
    user_agent: str = "coord"


@dataclass(frozen=True)
class PullRequest:
    """A pull (merge) request as the forge shows it now.

    ``number``: GitHub's and Gitea's number, GitLab's ``iid`` (what its web URL shows).
    ``url``: the web page, for people. ``head_sha``: the commit the head branch points
    at (what a merge is pinned to). ``merge_sha``: the commit the merge left on the base,
    once ``state`` is ``merged``. ``labels`` in the forge's order."""

    number: int
    url: str
    state: PRState
    head_sha: str
    head_branch: str
    base_branch: str
    title: str = ""
    body: str = ""
    draft: bool = False
    labels: tuple[str, ...] = ()
    merge_sha: str | None = None
    author: str = ""

    @property
    def merged(self) -> bool:
        return self.state is PRState.merged

    @property
    def is_open(self) -> bool:
        return self.state is PRState.open


@dataclass(frozen=True)
class NewPullRequest:
    """What :meth:`Forge.open_pr` opens: from ``head`` (a branch of the project itself;
    coord never opens from forks) into ``base``. A draft on GitLab and Gitea is the
    forge's title prefix (``Draft:``, ``WIP:``), which the client adds and strips."""

    head: str
    base: str
    title: str
    body: str = ""
    draft: bool = False
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Review:
    """One reviewer's latest review. ``commit_sha``: the head it was given on, when
    the forge says (a review of an older head may not count under the protection)."""

    author: str
    state: ReviewState
    commit_sha: str | None = None
    submitted_at: str | None = None


@dataclass(frozen=True)
class Reviews:
    """A pull request's reviews, as its protection counts them.

    ``approved_by``: who approves now (latest review per reviewer; GitLab's
    ``approved_by``). ``required``: approvals the protection requires, None when the
    forge would not say (GitHub answers branch protection only to admins; the forge's
    own mergeability verdict still holds). ``approvals_left``: what the forge says is
    still missing, when it says (GitLab), else computed from ``required``."""

    approved_by: tuple[str, ...] = ()
    changes_requested_by: tuple[str, ...] = ()
    required: int | None = None
    approvals_left: int | None = None
    reviews: tuple[Review, ...] = ()

    @property
    def approvals(self) -> int:
        return len(self.approved_by)

    @property
    def satisfied(self) -> bool | None:
        """Enough approvals and nobody requesting changes; None when unknown."""
        if self.changes_requested_by:
            return False
        if self.approvals_left is not None:
            return self.approvals_left <= 0
        if self.required is None:
            return None
        return self.approvals >= self.required


@dataclass(frozen=True)
class Check:
    """One check on a commit: a commit status's ``context`` (GitHub, Gitea, GitLab's
    commit statuses), a check run's or a pipeline's name. ``required``: the branch's
    protection requires it to pass."""

    name: str
    state: CheckState
    required: bool = False
    url: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Checks:
    """The checks of one commit. ``required``: the names the base branch's protection
    requires (None when the forge would not say). ``state``: over the required ones
    when known, else over all: failure if any failed, missing if one is absent,
    pending if any is running, else success (success too when there are none)."""

    sha: str
    checks: tuple[Check, ...] = ()
    required: tuple[str, ...] | None = None

    @classmethod
    def marked(cls, sha: str, found: Iterable[Check],
               required: tuple[str, ...] | None) -> Checks:
        """The checks ``found`` on ``sha``, each marked required when ``required``
        names it."""
        names = set(required or ())
        return cls(sha, tuple(replace(c, required=c.name in names) for c in found), required)

    @property
    def state(self) -> CheckState:
        names = self.required
        pool = [c for c in self.checks if names is None or c.name in names]
        states = {c.state for c in pool}
        if names is not None:
            seen = {c.name for c in pool}
            if any(n not in seen for n in names):
                states.add(CheckState.missing)
        for s in (CheckState.failure, CheckState.missing, CheckState.pending):
            if s in states:
                return s
        return CheckState.success

    def named(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def failing(self) -> tuple[Check, ...]:
        """Required checks (all checks when the required ones are unknown) that did not
        pass: failed, pending or missing (a missing one as a Check of state missing)."""
        out = [c for c in self.checks if (self.required is None or c.name in self.required)
               and c.state is not CheckState.success]
        seen = {c.name for c in self.checks}
        out += [Check(n, CheckState.missing, required=True)
                for n in self.required or () if n not in seen]
        return tuple(out)


BlockerKind = Literal["review", "changes_requested", "check", "conflict", "behind", "draft",
                      "state", "forge"]


@dataclass(frozen=True)
class Blocker:
    """One reason a forge would not merge a pull request now.

    ``kind``: ``review`` (approvals missing), ``changes_requested``, ``check`` (a
    required check failed, pending or missing: ``name`` is it), ``conflict``, ``behind``
    (the protection wants the head up to date with the base), ``draft``, ``state`` (not
    open), ``forge`` (the forge says no without saying why coord can name: its own
    words in ``detail``). ``detail`` is a sentence for people."""

    kind: BlockerKind
    detail: str
    name: str | None = None


@dataclass(frozen=True)
class Mergeability:
    """Would the forge merge this pull request now, and if not, why.

    ``mergeable`` is the forge's own verdict (GitHub's ``mergeable_state`` clean,
    unstable or has_hooks; GitLab's ``detailed_merge_status`` mergeable; Gitea's
    ``mergeable`` and its protection), never coord's guess. ``blockers`` names each
    reason coord can see, whether or not the forge agrees (empty when mergeable);
    ``forge_state`` is the forge's raw word for it (for the record and ``--json``).
    ``conflict`` is None while the forge still computes it. ``merge_queue``: the base
    takes no direct merge, only through the forge's queue of this kind (read with the
    reviews' and checks' requirements: GitHub's rulesets, GitLab's project), None: a
    direct merge."""

    pr: PullRequest
    mergeable: bool
    blockers: tuple[Blocker, ...] = ()
    reviews: Reviews = field(default_factory=Reviews)
    checks: Checks | None = None
    conflict: bool | None = None
    forge_state: str = ""
    merge_queue: QueueKind | None = None


@dataclass(frozen=True)
class MergeResult:
    """A merge the forge did: ``sha`` the commit it left on the base (merge commit,
    squash or the rebased tip), ``head_sha`` the head it merged (the pinned one)."""

    number: int
    sha: str
    head_sha: str
    method: MergeMethod
    message: str = ""


@dataclass(frozen=True)
class QueueEntry:
    """A pull request as a merge queue sees it, read at once with the pull request:
    merged, or its entry's ``state`` (GitHub's ``mergeQueueEntry``: ``QUEUED``,
    ``AWAITING_CHECKS``, ``MERGEABLE``, ``UNMERGEABLE``, ``LOCKED``; GitLab's merge
    train: the merge request's ``detailed_merge_status`` while its auto-merge is set)
    and ``position`` (1: next; None: the forge does not say); ``state`` None and not
    merged: it is not in the queue (never enqueued, or removed from it unmerged)."""

    number: int
    merged: bool
    state: str | None = None
    position: int | None = None
    #: the pull request's own state word (``OPEN``, ``CLOSED``, ``MERGED``)
    pr_state: str = ""
    #: its head, and once merged the commit the merge left on the base (None: unsaid)
    head_sha: str | None = None
    merge_sha: str | None = None
    #: the forge's words on why it left the queue unmerged, when it says (GitLab's
    #: ``merge_error``)
    reason: str | None = None

    @property
    def queued(self) -> bool:
        return self.state is not None and not self.merged


@dataclass(frozen=True)
class CommitStatus:
    """A commit status to post: ``context`` names it (branch protection requires it by
    that name), ``target_url`` links the evidence."""

    state: StatusState
    context: str = VERIFY_CONTEXT
    description: str = ""
    target_url: str | None = None


@dataclass(frozen=True)
class Protection:
    """What a branch's protection asks of a merge, as far as the token may read it.
    ``known`` False: the forge would not say (GitHub answers 403/404 to non-admins);
    then ``required_approvals`` and ``required_checks`` are None and the forge's
    verdict (``Mergeability.mergeable``) is what holds."""

    branch: str
    protected: bool
    known: bool = True
    required_approvals: int | None = None
    required_checks: tuple[str, ...] | None = None
    up_to_date: bool = False  # head must contain the base (GitHub's strict checks)
    #: a merge into it goes through the forge's queue of this kind only (GitHub: a
    #: ruleset's ``merge_queue`` rule; GitLab: the project runs merge trains)
    merge_queue: QueueKind | None = None


@runtime_checkable
class Forge(Protocol):
    """One project on one forge, through its REST API. Every call may raise a
    :class:`coordination.errors.ForgeError`: ``ForgeAuthError`` (token missing or
    refused: names the variable), ``ForgeNotFound``, ``ForgeRateLimited`` (the limit
    resets past the deadline; shorter waits are waited out), ``ForgeUnavailable``
    (5xx after retries). Lists follow the forge's pagination to the end.

    Writes are idempotent where coord needs them to be: opening a pull request that
    exists for the same head and base returns it (no second is opened), adding a label
    it has is nothing, posting a status again replaces it."""

    spec: ForgeSpec

    @property
    def kind(self) -> Kind: ...

    @property
    def project(self) -> str: ...

    def user(self) -> str:
        """The login the token acts as (checks the token early; doctor, live tests)."""
        ...

    def find_pr(self, head: str, *, base: str | None = None,
                state: Literal["open", "all"] = "open") -> PullRequest | None:
        """The newest pull request from branch ``head`` of the project (into ``base``
        when given), open only unless ``state='all'``; None when there is none."""
        ...

    def get_pr(self, number: int) -> PullRequest:
        """Pull request ``number`` as it is now (``ForgeNotFound`` if none)."""
        ...

    def list_prs(self, *, label: str | None = None,
                 state: Literal["open", "closed", "all"] = "open") -> list[PullRequest]:
        """The pull requests with ``label`` (every one without), newest first; ``closed``
        includes the merged ones."""
        ...

    def open_pr(self, new: NewPullRequest) -> PullRequest:
        """Open a pull request (or return the open one of the same head and base), with
        its labels."""
        ...

    def update_pr(self, number: int, *, title: str | None = None, body: str | None = None,
                  draft: bool | None = None,
                  labels: Sequence[str] | None = None) -> PullRequest:
        """Change what is given (``labels``: the whole set, replacing; None: leave)."""
        ...

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        """Add labels (creating them on the project when the forge needs that); the
        ones it has stay."""
        ...

    def close_pr(self, number: int) -> PullRequest:
        """Close without merging (a merged one is left as it is and returned)."""
        ...

    def comment(self, number: int, body: str) -> None:
        """Add a comment to the pull request's conversation."""
        ...

    def post_status(self, sha: str, status: CommitStatus) -> None:
        """Post (or replace) the commit status ``status.context`` on ``sha``."""
        ...

    def protection(self, branch: str) -> Protection:
        """What ``branch``'s protection requires, as far as the token may read it."""
        ...

    def reviews(self, number: int) -> Reviews:
        """The pull request's reviews, counted as its base's protection counts them."""
        ...

    def checks(self, sha: str, *, branch: str | None = None) -> Checks:
        """The checks on commit ``sha``; with ``branch`` (the base), which of them its
        protection requires."""
        ...

    def mergeability(self, number: int) -> Mergeability:
        """Would the forge merge the pull request now (its reviews, required checks,
        conflicts), and every reason it would not. Waits (bounded) while the forge
        is still computing whether it conflicts."""
        ...

    def merge_refusal(self, branch: str, method: MergeMethod) -> str | None:
        """Why the project's settings would refuse a merge into ``branch`` by
        ``method`` (a method they do not allow, a merge commit under required linear
        history), read before anything merges; None: they would take it (or do not
        say)."""
        ...

    def enqueue(self, number: int, *, sha: str) -> QueueEntry:
        """Add pull request ``number`` to its base's merge queue (a GitLab merge
        train), pinned to ``sha`` (the verified head: a head that moved is refused,
        ``HeadMoved``); the queue merges it later (or removes it): :meth:`queue_entry`
        says which. Only where :meth:`mergeability` says the base has one
        (``merge_queue``): never :meth:`merge` then."""
        ...

    def queue_entry(self, number: int) -> QueueEntry:
        """Pull request ``number`` as its merge queue sees it now (one read)."""
        ...

    def merge(self, number: int, *, sha: str, method: MergeMethod = "merge",
              title: str | None = None, message: str | None = None) -> MergeResult:
        """Merge pull request ``number`` only if its head is ``sha``: ``HeadMoved`` when
        it is not (nothing merged), ``MergeRefused`` with the forge's reason when the
        forge says no. A revert pull request is opened like any other (:meth:`open_pr`
        of a branch git pushed); there is no forge call for reverting."""
        ...


@dataclass(frozen=True)
class WebhookEvent:
    """What every event read from a webhook delivery says (these below, and
    :class:`coordination.forge.issues.IssueEvent`): the forge and project it is of, and
    the delivery's id (None: the forge sent none), given by name after the event's own
    fields."""

    forge: Kind
    project: str
    delivery: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class PullRequestEvent(WebhookEvent):
    """A ``pull_request`` (GitHub, Gitea) / ``Merge Request Hook`` (GitLab) event:
    opened, edited, synchronized (new head), closed, merged, labelled..."""

    number: int
    action: str
    head_sha: str
    head_branch: str
    base_branch: str
    state: PRState


@dataclass(frozen=True)
class ReviewEvent(WebhookEvent):
    """A review submitted or dismissed, or GitLab's approval given or taken back."""

    number: int
    state: ReviewState
    author: str
    head_sha: str | None = None


@dataclass(frozen=True)
class CheckEvent(WebhookEvent):
    """A commit status or check run (GitLab: a pipeline) that changed on ``sha``;
    ``numbers`` the pull requests the forge says it concerns (often none: look them up
    by head)."""

    sha: str
    name: str
    state: CheckState
    numbers: tuple[int, ...] = ()


@dataclass(frozen=True)
class PushEvent(WebhookEvent):
    """Commits pushed to ``branch`` (a tag push is not one): ``sha`` the new tip,
    ``before`` the old one (all zeros for a new branch)."""

    branch: str
    sha: str
    before: str = ""


#: What a webhook delivery is, once parsed; None (from the parser) for an event coord
#: does not use (a ping, an issue comment).
ForgeEvent = PullRequestEvent | ReviewEvent | CheckEvent | PushEvent


class RepoLike(Protocol):
    """What :func:`coordination.forge.forge_for` reads of a repo: its name and its
    ``forge:`` (the catalog's model or view, or None)."""

    @property
    def name(self) -> str: ...

    @property
    def forge(self) -> ForgeFields | None: ...


class ForgeFields(Protocol):
    """The catalog's ``forge:`` as written (optional fields None)."""

    @property
    def kind(self) -> str: ...

    @property
    def project(self) -> str: ...

    @property
    def api(self) -> str | None: ...

    @property
    def token_env(self) -> str | None: ...

    @property
    def webhook_secret_env(self) -> str | None: ...


class ForgeFactory(Protocol):
    """What gives the forge of a repo: :func:`coordination.forge.forge_for`, or a
    :class:`coordination.forge.stub.StubForges` in unit tests (a caller takes one as a
    parameter defaulting to ``forge_for``)."""

    def __call__(self, repo: RepoLike, env: Mapping[str, str] | None = None) -> Forge: ...
