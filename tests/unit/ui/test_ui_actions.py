"""Steering from the web view, in process (Starlette's TestClient): pause, resume and
cancel a sweep, retry a failed todo. Each needs a signed-in user, the page's CSRF token
and this server's origin (the gate decisions' machinery); a refused one changes nothing;
an accepted one calls the CLI's SweepService method and is in the audit log as the
signed-in user, via web. And a todo's logs, as `coord logs --json` has them."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from coordination.catalog.audit import log as audit
from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from coordination.ui.app import create_app
from tests.unit.support.sweeps import PLAN, repos_of, write_catalog
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


ANA = basic("ana", "pw-a")


def signed_in(client: TestClient) -> dict[str, str]:
    got = client.get("/api/session", headers=ANA).json()
    assert got["user"] == "ana" and got["csrf"]
    return {**ANA, "X-CSRF-Token": got["csrf"]}


def steering(cat: Path) -> list[tuple[str, str, Any]]:
    log = audit.log_path(cat)
    return [(e["op"], e["who"], e["decision"].get("via"))
            for e in (audit.read(log) if log.exists() else [])
            if str(e["op"]).startswith("sweep.")]


def held_catalog(root: Path) -> Path:
    """TODO-001 runs until a file `go` appears in api's checkout; TODO-002 follows it."""
    return write_catalog(root, [
        {"id": "TODO-001", "repo": "api", "run": "while [ ! -f go ]; do sleep 0.05; done"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
    ])


def test_steering_is_refused_without_a_user_a_token_or_this_origin(rt: Runtime,
                                                                    tmp_path: Path) -> None:
    cat = held_catalog(tmp_path / "eco")
    svc = SweepService(rt, cat)
    sid = svc.start(PLAN, ignore_blockers=True)  # (no workers: it waits, queued)
    before = svc.record(sid)["status"]
    anonymous = TestClient(create_app(rt, cat), base_url="http://localhost")
    res = anonymous.post(f"/api/sweeps/{sid}/steer/pause", json={})
    assert res.status_code == 403 and "pausing a sweep needs a signed-in user" in res.json()["error"]
    res = anonymous.post(f"/api/sweeps/{sid}/todos/TODO-001/retry", json={})
    assert res.status_code == 403 and "retrying a todo needs a signed-in user" in res.json()["error"]

    client = TestClient(create_app(rt, cat, auth="ana:pw-a"), base_url="http://localhost")
    ok = signed_in(client)
    refused = [
        client.post(f"/api/sweeps/{sid}/steer/cancel", json={}, headers=ANA),  # no token
        client.post(f"/api/sweeps/{sid}/steer/cancel", json={},
                    headers={**ANA, "X-CSRF-Token": "0" * 64}),  # a wrong one
        client.post(f"/api/sweeps/{sid}/steer/cancel", json={},
                    headers={**ok, "Origin": "http://evil.example"}),  # another site
        client.post(f"/api/sweeps/{sid}/todos/TODO-001/retry", json={}, headers=ANA),
        client.post(f"/api/sweeps/{sid}/steer/explode", json={}, headers=ok),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 403, 404], [r.text for r in refused]
    assert "CSRF" in refused[0].json()["error"] and "cross-origin" in refused[2].json()["error"]
    assert client.get(f"/api/sweeps/{sid}/steer/pause", headers=ANA).status_code == 405
    assert client.post(f"/api/sweeps/nope/steer/pause", json={}, headers=ok).status_code == 404
    assert svc.record(sid)["status"] == before and steering(cat) == []


def test_a_signed_in_user_pauses_resumes_and_cancels_as_the_cli_does(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.embedded import embedded_workers

    monkeypatch.setenv("COORD_USER", "someone-else@example.com")  # the CLI's user: not named
    cat = held_catalog(tmp_path / "eco")
    svc = SweepService(rt, cat)
    client = TestClient(create_app(rt, cat, auth="ana:pw-a"), base_url="http://localhost")
    ok = signed_in(client)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, ignore_blockers=True)
        wait_for(lambda: (rt.checkpoints.get(sid, "TODO-001") or {}).get("status") == "running",
                 30, "TODO-001 to run")
        res = client.post(f"/api/sweeps/{sid}/steer/pause", json={},
                          headers={**ok, "Origin": "http://localhost"})
        assert res.status_code == 200 and res.json()["changed"] is True, res.text
        assert svc.record(sid)["status"] == "paused"
        res = client.post(f"/api/sweeps/{sid}/steer/resume", json={}, headers=ok)
        assert res.status_code == 200 and svc.record(sid)["status"] == "running", res.text
        res = client.post(f"/api/sweeps/{sid}/steer/cancel", json={}, headers=ok)
        assert res.status_code == 200 and res.json()["cancelled"] is True, res.text
        st = svc.wait(sid, timeout=60)
    assert st["status"] == "cancelled" and "ana" in str(st["reason"]), st
    assert steering(cat) == [("sweep.pause", "ana", "web"), ("sweep.unpause", "ana", "web"),
                             ("sweep.cancel", "ana", "web")]
    kinds = {e.kind: e.data for e in rt.events.read(sweep_id=sid)}
    assert kinds["sweep.paused"].get("by") == "ana", kinds["sweep.paused"]


def test_retry_is_refused_where_no_worker_runs_it(rt: Runtime, tmp_path: Path) -> None:
    from workers.embedded import embedded_workers

    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "exit 3"}])
    svc = SweepService(rt, cat)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, ignore_blockers=True)
        assert svc.wait(sid, timeout=60)["status"] == "failed"
    client = TestClient(create_app(rt, cat, auth="ana:pw-a"), base_url="http://localhost")
    res = client.post(f"/api/sweeps/{sid}/todos/TODO-001/retry", json={}, headers=signed_in(client))
    assert res.status_code == 409 and "runs no workers" in res.json()["error"], res.text
    assert res.json()["hint"] == f"coord sweep resume {sid} --only TODO-001 --wait"
    assert svc.record(sid)["status"] == "failed" and steering(cat) == []


def test_a_failed_todo_is_retried_and_its_attempts_are_in_its_logs(rt: Runtime,
                                                                   tmp_path: Path) -> None:
    from coordination.settings import get_settings
    from workers.embedded import embedded_workers

    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "echo try; test -f ok"},
        {"id": "TODO-002", "repo": "web", "run": "echo fine"}])
    svc = SweepService(rt, cat)
    with embedded_workers(rt, repos_of(svc)):
        # The view of a served Redis (its workers run what it sends): the same runtime,
        # its settings naming a URL (the in-process workers above run it here).
        served = dataclasses.replace(rt, settings=get_settings().model_copy(
            update={"redis_url": "redis://127.0.0.1:1/0"}))
        assert not served.settings.embedded
        client = TestClient(create_app(served, cat, auth="ana:pw-a"), base_url="http://localhost")
        ok = signed_in(client)
        sid = svc.start(PLAN, ignore_blockers=True)
        assert svc.wait(sid, timeout=60)["status"] == "failed"
        res = client.post(f"/api/sweeps/{sid}/todos/TODO-002/retry", json={}, headers=ok)
        assert res.status_code == 400 and "only a failed" in res.json()["error"], res.text
        (tmp_path / "eco" / "repos" / "api" / "ok").write_text("")
        res = client.post(f"/api/sweeps/{sid}/todos/TODO-001/retry", json={}, headers=ok)
        assert res.status_code == 200 and res.json()["rerun"] == ["TODO-001"], res.text
        assert svc.wait(sid, timeout=60)["status"] == "succeeded"
    assert steering(cat) == [("sweep.resume", "ana", "web")]
    doc = client.get(f"/api/sweeps/{sid}/todos/TODO-001/logs", headers=ANA).json()
    assert [(a["attempt"], a["exit_code"]) for a in doc["attempts"]] == [(1, 1), (2, 0)]
    assert doc["attempt"] == 2 and doc["output"] == [{"stream": "stdout", "text": "try\n"}]
    first = client.get(f"/api/sweeps/{sid}/todos/TODO-001/logs?attempt=1", headers=ANA)
    assert first.json()["attempts"][0]["outcome"] == "exited"
    assert client.get(f"/api/sweeps/{sid}/todos/TODO-001/logs?attempt=x",
                      headers=ANA).status_code == 400
    assert client.get(f"/api/sweeps/{sid}/todos/TODO-001/logs?attempt=7",
                      headers=ANA).status_code == 404
