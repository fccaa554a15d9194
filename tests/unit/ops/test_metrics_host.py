"""`coord metrics` answers only requests naming it in ``Host`` (localhost's names, the
bound address, COORD_UI_HOSTS): a web page that points a name of its own at the
exporter (DNS rebinding) gets 400, not the exposition."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from coordination.cli.metrics import serve
from coordination.ops.metrics import host_name, local_names

pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parents[3]


def get(port: int, host: str | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", "/metrics", skip_host=True)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("header,name", [
    ("127.0.0.1:9808", "127.0.0.1"), ("LOCALHOST", "localhost"), ("[::1]:9808", "[::1]"),
    ("[::1]", "[::1]"), ("metrics.lan:80", "metrics.lan"), ("", ""),
])
def test_host_name(header: str, name: str) -> None:
    assert host_name(header) == name


def test_the_exporter_refuses_other_hosts() -> None:
    reg = CollectorRegistry(auto_describe=False)
    Counter("coord_probe", "a probe", registry=reg).inc()
    server, thread = serve(reg, "127.0.0.1", 0, [*local_names("127.0.0.1"), "metrics.lan"])
    port = server.server_port
    try:
        for ok in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}",
                   f"metrics.lan:{port}"):
            status, body = get(port, ok)
            assert status == 200 and b"coord_probe_total 1.0" in body, (ok, status)
        for bad in (f"attacker.example:{port}", "attacker.example", "127.0.0.1.nip.io", None):
            status, body = get(port, bad)
            assert status == 400, (bad, status)
            assert b"coord_probe" not in body and b"COORD_UI_HOSTS" in body
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_coord_metrics_checks_host_with_coord_ui_hosts(tmp_path: Path) -> None:
    cat = tmp_path / "ecosystem.yaml"
    cat.write_text("version: 1\nrepos:\n  - name: api\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COORD_UI_HOSTS": "metrics.lan"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(cat), "metrics",
         "--port", "0"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        port = 0
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            found = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
            if found:
                port = int(found.group(1))
                break
            assert line or proc.poll() is None, "coord metrics exited"
        assert port, "coord metrics never said where it listens"
        assert get(port, f"127.0.0.1:{port}")[0] == 200
        assert get(port, f"metrics.lan:{port}")[0] == 200
        status, body = get(port, f"rebound.example:{port}")
        assert status == 400 and b"coord_" not in body
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.poll() is None:
            os.kill(proc.pid, 9)
