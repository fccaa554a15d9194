"""The web view's JSON, events and auth over an embedded (fakeredis) runtime.

The JSON endpoints must be the CLI's --json documents, byte for byte once parsed:
that test runs the CLI in this process, on the catalog's real embedded server (the one
the CLI's runtime joins), and compares.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from coordination.errors import UsageError
from coordination.runtime.context import Runtime
from coordination.ui.app import create_app
from coordination.ui.server import check_bind
from tests.unit.support.cli import clean_error, coord
from tests.unit.support.sweeps import PLAN, run_sweep, write_catalog
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(60)


def local(app: ASGIApp) -> TestClient:
    """A test client addressing the view as localhost (it refuses other Host names)."""
    return TestClient(app, base_url="http://localhost")


def three_todos(root: Path, middle: str = "echo boom >&2; exit 3") -> Path:
    return write_catalog(root, [
        {"id": "TODO-001", "repo": "api", "run": "echo hello", "estimated_hours": 2},
        {"id": "TODO-002", "repo": "web", "run": middle, "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "web", "run": "true", "blocked_by": ["TODO-002"]},
        {"id": "TODO-004", "repo": "jobs", "run": "true", "blocked_by": ["TODO-001"]},
    ])


def cli_json(eco: Path, *args: str) -> Any:
    from coordination.cli.main import cli

    r = CliRunner().invoke(cli, ["--file", str(eco), *args, "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


@pytest.fixture
def failed_sweep(rt: Runtime, tmp_path: Path) -> tuple[Path, str, TestClient]:
    eco = three_todos(tmp_path / "eco")
    _svc, sid, st = run_sweep(rt, eco)
    assert st["status"] == "failed"
    return eco, sid, local(create_app(rt, eco))


@pytest.fixture
def swept_on_server(tmp_path: Path) -> Iterator[tuple[Path, str, TestClient]]:
    """As ``swept``, on the catalog's embedded server: the runtime the CLI gets."""
    from coordination.connection.embedded_server import release
    from coordination.runtime.context import get_runtime
    from tests.unit.support.sweeps import fresh_runtime

    eco = three_todos(tmp_path / "eco")
    fresh_runtime()  # every process-wide cache dropped
    rt = get_runtime(eco)
    assert rt.url is not None
    try:
        _svc, sid, st = run_sweep(rt, eco)
        assert st["status"] == "failed"
        yield eco, sid, local(create_app(rt, eco))
    finally:
        get_runtime.cache_clear()
        release(rt.url)


def test_json_endpoints_are_the_cli_documents(
        swept_on_server: tuple[Path, str, TestClient]) -> None:
    eco, sid, client = swept_on_server
    pairs = [
        (f"/api/sweeps/{sid}", ("sweep", "status", sid)),
        ("/api/sweeps", ("sweep", "list")),
        (f"/api/plans/{PLAN}", ("plan", "status", PLAN)),
        ("/api/repos", ("repo", "list")),
    ]
    for url, args in pairs:
        r = client.get(url)
        assert r.status_code == 200, (url, r.text)
        assert r.json() == cli_json(eco, *args), url
    status = client.get(f"/api/sweeps/{sid}").json()
    assert {t: v["status"] for t, v in status["todos"].items()} == {
        "TODO-001": "succeeded", "TODO-002": "failed", "TODO-003": "skipped",
        "TODO-004": "succeeded"}


def test_overview_has_progress_duration_and_repos(failed_sweep: tuple[Path, str, TestClient]) -> None:
    _eco, sid, client = failed_sweep
    doc = client.get("/api/overview").json()
    [row] = doc["sweeps"]
    assert row["sweep_id"] == sid and row["status"] == "failed" and row["plan"] == PLAN
    assert row["progress"] == {"done": 4, "total": 4}
    assert row["started_at"] and 0 <= row["duration"] < 30
    assert [r["name"] for r in doc["repos"]] == ["api", "web", "jobs"]
    assert all(r["workers"] == 0 for r in doc["repos"])  # embedded: no beating workers
    assert [p["id"] for p in doc["plans"]] == [PLAN]
    # No repo has a breaker configured: no breaker column, no state.
    assert doc["breakers"] is False
    assert (doc["repos"][0]["breaker"], doc["repos"][0]["breaker_state"]) == (None, None)
    assert doc["catalog_error"] is None


def test_overview_shows_sweeps_without_a_readable_catalog(
        failed_sweep: tuple[Path, str, TestClient], rt: Runtime, tmp_path: Path) -> None:
    _eco, sid, _ = failed_sweep
    doc = local(create_app(rt, tmp_path / "nowhere.yaml")).get("/api/overview").json()
    assert [s["sweep_id"] for s in doc["sweeps"]] == [sid]
    assert doc["repos"] == doc["plans"] == [] and "nowhere.yaml" in doc["catalog_error"]


def test_breaker_column_shows_the_repos_with_a_breaker(rt: Runtime, tmp_path: Path) -> None:
    import yaml

    eco = three_todos(tmp_path / "eco")
    doc = yaml.safe_load(eco.read_text())
    [web] = [r for r in doc["repos"] if r["name"] == "web"]
    web["breaker"] = {"failures": 2, "cooldown": 60}
    eco.write_text(yaml.safe_dump(doc, sort_keys=False))
    seen: list[str] = []

    def reader(repo: str) -> dict[str, Any] | None:
        seen.append(repo)
        return {"state": "open", "failures": 2}

    doc = local(create_app(rt, eco, breakers=reader)).get("/api/overview").json()
    assert doc["breakers"] is True and seen == ["web"]  # only repos with a breaker are read
    assert {r["name"]: r["breaker_state"] for r in doc["repos"]} == {
        "api": None, "web": {"state": "open", "failures": 2}, "jobs": None}


def test_sweep_graph_lays_out_every_todo_with_status_and_critical_path(
        failed_sweep: tuple[Path, str, TestClient], rt: Runtime) -> None:
    _eco, sid, client = failed_sweep
    g = client.get(f"/api/sweeps/{sid}/graph").json()
    nodes = {n["id"]: n for n in g["layout"]["nodes"]}
    assert set(nodes) == set(g["status"]) == {"TODO-001", "TODO-002", "TODO-003", "TODO-004"}
    assert [lane["repo"] for lane in g["layout"]["lanes"]] == ["api", "jobs", "web"]
    assert {n["level"] for n in nodes.values()} == {0, 1, 2}
    assert g["critical_path"] == ["TODO-001", "TODO-002", "TODO-003"]
    assert nodes["TODO-003"]["critical"] and not nodes["TODO-004"]["critical"]
    crit = {(e["from"], e["to"]) for e in g["layout"]["edges"] if e["critical"]}
    assert crit == {("TODO-001", "TODO-002"), ("TODO-002", "TODO-003")}
    assert g["status"]["TODO-002"] == "failed" and g["sweep"]["status"] == "failed"
    assert g["after"] == rt.events.last_id(sid) != "0-0"


def test_todo_detail_has_attempts_worker_timings_and_output(
        failed_sweep: tuple[Path, str, TestClient]) -> None:
    _eco, sid, client = failed_sweep
    d = client.get(f"/api/sweeps/{sid}/todos/TODO-002").json()
    assert d["status"] == "failed" and d["exit_code"] == 3 and d["attempts"] == 1
    assert "boom" in d["output_tail"] and d["worker"]
    assert d["started_at"] and d["finished_at"] and d["duration"] is not None
    assert [e["kind"] for e in d["events"]][-2:] == ["todo.started", "todo.failed"]
    assert client.get(f"/api/sweeps/{sid}/todos/TODO-999").status_code == 404
    missing = client.get("/api/sweeps/NOPE-1")
    assert missing.status_code == 404 and "unknown sweep" in missing.json()["error"]


def test_plan_graph_before_any_sweep(rt: Runtime, example_catalog: Path) -> None:
    client = local(create_app(rt, example_catalog))
    g = client.get("/api/plans/PLAN-001/graph").json()
    assert g["plan"] == cli_json(example_catalog, "plan", "status", "PLAN-001")
    assert g["plan"]["milestones"], "the example plan has milestones"
    ids = {n["id"] for n in g["layout"]["nodes"]}
    assert ids == set(g["todos"]) and len(ids) == g["plan"]["todos"]["total"]  # completed too
    in_milestone = {t for m in g["plan"]["milestones"] for t in m["todos"]} & ids
    assert in_milestone and all(g["todos"][t]["milestone"] for t in in_milestone)
    assert g["critical_path"] and g["problem"] is None
    assert client.get("/api/plans/PLAN-404/graph").status_code == 404


def test_finished_sweep_stream_replays_then_ends(failed_sweep: tuple[Path, str, TestClient],
                                                 rt: Runtime) -> None:
    _eco, sid, client = failed_sweep
    with client.stream("GET", f"/api/sweeps/{sid}/events?after=0-0") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    events = parse_sse(text)
    todo = {e["data"]["todo"]: e["data"]["status"] for e in events if e["event"] == "todo"}
    assert todo == {"TODO-001": "succeeded", "TODO-002": "failed", "TODO-003": "skipped",
                    "TODO-004": "succeeded"}
    assert [e["data"]["kind"] for e in events if e["event"] == "sweep"][-1] == "sweep.finished"
    # The end names the last event read, so a reconnect would resume after it (an event
    # the sweep's process appends after the stream ended is the reconnect's to read).
    assert events[-1] == {"event": "end", "id": events[-2]["id"], "data": {"status": "failed"}}
    assert events[-2]["id"] is not None and events[-2]["id"] <= rt.events.last_id(sid)


def test_stream_of_a_live_sweep_follows_it_to_its_end(rt: Runtime, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    eco = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api",
         "run": f"while [ ! -f {gate} ]; do sleep 0.02; done; echo done"}])
    client = local(create_app(rt, eco, block_ms=200))
    done: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: done.update(st=run_sweep(rt, eco)[2]), daemon=True)
    runner.start()

    def running_sweep() -> str | None:
        rows = client.get("/api/sweeps").json()
        if not rows:
            return None
        g = client.get(f"/api/sweeps/{rows[0]['sweep_id']}/graph").json()
        return str(rows[0]["sweep_id"]) if g["status"]["TODO-001"] == "running" else None

    sid = wait_for(running_sweep, timeout=20, what="the todo runs")
    after = client.get(f"/api/sweeps/{sid}/graph").json()["after"]
    gate.touch()
    with client.stream("GET", f"/api/sweeps/{sid}/events?after={after}") as r:
        events = parse_sse("".join(r.iter_text()))
    runner.join(20)
    assert done["st"]["status"] == "succeeded"
    kinds = [(e["event"], e["data"].get("kind")) for e in events]
    assert ("todo", "todo.succeeded") in kinds and ("sweep", "sweep.finished") in kinds
    assert ("todo", "todo.started") not in kinds  # before `after`: not sent again
    assert events[-1]["event"] == "end" and events[-1]["data"]["status"] == "succeeded"


def parse_sse(text: str) -> list[dict[str, Any]]:
    out = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(("event:", "data:", "id:")):
                k, _, v = line.partition(":")
                fields[k] = v.strip()
        if "event" in fields:
            out.append({"event": fields["event"], "id": fields.get("id"),
                        "data": json.loads(fields["data"])})
    return out


def auth(user_pass: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(user_pass.encode()).decode()}


def test_basic_auth_guards_every_route(failed_sweep: tuple[Path, str, TestClient], rt: Runtime) -> None:
    eco, sid, _ = failed_sweep
    client = local(create_app(rt, eco, auth="ana:s3cret"))
    for url in ("/", f"/sweeps/{sid}", "/api/sweeps", f"/api/sweeps/{sid}",
                f"/api/sweeps/{sid}/events", "/static/app.js", "/api/repos"):
        r = client.get(url)
        assert r.status_code == 401, url
        assert r.headers["www-authenticate"].startswith("Basic")
        assert client.get(url, headers=auth("ana:wrong")).status_code == 401, url
        assert client.get(url, headers={"Authorization": "Basic !!!"}).status_code == 401
    ok = client.get("/api/sweeps", headers=auth("ana:s3cret"))
    assert ok.status_code == 200 and ok.json()[0]["sweep_id"] == sid


def test_the_view_only_reads(failed_sweep: tuple[Path, str, TestClient]) -> None:
    _eco, sid, client = failed_sweep
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for url in ("/api/sweeps", f"/api/sweeps/{sid}", f"/api/sweeps/{sid}/todos/TODO-001"):
            assert client.request(method, url).status_code == 405, (method, url)


def test_page_is_served_with_a_strict_policy(failed_sweep: tuple[Path, str, TestClient]) -> None:
    _eco, sid, client = failed_sweep
    for url in ("/", f"/sweeps/{sid}", f"/plans/{PLAN}"):
        r = client.get(url)
        assert r.status_code == 200 and '<script src="/static/app.js"' in r.text
        assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "data-todo" in client.get("/static/app.js").text


def test_bind_off_localhost_needs_auth() -> None:
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "ana:s3cret")
    with pytest.raises(UsageError) as exc:
        check_bind("0.0.0.0", None)
    assert "COORD_UI_AUTH" in str(exc.value)
    with pytest.raises(UsageError):
        check_bind("127.0.0.1", "no-colon")


def test_coord_ui_refuses_an_open_bind_with_exit_2(example_catalog: Path) -> None:
    r = coord(example_catalog, "ui", "--address", "0.0.0.0", timeout=30)
    clean_error(r, 2)
    assert "COORD_UI_AUTH" in r.stderr and "without authentication" in r.stderr
    r = coord(example_catalog, "ui", "--address", "0.0.0.0", env={"COORD_UI_AUTH": "x"},
              timeout=30)
    clean_error(r, 2)
    assert "user:password" in r.stderr


def test_plan_sweep_ui_needs_wait_when_distributed(example_catalog: Path) -> None:
    r = coord(example_catalog, "plan", "sweep", "PLAN-001", "--ui",
              env={"COORD_REDIS_URL": "redis://127.0.0.1:1/0"}, timeout=30)
    clean_error(r, 2)
    assert "--wait" in r.stderr


def test_embedded_sweep_serves_the_view_for_its_length(tmp_path: Path) -> None:
    """`coord plan sweep --wait --ui --ui-port N`: the view answers while the sweep runs
    (embedded: the only process that can see it), and is gone when it ends."""
    import os
    import socket
    import subprocess
    import sys
    import urllib.request

    from tests.unit.support.cli import ROOT

    gate = tmp_path / "gate"
    eco = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": f"while [ ! -f {gate} ]; do sleep 0.05; done"}])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(eco), "plan", "sweep",
         PLAN, "--wait", "--ui-port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def rows() -> Any:
            assert proc.poll() is None, proc.communicate()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/sweeps", timeout=2) as r:
                    return json.loads(r.read())
            except OSError:
                return None

        [row] = wait_for(rows, timeout=40, what="the web view of the running sweep")
        assert row["status"] in ("queued", "running")

        def todo_status() -> str | None:
            # the view serves from the sweep's record on: its todo is `pending` until sent
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/sweeps/"
                                        f"{row['sweep_id']}/todos/TODO-001", timeout=5) as r:
                status = str(json.loads(r.read())["status"])
            assert status in ("pending", "queued", "running"), status
            return status if status != "pending" else None

        wait_for(todo_status, timeout=40, what="the view to show TODO-001 sent")
        gate.touch()
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.strip() == row["sweep_id"]  # stdout still holds only the sweep id
    assert f"http://127.0.0.1:{port}/sweeps/{row['sweep_id']}" in err
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/sweeps", timeout=2)
