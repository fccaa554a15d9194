"""What the REST clients (``github.py``, ``gitlab.py``, ``gitea.py``) share, as PyGithub
and python-gitlab put one requester under every resource: one repository's HTTP session
(:class:`~coordination.forge.http.ForgeHTTP`: the token, rate limits, retries, pages,
errors), reading a pull request, the writes every kind sends alike (opening one, and a
second ``open_pr`` of a head finding the open one; labels, a comment, a commit status,
closing), a merge's frame (refused before the forge is asked when the pull request is
not open or its head is not the verified commit, then the kind's request, a 409 read as
a moved head, and the forge's refusal in its words), and a mergeability's frame (waiting
while the forge still computes, the reasons of :mod:`~coordination.forge.verdict`, the
forge's own verdict). GitHub and Gitea (whose API follows GitHub's) also share the pull
request object's reading, reviews counted by the base branch's protection, and the
checks that protection requires; GitLab and Gitea share drafts as a title prefix
(:class:`TitleDraftForge`).

A kind says how it differs as class data (the path of its pull requests, its page size,
its status fields and description cap, how it closes, its merge request's verb and
answers) and small hooks: its auth headers, its pull request record, its bodies (open,
merge), what the forge's word on a merge means. What differs in every field (lists,
checks, protection, merge settings) stays in the kind's module."""

from __future__ import annotations

import re
from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote

from coordination.errors import ForgeError, MergeRefused
from coordination.forge.base import (
    Blocker,
    Check,
    Checks,
    CommitStatus,
    ForgeSpec,
    Mergeability,
    MergeMethod,
    MergeResult,
    NewPullRequest,
    Options,
    ProjectClient,
    Protection,
    PRState,
    PullRequest,
    QueueEntry,
    QueueKind,
    Review,
    Reviews,
    ReviewState,
    StatusState,
)
from coordination.forge.events import check_state
from coordination.forge.http import ForgeHTTP
from coordination.forge.verdict import blockers, forge_says_no, head_moved, not_open

if TYPE_CHECKING:
    import httpx


def pull_request(data: Mapping[str, Any], *, merged: bool, title: str,
                 draft: bool) -> PullRequest:
    """A pull request object of GitHub's shape (Gitea's follows it) as coord's record;
    the kind reads whether it merged, its title and whether it is a draft."""
    return PullRequest(
        number=int(data["number"]), url=str(data["html_url"]),
        state=PRState.merged if merged else PRState(str(data["state"])),
        head_sha=str(data["head"]["sha"]), head_branch=str(data["head"]["ref"]),
        base_branch=str(data["base"]["ref"]), title=title, body=str(data.get("body") or ""),
        draft=draft, labels=tuple(str(label["name"]) for label in data.get("labels") or ()),
        merge_sha=str(data["merge_commit_sha"]) if merged and data.get(
            "merge_commit_sha") else None,
        author=str((data.get("user") or {}).get("login") or ""))


@dataclass(frozen=True)
class DraftTitle:
    """A draft written as a title prefix (GitLab's ``Draft:``, Gitea's ``WIP:``):
    ``pattern`` every prefix the forge reads as one, ``prefix`` the one coord writes."""

    pattern: re.Pattern[str]
    prefix: str

    def bare(self, title: str) -> str:
        return self.pattern.sub("", title)

    def marks(self, title: str) -> bool:
        return bool(self.pattern.match(title))

    def titled(self, title: str, draft: bool) -> str:
        """``title`` with the prefix, or without any."""
        bare = self.bare(title)
        return f"{self.prefix} {bare}" if draft else bare


class RestForge(ProjectClient):
    """One repository (project) on a forge with a REST API. A subclass sets the class
    data below (``MERGE_FIELDS``, or its own ``_merge_body``) and implements ``_auth``,
    ``_pr``, ``_open_body`` (:class:`TitleDraftForge` has one), the mergeability hooks
    (``_merge_word``, ``_conflict``, ``_would_merge``) and the reads and writes that are
    its own (lists, protection, checks, ``update_pr``)."""

    #: The field of ``GET /user`` that is the token's user.
    USER_FIELD: ClassVar[str] = "login"
    #: Pull requests under the repository's path (GitLab: ``merge_requests``).
    PULLS: ClassVar[str] = "pulls"
    #: How a pull request is named in messages (``owner/name#3``; GitLab ``group/p!3``).
    NUMBER_SIGN: ClassVar[str] = "#"
    #: A list's page: the size parameter's name and the most the forge gives in one.
    PAGE: ClassVar[tuple[str, int]] = ("per_page", 100)
    #: What the forge answers to opening a second pull request of a head and base
    #: (GitHub 422), and whether labels go after opening (GitHub opens unlabelled).
    OPEN_EXISTS: ClassVar[int] = 409
    LABELS_AFTER_OPEN: ClassVar[bool] = False
    #: A commit status: the field its name goes in, the forge's word for each state, and
    #: the longest description the forge keeps (a longer one is cut, not refused).
    STATUS_NAME: ClassVar[str] = "context"
    STATUS_WORDS: ClassVar[Mapping[StatusState, str]] = {s: s.value for s in StatusState}
    STATUS_DESCRIPTION_MAX: ClassVar[int] = 255
    #: A review's ``state`` -> coord's (any other word is a comment).
    REVIEW_WORDS: ClassVar[Mapping[str, ReviewState]] = {}
    #: Closing a pull request without merging it: the verb and the body.
    CLOSE: ClassVar[tuple[str, Mapping[str, str]]] = ("PATCH", {"state": "closed"})
    #: The merge request: its verb (on ``.../{PULLS}/{n}/merge``), the refusals read
    #: rather than raised, and the statuses that mean it was accepted.
    MERGE_VERB: ClassVar[str] = "PUT"
    MERGE_REFUSALS: ClassVar[tuple[int, ...]] = (405, 409, 422)
    MERGE_ACCEPTED: ClassVar[Container[int]] = range(200, 300)
    #: A 409 to the merge is the head moved even when a fresh read shows the same head
    #: (GitHub's says only that); otherwise a 409 on an unmoved head is a refusal.
    MERGE_409_IS_MOVED: ClassVar[bool] = False
    #: The merge request's body, in the forge's field names and order: each field ->
    #: what it holds (``sha``: the verified head it is pinned to, ``method``, ``title``,
    #: ``message``; an empty title or message is left out).
    MERGE_FIELDS: ClassVar[Mapping[str, str]] = {}
    #: The field the forge's word on mergeability is quoted as (Gitea has no field: its
    #: word is coord's reading of ``mergeable``), and its words for "behind the base".
    VERDICT_FIELD: ClassVar[str] = ""
    BEHIND: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: ForgeSpec, env: Mapping[str, str],
                 options: Options | None = None) -> None:
        self.spec = spec
        self.http = ForgeHTTP(spec, env, options, self._auth)
        self.base = self._base_path(spec.project)

    @staticmethod
    def _auth(token: str) -> dict[str, str]:
        """The token as the request's headers."""
        raise NotImplementedError

    @staticmethod
    def _base_path(project: str) -> str:
        """The repository's path under the API root (``owner/name``)."""
        owner, name = project.split("/", 1)
        return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.spec.project!r}, api={self.spec.api!r}, "
                f"token={self.http.token!r})")

    def _pages(self, path: str, params: Mapping[str, Any] | None = None, *,
               key: str | None = None) -> Iterator[Any]:
        """Every item of a list, in the kind's page size."""
        size, most = self.PAGE
        return self.http.pages(path, params, per_page=most, size_param=size, key=key)

    # reads ------------------------------------------------------------------------------

    def _pr(self, data: Mapping[str, Any]) -> PullRequest:
        """The forge's pull request object as coord's record."""
        raise NotImplementedError

    def _pull(self, number: int) -> str:
        return f"{self.base}/{self.PULLS}/{number}"

    def user(self) -> str:
        return str(self.http.get("/user")[self.USER_FIELD])

    def _raw_pr(self, number: int) -> dict[str, Any]:
        return dict(self.http.get(self._pull(number)))

    def get_pr(self, number: int) -> PullRequest:
        return self._pr(self._raw_pr(number))

    # the kind's own, called by what is shared here
    def protection(self, branch: str) -> Protection:
        raise NotImplementedError

    def find_pr(self, head: str, *, base: str | None = None,
                state: Literal["open", "all"] = "open") -> PullRequest | None:
        raise NotImplementedError

    def checks(self, sha: str, *, branch: str | None = None,
               protection: Protection | None = None) -> Checks:
        raise NotImplementedError

    def reviews(self, number: int, *, base: str | None = None,
                protection: Protection | None = None) -> Reviews:
        """Each reviewer's latest review (GitHub's shape: Gitea's follows it), counted as
        the base branch's protection counts approvals (a number the branch requires);
        ``protection``: the base's, read already (a mergeability asks it once for
        reviews and checks)."""
        latest: dict[str, Review] = {}
        for item in self._pages(f"{self._pull(number)}/reviews"):
            state = self.REVIEW_WORDS.get(str(item.get("state")), ReviewState.commented)
            who = str((item.get("user") or {}).get("login") or "")
            if state is ReviewState.commented and who in latest:
                continue  # a comment after an approval leaves the approval standing
            if self._review_counts(item, state):
                latest[who] = Review(who, state, item.get("commit_id"), item.get("submitted_at"))
        if protection is None:
            protection = self.protection(base or self.get_pr(number).base_branch)
        required = protection.required_approvals
        return Reviews(
            tuple(w for w, r in latest.items() if r.state is ReviewState.approved),
            tuple(w for w, r in latest.items() if r.state is ReviewState.changes_requested),
            required, None, tuple(latest.values()))

    def _review_counts(self, item: Mapping[str, Any], state: ReviewState) -> bool:
        """(A kind whose protection leaves some reviews out says which.)"""
        return True

    def _status_check(self, status: Mapping[str, Any], state_field: str = "status") -> Check:
        """One commit status as a check, named by its ``STATUS_NAME`` field."""
        name = str(status.get(self.STATUS_NAME) or "")
        return Check(name, check_state(status.get(state_field)), url=status.get("target_url"),
                     description=str(status.get("description") or ""))

    def _required_checks(self, branch: str | None,
                         protection: Protection | None) -> tuple[str, ...] | None:
        """The checks ``branch``'s protection requires (none when it is unprotected;
        None when the forge would not say, or no branch is given)."""
        if branch is None:
            return None
        protection = protection or self.protection(branch)
        return protection.required_checks if protection.protected else ()

    # writes -----------------------------------------------------------------------------

    def _open_body(self, new: NewPullRequest) -> dict[str, Any]:
        """The request that opens ``new``, in the forge's field names."""
        raise NotImplementedError

    def open_pr(self, new: NewPullRequest) -> PullRequest:
        response = self.http.send("POST", f"{self.base}/{self.PULLS}",
                                  json_body=self._open_body(new), allow=(self.OPEN_EXISTS,))
        if response.status_code == self.OPEN_EXISTS:  # one is open for this head already
            return self._labelled(self._existing(new, response), new.labels)
        pr = self._pr(response.json())
        return self._labelled(pr, new.labels) if self.LABELS_AFTER_OPEN else pr

    def _existing(self, new: NewPullRequest, response: httpx.Response) -> PullRequest:
        """The open pull request of ``new``'s head and base, when the forge would not open
        a second; a refusal when there is none."""
        existing = self.find_pr(new.head, base=new.base)
        if existing is None:
            raise self.http.refusal(response, f"POST {self.base}/{self.PULLS}")
        return existing

    def _labelled(self, pr: PullRequest, labels: Sequence[str]) -> PullRequest:
        """``pr`` with ``labels`` added (and read again) when it lacks one."""
        if labels and not set(labels) <= set(pr.labels):
            self.add_labels(pr.number, labels)
            return self.get_pr(pr.number)
        return pr

    def _label_value(self, labels: Sequence[str]) -> Any:
        """``labels`` as the forge takes them in a request: names (GitHub), a comma
        list (GitLab), ids (Gitea)."""
        return list(labels)

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        # through the pull request's issue (GitHub, Gitea)
        self.http.write("POST", f"{self.base}/issues/{number}/labels",
                        {"labels": self._label_value(labels)})

    def _comments(self, number: int) -> str:
        """Where a pull request's comments are posted (its issue's, on GitHub and Gitea)."""
        return f"{self.base}/issues/{number}/comments"

    def comment(self, number: int, body: str) -> None:
        self.http.write("POST", self._comments(number), {"body": body})

    def post_status(self, sha: str, status: CommitStatus) -> None:
        body: dict[str, Any] = {"state": self.STATUS_WORDS[status.state],
                                self.STATUS_NAME: status.context,
                                "description": status.description[:self.STATUS_DESCRIPTION_MAX]}
        if status.target_url:
            body["target_url"] = status.target_url
        self.http.write("POST", f"{self.base}/statuses/{sha}", body)

    def close_pr(self, number: int) -> PullRequest:
        pr = self.get_pr(number)
        if not pr.is_open:
            return pr
        verb, body = self.CLOSE
        return self._pr(self.http.write(verb, self._pull(number), dict(body)))

    # mergeability -----------------------------------------------------------------------

    def mergeability(self, number: int) -> Mergeability:
        data = self._raw_pr(number)
        clock, waited = self.http.options.clock, 0.0
        # A forge computes mergeability in the background: wait (bounded) while it does.
        most = min(self.http.options.merge_wait, self.COMPUTING_WAIT or float("inf"))
        while self._computing(data) and waited < most:
            clock.sleep(1.0)
            waited += 1.0
            data = self._raw_pr(number)
        pr = self._pr(data)
        word = self._merge_word(data)
        reviews, checks, queue = self._reviews_and_checks(pr)
        conflict = self._conflict(data, pr, word)
        found = blockers(pr, reviews, checks, conflict, behind=word in self.BEHIND)
        found += self._word_blockers(word)
        mergeable = pr.is_open and self._would_merge(word, pr, found)
        if not mergeable:
            said = f"{self.VERDICT_FIELD} {word}" if self.VERDICT_FIELD else word
            found = forge_says_no(pr, found, said, self.http.name)
        return Mergeability(pr, mergeable, () if mergeable else found, reviews, checks,
                            conflict, word, queue)

    #: The longest a kind's :meth:`_computing` is waited out (None: the options'
    #: ``merge_wait``): for a kind whose "still computing" reads like a settled no.
    COMPUTING_WAIT: float | None = None

    def _computing(self, data: Mapping[str, Any]) -> bool:
        """The forge is still computing whether the pull request merges (or may be)."""
        return False

    def _merge_word(self, data: Mapping[str, Any]) -> str:
        """The forge's word on whether the pull request merges."""
        raise NotImplementedError

    def _reviews_and_checks(self, pr: PullRequest
                            ) -> tuple[Reviews, Checks, QueueKind | None]:
        """The reviews and head checks a mergeability reads, and the merge queue its
        base requires (the base's rules read once, for all three)."""
        protection = self._merge_rules(pr.base_branch)
        return (self.reviews(pr.number, base=pr.base_branch, protection=protection),
                self.checks(pr.head_sha, branch=pr.base_branch, protection=protection),
                protection.merge_queue)

    def _merge_rules(self, branch: str) -> Protection:
        """What a merge into ``branch`` must meet: its protection (a kind whose rules
        are the project's reads them there)."""
        return self.protection(branch)

    def _conflict(self, data: Mapping[str, Any], pr: PullRequest, word: str) -> bool | None:
        """Whether it conflicts with its base; None while the forge does not know."""
        raise NotImplementedError

    def _word_blockers(self, word: str) -> tuple[Blocker, ...]:
        """(Reasons only the forge's word names.)"""
        return ()

    def _would_merge(self, word: str, pr: PullRequest, found: tuple[Blocker, ...]) -> bool:
        """The forge's own verdict on an open pull request."""
        raise NotImplementedError

    # merging ----------------------------------------------------------------------------

    def merge_refusal(self, branch: str, method: MergeMethod) -> str | None:
        """(A kind whose settings coord reads says why they refuse ``method``.)"""
        return None

    def enqueue(self, number: int, *, sha: str) -> QueueEntry:
        raise self.http.error(ForgeError, f"{self.spec.project}: {self.http.name} has no "
                              "merge queue coord can use")

    def queue_entry(self, number: int) -> QueueEntry:
        pr = self.get_pr(number)
        return QueueEntry(number, pr.merged, pr_state=pr.state.value.upper(),
                          head_sha=pr.head_sha, merge_sha=pr.merge_sha)

    def merge(self, number: int, *, sha: str, method: MergeMethod = "merge",
              title: str | None = None, message: str | None = None) -> MergeResult:
        where, _ = self._merge_preconditions(number, sha)
        body = self._merge_body(where, number, sha, method, title, message)
        response = self._merge_request(where, number, sha, body, "the merge")
        return self._merge_result(where, number, sha, method, response)

    def _merge_request(self, where: str, number: int, sha: str, body: Mapping[str, Any],
                       what: str) -> httpx.Response:
        """The merge request (``MERGE_VERB`` on ``.../{n}/merge``, pinned to ``sha``
        by ``body``), accepted: a 409 on a moved head is ``HeadMoved``, any other
        refusal ``MergeRefused`` in the forge's words (``what``: what was refused).
        GitLab's merge train is added to by the same request (auto-merge set)."""
        response = self.http.send(self.MERGE_VERB, f"{self._pull(number)}/merge",
                                  json_body=dict(body), allow=self.MERGE_REFUSALS)
        status = response.status_code
        if status == 409:
            now = self.get_pr(number).head_sha
            if now != sha or self.MERGE_409_IS_MOVED:
                raise head_moved(where, number, sha, now, self.kind, self.project, status=409)
        if status not in self.MERGE_ACCEPTED:
            reason = self.http.forge_words(response) or "not mergeable"
            raise MergeRefused(f"{where}: {self.http.name} refused {what}: {reason}",
                               number=number, reason=reason, forge=self.kind,
                               project=self.project, status=status)
        return response

    def _merge_preconditions(self, number: int, sha: str) -> tuple[str, dict[str, Any]]:
        """What every kind checks before it asks the forge to merge (or enqueue): the
        pull request is open (``MergeRefused`` otherwise: merged or closed by hand is
        reported, never merged over) and its head is ``sha``, the verified commit
        (``HeadMoved``). Returns how messages name the pull request, and the pull
        request as the forge gave it (read once: GitHub's enqueue takes its node id)."""
        data = self._raw_pr(number)
        pr = self._pr(data)
        where = f"{self.spec.project}{self.NUMBER_SIGN}{number}"
        if not pr.is_open:
            raise not_open(where, pr, self.kind, self.project)
        if pr.head_sha != sha:
            raise head_moved(where, number, sha, pr.head_sha, self.kind, self.project)
        return where, data

    def _merge_body(self, where: str, number: int, sha: str, method: MergeMethod,
                    title: str | None, message: str | None) -> dict[str, Any]:
        """The merge request's body (pinned to ``sha``) from ``MERGE_FIELDS``; a kind
        may refuse a ``method`` the project cannot merge with (``MergeRefused``, nothing
        sent)."""
        values = {"sha": sha, "method": method, "title": title, "message": message}
        return {field: values[what] for field, what in self.MERGE_FIELDS.items()
                if values[what]}

    def _merge_result(self, where: str, number: int, sha: str, method: MergeMethod,
                      response: httpx.Response) -> MergeResult:
        """What an accepted merge request left, read from the pull request after it
        (:meth:`_after_merge`): ``MergeRefused`` when it did not merge after all."""
        merged = self._after_merge(number, response)
        if not merged.merged:
            state = merged.state.value
            raise MergeRefused(f"{where}: {self.http.name} did not merge it (it is {state})",
                               number=merged.number, reason=f"left {state}", forge=self.kind,
                               project=self.project)
        return MergeResult(number, merged.merge_sha or self._unsaid_merge_sha(sha), sha,
                           method, "")

    def _after_merge(self, number: int, response: httpx.Response) -> PullRequest:
        """The pull request after an accepted merge (read again: Gitea answers with no
        body)."""
        return self.get_pr(number)

    def _unsaid_merge_sha(self, sha: str) -> str:
        """The merge's commit when the pull request does not name one (unknown)."""
        return ""


class TitleDraftForge(RestForge):
    """A forge whose draft is a title prefix (GitLab, Gitea): the prefix is added and
    stripped here, and a pull request's title, body and labels are changed in one
    request (``UPDATE_VERB`` on the pull request, its body in ``BODY_FIELD``)."""

    DRAFT: ClassVar[DraftTitle]
    UPDATE_VERB: ClassVar[str] = "PATCH"
    BODY_FIELD: ClassVar[str] = "body"
    #: The fields of the head and base branches in the open request.
    BRANCH_FIELDS: ClassVar[tuple[str, str]] = ("head", "base")

    def _open_body(self, new: NewPullRequest) -> dict[str, Any]:
        head, base = self.BRANCH_FIELDS
        body: dict[str, Any] = {head: new.head, base: new.base,
                                "title": self.DRAFT.titled(new.title, new.draft),
                                self.BODY_FIELD: new.body}
        if new.labels:
            body["labels"] = self._label_value(new.labels)
        return body

    def update_pr(self, number: int, *, title: str | None = None, body: str | None = None,
                  draft: bool | None = None,
                  labels: Sequence[str] | None = None) -> PullRequest:
        change: dict[str, Any] = {}
        if title is not None or draft is not None:
            current = self.get_pr(number)
            change["title"] = self.DRAFT.titled(title if title is not None else current.title,
                                                current.draft if draft is None else draft)
        if body is not None:
            change[self.BODY_FIELD] = body
        if labels is not None:
            change["labels"] = self._label_value(labels)
        if not change:
            return self.get_pr(number)
        return self._pr(self.http.write(self.UPDATE_VERB, self._pull(number), change))


__all__ = ["DraftTitle", "RestForge", "TitleDraftForge", "pull_request"]
