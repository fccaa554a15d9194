"""A sync writes a template's instances' outcomes under it (``instances:``) and the
template's own status from them; the plan completes when every instance has."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from coordination.sweeps.writeback.sync import Outcome, write_outcome
from tests.unit.support.sweeps import PLAN, write_catalog

pytestmark = pytest.mark.timeout(60)
T = "TODO-010"


def outcome(status: str, attempts: int = 1) -> Outcome:
    return {"status": status, "duration": 1.0, "outputs": {}, "attempts": attempts}


def template_item(cat: Path) -> dict[str, object]:
    doc = yaml.safe_load(cat.read_text())
    item: dict[str, object] = doc["coordination"]["todos"][0]
    return item


def plan_status(cat: Path) -> str:
    return str(yaml.safe_load(cat.read_text())["coordination"]["plans"][0]["status"])


def test_sync_records_instances_under_the_template(tmp_path: Path) -> None:
    cat = write_catalog(tmp_path, [{"id": T, "for_each": "api,web,jobs", "run": "true"}],
                        checkouts=False)
    out = write_outcome(cat, PLAN, {f"{T}[web]": outcome("failed"),
                                    f"{T}[api]": outcome("succeeded"),
                                    f"{T}[jobs]": outcome("skipped", 0)})
    item = template_item(cat)
    assert item["instances"] == {"api": "completed", "web": "failed", "jobs": "skipped"}
    assert item["status"] == "failed" and "repo" not in item
    assert out["failed"] == [f"{T}[web]"] and out["completed"] == [f"{T}[api]"]
    assert plan_status(cat) == "active"

    # the next sweep runs the rest: every selected repo completed, the template is too
    out = write_outcome(cat, PLAN, {f"{T}[web]": outcome("succeeded"),
                                    f"{T}[jobs]": outcome("cached")})
    item = template_item(cat)
    assert item["instances"] == {"api": "completed", "web": "completed", "jobs": "completed"}
    assert item["status"] == "completed"
    assert out["plan_completed"] and plan_status(cat) == "completed"


def test_one_instance_alone_does_not_complete_the_template(tmp_path: Path) -> None:
    cat = write_catalog(tmp_path, [{"id": T, "for_each": "api,web", "run": "true"}],
                        checkouts=False)
    write_outcome(cat, None, {f"{T}[api]": outcome("succeeded")})  # `todo run TODO-010[api]`
    item = template_item(cat)
    assert item["instances"] == {"api": "completed"}
    assert item.get("status", "pending") == "pending"  # web has not run


def test_a_selector_that_selects_nothing_now_still_records_but_never_completes(
        tmp_path: Path) -> None:
    cat = write_catalog(tmp_path, [{"id": T, "for_each": "api", "run": "true"}],
                        checkouts=False)
    cat.write_text(cat.read_text().replace("for_each: api", "for_each: gone"))
    write_outcome(cat, PLAN, {f"{T}[api]": outcome("succeeded")})
    item = template_item(cat)
    assert item["instances"] == {"api": "completed"}
    assert item.get("status", "pending") == "pending"
