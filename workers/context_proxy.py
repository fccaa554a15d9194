"""A todo's door to `coord context`: its worker answers, the todo holds no key.

A todo's command holds no signing key and no Redis password
(:mod:`coordination.trust.secrets`), so its ``coord context`` cannot check a value's seal
or seal one itself. Its worker can: each worker process listens on a Unix socket
(``COORD_CONTEXT_SOCKET``, in a directory only its user may enter) and a todo's CLI asks
it there (:mod:`coordination.cli.context_client`), proving which run it is with
``COORD_RUN_TOKEN``, the key derived for its run (:mod:`coordination.trust.runkeys`; a
random token without a signing key), registered for as long as the run's command runs.

- a read is answered from the worker's own store, every seal checked with the signing
  key and each value's run checked against its sweep's signed spec
  (:mod:`coordination.sweeps.context_runs`): the todo reads only what passes;
- a write (set, delete) is the run's own scopes only (its sweep's, its plan's), and a
  set is sealed with the run's derived key, naming the run: it can pass for no other
  run's value, and no record any decision reads is checked against that key.

One request, one answer, each a JSON line. A token no run holds (a command left behind
after its run ended) is answered "no such run".
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import secrets
import socket
import socketserver
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coordination.processes import alive
from coordination.runtime.context import Runtime
from coordination.runtime.shared_context import (
    KINDS,
    VALUE_CAP,
    ContextRefused,
    ContextStore,
    check_key,
)
from coordination.sweeps.context_runs import run_check
from coordination.trust.runkeys import CONTEXT_SOCKET_ENV, RUN_TOKEN_ENV, RunId, run_key
from workers.execute import todo_user

log = logging.getLogger("coord.context")

#: The longest request read (a value at its cap, every character escaped, and the rest).
REQUEST_CAP = 6 * VALUE_CAP + 4096
#: Operations a todo may ask for.
OPS = ("get", "set", "list", "delete")


@dataclass(frozen=True)
class _Served:
    rt: Runtime
    run: RunId

    @functools.cached_property
    def store(self) -> ContextStore:
        """Made at its run's first request, off its todo's path: most todos make none
        (issue #82)."""
        return self.rt.shared_context(runs=run_check(self.rt))


class ContextProxy:
    """This process's context service: the runs it answers, and its socket."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, _Served] = {}
        self._server: socketserver.UnixStreamServer | None = None
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.path = ""

    def serve(self, rt: Runtime, run: RunId) -> tuple[str, dict[str, str]]:
        """Answer ``run`` until :meth:`forget`: its token and what its command's
        environment gets (the socket, the token)."""
        keys = rt.settings.signing_keys
        token = run_key(keys[0], run) if keys else secrets.token_hex(32)
        with self._lock:
            self._listen()
            self._runs[token] = _Served(rt, run)
        return token, {CONTEXT_SOCKET_ENV: self.path, RUN_TOKEN_ENV: token}

    def forget(self, token: str) -> None:
        with self._lock:
            self._runs.pop(token, None)

    def _listen(self) -> None:
        """The socket of this process (a forked child makes its own)."""
        if self._server is not None and self._pid == os.getpid():
            return
        self._runs = {}  # (a parent's, before the fork: not this process's)
        where = _private_dir() / f"{os.getpid()}.sock"
        try:
            where.unlink()  # a process of the same id before this one
        except FileNotFoundError:
            pass
        server = _Server(str(where), _Handler)
        user = todo_user()
        if user is not None:  # --todo-user: its todos (that user's group) connect
            _share(where, user.gid)
        server.proxy = self
        thread = threading.Thread(target=_serve, args=(server, where), name="context-proxy",
                                  daemon=True)
        thread.start()
        self._server, self._thread, self._pid, self.path = server, thread, os.getpid(), str(where)
        atexit.register(_remove, where)

    def leave(self) -> None:
        """This process's socket removed, as it ends by ``os._exit`` (a forked worker
        process: no exit handler runs there); nothing else is stopped."""
        if self._server is not None and self._pid == os.getpid():
            _remove(Path(self.path))

    def close(self) -> None:
        """Stop serving (this process's socket removed, its thread ended); the next
        :meth:`serve` listens again. A worker's process ends without it; a process that
        ran todos in-process and goes on to other work (tests) calls it."""
        with self._lock:
            server, thread, mine = self._server, self._thread, self._pid == os.getpid()
            self._server, self._thread, self._runs = None, None, {}
        if server is None or not mine:
            return
        server.shutdown()
        server.server_close()
        _remove(Path(self.path))
        if thread is not None:
            thread.join(timeout=5)

    def answer(self, raw: bytes) -> dict[str, Any]:
        """One request's answer (never raises)."""
        try:
            req = json.loads(raw)
        except ValueError:
            return _no("usage", "not a JSON request")
        if not isinstance(req, dict) or req.get("op") not in OPS:
            return _no("usage", f"unknown request (one of {', '.join(OPS)})")
        with self._lock:
            served = self._runs.get(str(req.get("token") or ""))
        if served is None:
            return _no("error", "no run of this worker holds that token (its command "
                       "ended, or this is not a todo of this worker)")
        try:
            return {"ok": True, "result": _do(served, req)}
        except ContextRefused as exc:
            return _no("refused", str(exc))
        except _Usage as exc:
            return _no("usage", str(exc))
        except Exception as exc:  # noqa: BLE001 - the todo is told; the worker goes on
            log.warning("context request of %s failed", served.run, exc_info=True)
            return _no("error", f"{type(exc).__name__}: {exc}")


class _Usage(ValueError):
    """A request the todo may not make (a scope not its own)."""


def _no(kind: str, message: str) -> dict[str, Any]:
    return {"ok": False, "kind": kind, "message": message}


def _do(served: _Served, req: dict[str, Any]) -> Any:
    """The request carried out for ``served``'s run."""
    op, scope, store, run = req["op"], str(req.get("scope") or ""), served.store, served.run
    kind, _, ident = scope.partition(":")
    if kind not in KINDS or not ident or check_key(ident) is not None:
        raise _Usage(f"bad scope {scope[:80]!r}")
    key = str(req.get("key") or "")
    if op != "list" and check_key(key) is not None:
        raise _Usage(str(check_key(key)))
    if op == "get":
        return store.get(scope, key)
    if op == "list":
        return store.entries(scope)
    if scope not in (f"sweep:{run.sweep}", f"plan:{run.plan}"):
        raise _Usage(f"{run} writes only its own scopes (sweep:{run.sweep}, "
                     f"plan:{run.plan}), not {scope}")
    if op == "delete":
        return store.delete(scope, key)
    ttl = req.get("ttl")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float))
                            or not 0 < ttl < float("inf")):
        raise _Usage(f"ttl {ttl!r} is not a positive number of seconds")
    value = req.get("value")
    if not isinstance(value, str) or len(value.encode()) > VALUE_CAP:
        raise _Usage("the value is not JSON text under the cap")
    return store.set(scope, key, value, ttl=ttl, by=run)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    proxy: ContextProxy


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.connection.settimeout(30)
        raw = self.rfile.readline(REQUEST_CAP)
        reply = self.server.proxy.answer(raw)
        self.wfile.write(json.dumps(reply, separators=(",", ":"), default=str).encode()
                         + b"\n")


def _serve(server: _Server, own: Path) -> None:
    """The service's thread: the sockets that processes gone left behind removed (see
    :func:`remove_stale`), then requests answered until shutdown."""
    try:
        remove_stale(own.parent, own.name)
    except OSError:  # (the directory went: nothing to tidy)
        pass
    server.serve_forever()


#: Sockets removed at most by one process as it starts serving.
STALE_LIMIT = 256


def remove_stale(directory: Path, own: str, limit: int = STALE_LIMIT) -> int:
    """Remove (``limit`` at most) the sockets in ``directory`` (``<pid>.sock``, other
    than ``own``) of processes that ended without removing theirs (SIGKILL, the OOM
    killer): no process of that id runs, and no one listens on it. Returns how many
    went. A worker process lists the directory once, as it starts serving."""
    gone = 0
    with os.scandir(directory) as entries:
        for entry in entries:
            if gone >= limit:
                break
            pid, dot, ext = entry.name.partition(".")
            if entry.name == own or ext != "sock" or not dot or not pid.isdigit():
                continue
            if alive(int(pid)) or _listened(entry.path):
                continue  # (a process of another pid namespace sharing this directory)
            try:
                os.unlink(entry.path)
                gone += 1
            except OSError:
                pass
    return gone


def _listened(path: str) -> bool:
    """Does a process accept connections on the socket at ``path``?"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError:
            return True  # (cannot tell: left alone)
        return True


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _share(sock: Path, gid: int) -> None:
    """Let the group ``gid`` (a worker's todo user's) connect to ``sock``: the directory
    passable (0710) and the socket writable (0660) by that group, no one else. A
    request still proves its run with its token."""
    os.chown(sock.parent, -1, gid)
    os.chmod(sock.parent, 0o710)
    os.chown(sock, -1, gid)
    os.chmod(sock, 0o660)


def _private_dir() -> Path:
    """``coord-ctx-<uid>`` in the temporary directory: this user's only (made so, or
    refused when another user made it, or it is a link)."""
    d = Path(tempfile.gettempdir()) / f"coord-ctx-{os.getuid()}"
    if len(str(d)) > 80:  # (a socket's path is at most 107 bytes)
        d = Path("/tmp") / f"coord-ctx-{os.getuid()}"
    try:
        d.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(d)
    # (a group may pass through it: --todo-user's, whose todos connect: _share)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o067:
        raise OSError(f"{d} is not a directory of this user's only: coord's context "
                      "service will not listen there")
    return d


#: This process's service.
PROXY = ContextProxy()
