"""Redis URLs and neighbours (#23, item 7), against real servers and real processes:

- a redis-server on a unix socket only, reached as ``unix://USER:PASSWORD@/path?db=1``
  by a worker, the CLI and the web view, each as an ACL user with exactly the
  permissions the README lists for it (:func:`acl_rules`);
- a user missing one permission: a worker and a CLI stop with one line naming it;
- a namespace claimed by another catalog: refused by the second catalog's CLI and
  worker, unless given a namespace of its own or told to share it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from coordination.connection.preflight import acl_rules
from tests.integration.helpers import Cluster, T, close_after_test
from tests.servers import redis_binary, stop_process
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(120)

PASSWORD = "p@ss/w:rd%"  # every character a URL must encode
ADMIN = "admin"  # the test's own user: the default user is off, so a client that lost
# its credentials on the way (kombu's socket URL did) is refused instead of let in
DB = 1  # not 0: the database must reach kombu too (and SELECT be granted)
EXIT_WITHIN = 30.0


@dataclass
class SocketServer:
    sock: Path
    proc: subprocess.Popen[bytes]

    def admin(self, db: int = 0) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.sock), db=db, username=ADMIN,
                           password=PASSWORD, decode_responses=True)

    def url(self, user: str) -> str:
        return f"unix://{user}:{quote(PASSWORD, safe='')}@{self.sock}?db={DB}"

    def add_user(self, user: str, role: str, *extra: str) -> str:
        """An ACL user with ``role``'s documented permissions (and ``extra`` rules);
        its ``COORD_REDIS_URL``."""
        self.admin().execute_command("ACL", "SETUSER", user, "reset", "on", f">{PASSWORD}",
                                     *acl_rules(role, "coord", DB), *extra)
        return self.url(user)


@pytest.fixture(scope="module")
def socket_server() -> Iterator[SocketServer]:
    """A redis-server listening on a unix socket only (``--port 0``)."""
    binary = redis_binary()
    d = Path(tempfile.mkdtemp(prefix="coord-sock-"))  # short: a socket path has ~100 bytes
    sock = d / "redis.sock"
    # fmt: off
    proc = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--save", "", "--appendonly", "no", "--dir", str(d), "--logfile", str(d / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    # fmt: on
    empty_server = SocketServer(sock, proc)

    def up() -> bool:
        try:
            return sock.exists() and bool(redis.Redis(unix_socket_path=str(sock)).ping())
        except redis.RedisError:
            return False

    try:
        wait_for(up, 15, "redis-server on its unix socket")
        default = redis.Redis(unix_socket_path=str(sock))
        default.execute_command("ACL", "SETUSER", ADMIN, "on", f">{PASSWORD}", "~*", "&*",
                                "+@all")
        default.execute_command("ACL", "SETUSER", "default", "off")
        default.close()
        yield empty_server
    finally:
        stop_process(proc)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def empty_server(socket_server: SocketServer) -> SocketServer:
    """The module's socket server, emptied (its ACL users are reset by ``add_user``)."""
    socket_server.admin().flushall()
    return socket_server


def cluster_on(root: Path, url: str) -> Cluster:
    c = Cluster(root, url)
    c.write_catalog({"api": 1}, [T("TODO-001", "api", "echo one > one.txt"),
                                 T("TODO-002", "api", "echo two", blocked_by=["TODO-001"])])
    return c


@pytest.fixture
def clusters(request: pytest.FixtureRequest) -> Iterator[list[Cluster]]:
    made: list[Cluster] = []
    yield made
    close_after_test(request, made)


def cli(c: Cluster, url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(c.argv(*args), env=dict(c.env, COORD_REDIS_URL=url, **env),
                          capture_output=True, text=True, timeout=90)


def one_line_error(stderr: str) -> str:
    """The ``error:`` line of a command that failed cleanly (no traceback)."""
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_a_sweep_over_a_unix_socket_as_users_with_exactly_the_documented_acl(
        empty_server: SocketServer, tmp_path: Path, clusters: list[Cluster]) -> None:
    urls = {role: empty_server.add_user(f"coord-{role}", role) for role in ("worker", "cli", "ui")}
    c = cluster_on(tmp_path, urls["cli"])
    clusters.append(c)
    worker = c.start_worker("api", redis_url=urls["worker"])  # waits for Celery's "ready."

    res = cli(c, urls["cli"], "plan", "sweep", "PLAN-001", "--wait", "--json")
    assert res.returncode == 0, res.stderr
    sweep = json.loads(res.stdout)
    assert sweep["status"] == "succeeded", sweep
    assert (c.repo_dir("api") / "one.txt").read_text() == "one\n"
    events = cli(c, urls["cli"], "events", "--sweep", sweep["sweep_id"], "--json")
    assert events.returncode == 0, events.stderr
    assert "sweep.finished" in events.stdout

    # The web view, as the read-only user: pages and documents of that sweep.
    from starlette.testclient import TestClient

    from coordination.runtime.context import Runtime
    from coordination.settings import Settings
    from coordination.ui.app import create_app

    rt = Runtime.create(Settings(redis_url=urls["ui"]), catalog=c.eco)
    with TestClient(create_app(rt, c.eco), base_url="http://localhost") as web:
        doc = web.get(f"/api/sweeps/{sweep['sweep_id']}")
        assert doc.status_code == 200 and doc.json()["status"] == "succeeded", doc.text
        for page in ("/", f"/sweeps/{sweep['sweep_id']}", "/plans/PLAN-001", "/api/repos"):
            assert web.get(page).status_code == 200, page

    # The database of the URL, for the broker too; and no password in any output.
    assert empty_server.admin(db=0).dbsize() == 0
    assert empty_server.admin(db=DB).exists("coord:celery:_kombu.binding.coord.repo.api")
    log = worker.log_text()
    assert "Traceback" not in log
    for text in (log, res.stdout, res.stderr):
        assert PASSWORD not in text and quote(PASSWORD, safe="") not in text


def test_a_missing_permission_is_one_line_naming_it(
        empty_server: SocketServer, tmp_path: Path, clusters: list[Cluster]) -> None:
    worker_url = empty_server.add_user("coord-worker", "worker", "-brpop")
    cli_url = empty_server.add_user("coord-cli", "cli", "-xadd")
    c = cluster_on(tmp_path, cli_url)
    clusters.append(c)

    w = c.start_worker("api", wait=False, redis_url=worker_url)
    assert w.proc.wait(timeout=EXIT_WITHIN) == 1, w.log_text()
    line = one_line_error(w.log_text())
    assert "user 'coord-worker' may not run BRPOP" in line, line

    # XADD is run by coord's scripts only: Redis names no command; coord finds which.
    res = cli(c, cli_url, "plan", "sweep", "PLAN-001")
    assert res.returncode == 1, res.stderr
    line = one_line_error(res.stderr)
    assert "user 'coord-cli' may not run XADD" in line, line
    assert "ACL SETUSER coord-cli +xadd" in res.stderr


def test_a_namespace_claimed_by_another_catalog_is_refused(
        redis_url: str, tmp_path: Path, clusters: list[Cluster]) -> None:
    a, b = cluster_on(tmp_path / "a", redis_url), cluster_on(tmp_path / "b", redis_url)
    clusters += [a, b]
    assert a.cli("sweep", "list").returncode == 0  # first use: a claims `coord`

    res = b.cli("sweep", "list")
    assert res.returncode == 2, res.stderr
    line = one_line_error(res.stderr)
    assert "namespace 'coord'" in line and "belongs to another catalog" in line, line
    assert str(a.eco.resolve()) in line and str(b.eco.resolve()) in line, line
    assert "COORD_NAMESPACE=" in res.stderr and "COORD_SHARE_NAMESPACE=1" in res.stderr

    w = b.start_worker("api", wait=False)
    assert w.proc.wait(timeout=EXIT_WITHIN) == 2, w.log_text()
    assert "belongs to another catalog" in one_line_error(w.log_text())

    assert cli(b, redis_url, "sweep", "list", COORD_SHARE_NAMESPACE="1").returncode == 0
    assert cli(b, redis_url, "sweep", "list", COORD_NAMESPACE="b").returncode == 0
    assert a.cli("sweep", "list").returncode == 0
