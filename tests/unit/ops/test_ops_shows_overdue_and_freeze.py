"""``coord_todos_overdue`` in a scrape; the freeze in `coord doctor`'s findings and the web
view's overview."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from coordination.ops import doctor
from coordination.runtime.context import Runtime
from coordination.settings import get_settings
from coordination.sweeps.governance import freeze as freezing
from coordination.ui.app import create_app
from tests.unit.support.metrics import scrape
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(60)


def test_todos_past_their_due_time_and_not_completed_are_counted_per_plan(
        rt: Runtime, tmp_path: Path) -> None:
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true", "due": "2020-01-01"},
        {"id": "TODO-002", "repo": "api", "run": "true", "due": "2020-01-01T12:00Z"},
        {"id": "TODO-003", "repo": "web", "run": "true", "due": "2020-01-01",
         "status": "completed"},
        {"id": "TODO-004", "repo": "web", "run": "true", "due": "2999-01-01"},
        {"id": "TODO-005", "repo": "web", "run": "true"},
    ])
    samples = scrape(rt, cat)
    got = {labels: v for (name, labels), v in samples.items() if name == "coord_todos_overdue"}
    assert got == {(("plan", "PLAN-001"),): 2.0}
    write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    samples = scrape(rt, cat)  # none due: a zero per plan, so an alert reads a number
    got = {labels: v for (name, labels), v in samples.items() if name == "coord_todos_overdue"}
    assert got == {(("plan", "PLAN-001"),): 0.0}


def test_no_catalog_no_overdue_sample(rt: Runtime) -> None:
    assert not any(name == "coord_todos_overdue" for name, _ in scrape(rt, None))


def test_doctor_and_the_overview_show_a_freeze(rt: Runtime, tmp_path: Path) -> None:
    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    d = doctor.Doctor(get_settings(), cat, runtime_factory=lambda: rt)
    assert [(f.level, f.message) for f in doctor.check_freeze(d)] == [
        ("ok", "not frozen: sweeps and landings may start")]
    client = TestClient(create_app(rt, cat), base_url="http://127.0.0.1")
    assert client.get("/api/overview").json()["frozen"] is None
    freezing.freeze(rt, cat, who="ana", reason="incident 4711")
    [f] = doctor.check_freeze(d)
    assert f.level == "warning" and "frozen by ana" in f.message and "incident 4711" in f.message
    assert f.fix == "when the emergency is over: coord unfreeze"
    frozen = client.get("/api/overview").json()["frozen"]
    assert (frozen["by"], frozen["reason"]) == ("ana", "incident 4711")
