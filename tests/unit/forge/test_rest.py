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
        if path.endswith("/branches/main"):
            return httpx.Response(200, json={"name": "main", "protected": True,
                                             "protection": {"enabled": False}})
        return httpx.Response(404, json={"message": "Not Found"})

    spec = ForgeSpec("github", "acme/lib", "https://github.example/api/v3", "GITHUB_TOKEN")
    return GitHub(spec, {"GITHUB_TOKEN": "ghp_unit_token_0123456789"},
                  Options(transport=httpx.MockTransport(answer)))


def test_github_enqueues_a_pull_request_pinned_to_the_verified_head() -> None:
    import json

    seen: list[httpx.Request] = []
    gh = _github(seen, {"data": {"enqueuePullRequest": {"mergeQueueEntry": {
        "state": "QUEUED", "position": 2}}}})
    assert gh.protection("main").merge_queue == "merge_queue"  # the ruleset's rule
    seen.clear()
    entry = gh.enqueue(7, sha=HEAD)
    assert (entry.queued, entry.state, entry.position) == (True, "QUEUED", 2)
    # the pull request read once (its state, head and node id), then the mutation
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", "/api/v3/repos/acme/lib/pulls/7"), ("POST", "/api/graphql")]
    post = seen[-1]
    assert str(post.url) == "https://github.example/api/graphql"
    assert post.headers["Authorization"] == "Bearer ghp_unit_token_0123456789"
    body = json.loads(post.content)
    assert "enqueuePullRequest(input: {pullRequestId: $id, expectedHeadOid: $sha})" in body[
        "query"]
    assert body["variables"] == {"id": "PR_kw7", "sha": HEAD}


def test_github_says_why_it_did_not_enqueue_and_reads_the_entry() -> None:
    import json

    from coordination.errors import HeadMoved, MergeRefused

    seen: list[httpx.Request] = []
    gh = _github(seen, {"data": {"enqueuePullRequest": None},
                        "errors": [{"message": "Pull request is not mergeable"}]})
    with pytest.raises(MergeRefused, match="not mergeable"):
        gh.enqueue(7, sha=HEAD)
    with pytest.raises(HeadMoved):  # checked before anything is sent
        gh.enqueue(7, sha="d" * 40)
    seen.clear()
    gh = _github(seen, {"data": {"repository": {"pullRequest": {
        "merged": False, "state": "OPEN", "headRefOid": HEAD, "mergeCommit": None,
        "mergeQueueEntry": None}}}})
    entry = gh.queue_entry(7)
    assert (entry.merged, entry.queued, entry.pr_state) == (False, False, "OPEN")
    gh = _github(seen, {"data": {"repository": {"pullRequest": {
        "merged": True, "state": "MERGED", "headRefOid": HEAD, "mergeCommit": {"oid": "e" * 40},
        "mergeQueueEntry": None}}}})
    entry = gh.queue_entry(7)
    assert (entry.merged, entry.head_sha, entry.merge_sha) == (True, HEAD, "e" * 40)
    # each read one GraphQL query (no REST read for a node id): the entry, state and merge
    assert [(r.method, r.url.path) for r in seen] == [("POST", "/api/graphql")] * 2
    body = json.loads(seen[0].content)
    assert "repository(owner: $owner, name: $name) { pullRequest(number: $number)" in body[
        "query"]
    assert body["variables"] == {"owner": "acme", "name": "lib", "number": 7}


# -- GitLab's merge train: a merge with auto_merge, pinned by sha ----------------------------

MR = {"iid": 7, "id": 1007, "project_id": 3, "state": "opened", "title": "t",
      "description": "", "web_url": "https://gitlab.example/acme/lib/-/merge_requests/7",
      "source_branch": "chg", "target_branch": "main", "sha": HEAD, "labels": [],
      "draft": False, "has_conflicts": False, "detailed_merge_status": "mergeable",
      "merge_when_pipeline_succeeds": False, "merge_commit_sha": None,
      "author": {"username": "coord-bot"}}


def _gitlab(seen: list[httpx.Request], merged: dict[str, Any] | None = None,
            mr: dict[str, Any] | None = None, trains: bool = True) -> Any:
    from coordination.forge.gitlab import GitLab

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path.endswith("/merge_requests/7/merge"):
            return httpx.Response(200, json={**MR, **(merged or {})})
        if path.endswith("/merge_requests/7"):
            return httpx.Response(200, json={**MR, **(mr or {})})
        if path.endswith("/merge_requests/7/approvals"):
            return httpx.Response(200, json={"approved_by": [], "approvals_required": 0,
                                             "approvals_left": 0})
        if path.endswith("/statuses") or path.endswith("/pipelines"):
            return httpx.Response(200, json=[])
        if request.url.raw_path == b"/api/v4/projects/acme%2Flib":
            return httpx.Response(200, json={"id": 3, "path_with_namespace": "acme/lib",
                                             "web_url": "https://gitlab.example/acme/lib",
                                             "merge_method": "merge",
                                             "only_allow_merge_if_pipeline_succeeds": False,
                                             "merge_trains_enabled": trains})
        return httpx.Response(404, json={"message": "404 Not found"})

    spec = ForgeSpec("gitlab", "acme/lib", "https://gitlab.example/api/v4", "GITLAB_TOKEN")
    return GitLab(spec, {"GITLAB_TOKEN": "glpat_unit_token_0123456789"},
                  Options(transport=httpx.MockTransport(answer)))


def _paths(seen: list[httpx.Request]) -> list[tuple[str, str]]:
    return [(r.method, r.url.raw_path.decode().split("?")[0]) for r in seen]


def test_gitlab_adds_a_merge_request_to_its_merge_train_pinned_to_the_verified_head() -> None:
    import json

    seen: list[httpx.Request] = []
    gl = _gitlab(seen, merged={"merge_when_pipeline_succeeds": True,
                               "detailed_merge_status": "ci_still_running"})
    entry = gl.enqueue(7, sha=HEAD)
    assert (entry.queued, entry.merged, entry.state) == (True, False, "ci_still_running")
    mr = "/api/v4/projects/acme%2Flib/merge_requests/7"
    assert _paths(seen) == [("GET", mr), ("PUT", mr + "/merge")]
    # auto-merge (and its deprecated name, which an older GitLab reads), pinned by sha;
    # no squash or message: the train merges by the project's own method
    assert json.loads(seen[-1].content) == {"sha": HEAD, "auto_merge": True,
                                            "merge_when_pipeline_succeeds": True}
    assert seen[-1].headers["Authorization"] == "Bearer glpat_unit_token_0123456789"


def test_gitlab_says_why_a_merge_request_is_not_on_its_train() -> None:
    from coordination.errors import HeadMoved, MergeRefused

    seen: list[httpx.Request] = []
    with pytest.raises(MergeRefused, match="did not add it to the merge train"):
        _gitlab(seen).enqueue(7, sha=HEAD)  # answered without auto-merge set
    with pytest.raises(HeadMoved):  # checked before anything is sent
        _gitlab(seen).enqueue(7, sha="d" * 40)
    seen.clear()
    on = _gitlab(seen, mr={"merge_when_pipeline_succeeds": True}).queue_entry(7)
    assert (on.queued, on.state, on.position) == (True, "mergeable", None)
    gone = _gitlab(seen, mr={"merge_error": "The pipeline for this merge train failed."}
                   ).queue_entry(7)
    assert (gone.queued, gone.merged, gone.pr_state) == (False, False, "OPEN")
    assert gone.reason == "The pipeline for this merge train failed."
    done = _gitlab(seen, mr={"state": "merged", "merge_commit_sha": "e" * 40}).queue_entry(7)
    assert (done.merged, done.head_sha, done.merge_sha) == (True, HEAD, "e" * 40)
    assert _paths(seen) == [("GET", "/api/v4/projects/acme%2Flib/merge_requests/7")] * 3


def test_gitlab_mergeability_says_the_project_runs_merge_trains_from_one_project_read() -> None:
    seen: list[httpx.Request] = []
    mg = _gitlab(seen).mergeability(7)
    assert mg.mergeable and mg.merge_queue == "merge_train"
    assert _paths(seen).count(("GET", "/api/v4/projects/acme%2Flib")) == 1
    assert _gitlab(seen, trains=False).mergeability(7).merge_queue is None
    # a train merges by the project's own method: the plan's is not refused for it
    assert _gitlab(seen).merge_refusal("main", "rebase") is None
    assert _gitlab(seen, trains=False).merge_refusal("main", "rebase") is not None
