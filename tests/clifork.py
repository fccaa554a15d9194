"""`coord` commands a test runs, started from a warm interpreter: a fork server.

Most of a test's CPU went into starting `python -m coordination.cli.main`: 0.5-1.1 CPU
seconds a command, of which importing redis, pydantic, click and coord's models is
60-70%, and a run starts thousands (a sample of six test files: 56% of all CPU the run
used). Here one server per pytest process imports those once; each command is a
``fork`` of it that takes the command's argv, environment, working directory and standard
streams (sent over a Unix socket as file descriptors), runs ``coordination.cli.main`` as
``__main__`` as ``python -m`` does, runs its exit handlers and exits with its code. The
command is a process of its own: its own pid, environment, streams, exit code and
signals; its code is the code a user runs. What differs from a fresh interpreter is only
which modules are already imported.

:func:`patch` routes ``subprocess.run([sys.executable, "-m", "coordination.cli.main",
...])`` here (the form every test helper uses); everything else, and any call that
asks for what a fork cannot give (its own session, another ``PYTHON*`` setting, a
``preexec_fn``), runs as before. The tests of start-up itself (lazy imports, the plain
install, signals) start their processes another way and are not routed. A forked
command's own coord commands (the merge train's verify runs `coord todo run` per verify
todo) are routed the same way, to the server that forked it (:func:`route`).

`coord worker`s the integration tests start (``Cluster.start_worker``) go through
:func:`popen`: forked, in a session of their own, from a second server that has imported
Celery and the worker's modules too (a worker's start was 1.4 CPU seconds), held through
a :class:`ForkedProcess` (pid, ``poll``, ``wait``, signals; the exit code is the server's
to send, as their parent). What a fork lacks is its own command line
(``/proc/PID/cmdline`` is the server's): the chaos tier and tests marked
``fresh_workers`` (a SIGHUP re-executes the command line) start theirs afresh.
``TEST_CLI_FORK=0`` turns both off for a run.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MAIN = "coordination.cli.main"
#: what the server imports before it forks: what nearly every command imports anyway,
#: then every module of coord's package (see :data:`NOT_PRELOADED`) and the libraries its
#: commands print and ask forges with: a command's own modules (its sweeps, change,
#: planner, trust and forge parts) took 60% of a forked command's CPU when each fork
#: imported them afresh (the pull-request tests' 223 commands: 82 CPU seconds, 35 with
#: them preloaded), and none reads its environment or starts anything on import
PRELOAD = ("redis", "click", "yaml", "pydantic", "coordination.settings",
           "coordination.catalog.models", "coordination.catalog.file.store",
           "coordination.runtime.context", MAIN, "coordination", "rich.console", "httpx",
           "encodings.idna")
#: coord's modules the commands' server leaves to the commands that use them: those that
#: import Celery (a command's fork starts without it, as `coord todo list` does) and the
#: MCP server's (its SDK: a second a server, for a handful of commands)
NOT_PRELOADED = ("coordination.dispatch.app", "coordination.beat", "coordination.mcp_server")
#: what the workers' server imports besides: what every `coord worker` imports (Celery,
#: kombu, the worker's modules). A server of its own, so the commands' forks do not
#: start with Celery imported (`coord todo list` never imports it).
WORKER_PRELOAD = (*PRELOAD, "celery", "celery.worker", "celery.apps.worker", "kombu",
                  "workers.worker")
#: ``subprocess.run`` arguments a routed call may carry (anything else: a real process)
HANDLED = {"input", "capture_output", "stdin", "stdout", "stderr", "cwd", "env", "timeout",
           "text", "encoding", "errors", "check", "universal_newlines", "close_fds"}
MAX_MESSAGE = 1 << 20


# -- the server (a process of its own, started by :class:`Server`) -------------------------

def serve(path: str, preload: tuple[str, ...] = PRELOAD) -> None:
    """Import ``preload``, listen on ``path``, fork a child per request; exits when
    the pytest process that started it is gone."""
    import importlib

    for name in preload:
        importlib.import_module(name)
        if name == "coordination":  # the whole package, but what it leaves out
            for sub in _modules(ROOT / "coordination"):
                if not sub.startswith(NOT_PRELOADED):
                    importlib.import_module(sub)
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}
    nested = Client(path, _python_env(os.environ), _paths(os.environ))
    print("ready", flush=True)
    while os.getppid() == parent:
        for key, _ in sel.select(timeout=1.0):
            if key.fileobj is listener:
                conn, _ = listener.accept()
                pid = _start(conn, [listener, wake_r, wake_w], children, nested)
                if pid:
                    children[pid] = conn
            else:
                try:
                    while os.read(wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            conn = children.pop(pid, None)
            if conn is not None:
                code = os.waitstatus_to_exitcode(status)
                try:
                    conn.send(json.dumps({"exit": code}).encode())
                except OSError:
                    pass
                conn.close()


def _modules(package: Path) -> list[str]:
    """The dotted names of the modules under ``package`` (a directory), sorted."""
    names = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _start(conn: socket.socket, listening: list[Any], children: dict[int, socket.socket],
           nested: Client) -> int:
    """Fork the command ``conn`` asks for: its pid (sent to ``conn``), or 0. The command's
    own coord commands (``subprocess.run`` of ``python -m coordination.cli.main``, as the
    train's verify runs `coord todo run`) are forked from this server too (``nested``)."""
    try:
        msg, fds, _flags, _addr = socket.recv_fds(conn, MAX_MESSAGE, 3)
        req = json.loads(msg)
    except (OSError, ValueError):
        conn.close()
        return 0
    pid = os.fork()
    if pid == 0:  # the command
        code = 1
        try:
            for item in listening:
                item.close() if isinstance(item, socket.socket) else os.close(item)
            for other in children.values():
                other.close()
            conn.close()
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            route(nested)
            code = _child(req, fds)
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    conn.send(json.dumps({"pid": pid}).encode())
    return pid


def _child(req: dict[str, Any], fds: list[int]) -> int:
    """Run the command in this forked process: its streams, directory and environment,
    ``python -m coordination.cli.main ARGS`` as ``__main__``, then what an interpreter
    does on its way out (non-daemon threads joined, exit handlers run, streams flushed)."""
    import atexit
    import runpy
    import traceback

    if req.get("session"):
        os.setsid()  # Popen's start_new_session: a session and process group of its own
    if req.get("limit_as"):  # (what a preexec_fn capping RLIMIT_AS does)
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (req["limit_as"], req["limit_as"]))
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    sys.path[0] = req["cwd"]  # as `python -m` puts its working directory first
    sys.argv = [MAIN, *req["args"]]
    if req["env"].get("PYTHONUNBUFFERED"):
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(line_buffering=True, write_through=True)  # type: ignore[attr-defined]
    sys.modules.pop(MAIN, None)  # as under `python -m`: the module runs as __main__ only
    code: int = 0
    try:
        runpy.run_module(MAIN, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - as the interpreter: the traceback, exit 1
        traceback.print_exc()
        code = 1
    try:
        threading._shutdown()  # type: ignore[attr-defined]
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    return code & 0xFF


# -- the client (in the pytest process) ----------------------------------------------------

class Client:
    """Commands sent to the fork server listening on ``path``, whose ``PYTHON*`` settings
    are ``python_env`` and whose import path holds ``paths``."""

    def __init__(self, path: str, python_env: dict[str, str], paths: set[str]) -> None:
        self.path, self.python_env, self.paths = path, python_env, paths

    def serves(self, env: Any) -> bool:
        """Can a fork of this server run a command with environment ``env`` as it is?"""
        return _python_env(env) == self.python_env and _same_path(env, self.paths)

    def run(self, argv: list[str], *, input: Any = None, capture_output: bool = False,
            stdin: Any = None, stdout: Any = None, stderr: Any = None, cwd: Any = None,
            env: Any = None, timeout: float | None = None, text: bool | None = None,
            encoding: str | None = None, errors: str | None = None, check: bool = False,
            universal_newlines: bool | None = None, close_fds: bool = True,
            limit_as: int = 0) -> subprocess.CompletedProcess[Any]:
        """``subprocess.run(argv, ...)`` for ``argv`` = python -m coordination.cli.main ARGS
        (``limit_as``: the command's address space capped at that many bytes)."""
        if capture_output:
            stdout = stderr = subprocess.PIPE
        textual = bool(text or encoding or errors or universal_newlines)
        opened: list[int] = []   # ours, closed at the end
        theirs: list[int] = []   # the child's ends, closed once sent
        reads: dict[int, bytearray] = {}

        def pipe_for(spec: Any, default: int, reading: bool) -> int:
            if spec != subprocess.PIPE:
                return _given_fd(spec, default, theirs)
            r, w = os.pipe()
            if reading:  # the child writes
                opened.append(r)
                theirs.append(w)
                reads[r] = bytearray()
                return w
            opened.append(w)
            theirs.append(r)
            return r

        feed: bytes | None = None
        if input is not None:
            feed = input.encode(encoding or "utf-8") if isinstance(input, str) else bytes(input)
            in_fd = pipe_for(subprocess.PIPE, 0, reading=False)
            feed_fd = opened[-1]
        elif stdin == subprocess.PIPE:  # nothing to send: closed at once (as communicate())
            feed = b""
            in_fd = pipe_for(subprocess.PIPE, 0, reading=False)
            feed_fd = opened[-1]
        else:
            in_fd = pipe_for(stdin, 0, reading=False)
            feed_fd = -1
        out_fd = pipe_for(stdout, 1, reading=True)
        out_key = opened[-1] if stdout == subprocess.PIPE else None
        err_fd = out_fd if stderr == subprocess.STDOUT else pipe_for(stderr, 2, reading=True)
        err_key = opened[-1] if stderr == subprocess.PIPE else None
        req = {"args": argv[3:], "cwd": str(cwd) if cwd is not None else os.getcwd(),
               "env": dict(os.environ if env is None else env), "limit_as": limit_as}
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = 0
        try:
            conn.connect(self.path)
            socket.send_fds(conn, [json.dumps(req).encode()], [in_fd, out_fd, err_fd])
            for fd in theirs:
                os.close(fd)
            theirs.clear()
            pid = int(json.loads(conn.recv(MAX_MESSAGE))["pid"])
            if feed_fd >= 0:
                _feed(feed_fd, feed or b"")
                opened.remove(feed_fd)
            code = _wait(conn, reads, timeout)
            if code is None:  # timed out
                os.kill(pid, signal.SIGKILL)
                _wait(conn, reads, 10)
                out, err = self._decoded(reads, out_key, err_key, textual, encoding, errors)
                raise subprocess.TimeoutExpired(argv, timeout or 0, output=out, stderr=err)
        finally:
            conn.close()
            for fd in theirs + opened:
                try:
                    os.close(fd)
                except OSError:
                    pass
        out, err = self._decoded(reads, out_key, err_key, textual, encoding, errors)
        done = subprocess.CompletedProcess(argv, code, out, err)
        if check:
            done.check_returncode()
        return done

    def spawn(self, argv: list[str], *, cwd: Any, env: Any, stdin: Any, stdout: Any,
              stderr: Any, session: bool, text: bool = False) -> ForkedProcess:
        """``subprocess.Popen(argv, ...)`` for a `coord` process that runs on (a worker, a
        landing in the background): forked, its streams the files asked for or pipes
        (stdout and stderr; read as ``Popen``'s are: ``proc.stdout``, ``communicate``),
        a handle to it returned."""
        opened: list[int] = []  # closed once sent: the child's ends, /dev/null
        ours: list[int] = []  # the pipes' ends we read, closed if the start fails

        def out_fd(spec: Any, default: int) -> int:
            if spec != subprocess.PIPE:
                return _given_fd(spec, default, opened)
            r, w = os.pipe()
            ours.append(r)
            opened.append(w)
            return w

        fds = [_given_fd(stdin, 0, opened), out_fd(stdout, 1)]
        out_r = ours[-1] if stdout == subprocess.PIPE else None
        fds.append(fds[1] if stderr == subprocess.STDOUT else out_fd(stderr, 2))
        err_r = ours[-1] if stderr == subprocess.PIPE else None
        req = {"args": argv[3:], "cwd": str(cwd) if cwd is not None else os.getcwd(),
               "env": dict(os.environ if env is None else env), "session": session}
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            conn.connect(self.path)
            socket.send_fds(conn, [json.dumps(req).encode()], fds)
            pid = int(json.loads(conn.recv(MAX_MESSAGE))["pid"])
        except BaseException:
            conn.close()
            for fd in ours:
                os.close(fd)
            raise
        finally:
            for fd in opened:
                os.close(fd)
        return ForkedProcess(argv, pid, conn, out_r, err_r, text)

    @staticmethod
    def _decoded(reads: dict[int, bytearray], out_key: int | None, err_key: int | None,
                 textual: bool, encoding: str | None, errors: str | None) -> tuple[Any, Any]:
        def one(key: int | None) -> Any:
            if key is None:
                return None
            data = bytes(reads[key])
            if not textual:
                return data
            got = data.decode(encoding or "utf-8", errors or "strict")
            return got.replace("\r\n", "\n").replace("\r", "\n")
        return one(out_key), one(err_key)


def _given_fd(spec: Any, default: int, opened: list[int]) -> int:
    """The descriptor a child's stream ``spec`` asks for (None: ``default``, this
    process's own; DEVNULL: one opened here, added to ``opened``; a number or a file)."""
    if spec is None:
        return default
    if spec == subprocess.DEVNULL:
        fd = os.open(os.devnull, os.O_RDWR)
        opened.append(fd)
        return fd
    return spec if isinstance(spec, int) else int(spec.fileno())


class Server(Client):
    """A fork server of this pytest process, started on first use: the commands' (which
    imports :data:`PRELOAD`) or the workers' (:data:`WORKER_PRELOAD`)."""

    def __init__(self, preload: str = "PRELOAD") -> None:
        self.dir = tempfile.mkdtemp(prefix="coord-clifork-")
        super().__init__(os.path.join(self.dir, "s"), _python_env(os.environ),
                         _paths(os.environ))
        self.proc = subprocess.Popen(
            [sys.executable, "-c",
             f"from tests.clifork import serve, {preload}; serve({self.path!r}, {preload})"],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
            env=dict(os.environ))
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if line.strip() != "ready":
            self.close()
            raise RuntimeError(f"the coord fork server did not start (said {line!r})")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()
        try:
            os.unlink(self.path)
            os.rmdir(self.dir)
        except OSError:
            pass


class ForkedProcess:
    """A `coord` process a server forked, held as a test holds a ``Popen`` (its pid,
    ``poll``, ``wait``, signals): the server is its parent, reaps it and sends its exit
    code (Popen's convention: ``-N`` when signal N ended it) over the connection."""

    stdin = None

    def __init__(self, args: list[str], pid: int, conn: socket.socket,
                 out: int | None = None, err: int | None = None, text: bool = False) -> None:
        self.args, self.pid, self.returncode = args, pid, None
        self._conn: socket.socket | None = conn
        self._text = text
        #: the pipes of its stdout and stderr, as ``Popen``'s (None: not a pipe)
        self.stdout: Any = None if out is None else os.fdopen(out, "r" if text else "rb")
        self.stderr: Any = None if err is None else os.fdopen(err, "r" if text else "rb")
        #: what was read from each pipe, by its descriptor (``out``, ``err``)
        self._read: dict[int, bytearray] = {fd: bytearray() for fd in (out, err)
                                            if fd is not None}
        self._out, self._err = out, err

    def _ended(self, timeout: float | None) -> bool:
        conn = self._conn
        if conn is None:
            return True
        with selectors.DefaultSelector() as sel:
            sel.register(conn, selectors.EVENT_READ)
            if not sel.select(timeout):
                return False
        try:
            msg = conn.recv(MAX_MESSAGE)
        except OSError:
            msg = b""
        conn.close()
        self._conn = None
        # (no word: the server itself was killed; the process went with the test run)
        self.returncode = int(json.loads(msg)["exit"]) if msg else -signal.SIGKILL
        return True

    def poll(self) -> int | None:
        self._ended(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:
        """Its pipes read to their end, then its exit waited for: (stdout, stderr), None
        for a stream that is not a pipe (``TimeoutExpired`` past ``timeout``; a second
        call carries on, as ``Popen``'s does)."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        streams = [f for f in (self.stdout, self.stderr) if f is not None and not f.closed]
        with selectors.DefaultSelector() as sel:
            for f in streams:
                sel.register(f.fileno(), selectors.EVENT_READ, f)
            while sel.get_map():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired(self.args, timeout or 0)
                for key, _ in sel.select(left):
                    chunk = os.read(key.fd, 65536)
                    if chunk:
                        self._read[key.fd] += chunk
                    else:
                        sel.unregister(key.fd)
                        key.data.close()
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        self.wait(left)

        def got(fd: int | None) -> Any:
            if fd is None:
                return None
            data = bytes(self._read[fd])
            if not self._text:
                return data
            return data.decode().replace("\r\n", "\n").replace("\r", "\n")
        return got(self._out), got(self._err)

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # (not once reaped: its pid may be another's)
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def __enter__(self) -> ForkedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        for f in (self.stdout, self.stderr):
            if f is not None:
                f.close()
        self.wait()


def _feed(fd: int, data: bytes) -> None:
    """``data`` written to the child's stdin from a thread (a child that reads nothing
    must not block us), then closed."""
    def write() -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except OSError:
            pass
        finally:
            os.close(fd)
    threading.Thread(target=write, name="clifork-stdin", daemon=True).start()


def _wait(conn: socket.socket, reads: dict[int, bytearray], timeout: float | None) -> int | None:
    """Read the child's pipes until they close and its exit code arrives: the code, or
    None when ``timeout`` passed first."""
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    for fd in reads:
        sel.register(fd, selectors.EVENT_READ)
    sel.register(conn, selectors.EVENT_READ)
    code: int | None = None
    open_fds = set(reads)
    try:
        while code is None or open_fds:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            for key, _ in sel.select(timeout=left):
                if key.fileobj is conn:
                    msg = conn.recv(MAX_MESSAGE)
                    sel.unregister(conn)
                    code = int(json.loads(msg)["exit"]) if msg else -signal.SIGKILL
                else:
                    fd = int(key.fd)
                    chunk = os.read(fd, 65536)
                    if chunk:
                        reads[fd] += chunk
                    else:
                        sel.unregister(fd)
                        open_fds.discard(fd)
        return code
    finally:
        sel.close()


#: ``PYTHON*`` settings a forked command honours as a fresh one would (the path, when its
#: entries are the server's; buffering is set again in the child; bytecode is not written)
FOLLOWED = ("PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")


def _python_env(env: Any) -> dict[str, str]:
    """The ``PYTHON*`` settings of ``env`` a fork cannot take on: a command asking for
    others than the server's runs as a fresh process."""
    return {k: v for k, v in env.items() if k.startswith("PYTHON") and k not in FOLLOWED}


def _paths(env: Any) -> set[str]:
    """This checkout and ``env``'s ``PYTHONPATH`` entries, resolved: what a server
    started with ``env`` imports from."""
    return {str(Path(p).resolve()) for p in
            {str(ROOT), *str(env.get("PYTHONPATH", "")).split(os.pathsep)} - {""}}


def _same_path(env: Any, mine: set[str] | None = None) -> bool:
    """Are ``env``'s ``PYTHONPATH`` entries this checkout or the server's (``mine``: the
    server's, by default this process's)?"""
    mine = _paths(os.environ) if mine is None else mine
    theirs = set(str(env.get("PYTHONPATH", "")).split(os.pathsep)) - {""}
    return {str(Path(p).resolve()) for p in theirs} <= mine


_server: Server | None = None
_workers: Server | None = None
_lock = threading.Lock()
_on = False  # patch() is in force


def routed(argv: Any, kwargs: dict[str, Any]) -> bool:
    """Is ``subprocess.run(argv, **kwargs)`` a coord command a fork can run as it is?"""
    if not (isinstance(argv, (list, tuple)) and len(argv) >= 3
            and list(argv[:3]) == [sys.executable, "-m", MAIN]
            and all(isinstance(a, str) for a in argv)):
        return False
    return not (set(kwargs) - HANDLED or kwargs.get("close_fds") is False)


def pids() -> set[int]:
    """The fork servers' pids, while they run (children of this process for its life;
    not what they fork)."""
    return {s.proc.pid for s in (_server, _workers) if s is not None and s.proc.poll() is None}


def popen(argv: list[str], *, cwd: Any = None, env: Any = None, stdin: Any = None,
          stdout: Any = None, stderr: Any = None, start_new_session: bool = False,
          text: bool = False) -> Any:
    """``subprocess.Popen(argv, ...)`` for a `coord` process that runs on (`coord worker`,
    `coord forge webhook`, a landing in the background): forked from the workers' server
    (:data:`WORKER_PRELOAD` imported once, not by each process: a worker's start was 1.4
    CPU seconds, most of it imports) when it can be, else a real ``Popen``. Its stdout
    and stderr may be pipes (``proc.stdout``, ``communicate``), not its stdin. Not for a
    test of what a fork cannot be: a worker whose command line (``/proc/PID/cmdline``)
    matters, as the one SIGHUP re-executes."""
    global _workers
    env_ = os.environ if env is None else env
    if (_on and isinstance(argv, list) and list(argv[:3]) == [sys.executable, "-m", MAIN]
            and stdin != subprocess.PIPE
            and _python_env(env_) == _python_env(os.environ) and _same_path(env_)):
        with _lock:
            if _workers is None or _workers.proc.poll() is not None:
                _workers = Server("WORKER_PRELOAD")
            server = _workers
        return server.spawn(argv, cwd=cwd, env=env, stdin=stdin, stdout=stdout, stderr=stderr,
                            session=start_new_session, text=text)
    return subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdin, stdout=stdout, stderr=stderr,
                            start_new_session=start_new_session, text=text)


def _commands() -> Server:
    """The commands' fork server, started on first use (again, should it have died)."""
    global _server
    with _lock:
        if _server is None or _server.proc.poll() is not None:
            _server = Server()
        return _server


def run_capped(argv: list[str], limit_as: int, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run(argv, **kwargs)`` with the command's address space capped at
    ``limit_as`` bytes (a regression must fail fast, not eat the machine's memory): forked
    from the server, as :func:`patch` routes a command, when it can be; else a real process
    capped by a ``preexec_fn``."""
    env = os.environ if kwargs.get("env") is None else kwargs["env"]
    if _on and routed(argv, kwargs):
        server = _commands()
        if server.serves(env):
            return server.run(list(argv), limit_as=limit_as, **kwargs)

    def capped() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit_as, limit_as))

    return subprocess.run(argv, preexec_fn=capped, **kwargs)  # noqa: PLW1509 - the cap


def route(client: Client) -> Callable[[], None]:
    """Route coord commands given to ``subprocess.run`` to ``client``'s server: the undo.
    What a forked command does to its own coord commands (the train's verify runs `coord
    todo run`: a fresh interpreter each, 1 CPU second, where a fork is a tenth of it)."""
    real = subprocess.run

    def run(*popenargs: Any, **kwargs: Any) -> Any:
        argv: Any = popenargs[0] if popenargs else kwargs.get("args")
        if len(popenargs) == 1 and routed(argv, kwargs):
            if client.serves(os.environ if kwargs.get("env") is None else kwargs["env"]):
                return client.run(list(argv), **kwargs)
        return real(*popenargs, **kwargs)

    subprocess.run = run

    def undo() -> None:
        subprocess.run = real

    return undo


def patch() -> Callable[[], None]:
    """Route coord commands given to ``subprocess.run`` to the fork server: the undo."""
    real = subprocess.run

    def run(*popenargs: Any, **kwargs: Any) -> Any:
        argv = popenargs[0] if popenargs else kwargs.get("args")
        if len(popenargs) == 1 and routed(argv, kwargs):
            server = _commands()
            if server.serves(os.environ if kwargs.get("env") is None else kwargs["env"]):
                return server.run(list(argv), **kwargs)
        return real(*popenargs, **kwargs)

    subprocess.run = run  # type: ignore[assignment]
    global _on
    _on = True

    def undo() -> None:
        global _server, _workers, _on
        subprocess.run = real  # type: ignore[assignment]
        with _lock:
            _on = False
            for server in (_server, _workers):
                if server is not None:
                    server.close()
            _server = _workers = None

    return undo
