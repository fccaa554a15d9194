"""The web view's overview filtered by a repo selector (``/api/overview?repos=SEL``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from coordination.runtime.context import Runtime
from coordination.ui.app import create_app
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(60)


def test_overview_repos_filter_selects_like_repo_list(rt: Runtime, tmp_path: Path) -> None:
    eco = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    client = TestClient(create_app(rt, eco), base_url="http://localhost")
    every = client.get("/api/overview").json()
    assert [r["name"] for r in every["repos"]] == ["api", "web", "jobs"]
    doc = client.get("/api/overview", params={"repos": "*,!web"}).json()
    assert [r["name"] for r in doc["repos"]] == ["api", "jobs"]
    assert doc["plans"] == every["plans"]  # only the repos are filtered
    bad = client.get("/api/overview", params={"repos": "wbe"})
    assert bad.status_code == 400
    assert "'wbe' matches no repo" in bad.json()["error"] and "web" in bad.json()["hint"]
