"""The exact requests each forge client sends for its writes (``comment``,
``post_status``, ``close_pr``, ``merge`` and the merge's refusals before it asks the
forge): method, path, query, headers in their order and the body's bytes, as the fake
forge received them. What the clients share lives in one base; this pins that sharing it
changed no byte a forge sees. And what GitLab reads for a mergeability: its project's
rules once, never the protected branch (its protection reads both)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.errors import HeadMoved, MergeRefused
from coordination.forge.base import CommitStatus, NewPullRequest, StatusState
from tests.forges import FakeForge, client
from tests.forges.gitrepo import git

pytestmark = pytest.mark.timeout(120)

PROJECT = "acme/lib"
#: The path of the project under each kind's API root.
REPO = {"github": "/api/v3/repos/acme/lib", "gitea": "/api/v1/repos/acme/lib",
        "gitlab": "/api/v4/projects/acme%2Flib"}
#: Each kind's headers after the host, in the order httpx sends them.
HEADERS = {
    "github": [("accept-encoding", "gzip, deflate"), ("connection", "keep-alive"),
               ("user-agent", "coord"), ("authorization", "Bearer {token}"),
               ("x-github-api-version", "2022-11-28"),
               ("accept", "application/vnd.github+json")],
    "gitea": [("accept-encoding", "gzip, deflate"), ("connection", "keep-alive"),
              ("user-agent", "coord"), ("accept", "application/json"),
              ("authorization", "token {token}")],
    "gitlab": [("accept-encoding", "gzip, deflate"), ("connection", "keep-alive"),
               ("user-agent", "coord"), ("accept", "application/json"),
               ("authorization", "Bearer {token}")],
}
LONG = "d" * 300
MOVED = "0" * 40


def _push(fake: FakeForge, tmp: Path, branch: str) -> None:
    work = tmp / f"work-{branch}"
    git(tmp, "clone", "--quiet", str(fake.projects[PROJECT].repo.path), str(work))
    (work / f"{branch}.txt").write_text(f"{branch}\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", branch)
    git(work, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")


def _expected(kind: str, a: int, b: int, head_a: str, head_b: str) -> list[tuple[str, str, bytes]]:
    """(method, path, body) of every request, in order, for the calls of the test."""
    r = REPO[kind]
    pr = {"github": f"{r}/pulls", "gitea": f"{r}/pulls", "gitlab": f"{r}/merge_requests"}[kind]
    comment = {"github": f"{r}/issues/{a}/comments", "gitea": f"{r}/issues/{a}/comments",
               "gitlab": f"{r}/merge_requests/{a}/notes"}[kind]
    context = "name" if kind == "gitlab" else "context"
    cap = 140 if kind == "github" else 255
    failure = "failed" if kind == "gitlab" else "failure"
    merge_body = {
        "github": f'{{"sha":"{head_b}","merge_method":"squash","commit_title":"T",'
                  '"commit_message":"M"}',
        "gitea": f'{{"Do":"squash","head_commit_id":"{head_b}","MergeTitleField":"T",'
                 '"MergeMessageField":"M"}',
        "gitlab": f'{{"sha":"{head_b}","squash":true,"squash_commit_message":"T\\n\\nM"}}',
    }[kind]
    merge = ("POST" if kind == "gitea" else "PUT", f"{pr}/{b}/merge", merge_body.encode())
    close = {"github": ("PATCH", b'{"state":"closed"}'), "gitea": ("PATCH", b'{"state":"closed"}'),
             "gitlab": ("PUT", b'{"state_event":"close"}')}[kind]
    get_a, get_b = ("GET", f"{pr}/{a}", b""), ("GET", f"{pr}/{b}", b"")
    return [
        ("POST", comment, '{"body":"coord: verified \u00fc"}'.encode()),
        ("POST", f"{r}/statuses/{head_a}",
         f'{{"state":"success","{context}":"coord/verify","description":"{LONG[:cap]}",'
         '"target_url":"https://coord.example/e"}'.encode()),
        ("POST", f"{r}/statuses/{head_a}",
         f'{{"state":"{failure}","{context}":"coord/verify","description":"short"}}'.encode()),
        get_b,  # merge with a head that is not the PR's: refused before the forge is asked
        get_b, merge, *([get_b] if kind == "gitea" else []),  # Gitea reads the merge back
        get_b,  # merge of a merged PR: refused before the forge is asked
        get_a, (close[0], f"{pr}/{a}", close[1]),
        get_a,  # closing a closed PR: nothing to do
    ]


def test_each_write_sends_the_same_bytes(fake_forge: FakeForge, tmp_path: Path) -> None:
    fake_forge.add_project(PROJECT)
    _push(fake_forge, tmp_path, "one")
    _push(fake_forge, tmp_path, "two")
    forge = client(fake_forge, PROJECT)
    a = forge.open_pr(NewPullRequest("one", "main", "One"))
    b = forge.open_pr(NewPullRequest("two", "main", "Two"))
    fake_forge.seen.clear()

    forge.comment(a.number, "coord: verified \u00fc")
    forge.post_status(a.head_sha, CommitStatus(StatusState.success, description=LONG,
                                               target_url="https://coord.example/e"))
    forge.post_status(a.head_sha, CommitStatus(StatusState.failure, description="short"))
    with pytest.raises(HeadMoved):
        forge.merge(b.number, sha=MOVED, method="squash")
    done = forge.merge(b.number, sha=b.head_sha, method="squash", title="T", message="M")
    assert done.head_sha == b.head_sha
    with pytest.raises(MergeRefused, match="merged"):
        forge.merge(b.number, sha=b.head_sha)
    assert forge.close_pr(a.number).state.value == "closed"
    assert forge.close_pr(a.number).state.value == "closed"

    want = _expected(fake_forge.kind, a.number, b.number, a.head_sha, b.head_sha)
    assert [(s.method, s.path, s.body) for s in fake_forge.seen] == want
    assert all(s.query == [] for s in fake_forge.seen)
    host = [("host", f"127.0.0.1:{fake_forge.port}")]
    kind_headers = [(k, v.format(token=fake_forge.token)) for k, v in HEADERS[fake_forge.kind]]
    for s in fake_forge.seen:
        body = [("content-length", str(len(s.body))), ("content-type", "application/json")]
        assert list(s.headers.items()) == host + kind_headers + (body if s.body else []), s


@pytest.mark.parametrize("fake_forge", ["gitlab"], indirect=True)
def test_gitlab_reads_its_project_rules_once_and_no_protected_branch_for_a_mergeability(
        fake_forge: FakeForge, tmp_path: Path) -> None:
    fake_forge.add_project(PROJECT)
    _push(fake_forge, tmp_path, "one")
    forge = client(fake_forge, PROJECT)
    pr = forge.open_pr(NewPullRequest("one", "main", "One"))
    project, branch = REPO["gitlab"], f"{REPO['gitlab']}/protected_branches/main"
    fake_forge.seen.clear()

    said = forge.mergeability(pr.number)
    paths = [s.path for s in fake_forge.seen]
    assert (paths.count(project), branch in paths) == (1, False)
    assert said.checks is not None and said.checks.required == ()
    assert said.merge_queue is None

    fake_forge.seen.clear()
    protection = forge.protection("main")
    assert [s.path for s in fake_forge.seen] == [branch, project]
    assert (protection.required_checks, protection.merge_queue) == ((), None)
