"""Which plans a push starts (``on: {push: {repos, branch}}``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.catalog.file.store import CatalogStore
from coordination.errors import NotFoundError, UsageError
from coordination.sweeps.starts.triggers import (
    has_dependents_form,
    plans_for_push,
    push_trigger,
    schedule_trigger,
    trigger_scope,
)

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
    - {id: PLAN-005, title: web's only, on: {push: {repos: "...api"}}}
  todos:
    - {id: TODO-001, task: t, repo: core, plan: PLAN-001, run: "true"}
    - {id: TODO-002, task: t, repo: api, plan: PLAN-001, run: "true"}
    - {id: TODO-003, task: t, repo: jobs, plan: PLAN-001, run: "true"}
    - {id: TODO-004, task: t, repo: core, plan: PLAN-002, run: "true"}
    - {id: TODO-005, task: t, repo: api, plan: PLAN-002, run: "true"}
    - {id: TODO-006, task: t, repo: web, plan: PLAN-002, run: "true"}
    - {id: TODO-007, task: t, repo: web, plan: PLAN-004, run: "true"}
    - {id: TODO-008, task: t, repo: web, plan: PLAN-005, run: "true"}
"""


def matches(eco: Path, repo: str, branch: str | None = None) -> list[str]:
    return [m.plan for m in plans_for_push(CatalogStore(eco).load(), repo, branch,
                                           eco.parent).matches]


def test_a_push_starts_the_plans_whose_trigger_selects_its_repo_on_its_branch(eco: Path) -> None:
    assert matches(eco, "api", "main") == ["PLAN-001", "PLAN-002", "PLAN-005"]
    assert matches(eco, "jobs") == ["PLAN-001"]  # no branch: its default, main
    assert matches(eco, "web") == ["PLAN-002", "PLAN-005"]  # ...core: what depends on core
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


def scopes(eco: Path, repo: str, branch: str | None = None) -> dict[str, tuple[str, ...]]:
    return {m.plan: m.repos for m in plans_for_push(CatalogStore(eco).load(), repo, branch,
                                                   eco.parent).matches}


def test_a_push_is_scoped_to_its_repo_and_with_a_dependents_selector_what_depends_on_it(
        eco: Path) -> None:
    # tag:python: the pushed repo alone; ...core / ...api: it and its consumers, transitively
    assert scopes(eco, "api", "main") == {"PLAN-001": ("api",), "PLAN-002": ("api", "web"),
                                          "PLAN-005": ("api", "web")}
    assert scopes(eco, "core", "trunk") == {"PLAN-002": ("core", "api", "web")}
    assert scopes(eco, "web") == {"PLAN-002": ("web",), "PLAN-005": ("web",)}


def test_a_plan_with_no_todo_in_the_push_scope_is_not_started_saying_why(eco: Path) -> None:
    eco.write_text(eco.read_text().replace("repo: web, plan: PLAN-005", "repo: core, plan: PLAN-005"))
    got = plans_for_push(CatalogStore(eco).load(), "api", "main", eco.parent)
    assert [m.plan for m in got.matches] == ["PLAN-001", "PLAN-002"]
    assert dict(got.unmatched)["PLAN-005"] == (
        "it has no todo in api, web (a push runs the plan's todos of the pushed repo and "
        "what depends on it)")
    eco.write_text(eco.read_text().replace("repo: api, plan: PLAN-001", "repo: web, plan: PLAN-001"))
    got = plans_for_push(CatalogStore(eco).load(), "api", "main", eco.parent)
    assert dict(got.unmatched)["PLAN-001"] == (
        "it has no todo in api (a push runs the plan's todos of the pushed repo)")


@pytest.mark.parametrize(("selector", "dependents"), [
    ("...core", True), ("...^core", True), ("tag:python&...core", True),
    ("api,...core", True), ("tag:python", False), ("core...", False), ("*,!...core", False)])
def test_which_selectors_take_what_depends_on_the_pushed_repo(selector: str,
                                                               dependents: bool) -> None:
    assert has_dependents_form(selector) is dependents


def test_a_push_triggers_scope_reaches_the_sweep_and_nothing_else_is_scoped() -> None:
    assert trigger_scope(push_trigger("api", "main", "3f2c1e9", ["api", "web"])) == ["api", "web"]
    assert trigger_scope(push_trigger("api", "main", "3f2c1e9")) is None
    assert trigger_scope(schedule_trigger("2026-12-01T03:00:00+00:00")) is None
    assert trigger_scope(None) is None
    with pytest.raises(UsageError, match="must be a list of repo names"):
        trigger_scope({"kind": "push", "repo": "api", "repos": "api"})  # type: ignore[typeddict-item]
