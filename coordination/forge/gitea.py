"""Gitea and Forgejo (``api: https://git.example.com/api/v1``) through their REST API v1
(Forgejo keeps Gitea's API for everything coord calls).

A draft is the ``WIP:`` title prefix. Labels are set by id, so a label coord names is
looked up (and created, grey) first. Gitea has no single "would merge" word: its
``mergeable`` says only that the merge has no conflict, so the verdict is that and
the branch's protection (official approvals, required status contexts) as Gitea
checks them. While Gitea still checks a pull request (after a push) it says
``mergeable: false`` as for a conflict: read again for a few seconds, a no that lasts is
said as either. A merge is ``POST .../pulls/{n}/merge`` with ``Do`` and
``head_commit_id`` (409 "head out of date" when the head moved)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

from coordination.forge.base import (
    Blocker,
    Check,
    Checks,
    MergeMethod,
    Protection,
    PullRequest,
    ReviewState,
)
from coordination.forge.rest import DraftTitle, TitleDraftForge, pull_request

DRAFT = DraftTitle(re.compile(r"^\s*(?:wip:|\[wip\])\s*", re.I), "WIP:")
_REVIEW = {"APPROVED": ReviewState.approved, "REQUEST_CHANGES": ReviewState.changes_requested,
           "COMMENT": ReviewState.commented, "PENDING": ReviewState.pending,
           "REQUEST_REVIEW": ReviewState.pending}
LABEL_COLOR = "#ededed"
#: A merge method -> the repository setting that allows it (one not said is allowed).
ALLOWS = {"merge": "allow_merge_commits", "rebase": "allow_rebase",
          "squash": "allow_squash_merge"}


class Gitea(TitleDraftForge):
    """One repository on Gitea or Forgejo (``spec.project`` is ``owner/name``)."""

    PAGE = ("limit", 50)
    REVIEW_WORDS = _REVIEW
    MERGE_VERB = "POST"
    MERGE_FIELDS = {"Do": "method", "head_commit_id": "sha", "MergeTitleField": "title",
                    "MergeMessageField": "message"}
    DRAFT = DRAFT

    @staticmethod
    def _auth(token: str) -> dict[str, str]:
        return {"Authorization": f"token {token}"}

    def _pr(self, data: Mapping[str, Any]) -> PullRequest:
        title = str(data.get("title") or "")
        return pull_request(data, merged=bool(data.get("merged")), title=DRAFT.bare(title),
                            draft=bool(data.get("draft")) or DRAFT.marks(title))

    # labels -----------------------------------------------------------------------------

    def _label_ids(self, names: Sequence[str], *, create: bool) -> list[int]:
        have = {str(x["name"]): int(x["id"]) for x in self._pages(f"{self.base}/labels")}
        ids = []
        for name in dict.fromkeys(names):
            if name not in have and create:
                made = self.http.write("POST", f"{self.base}/labels",
                                       {"name": name, "color": LABEL_COLOR})
                have[name] = int(made["id"])
            if name in have:
                ids.append(have[name])
        return ids

    def _label_value(self, labels: Sequence[str]) -> list[int]:
        return self._label_ids(labels, create=True)  # Gitea sets labels by id

    # reads ------------------------------------------------------------------------------

    def _list(self, state: str, labels: list[int] | None = None) -> list[PullRequest]:
        params: dict[str, Any] = {"state": state}
        if labels:
            params["labels"] = labels
        prs = [self._pr(i) for i in self._pages(f"{self.base}/pulls", params)]
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

    def _review_counts(self, item: Mapping[str, Any], state: ReviewState) -> bool:
        # Gitea counts official approvals (from writers) only, and no dismissed or stale
        # review
        if item.get("dismissed") or item.get("stale"):
            return False
        return not (state is ReviewState.approved and item.get("official") is False)

    def checks(self, sha: str, *, branch: str | None = None,
               protection: Protection | None = None) -> Checks:
        found: dict[str, Check] = {}
        for s in self._pages(f"{self.base}/commits/{sha}/status", key="statuses"):
            check = self._status_check(s)
            found.setdefault(check.name, check)  # newest first: the first is the latest
        return Checks.marked(sha, found.values(), self._required_checks(branch, protection))

    # mergeability: Gitea's mergeable (no conflict) and its protection -------------------

    #: Gitea answers ``mergeable: false`` while it still checks a pull request (after a
    #: push to it or to its base) as it does for a conflict: an open one that says so is
    #: read again each second for this long before coord says it does not merge.
    COMPUTING_WAIT = 5.0

    def _computing(self, data: Mapping[str, Any]) -> bool:
        return data.get("state") == "open" and not data.get("mergeable")

    def _merge_word(self, data: Mapping[str, Any]) -> str:
        if data.get("mergeable"):
            return "mergeable"
        return "not mergeable" if data.get("state") == "open" else "closed"

    def _conflict(self, data: Mapping[str, Any], pr: PullRequest, word: str) -> bool | None:
        # Not mergeable: a conflict, or Gitea still checking; it does not say which.
        return False if word == "mergeable" else None

    def _word_blockers(self, word: str) -> tuple[Blocker, ...]:
        if word != "not mergeable":
            return ()
        return (Blocker("conflict", f"Gitea says it does not merge: a conflict with its base, "
                        f"or Gitea still checking it (read again for {self.COMPUTING_WAIT:g} s; "
                        "`coord change status` reads it again)"),)

    def _would_merge(self, word: str, pr: PullRequest, found: tuple[Blocker, ...]) -> bool:
        return not found

    # writes -----------------------------------------------------------------------------

    def merge_refusal(self, branch: str, method: MergeMethod) -> str | None:
        """The repository's settings: the merge styles it allows (``allow_merge_commits``,
        ``allow_rebase``, ``allow_squash_merge``; one it does not say is allowed)."""
        info = self.http.get(self.base)
        if info.get(ALLOWS[method]) is False:
            allowed = [m for m, f in ALLOWS.items() if info.get(f) is not False]
            return (f"{self.spec.project}: the repository does not allow {method} merges "
                    f"({ALLOWS[method]}: false; it allows {', '.join(allowed) or 'none'}; set "
                    "the plan's change: merge_method:)")
        return None


__all__ = ["DRAFT", "Gitea"]
