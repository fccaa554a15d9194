"""GitLab (gitlab.com and self-hosted, ``api: https://gitlab.example.com/api/v4``)
through the REST API v4: merge requests are GitLab's pull requests, ``number`` is an
MR's ``iid``, the project is addressed by its URL-encoded path.

A draft is GitLab's ``Draft:`` title prefix. Whether it would merge is GitLab's
``detailed_merge_status`` (``mergeable``: yes); approvals are the MR's approval state
(``approvals_left``); checks are the head's commit statuses (CI jobs report as such),
and with "Pipelines must succeed" the head's latest pipeline is required, named
``pipeline``. A merge is ``PUT .../merge_requests/:iid/merge`` with ``sha`` (409 when the
head moved) and ``squash``; ``rebase`` needs a project whose merge method is
fast-forward or semi-linear (GitLab merges by the project's method).

A project that runs merge trains (``merge_trains_enabled``) takes a merge request onto
its train through the same request with ``auto_merge`` set (and the deprecated
``merge_when_pipeline_succeeds``, which GitLab before ``auto_merge`` reads), pinned by
``sha`` (:meth:`GitLab.enqueue`); the merge request says it is on the train while its
auto-merge is set (``merge_when_pipeline_succeeds``) and it is open, merged once the
train merged it, and why the train dropped it in ``merge_error``, when GitLab says."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from coordination.errors import MergeRefused
from coordination.forge.base import (
    Blocker,
    Check,
    Checks,
    MergeMethod,
    PRState,
    Protection,
    PullRequest,
    QueueEntry,
    Review,
    Reviews,
    ReviewState,
    StatusState,
)
from coordination.forge.events import check_state
from coordination.forge.rest import DraftTitle, TitleDraftForge

if TYPE_CHECKING:
    import httpx

DRAFT = DraftTitle(re.compile(r"^\s*(?:\[draft\]|\(draft\)|draft:|draft\s-|\[wip\]|wip:)\s*",
                              re.I), "Draft:")
#: detailed_merge_status values GitLab is still computing.
CHECKING = ("checking", "unchecked", "preparing", "approvals_syncing")
PIPELINE = "pipeline"
_STATUS = {StatusState.success: "success", StatusState.failure: "failed",
           StatusState.error: "failed", StatusState.pending: "pending"}
#: detailed_merge_status -> what coord names (what the other blockers cannot say).
_DETAIL = {"discussions_not_resolved": "its discussions are not resolved",
           "requested_changes": "a reviewer requested changes",
           "blocked_status": "another merge request blocks it",
           "jira_association_missing": "its title or description names no Jira issue",
           "merge_request_blocked": "another merge request blocks it",
           "security_policy_violations": "a security policy blocks it",
           "locked_paths": "it touches locked paths", "locked_lfs_files": "it changes locked files"}
#: The project merge methods that can rebase (fast-forward, semi-linear).
REBASING = ("ff", "rebase_merge")


def _rebase_refusal(project: Mapping[str, Any]) -> str | None:
    """Why the project cannot merge by rebasing: GitLab merges by the project's merge
    method, and only fast-forward and semi-linear rebase."""
    how = str(project.get("merge_method") or "merge")
    if how in REBASING:
        return None
    return (f"the project merges with {how!r}; merge_method: rebase needs its merge "
            "method to be fast-forward or semi-linear")


class GitLab(TitleDraftForge):
    """One project on GitLab (``spec.project`` is its path, ``group/sub/name``)."""

    USER_FIELD = "username"
    PULLS = "merge_requests"
    NUMBER_SIGN = "!"
    STATUS_NAME = "name"
    STATUS_WORDS = _STATUS
    CLOSE = ("PUT", {"state_event": "close"})
    MERGE_REFUSALS = (405, 406, 409, 422)
    MERGE_ACCEPTED = (200,)
    VERDICT_FIELD = "detailed_merge_status"
    BEHIND = ("need_rebase",)
    DRAFT = DRAFT
    UPDATE_VERB = "PUT"
    BODY_FIELD = "description"
    BRANCH_FIELDS = ("source_branch", "target_branch")

    @staticmethod
    def _auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @staticmethod
    def _base_path(project: str) -> str:
        return f"/projects/{quote(project, safe='')}"

    def _pr(self, data: Mapping[str, Any]) -> PullRequest:
        state = {"opened": PRState.open, "merged": PRState.merged}.get(
            str(data["state"]), PRState.closed)
        merge_sha = data.get("merge_commit_sha") or data.get("squash_commit_sha") or (
            data.get("sha") if state is PRState.merged else None)
        return PullRequest(
            number=int(data["iid"]), url=str(data["web_url"]), state=state,
            head_sha=str(data.get("sha") or ""), head_branch=str(data["source_branch"]),
            base_branch=str(data["target_branch"]), title=DRAFT.bare(str(data["title"])),
            body=str(data.get("description") or ""),
            draft=bool(data.get("draft") or data.get("work_in_progress")),
            labels=tuple(str(x) for x in data.get("labels") or ()),
            merge_sha=str(merge_sha) if state is PRState.merged and merge_sha else None,
            author=str((data.get("author") or {}).get("username") or ""))

    # reads ------------------------------------------------------------------------------

    def find_pr(self, head: str, *, base: str | None = None,
                state: Literal["open", "all"] = "open") -> PullRequest | None:
        params: dict[str, Any] = {"source_branch": head, "order_by": "created_at",
                                  "sort": "desc", "state": "opened" if state == "open" else "all"}
        if base:
            params["target_branch"] = base
        for item in self._pages(f"{self.base}/merge_requests", params):
            return self._pr(item)
        return None

    def list_prs(self, *, label: str | None = None,
                 state: Literal["open", "closed", "all"] = "open") -> list[PullRequest]:
        params: dict[str, Any] = {"state": "opened" if state == "open" else "all",
                                  "order_by": "created_at", "sort": "desc"}
        if label is not None:
            params["labels"] = label
        prs = [self._pr(i) for i in self._pages(f"{self.base}/merge_requests", params)]
        return [p for p in prs if state != "closed" or not p.is_open]

    def protection(self, branch: str) -> Protection:
        """Protected or not, and the project's rules (:meth:`_merge_rules`)."""
        response = self.http.send(
            "GET", f"{self.base}/protected_branches/{quote(branch, safe='')}", allow=(404,))
        return replace(self._merge_rules(branch), protected=response.status_code == 200)

    def _merge_rules(self, branch: str) -> Protection:
        """The pipeline the project requires and its merge train (the project's, read
        once: every branch's merge goes by them; no protected branch read). Approvals
        are a merge request's rule on GitLab (its approval state), not the branch's:
        unknown here, counted by reviews()."""
        info = self.http.get(self.base)
        required = (PIPELINE,) if info.get("only_allow_merge_if_pipeline_succeeds") else ()
        return Protection(branch, True, True, None, required,
                          merge_queue="merge_train" if info.get("merge_trains_enabled")
                          else None)

    def reviews(self, number: int, *, base: str | None = None,
                protection: Protection | None = None) -> Reviews:
        """The merge request's approval state (its own rule, whatever the branch)."""
        data = self.http.get(f"{self._pull(number)}/approvals")
        approved = tuple(str(a["user"]["username"]) for a in data.get("approved_by") or ())
        required = data.get("approvals_required")
        left = data.get("approvals_left")
        return Reviews(approved, (), None if required is None else int(required),
                       None if left is None else int(left),
                       tuple(Review(w, ReviewState.approved) for w in approved))

    def checks(self, sha: str, *, branch: str | None = None,
               protection: Protection | None = None) -> Checks:
        """The head's commit statuses and its latest pipeline; with ``branch``, the
        pipeline is required when the project says pipelines must succeed
        (``protection``: read already, it says)."""
        found: dict[str, Check] = {}
        # Newest first (GitLab lists oldest first by default): the first of a name is
        # its latest, so a re-run that passed is not read as the failure before it.
        for s in self._pages(f"{self.base}/repository/commits/{sha}/statuses",
                             {"all": "false", "order_by": "id", "sort": "desc"}):
            check = self._status_check(s)
            found.setdefault(check.name, check)
        pipes = self.http.get(f"{self.base}/pipelines",
                              {"sha": sha, "order_by": "id", "sort": "desc", "per_page": 1})
        if pipes:
            found[PIPELINE] = Check(PIPELINE, check_state(pipes[0].get("status")),
                                    url=pipes[0].get("web_url"))
        required: tuple[str, ...] | None = None
        if branch is not None:
            required = (protection or self._merge_rules(branch)).required_checks or ()
        return Checks.marked(sha, found.values(), required)

    # mergeability: GitLab's detailed_merge_status ---------------------------------------

    def _computing(self, data: Mapping[str, Any]) -> bool:
        return str(data.get("detailed_merge_status")) in CHECKING

    def _merge_word(self, data: Mapping[str, Any]) -> str:
        return str(data.get("detailed_merge_status") or data.get("merge_status") or "unknown")

    def _conflict(self, data: Mapping[str, Any], pr: PullRequest, word: str) -> bool | None:
        return bool(data.get("has_conflicts")) if word not in CHECKING else None

    def _word_blockers(self, word: str) -> tuple[Blocker, ...]:
        return (Blocker("forge", _DETAIL[word]),) if word in _DETAIL else ()

    def _would_merge(self, word: str, pr: PullRequest, found: tuple[Blocker, ...]) -> bool:
        return word == "mergeable"

    # writes -----------------------------------------------------------------------------

    def _label_value(self, labels: Sequence[str]) -> str:
        return ",".join(labels)

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        self.http.write("PUT", self._pull(number), {"add_labels": self._label_value(labels)})

    def _comments(self, number: int) -> str:
        return f"{self._pull(number)}/notes"

    def merge_refusal(self, branch: str, method: MergeMethod) -> str | None:
        """The project's ``merge_method`` (a rebase needs fast-forward or semi-linear)
        and squash option (``never``: no squash); none for a project that runs merge
        trains (its train merges by the project's own method, as a GitHub merge queue
        by its rule's)."""
        info = self.http.get(self.base)
        if info.get("merge_trains_enabled"):
            return None
        reason = _rebase_refusal(info) if method == "rebase" else None
        if reason:
            return f"{self.spec.project}: {reason}"
        if method == "squash" and str(info.get("squash_option") or "") == "never":
            return f"{self.spec.project}: the project never squashes (squash_option: never)"
        return None

    def _merge_body(self, where: str, number: int, sha: str, method: MergeMethod,
                    title: str | None, message: str | None) -> dict[str, Any]:
        reason = _rebase_refusal(self.http.get(self.base)) if method == "rebase" else None
        if reason:
            raise MergeRefused(f"{where}: {reason}", number=number, reason=reason,
                               forge=self.kind, project=self.project)
        body: dict[str, Any] = {"sha": sha, "squash": method == "squash"}
        text = "\n\n".join(x for x in (title, message) if x)
        if text:
            body["squash_commit_message" if method == "squash" else "merge_commit_message"] = text
        return body

    def enqueue(self, number: int, *, sha: str) -> QueueEntry:
        """The merge request onto the project's merge train: ``PUT .../merge`` with
        ``auto_merge`` (and the deprecated ``merge_when_pipeline_succeeds``, the name an
        older GitLab reads) and ``sha`` = the verified head (checked here first, and by GitLab
        again: 409, never queued); refused (``MergeRefused``) when GitLab answers
        without setting it to merge."""
        where, _ = self._merge_preconditions(number, sha)
        body = {"sha": sha, "auto_merge": True, "merge_when_pipeline_succeeds": True}
        response = self._merge_request(where, number, sha, body,
                                       "to add it to the merge train")
        entry = self._train_entry(response.json())
        if not entry.merged and not entry.queued:
            reason = entry.reason or f"its auto-merge is not set (it is {entry.pr_state.lower()})"
            raise MergeRefused(f"{where}: GitLab did not add it to the merge train: {reason}",
                               number=number, reason=reason, forge=self.kind,
                               project=self.project)
        return entry

    def queue_entry(self, number: int) -> QueueEntry:
        """The merge request read once: on the train while open with its auto-merge
        set (its ``detailed_merge_status`` the entry's state; GitLab's merge request
        gives no position), merged, or neither (with ``merge_error``, when set)."""
        return self._train_entry(self._raw_pr(number))

    def _train_entry(self, data: Mapping[str, Any]) -> QueueEntry:
        pr = self._pr(data)
        on = pr.is_open and bool(data.get("merge_when_pipeline_succeeds"))
        error = data.get("merge_error")
        return QueueEntry(pr.number, pr.merged,
                          str(data.get("detailed_merge_status") or "auto_merge") if on else None,
                          None, pr.state.value.upper(), head_sha=pr.head_sha,
                          merge_sha=pr.merge_sha,
                          reason=str(error) if error and not on and not pr.merged else None)

    def _after_merge(self, number: int, response: httpx.Response) -> PullRequest:
        return self._pr(response.json())  # GitLab answers with the merge request

    def _unsaid_merge_sha(self, sha: str) -> str:
        return sha  # a fast-forward: the head is what the base points at


__all__ = ["DRAFT", "GitLab"]
