"""Models, every kind of field error and every whole-catalog check, as the user reads them.

Each error is produced from YAML text through the loader, so the tests also
pin the located, human wording (file:line: field: message).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.catalog.file import loader
from coordination.catalog.rules.checks import check_catalog, loc_to_field
from coordination.catalog.models import Catalog, checkout_path, kind_of, next_id
from coordination.errors import CatalogSchemaError

pytestmark = pytest.mark.timeout(60)

BASE: dict[str, Any] = {
    "version": 1,
    "repos": [{"name": "api"}, {"name": "web"}],
    "coordination": {
        "issues": [
            {"id": "ISSUE-001", "title": "one", "blocking": ["ISSUE-002"]},
            {"id": "ISSUE-002", "title": "two", "dependencies": ["ISSUE-001"]},
        ],
        "plans": [
            {"id": "PLAN-001", "title": "p", "repos": ["api"],
             "milestones": [{"id": "MS-001", "todos": ["TODO-001"]}]},
        ],
        "todos": [
            {"id": "TODO-001", "task": "a", "repo": "api", "plan": "PLAN-001",
             "blocking": ["TODO-002"]},
            {"id": "TODO-002", "task": "b", "repo": "web", "plan": "PLAN-001",
             "blocked_by": ["TODO-001", "ISSUE-001"]},
        ],
        "dependencies": [{"id": "DEP-001", "consumer": "web", "provider": "api"}],
    },
}


def catalog(**edits: Any) -> dict[str, Any]:
    """BASE with ``path=value`` edits, path as 'coordination.todos.0.repo'."""
    data = copy.deepcopy(BASE)
    for dotted, value in edits.items():
        *parents, last = [int(p) if p.isdigit() else p for p in dotted.split("__")]
        node: Any = data
        for p in parents:
            node = node[p]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return data


DELETE = object()


def problems(data: dict[str, Any]) -> list[str]:
    text = yaml.safe_dump(data, sort_keys=False)
    with pytest.raises(CatalogSchemaError) as info:
        loader.load_catalog(text.encode(), "eco.yaml")
    return [str(p) for p in info.value.problems]


def one(data: dict[str, Any]) -> str:
    found = problems(data)
    assert len(found) == 1, found
    return found[0]


# -- models -------------------------------------------------------------------
def test_base_catalog_is_valid_and_has_lookups() -> None:
    cat = loader.load_catalog(yaml.safe_dump(BASE).encode(), "eco.yaml")
    assert cat.repo("api") is not None and cat.repo("nope") is None
    assert cat.todo("TODO-002").blocked_by == ["TODO-001", "ISSUE-001"]  # type: ignore[union-attr]
    assert [t.id for t in cat.plan_todos("PLAN-001")] == ["TODO-001", "TODO-002"]
    assert cat.issue("ISSUE-002") is not None and cat.dependency("DEP-001") is not None
    assert cat.todo("TODO-001").timeout == 3600  # type: ignore[union-attr]


def test_env_values_become_text() -> None:
    cat = Catalog.model_validate(catalog(coordination__todos__0__env={"PY": 3.13, "X": True, "N": 2}))
    assert cat.coordination.todos[0].env == {"PY": "3.13", "X": "true", "N": "2"}


def test_next_id_keeps_width_and_kind_of() -> None:
    assert next_id("todo", ["TODO-009", "TODO-002"]) == "TODO-010"
    assert next_id("issue", []) == "ISSUE-001"
    assert next_id("todo", ["TODO-00041"]) == "TODO-00042"
    assert kind_of("MS-3") == "milestone" and kind_of("todo-1") is None


def test_loc_to_field() -> None:
    assert loc_to_field(("coordination", "todos", 3, "repo")) == "todos[3].repo"
    assert loc_to_field(("repos", 0, "name")) == "repos[0].name"


# -- field errors (Pydantic), one kind each ------------------------------------
@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        ({"coordination__todos__1__repo": DELETE},
         "todos[1]: TODO-002 has no repo: give it 'repo: NAME', or make it a template"),
        ({"coordination__todos__1__id": DELETE},
         "todos[1].id: field required (add 'id: TODO-<digits>')"),
        ({"coordination__issues__0__title": DELETE},
         "issues[0].title: field required (add 'title: <text>')"),
        ({"coordination__todos__0__reop": "api"},
         "todos[0].reop: unknown field 'reop' (did you mean 'repo'?)"),
        ({"repos__0__zzz": 1}, "repos[0].zzz: unknown field 'zzz' (remove it or fix its spelling)"),
        ({"coordination__todos__0__status": "done"},
         "todos[0].status: 'done' is not allowed; use one of: pending, in_progress, completed, "
         "failed, skipped, blocked"),
        ({"coordination__issues__0__priority": "urgent"}, "low, medium, high, critical"),
        ({"coordination__dependencies__0__type": "x"}, "runtime, build, dev, test, api"),
        ({"coordination__todos__0__id": "T-1"},
         "todos[0].id: must look like TODO-<digits> (e.g. TODO-001), got 'T-1'"),
        ({"coordination__issues__0__id": "ISS-1"}, "must look like ISSUE-<digits>"),
        ({"coordination__plans__0__milestones__0__id": "M1"}, "must look like MS-<digits>"),
        ({"coordination__dependencies__0__id": "D1"}, "must look like DEP-<digits>"),
        ({"coordination__todos__1__blocked_by": ["X-1"]},
         "todos[1].blocked_by[0]: must look like ISSUE-<digits> or TODO-<digits> (a template's instance: TODO-<digits>[REPO] or TODO-<digits>[same]), got 'X-1'"),
        ({"repos__0__name": "Api"}, "repos[0].name: must be a repo name: lowercase letters"),
        ({"coordination__todos__0__task": 12}, "todos[0].task: expected text, got 12 (quote it"),
        ({"coordination__todos__0__assignee": True}, "expected text, got true (quote it"),
        ({"repos__0__concurrency": "many"}, "repos[0].concurrency: expected a whole number"),
        ({"coordination__todos__0__timeout": "soon"}, "todos[0].timeout: expected a number, got 'soon'"),
        ({"coordination__todos__0__labels": "x"}, "todos[0].labels: expected a list"),
        ({"coordination__todos__0__env": ["A"]}, "todos[0].env: expected a mapping"),
        ({"coordination__dependencies__0__validation": "cmd"},
         "dependencies[0].validation: expected a mapping"),
        ({"coordination__issues__0__created": "tomorrow"},
         "issues[0].created: expected a date like 2026-01-31, got 'tomorrow'"),
        ({"repos__0__concurrency": 0}, "repos[0].concurrency: must be >= 1, got 0"),
        ({"coordination__todos__0__timeout": 0}, "todos[0].timeout: must be > 0"),
        ({"coordination__todos__0__retries": 1000}, "todos[0].retries: must be <= 100"),
        ({"coordination__todos__0__task": ""}, "todos[0].task: must not be empty"),
        ({"coordination__dependencies__0__validation": {"command": "x", "expected_pattern": "("}},
         "dependencies[0].validation.expected_pattern: not a valid regular expression"),
        ({"coordination": []}, "coordination: expected a mapping"),
        ({"repos": {"api": {}}}, "repos: expected a list"),
    ],
)
def test_field_error(edits: dict[str, Any], expected: str) -> None:
    message = one(catalog(**edits))
    assert message.startswith("eco.yaml:")
    assert expected in message


def test_all_field_errors_reported_in_line_order() -> None:
    found = problems(catalog(coordination__todos__1__status="x", coordination__todos__0__repo=1,
                             repos__1__name="W"))
    assert len(found) == 3
    lines = [int(p.split(":")[1]) for p in found]
    assert lines == sorted(lines)


def test_problem_count_is_bounded() -> None:
    data = catalog()
    data["coordination"]["todos"] = [{"id": f"bad-{i}"} for i in range(200)]
    found = problems(data)
    assert len(found) == loader.MAX_PROBLEMS + 1
    assert "more problems" in found[-1]


# -- whole-catalog checks ------------------------------------------------------
@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        ({"repos__1__name": "api"}, "repos[1].name: duplicate repo name 'api' (first defined at "
         "repos[0].name); rename one"),
        ({"coordination__issues__1__id": "ISSUE-001", "coordination__issues__0__blocking": [],
          "coordination__issues__1__dependencies": []}, "issues[1].id: duplicate issue id"),
        ({"coordination__plans": [copy.deepcopy(BASE["coordination"]["plans"][0]) for _ in "ab"]},
         "plans[1].id: duplicate plan id 'PLAN-001'"),
        ({"coordination__dependencies": [dict(BASE["coordination"]["dependencies"][0]) for _ in "ab"]},
         "dependencies[1].id: duplicate dependency id"),
        ({"coordination__plans__0__milestones": [{"id": "MS-001"}, {"id": "MS-001"}]},
         "plans[0].milestones[1].id: duplicate milestone id"),
        ({"coordination__issues__0__repos": ["apii"]},
         "issues[0].repos[0]: unknown repo 'apii' (did you mean 'api'?)"),
        ({"coordination__plans__0__repos": ["zzz"]},
         "plans[0].repos[0]: unknown repo 'zzz' (known: api, web)"),
        ({"coordination__todos__0__repo": "apii"},
         "todos[0].repo: unknown repo 'apii' (did you mean 'api'?)"),
        ({"coordination__dependencies__0__consumer": "webb"},
         "dependencies[0].consumer: unknown repo 'webb'"),
        ({"coordination__dependencies__0__consumer": "api"},
         "dependencies[0].provider: a repo cannot depend on itself (api)"),
        ({"coordination__issues__1__dependencies": ["ISSUE-002"],
          "coordination__issues__0__blocking": []},
         "issues[1].dependencies[0]: issue ISSUE-002 cannot list itself"),
        ({"coordination__issues__1__dependencies": ["ISSUE-001", "ISSUE-009"]},
         "issues[1].dependencies[1]: unknown issue 'ISSUE-009'"),
        ({"coordination__issues__1__dependencies": []},
         "issues[0].blocking[0]: ISSUE-001 says it blocks ISSUE-002, but "
         "ISSUE-002.dependencies does not list ISSUE-001"),
        ({"coordination__plans__0__milestones__0__todos": ["TODO-009"]},
         "plans[0].milestones[0].todos[0]: unknown todo 'TODO-009'"),
        ({"coordination__todos__0__plan": "PLAN-002"},
         "todos[0].plan: unknown plan 'PLAN-002' (did you mean 'PLAN-001'?)"),
        ({"coordination__todos__1__blocked_by": ["TODO-002"], "coordination__todos__0__blocking": []},
         "todos[1].blocked_by[0]: todo TODO-002 cannot be blocked by itself"),
        ({"coordination__todos__1__blocked_by": ["TODO-001", "ISSUE-077"]},
         "todos[1].blocked_by[1]: unknown issue 'ISSUE-077'"),
        ({"coordination__todos__1__blocked_by": ["TODO-001", "TODO-404"]},
         "todos[1].blocked_by[1]: unknown todo 'TODO-404'"),
        ({"coordination__todos__0__blocking": ["TODO-001"]},
         "todos[0].blocking[0]: todo TODO-001 cannot block itself"),
        ({"coordination__todos__0__blocking": ["TODO-404"]},
         "todos[0].blocking[0]: unknown todo 'TODO-404'"),
        ({"coordination__todos__1__blocked_by": ["ISSUE-001"]},
         "todos[0].blocking[0]: TODO-001 says it blocks TODO-002, but TODO-002.blocked_by does "
         "not list TODO-001; add it there or remove TODO-002 from blocking"),
    ],
)
def test_catalog_check(edits: dict[str, Any], expected: str) -> None:
    found = problems(catalog(**edits))  # a renamed repo also breaks its references
    assert all(m.startswith("eco.yaml:") for m in found)
    assert any(expected in m for m in found), found


def test_check_catalog_returns_locs_for_the_loader() -> None:
    cat = Catalog.model_validate(catalog(coordination__todos__0__repo="nope"))
    [problem] = check_catalog(cat)
    assert problem.loc == ("coordination", "todos", 0, "repo")


def test_a_checkout_path_resolves_its_base_unless_told_it_is_resolved(tmp_path: Path) -> None:
    """`coord init` resolves the catalog's directory once for a fleet's every repo
    (``resolved=True``); anyone else has it resolved for them, a symlinked one too."""
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    resolved = Path(os.path.realpath(real))
    assert checkout_path("api", link) == resolved / "api"
    assert checkout_path("../x/./api", link) == resolved.parent / "x" / "api"
    assert checkout_path("api", link, resolved=True) == link / "api"  # taken as given
    assert checkout_path("api", resolved, resolved=True) == checkout_path("api", link)
    assert checkout_path("/srv/api", link, resolved=True) == Path("/srv/api")
