"""Webhook signatures (pure functions) and events parsed into records, on payloads shaped
as each forge documents them."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from coordination.errors import ForgeConfigError
from coordination.forge.base import (
    CheckEvent,
    CheckState,
    ForgeSpec,
    PRState,
    PullRequestEvent,
    PushEvent,
    ReviewEvent,
    ReviewState,
)
from coordination.forge.webhooks import parse_event, sign, verify_signature, webhook_secret

pytestmark = pytest.mark.timeout(30)

BODY = b'{"zen": "Keep it logically awesome."}'
SECRET = "It's a Secret to Everybody"


def test_github_signature_is_hmac_sha256_of_the_body() -> None:
    # GitHub's documented example: this secret and "Hello, World!" give this signature.
    body = b"Hello, World!"
    want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign("github", body, SECRET) == {"X-Hub-Signature-256": want}
    assert verify_signature("github", {"x-hub-signature-256": want}, body, SECRET)


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_good_and_bad_signatures(kind: str) -> None:
    headers = sign(kind, BODY, SECRET)  # type: ignore[arg-type]
    assert verify_signature(kind, headers, BODY, SECRET)  # type: ignore[arg-type]
    assert not verify_signature(kind, headers, BODY, SECRET + "x")  # type: ignore[arg-type]
    assert not verify_signature(kind, {}, BODY, SECRET)  # type: ignore[arg-type]
    assert not verify_signature(kind, headers, BODY, "")  # type: ignore[arg-type]
    forged = {k: v[:-1] + ("0" if v[-1] != "0" else "1") for k, v in headers.items()}
    assert not verify_signature(kind, forged, BODY, SECRET)  # type: ignore[arg-type]


def test_gitea_signature_is_plain_hex_and_forgejo_header_counts() -> None:
    hexed = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert sign("gitea", BODY, SECRET) == {"X-Gitea-Signature": hexed}
    assert verify_signature("gitea", {"X-Forgejo-Signature": hexed}, BODY, SECRET)
    assert not verify_signature("gitea", {"X-Gitea-Signature": "sha256=" + hexed}, BODY, SECRET)


def test_the_secret_comes_from_its_variable() -> None:
    assert webhook_secret({"COORD_FORGE_WEBHOOK_SECRET": "s"}) == "s"
    spec = ForgeSpec("github", "a/b", "https://api.github.com", "GITHUB_TOKEN", "HOOK_SECRET")
    assert webhook_secret({"HOOK_SECRET": "t", "COORD_FORGE_WEBHOOK_SECRET": "s"}, spec) == "t"
    with pytest.raises(ForgeConfigError, match="HOOK_SECRET is not set"):
        webhook_secret({"COORD_FORGE_WEBHOOK_SECRET": "s"}, spec)


def _parse(kind: str, event: str, payload: dict[str, object]) -> object:
    header = {"github": "X-GitHub-Event", "gitlab": "X-Gitlab-Event",
              "gitea": "X-Gitea-Event"}[kind]
    return parse_event(kind, {header: event, "X-GitHub-Delivery": "d-1"},  # type: ignore[arg-type]
                       json.dumps(payload).encode())


SHA = "a" * 40
GH_PR = {"number": 7, "state": "closed", "merged": True, "head": {"sha": SHA, "ref": "bump"},
         "base": {"ref": "main"}}


def test_github_events() -> None:
    repo = {"repository": {"full_name": "acme/lib"}}
    assert _parse("github", "pull_request", {"action": "closed", "pull_request": GH_PR,
                                             **repo}) == PullRequestEvent(
        "github", "acme/lib", 7, "closed", SHA, "bump", "main", PRState.merged,
        delivery="d-1")
    review = _parse("github", "pull_request_review", {
        "action": "submitted", "review": {"state": "approved", "user": {"login": "ana"},
                                          "commit_id": SHA}, "pull_request": GH_PR, **repo})
    assert review == ReviewEvent("github", "acme/lib", 7, ReviewState.approved, "ana", SHA,
                                 delivery="d-1")
    run = _parse("github", "check_run", {"check_run": {
        "head_sha": SHA, "name": "ci", "status": "completed", "conclusion": "timed_out",
        "pull_requests": [{"number": 7}]}, **repo})
    assert run == CheckEvent("github", "acme/lib", SHA, "ci", CheckState.failure, (7,),
                             delivery="d-1")
    assert _parse("github", "status", {"sha": SHA, "context": "ci", "state": "pending",
                                       **repo}).state is CheckState.pending  # type: ignore[attr-defined]
    assert _parse("github", "push", {"ref": "refs/heads/main", "after": SHA, "before": "b" * 40,
                                     **repo}) == PushEvent("github", "acme/lib", "main", SHA,
                                                           "b" * 40, delivery="d-1")
    assert _parse("github", "push", {"ref": "refs/tags/v1", "after": SHA, **repo}) is None
    assert _parse("github", "push", {"ref": "refs/heads/x", "after": "0" * 40, **repo}) is None
    assert _parse("github", "ping", {"zen": "x"}) is None


def test_gitlab_events() -> None:
    project = {"project": {"path_with_namespace": "grp/sub/app"}}
    mr = {"iid": 3, "action": "update", "state": "opened", "source_branch": "bump",
          "target_branch": "main", "last_commit": {"id": SHA}}
    assert _parse("gitlab", "Merge Request Hook", {"object_attributes": mr, **project}) == \
        PullRequestEvent("gitlab", "grp/sub/app", 3, "update", SHA, "bump", "main", PRState.open)
    approved = _parse("gitlab", "Merge Request Hook", {
        "object_attributes": {**mr, "action": "approved"}, "user": {"username": "bo"}, **project})
    assert approved == ReviewEvent("gitlab", "grp/sub/app", 3, ReviewState.approved, "bo", SHA)
    pipe = _parse("gitlab", "Pipeline Hook", {"object_attributes": {"sha": SHA,
                                                                    "status": "failed"},
                                              "merge_request": {"iid": 3}, **project})
    assert pipe == CheckEvent("gitlab", "grp/sub/app", SHA, "pipeline", CheckState.failure, (3,))
    assert _parse("gitlab", "Push Hook", {"ref": "refs/heads/main", "after": SHA,
                                          **project}).branch == "main"  # type: ignore[attr-defined]
    assert _parse("gitlab", "Note Hook", project) is None


def test_gitea_events() -> None:
    repo = {"repository": {"full_name": "acme/lib"}}
    pr = {"number": 4, "state": "open", "merged": False, "head": {"sha": SHA, "ref": "bump"},
          "base": {"ref": "main"}}
    assert _parse("gitea", "pull_request", {"action": "synchronized", "pull_request": pr,
                                            **repo}).head_sha == SHA  # type: ignore[attr-defined]
    rejected = _parse("gitea", "pull_request_rejected", {"pull_request": pr,
                                                         "sender": {"login": "cy"}, **repo})
    assert rejected == ReviewEvent("gitea", "acme/lib", 4, ReviewState.changes_requested, "cy", SHA)
    assert _parse("gitea", "status", {"sha": SHA, "context": "coord/verify",
                                      "state": "success", **repo}) == CheckEvent(
        "gitea", "acme/lib", SHA, "coord/verify", CheckState.success)


def test_a_delivery_that_is_not_json_or_lacks_a_field_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse_event("github", {"X-GitHub-Event": "push"}, b"<xml/>")
    with pytest.raises(ValueError, match="lacks"):
        parse_event("github", {"X-GitHub-Event": "pull_request"}, b'{"action": "opened"}')
