"""GitHub's rulesets beside the classic branch protection: coord's client reads the
branch's active rules (``GET /repos/{o}/{r}/rules/branches/{b}``, which any reader may
ask) as well as the classic protection (admins only), against the fake GitHub, every
request and response checked against GitHub's published description. A branch
protected by a ruleset alone reads protected, with the ruleset's review count and
checks; with both, the larger count and every check; with the classic protection
unreadable, its review count stays unknown (the forge's verdict holds) and the checks
are still all named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coordination.forge.base import NewPullRequest
from tests.forges import FakeGitHub, client
from tests.forges.gitrepo import push_branch

pytestmark = pytest.mark.timeout(120)

PROJECT = "acme/lib"


@pytest.fixture
def github(tmp_path: Path) -> Iterator[FakeGitHub]:
    fake = FakeGitHub(tmp_path / "forge").start()
    try:
        fake.add_project(PROJECT)
        yield fake
        fake.settle()
    finally:
        fake.stop()
    assert fake.errors == [], "\n".join(fake.errors)


def rules_read(fake: FakeGitHub) -> int:
    return sum("/rules/branches/" in s.path for s in fake.seen)


def test_a_branch_protected_by_a_ruleset_alone(github: FakeGitHub, tmp_path: Path) -> None:
    p = github.projects[PROJECT]
    p.protected = False
    github.add_ruleset(PROJECT, approvals=2, checks=["ci", "lint"], strict=True)
    forge = client(github, PROJECT)
    got = forge.protection("main")
    assert (got.protected, got.known, got.required_approvals, got.required_checks,
            got.up_to_date) == (True, True, 2, ("ci", "lint"), True)
    assert rules_read(github) == 1
    # what the reviews and checks of a pull request into it say, and the merge's blockers
    head = push_branch(github, tmp_path, "bump")
    pr = forge.open_pr(NewPullRequest("bump", "main", "Bump"))
    github.review(PROJECT, pr.number, "ana")
    assert forge.reviews(pr.number).required == 2
    assert forge.checks(head, branch="main").required == ("ci", "lint")
    m = forge.mergeability(pr.number)
    assert not m.mergeable and {("check", "ci"), ("check", "lint")} <= {
        (b.kind, b.name) for b in m.blockers}, m.blockers


def test_a_branch_without_protection_or_rules_reads_unprotected(github: FakeGitHub) -> None:
    github.projects[PROJECT].protected = False
    got = client(github, PROJECT).protection("main")
    assert (got.protected, got.known, got.required_approvals, got.required_checks) == (
        False, True, 0, ())


def test_the_classic_protection_and_a_ruleset_together(github: FakeGitHub) -> None:
    github.protect(PROJECT, approvals=1, checks=["ci"])
    github.add_ruleset(PROJECT, approvals=3, checks=["lint", "ci"])
    got = client(github, PROJECT).protection("main")
    assert (got.protected, got.known, got.required_approvals, got.required_checks,
            got.up_to_date) == (True, True, 3, ("ci", "lint"), False)
    github.add_ruleset(PROJECT, approvals=0, checks=[])  # the classic asks more: it holds
    got = client(github, PROJECT).protection("main")
    assert (got.required_approvals, got.required_checks) == (1, ("ci",))


def test_a_classic_protection_the_token_may_not_read(github: FakeGitHub) -> None:
    """Not an admin: the classic protection answers 404; the branch's summary says it is
    on, with its checks; the ruleset is read in full. The review count stays unknown
    (the classic one may ask more), every check is named."""
    github.protect(PROJECT, approvals=2, checks=["ci"])
    github.add_ruleset(PROJECT, approvals=1, checks=["lint"])
    github.projects[PROJECT].admin = False
    got = client(github, PROJECT).protection("main")
    assert (got.protected, got.known, got.required_approvals, got.required_checks) == (
        True, False, None, ("ci", "lint"))
    github.projects[PROJECT].ruleset = None  # as before rulesets: the summary alone
    got = client(github, PROJECT).protection("main")
    assert (got.protected, got.known, got.required_approvals, got.required_checks) == (
        True, False, None, ("ci",))


def test_a_ruleset_on_another_branch_asks_nothing_here(github: FakeGitHub,
                                                       tmp_path: Path) -> None:
    push_branch(github, tmp_path, "release")
    github.projects[PROJECT].protected = False
    github.add_ruleset(PROJECT, approvals=2, checks=["ci"])
    got = client(github, PROJECT).protection("release")
    assert (got.protected, got.required_approvals, got.required_checks) == (False, 0, ())


def test_one_mergeability_reads_the_protection_once(github: FakeGitHub,
                                                    tmp_path: Path) -> None:
    """The reviews' count and the required checks come from one read of the base's
    protection (its rules, its classic protection), not one read each."""
    github.add_ruleset(PROJECT, approvals=1, checks=["ci"])
    push_branch(github, tmp_path, "bump")
    forge = client(github, PROJECT)
    pr = forge.open_pr(NewPullRequest("bump", "main", "Bump"))
    before = len(github.seen)
    m = forge.mergeability(pr.number)
    assert m.reviews.required == 1 and m.checks is not None and m.checks.required == ("ci",)
    read = [s.path for s in github.seen[before:]]
    assert sum(p.endswith("/rules/branches/main") for p in read) == 1, read
    assert sum(p.endswith("/branches/main/protection") for p in read) == 1, read


def test_a_server_without_rulesets_reads_the_classic_protection_alone(
        github: FakeGitHub) -> None:
    """A GitHub Enterprise Server from before rulesets answers 404 to the rules: the
    protection reads as it did before rulesets were read."""
    github.protect(PROJECT, approvals=2, checks=["ci"])
    github.fail("GET", r"/rules/branches/", 404, body={"message": "Not Found"})
    got = client(github, PROJECT).protection("main")
    assert (got.protected, got.known, got.required_approvals, got.required_checks) == (
        True, True, 2, ("ci",))
    assert rules_read(github) == 1
