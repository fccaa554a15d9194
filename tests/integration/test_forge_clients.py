"""coord's forge clients (GitHub, GitLab, Gitea) against the fake forges of tests/forges/:
real HTTP on loopback, real git behind, every request and response checked against the
forge's published description (the ``fake_forge`` fixture fails a test that sent or got
anything else). The pull request's life as change/ drives it: pushed, opened (once),
labelled, checked, reviewed, merged pinned to its head, a moved head refused, a refusal
named, a revert opened; and the webhooks the forge sends, signed."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordination.errors import HeadMoved, MergeRefused
from coordination.forge.base import (
    CheckState,
    CommitStatus,
    NewPullRequest,
    Options,
    PRState,
    PullRequestEvent,
    PushEvent,
    ReviewEvent,
    StatusState,
)
from coordination.forge.webhooks import parse_event, verify_signature
from tests.forges import FakeClock, FakeForge, client
from tests.forges.gitrepo import git, push_branch
from tests.webhooks import QuietHandler, serve, stop_serving

pytestmark = pytest.mark.timeout(120)

PROJECT = "acme/lib"
LABEL = "coord:PLAN-004"


def ci_of(fake: FakeForge) -> str:
    """The required check's name: GitLab requires the head's pipeline, not a name."""
    return "pipeline" if fake.kind == "gitlab" else "ci"


@pytest.fixture
def project(fake_forge: FakeForge) -> FakeForge:
    fake_forge.add_project(PROJECT)
    fake_forge.protect(PROJECT, approvals=1, checks=["ci"])
    return fake_forge


def test_the_default_branch_is_protected_by_the_fake(project: FakeForge, tmp_path: Path) -> None:
    work = tmp_path / "direct"
    git(tmp_path, "clone", "--quiet", str(project.projects[PROJECT].repo.path), str(work))
    (work / "x").write_text("x\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "direct")
    out = subprocess.run(["git", "-C", str(work), "push", "origin", "HEAD:main"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "protected" in out.stderr


def test_a_pull_request_from_open_to_merged(project: FakeForge, tmp_path: Path) -> None:
    head = push_branch(project, tmp_path, "bump")
    forge = client(project, PROJECT)
    assert forge.user() == "coord-bot"
    pr = forge.open_pr(NewPullRequest("bump", "main", "Bump libcore", "the change",
                                      labels=(LABEL,)))
    assert (pr.state, pr.head_sha, pr.head_branch, pr.base_branch, pr.labels) == (
        PRState.open, head, "bump", "main", (LABEL,))
    # Idempotent: the same head and base give the same pull request, never a second.
    assert forge.open_pr(NewPullRequest("bump", "main", "Bump libcore")).number == pr.number
    assert len(project.projects[PROJECT].prs) == 1
    assert forge.find_pr("bump") == forge.get_pr(pr.number)
    assert [p.number for p in forge.list_prs(label=LABEL)] == [pr.number]
    assert forge.list_prs(label="coord:other") == []

    m = forge.mergeability(pr.number)
    assert not m.mergeable
    ci = ci_of(project)
    kinds = {(b.kind, b.name) for b in m.blockers}
    assert ("review", None) in kinds and ("check", ci) in kinds, m.blockers
    assert m.checks is not None and m.checks.required == (ci,)

    forge.post_status(head, CommitStatus(StatusState.success, description="verified",
                                         target_url="https://coord.example/evidence"))
    project.set_check(PROJECT, head, ci, "success")
    project.review(PROJECT, pr.number, "ana")
    checks = forge.checks(head, branch="main")
    assert checks.named("coord/verify") is not None
    assert checks.named("coord/verify").state is CheckState.success  # type: ignore[union-attr]
    assert checks.state is CheckState.success
    assert forge.reviews(pr.number).approved_by == ("ana",)
    m = forge.mergeability(pr.number)
    assert m.mergeable and m.blockers == (), m

    result = forge.merge(pr.number, sha=head, method="merge")
    assert result.head_sha == head
    assert project.projects[PROJECT].repo.head("main") == result.sha
    merged = forge.get_pr(pr.number)
    assert merged.merged and merged.merge_sha == result.sha
    with pytest.raises(MergeRefused, match="merged"):
        forge.merge(pr.number, sha=head)


@pytest.mark.parametrize("method", ["squash", "rebase"])
def test_squash_and_rebase_leave_the_change_on_the_base(fake_forge: FakeForge, tmp_path: Path,
                                                        method: str) -> None:
    fake_forge.add_project(PROJECT)
    if fake_forge.kind == "gitlab" and method == "rebase":
        fake_forge.projects[PROJECT].merge_method = "ff"
    head = push_branch(fake_forge, tmp_path, "bump")
    forge = client(fake_forge, PROJECT)
    pr = forge.open_pr(NewPullRequest("bump", "main", "Bump"))
    result = forge.merge(pr.number, sha=head, method=method)  # type: ignore[arg-type]
    repo = fake_forge.projects[PROJECT].repo.path
    assert git(repo, "show", f"{result.sha}:change.txt").startswith("change.txt")
    parents = git(repo, "rev-list", "--parents", "-n", "1", result.sha).split()[1:]
    assert len(parents) == 1  # no merge commit


def test_gitlab_refuses_rebase_where_the_project_merges_with_merge_commits(
        fake_forge: FakeForge, tmp_path: Path) -> None:
    if fake_forge.kind != "gitlab":
        pytest.skip("GitLab merges by the project's method")
    fake_forge.add_project(PROJECT)
    head = push_branch(fake_forge, tmp_path, "bump")
    forge = client(fake_forge, PROJECT)
    pr = forge.open_pr(NewPullRequest("bump", "main", "Bump"))
    with pytest.raises(MergeRefused, match="fast-forward or semi-linear"):
        forge.merge(pr.number, sha=head, method="rebase")
    assert forge.get_pr(pr.number).is_open


def test_a_moved_head_is_refused_and_nothing_merges(project: FakeForge, tmp_path: Path) -> None:
    verified = push_branch(project, tmp_path, "bump")
    forge = client(project, PROJECT)
    pr = forge.open_pr(NewPullRequest("bump", "main", "Bump"))
    project.protect(PROJECT)  # nothing required: only the head decides
    base = project.projects[PROJECT].repo.head("main")
    moved = push_branch(project, tmp_path, "bump", "later.txt")
    with pytest.raises(HeadMoved) as caught:
        forge.merge(pr.number, sha=verified)
    assert (caught.value.expected, caught.value.actual) == (verified, moved)
    assert project.projects[PROJECT].repo.head("main") == base
    assert forge.get_pr(pr.number).is_open


def test_the_forge_refusing_a_moved_head_is_head_moved_too(project: FakeForge,
                                                           tmp_path: Path) -> None:
    """The head moves between coord's read and the forge's merge: the forge's own 409
    (GitHub's sha, GitLab's sha, Gitea's head_commit_id) is what refuses it."""
    verified = push_branch(project, tmp_path, "bump")
    forge = client(project, PROJECT)
    pr = forge.open_pr(NewPullRequest("bump", "main", "Bump"))
    project.protect(PROJECT)
    stale = forge._raw_pr(pr.number)  # (the one read the merge's own checks make)
    moved = push_branch(project, tmp_path, "bump", "later.txt")
    reads = iter([stale])
    real_read = forge._raw_pr
    forge._raw_pr = lambda n: next(reads, None) or real_read(n)  # type: ignore[method-assign]
    with pytest.raises(HeadMoved) as caught:
        forge.merge(pr.number, sha=verified)
    assert caught.value.actual == moved and caught.value.status == 409
    assert project.projects[PROJECT].prs[pr.number].state == "open"


def test_a_refused_merge_says_the_forges_reason(project: FakeForge, tmp_path: Path) -> None:
    head = push_branch(project, tmp_path, "bump")
    forge = client(project, PROJECT)
    pr = forge.open_pr(NewPullRequest("bump", "main", "Bump"))
    with pytest.raises(MergeRefused) as caught:  # no review, no ci: the protection says no
        forge.merge(pr.number, sha=head)
    assert caught.value.number == pr.number and caught.value.reason
    project.protect(PROJECT)
    project.projects[PROJECT].refusals[pr.number] = "merging is blocked by a rule"
    with pytest.raises(MergeRefused, match="merging is blocked by a rule"):
        forge.merge(pr.number, sha=head)
    assert forge.get_pr(pr.number).is_open


def test_a_conflict_is_named(project: FakeForge, tmp_path: Path) -> None:
    push_branch(project, tmp_path, "one", "same.txt")
    push_branch(project, tmp_path, "two", "same.txt")
    forge = client(project, PROJECT)
    project.protect(PROJECT)
    first = forge.open_pr(NewPullRequest("one", "main", "One"))
    second = forge.open_pr(NewPullRequest("two", "main", "Two"))
    forge.merge(first.number, sha=first.head_sha)
    m = forge.mergeability(second.number)
    assert not m.mergeable and "conflict" in {b.kind for b in m.blockers}, m


@pytest.mark.parametrize("fake_forge", ["gitea"], indirect=True)
def test_gitea_still_checking_is_read_again_and_a_lasting_no_said_as_either(
        project: FakeForge, tmp_path: Path) -> None:
    """Gitea says ``mergeable: false`` while it still checks a pull request, as for a
    conflict: read again each second (5 s at most), it merges once Gitea has checked;
    a no that lasts is said as a conflict or a check still under way, not as a conflict."""
    push_branch(project, tmp_path, "one", "one.txt")
    clock = FakeClock()
    forge = client(project, PROJECT, Options(clock=clock))
    project.protect(PROJECT)
    pr = forge.open_pr(NewPullRequest("one", "main", "One"))
    project.checking = 2  # type: ignore[attr-defined]
    m = forge.mergeability(pr.number)
    assert m.mergeable and m.conflict is False and clock.slept == [1.0, 1.0], (m, clock.slept)
    project.checking = 100  # type: ignore[attr-defined]
    m = forge.mergeability(pr.number)
    assert not m.mergeable and m.conflict is None, m
    assert clock.slept[2:] == [1.0] * 5, clock.slept
    [b] = m.blockers
    assert b.kind == "conflict" and "or Gitea still checking it" in b.detail, b


@pytest.mark.parametrize("fake_forge", ["github"], indirect=True)
def test_github_repository_settings_that_refuse_a_method_are_read_before_merging(
        project: FakeForge, tmp_path: Path) -> None:
    """A repository whose settings allow squash merges only (``allow_merge_commit:
    false``): a merge is refused before it is tried, naming the setting; squash is not."""
    forge = client(project, PROJECT)
    assert forge.merge_refusal("main", "merge") is None
    project.projects[PROJECT].allowed_methods = ["squash"]
    why = forge.merge_refusal("main", "merge")
    assert why is not None and "allow_merge_commit: false" in why, why
    assert "rebase" in (forge.merge_refusal("main", "rebase") or "")
    assert forge.merge_refusal("main", "squash") is None


def test_a_revert_pull_request_is_opened_from_a_pushed_branch(project: FakeForge,
                                                              tmp_path: Path) -> None:
    head = push_branch(project, tmp_path, "bump")
    forge = client(project, PROJECT)
    project.protect(PROJECT)
    pr = forge.open_pr(NewPullRequest("bump", "main", "Bump"))
    merged = forge.merge(pr.number, sha=head)
    work = tmp_path / "revert"
    git(tmp_path, "clone", "--quiet", str(project.projects[PROJECT].repo.path), str(work))
    git(work, "checkout", "--quiet", "-b", "revert-bump")
    git(work, "revert", "--no-edit", "-m", "1", merged.sha) if git(
        work, "rev-list", "--parents", "-n", "1", merged.sha).count(" ") > 1 else git(
        work, "revert", "--no-edit", merged.sha)
    git(work, "push", "--quiet", "origin", "revert-bump")
    revert = forge.open_pr(NewPullRequest("revert-bump", "main", f"Revert #{pr.number}",
                                          f"Reverts #{pr.number}", labels=(LABEL,)))
    assert revert.is_open and revert.number != pr.number and LABEL in revert.labels
    assert {p.number for p in forge.list_prs(label=LABEL, state="all")} == {revert.number}


def test_update_label_comment_and_close(project: FakeForge, tmp_path: Path) -> None:
    push_branch(project, tmp_path, "bump")
    forge = client(project, PROJECT)
    pr = forge.open_pr(NewPullRequest("bump", "main", "Bump", draft=True))
    assert pr.draft
    updated = forge.update_pr(pr.number, title="Bump libcore to 2.0", body="new body",
                              labels=[LABEL, "deps"])
    assert (updated.title, updated.body, set(updated.labels)) == (
        "Bump libcore to 2.0", "new body", {LABEL, "deps"})
    # GitHub flips it through GraphQL, GitLab and Gitea through the title's prefix.
    assert forge.update_pr(pr.number, draft=False).draft is False
    assert forge.get_pr(pr.number).title == "Bump libcore to 2.0"
    assert forge.update_pr(pr.number, draft=True).draft is True
    assert forge.update_pr(pr.number, draft=False).draft is False
    forge.add_labels(pr.number, ["late"])
    assert "late" in forge.get_pr(pr.number).labels and LABEL in forge.get_pr(pr.number).labels
    forge.comment(pr.number, "coord: verified on this head")
    assert project.projects[PROJECT].comments[pr.number] == ["coord: verified on this head"]
    closed = forge.close_pr(pr.number)
    assert closed.state is PRState.closed
    assert forge.close_pr(pr.number).state is PRState.closed  # again: nothing to do
    assert forge.find_pr("bump") is None and forge.find_pr("bump", state="all") is not None


def test_lists_follow_every_page(project: FakeForge, tmp_path: Path) -> None:
    project.max_page = 2
    forge = client(project, PROJECT)
    numbers = set()
    for i in range(5):
        push_branch(project, tmp_path, f"b{i}", f"f{i}.txt")
        numbers.add(forge.open_pr(NewPullRequest(f"b{i}", "main", f"PR {i}",
                                                 labels=(LABEL,))).number)
    assert {p.number for p in forge.list_prs(label=LABEL)} == numbers
    assert {p.number for p in forge.list_prs()} == numbers
    pages = [q for m, _p, q, _h, _b in project.seen if m == "GET" and dict(q).get("page")]
    assert pages, "no second page was asked for"


class Receiver(QuietHandler):
    got: list[tuple[dict[str, str], bytes]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802
        body = self.body()
        with self.lock:
            self.got.append(({k: v for k, v in self.headers.items()}, body))
        self.answer(204)


@pytest.fixture
def hook_receiver() -> Iterator[type[Receiver]]:
    handler = type("Got", (Receiver,), {"got": []})
    server = serve(handler)
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"  # type: ignore[attr-defined]
    yield handler
    stop_serving(server)


def test_webhooks_are_signed_and_parse_into_events(project: FakeForge, tmp_path: Path,
                                                   hook_receiver: type[Receiver]) -> None:
    secret = "s3cret-hook"
    receiver = hook_receiver
    project.add_webhook(receiver.url, secret)  # type: ignore[attr-defined]
    project.protect(PROJECT)
    head = push_branch(project, tmp_path, "bump")
    forge = client(project, PROJECT)
    pr = forge.open_pr(NewPullRequest("bump", "main", "Bump"))
    project.review(PROJECT, pr.number, "ana")
    forge.merge(pr.number, sha=head)
    project.settle()
    kind = project.kind
    events = []
    for headers, body in receiver.got:
        assert verify_signature(kind, headers, body, secret), headers  # type: ignore[arg-type]
        assert not verify_signature(kind, headers, body, "another")  # type: ignore[arg-type]
        if kind != "gitlab":  # GitLab's token is the secret itself, not a signature of the body
            assert not verify_signature(kind, headers, body + b" ", secret)  # type: ignore[arg-type]
        events.append(parse_event(kind, headers, body))  # type: ignore[arg-type]
    pushes = [e for e in events if isinstance(e, PushEvent)]
    assert any(e.branch == "bump" and e.sha == head and e.project == PROJECT for e in pushes)
    merged_tip = project.projects[PROJECT].repo.head("main")
    assert any(e.branch == "main" and e.sha == merged_tip for e in pushes)
    opened = [e for e in events if isinstance(e, PullRequestEvent) and e.number == pr.number]
    assert opened and opened[0].head_sha == head and opened[0].head_branch == "bump"
    assert any(e.state is PRState.merged for e in opened)
    assert any(isinstance(e, ReviewEvent) and e.author == "ana" and e.number == pr.number
               for e in events)
    # A delivery with its signature stripped does not verify.
    headers, body = receiver.got[0]
    bare = {k: v for k, v in headers.items() if "signature" not in k.lower()
            and "token" not in k.lower()}
    assert not verify_signature(kind, bare, body, secret)  # type: ignore[arg-type]
    assert json.loads(body)  # the body itself is JSON


def test_a_pull_request_merged_or_closed_by_hand_is_seen_not_merged_over(
        project: FakeForge, tmp_path: Path) -> None:
    first = push_branch(project, tmp_path, "one", "one.txt")
    push_branch(project, tmp_path, "two", "two.txt")
    forge = client(project, PROJECT)
    a = forge.open_pr(NewPullRequest("one", "main", "One"))
    b = forge.open_pr(NewPullRequest("two", "main", "Two"))
    project.merge_by_hand(PROJECT, a.number)
    project.close_by_hand(PROJECT, b.number)
    assert forge.get_pr(a.number).state is PRState.merged
    assert forge.get_pr(b.number).state is PRState.closed
    base = project.projects[PROJECT].repo.head("main")
    for number, word in ((a.number, "merged"), (b.number, "closed")):
        with pytest.raises(MergeRefused, match=f"is {word}") as caught:
            forge.merge(number, sha=first)
        assert caught.value.reason == f"the pull request is {word}"
        assert not forge.mergeability(number).mergeable
    assert project.projects[PROJECT].repo.head("main") == base


def test_a_check_run_again_that_passed_reads_passed(project: FakeForge, tmp_path: Path) -> None:
    """A status posted failed, then (a re-run) success under the same name: its latest
    word counts (GitLab lists every status of a commit, oldest first unless asked
    newest first)."""
    push_branch(project, tmp_path, "rerun")
    forge = client(project, PROJECT)
    pr = forge.open_pr(NewPullRequest("rerun", "main", "Rerun"))
    forge.post_status(pr.head_sha, CommitStatus(StatusState.failure, context="ci"))
    forge.post_status(pr.head_sha, CommitStatus(StatusState.success, context="ci"))
    got = forge.checks(pr.head_sha).named("ci")
    assert got is not None and got.state is CheckState.success, got
