"""The REST base's shared reads where a kind only says what differs (httpx.MockTransport
answers): reviews counted by the base's protection, with Gitea's filter of the reviews
its protection leaves out, and drafts written as a title prefix."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from coordination.forge.base import ForgeSpec, Options, ReviewState
from coordination.forge.gitea import DRAFT as WIP
from coordination.forge.gitea import Gitea
from coordination.forge.gitlab import DRAFT

pytestmark = pytest.mark.timeout(30)

BRANCH = {"name": "main", "protected": True, "required_approvals": 2,
          "enable_status_check": True, "status_check_contexts": ["coord/verify"]}


def _review(who: str, state: str, **more: Any) -> dict[str, Any]:
    return {"user": {"login": who}, "state": state, "commit_id": "a" * 40,
            "submitted_at": "2026-11-28T10:00:00Z", **more}


REVIEWS = [
    _review("ann", "APPROVED", official=False),  # not a writer's: Gitea does not count it
    _review("bob", "APPROVED", official=True),
    _review("bob", "COMMENT"),  # a comment after an approval leaves it standing
    _review("cat", "APPROVED", official=True, dismissed=True),
    _review("dan", "APPROVED", official=True, stale=True),
    _review("eve", "REQUEST_CHANGES", official=True),
]


def _gitea(seen: list[httpx.Request]) -> Gitea:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/pulls/7/reviews"):
            return httpx.Response(200, json=REVIEWS)
        if request.url.path.endswith("/branches/main"):
            return httpx.Response(200, json=BRANCH)
        return httpx.Response(404, json={"message": "not found"})

    spec = ForgeSpec("gitea", "acme/lib", "https://git.example/api/v1", "GITEA_TOKEN")
    return Gitea(spec, {"GITEA_TOKEN": "gitea_unit_token_0123"},
                 Options(transport=httpx.MockTransport(answer)))


def test_gitea_reviews_count_only_what_its_protection_counts() -> None:
    seen: list[httpx.Request] = []
    reviews = _gitea(seen).reviews(7, base="main")
    assert reviews.approved_by == ("bob",)
    assert reviews.changes_requested_by == ("eve",)
    assert reviews.required == 2 and reviews.satisfied is False
    assert [r.state for r in reviews.reviews] == [ReviewState.approved,
                                                   ReviewState.changes_requested]
    # paged in Gitea's size, the branch read for its protection
    assert seen[0].url.params["limit"] == "50"
    assert [r.url.path for r in seen] == ["/api/v1/repos/acme/lib/pulls/7/reviews",
                                          "/api/v1/repos/acme/lib/branches/main"]


def test_a_title_prefix_draft_is_added_and_stripped() -> None:
    assert DRAFT.titled("Draft: WIP: x", True) == "Draft: WIP: x"
    assert DRAFT.titled("[draft] x", False) == "x" and DRAFT.marks("(Draft) x")
    assert WIP.titled("x", True) == "WIP: x" and WIP.bare("[WIP] x") == "x"
    assert not WIP.marks("Draft: x")


# -- GitHub's merge queue: the GraphQL requests beside the REST root ----------------------

HEAD = "c" * 40
PULL = {"number": 7, "node_id": "PR_kw7", "state": "open", "merged": False, "draft": False,
        "html_url": "https://github.example/acme/lib/pull/7", "title": "t", "body": "",
        "head": {"ref": "chg", "sha": HEAD}, "base": {"ref": "main", "sha": "b" * 40},
        "labels": []}


def _github(seen: list[httpx.Request], graphql: dict[str, Any]) -> Any:
    from coordination.forge.github import GitHub

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path == "/api/graphql":
            return httpx.Response(200, json=graphql)
        if path.endswith("/pulls/7"):
            return httpx.Response(200, json=PULL)
        if path.endswith("/rules/branches/main"):
            return httpx.Response(200, json=[{"type": "merge_queue", "parameters": {
                "merge_method": "SQUASH"}}])
        return httpx.Response(404, json={"message": "Not Found"})

    spec = ForgeSpec("github", "acme/lib", "https://github.example/api/v3", "GITHUB_TOKEN")
    return GitHub(spec, {"GITHUB_TOKEN": "ghp_unit_token_0123456789"},
                  Options(transport=httpx.MockTransport(answer)))


def test_github_enqueues_a_pull_request_pinned_to_the_verified_head() -> None:
    import json

    seen: list[httpx.Request] = []
    gh = _github(seen, {"data": {"enqueuePullRequest": {"mergeQueueEntry": {
        "state": "QUEUED", "position": 2}}}})
    assert gh.merge_queue("main") is True
    entry = gh.enqueue(7, sha=HEAD)
    assert (entry.queued, entry.state, entry.position) == (True, "QUEUED", 2)
    [post] = [r for r in seen if r.method == "POST"]
    assert str(post.url) == "https://github.example/api/graphql"
    assert post.headers["Authorization"] == "Bearer ghp_unit_token_0123456789"
    body = json.loads(post.content)
    assert "enqueuePullRequest(input: {pullRequestId: $id, expectedHeadOid: $sha})" in body[
        "query"]
    assert body["variables"] == {"id": "PR_kw7", "sha": HEAD}


def test_github_says_why_it_did_not_enqueue_and_reads_the_entry() -> None:
    from coordination.errors import HeadMoved, MergeRefused

    seen: list[httpx.Request] = []
    gh = _github(seen, {"data": {"enqueuePullRequest": None},
                        "errors": [{"message": "Pull request is not mergeable"}]})
    with pytest.raises(MergeRefused, match="not mergeable"):
        gh.enqueue(7, sha=HEAD)
    with pytest.raises(HeadMoved):  # checked before anything is sent
        gh.enqueue(7, sha="d" * 40)
    gh = _github(seen, {"data": {"node": {"merged": False, "state": "OPEN",
                                          "mergeQueueEntry": None}}})
    entry = gh.queue_entry(7)
    assert (entry.merged, entry.queued, entry.pr_state) == (False, False, "OPEN")
