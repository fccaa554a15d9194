"""`coord worker` at start: fails fast (< 10 s, non-zero, the problem named) or runs, over TLS too.

Real redis-servers started here on free loopback ports: one with ``requirepass``,
one TLS-only (throwaway CA and server certificate made with ``openssl``), and
real ``coord worker`` / ``coord`` processes. No output may contain a password.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.integration.helpers import Cluster, T, close_after_test
from tests.integration.sentinel_bed import make_pki
from tests.servers import free_port, redis_binary, stop_process

pytestmark = pytest.mark.timeout(180)

PASSWORD = "Zq9-startup-s3cr3t"
WRONG = "Xy7-wrong-s3cr3t"
SECRETS = (PASSWORD, WRONG)
EXIT_WITHIN = 10.0  # seconds: the promise of `coord worker` for a Redis it cannot use
START_TIMEOUT = 15.0


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[bytes]


def _spawn(workdir: Path, args: list[str], probe: str, port: int) -> Server:
    """Start redis-server with ``args`` and wait until ``probe`` (a URL) answers PING."""
    out = workdir / f"redis-{port}.out"
    # fmt: off
    cmd = [redis_binary(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
           "--daemonize", "no", "--dir", str(workdir), *args]
    # fmt: on
    with open(out, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    client = redis.Redis.from_url(probe, socket_connect_timeout=0.5, socket_timeout=1)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if client.ping():
                    return Server(port, proc)
            except redis.RedisError:
                time.sleep(0.05)
    finally:
        client.close()
    stop_process(proc)
    text = out.read_text(errors="replace")[-2000:]
    if any(s in text.lower() for s in ("tls", "bad directive")) and "--tls-port" in args:
        pytest.skip(f"this redis-server has no TLS support (built without BUILD_TLS): {text[-300:]}")
    raise RuntimeError(f"redis-server {' '.join(args)} did not answer PING:\n{text}")


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A plain redis-server that requires a password."""
    port = free_port()
    server = _spawn(tmp_path_factory.mktemp("redis-auth"),
                    ["--port", str(port), "--requirepass", PASSWORD],
                    f"redis://:{PASSWORD}@127.0.0.1:{port}/0", port)
    yield server
    stop_process(server.proc)


@dataclass
class Pki:
    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost."""
    d = make_pki(tmp_path_factory.mktemp("pki"))
    return Pki(d / "ca.pem", d / "server.pem", d / "server.key")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Server]:
    """A TLS-only redis-server (no plain port) that also requires a password."""
    port = free_port()
    # fmt: off
    args = ["--port", "0", "--tls-port", str(port),
            "--tls-cert-file", str(pki.cert), "--tls-key-file", str(pki.key),
            "--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", "no",
            "--requirepass", PASSWORD]
    # fmt: on
    server = _spawn(tmp_path_factory.mktemp("redis-tls"), args,
                    f"rediss://:{PASSWORD}@127.0.0.1:{port}/0?ssl_ca_certs={pki.ca}", port)
    yield server
    stop_process(server.proc)


MakeCluster = Callable[[str], Cluster]


@pytest.fixture
def make_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[MakeCluster]:
    """``make_cluster(url)``: a Cluster (catalog with one repo, api) on that URL; killed after."""
    made: list[Cluster] = []

    def make(url: str) -> Cluster:
        c = Cluster(tmp_path / f"c{len(made)}", url)
        c.write_catalog({"api": 1}, [T("TODO-001", "api", "echo ran > ran.txt")])
        made.append(c)
        return c

    yield make
    close_after_test(request, made)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a password leaked into output:\n{text[-2000:]}"


def start_and_fail(cluster: Cluster, expect_code: int = 1) -> tuple[str, float]:
    """Start `coord worker --repo api`; it must exit ``expect_code`` within EXIT_WITHIN s."""
    t0 = time.monotonic()
    w = cluster.start_worker("api", wait=False)
    try:
        code = w.proc.wait(timeout=EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        pytest.fail(f"coord worker still running after {EXIT_WITHIN} s:\n{w.log_text()[-3000:]}")
    took = time.monotonic() - t0
    out = w.log_text()
    print(f"\ncoord worker exited {code} after {took:.2f} s: {out.strip().splitlines()[:1]}")
    assert code == expect_code, out
    assert "Traceback" not in out, out
    assert_no_secret(out)
    return out, took


# -- failing fast -------------------------------------------------------------------------
def test_wrong_password(make_cluster: MakeCluster, auth_server: Server) -> None:
    out, _ = start_and_fail(make_cluster(f"redis://:{WRONG}@127.0.0.1:{auth_server.port}/0"))
    assert "wrong password" in out and "WRONGPASS" in out, out
    assert f"redis://:***@127.0.0.1:{auth_server.port}/0" in out, out


def test_wrong_user(make_cluster: MakeCluster, auth_server: Server) -> None:
    out, _ = start_and_fail(make_cluster(f"redis://ana:{PASSWORD}@127.0.0.1:{auth_server.port}/0"))
    assert "wrong password for user 'ana'" in out, out


def test_no_password_given(make_cluster: MakeCluster, auth_server: Server) -> None:
    out, _ = start_and_fail(make_cluster(f"redis://127.0.0.1:{auth_server.port}/0"))
    assert "requires a password" in out and "NOAUTH" in out, out


def test_nothing_listening(make_cluster: MakeCluster) -> None:
    port = free_port()
    out, _ = start_and_fail(make_cluster(f"redis://:{PASSWORD}@127.0.0.1:{port}/0"))
    assert f"nothing is listening at 127.0.0.1:{port} (connection refused)" in out, out


def test_no_answer_is_a_timeout(make_cluster: MakeCluster) -> None:
    """A port that accepts connections and never answers (a black hole, a wedged server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        port = hole.getsockname()[1]
        out, _ = start_and_fail(make_cluster(f"redis://127.0.0.1:{port}/0"))
    assert "no answer from" in out and "timeout" in out, out


def test_rediss_to_a_plain_server(make_cluster: MakeCluster, auth_server: Server) -> None:
    out, _ = start_and_fail(make_cluster(f"rediss://:{PASSWORD}@127.0.0.1:{auth_server.port}/0"))
    assert "TLS handshake" in out and "is the server TLS-enabled? use redis://" in out, out


def test_plain_redis_to_a_tls_only_port(make_cluster: MakeCluster, tls_server: Server) -> None:
    out, _ = start_and_fail(make_cluster(f"redis://:{PASSWORD}@127.0.0.1:{tls_server.port}/0"))
    assert "speaks TLS only" in out and "use rediss://" in out, out


def test_tls_verifies_the_server_by_default(make_cluster: MakeCluster, tls_server: Server) -> None:
    """rediss:// without ssl_ca_certs: the private CA is not trusted, so no connection."""
    out, _ = start_and_fail(make_cluster(f"rediss://:{PASSWORD}@127.0.0.1:{tls_server.port}/0"))
    assert "could not be verified" in out and "ssl_ca_certs" in out, out


@pytest.mark.parametrize("url", ["redis://127.0.0.1:notaport/0",
                                 f"redis://:{PASSWORD}@127.0.0.1:notaport/0"],
                         ids=["bare", "with-password"])
def test_malformed_url_exits_2_from_worker_and_cli(make_cluster: MakeCluster, url: str) -> None:
    cluster = make_cluster(url)
    out, _ = start_and_fail(cluster, expect_code=2)
    assert "COORD_REDIS_URL" in out and "port" in out, out
    res = cluster.cli("sweep", "list", timeout=30)
    assert res.returncode == 2, res.stderr
    assert "COORD_REDIS_URL" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert_no_secret(res.stdout, res.stderr)


# -- TLS that works -----------------------------------------------------------------------
def test_worker_and_sweep_over_tls(make_cluster: MakeCluster, tls_server: Server, pki: Pki) -> None:
    """One rediss:// URL (password, private CA) serves coord's client, the broker and the backend."""
    url = f"rediss://:{PASSWORD}@127.0.0.1:{tls_server.port}/0?ssl_ca_certs={pki.ca}"
    cluster = make_cluster(url)
    worker = cluster.start_worker("api")  # waits for Celery's "ready": the broker connected
    res = cluster.cli("plan", "sweep", "PLAN-001", "--wait", timeout=90)
    assert res.returncode == 0, f"{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    assert (cluster.repo_dir("api") / "ran.txt").read_text().strip() == "ran"
    listed = cluster.cli("sweep", "list", "--json", timeout=30)
    assert listed.returncode == 0 and "succeeded" in listed.stdout, listed.stderr
    assert_no_secret(res.stdout, res.stderr, listed.stdout, listed.stderr, worker.log_text())
