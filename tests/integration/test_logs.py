"""`coord logs` and `mask_env:` with real `coord worker`s on a real redis-server.

- Every attempt's whole output is kept (more than the output tail holds), stdout and
  stderr apart, each attempt with its worker, start, end and exit code; `--follow`
  prints a running attempt's output as it is written and ends with it; the cap is said
  where it cut; the logs expire with their sweep.
- The values of the variables `mask_env:` names (on the catalog, a repo, a todo; in the
  worker's environment: a catalog gives none a value) read `***` on every surface: logs, the
  output tail, results (and what the next todo is handed), the reason, events, a
  webhook's body, the web view's JSON and MCP's; a value shorter than 4 characters
  is not masked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from http.server import ThreadingHTTPServer
from typing import Any

import anyio
import pytest

from tests.integration.helpers import ROOT, Cluster, T, wait_serving, wait_until
from tests.servers import free_port
from tests.webhooks import QuietHandler, serve, stop_serving

pytestmark = pytest.mark.timeout(240)

TOKEN = "tok-4f1d9c0e77"  # the worker's environment
PASSWORD = "pw-8c2b1a93"  # a todo's env:
EXTRA = "extra-51f0a2"  # a todo's own env:, masked by that todo only
SHORT = "ab1"  # masked, but too short to mask


def test_every_attempt_is_kept_whole_and_followed_while_it_runs(cluster: Cluster) -> None:
    c = cluster
    gate = c.root / "go"
    # TODO-001: 200,000 bytes of numbered lines (the tail keeps 64 KiB), then fails its
    # first attempt; TODO-002: a line, a wait for the test's word, a line.
    lines = "i=0; while [ $i -lt 20000 ]; do echo \"line $i ........\"; i=$((i+1)); done"
    c.write_catalog({"a": 1}, [
        T("TODO-001", "a", f"{lines}; echo oops >&2; test -f second || {{ touch second; exit 4; }}",
          retries=1),
        T("TODO-002", "a", f"echo first; while [ ! -f {gate} ]; do sleep 0.05; done; "
                           "echo second >&2", blocked_by=["TODO-001"]),
    ])
    c.start_workers(["a"])
    sid = c.start_sweep()
    c.wait_todo(sid, "TODO-002", {"running"}, timeout=90)
    follow = c.popen("logs", "TODO-002", "--follow")
    # `first` is printed while the attempt still runs; the follower then waits on it
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(follow.stdout), daemon=True)
    reader.start()
    try:
        wait_until(lambda: got == ["first\n"], 30, "the follower to print the running todo's line")
    except AssertionError as exc:  # what the follower did, and what it could have read
        rc = follow.poll()
        raise AssertionError(
            f"{exc}: it printed {got!r}; exit {rc}, stderr "
            f"{follow.stderr.read() if rc is not None else '(still running)'!r}; TODO-002 "
            f"{c.checkpoint(sid, 'TODO-002')!r}; its attempts {c.rt.logs().attempts(sid, 'TODO-002')!r}"
        ) from None
    assert follow.poll() is None and c.checkpoint(sid, "TODO-002")["status"] == "running"
    gate.write_text("")
    assert follow.wait(timeout=60) == 0
    reader.join(10)
    err = follow.stderr.read()
    assert got == ["first\n"] and "second\n" in err and "exit 0" in err, (got, err)
    assert c.wait_sweep(sid, timeout=60)["status"] == "succeeded"

    doc = c.cli_json("logs", "TODO-001")
    assert doc["sweep_id"] == sid and doc["attempt"] == 2
    assert [(a["attempt"], a["exit_code"], a["worker"] != "") for a in doc["attempts"]] == [
        (1, 4, True), (2, 0, True)]
    out = "".join(x["text"] for x in doc["output"] if x["stream"] == "stdout")
    assert out.startswith("line 0 ........\n") and out.endswith("line 19999 ........\n")
    assert len(out) == doc["attempts"][1]["stdout_bytes"] > 64 * 1024
    assert [x["text"] for x in doc["output"] if x["stream"] == "stderr"] == ["oops\n"]
    tail = c.checkpoint(sid, "TODO-001")["output_tail"]
    assert "line 0 " not in tail  # the tail alone lost the head: the log kept it
    first = c.cli("logs", "TODO-001", "--sweep", sid, "--attempt", "1")
    assert first.returncode == 0 and first.stdout.startswith("line 0 ") and first.stderr
    assert "oops" in first.stderr and "attempt 1 of 2" in first.stderr and "exit 4" in first.stderr
    assert c.cli("logs", "TODO-001", "--attempt", "3").returncode == 2
    assert c.cli("logs", "TODO-404").returncode == 2
    # Kept as long as the sweep: its retention reaches every log key.
    keys = c.rt.logs().log_keys(sid)
    assert len(keys) == 1 + 3 + 2  # the list, 3 attempts' streams, 2 todos' hashes
    for key in keys:
        ttl = c.rt.redis.ttl(key)
        assert 0 < ttl <= c.rt.settings.retention_days * 86400, (key, ttl)


def test_the_cap_keeps_the_first_bytes_and_says_where_it_cut(cluster: Cluster) -> None:
    c = cluster
    c.env["COORD_LOG_MAX_BYTES"] = "4096"
    c.write_catalog({"a": 1}, [T("TODO-001", "a", "seq 1 5000")])
    c.start_workers(["a"])
    sid = c.start_sweep()
    assert c.wait_sweep(sid)["status"] == "succeeded"
    res = c.cli("logs", "TODO-001")
    assert res.returncode == 0 and res.stdout.startswith("1\n2\n3\n")
    assert len(res.stdout.encode()) == 4096
    assert "... output truncated at 4096 bytes (COORD_LOG_MAX_BYTES)" in res.stderr
    (a,) = c.cli_json("logs", "TODO-001")["attempts"]
    assert a["truncated"] and a["kept_bytes"] == 4096 and a["stdout_bytes"] > 20000


MASKED_CATALOG = """version: 1
mask_env: [API_TOKEN]
repos:
  - {{name: a, path: repos/a, mask_env: [DB_PASSWORD, SHORT]}}
notify:
  - {{url: "http://127.0.0.1:{port}/hook", events: [todo.failed, todo.succeeded]}}
coordination:
  plans:
    - {{id: PLAN-001, title: masked, status: active}}
  todos:
    - id: TODO-001
      task: prints its secrets
      repo: a
      plan: PLAN-001
      run: >-
        echo "token=$API_TOKEN short=$SHORT"; echo "password=$DB_PASSWORD" >&2;
        printf 'TOKEN=%s\\n' "$API_TOKEN" >> "$COORD_OUTPUT"
    - id: TODO-002
      task: hands a secret on, badly
      repo: a
      plan: PLAN-001
      blocked_by: [TODO-001]
      mask_env: [EXTRA]
      run: >-
        echo "got=$COORD_IN_TODO_001_TOKEN extra=$EXTRA";
        echo "$EXTRA $API_TOKEN" > "$COORD_OUTPUT"
"""


def test_masked_values_read_stars_on_every_surface(cluster: Cluster) -> None:
    c = cluster
    bodies: list[bytes] = []

    class Hook(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            bodies.append(self.body())
            self.answer(200)

    server: ThreadingHTTPServer = serve(Hook)
    try:
        _masked_sweep(c, server.server_address[1], bodies)
    finally:
        stop_serving(server)


def _masked_sweep(c: Cluster, port: int, bodies: list[bytes]) -> None:
    c.repo_dir("a").mkdir(parents=True, exist_ok=True)
    c.eco.write_text(MASKED_CATALOG.format(port=port))
    # (a masked variable has no value in the catalog: the worker's environment gives it)
    c.env.update(API_TOKEN=TOKEN, SHORT=SHORT, DB_PASSWORD=PASSWORD, EXTRA=EXTRA)
    c.start_workers(["a"])
    sid = c.start_sweep()
    st = c.wait_sweep(sid, timeout=90)
    secrets = (TOKEN, PASSWORD, EXTRA)
    surfaces: dict[str, str] = {}

    # Each surface says what the run did, masked: the values themselves never.
    t1, t2 = st["todos"]["TODO-001"], st["todos"]["TODO-002"]
    assert st["status"] == "failed" and t1["status"] == "succeeded", st
    assert t1["outputs"] == {"TOKEN": "***"}
    assert "token=*** short=ab1" in t1["output_tail"] and "password=***" in t1["output_tail"]
    assert "got=*** extra=***" in t2["output_tail"]
    assert "not KEY=VALUE: '*** ***'" in str(t2["reason"]), t2  # the refused line, masked
    surfaces["sweep status"] = c.cli("sweep", "status", sid, "--json").stdout
    surfaces["logs 1"] = json.dumps(c.cli_json("logs", "TODO-001"))
    surfaces["logs 2"] = c.cli("logs", "TODO-002").stdout
    assert "token=*** short=ab1" in surfaces["logs 1"] and "password=***" in surfaces["logs 1"]
    assert "got=*** extra=***" in surfaces["logs 2"]
    surfaces["events"] = c.cli("events", "--sweep", sid, "--json").stdout
    assert "***" in surfaces["events"]  # todo.failed's reason
    wait_until(lambda: len(bodies) >= 2, 60, "the webhook's deliveries")
    surfaces["webhooks"] = b"\n".join(bodies).decode()
    assert "***" in surfaces["webhooks"]
    surfaces["history"] = c.cli("history", "search", "KEY", "--json").stdout
    surfaces["web view"] = _web(c, sid)
    surfaces["mcp"] = _mcp(c, sid)
    assert "***" in surfaces["web view"] and "***" in surfaces["mcp"]
    for name, text in surfaces.items():
        for secret in secrets:
            assert secret not in text, f"{name} shows a masked value: {text[:3000]}"


def _web(c: Cluster, sid: str) -> str:
    port = free_port()
    ui = c.popen("ui", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    wait_serving(ui, base)
    pages = [f"/api/sweeps/{sid}", f"/api/sweeps/{sid}/graph",
             f"/api/sweeps/{sid}/todos/TODO-001", f"/api/sweeps/{sid}/todos/TODO-002",
             f"/api/sweeps/{sid}/todos/TODO-001/logs", f"/api/sweeps/{sid}/todos/TODO-002/logs"]
    out = []
    for page in pages:
        with urllib.request.urlopen(base + page, timeout=10) as res:
            out.append(res.read().decode())
    ui.terminate()
    ui.wait(10)
    return "\n".join(out)


def _mcp(c: Cluster, sid: str) -> str:
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    async def main() -> Any:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "coordination.cli.main", "--file", str(c.eco), "mcp",
                  "--toolsets", "sweeps"], env=c.env, cwd=str(ROOT))
        with anyio.fail_after(120):
            async with stdio_client(params) as (read, write):
                async with ClientSession(read, write) as s:
                    await s.initialize()
                    res = await s.call_tool("coord_get_sweep", {"sweep_id": sid})
                    assert not res.is_error, res.content
                    return res.content[0].text  # type: ignore[union-attr]

    return str(anyio.run(main))


def test_logs_read_from_a_process_without_the_worker(cluster: Cluster) -> None:
    """`coord logs` is a read: it needs neither the worker nor its machine (another
    process, the same Redis), and says so when a todo never ran."""
    c = cluster
    c.write_catalog({"a": 1}, [T("TODO-001", "a", "echo hello"), T("TODO-002", "a", "true",
                                                                  plan="PLAN-002")],
                    plans=("PLAN-001", "PLAN-002"))
    (w,) = c.start_workers(["a"])
    sid = c.start_sweep()
    c.wait_sweep(sid)
    w.kill()
    res = c.cli("logs", "TODO-001", "--sweep", sid)
    assert res.returncode == 0 and res.stdout == "hello\n", res.stderr
    res = c.cli("logs", "TODO-002", "--sweep", sid)
    assert res.returncode == 2 and "no attempt has run" in res.stderr, res.stderr
    res = subprocess.run(c.argv("logs", "--help"), capture_output=True, text=True, cwd=ROOT,
                         env=c.env, timeout=60)
    assert "--follow" in res.stdout
