"""`coord audit --verify` names catalog edits made outside coord since the last entry:
the items and fields that differ from the catalog as that entry left it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.catalog.audit import log as audit
from tests.unit.support.cli import coord

pytestmark = pytest.mark.timeout(120)


def verify(catalog: Path) -> Any:
    r = coord(catalog, "audit", "--verify", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def hand_edit(catalog: Path, todo_id: str, **fields: Any) -> None:
    doc = yaml.safe_load(catalog.read_text())
    [todo] = [t for t in doc["coordination"]["todos"] if t["id"] == todo_id]
    todo.update(fields)
    catalog.write_text(yaml.safe_dump(doc, sort_keys=False))


def first_todo(catalog: Path) -> str:
    return str(yaml.safe_load(catalog.read_text())["coordination"]["todos"][0]["id"])


def test_a_hand_edit_is_named_with_its_fields(example_catalog: Path) -> None:
    cat = example_catalog
    r = coord(cat, "todo", "create", "--task", "Bump libcore", "--repo", "api")
    assert r.returncode == 0, r.stderr
    assert verify(cat)["edited_outside_coord"] == []
    tid = first_todo(cat)
    hand_edit(cat, tid, task="Renamed in an editor", priority="critical")
    human = coord(cat, "audit", "--verify")
    assert human.returncode == 0, human.stderr
    assert "edited outside coord" in human.stdout
    assert f"{tid} (todo) updated: task, priority" in human.stdout
    # Reported (and recorded as reported): the next --verify has nothing to add.
    doc = verify(cat)
    assert doc["intact"] is True and doc["catalog_changed_since"] is None
    assert doc["edited_outside_coord"] == [] and doc["hand_edits"] == []
    [hand] = [e for e in audit.read(audit.log_path(cat)) if e["op"] == audit.HAND_EDIT]
    [change] = hand["changes"]
    assert (change["id"], change["kind"], change["action"]) == (tid, "todo", "updated")
    assert sorted(change["fields"]) == ["priority", "task"]
    assert change["fields"]["task"][1] == "Renamed in an editor"
    # The next edit through coord is audited, and leaves nothing outside coord.
    r = coord(cat, "todo", "create", "--task", "Another", "--repo", "api")
    assert r.returncode == 0, r.stderr
    assert verify(cat)["edited_outside_coord"] == []


def test_a_copy_the_last_entry_does_not_pin_is_not_trusted(example_catalog: Path) -> None:
    cat = example_catalog
    assert coord(cat, "todo", "create", "--task", "Bump libcore", "--repo", "api").returncode == 0
    hand_edit(cat, first_todo(cat), priority="critical")
    # someone edits the copy too, so that the diff would hide their change
    audit.snapshot_path(cat).write_bytes(cat.read_bytes())
    doc = verify(cat)
    assert doc["edited_outside_coord"] is None
    assert "changed after the last audited edit" in doc["catalog_changed_since"]
