"""Every command that waits for a sweep to end writes its outcome into the catalog,
unless --no-sync: `plan sweep --wait`, `sweep watch`, `todo run --wait`,
`sweep resume --wait`, `sweep rollback --wait`. Embedded, each in its own process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.unit.support.cli import coord
from tests.unit.support.sweeps import PLAN, write_catalog

pytestmark = pytest.mark.timeout(120)


def catalog(tmp_path: Path) -> Path:
    log = tmp_path / "undo.log"
    return write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true", "undo": f"echo 1 >> {log}"},
        {"id": "TODO-002", "repo": "web", "run": "true", "undo": f"echo 2 >> {log}",
         "blocked_by": ["TODO-001"]},
    ])


def statuses(eco: Path) -> dict[str, str]:
    doc = yaml.safe_load(eco.read_text())
    out = {t["id"]: str(t.get("status", "pending")) for t in doc["coordination"]["todos"]}
    out.update({p["id"]: str(p.get("status")) for p in doc["coordination"]["plans"]})
    return out


def test_no_sync_leaves_the_catalog_and_watch_syncs_later(tmp_path: Path) -> None:
    eco = catalog(tmp_path)
    before = eco.read_bytes()
    r = coord(eco, "plan", "sweep", PLAN, "--wait", "--no-sync", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["status"] == "succeeded" and "synced" not in doc
    assert eco.read_bytes() == before  # --no-sync: not one byte changed
    r = coord(eco, "sweep", "watch", doc["sweep_id"], "--json")
    assert r.returncode == 0, r.stderr
    assert sorted(json.loads(r.stdout)["synced"]["completed"]) == ["TODO-001", "TODO-002"]
    assert statuses(eco) == {"TODO-001": "completed", "TODO-002": "completed",
                             PLAN: "completed"}


def test_rollback_wait_sets_the_undone_todos_pending_and_the_plan_active(
        tmp_path: Path) -> None:
    eco = catalog(tmp_path)
    r = coord(eco, "plan", "sweep", PLAN, "--wait", "--json")
    assert r.returncode == 0, r.stderr
    sid = json.loads(r.stdout)["sweep_id"]
    assert statuses(eco)[PLAN] == "completed"
    r = coord(eco, "sweep", "rollback", sid, "--wait")
    assert r.returncode == 0, r.stderr
    assert "2 undone (pending again)" in r.stderr and f"{PLAN} active again" in r.stderr
    assert statuses(eco) == {"TODO-001": "pending", "TODO-002": "pending", PLAN: "active"}
    # ... so the plan's next dry run has work to do again
    r = coord(eco, "plan", "sweep", PLAN, "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    assert "TODO-001" in r.stdout and "TODO-002" in r.stdout


def test_todo_run_no_sync(tmp_path: Path) -> None:
    eco = catalog(tmp_path)
    r = coord(eco, "todo", "run", "TODO-001", "--wait", "--no-sync", "--json")
    assert r.returncode == 0, r.stderr
    assert statuses(eco)["TODO-001"] == "pending"
    r = coord(eco, "todo", "run", "TODO-001", "--wait", "--json")
    assert r.returncode == 0, r.stderr
    assert statuses(eco)["TODO-001"] == "completed"
