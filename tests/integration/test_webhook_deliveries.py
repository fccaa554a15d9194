"""Webhook deliveries as a forge (or someone who captured one) sends them (#81): a
delivery id seen in the last day is answered 200 ``{"duplicate": true}`` and starts or
changes nothing; a push whose ``after`` is not a commit SHA is refused 400; a body is
read as it streams in and refused 413 past 5 MiB before more is buffered (a 300 MB
chunked body leaves the receiver's memory where it was)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordination.forge.webhooks import sign
from tests.servers import term_then_kill
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(240)

SECRET = "webhook-s3cret"
DELIVERY = {"github": "X-GitHub-Delivery", "gitlab": "X-Gitlab-Event-UUID",
            "gitea": "X-Gitea-Delivery"}
PUSH = {"github": ("X-GitHub-Event", "push"), "gitlab": ("X-Gitlab-Event", "Push Hook"),
        "gitea": ("X-Gitea-Event", "push")}


def _push_body(kind: str, after: str) -> bytes:
    doc: dict[str, Any] = {"ref": "refs/heads/main", "before": "1" * 40, "after": after}
    if kind == "gitlab":
        doc["project"] = {"path_with_namespace": "acme/core"}
    else:
        doc["repository"] = {"full_name": "acme/core"}
    return json.dumps(doc).encode()


def _headers(kind: str, body: bytes, delivery: str) -> dict[str, str]:
    name, event = PUSH[kind]
    return {name: event, DELIVERY[kind]: delivery, "Content-Type": "application/json",
            **sign(kind, body, SECRET)}  # type: ignore[arg-type]


@pytest.fixture
def hooks(tmp_path: Path, redis_url: str) -> Iterator[tuple[Any, list[Any]]]:
    """A receiver over a real Redis whose handling of an event is counted."""
    from starlette.testclient import TestClient

    from coordination.runtime.context import Runtime
    from coordination.ui.hooks import Hooks

    cat = tmp_path / "ecosystem.yaml"
    cat.write_text("version: 1\nrepos:\n  - {name: core, path: core, forge: {kind: github, "
                   "project: acme/core}}\n")
    handled: list[Any] = []

    class Counted(Hooks):
        async def _handle(self, event: Any) -> Any:
            from starlette.responses import JSONResponse

            handled.append(event)
            return JSONResponse({"event": type(event).__name__, "started": [1]})

    rt = Runtime.create(catalog=cat)
    with TestClient(Counted(rt, cat, env={"COORD_FORGE_WEBHOOK_SECRET": SECRET}).app()) as c:
        yield c, handled


@pytest.mark.parametrize("kind", ["github", "gitlab", "gitea"])
def test_a_replayed_delivery_is_a_duplicate_and_starts_nothing(
        hooks: tuple[Any, list[Any]], kind: str) -> None:
    client, handled = hooks
    body = _push_body(kind, "a" * 40)
    first = client.post(f"/hooks/{kind}", content=body, headers=_headers(kind, body, "d-1"))
    assert first.status_code == 200 and "duplicate" not in first.json(), first.text
    assert len(handled) == 1
    again = client.post(f"/hooks/{kind}", content=body, headers=_headers(kind, body, "d-1"))
    assert again.status_code == 200 and again.json()["duplicate"] is True, again.text
    assert len(handled) == 1  # started or changed nothing
    other = client.post(f"/hooks/{kind}", content=body, headers=_headers(kind, body, "d-2"))
    assert other.status_code == 200 and "duplicate" not in other.json()
    assert len(handled) == 2
    # a forger's replay with another signature: refused before its id counts for anything
    forged = client.post(f"/hooks/{kind}", content=body,
                         headers={**_headers(kind, body, "d-3"), **sign(
                             kind, body, "not-the-secret")})  # type: ignore[arg-type]
    assert forged.status_code == 401
    real = client.post(f"/hooks/{kind}", content=body, headers=_headers(kind, body, "d-3"))
    assert real.status_code == 200 and "duplicate" not in real.json()


@pytest.mark.parametrize("kind", ["github", "gitea"])
@pytest.mark.parametrize("after", ["main", "a" * 39, "A" * 40, "a" * 40 + "; rm -rf /", "b" * 41])
def test_a_push_whose_after_is_no_commit_sha_is_refused(
        hooks: tuple[Any, list[Any]], kind: str, after: str) -> None:
    client, handled = hooks
    body = _push_body(kind, after)
    res = client.post(f"/hooks/{kind}", content=body, headers=_headers(kind, body, "d-x"))
    assert res.status_code == 400 and "commit SHA" in res.json()["error"], res.text
    assert handled == []
    good = _push_body(kind, "c" * 64)  # SHA-256 repositories' ids are taken
    ok = client.post(f"/hooks/{kind}", content=good, headers=_headers(kind, good, "d-x"))
    assert ok.status_code == 200 and len(handled) == 1, ok.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
@pytest.mark.parametrize("kind", ["github", "gitea"])
def test_a_300_mb_chunked_body_is_refused_while_streaming(tmp_path: Path, redis_url: str,
                                                          kind: str) -> None:
    cat = tmp_path / "ecosystem.yaml"
    cat.write_text("version: 1\nrepos: []\n")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "coordination.cli.main", "--file", str(cat),
                             "forge", "webhook", "--port", str(port)],
                            env={**os.environ, "COORD_FORGE_WEBHOOK_SECRET": SECRET},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(up, timeout=60, what="coord forge webhook to listen")
        before = _rss_kib(proc.pid)
        sent = [0]

        def chunks() -> Iterator[bytes]:  # 300 MB, made as it is sent, never held
            block = b"x" * (1 << 20)
            for _ in range(300):
                sent[0] += len(block)
                yield block

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        status = None
        try:
            conn.request("POST", f"/hooks/{kind}", body=chunks(), encode_chunked=True,
                         headers={"Content-Type": "application/json",
                                  DELIVERY[kind]: "big-1", PUSH[kind][0]: PUSH[kind][1]})
            status = conn.getresponse().status
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-body: the receiver closed the connection
        finally:
            conn.close()
        grown = _rss_kib(proc.pid) - before
        assert grown < 64 * 1024, f"the receiver grew {grown} KiB taking the body"
        assert status in (413, None), status
        # (the server may drain what follows the refusal: it keeps none of it)
        # still serving
        small = _push_body(kind, "a" * 40)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", f"/hooks/{kind}", body=small,
                     headers={**_headers(kind, small, "small-1")})
        assert conn.getresponse().status in (200, 202)
        conn.close()
    finally:
        term_then_kill(proc.pid, group=False, grace=5, poll=0.05)
