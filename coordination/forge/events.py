"""Each forge's webhook payloads read into :mod:`coordination.forge.base`'s event
records (:func:`coordination.forge.webhooks.parse_event` calls these after the
signature verified). Only what coord uses is read: which project, which pull request,
which head, and for a push which branch and commit. A missing key is a ``KeyError``
(the caller turns it into a ValueError naming the delivery)."""

from __future__ import annotations

import re
from typing import Any

from coordination.forge.base import (
    CheckEvent,
    CheckState,
    ForgeEvent,
    Kind,
    PRState,
    PullRequestEvent,
    PushEvent,
    ReviewEvent,
    ReviewState,
)

Payload = dict[str, Any]
ZERO = "0" * 40
BRANCH_PREFIX = "refs/heads/"

#: A check's or status's word -> coord's (GitHub statuses and check conclusions, GitLab
#: pipeline and commit statuses, Gitea statuses).
CHECK_WORDS: dict[str, CheckState] = {
    "success": CheckState.success, "neutral": CheckState.success,
    "skipped": CheckState.success, "warning": CheckState.success,
    "pending": CheckState.pending, "queued": CheckState.pending,
    "in_progress": CheckState.pending, "running": CheckState.pending,
    "created": CheckState.pending, "waiting_for_resource": CheckState.pending,
    "preparing": CheckState.pending, "scheduled": CheckState.pending,
    "manual": CheckState.pending, "requested": CheckState.pending,
    "waiting": CheckState.pending, "expected": CheckState.pending,
}


def check_state(word: str | None) -> CheckState:
    """A forge's word for a check -> coord's: anything not known to pass or to be
    still running is a failure (failed, error, cancelled, timed_out, action_required,
    stale...): fail closed."""
    return CHECK_WORDS.get((word or "").lower(), CheckState.failure)


#: A commit's SHA as git names it: SHA-1 (40) or SHA-256 (64) lowercase hex digits.
COMMIT_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def _push(forge: Kind, project: str, data: Payload, delivery: str | None) -> PushEvent | None:
    ref, after = str(data["ref"]), str(data["after"])
    if not ref.startswith(BRANCH_PREFIX) or after == ZERO:
        return None  # a tag, or a branch deleted
    if not COMMIT_SHA.fullmatch(after):  # never handed to git or a trigger as it came
        raise ValueError(f"its after {after[:80]!r} is not a commit SHA (40 or 64 hex digits)")
    return PushEvent(forge, project, ref[len(BRANCH_PREFIX):], after,
                     str(data.get("before") or ""), delivery=delivery)


def _pr_state(state: str, merged: bool) -> PRState:
    if merged or state == "merged":
        return PRState.merged
    return PRState.open if state in ("open", "opened") else PRState.closed


def _pull_request(forge: Kind, project: str, data: Payload,
                  delivery: str | None) -> PullRequestEvent:
    """A ``pull_request`` payload of GitHub's shape (Gitea's follows it)."""
    pr = data["pull_request"]
    return PullRequestEvent(forge, project, int(pr["number"]), str(data["action"]),
                            str(pr["head"]["sha"]), str(pr["head"]["ref"]), str(pr["base"]["ref"]),
                            _pr_state(str(pr["state"]), bool(pr.get("merged"))),
                            delivery=delivery)


def _status_or_push(forge: Kind, name: str, project: str, data: Payload,
                    delivery: str | None) -> ForgeEvent | None:
    """A ``status`` or ``push`` payload of GitHub's shape (Gitea's follows it); None
    for any other event."""
    if name == "status":
        return CheckEvent(forge, project, str(data["sha"]), str(data["context"]),
                          check_state(data["state"]), delivery=delivery)
    if name == "push":
        return _push(forge, project, data, delivery)
    return None


# GitHub ------------------------------------------------------------------------------

_GH_REVIEW = {"approved": ReviewState.approved, "changes_requested": ReviewState.changes_requested,
              "commented": ReviewState.commented, "dismissed": ReviewState.dismissed}


def github_event(name: str, data: Payload, delivery: str | None) -> ForgeEvent | None:
    project = str(data["repository"]["full_name"]) if "repository" in data else ""
    if name == "pull_request":
        return _pull_request("github", project, data, delivery)
    if name == "pull_request_review":
        pr, review = data["pull_request"], data["review"]
        state = ReviewState.dismissed if data["action"] == "dismissed" else _GH_REVIEW.get(
            str(review["state"]).lower(), ReviewState.commented)
        return ReviewEvent("github", project, int(pr["number"]), state,
                           str((review.get("user") or {}).get("login", "")),
                           review.get("commit_id") or pr["head"]["sha"], delivery=delivery)
    if name in ("check_run", "check_suite"):
        run = data[name]
        word = run.get("conclusion") or run.get("status")
        label = run.get("name") or (run.get("app") or {}).get("name") or name
        numbers = tuple(int(p["number"]) for p in run.get("pull_requests") or ())
        return CheckEvent("github", project, str(run["head_sha"]), str(label),
                          check_state(word), numbers, delivery=delivery)
    return _status_or_push("github", name, project, data, delivery)


# GitLab ------------------------------------------------------------------------------

def gitlab_event(name: str, data: Payload, delivery: str | None) -> ForgeEvent | None:
    project = str(data["project"]["path_with_namespace"]) if "project" in data else ""
    if name == "Merge Request Hook":
        mr = data["object_attributes"]
        action = str(mr.get("action") or "")
        head = str((mr.get("last_commit") or {}).get("id") or "")
        if action in ("approved", "approval", "unapproved", "unapproval"):
            state = ReviewState.approved if action in ("approved", "approval") \
                else ReviewState.dismissed
            return ReviewEvent("gitlab", project, int(mr["iid"]), state,
                               str((data.get("user") or {}).get("username", "")),
                               head or None, delivery=delivery)
        return PullRequestEvent("gitlab", project, int(mr["iid"]), action, head,
                                str(mr["source_branch"]), str(mr["target_branch"]),
                                _pr_state(str(mr["state"]), False), delivery=delivery)
    if name == "Pipeline Hook":
        pipe = data["object_attributes"]
        mr = data.get("merge_request") or {}
        numbers = (int(mr["iid"]),) if mr.get("iid") else ()
        return CheckEvent("gitlab", project, str(pipe["sha"]),
                          str(pipe.get("name") or "pipeline"), check_state(pipe["status"]),
                          numbers, delivery=delivery)
    if name == "Push Hook":
        return _push("gitlab", project, data, delivery)
    return None


# Gitea / Forgejo ---------------------------------------------------------------------

_GITEA_REVIEW = {
    "pull_request_review_approved": ReviewState.approved,
    "pull_request_approved": ReviewState.approved,
    "pull_request_review_rejected": ReviewState.changes_requested,
    "pull_request_rejected": ReviewState.changes_requested,
    "pull_request_review_comment": ReviewState.commented,
    "pull_request_comment": ReviewState.commented,
}


def gitea_event(name: str, data: Payload, delivery: str | None) -> ForgeEvent | None:
    project = str(data["repository"]["full_name"]) if "repository" in data else ""
    if name in _GITEA_REVIEW:
        pr = data["pull_request"]
        return ReviewEvent("gitea", project, int(pr["number"]), _GITEA_REVIEW[name],
                           str((data.get("sender") or {}).get("login", "")),
                           str(pr["head"]["sha"]), delivery=delivery)
    if name.startswith("pull_request"):
        return _pull_request("gitea", project, data, delivery)
    return _status_or_push("gitea", name, project, data, delivery)
