"""A small loopback TCP proxy for chaos tests: cuts and latency between a
`coord worker` and its Redis.

``cut("reset")`` closes every connection and refuses new ones (a peer that
went away); ``cut("blackhole")`` keeps connections open and accepts new ones
but forwards nothing (packets dropped: the network is cut, nobody is told).
``restore()`` ends either. ``latency(s)`` delays every forwarded chunk.
"""

from __future__ import annotations

import select
import socket
import threading
import time


class Proxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = int(self._listener.getsockname()[1])
        self._mode = "open"  # open | reset | blackhole
        self._delay = 0.0
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._closed = threading.Event()
        self.accepted = 0
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    # -- control ----------------------------------------------------------------------
    def cut(self, mode: str = "reset") -> None:
        assert mode in ("reset", "blackhole")
        with self._lock:
            self._mode = mode
            pairs, self._pairs = (self._pairs, []) if mode == "reset" else (None, self._pairs)
        for a, b in pairs or []:
            _close(a)
            _close(b)

    def restore(self) -> None:
        """Back to forwarding; blackholed connections are dropped (their bytes are
        lost, as after a real cut), so clients reconnect."""
        with self._lock:
            mode, self._mode = self._mode, "open"
            pairs, self._pairs = (self._pairs, []) if mode == "blackhole" else ([], self._pairs)
        for a, b in pairs:
            _close(a)
            _close(b)

    def latency(self, seconds: float) -> None:
        self._delay = max(0.0, seconds)

    def close(self) -> None:
        self._closed.set()
        _close(self._listener)
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            _close(a)
            _close(b)

    # -- forwarding -------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._mode == "reset":
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                _close(client)
                continue
            self.accepted += 1
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._closed.is_set():
                ready, _, _ = select.select([a, b], [], [], 0.2)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    if self._mode == "blackhole":
                        continue  # dropped on the floor
                    if self._delay:
                        time.sleep(self._delay)
                    peers[s].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            _close(a)
            _close(b)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass
