"""Unit-tier fixtures: the runtime a test runs on, and one Redis client per backend.

``rt`` is a fresh runtime on fakeredis (what embedded mode's stand-in is). Its variants
are marks, not second definitions: ``@pytest.mark.rt(stub=True)`` dispatches to
:class:`StubApp` (messages recorded, none sent), ``env={...}`` sets COORD_* variables
before it is made, ``settings={...}`` overrides settings after. ``signed_rt`` is a
runtime whose processes seal what they write with COORD_SIGNING_KEY, ``keyed_rt`` one
that also requires it (COORD_REQUIRE_SIGNED=1); both take ``@pytest.mark.signed(key=...,
stub=...)``.

``redis_client`` runs a test on fakeredis (what embedded mode uses) and on a real
``redis-server`` (the session server of tests/conftest.py), as dramatiq does: the
Lua scripts and key semantics must agree on both.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import fakeredis
import psutil
import pytest
import redis

from coordination.runtime.context import Runtime
from tests.unit.support.sweeps import (
    dropped_after,
    fresh_runtime,
    stub_dispatching,
    write_catalog,
)

ROOT = Path(__file__).resolve().parents[2]


def _runtime(monkeypatch: pytest.MonkeyPatch, *, stub: bool = False,
             env: dict[str, str] | None = None,
             settings: dict[str, Any] | None = None) -> Iterator[Runtime]:
    """A fresh runtime made after ``env`` is set; the process-wide runtime, embedded
    state and settings dropped after."""
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    runtime = fresh_runtime()
    assert runtime.settings.embedded
    if settings:
        from coordination.settings import get_settings

        # The full settings' copy (the runtime's own may be the defaults' plain copy).
        runtime = dataclasses.replace(
            runtime, settings=get_settings().model_copy(update=settings))
    if stub:
        stub_dispatching(runtime)
    with dropped_after(runtime):
        yield runtime


def _marked(request: pytest.FixtureRequest, name: str) -> dict[str, Any]:
    mark = request.node.get_closest_marker(name)
    return dict(mark.kwargs) if mark else {}


@pytest.fixture
def rt(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """A fresh runtime on fakeredis; ``@pytest.mark.rt(stub=, env=, settings=)`` for a
    variant."""
    yield from _runtime(monkeypatch, **_marked(request, "rt"))


def _signed(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
            **env: str) -> Iterator[Runtime]:
    opts = _marked(request, "signed")
    env = {"COORD_SIGNING_KEY": opts.pop("key"), **env}
    yield from _runtime(monkeypatch, env=env, **opts)


@pytest.fixture
def signed_rt(request: pytest.FixtureRequest,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """A runtime (and its in-process workers) with COORD_SIGNING_KEY, the key of
    ``@pytest.mark.signed(key=..., stub=...)``."""
    yield from _signed(request, monkeypatch)


@pytest.fixture
def keyed_rt(request: pytest.FixtureRequest,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """A runtime (and its in-process workers) with COORD_SIGNING_KEY (the key of
    ``@pytest.mark.signed(key=..., stub=...)``) and COORD_REQUIRE_SIGNED=1."""
    yield from _signed(request, monkeypatch, COORD_REQUIRE_SIGNED="1")


@pytest.fixture(params=["fakeredis", "redis-server"])
def redis_backend(request: pytest.FixtureRequest) -> Iterator[tuple[str, Any]]:
    """(backend name, a client class and kwargs maker) for each backend; the real one
    needs redis-server (skipped without it, a failure under COORD_REQUIRE_REDIS=1)."""
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()
        yield "fakeredis", lambda cls: cls(server=server, decode_responses=True)
        return
    if shutil.which("redis-server") is None and os.environ.get("COORD_REQUIRE_REDIS") != "1":
        pytest.skip("redis-server is not on PATH")
    srv = request.getfixturevalue("redis_server")
    probe = redis.Redis.from_url(srv.url)
    probe.flushall()
    probe.close()
    yield "redis-server", lambda cls: cls.from_url(srv.url, decode_responses=True)


@pytest.fixture
def fake_r() -> redis.Redis:
    """An empty fakeredis client of its own server."""
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


@pytest.fixture
def r(redis_backend: tuple[str, Any]) -> Iterator[redis.Redis]:
    """A client on each backend of ``redis_backend`` (an empty database), closed after."""
    name, make = redis_backend
    client: redis.Redis = make(fakeredis.FakeRedis if name == "fakeredis" else redis.Redis)
    yield client
    client.close()


@pytest.fixture
def signed(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
           rt: Runtime) -> Iterator[Runtime]:
    """``rt`` with COORD_SIGNING_KEY (the key of ``@pytest.mark.signed(key=...)``) set
    after it was made, its settings read again."""
    from coordination.settings import get_settings

    monkeypatch.setenv("COORD_SIGNING_KEY", _marked(request, "signed")["key"])
    get_settings.cache_clear()
    rt.settings = get_settings()
    yield rt
    get_settings.cache_clear()


@pytest.fixture
def one_todo(tmp_path: Path) -> Path:
    """A catalog of one repo (api) and one todo (TODO-001, `true`); its path."""
    return write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])


@pytest.fixture
def eco(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The test module's ``CATALOG`` text as ``tmp_path/ecosystem.yaml``; its path."""
    path = tmp_path / "ecosystem.yaml"
    path.write_text(request.module.CATALOG)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository (``tmp_path/r``, branch main) holding one empty commit."""
    r = tmp_path / "r"
    subprocess.run(["git", "init", "-q", "-b", "main", str(r)], check=True)
    subprocess.run(["git", "-C", str(r), "-c", "user.name=t", "-c", "user.email=t@t", "commit",
                    "-q", "--allow-empty", "-m", "seed"], check=True)
    return r


@pytest.fixture(scope="module")
def gen_ref() -> ModuleType:
    """docs/hooks/gen_ref.py (what generates the reference pages), imported."""
    from tests.docs.reference import load_gen_ref

    return load_gen_ref()


#: Seconds a thread or child process a test started has, once the test is done, to end
#: (one that is stopping: a server's thread after ``shutdown``, a child after its kill).
LEFT_DEADLINE = 5.0
#: Set (to a file's path) to list what each test leaves behind there instead of
#: failing it: how the leaking tests of the whole tier were found at once.
LEFT_REPORT = os.environ.get("COORD_TESTS_LEFT_REPORT")


def _children() -> dict[int, str]:
    """This process's live descendants (zombies, which have ended, aside): pid -> its
    command line."""
    out = {}
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out[p.pid] = " ".join(p.cmdline())[:120] or p.name()
        except psutil.Error:
            pass
    return out


#: What fixtures of a wider scope than a test's started (a module's server, the session's
#: redis-server): theirs to stop when their scope ends, not the test's that set them up.
_SCOPED_THREADS: set[threading.Thread] = set()
_SCOPED_CHILDREN: set[int] = set()


class _ScopedStarts:
    """Records what each fixture of a wider scope than a test's starts. A plugin of its
    own, not a hook of this conftest: pytest asks only the conftests above a fixture's
    node, and a session fixture's (``redis_server``, asked for from within a test's
    fixture) is the session, above this folder."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef[Any]) -> Iterator[None]:
        if fixturedef.scope == "function":
            yield
            return
        threads, children = set(threading.enumerate()), set(_children())
        yield
        _SCOPED_THREADS.update(t for t in threading.enumerate() if t not in threads)
        _SCOPED_CHILDREN.update(pid for pid in _children() if pid not in children)


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("coord-scoped-starts"):
        config.pluginmanager.register(_ScopedStarts(), "coord-scoped-starts")


def _process_helpers() -> set[int]:
    """Children a process keeps for its life, started on first use: the todo warden
    (workers/execute.py: it kills a todo's process group should this process die), and
    the fork server of `coord` commands (tests/clifork.py)."""
    execute = sys.modules.get("workers.execute")
    proc = getattr(getattr(execute, "_warden", None), "_proc", None)
    clifork = sys.modules.get("tests.clifork")  # the fork server of `coord` commands
    return ({proc.pid} if proc is not None else set()) | (clifork.pids() if clifork else set())


def _left(threads: set[threading.Thread], children: dict[int, str]) -> list[str]:
    """What runs now that did not before (nor was started by a wider fixture): threads
    (by name and target) and child processes (by pid and command)."""
    new = [t for t in threading.enumerate()
           if t not in threads and t not in _SCOPED_THREADS and t.is_alive()]
    out = [f"thread {t.name!r} ({getattr(t, '_target', None) or type(t).__name__})"
           for t in new]
    helpers = _process_helpers()
    out += [f"process {pid}: {cmd}" for pid, cmd in _children().items()
            if pid not in children and pid not in _SCOPED_CHILDREN and pid not in helpers]
    return out


@pytest.fixture(autouse=True)
def _nothing_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test stops every thread and child process it starts: what runs after it that
    did not before (given :data:`LEFT_DEADLINE` to end) fails it, named. Module
    fixtures' own autouse ones are stopped by then; no other conftest fixture of this
    folder is autouse (pytest sets a folder's up in the order of their names)."""
    threads, children = set(threading.enumerate()), _children()
    embedded = sys.modules.get("coordination.connection.embedded_server")
    joined = set(embedded.joined()) if embedded is not None else set()
    yield
    # An embedded server this process joined during the test is left as a CLI process
    # leaves it when it exits: released (the last member shuts it down, its reaper
    # thread then ends).
    embedded = sys.modules.get("coordination.connection.embedded_server")
    if embedded is not None:
        for url in set(embedded.joined()) - joined:
            embedded.release(url)
    # A todo run in this process (an in-process worker) starts its worker's context
    # service (workers/context_proxy.py: a socket and its thread); it is closed here, as
    # a worker's process ending closes it (a fork is refused beside a thread).
    proxy = sys.modules.get("workers.context_proxy")
    if proxy is not None:
        proxy.PROXY.close()
    deadline = time.monotonic() + LEFT_DEADLINE
    while (left := _left(threads, children)) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not left:
        return
    if LEFT_REPORT:
        with open(LEFT_REPORT, "a") as fh:
            fh.write(f"{request.node.nodeid}\t{'; '.join(left)}\n")
        return
    pytest.fail(f"{request.node.nodeid} left running after it: {'; '.join(left)} "
                "(stop what a test starts: shut servers down and join their threads, "
                "kill and wait for child processes)", pytrace=False)
