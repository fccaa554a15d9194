"""Edits of a template's instances (``TODO-010[api]``): `todo complete|update`, `plan
reset --todos` and MCP's complete edit the template's ``instances:`` entry (status
edits only: a field of an instance is the template's, and is refused); a status edit
of the whole template sets every instance; each is one audited edit, and the next dry
run runs what the catalog now says is left."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.support.catalogs import svc_fleet
from tests.unit.support.cli import clean_error, coord

pytestmark = pytest.mark.timeout(120)

REPOS = ("core", "api", "web")


def fleet(root: Path, **template: Any) -> Path:
    return svc_fleet(root, REPOS, {
        "plans": [{"id": "PLAN-001", "title": "upgrade", "status": "active"}],
        "todos": [{"id": "TODO-010", "task": "upgrade", "plan": "PLAN-001",
                   "for_each": "tag:svc", "run": "true", **template}],
    })


def template(eco: Path) -> dict[str, Any]:
    item: dict[str, Any] = yaml.safe_load(eco.read_text())["coordination"]["todos"][0]
    return item


def to_run(eco: Path) -> list[str]:
    """What the next sweep of PLAN-001 would run (its dry run's todos)."""
    r = coord(eco, "plan", "sweep", "PLAN-001", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    return sorted(t for level in json.loads(r.stdout)["levels"] for t in level)


def last_audit(eco: Path) -> dict[str, Any]:
    r = coord(eco, "audit", "--json")
    assert r.returncode == 0, r.stderr
    entry: dict[str, Any] = json.loads(r.stdout)[-1]
    return entry


def test_completing_an_instance_edits_its_entry_and_is_audited(tmp_path: Path) -> None:
    eco = fleet(tmp_path)
    r = coord(eco, "todo", "complete", "TODO-010[api]")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "completed TODO-010[api]"  # printed as it is, not as markup
    item = template(eco)
    assert item["instances"] == {"api": "completed"} and item.get("status", "pending") == "pending"
    entry = last_audit(eco)
    assert entry["op"] == "complete_todo" and entry["ids"] == ["TODO-010"]
    assert entry["changes"][0]["fields"]["instances"] == [None, {"api": "completed"}]
    assert to_run(eco) == ["TODO-010[core]", "TODO-010[web]"]
    r = coord(eco, "todo", "update", "TODO-010[core]", "--status", "completed")
    assert r.returncode == 0, r.stderr
    r = coord(eco, "todo", "complete", "TODO-010[web]")
    assert r.returncode == 0, r.stderr
    item = template(eco)
    assert item["status"] == "completed"  # every instance is: so is the template
    assert item["instances"] == dict.fromkeys(REPOS, "completed")  # in the repos' order


def test_completing_the_template_completes_every_instance(tmp_path: Path) -> None:
    eco = fleet(tmp_path, status="failed", instances={"core": "completed", "api": "failed"})
    assert to_run(eco) == ["TODO-010[api]", "TODO-010[web]"]
    r = coord(eco, "todo", "complete", "TODO-010")
    assert r.returncode == 0, r.stderr
    item = template(eco)
    assert item["status"] == "completed" and "instances" not in item
    r = coord(eco, "plan", "sweep", "PLAN-001", "--dry-run", "--json")
    assert json.loads(r.stdout)["levels"] == []  # api's failed instance is not run again
    r = coord(eco, "todo", "show", "TODO-010[api]", "--json")
    assert json.loads(r.stdout)["status"] == "completed"


def test_a_status_edit_of_the_template_sets_every_instance(tmp_path: Path) -> None:
    eco = fleet(tmp_path, status="completed", instances=dict.fromkeys(REPOS, "completed"))
    r = coord(eco, "todo", "update", "TODO-010", "--status", "skipped")
    assert r.returncode == 0, r.stderr
    item = template(eco)
    assert item["status"] == "skipped" and item["instances"] == dict.fromkeys(REPOS, "skipped")
    r = coord(eco, "todo", "update", "TODO-010", "--status", "pending", "--retries", "2")
    assert r.returncode == 0, r.stderr
    item = template(eco)
    assert item["status"] == "pending" and "instances" not in item and item["retries"] == 2
    assert to_run(eco) == [f"TODO-010[{r}]" for r in ("api", "core", "web")]


def test_an_instance_of_a_template_completed_as_a_whole_keeps_the_others(
        tmp_path: Path) -> None:
    eco = fleet(tmp_path, status="completed")
    r = coord(eco, "todo", "update", "TODO-010[web]", "--status", "failed")
    assert r.returncode == 0, r.stderr
    item = template(eco)
    assert item["instances"] == {"core": "completed", "api": "completed", "web": "failed"}
    assert item["status"] == "failed"
    assert to_run(eco) == ["TODO-010[web]"]


def test_fields_of_an_instance_are_the_templates_and_refused(tmp_path: Path) -> None:
    eco = fleet(tmp_path)
    before = eco.read_bytes()
    r = coord(eco, "todo", "update", "TODO-010[api]", "--run", "make x")
    clean_error(r, 2)
    assert "instance of the template TODO-010" in r.stderr and "its run is the template's" in r.stderr
    assert "coord todo update TODO-010" in r.stderr
    r = coord(eco, "todo", "complete", "TODO-010[api]", "--hours", "2")
    clean_error(r, 2)
    r = coord(eco, "todo", "delete", "TODO-010[api]")
    clean_error(r, 2)
    assert "!api" in r.stderr
    r = coord(eco, "todo", "complete", "TODO-010[docs]")
    clean_error(r, 2)
    assert "does not select 'docs'" in r.stderr
    assert eco.read_bytes() == before


def test_plan_reset_of_an_instance(tmp_path: Path) -> None:
    eco = fleet(tmp_path, status="completed", instances=dict.fromkeys(REPOS, "completed"))
    coord(eco, "plan", "update", "PLAN-001", "--status", "completed")
    r = coord(eco, "plan", "reset", "PLAN-001", "--todos", "TODO-010[api]", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["reset"] == ["TODO-010[api]"] and doc["was"] == {"TODO-010[api]": "completed"}
    assert doc["plan_status"] == "active"
    item = template(eco)
    assert item["instances"] == {"core": "completed", "web": "completed"}
    assert item["status"] == "pending"
    assert to_run(eco) == ["TODO-010[api]"]
    assert last_audit(eco)["op"] == "reset_plan"


def test_mcp_completes_an_instance(tmp_path: Path) -> None:
    from coordination.mcp_server.operations import Operations

    eco = fleet(tmp_path)
    got = Operations(eco, repos=["api"]).complete_todo("TODO-010[api]")
    assert isinstance(got, dict) and got["id"] == "TODO-010[api]" and got["status"] == "completed"
    assert template(eco)["instances"] == {"api": "completed"}
    with pytest.raises(Exception, match="serves only api"):
        Operations(eco, repos=["api"]).complete_todo("TODO-010")  # every repo's instance


def test_blocked_by_takes_what_the_loader_takes_instances_included(tmp_path: Path) -> None:
    """`todo create|update --blocked-by` accepts an instance (``TODO-010[api]``) and, on
    a template, ``TODO-010[same]``, as a catalog's blocked_by does; what the loader
    refuses is refused with its message (exit 2, nothing written)."""
    eco = fleet(tmp_path)
    r = coord(eco, "todo", "create", "--task", "after api's", "--repo", "core", "--plan",
              "PLAN-001", "--run", "true", "--blocked-by", "TODO-010[api]", "--json")
    assert r.returncode == 0, r.stderr
    new = json.loads(r.stdout)["id"]
    items = {t["id"]: t for t in yaml.safe_load(eco.read_text())["coordination"]["todos"]}
    assert items[new]["blocked_by"] == ["TODO-010[api]"]
    assert "blocking" not in items["TODO-010"]  # a template's blocking lists whole todos
    r = coord(eco, "plan", "sweep", "PLAN-001", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    levels = json.loads(r.stdout)["levels"]
    assert levels[-1] == [new] and "TODO-010[api]" in levels[0]
    # a second template, waiting for the same repo's instance of TODO-010
    doc = yaml.safe_load(eco.read_text())
    doc["coordination"]["todos"].append({"id": "TODO-020", "task": "then", "plan": "PLAN-001",
                                         "for_each": "tag:svc", "run": "true"})
    eco.write_text(yaml.safe_dump(doc, sort_keys=False))
    r = coord(eco, "todo", "update", "TODO-020", "--blocked-by", "TODO-010[same]")
    assert r.returncode == 0, r.stderr
    r = coord(eco, "todo", "update", new, "--blocked-by", "TODO-010[web],TODO-020[core]")
    assert r.returncode == 0, r.stderr
    items = {t["id"]: t for t in yaml.safe_load(eco.read_text())["coordination"]["todos"]}
    assert items["TODO-020"]["blocked_by"] == ["TODO-010[same]"]
    assert items[new]["blocked_by"] == ["TODO-010[web]", "TODO-020[core]"]

    before = eco.read_bytes()
    r = coord(eco, "todo", "update", new, "--blocked-by", "TODO-010[same]")
    clean_error(r, 2)  # the loader's rule and message: [same] only in a template
    assert "[same] means the same repo's instance and " + new + " is not a template" in r.stderr
    assert "blocked_by[0]" in r.stderr  # located, as the loader locates it
    r = coord(eco, "todo", "create", "--task", "x", "--repo", "core",
              "--blocked-by", f"{new}[api]")
    clean_error(r, 2)
    assert f"{new}[api] names an instance, but {new} is not a template" in r.stderr
    r = coord(eco, "todo", "update", new, "--blocked-by", "TODO-099[api]")
    clean_error(r, 2)
    assert "unknown todo 'TODO-099'" in r.stderr
    assert eco.read_bytes() == before
