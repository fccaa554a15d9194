"""The web view runs nothing in a repository for a stranger (#49 item 4): a request by
nobody signed in starts no git process (whatever endpoint), and ``?repos=changed:REF``
is refused with 403; signed in, the selector works and the repo's fsmonitor still
runs nothing. Real git."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from coordination import gitsafe
from coordination.runtime.context import Runtime
from coordination.ui import app as ui_app
from coordination.ui.app import create_app
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(60)


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@t",
                    *args], check=True, capture_output=True)


@pytest.fixture
def fsmonitor_fleet(tmp_path: Path) -> tuple[Path, Path]:
    eco = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"},
                                           {"id": "TODO-002", "for_each": "changed:main",
                                            "run": "true"}])
    marker = tmp_path / "FSMONITOR-RAN"
    script = tmp_path / "fsmonitor.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    script.chmod(0o755)
    for name in ("api", "web", "jobs"):
        r = eco.parent / "repos" / name
        git(r, "init", "-q", "-b", "main")
        (r / "f").write_text("a\n")
        git(r, "add", "-A")
        git(r, "commit", "-q", "-m", "seed")
        git(r, "config", "core.fsmonitor", str(script))
    (eco.parent / "repos" / "api" / "f").write_text("changed\n")
    return eco, marker


def spy(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    started: list[list[str]] = []
    real = subprocess.run

    def run(cmd: Any, *a: Any, **k: Any) -> Any:
        if isinstance(cmd, (list, tuple)) and cmd and cmd[0] == "git":
            started.append(list(cmd))
        return real(cmd, *a, **k)

    monkeypatch.setattr(subprocess, "run", run)
    return started


def test_a_stranger_gets_403_for_changed_and_no_git_runs(
        rt: Runtime, fsmonitor_fleet: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    eco, marker = fsmonitor_fleet
    started = spy(monkeypatch)
    client = TestClient(create_app(rt, eco), base_url="http://localhost")
    res = client.get("/api/overview", params={"repos": "changed:main"},
                     headers={"Origin": "http://evil.example"})
    assert res.status_code == 403, res.text
    assert "needs a signed-in user" in res.json()["error"]
    assert "COORD_UI_AUTH" in res.json()["hint"]
    for path in ("/api/overview", "/api/repos", "/api/changes", "/api/plans/PLAN-001",
                 "/api/plans/PLAN-001/graph"):  # (a template over changed:main: git's threads)
        client.get(path)
    assert started == [] and not marker.exists()


def test_signed_in_the_selector_works_and_runs_no_repo_program(
        rt: Runtime, fsmonitor_fleet: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    eco, marker = fsmonitor_fleet
    started = spy(monkeypatch)
    client = TestClient(create_app(rt, eco, auth="ann:pw"), base_url="http://localhost")
    assert client.get("/api/overview", params={"repos": "changed:main"}).status_code == 401
    assert started == []
    doc = client.get("/api/overview", params={"repos": "changed:main"}, auth=("ann", "pw"))
    assert doc.status_code == 200, doc.text
    assert [r["name"] for r in doc.json()["repos"]] == ["api"]
    assert started and not marker.exists()


def test_no_git_process_starts_in_any_handler_of_a_strangers_request(
        rt: Runtime, fsmonitor_fleet: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard reaches the thread a handler runs in: a handler that would start git
    (here: the overview's document, replaced) is refused for a stranger, not for a user."""
    eco, _marker = fsmonitor_fleet

    def overview(*a: Any, **k: Any) -> dict[str, Any]:
        gitsafe.run(["--version"], capture_output=True)
        return {"ran": True}

    monkeypatch.setattr(ui_app.documents, "overview", overview)
    stranger = TestClient(create_app(rt, eco), base_url="http://localhost")
    res = stranger.get("/api/overview")
    assert res.status_code == 400 and "nobody signed in" in res.json()["error"], res.text
    user = TestClient(create_app(rt, eco, auth="ann:pw"), base_url="http://localhost")
    assert user.get("/api/overview", auth=("ann", "pw")).json() == {"ran": True}
