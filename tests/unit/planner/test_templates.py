"""Todo templates (``for_each``): the model's rules, the expansion into instances, and
the planner over an expanded catalog (levels along ``deps: follow``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from coordination.catalog.rules.checks import check_catalog
from coordination.catalog.models import Catalog, kind_of
from coordination.catalog.selection.templates import expand, split_instance, template_outcome
from coordination.errors import UsageError
from coordination.planner import analyze, build_plan_graph

pytestmark = pytest.mark.timeout(60)

BASE = Path("/fleet")


def fleet(todos: list[dict[str, Any]], **extra: Any) -> Catalog:
    """api <- web, api <- cli (web and cli depend on api), docs untagged."""
    return Catalog.model_validate({
        "version": 1,
        "repos": [{"name": "api", "tags": ["python"]}, {"name": "web", "tags": ["python", "ui"]},
                  {"name": "cli", "tags": ["python"]}, {"name": "docs"}],
        "coordination": {
            "plans": [{"id": "PLAN-001", "title": "upgrade", **extra}],
            "todos": todos,
            "dependencies": [{"id": "DEP-001", "consumer": "web", "provider": "api"},
                             {"id": "DEP-002", "consumer": "cli", "provider": "api"}],
        }})


def template(**kw: Any) -> dict[str, Any]:
    return {"id": "TODO-010", "task": "upgrade", "plan": "PLAN-001", "for_each": "tag:python",
            "run": "make upgrade", **kw}


def test_a_template_becomes_one_instance_per_selected_repo() -> None:
    cat = expand(fleet([template(env={"X": "1"}, commit="Upgrade in {repo}")]), BASE)
    ids = [t.id for t in cat.coordination.todos]
    assert ids == ["TODO-010[api]", "TODO-010[web]", "TODO-010[cli]"]
    web = cat.todo("TODO-010[web]")
    assert web is not None and web.repo == "web" and web.plan == "PLAN-001"
    assert web.run == "make upgrade"  # the command text is the template's, never pasted into
    assert web.env == {"X": "1", "COORD_REPO_PATH": "/fleet/web", "COORD_REPO_TAGS": "python,ui"}
    assert web.commit == "Upgrade in web"
    assert web.blocked_by == []  # no deps: follow, no edges
    assert [t.id for t in cat.plan_todos("PLAN-001")] == ids


def test_deps_follow_orders_instances_along_dependencies() -> None:
    cat = expand(fleet([template(deps="follow")]), BASE)
    assert cat.todo("TODO-010[web]").blocked_by == ["TODO-010[api]"]  # type: ignore[union-attr]
    a = analyze(build_plan_graph(cat, "PLAN-001"))
    assert a.levels == [["TODO-010[api]"], ["TODO-010[cli]", "TODO-010[web]"]]


def test_deps_follow_goes_through_repos_the_template_does_not_select() -> None:
    # web -> api -> lib, web -> lib; the template selects web and lib only
    cat = Catalog.model_validate({
        "version": 1, "repos": [{"name": n} for n in ("lib", "api", "web")],
        "coordination": {
            "plans": [{"id": "PLAN-001", "title": "upgrade"}],
            "todos": [template(for_each="web,lib", deps="follow"),
                      template(id="TODO-011", for_each="*", deps="follow")],
            "dependencies": [{"id": "DEP-001", "consumer": "web", "provider": "api"},
                             {"id": "DEP-002", "consumer": "api", "provider": "lib"},
                             {"id": "DEP-003", "consumer": "web", "provider": "lib"}]}})
    out = expand(cat, BASE)
    assert out.todo("TODO-010[web]").blocked_by == ["TODO-010[lib]"]  # type: ignore[union-attr]
    # every repo selected: web after api only (api after lib says web after lib)
    assert out.todo("TODO-011[web]").blocked_by == ["TODO-011[api]"]  # type: ignore[union-attr]


def test_blocked_by_a_template_waits_for_every_instance_or_the_same_repos() -> None:
    first = {"id": "TODO-009", "task": "prepare", "plan": "PLAN-001", "for_each": "api,web",
             "run": "true"}
    every = expand(fleet([first, template(blocked_by=["TODO-009"])]), BASE)
    assert every.todo("TODO-010[cli]").blocked_by == ["TODO-009[api]", "TODO-009[web]"]  # type: ignore[union-attr]
    same = expand(fleet([first, template(blocked_by=["TODO-009[same]"])]), BASE)
    assert same.todo("TODO-010[web]").blocked_by == ["TODO-009[web]"]  # type: ignore[union-attr]
    assert same.todo("TODO-010[cli]").blocked_by == []  # type: ignore[union-attr]  # 009 skips cli
    plain = {"id": "TODO-011", "task": "after", "repo": "docs", "plan": "PLAN-001",
             "run": "true", "blocked_by": ["TODO-010"]}
    after = expand(fleet([template(), plain]), BASE)
    assert after.todo("TODO-011").blocked_by == [  # type: ignore[union-attr]
        "TODO-010[api]", "TODO-010[web]", "TODO-010[cli]"]


def test_an_instance_the_template_does_not_select_is_refused_by_name() -> None:
    plain = {"id": "TODO-011", "task": "after", "repo": "docs", "run": "true",
             "blocked_by": ["TODO-010[docs]"]}
    with pytest.raises(UsageError, match=r"TODO-010\[docs\] is no instance.*does not select 'docs'"):
        expand(fleet([template(), plain]), BASE)


def test_instance_status_comes_from_the_templates_instances() -> None:
    cat = expand(fleet([template(instances={"api": "completed", "web": "failed"},
                                 status="failed")]), BASE)
    got = {t.id: t.status.value for t in cat.coordination.todos}
    assert got == {"TODO-010[api]": "completed", "TODO-010[web]": "failed",
                   "TODO-010[cli]": "pending"}
    pg = build_plan_graph(cat, "PLAN-001")  # a completed instance is not run again
    assert sorted(pg.graph.nodes) == ["TODO-010[cli]", "TODO-010[web]"]


def test_a_catalog_without_templates_is_returned_as_it_is() -> None:
    cat = fleet([{"id": "TODO-001", "task": "t", "repo": "api", "run": "true"}])
    assert expand(cat, BASE) is cat


def test_a_selector_that_selects_nothing_names_the_template() -> None:
    with pytest.raises(UsageError, match=r"TODO-010.for_each: repo selector 'tag:rust'"):
        expand(fleet([template(for_each="tag:rust")]), BASE)


def test_repo_is_required_unless_for_each() -> None:
    with pytest.raises(ValidationError, match="TODO-001 has no repo.*for_each"):
        fleet([{"id": "TODO-001", "task": "t", "run": "true"}])
    with pytest.raises(ValidationError, match="is a template.*remove 'repo: api'"):
        fleet([template(repo="api")])
    with pytest.raises(ValidationError, match="'deps:' belongs to a template"):
        fleet([{"id": "TODO-001", "task": "t", "repo": "api", "deps": "follow"}])


def test_checks_read_instance_refs_and_selectors() -> None:
    bad = fleet([template(for_each="tag:"),
                 {"id": "TODO-011", "task": "t", "repo": "api", "blocked_by": ["TODO-010[same]"]},
                 {"id": "TODO-012", "task": "t", "repo": "api", "blocked_by": ["TODO-011[api]"]}])
    msgs = [p.message for p in check_catalog(bad)]
    assert any("'tag:' names nothing" in m for m in msgs), msgs
    assert any("[same] means the same repo's instance" in m for m in msgs), msgs
    assert any("TODO-011 is not a template" in m for m in msgs), msgs
    good = fleet([template(), {"id": "TODO-011", "task": "t", "repo": "api",
                               "blocked_by": ["TODO-010[api]"]}])
    assert check_catalog(good) == []


def test_instance_ids_parse_as_todo_ids() -> None:
    assert kind_of("TODO-010[api]") == "todo"
    assert split_instance("TODO-010[svc.v2]") == ("TODO-010", "svc.v2")
    assert split_instance("TODO-010") == ("TODO-010", None)
    assert kind_of("TODO-010[API]") is None


def test_template_outcome() -> None:
    sel = ["api", "web"]
    assert template_outcome({"api": "completed", "web": "completed"}, sel) == "completed"
    assert template_outcome({"api": "completed"}, sel) == "pending"  # web never ran
    assert template_outcome({"api": "completed", "web": "failed"}, sel) == "failed"


def test_the_manager_gets_an_instance_as_a_sweep_runs_it(tmp_path: Path) -> None:
    """What `todo show`, MCP's get and run_todo read an instance id through."""
    from coordination.catalog.manager import CoordinationManager
    from coordination.errors import NotFoundError

    (tmp_path / "ecosystem.yaml").write_text(
        "version: 1\nrepos:\n  - {name: api, tags: [python]}\n  - {name: web}\n"
        "coordination:\n  todos:\n    - {id: TODO-010, task: t, for_each: 'api,web', run: 'true'}\n")
    m = CoordinationManager(tmp_path / "ecosystem.yaml")
    got = m.reads.get_todo("TODO-010[web]")
    assert got.repo == "web" and got.env["COORD_REPO_PATH"] == str(tmp_path / "web")
    assert m.reads.get_todo("TODO-010").for_each == "api,web"
    with pytest.raises(NotFoundError, match=r"TODO-010\[doc\]"):
        m.reads.get_todo("TODO-010[doc]")


def test_a_thousand_repos_expand_in_proportion_to_the_instances() -> None:
    """#41 item 4: each instance holds its own repo's values only (no copy of the repo
    list), and a 1,000-repo fleet's template expands and levels quickly."""
    import time

    n = 1000
    cat = Catalog.model_validate({
        "version": 1,
        "repos": [{"name": f"r{i:04d}", "tags": ["svc"]} for i in range(n)],
        "coordination": {
            "plans": [{"id": "PLAN-001", "title": "all"}],
            "todos": [template(for_each="tag:svc", deps="follow", env={"A": "1"})],
            "dependencies": [{"id": f"DEP-{i:04d}", "consumer": f"r{i:04d}",
                              "provider": f"r{i - 1:04d}"} for i in range(1, n)]}})
    t0 = time.perf_counter()
    out = expand(cat, BASE)
    levels = analyze(build_plan_graph(out, "PLAN-001")).levels
    took = time.perf_counter() - t0
    assert len(out.coordination.todos) == n and len(levels) == n
    sizes = {len(t.env) + len(t.blocked_by) for t in out.coordination.todos}
    assert sizes <= {3, 4}  # A, COORD_REPO_PATH, COORD_REPO_TAGS (+ one provider)
    assert took < 10, took


def test_plan_reset_forgets_a_templates_instances(tmp_path: Path) -> None:
    """Reset: every instance runs again, not only those the sync left undone."""
    from coordination.catalog.manager import CoordinationManager

    eco = tmp_path / "ecosystem.yaml"
    eco.write_text(
        "version: 1\nrepos:\n  - {name: api}\n  - {name: web}\n"
        "coordination:\n  plans:\n    - {id: PLAN-001, title: p, status: active}\n"
        "  todos:\n    - {id: TODO-010, task: t, plan: PLAN-001, for_each: 'api,web', "
        "run: 'true', status: pending, instances: {api: completed}}\n")
    m = CoordinationManager(eco)
    m.plans.reset("PLAN-001")
    assert m.reads.get_todo("TODO-010").instances is None
    assert m.reads.get_todo("TODO-010[api]").status.value == "pending"


def test_mcp_gets_an_instance_within_its_scope(tmp_path: Path) -> None:
    """MCP's get takes ``TODO-010[api]``; a server scoped to api does not read web's."""
    from coordination.errors import CoordError
    from coordination.mcp_server.operations import Operations

    eco = tmp_path / "ecosystem.yaml"
    eco.write_text(
        "version: 1\nrepos:\n  - {name: api}\n  - {name: web}\n"
        "coordination:\n  todos:\n    - {id: TODO-010, task: t, for_each: 'api,web', run: 'true'}\n")
    ops = Operations(eco, repos=["api"])
    got = ops.get(id="TODO-010[api]")
    assert isinstance(got, dict) and got["id"] == "TODO-010[api]" and got["repo"] == "api"
    with pytest.raises(CoordError, match="web"):
        ops.get(id="TODO-010[web]")


def test_a_change_plans_dry_run_says_what_each_repo_gets() -> None:
    from coordination.catalog.selection.templates import plan_templates

    raw = fleet([template(deps="follow", commit="Upgrade in {repo}")],
                change={"branch": "upgrade"})
    (doc,) = plan_templates(raw, expand(raw, BASE), "PLAN-001")
    assert doc["repos"] == ["api", "web", "cli"] and doc["count"] == 3
    assert doc["branch"] == "upgrade" and doc["deps"] == "follow"
    web = doc["instances"][1]
    assert web == {"id": "TODO-010[web]", "repo": "web", "status": "pending",
                   "commit": "Upgrade in web", "after": ["TODO-010[api]"]}


def big_fleet(n: int, todos: list[dict[str, Any]]) -> Catalog:
    return Catalog.model_validate({
        "version": 1, "repos": [{"name": f"r{i:05d}", "tags": ["svc"]} for i in range(n)],
        "coordination": {"plans": [{"id": "PLAN-001", "title": "all"}], "todos": todos}})


def test_a_plain_todo_after_a_big_template_names_each_instance_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A release todo blocked by a 5,000-repo template waits on 5,000 instances, each
    named once, however often the catalog names the template (the refs are merged in
    one pass, not by scanning the list so far per instance)."""
    n = 5000
    cat = big_fleet(n, [template(for_each="tag:svc"),
                        {"id": "TODO-020", "task": "release", "plan": "PLAN-001",
                         "repo": "r00000", "blocked_by": ["TODO-010", "TODO-010[r00007]",
                                                          "TODO-010"]}])
    out = expand(cat, BASE)
    after = out.todo("TODO-020")
    assert after is not None and len(after.blocked_by) == n
    assert after.blocked_by[:2] == ["TODO-010[r00000]", "TODO-010[r00001]"]


def test_a_template_after_every_instance_of_another_big_one_is_refused_with_the_barrier(
        ) -> None:
    """2,000 instances each waiting on each of 2,000 others is 4,000,000 edges in the
    spec: refused, naming both templates and the two ways to say it in n + m."""
    first = template(id="TODO-009", for_each="tag:svc")
    cat = big_fleet(2000, [first, template(for_each="tag:svc", blocked_by=["TODO-009"])])
    with pytest.raises(UsageError) as err:
        expand(cat, BASE)
    assert "TODO-010.blocked_by: TODO-009" in err.value.message
    assert "4,000,000 edges" in err.value.message
    assert "TODO-009[same]" in str(err.value.hint) and "4,000 edges" in str(err.value.hint)
    # the same at a size that stays small expands as before: every instance after every one
    small = expand(big_fleet(30, [first, template(for_each="tag:svc",
                                                  blocked_by=["TODO-009"])]), BASE)
    inst = small.todo("TODO-010[r00003]")
    assert inst is not None and len(inst.blocked_by) == 30
