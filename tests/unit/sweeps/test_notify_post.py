"""One webhook POST against real loopback receivers: a redirect is never followed (the
URL's basic auth, the signature and the delivery id stay with the webhook's own
address) and is a failed delivery naming status and Location; the timeout bounds the
whole POST, so a receiver trickling its answer a byte at a time cannot hold it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordination.sweeps.notices import notify
from tests.webhooks import QuietHandler, serve, stop_serving

pytestmark = pytest.mark.timeout(90)
ROOT = Path(__file__).resolve().parents[3]


class Receivers:
    """A webhook at /hook answering ``code`` with a Location on ``catch``'s server, and
    that server, which records anything that reaches it."""

    def __init__(self) -> None:
        self.caught: list[dict[str, Any]] = []
        self.hooked: list[dict[str, Any]] = []
        self.code = 302
        box = self

        class Catch(QuietHandler):
            def _any(self) -> None:
                box.caught.append({"method": self.command, "headers": dict(self.headers),
                                   "body": self.body()})
                self.answer(200)

            do_GET = do_POST = _any  # noqa: N815 - http.server's names

        class Hook(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802
                box.hooked.append({"headers": dict(self.headers), "body": self.body()})
                self.answer(box.code, [("Location",
                                        f"http://127.0.0.1:{box.catch_port}/steal?k=v")])

        self.catch = serve(Catch)
        self.hook = serve(Hook)
        self.catch_port = self.catch.server_address[1]
        self.hook_port = self.hook.server_address[1]

    def close(self) -> None:
        for srv in (self.catch, self.hook):
            stop_serving(srv)


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    r = Receivers()
    yield r
    r.close()


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failure_and_is_not_followed(receivers: Receivers, code: int) -> None:
    receivers.code = code
    url = f"http://bot:hunter2@127.0.0.1:{receivers.hook_port}/hook"
    status, error = notify.post(url, b'{"x":1}', {"X-Coord-Delivery": "d-1",
                                                  "X-Coord-Signature": "t=1,v1=ab"}, 5.0)
    assert status == code
    assert error is not None and f"HTTP {code} redirect" in error and "not followed" in error
    assert f"127.0.0.1:{receivers.catch_port}/steal?k=***" in error  # where, redacted
    assert receivers.caught == [], "the redirect was followed"
    assert receivers.hooked[0]["headers"]["Authorization"] == "Basic Ym90Omh1bnRlcjI="


def test_an_attempt_redirected_is_retried_not_delivered(receivers: Receivers,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s")
    d = {"id": "d-1", "url": f"http://127.0.0.1:{receivers.hook_port}/hook", "format": "json",
         "secret_env": "HOOK_SECRET", "kind": "todo.failed", "event_id": "1-0",
         "sweep_id": "S", "todo_id": "T", "body": json.dumps({"kind": "todo.failed"}),
         "status": "pending", "attempts": 0, "created_at": 1.0, "next_at": 1.0,
         "delivered_at": None, "last_error": None, "last_status": None}
    after = notify.attempt(d, 100.0, timeout=5.0)  # type: ignore[arg-type]
    assert after["status"] == "pending" and after["last_status"] == 302
    assert after["next_at"] == 100.0 + notify.backoff(1)
    assert receivers.caught == []


class Trickle:
    """A receiver that answers one byte every ``every`` s (a status line and headers
    that never end in time)."""

    def __init__(self, every: float = 0.3) -> None:
        self.every = every
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        answer = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 400 + b"\r\n\r\n"
        with conn:
            try:
                conn.recv(65536)
                for i in range(len(answer)):
                    if self.stop.wait(self.every):
                        return
                    conn.sendall(answer[i:i + 1])
            except OSError:
                return

    def close(self) -> None:
        """Stop: a blocked accept() is woken by the shutdown (a close alone leaves the
        thread waiting in it for ever, and a later test's fork refused beside it)."""
        self.stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)
        assert not self.thread.is_alive()


@pytest.fixture
def trickle() -> Iterator[Trickle]:
    t = Trickle()
    yield t
    t.close()


def test_the_timeout_bounds_the_whole_post(trickle: Trickle) -> None:
    got: list[tuple[int | None, str | None]] = []
    started = time.monotonic()
    t = threading.Thread(target=lambda: got.append(
        notify.post(f"http://127.0.0.1:{trickle.port}/hook", b"{}", {}, 1.0)), daemon=True)
    t.start()
    t.join(6.0)  # a deadline, not a sleep: 1 s allowed, a per-read timeout would take 2 min
    assert not t.is_alive(), "the POST outlived its timeout (a byte every 0.3 s kept it going)"
    status, error = got[0]
    assert status is None and error is not None and "timed out after 1 s" in error, error
    assert time.monotonic() - started < 6.0


def test_notify_test_returns_within_its_timeout(tmp_path: Path, trickle: Trickle,
                                                receivers: Receivers) -> None:
    """`coord notify test`: the README's 10 s, whatever the receiver trickles; a
    redirecting webhook is reported failed with its status and Location."""
    cat = tmp_path / "ecosystem.yaml"
    cat.write_text(f"""version: 1
repos:
  - name: api
notify:
  - url: "http://127.0.0.1:{trickle.port}/slow"
  - url: "http://u:hunter2@127.0.0.1:{receivers.hook_port}/hook"
""")
    started = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(cat), "notify", "test",
         "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "200"})
    took = time.monotonic() - started
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert [d["ok"] for d in doc] == [False, False]
    assert "timed out after 10 s" in doc[0]["error"]
    assert doc[1]["status"] == 302 and "redirect to http://127.0.0.1" in doc[1]["error"]
    assert receivers.caught == [] and "hunter2" not in r.stdout + r.stderr
    assert took < 35, f"coord notify test took {took:.0f} s"
