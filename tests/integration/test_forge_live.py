"""coord's forge clients against a real forge, when one is given; skipped otherwise.

Per kind (GITHUB, GITLAB, GITEA), in the environment:

    COORD_LIVE_<KIND>_TOKEN     a token that may read and write the scratch project
    COORD_LIVE_<KIND>_PROJECT   the scratch project: owner/name (GitLab: group/.../name)
    COORD_LIVE_<KIND>_API       optional: the API root (GitHub Enterprise, self-hosted)
    COORD_LIVE_<KIND>_BRANCH    optional: a branch pushed to the project, not its default
                                branch: the test opens a pull request from it, posts a
                                coord/verify status, reads its mergeability, and closes
                                it (it never merges)

Read when the module is collected: the tests' autouse fixture hides every COORD_*
variable from the tests themselves."""

from __future__ import annotations

import os
import uuid

import pytest

from coordination.forge import open_forge, spec_of
from coordination.forge.base import CommitStatus, NewPullRequest, StatusState

pytestmark = pytest.mark.timeout(300)

LIVE = {kind: {k: os.environ.get(f"COORD_LIVE_{kind.upper()}_{k.upper()}", "")
               for k in ("token", "project", "api", "branch")}
        for kind in ("github", "gitlab", "gitea")}


class Fields:
    def __init__(self, kind: str, given: dict[str, str]) -> None:
        self.kind, self.project = kind, given["project"]
        self.api = given["api"] or None
        self.token_env = f"LIVE_{kind.upper()}_TOKEN"  # (never COORD_*: forge_rules)
        self.webhook_secret_env = None


def live(kind: str) -> object:
    given = LIVE[kind]
    if not (given["token"] and given["project"]):
        pytest.skip(f"no live {kind}: set COORD_LIVE_{kind.upper()}_TOKEN and "
                    f"COORD_LIVE_{kind.upper()}_PROJECT (a scratch project) to run it")
    spec = spec_of(Fields(kind, given), repo="live")  # type: ignore[arg-type]
    return open_forge(spec, {spec.token_env: given["token"]})


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_live_reads(kind: str) -> None:
    forge = live(kind)
    assert forge.user()  # type: ignore[attr-defined]
    assert forge.find_pr(f"coord-live-{uuid.uuid4().hex}") is None  # type: ignore[attr-defined]
    forge.list_prs(label="coord:live-test", state="all")  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_live_pull_request_without_merging(kind: str) -> None:
    forge = live(kind)
    branch = LIVE[kind]["branch"]
    if not branch:
        pytest.skip(f"set COORD_LIVE_{kind.upper()}_BRANCH to a pushed branch to open, check "
                    "and close a pull request from it")
    base = forge.protection  # type: ignore[attr-defined]
    pr = forge.open_pr(NewPullRequest(branch, os.environ.get(  # type: ignore[attr-defined]
        f"COORD_LIVE_{kind.upper()}_BASE", "main"), "coord live test (closed by it)",
        "Opened by coord's live test; it closes this itself.", labels=("coord:live-test",)))
    try:
        assert forge.open_pr(NewPullRequest(branch, pr.base_branch, "again")).number == pr.number  # type: ignore[attr-defined]
        forge.post_status(pr.head_sha, CommitStatus(StatusState.success,  # type: ignore[attr-defined]
                                                    description="coord live test"))
        checks = forge.checks(pr.head_sha, branch=pr.base_branch)  # type: ignore[attr-defined]
        assert checks.named("coord/verify") is not None
        m = forge.mergeability(pr.number)  # type: ignore[attr-defined]
        assert m.pr.number == pr.number and (m.mergeable or m.blockers)
        assert base(pr.base_branch).branch == pr.base_branch
    finally:
        assert not forge.close_pr(pr.number).is_open  # type: ignore[attr-defined]
