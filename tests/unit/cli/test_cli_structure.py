"""`coord plan create|update|delete`, `coord milestone ...`, `coord dep add|update|remove`,
`coord repo add|update|remove` as a user runs them: subprocesses, --json documents,
exit 2 with the referrers named and the file untouched, `coord audit --verify` clean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.support.cli import clean_error, coord

pytestmark = pytest.mark.timeout(120)


def ok(eco: Path, *args: str) -> Any:
    r = coord(eco, *args, "--json")
    assert r.returncode == 0, (args, r.stderr)
    return json.loads(r.stdout)


def test_structure_edits_from_the_cli(example_catalog: Path) -> None:
    eco = example_catalog
    plan = ok(eco, "plan", "create", "--title", "Python 3.14", "--repos", "libcore,api",
              "--criterion", "all on 3.14")
    assert plan["id"] == "PLAN-002" and plan["repos"] == ["libcore", "api"]
    ms = ok(eco, "milestone", "add", "PLAN-002", "--title", "Library", "--due", "2026-12-24",
            "--todos", "TODO-001")
    assert ms["id"] == "MS-003" and ms["due"] == "2026-12-24"
    assert ok(eco, "milestone", "update", "MS-003", "--no-due")["due"] is None
    assert ok(eco, "plan", "update", "PLAN-002", "--status", "active")["status"] == "active"
    dep = ok(eco, "dep", "add", "--consumer", "web", "--provider", "jobs", "--check", "true")
    assert dep["id"] == "DEP-004" and dep["validation"]["command"] == "true"
    assert ok(eco, "dep", "update", "DEP-004", "--no-check")["validation"] is None
    repo = ok(eco, "repo", "add", "docs", "--path", "repos/docs", "--tag", "md")
    assert repo == {**repo, "name": "docs", "tags": ["md"]}
    assert ok(eco, "repo", "update", "docs", "--concurrency", "2")["concurrency"] == 2

    # Refused while referenced: exit 2, each referrer by file and line, nothing written.
    before = eco.read_bytes()
    r = coord(eco, "milestone", "delete", "MS-003")
    clean_error(r, 2)
    assert "TODO-001 is in PLAN-002 through MS-003 alone" in r.stderr
    r = coord(eco, "repo", "remove", "jobs")
    clean_error(r, 2)
    assert f"{eco}:" in r.stderr and "todo TODO-004 runs in jobs" in r.stderr
    assert "--force" in r.stderr
    r = coord(eco, "plan", "delete", "PLAN-001")
    clean_error(r, 2)
    assert "5 todos belong to it" in r.stderr
    r = coord(eco, "dep", "add", "--consumer", "web", "--provider", "jbos")
    clean_error(r, 2)
    assert "did you mean 'jobs'" in r.stderr
    assert eco.read_bytes() == before

    gone = ok(eco, "milestone", "delete", "MS-003", "--force")
    assert gone["deleted"] == "MS-003" and gone["dropped"][0]["id"] == "TODO-001"
    assert ok(eco, "dep", "remove", "DEP-004")["deleted"] == "DEP-004"
    removed = ok(eco, "repo", "remove", "docs")
    assert removed["deleted"] == "docs" and removed["deleted_todos"] == []
    human = coord(eco, "plan", "delete", "PLAN-002")
    assert human.returncode == 0 and human.stdout.strip() == "deleted PLAN-002", human.stderr
    # A new plan does not take the deleted one's id.
    assert coord(eco, "plan", "create", "--title", "again").stdout.strip() == "PLAN-003"

    verify = coord(eco, "audit", "--verify", "--json")
    assert verify.returncode == 0, verify.stderr
    checked = json.loads(verify.stdout)
    assert checked["intact"] is True and checked["catalog_changed_since"] is None, checked
    assert checked["entries"] == 13, checked  # one per edit, none for the refusals


def test_plan_and_issue_repos_take_a_selector_and_keep_the_names(example_catalog: Path) -> None:
    eco = example_catalog
    # libcore <- api <- web, libcore <- jobs; tags python: libcore, api, jobs
    plan = ok(eco, "plan", "create", "--title", "py", "--repos", "tag:python,!jobs")
    assert plan["repos"] == ["libcore", "api"]
    assert "tag:python" not in eco.read_text()  # the names are stored, not the selector
    assert ok(eco, "plan", "update", plan["id"], "--repos", "...^libcore",
              "--repos", "!web")["repos"] == ["api", "jobs"]  # repeats join into one selector
    assert ok(eco, "plan", "update", plan["id"], "--repos", "")["repos"] == []
    assert ok(eco, "plan", "update", plan["id"], "--repos", "web,api...")["repos"] == [
        "web", "libcore", "api"]  # in the order written
    issue = ok(eco, "issue", "create", "--title", "x", "--repos", "web^...")
    assert issue["repos"] == ["libcore", "api"]
    assert ok(eco, "issue", "update", issue["id"], "--repos", "role:serv*")["repos"] == [
        "api", "jobs"]
    before = eco.read_bytes()
    for args in (("plan", "create", "--title", "y", "--repos", "tag:pyton"),
                 ("plan", "update", plan["id"], "--repos", "apii"),
                 ("issue", "create", "--title", "y", "--repos", "api,jbos"),
                 ("issue", "update", issue["id"], "--repos", "nomatch-*")):
        r = coord(eco, *args)
        clean_error(r, 2)
        assert "matches no repo" in r.stderr, (args, r.stderr)
    assert "did you mean tag:python" in coord(eco, "plan", "create", "--title", "y", "--repos",
                                              "tag:pyton").stderr
    assert "did you mean jobs" in coord(eco, "issue", "create", "--title", "y", "--repos",
                                        "api,jbos").stderr
    assert eco.read_bytes() == before
