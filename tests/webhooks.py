"""Webhook receivers on loopback ports, for the notification tests of both tiers: what
every receiver shares (a handler that logs nothing, reads the request's body and
answers without one; its server on a daemon thread, and stopping it). Each test keeps
its own receiver's behaviour in its handler's ``do_POST``."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that prints nothing to the test's output."""

    def log_message(self, *_: object) -> None:
        pass

    def body(self) -> bytes:
        """The request's body (Content-Length bytes; none without one)."""
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self, code: int, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Status ``code``, ``headers``, and an empty body."""
        self.send_response(code)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()


def serve(handler: type[BaseHTTPRequestHandler], port: int = 0) -> ThreadingHTTPServer:
    """``handler`` served on 127.0.0.1:``port`` (0: a free port) by a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_serving(server: ThreadingHTTPServer) -> None:
    """Stop serving and close the port (connections are refused from here)."""
    server.shutdown()
    server.server_close()
