"""What the REST clients (``github.py``, ``gitlab.py``, ``gitea.py``) share: one
repository's HTTP session (:class:`~coordination.forge.http.ForgeHTTP`: the token,
rate limits, retries, pages), reading a pull request, the writes every kind sends alike
(a comment, a commit status, closing, a second ``open_pr`` of a head finding the open
one), and a merge's frame: refused before the forge is asked when the pull request is
not open or its head is not the verified commit, then the kind's request, a 409 read as
a moved head, and the forge's refusal in its words. GitHub and Gitea (whose API follows
GitHub's) also share the pull request object's reading and reviews counted by the base
branch's protection.

A kind says how it differs as class data (the path of its pull requests, its status
fields and description cap, how it closes, its merge request's verb and answers) and
four small hooks: its auth headers, its pull request record, its merge request's body,
and what the forge's answer to it means. What differs in every field (lists, checks,
mergeability, labels, drafts) stays in the kind's module."""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import quote

from coordination.errors import MergeRefused
from coordination.forge.base import (
    CommitStatus,
    ForgeSpec,
    MergeMethod,
    MergeResult,
    NewPullRequest,
    Options,
    ProjectClient,
    Protection,
    PRState,
    PullRequest,
    Review,
    Reviews,
    ReviewState,
    StatusState,
)
from coordination.forge.http import ForgeHTTP
from coordination.forge.verdict import head_moved, not_open

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


class RestForge(ProjectClient):
    """One repository (project) on a forge with a REST API. A subclass sets the class
    data below and implements ``_auth``, ``_pr``, ``_merge_body`` and
    ``_merge_result`` (and the reads and writes that are its own)."""

    #: The field of ``GET /user`` that is the token's user.
    USER_FIELD: ClassVar[str] = "login"
    #: Pull requests under the repository's path (GitLab: ``merge_requests``).
    PULLS: ClassVar[str] = "pulls"
    #: How a pull request is named in messages (``owner/name#3``; GitLab ``group/p!3``).
    NUMBER_SIGN: ClassVar[str] = "#"
    #: A commit status: the field its name goes in, the forge's word for each state, and
    #: the longest description the forge keeps (a longer one is cut, not refused).
    STATUS_NAME: ClassVar[str] = "context"
    STATUS_WORDS: ClassVar[Mapping[StatusState, str]] = {s: s.value for s in StatusState}
    STATUS_DESCRIPTION_MAX: ClassVar[int] = 255
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

    def _counted(self, number: int, latest: Mapping[str, Review], base: str | None,
                 protection: Protection | None = None) -> Reviews:
        """Each reviewer's latest review, counted as the base branch's protection counts
        approvals (GitHub, Gitea: a number the branch requires); ``protection``: the
        base's, read already (a mergeability asks it once for reviews and checks)."""
        if protection is None:
            if base is None:
                base = self.get_pr(number).base_branch
            protection = self.protection(base)
        required = protection.required_approvals
        return Reviews(
            tuple(w for w, r in latest.items() if r.state is ReviewState.approved),
            tuple(w for w, r in latest.items() if r.state is ReviewState.changes_requested),
            required, None, tuple(latest.values()))

    # writes -----------------------------------------------------------------------------

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        raise NotImplementedError

    def _existing(self, new: NewPullRequest, response: httpx.Response) -> PullRequest:
        """The open pull request of ``new``'s head and base, when the forge would not open
        a second (GitHub 422, GitLab and Gitea 409); a refusal when there is none."""
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

    # merging ----------------------------------------------------------------------------

    def merge_refusal(self, branch: str, method: MergeMethod) -> str | None:
        """(A kind whose settings coord reads says why they refuse ``method``.)"""
        return None

    def merge(self, number: int, *, sha: str, method: MergeMethod = "merge",
              title: str | None = None, message: str | None = None) -> MergeResult:
        where = self._merge_preconditions(number, sha)
        body = self._merge_body(where, number, sha, method, title, message)
        response = self.http.send(self.MERGE_VERB, f"{self._pull(number)}/merge",
                                  json_body=body, allow=self.MERGE_REFUSALS)
        status = response.status_code
        if status == 409:
            now = self.get_pr(number).head_sha
            if now != sha or self.MERGE_409_IS_MOVED:
                raise head_moved(where, number, sha, now, self.kind, self.project, status=409)
        if status not in self.MERGE_ACCEPTED:
            reason = self.http.forge_words(response) or "not mergeable"
            raise MergeRefused(f"{where}: {self.http.name} refused the merge: {reason}",
                               number=number, reason=reason, forge=self.kind,
                               project=self.project, status=status)
        return self._merge_result(where, number, sha, method, response)

    def _merge_preconditions(self, number: int, sha: str) -> str:
        """What every kind checks before it asks the forge to merge: the pull request is
        open (``MergeRefused`` otherwise: merged or closed by hand is reported, never
        merged over) and its head is ``sha``, the verified commit (``HeadMoved``).
        Returns how messages name the pull request."""
        pr = self.get_pr(number)
        where = f"{self.spec.project}{self.NUMBER_SIGN}{number}"
        if not pr.is_open:
            raise not_open(where, pr, self.kind, self.project)
        if pr.head_sha != sha:
            raise head_moved(where, number, sha, pr.head_sha, self.kind, self.project)
        return where

    def _merge_body(self, where: str, number: int, sha: str, method: MergeMethod,
                    title: str | None, message: str | None) -> dict[str, Any]:
        """The merge request's body (pinned to ``sha``); may refuse a ``method`` the
        project cannot merge with (``MergeRefused``, nothing sent)."""
        raise NotImplementedError

    def _merge_result(self, where: str, number: int, sha: str, method: MergeMethod,
                      response: httpx.Response) -> MergeResult:
        """What an accepted merge request left: ``MergeRefused`` when the forge says it
        did not merge after all."""
        raise NotImplementedError

    def _unmerged(self, where: str, pr: PullRequest) -> MergeRefused:
        """The error for a merge the forge accepted that left the pull request unmerged."""
        state = pr.state.value
        return MergeRefused(f"{where}: {self.http.name} did not merge it (it is {state})",
                            number=pr.number, reason=f"left {state}", forge=self.kind,
                            project=self.project)


__all__ = ["RestForge", "pull_request"]
