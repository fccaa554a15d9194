"""A webhook receiver on a loopback port that fails its first deliveries, then goes down a
while, then accepts each delivery once: what the notifier's retries and de-duplication
are tested against."""

from __future__ import annotations

import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

from tests.webhooks import QuietHandler, serve, stop_serving

DOWN_FOR = 10.0



class Endpoint:
    """A webhook receiver: fails the first three deliveries, then is down for
    ``DOWN_FOR`` s, then accepts each delivery id once (a repeat is answered 200 and
    counted as a repeat)."""

    def __init__(self, port: int, fail_first: int = 3) -> None:
        self.port = port
        self.fail_first = fail_first
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.accepted: list[str] = []  # delivery ids, once per 2xx answered to a new id
        self.repeats: list[str] = []
        self.accepted_at: list[float] = []
        self.down_until = 0.0
        self.server: ThreadingHTTPServer | None = None
        self._up()

    def _up(self) -> None:
        ep = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.body()
                with ep.lock:
                    ep.requests.append({"headers": dict(self.headers), "body": body})
                    n = len(ep.requests)
                    did = self.headers["X-Coord-Delivery"]
                    if n <= ep.fail_first:
                        code = 500
                    elif did in ep.accepted:
                        ep.repeats.append(did)
                        code = 200
                    else:
                        ep.accepted.append(did)
                        ep.accepted_at.append(time.time())
                        code = 200
                self.answer(code)
                if ep.fail_first and n == ep.fail_first:  # the last failure: go down a while
                    threading.Thread(target=ep.outage, daemon=True).start()

        self.server = serve(Handler, self.port)

    def outage(self) -> None:
        assert self.server is not None
        self.down_until = time.time() + DOWN_FOR
        stop_serving(self.server)  # connections refused from here
        time.sleep(DOWN_FOR)
        self._up()

    def close(self) -> None:
        if self.server is not None:
            stop_serving(self.server)


class Slow:
    """A webhook receiver that answers 200 only after ``delay`` s (0: at once); notes when
    each request arrived and its body. Slower than the workers' delivery timeout, each
    POST to it times out and is tried again after its backoff."""

    def __init__(self, delay: float) -> None:
        self.arrived: list[float] = []
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        box = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                arrived = time.time()
                body = self.body()
                with box.lock:
                    box.arrived.append(arrived)
                    box.bodies.append(body)
                if delay and box.stop.wait(delay):
                    return
                try:
                    self.answer(200)
                except OSError:
                    pass

        self.server = serve(Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def count(self) -> int:
        with self.lock:
            return len(self.arrived)

    def close(self) -> None:
        self.stop.set()
        stop_serving(self.server)
