"""Which plans a push starts (``on: {push: {repos, branch}}``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.catalog.file.store import CatalogStore
from coordination.errors import NotFoundError
from coordination.sweeps.starts.triggers import plans_for_push

pytestmark = pytest.mark.timeout(30)

# web -> api -> core ; jobs alone
CATALOG = """\
version: 1
repos:
  - {name: core, path: repos/core, tags: [python], default_branch: trunk}
  - {name: api, path: repos/api, tags: [python]}
  - {name: web, path: repos/web, tags: [js]}
  - {name: jobs, path: repos/jobs, tags: [python]}
coordination:
  dependencies:
    - {id: DEP-001, consumer: web, provider: api}
    - {id: DEP-002, consumer: api, provider: core}
  plans:
    - {id: PLAN-001, title: python on main, on: {push: {repos: "tag:python", branch: main}}}
    - {id: PLAN-002, title: what depends on core, on: {push: {repos: "...core"}}}
    - {id: PLAN-003, title: no trigger}
    - {id: PLAN-004, title: cancelled, status: cancelled, on: {push: {repos: "*"}}}
"""


def matches(eco: Path, repo: str, branch: str | None = None) -> list[str]:
    return [m.plan for m in plans_for_push(CatalogStore(eco).load(), repo, branch,
                                           eco.parent).matches]


def test_a_push_starts_the_plans_whose_trigger_selects_its_repo_on_its_branch(eco: Path) -> None:
    assert matches(eco, "api", "main") == ["PLAN-001", "PLAN-002"]
    assert matches(eco, "jobs") == ["PLAN-001"]  # no branch: its default, main
    assert matches(eco, "web") == ["PLAN-002"]  # ...core: what depends on core
    assert matches(eco, "core") == ["PLAN-002"]  # its default branch is trunk
    assert matches(eco, "core", "main") == ["PLAN-001"]
    assert matches(eco, "api", "feature") == []


def test_what_it_does_not_start_says_why(eco: Path) -> None:
    got = plans_for_push(CatalogStore(eco).load(), "web", "main", eco.parent)
    assert got.branch == "main"
    assert dict(got.unmatched) == {"PLAN-001": "'tag:python' does not select web",
                                   "PLAN-004": "it is cancelled"}


def test_an_unknown_repo_is_exit_2(eco: Path) -> None:
    with pytest.raises(NotFoundError, match="unknown repo 'ap'") as got:
        plans_for_push(CatalogStore(eco).load(), "ap", None, eco.parent)
    assert got.value.exit_code == 2 and "api" in str(got.value.hint)
