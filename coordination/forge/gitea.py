"""Gitea and Forgejo (``api: https://git.example.com/api/v1``) through their REST API v1
(Forgejo keeps Gitea's API for everything coord calls).

A draft is the ``WIP:`` title prefix. Labels are set by id, so a label coord names is
looked up (and created, grey) first. Gitea has no single "would merge" word: its
``mergeable`` says only that the merge has no conflict, so the verdict is that and
the branch's protection (official approvals, required status contexts) as Gitea
checks them. A merge is ``POST .../pulls/{n}/merge`` with ``Do`` and
``head_commit_id`` (409 "head out of date" when the head moved)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from coordination.forge.base import (
    Check,
    Checks,
    Mergeability,
    MergeMethod,
    MergeResult,
    NewPullRequest,
    Protection,
    PullRequest,
    Review,
    Reviews,
    ReviewState,
)
from coordination.forge.events import check_state
from coordination.forge.rest import RestForge, pull_request
from coordination.forge.verdict import blockers, forge_says_no

if TYPE_CHECKING:
    import httpx

WIP = re.compile(r"^\s*(?:wip:|\[wip\])\s*", re.I)
_REVIEW = {"APPROVED": ReviewState.approved, "REQUEST_CHANGES": ReviewState.changes_requested,
           "COMMENT": ReviewState.commented, "PENDING": ReviewState.pending,
           "REQUEST_REVIEW": ReviewState.pending}
LABEL_COLOR = "#ededed"


def titled(title: str, draft: bool) -> str:
    bare = WIP.sub("", title)
    return f"WIP: {bare}" if draft else bare


class Gitea(RestForge):
    """One repository on Gitea or Forgejo (``spec.project`` is ``owner/name``)."""

    MERGE_VERB = "POST"

    @staticmethod
    def _auth(token: str) -> dict[str, str]:
        return {"Authorization": f"token {token}"}

    def _pr(self, data: Mapping[str, Any]) -> PullRequest:
        title = str(data.get("title") or "")
        return pull_request(data, merged=bool(data.get("merged")), title=WIP.sub("", title),
                            draft=bool(data.get("draft")) or bool(WIP.match(title)))

    # labels -----------------------------------------------------------------------------

    def _label_ids(self, names: Sequence[str], *, create: bool) -> list[int]:
        have = {str(x["name"]): int(x["id"]) for x in self.http.pages(
            f"{self.base}/labels", size_param="limit", per_page=50)}
        ids = []
        for name in dict.fromkeys(names):
            if name not in have and create:
                made = self.http.write("POST", f"{self.base}/labels",
                                       {"name": name, "color": LABEL_COLOR})
                have[name] = int(made["id"])
            if name in have:
                ids.append(have[name])
        return ids

    # reads ------------------------------------------------------------------------------

    def _list(self, state: str, labels: list[int] | None = None) -> list[PullRequest]:
        params: dict[str, Any] = {"state": state}
        if labels:
            params["labels"] = labels
        prs = [self._pr(i) for i in self.http.pages(f"{self.base}/pulls", params,
                                                    size_param="limit", per_page=50)]
        return sorted(prs, key=lambda p: -p.number)  # newest first, on every version

    def find_pr(self, head: str, *, base: str | None = None,
                state: Literal["open", "all"] = "open") -> PullRequest | None:
        for pr in self._list(state):
            if pr.head_branch == head and base in (None, pr.base_branch):
                return pr
        return None

    def list_prs(self, *, label: str | None = None,
                 state: Literal["open", "closed", "all"] = "open") -> list[PullRequest]:
        ids = None
        if label is not None:
            ids = self._label_ids([label], create=False)
            if not ids:
                return []
        return self._list(state, ids)

    def protection(self, branch: str) -> Protection:
        # The branch itself says what its protection asks, to any reader (the
        # branch_protections endpoints answer repository admins only).
        data = self.http.get(f"{self.base}/branches/{quote(branch, safe='')}")
        if not data.get("protected"):
            return Protection(branch, False, True, 0, ())
        checks = tuple(str(c) for c in data.get("status_check_contexts") or ()) if data.get(
            "enable_status_check") else ()
        return Protection(branch, True, True, int(data.get("required_approvals") or 0), checks)

    def reviews(self, number: int, *, base: str | None = None,
                protection: Protection | None = None) -> Reviews:
        latest: dict[str, Review] = {}
        for item in self.http.pages(f"{self.base}/pulls/{number}/reviews",
                                    size_param="limit", per_page=50):
            if item.get("dismissed") or item.get("stale"):
                continue
            state = _REVIEW.get(str(item.get("state")), ReviewState.commented)
            who = str((item.get("user") or {}).get("login") or "")
            if state is ReviewState.commented and who in latest:
                continue
            if state is ReviewState.approved and item.get("official") is False:
                continue  # Gitea counts official approvals (from writers) only
            latest[who] = Review(who, state, item.get("commit_id"), item.get("submitted_at"))
        return self._counted(number, latest, base, protection)

    def checks(self, sha: str, *, branch: str | None = None,
               protection: Protection | None = None) -> Checks:
        found: dict[str, Check] = {}
        for s in self.http.pages(f"{self.base}/commits/{sha}/status", key="statuses",
                                 size_param="limit", per_page=50):
            name = str(s.get("context") or "")
            found.setdefault(name, Check(name, check_state(s.get("status")),
                                         url=s.get("target_url"),
                                         description=str(s.get("description") or "")))
        required: tuple[str, ...] | None = None
        if branch is not None:
            protection = protection or self.protection(branch)
            required = protection.required_checks or ()
        return Checks.marked(sha, found.values(), required)

    def mergeability(self, number: int) -> Mergeability:
        data = self._raw_pr(number)
        pr = self._pr(data)
        protection = self.protection(pr.base_branch)
        reviews = self.reviews(number, base=pr.base_branch, protection=protection)
        checks = self.checks(pr.head_sha, branch=pr.base_branch, protection=protection)
        conflict = not bool(data.get("mergeable")) if pr.is_open else None
        found = blockers(pr, reviews, checks, conflict)
        mergeable = pr.is_open and not found
        word = "mergeable" if data.get("mergeable") else "not mergeable"
        if not mergeable:
            found = forge_says_no(pr, found, word, "Gitea")
        return Mergeability(pr, mergeable, () if mergeable else found, reviews, checks,
                            conflict, word)

    # writes -----------------------------------------------------------------------------

    def open_pr(self, new: NewPullRequest) -> PullRequest:
        body: dict[str, Any] = {"head": new.head, "base": new.base,
                                "title": titled(new.title, new.draft), "body": new.body}
        if new.labels:
            body["labels"] = self._label_ids(new.labels, create=True)
        response = self.http.send("POST", f"{self.base}/pulls", json_body=body, allow=(409,))
        if response.status_code == 409:  # one is open for this head and base already
            return self._labelled(self._existing(new, response), new.labels)
        return self._pr(response.json())

    def update_pr(self, number: int, *, title: str | None = None, body: str | None = None,
                  draft: bool | None = None,
                  labels: Sequence[str] | None = None) -> PullRequest:
        patch: dict[str, Any] = {}
        if title is not None or draft is not None:
            current = self.get_pr(number)
            patch["title"] = titled(title if title is not None else current.title,
                                    current.draft if draft is None else draft)
        if body is not None:
            patch["body"] = body
        if labels is not None:
            patch["labels"] = self._label_ids(labels, create=True)
        if not patch:
            return self.get_pr(number)
        return self._pr(self.http.write("PATCH", f"{self.base}/pulls/{number}", patch))

    def add_labels(self, number: int, labels: Sequence[str]) -> None:
        self.http.write("POST", f"{self.base}/issues/{number}/labels",
                        {"labels": self._label_ids(labels, create=True)})

    def merge_refusal(self, branch: str, method: MergeMethod) -> str | None:
        """The repository's settings: the merge styles it allows (``allow_merge_commits``,
        ``allow_rebase``, ``allow_squash_merge``; one it does not say is allowed)."""
        info = self.http.get(self.base)
        field = {"merge": "allow_merge_commits", "rebase": "allow_rebase",
                 "squash": "allow_squash_merge"}[method]
        if info.get(field) is False:
            allowed = [m for m, f in (("merge", "allow_merge_commits"), ("rebase", "allow_rebase"),
                                      ("squash", "allow_squash_merge")) if info.get(f) is not False]
            return (f"{self.spec.project}: the repository does not allow {method} merges "
                    f"({field}: false; it allows {', '.join(allowed) or 'none'}; set the "
                    "plan's change: merge_method:)")
        return None

    def _merge_body(self, where: str, number: int, sha: str, method: MergeMethod,
                    title: str | None, message: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"Do": method, "head_commit_id": sha}
        if title:
            body["MergeTitleField"] = title
        if message:
            body["MergeMessageField"] = message
        return body

    def _merge_result(self, where: str, number: int, sha: str, method: MergeMethod,
                      response: httpx.Response) -> MergeResult:
        merged = self.get_pr(number)  # Gitea answers a merge with no body
        if not merged.merged:
            raise self._unmerged(where, merged)
        return MergeResult(number, merged.merge_sha or "", sha, method, "")


__all__ = ["Gitea", "titled"]
