"""`coord todo run ID`: one todo as a one-todo sweep, embedded, through the real CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.unit.support.cli import clean_error, coord
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(120)


def catalog(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "echo one > one.txt"},
        {"id": "TODO-002", "repo": "web", "run": "echo two > two.txt", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "run": "exit 4"},
    ])


def todo_status(cat: Path, tid: str) -> str:
    doc = yaml.safe_load(cat.read_text())
    return str(next(t for t in doc["coordination"]["todos"] if t["id"] == tid).get("status"))


def test_runs_one_todo_records_and_syncs(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    r = coord(cat, "todo", "run", "TODO-001")
    assert r.returncode == 0, r.stderr
    assert re.match(r"^TODO-001-\d{14}-[0-9a-f]{4}$", r.stdout.strip()), r.stdout
    assert (cat.parent / "repos" / "api" / "one.txt").read_text() == "one\n"
    assert not (cat.parent / "repos" / "web" / "two.txt").exists()  # only that todo ran
    assert todo_status(cat, "TODO-001") == "completed"  # synced like a sweep


def test_blockers_are_honoured_unless_ignored(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    before = cat.read_bytes()
    r = coord(cat, "todo", "run", "TODO-002")
    clean_error(r, 2)
    assert "TODO-002 is blocked" in r.stderr and "TODO-001" in r.stderr
    assert "--ignore-blockers" in r.stderr and cat.read_bytes() == before
    r = coord(cat, "todo", "run", "TODO-002", "--ignore-blockers", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["status"] == "succeeded" and list(doc["todos"]) == ["TODO-002"]


def test_blocker_done_lets_it_run(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    assert coord(cat, "todo", "run", "TODO-001").returncode == 0
    r = coord(cat, "todo", "run", "TODO-002", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "succeeded", r.stderr


def test_a_failing_todo_exits_1_and_an_unknown_one_2(tmp_path: Path) -> None:
    cat = catalog(tmp_path)
    r = coord(cat, "todo", "run", "TODO-003", "--json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["status"] == "failed" and doc["todos"]["TODO-003"]["exit_code"] == 4
    assert todo_status(cat, "TODO-003") == "failed"
    r = coord(cat, "todo", "run", "TODO-01")
    clean_error(r, 2)
    assert "unknown todo" in r.stderr and "did you mean" in r.stderr


def test_a_blocker_done_in_a_sweep_not_synced_yet_lets_it_run(tmp_path: Path) -> None:
    """The launch plans a one-todo sweep from the catalog before Redis opens, except when a
    blocker is open there: a sweep may have run it without syncing, read on Redis first."""
    cat = catalog(tmp_path)
    assert coord(cat, "todo", "run", "TODO-001", "--no-sync").returncode == 0
    assert todo_status(cat, "TODO-001") != "completed"  # not synced
    r = coord(cat, "todo", "run", "TODO-002", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "succeeded", r.stderr
    assert todo_status(cat, "TODO-001") == "completed"  # synced before it was planned
