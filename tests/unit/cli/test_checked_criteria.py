"""Criteria with checks from the command line (issue 52, item 3): `plan update
--criterion T --check CMD`, `todo create|update --acceptance T --check CMD` write
``{text, check}`` beside plain strings (both edit paths), read back by the loader; a
--check count that does not match is exit 2 with nothing written; `plan status --check`
records the results beside the catalog and in the audit log."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.catalog.audit import log as audit
from coordination.catalog.runs import criteria
from coordination.catalog.models import Criterion
from coordination.catalog.file.store import CatalogStore
from tests.unit.support.cli import coord_inline

pytestmark = pytest.mark.timeout(120)

CATALOG = """\
# checked
version: 1
repos:
  - name: api
    path: api
coordination:
  plans:
    - id: PLAN-001
      title: p   # the plan
      status: active
      completion_criteria: [said only]
  todos:
    - id: TODO-001
      task: a
      repo: api
      plan: PLAN-001
      run: "true"
"""


@pytest.fixture(params=["splice", "round-trip"])
def criteria_eco(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path:
    from coordination.settings import get_settings

    monkeypatch.setenv("COORD_USER", "tester")
    monkeypatch.setenv("COORD_EDIT_SPLICE", "1" if request.param == "splice" else "0")
    get_settings.cache_clear()
    (tmp_path / "api").mkdir()
    path = tmp_path / "ecosystem.yaml"
    path.write_text(CATALOG)
    return path


def test_checks_written_beside_plain_criteria(criteria_eco: Path) -> None:
    r = coord_inline(criteria_eco, "plan", "update", "PLAN-001", "--criterion", "said only", "--criterion",
              "p95 < 100ms", "--check", "", "--check", "./p95.sh --max 100")
    assert r.code == 0, r.err
    r = coord_inline(criteria_eco, "todo", "update", "TODO-001", "--acceptance", "tests pass", "--check",
              "make test")
    assert r.code == 0, r.err
    r = coord_inline(criteria_eco, "todo", "create", "--task", "b", "--repo", "api", "--acceptance", "x",
              "--check", "test -e x", "--acceptance", "free")
    assert r.code == 2 and "--check is given 1 time(s) and --acceptance 2 time(s)" in r.err
    cat = CatalogStore(criteria_eco, cache_dir=None).load()
    plan, todo = cat.plan("PLAN-001"), cat.todo("TODO-001")
    assert plan is not None and todo is not None
    assert plan.completion_criteria == ["said only",
                                        Criterion(text="p95 < 100ms", check="./p95.sh --max 100")]
    assert todo.acceptance_criteria == [Criterion(text="tests pass", check="make test")]
    assert "# the plan" in criteria_eco.read_text() and "# checked" in criteria_eco.read_text()
    assert cat.todo("TODO-002") is None  # the refused create wrote nothing
    r = coord_inline(criteria_eco, "todo", "update", "TODO-001", "--acceptance", "")
    assert r.code == 0, r.err
    todo = CatalogStore(criteria_eco, cache_dir=None).load().todo("TODO-001")
    assert todo is not None and todo.acceptance_criteria == []


def test_a_mismatched_check_count_writes_nothing(criteria_eco: Path) -> None:
    before = criteria_eco.read_bytes()
    r = coord_inline(criteria_eco, "plan", "update", "PLAN-001", "--criterion", "a", "--check", "true",
              "--check", "false")
    assert r.code == 2 and "one --check per --criterion" in r.err, r.err
    assert criteria_eco.read_bytes() == before
    assert not audit.log_path(criteria_eco).exists()


def test_plan_status_check_records_and_shows(criteria_eco: Path) -> None:
    assert coord_inline(criteria_eco, "plan", "update", "PLAN-001", "--criterion", "flag set", "--check",
                 "test -e flag").code == 0
    shown = coord_inline(criteria_eco, "plan", "status", "PLAN-001", "--json").json()
    assert shown["checks"] == [{"criterion": "flag set", "check": "test -e flag", "ok": None,
                                "at": None, "exit_code": None, "reason": None}]
    r = coord_inline(criteria_eco, "plan", "status", "PLAN-001", "--check", "--json")
    assert r.code == 1 and "flag set" in r.err
    assert r.json()["checks"][0]["ok"] is False and r.json()["checks"][0]["exit_code"] == 1
    (criteria_eco.parent / "flag").touch()  # the catalog's directory: where a plan's checks run
    r = coord_inline(criteria_eco, "plan", "status", "PLAN-001", "--check", "--json")
    assert r.code == 0 and r.json()["checks"][0]["ok"] is True
    assert [x["ok"] for x in criteria.read_results(criteria_eco)["PLAN-001"]] == [True]
    ops = [e["op"] for e in audit.read(audit.log_path(criteria_eco))]
    assert ops.count("plan.checked") == 2
    # The todo is not completed: checks passing do not complete the plan by themselves.
    assert coord_inline(criteria_eco, "plan", "status", "PLAN-001", "--json").json()["complete"] is False
    # A changed command is not the one that passed: never checked as written now.
    assert coord_inline(criteria_eco, "plan", "update", "PLAN-001", "--criterion", "flag set", "--check",
                 "test -e flag && true").code == 0
    assert coord_inline(criteria_eco, "plan", "status", "PLAN-001", "--json").json()["checks"][0]["ok"] is None
