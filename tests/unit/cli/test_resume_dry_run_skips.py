"""`sweep resume --only X --dry-run` says X will be skipped when its blocker failed, and
why, as the resume itself then does (issue #29, item 10a). Embedded, real processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.support.cli import coord
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(180)


def test_resume_only_dry_run_names_what_its_failed_blocker_will_skip(tmp_path: Path) -> None:
    # TODO-001 fails; TODO-002 after it, TODO-003 after TODO-002; TODO-004 alone, fails.
    eco = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "exit 3"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "jobs", "run": "true", "blocked_by": ["TODO-002"]},
        {"id": "TODO-004", "repo": "jobs", "run": "exit 4"},
    ])
    r = coord(eco, "plan", "sweep", "PLAN-001", "--wait", "--json", "--no-sync")
    assert r.returncode == 1, r.stderr
    sid = json.loads(r.stdout)["sweep_id"]

    # --only TODO-002: its blocker TODO-001 is left out and failed, so it (and TODO-003
    # after it) would be skipped, not run; the dry run says so, and why.
    r = coord(eco, "sweep", "resume", sid, "--only", "TODO-002", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["rerun"] == ["TODO-002", "TODO-003"], doc
    assert doc["would_skip"] == {"TODO-002": "blocker TODO-001 failed",
                                 "TODO-003": "blocker TODO-002 would be skipped"}, doc
    r = coord(eco, "sweep", "resume", sid, "--only", "TODO-002", "--dry-run")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()
            if line.startswith("TODO-")}
    assert "would be skipped: blocker TODO-001 failed" in rows["TODO-002"], r.stdout
    assert "would be skipped: blocker TODO-002 would be skipped" in rows["TODO-003"], r.stdout

    # With the blocker in the resume, nothing is foretold skipped; a todo whose blocker
    # failed is not judged when the blocker runs again.
    r = coord(eco, "sweep", "resume", sid, "--only", "TODO-001,TODO-004", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["rerun"] == ["TODO-001", "TODO-002", "TODO-003", "TODO-004"]
    assert doc["would_skip"] == {}, doc

    # The resume itself does what the dry run said: TODO-002 skipped for TODO-001.
    r = coord(eco, "sweep", "resume", sid, "--only", "TODO-002", "--wait", "--json",
              "--no-sync")
    assert r.returncode == 1, r.stderr
    todos = json.loads(r.stdout)["todos"]
    assert todos["TODO-002"]["status"] == "skipped", todos["TODO-002"]
    assert todos["TODO-002"]["reason"] == "TODO-001 failed", todos["TODO-002"]
    assert todos["TODO-003"]["status"] == "skipped", todos["TODO-003"]


def test_resume_only_says_a_named_todo_that_succeeded_is_kept(tmp_path: Path) -> None:
    # TODO-001 succeeds, TODO-002 fails: --only TODO-001 re-runs nothing of it, and says so.
    eco = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "exit 3"},
    ])
    r = coord(eco, "plan", "sweep", "PLAN-001", "--wait", "--json", "--no-sync")
    assert r.returncode == 1, r.stderr
    sid = json.loads(r.stdout)["sweep_id"]
    for extra in (["--dry-run"], []):
        r = coord(eco, "sweep", "resume", sid, "--only", "TODO-001", "--json", *extra)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["rerun"] == [] and doc["kept_asked"] == ["TODO-001"], doc
        assert "already succeeded, kept: TODO-001" in r.stderr, r.stderr
        assert "coord todo run TODO-001" in r.stderr, r.stderr
    r = coord(eco, "sweep", "resume", sid, "--only", "TODO-002", "--dry-run", "--json")
    assert json.loads(r.stdout)["kept_asked"] == [] and "already succeeded" not in r.stderr
