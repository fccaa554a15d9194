"""`coord notify test|log` as a user runs them (embedded: the catalog's own server), against
a local HTTP endpoint: what each webhook answered, the exit code, URLs without their
credentials; a catalog without webhooks is bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.webhooks import QuietHandler, serve, stop_serving

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[3]


def coord(catalog: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog), *args],
        cwd=catalog.parent, capture_output=True, text=True, timeout=100,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "200", **env},
    )


@pytest.fixture
def endpoint() -> Iterator[tuple[int, list[dict[str, Any]]]]:
    got: list[dict[str, Any]] = []

    class Handler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.body()
            got.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
            self.answer(204 if self.path == "/ok" else 503)

    srv = serve(Handler)
    yield srv.server_address[1], got
    stop_serving(srv)


def test_notify_test_and_log(tmp_path: Path, endpoint: tuple[int, list[dict[str, Any]]]) -> None:
    port, got = endpoint
    cat = tmp_path / "ecosystem.yaml"
    cat.write_text(f"""version: 1
repos:
  - name: api
notify:
  - url: "http://bot:hunter2@127.0.0.1:{port}/ok"
    secret_env: HOOK_SECRET
  - url: "http://127.0.0.1:{port}/down"
    events: [gate.waiting, wave.halted]
    format: slack
""")
    r = coord(cat, "notify", "test", "--json", HOOK_SECRET="s")
    assert r.returncode == 1, r.stderr  # the second webhook answered 503
    doc = json.loads(r.stdout)
    assert [(d["ok"], d["status"]) for d in doc] == [(True, 204), (False, 503)]
    assert doc[0]["url"] == f"http://***@127.0.0.1:{port}/ok"
    assert "hunter2" not in r.stdout + r.stderr and "503" in r.stderr
    by_path = {g["path"]: g for g in got}  # the webhooks are tried concurrently
    assert sorted(by_path) == ["/down", "/ok"] and len(got) == 2
    assert by_path["/ok"]["body"]["kind"] == "notify.test"
    assert "X-Coord-Signature" in by_path["/ok"]["headers"]
    assert by_path["/down"]["body"] == {"text": "coord: *notify.test*"}
    log = coord(cat, "notify", "log", "--json")
    assert log.returncode == 0, log.stderr
    entries = json.loads(log.stdout)
    assert sorted(e["status"] for e in entries) == ["delivered", "failed"]
    assert "hunter2" not in log.stdout
    human = coord(cat, "notify", "log")
    assert human.returncode == 0 and "hunter2" not in human.stdout and "HTTP 503" in human.stdout


def test_bad_webhooks_are_refused_with_file_and_line(tmp_path: Path) -> None:
    cat = tmp_path / "ecosystem.yaml"
    cat.write_text("version: 1\nrepos: []\n")
    r = coord(cat, "notify", "test")
    assert r.returncode == 2 and "no webhooks" in r.stderr
    cat.write_text("version: 1\nnotify:\n  - url: https://h/x\n    events: [todo.faild]\n")
    r = coord(cat, "notify", "test")
    assert r.returncode == 2
    assert "ecosystem.yaml:4" in r.stderr and "todo.faild" in r.stderr, r.stderr
