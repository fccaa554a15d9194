"""A template whose ``for_each`` selects nothing is one plan's problem, never every
plan's: `plan list`, `todo list`, `todo show`, `sweep status`, the web view's overview
and MCP's lists show it beside the others and succeed; `plan status` and `plan
validate` of its plan say it and exit 1 (a validation problem); commands that plan
another plan go on, and a command that plans its plan refuses naming it (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from coordination.runtime.context import Runtime
from tests.unit.support.catalogs import svc_fleet
from tests.unit.support.cli import clean_error, coord

pytestmark = pytest.mark.timeout(180)

REPOS = ("core", "api")


def fleet(root: Path, selector: str = "tag:nothing") -> Path:
    """PLAN-001: a plain todo; PLAN-002: a template over ``selector`` and a plain todo."""
    return svc_fleet(root, REPOS, {
        "plans": [{"id": "PLAN-001", "title": "fine", "status": "active"},
                  {"id": "PLAN-002", "title": "broken", "status": "active"}],
        "todos": [
            {"id": "TODO-001", "task": "plain", "plan": "PLAN-001", "repo": "core",
             "run": "true"},
            {"id": "TODO-010", "task": "upgrade", "plan": "PLAN-002",
             "for_each": selector, "run": "true"},
            {"id": "TODO-011", "task": "after", "plan": "PLAN-002", "repo": "api",
             "run": "true", "blocked_by": ["TODO-010"]},
        ],
    })


def break_template(eco: Path) -> None:
    eco.write_text(eco.read_text().replace("tag:svc", "tag:nothing"))


PROBLEM = "TODO-010: 0 instances: for_each 'tag:nothing': 'tag:nothing' matches no repo"


def test_lists_show_the_problem_and_succeed(tmp_path: Path) -> None:
    eco = fleet(tmp_path)
    r = coord(eco, "plan", "list")
    assert r.returncode == 0, r.stderr
    assert "PLAN-001" in r.stdout and f"PLAN-002: {PROBLEM}" in " ".join(r.stdout.split())
    r = coord(eco, "plan", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["id"]: row for row in json.loads(r.stdout)}
    assert rows["PLAN-001"]["problems"] == [] and rows["PLAN-001"]["progress"]["total"] == 1
    assert len(rows["PLAN-002"]["problems"]) == 2, rows  # the template, and who waits on it
    assert rows["PLAN-002"]["problems"][0].startswith(PROBLEM)
    assert "TODO-011: waits for TODO-010" in rows["PLAN-002"]["problems"][1]
    for args in (("todo", "list"), ("todo", "list", "--repo", "api"),
                 ("plan", "status", "PLAN-001"), ("plan", "validate", "PLAN-001"),
                 ("plan", "show", "PLAN-001"), ("plan", "sweep", "PLAN-001", "--dry-run")):
        r = coord(eco, *args)
        assert r.returncode == 0, (args, r.stderr)
    r = coord(eco, "todo", "show", "TODO-010")
    assert r.returncode == 0, r.stderr
    assert PROBLEM in " ".join(r.stdout.split())


def test_the_plans_status_and_validate_say_it_and_exit_1(tmp_path: Path) -> None:
    eco = fleet(tmp_path)
    r = coord(eco, "plan", "status", "PLAN-002", "--json")
    clean_error(r, 1)
    doc = json.loads(r.stdout)  # the document still, then the error
    assert doc["complete"] is False and doc["problems"][0].startswith(PROBLEM)
    assert PROBLEM in r.stderr and "cannot be planned now" in r.stderr
    r = coord(eco, "plan", "status", "PLAN-002")
    clean_error(r, 1)
    assert PROBLEM in " ".join(r.stdout.split())
    r = coord(eco, "plan", "validate", "PLAN-002", "--json")
    clean_error(r, 1)
    found = json.loads(r.stdout)["findings"]
    assert found[0]["code"] == "template" and found[0]["message"].startswith(PROBLEM)
    for args in (("plan", "show", "PLAN-002"), ("plan", "sweep", "PLAN-002", "--dry-run")):
        r = coord(eco, *args)  # planning it: refused, naming the template
        clean_error(r, 2)
        assert "TODO-010.for_each" in r.stderr and "'tag:nothing' matches no repo" in r.stderr


def test_mcp_and_the_web_overview_show_it(rt: Runtime, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from coordination.mcp_server.operations import Operations
    from coordination.ui.app import create_app

    eco = fleet(tmp_path)
    ops = Operations(eco)
    rows = {row["id"]: row for row in ops.list_plans()}  # type: ignore[union-attr]
    assert rows["PLAN-001"]["problems"] == []
    assert str(rows["PLAN-002"]["problems"][0]).startswith(PROBLEM)  # type: ignore[index]
    status = ops.plan_status("PLAN-002")
    assert isinstance(status, dict) and status["complete"] is False
    assert str(status["problems"][0]).startswith(PROBLEM)  # type: ignore[index]
    assert isinstance(ops.plan_status("PLAN-001"), dict)
    todos = ops.list_todos(repo="api")  # type: ignore[attr-defined]
    assert [t["id"] for t in todos] == ["TODO-011"]

    client = TestClient(create_app(rt, eco), base_url="http://localhost")
    doc = client.get("/api/overview").json()
    assert doc["catalog_error"] is None, doc["catalog_error"]
    plans = {p["id"]: p for p in doc["plans"]}
    assert plans["PLAN-001"]["problems"] == [] and plans["PLAN-002"]["problems"]
    graph = client.get("/api/plans/PLAN-002/graph").json()
    assert PROBLEM in graph["problem"]
    assert client.get("/api/plans/PLAN-001/graph").status_code == 200


def test_a_sweep_of_another_plan_runs_and_sweep_status_reads_after_the_template_broke(
        tmp_path: Path) -> None:
    eco = fleet(tmp_path, "tag:svc")
    r = coord(eco, "plan", "sweep", "PLAN-002", "--wait", "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)["sweep_id"]
    break_template(eco)  # now it selects nothing
    r = coord(eco, "plan", "sweep", "PLAN-001", "--wait", "--json", timeout=120)
    assert r.returncode == 0, r.stderr  # another plan's problem does not stop this one
    assert json.loads(r.stdout)["status"] == "succeeded"
    for args in (("sweep", "status", done), ("sweep", "list"), ("events", "--sweep", done),
                 ("why", "TODO-010[api]", "--sweep", done), ("plan", "list")):
        r = coord(eco, *args)
        assert r.returncode == 0, (args, r.stderr)
    r = coord(eco, "plan", "sweep", "PLAN-002", "--again")
    clean_error(r, 2)
    assert "TODO-010.for_each" in r.stderr
    r = coord(eco, "todo", "run", "TODO-010[api]")
    clean_error(r, 2)
    assert "TODO-010.for_each" in r.stderr


def test_another_plans_change_status_is_not_stopped(tmp_path: Path) -> None:
    import subprocess

    eco = fleet(tmp_path)
    for r in REPOS:
        subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path / r)], check=True)
        subprocess.run(["git", "-C", str(tmp_path / r), "-c", "user.email=t@t", "-c",
                        "user.name=t", "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    doc = yaml.safe_load(eco.read_text())
    doc["coordination"]["plans"].append({"id": "PLAN-003", "title": "a change",
                                         "status": "active", "change": {"branch": "bump"}})
    doc["coordination"]["todos"].append({"id": "TODO-020", "task": "bump", "plan": "PLAN-003",
                                         "repo": "core", "run": "true", "commit": "bump"})
    eco.write_text(yaml.safe_dump(doc, sort_keys=False))
    r = coord(eco, "change", "status", "PLAN-003", "--json")
    assert r.returncode == 0, r.stderr
    assert list(json.loads(r.stdout)["repos"]) == ["core"]
    r = coord(eco, "change", "revert", "PLAN-003", "--dry-run", "--json")
    assert "TODO-010" not in r.stderr, r.stderr


def test_a_dry_run_expands_its_templates_once(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`plan sweep --dry-run` of a plan with a template expands the catalog once (a
    selector's probes, git for `changed:`, run once), its checks and its document alike;
    the document is the one the expansion gives."""
    from coordination.catalog.selection import templates
    from tests.unit.support.cli import coord_inline

    eco = fleet(tmp_path, "tag:svc")
    calls: list[Path] = []
    expand = templates.expand

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(Path(str(args[1])))
        return expand(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(templates, "expand", counted)
    r = coord_inline(eco, "plan", "sweep", "PLAN-002", "--dry-run", "--json")
    assert r.code == 0, r.err
    assert sorted(r.json()["queues"]) == ["TODO-010[api]", "TODO-010[core]", "TODO-011"]
    assert calls == [eco.resolve().parent]
