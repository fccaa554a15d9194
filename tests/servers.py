"""A real redis-server for the tests: started on a free port (retried when another process
takes the port first), stopped, and what a test needs to reach it."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis


START_TIMEOUT = 15.0


@dataclass
class RedisServer:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    dir: Path

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)


def redis_binary() -> str:
    """The redis-server on PATH; the test is skipped without one (failed, naming it, when
    COORD_REQUIRE_REDIS=1: a run that must test against Redis)."""
    import os
    import shutil

    import pytest

    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not on PATH; install redis (e.g. apt-get install redis-server)"
        if os.environ.get("COORD_REQUIRE_REDIS") == "1":
            pytest.fail(f"COORD_REQUIRE_REDIS=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return binary


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(binary: str, workdir: Path) -> RedisServer:
    """Start redis-server and wait until it answers PING (a free port can be
    taken by someone else between our probe and the server's bind: retry)."""
    last_output = ""
    for _attempt in range(3):
        port = free_port()
        log = workdir / f"redis-{port}.log"
        # fmt: off
        cmd = [
            binary, "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--dir", str(workdir), "--logfile", str(log),
        ]
        # fmt: on
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        url = f"redis://127.0.0.1:{port}/0"
        probe = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if probe.ping():
                    probe.close()
                    return RedisServer(url, port, proc, workdir)
            except redis.RedisError:
                time.sleep(0.05)
        probe.close()
        stop_process(proc)
        last_output = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"redis-server did not answer PING in {START_TIMEOUT}s:\n{last_output}")


def term_then_kill(pid: int, *, group: bool, grace: float, poll: float) -> None:
    """SIGTERM to process ``pid`` (its process group when ``group``), then SIGKILL if it
    is still there after ``grace`` s (looked at every ``poll`` s)."""
    import os
    import signal

    send = os.killpg if group else os.kill
    try:
        send(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            send(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(poll)
    try:
        send(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
