"""`coord ui` holding a thousand open event streams (issue 23): pages still answer in
under a second, the server's threads stay few, every stream still gets the sweep's end,
and a request naming another host is refused by the real server.

A real `coord ui` (uvicorn) subprocess on the session's redis-server; the streams are raw
sockets driven by asyncio in this process. The sweep has no worker, so it stays queued
(live) and its streams stay open until the test cancels it.
"""

from __future__ import annotations

import asyncio
import resource
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.helpers import Cluster, T, wait_until
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

STREAMS = 1000
PAGE_WITHIN = 1.0  # seconds
MAX_THREADS = 64  # main, the event reader, the page thread pool (40), a few of uvicorn's


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


async def request(port: int, path: str, host: str) -> tuple[int, bytes]:
    """One GET; (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                     .encode())
        data = await reader.read()
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


class Stream:
    """One open event stream on a raw socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.seen = reader, writer, b""

    @classmethod
    async def open(cls, port: int, sid: str) -> Stream:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /api/sweeps/{sid}/events HTTP/1.1\r\nHost: localhost:{port}\r\n"
                     "Accept: text/event-stream\r\n\r\n".encode())
        s = cls(reader, writer)
        await s.until(b"retry: 2000")
        assert s.seen.startswith(b"HTTP/1.1 200"), s.seen[:200]
        return s

    async def until(self, marker: bytes) -> None:
        while marker not in self.seen:
            chunk = await self.reader.read(65536)
            assert chunk, f"stream closed before {marker!r}: {self.seen[-300:]!r}"
            self.seen += chunk

    def close(self) -> None:
        self.writer.close()


async def hold_streams(cluster: Cluster, port: int, sid: str, pid: int) -> dict[str, float]:
    gate = asyncio.Semaphore(100)  # connects in flight at once

    async def one() -> Stream:
        async with gate:
            return await Stream.open(port, sid)

    t0 = time.monotonic()
    try:
        streams = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(STREAMS))), 120)
    except TimeoutError:
        raise AssertionError(f"{STREAMS} streams not open within 120 s") from None
    opened = time.monotonic() - t0
    try:
        # Every stream is open and idle: pages and JSON answer at once.
        worst = 0.0
        for path in ("/", "/api/sweeps", f"/api/sweeps/{sid}", f"/api/sweeps/{sid}/graph",
                     "/api/overview", "/static/app.js") * 2:
            t = time.monotonic()
            try:
                code, _ = await asyncio.wait_for(request(port, path, f"127.0.0.1:{port}"), 10)
            except TimeoutError:
                raise AssertionError(f"{path}: no answer within 10 s with {STREAMS} open "
                                     "streams") from None
            worst = max(worst, time.monotonic() - t)
            assert code == 200, path
        assert worst < PAGE_WITHIN, f"a page took {worst:.2f} s with {STREAMS} open streams"
        busy = threads(pid)
        assert busy <= MAX_THREADS, f"{busy} threads with {STREAMS} open streams"
        # One more stream still opens; and every open one gets the sweep's end.
        extra = await asyncio.wait_for(Stream.open(port, sid), 10)
        streams.append(extra)
        t = time.monotonic()
        res = await asyncio.to_thread(cluster.cli, "sweep", "cancel", sid)
        assert res.returncode == 0, res.stderr
        await asyncio.wait_for(asyncio.gather(*(s.until(b"event: end") for s in streams)), 60)
        ended = time.monotonic() - t
        assert all(b'"status":"cancelled"' in s.seen for s in streams)
        return {"opened": opened, "worst_page": worst, "threads": busy, "ended": ended}
    finally:
        for s in streams:
            s.close()


def test_a_thousand_open_event_streams_leave_pages_answering(cluster: Cluster) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = STREAMS + 512
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"{STREAMS} sockets need an open-file limit of {need} (hard: {hard})")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    cluster.write_catalog({"a": 1}, [T("TODO-001", "a", "true")])
    sid = cluster.start_sweep()  # no worker: queued, live, until cancelled
    cluster.env["COORD_UI_HOSTS"] = "coord.test"
    port = free_port()
    ui = cluster.popen("ui", "--port", str(port))

    def serving() -> bool:
        assert ui.poll() is None, ui.communicate()[1]
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/api/sweeps",
                                          timeout=2).status == 200
        except OSError:
            return False

    wait_until(serving, 30, "coord ui to serve", interval=0.1)

    # The Host check on the real server: its names and localhost's, nothing else.
    async def hosts() -> dict[str, int]:
        return {h: (await request(port, "/api/sweeps", h))[0]
                for h in ("coord.test", f"coord.test:{port}", f"localhost:{port}",
                          f"[::1]:{port}", "evil.example", f"evil.example:{port}")}

    codes = asyncio.run(asyncio.wait_for(hosts(), 30))
    assert {h: c for h, c in codes.items() if c != 200} == {
        "evil.example": 400, f"evil.example:{port}": 400}, codes

    took = asyncio.run(hold_streams(cluster, port, sid, ui.pid))
    print(f"\nui: {STREAMS} streams opened in {took['opened']:.1f} s; slowest page "
          f"{took['worst_page'] * 1000:.0f} ms; {took['threads']} threads; every stream "
          f"ended {took['ended']:.1f} s after the cancel")
    assert ui.poll() is None
