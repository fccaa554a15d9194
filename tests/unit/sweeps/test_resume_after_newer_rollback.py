"""Resuming an older sweep after a newer sweep of the same plan rolled back the same todos
is refused (#50): 0.4 re-ran the older sweep's failure and counted its earlier success
done, marking work a rollback had undone `completed` without a word. Embedded, real
processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordination.catalog.file.store import CatalogStore
from tests.unit.support.cli import coord
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(150)


def test_resuming_an_older_sweep_whose_work_a_newer_one_undid_is_refused(
        tmp_path: Path) -> None:
    ok, applied = tmp_path / "ok", tmp_path / "applied"
    eco = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": f"touch {applied}", "undo": f"rm -f {applied}"},
        {"id": "TODO-002", "repo": "web", "run": f"test -f {ok}", "blocked_by": ["TODO-001"]},
    ])

    def sweep() -> str:
        r = coord(eco, "plan", "sweep", "PLAN-001", "--wait", "--json", "--no-sync")
        assert r.returncode == 1, r.stderr  # TODO-002 fails
        return str(json.loads(r.stdout)["sweep_id"])

    older = sweep()
    newer = sweep()
    r = coord(eco, "sweep", "rollback", newer, "--wait", "--json")
    assert r.returncode == 0, r.stderr
    assert not applied.exists()  # the newer sweep's rollback undid TODO-001's change
    ok.touch()

    for dry in ((), ("--dry-run",)):
        r = coord(eco, "sweep", "resume", older, *dry)
        assert r.returncode == 2, (r.stdout, r.stderr)
        assert f"a newer sweep of PLAN-001 undid work it counts as done ({newer} rolled " \
               "back TODO-001)" in r.stderr, r.stderr
        assert "coord plan sweep PLAN-001" in r.stderr
    todo = CatalogStore(eco).load().todo("TODO-001")
    assert todo is not None and todo.status != "completed"
    # a new sweep is the way: it applies the change again
    r = coord(eco, "plan", "sweep", "PLAN-001", "--wait", "--json")
    assert r.returncode == 0, r.stderr
    assert applied.exists()
