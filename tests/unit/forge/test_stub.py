"""The in-memory stub forge keeps the real clients' rules: one pull request per head, merges
pinned to the head, refusals with reasons, a missing token named."""

from __future__ import annotations

import pytest

from coordination.errors import ForgeAuthError, HeadMoved, MergeRefused
from coordination.forge.base import CheckState, NewPullRequest, ReviewState
from coordination.forge.stub import StubForge, StubForges

pytestmark = pytest.mark.timeout(30)


def test_the_stub_lifecycle() -> None:
    forge = StubForge()
    forge.protect("main", approvals=1, checks=["ci"])
    head = forge.push("bump")
    pr = forge.open_pr(NewPullRequest("bump", "main", "Bump", labels=("coord:PLAN-1",)))
    assert forge.open_pr(NewPullRequest("bump", "main", "Bump")).number == pr.number
    with pytest.raises(MergeRefused, match="approving review"):
        forge.merge(pr.number, sha=head)
    forge.review(pr.number, "ana")
    forge.set_check(head, "ci", CheckState.success)
    assert forge.mergeability(pr.number).mergeable
    moved = forge.push("bump")
    with pytest.raises(HeadMoved) as caught:
        forge.merge(pr.number, sha=head)
    assert caught.value.actual == moved
    forge.set_check(moved, "ci")
    forge.review(pr.number, "bo", ReviewState.changes_requested)
    assert [b.kind for b in forge.mergeability(pr.number).blockers] == ["changes_requested"]
    forge.review(pr.number, "bo")
    result = forge.merge(pr.number, sha=moved, method="squash")
    assert forge.get_pr(pr.number).merge_sha == result.sha == forge.branches["main"]
    assert ("merge", (pr.number, moved, "squash")) in forge.calls


def test_stub_forges_name_a_missing_token() -> None:
    class Fields:
        kind, project, api, token_env, webhook_secret_env = "github", "acme/lib", None, None, None

    class Repo:
        name, forge = "lib", Fields()

    forges = StubForges(tokens=True)
    with pytest.raises(ForgeAuthError, match="GITHUB_TOKEN"):
        forges(Repo(), {}).user()  # type: ignore[arg-type]
    assert forges(Repo(), {"GITHUB_TOKEN": "x"}).user() == "coord-bot"  # type: ignore[arg-type]
    assert forges["acme/lib"] is forges(Repo())  # type: ignore[arg-type]
