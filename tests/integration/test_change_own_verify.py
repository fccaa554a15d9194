"""A repo no verify todo of its own checks (#50): a broken library checked only by a
consumer's suite was landable with no word. It is flagged in `change status` (its
`--json`: ``unchecked``) and `land --dry-run`; `change: {require_own_verify: true}`
makes each such repo a blocker of the landing rule (status, dry run, land).

Real git (bare remotes), the test's redis-server, the candidates made and verified
through the worker's own calls; `coord` as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.change_repos import World

pytestmark = pytest.mark.timeout(120)

NAMES = ["libz", "core", "api"]  # one verify todo, in api


def coord(w: World, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file",
                           str(w.catalog), *args], env=dict(os.environ), text=True,
                          capture_output=True, timeout=60)


def test_repos_without_a_verify_todo_of_their_own_are_flagged_then_blocked(
        tmp_path: Path, redis_url: str) -> None:
    w = World(tmp_path, NAMES)
    w.draft()
    w.verify()
    doc = w.status()
    assert doc["unchecked"] == ["libz", "core"]
    assert doc["landable"] is True and doc["state"] == "verified"  # flagged, not blocked
    human = coord(w, "change", "status", "PLAN-001")
    assert "not checked by a verify todo of its own: libz, core" in human.stdout, human.stdout
    dry = coord(w, "change", "land", "PLAN-001", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["unchecked"] == ["libz", "core"]
    dry = coord(w, "change", "land", "PLAN-001", "--dry-run")
    assert "not checked by a verify todo of its own: libz, core" in dry.stdout, dry.stdout

    text = w.catalog.read_text()
    w.catalog.write_text(text.replace("change: {branch: chg, land: push}",
                                      "change: {branch: chg, land: push, require_own_verify: true}"))
    res = coord(w, "change", "land", "PLAN-001", "--dry-run", "--json")
    assert res.returncode == 1, (res.stdout, res.stderr)
    got = json.loads(res.stdout)
    assert [(b["kind"], b["id"]) for b in got["blockers"]] == [("repo", "libz"), ("repo", "core")]
    assert "no verify todo of its own checks it" in got["blockers"][0]["why"]
    res = coord(w, "change", "status", "PLAN-001", "--json")
    st = json.loads(res.stdout)
    assert st["landable"] is False and [b["id"] for b in st["blockers"]] == ["libz", "core"]
    res = coord(w, "change", "land", "PLAN-001")
    assert res.returncode == 1 and "no verify todo of its own checks it" in res.stderr
    assert w.repos.pushes() == []
