"""The web view's /issues, /deps and /trends: their JSON (/api/issues, /api/dependencies,
/api/trends), read from the catalog and the history, and never running anything in a
repository for an unauthenticated GET."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from coordination.runtime.context import Runtime
from coordination.history.trends import trends_document
from coordination.ui.app import create_app
from tests.unit.support.sweeps import run_sweep, write_catalog

pytestmark = pytest.mark.timeout(90)


def local(app: Any) -> TestClient:
    return TestClient(app, base_url="http://localhost")


def catalog(root: Path, marker: Path) -> Path:
    eco = write_catalog(root, [
        {"id": "TODO-001", "repo": "api", "run": "echo migrating; sleep 0.2"},
        {"id": "TODO-002", "repo": "web", "run": "true",
         "blocked_by": ["TODO-001", "ISSUE-001"]},
        {"id": "TODO-003", "repo": "jobs", "run": "true", "blocked_by": ["ISSUE-001"]},
    ], issues=[
        {"id": "ISSUE-001", "title": "Rotate the shared token", "repos": ["api", "web"],
         "priority": "high", "status": "resolved"},
        {"id": "ISSUE-002", "title": "Nothing waits on this", "repos": ["jobs"],
         "dependencies": ["ISSUE-001"]},
    ])
    doc = yaml.safe_load(eco.read_text())
    doc["coordination"]["dependencies"] = [
        {"id": "DEP-001", "consumer": "web", "provider": "api", "type": "runtime",
         "validation": {"command": f"touch {marker}"}},
        {"id": "DEP-002", "consumer": "jobs", "provider": "web", "type": "build",
         "version_constraint": ">=2.0"},
        {"id": "DEP-003", "consumer": "web", "provider": "jobs", "type": "peer"},
        {"id": "DEP-004", "consumer": "jobs", "provider": "api", "type": "optional",
         "indirect": True},
    ]
    eco.write_text(yaml.safe_dump(doc, sort_keys=False))
    return eco


@pytest.fixture
def client(rt: Runtime, tmp_path: Path) -> tuple[Path, TestClient, Path]:
    marker = tmp_path / "ran"
    eco = catalog(tmp_path / "eco", marker)
    return eco, local(create_app(rt, eco)), marker


def test_issues_with_the_todos_they_block_and_their_plans(
        client: tuple[Path, TestClient, Path]) -> None:
    _eco, c, _ = client
    r = c.get("/api/issues")
    assert r.status_code == 200, r.text
    first, second = r.json()
    assert (first["id"], first["title"], first["status"], first["priority"]) == (
        "ISSUE-001", "Rotate the shared token", "resolved", "high")
    assert first["repos"] == ["api", "web"]
    assert [(t["id"], t["repo"], t["status"], t["plan"]) for t in first["todos"]] == [
        ("TODO-002", "web", "pending", "PLAN-001"), ("TODO-003", "jobs", "pending", "PLAN-001")]
    assert first["plans"] == [{"id": "PLAN-001", "title": "test plan", "status": "active"}]
    assert (second["todos"], second["plans"], second["dependencies"]) == ([], [], ["ISSUE-001"])
    assert [i["id"] for i in c.get("/api/issues?status=open").json()] == ["ISSUE-002"]
    bad = c.get("/api/issues?status=nope")
    assert bad.status_code == 400 and "unknown issue status" in bad.json()["error"]


def test_the_dependency_graph_has_every_repo_and_each_edges_type(
        client: tuple[Path, TestClient, Path]) -> None:
    _eco, c, marker = client
    g = c.get("/api/dependencies").json()
    edges = {e["id"]: (e["provider"], e["consumer"], e["type"], e["indirect"]) for e in g["edges"]}
    assert edges == {"DEP-001": ("api", "web", "runtime", False),
                     "DEP-002": ("web", "jobs", "build", False),
                     "DEP-003": ("jobs", "web", "peer", False),
                     "DEP-004": ("api", "jobs", "optional", True)}
    assert g["types"] == ["build", "optional", "peer", "runtime"]
    level = {n["repo"]: n["level"] for n in g["nodes"]}
    # api <- web <- jobs by runtime and build edges; the web <- jobs peer edge closes a
    # cycle and is the one cut (not the build edge); the optional indirect edge orders
    # nothing.
    assert level == {"api": 0, "web": 1, "jobs": 2}
    assert {e["id"]: e["ordering"] for e in g["edges"]} == {
        "DEP-001": True, "DEP-002": True, "DEP-003": True, "DEP-004": False}
    xs = {n["repo"]: n["x"] for n in g["nodes"]}
    assert xs["api"] < xs["web"] < xs["jobs"]
    assert all(0 <= n["x"] and n["x"] + g["node_w"] <= g["width"] and
               n["y"] + g["node_h"] <= g["height"] for n in g["nodes"])
    # An unauthenticated GET reads the catalog: no validation command ran.
    assert not marker.exists()


def test_pages_are_served_and_other_methods_refused(client: tuple[Path, TestClient, Path]) -> None:
    _eco, c, marker = client
    for path in ("/issues", "/deps", "/trends"):
        r = c.get(path)
        assert r.status_code == 200 and "/static/app.js" in r.text, path
        assert "Content-Security-Policy" in r.headers
    for path in ("/api/issues", "/api/dependencies", "/api/trends"):
        assert c.post(path).status_code == 405, path
    assert not marker.exists()


def test_trends_are_the_cli_document(rt: Runtime, tmp_path: Path) -> None:
    eco = catalog(tmp_path / "eco", tmp_path / "ran")
    _svc, _sid, st = run_sweep(rt, eco)
    assert st["status"] == "succeeded", st
    c = local(create_app(rt, eco))
    doc = c.get("/api/trends").json()
    assert doc == trends_document(history=rt.history, days=30)
    assert doc["repos"]["api"]["runs"] == 1
    assert sum(doc["velocity"]["total"].values()) == 3
    # web's TODO-002 waited on api's TODO-001 (sleep 0.2): api is the bottleneck.
    assert [b["repo"] for b in doc["bottlenecks"]] == ["api"]
    assert doc["bottlenecks"][0]["wait_s"] >= 0.2
    assert c.get("/api/trends?days=7").json()["repos"] == doc["repos"]
    for bad in ("x", "0", "-1"):
        r = c.get(f"/api/trends?days={bad}")
        assert r.status_code == 400 and "days must be" in r.json()["error"], bad


def test_without_auth_configured_and_with_it(rt: Runtime, tmp_path: Path) -> None:
    eco = catalog(tmp_path / "eco", tmp_path / "ran")
    c = local(create_app(rt, eco, auth="alice:s3cret"))
    for path in ("/issues", "/api/issues", "/api/dependencies", "/api/trends"):
        assert c.get(path).status_code == 401, path
        assert c.get(path, auth=("alice", "s3cret")).status_code == 200, path
