"""Shared fixtures of every tier: the test environment, and one real ``redis-server``
per session (on a free port) for the tests that use it. Integration fixtures (workers,
clusters) live in tests/integration/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import RedisServer, redis_binary, start_redis, stop_process

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "ecosystem.yaml"


def pytest_configure(config: pytest.Config) -> None:
    """The marks that choose a variant of a unit fixture (tests/unit/conftest.py); and,
    once per run (not in each pytest-xdist worker), the package compiled to bytecode."""
    config.addinivalue_line("markers", "rt(stub, env, settings): the variant of the rt fixture")
    config.addinivalue_line("markers", "signed(key, stub): the key (and dispatch) of signed_rt "
                            "and keyed_rt")
    if not hasattr(config, "workerinput"):
        compile_package()
        if getattr(config.option, "numprocesses", None):
            rewrite_tests(config)


def compile_package() -> None:
    """Every module of coordination/, workers/ and tests/ (not its fixtures: copies of
    real repositories) compiled to its ``__pycache__`` (those whose bytecode is older
    than their source). Under ``PYTHONDONTWRITEBYTECODE=1`` (set on the CI machine) no
    process writes bytecode, so every `coord` process a test starts compiled each module
    it imports that no earlier process had written: 0.3 of the 1.1 CPU seconds of a
    `coord change status`, thousands of processes a run. Python still reads bytecode
    that is there."""
    import compileall
    import re

    for package in ("coordination", "workers", "tests"):
        compileall.compile_dir(str(ROOT / package), quiet=1, workers=0,
                               rx=re.compile(r"[/\\]fixtures[/\\]"))


def rewrite_tests(config: pytest.Config) -> None:
    """The test modules a pytest-xdist run collects, rewritten for pytest's assertions
    once, here, into the cache pytest reads (``__pycache__/*-pytest-*.pyc``): every
    worker collects every module, and under ``PYTHONDONTWRITEBYTECODE=1`` each worker
    rewrote and compiled all of them afresh (20 of the 30 CPU seconds a worker took to
    collect the suite). pytest's own functions do the rewriting; should they change,
    nothing is written here and the workers rewrite as before."""
    try:
        from _pytest.assertion.rewrite import (PYC_TAIL, _read_pyc, _rewrite_test,
                                               _write_pyc, assertstate_key, get_cache_dir)
    except ImportError:
        return
    state = config.stash.get(assertstate_key, None)
    if state is None:  # (--assert=plain: nothing is rewritten)
        return
    ignored = [Path(p).resolve() for p in config.getoption("ignore") or ()]
    for fn in sorted(_test_modules(config)):
        if any(fn.is_relative_to(p) for p in ignored):
            continue
        pyc = get_cache_dir(fn) / (fn.name[:-3] + PYC_TAIL)
        if _read_pyc(fn, pyc) is None:
            pyc.parent.mkdir(exist_ok=True)
            source_hash, co = _rewrite_test(fn, config)
            _write_pyc(state, co, source_hash, pyc)


def _test_modules(config: pytest.Config) -> set[Path]:
    """The test modules and conftests under the run's paths (all of tests/ by default)."""
    found: set[Path] = set()
    for arg in config.args or [str(ROOT / "tests")]:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if path.is_file():
            found.add(path)
        elif path.is_dir():
            found.update(p for pattern in ("test_*.py", "conftest.py")
                         for p in path.rglob(pattern))
    return {p for p in found if p.is_relative_to(ROOT / "tests")}


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The catalog cache of the test run lives in a temp dir, not in ~/.cache.

    Set process-wide (subprocesses inherit it) for the whole session.
    """
    import os

    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


@pytest.fixture(autouse=True, scope="session")
def _coord_commands_forked() -> Iterator[None]:
    """`coord` commands a test runs (``subprocess.run([sys.executable, "-m",
    "coordination.cli.main", ...])``) are forked from a warm interpreter
    (tests/clifork.py); ``TEST_CLI_FORK=0``: started afresh, as before."""
    import os

    if os.environ.get("TEST_CLI_FORK", "1") == "0":
        yield
        return
    from tests.clifork import patch

    undo = patch()
    try:
        yield
    finally:
        undo()


@pytest.fixture(autouse=True, scope="session")
def _no_terminal_width() -> None:
    """No test, nor a process it starts, sees a terminal width (COLUMNS, LINES): with it
    coord lays tables out for a screen where the tests read a pipe's plain text, and
    pytest-xdist's workers are given COLUMNS=80. For the whole session, before any
    fixture copies the environment for the processes it starts."""
    import os

    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


@pytest.fixture(autouse=True, scope="session")
def _collector_not_paused() -> Iterator[None]:
    """A command run inside the pytest process (click's runner, ``main([...])``) leaves
    the cyclic collector alone: a `coord` process pauses it for its first seconds
    (coordination.cli.main.pause_gc), whose timer thread would outlive the test that ran
    the command, and a process running a thousand tests needs its collector. The pause
    is tested in processes of its own (tests/unit/cli/test_gc_pause.py)."""
    from coordination.cli import main

    paused, main._gc_paused = main._gc_paused, True
    try:
        yield
    finally:
        main._gc_paused = paused


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's COORD_* settings."""
    import os

    for name in list(os.environ):
        if name.startswith("COORD_") and name != "COORD_REQUIRE_REDIS":
            monkeypatch.delenv(name, raising=False)
    from coordination.settings import get_settings

    get_settings.cache_clear()


@pytest.fixture
def example_catalog(tmp_path: Path) -> Path:
    """A copy of the top-level example catalog, with its checkouts created."""
    from coordination.demo import prepare

    return prepare(tmp_path / "eco", EXAMPLE)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(redis_binary(), tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        stop_process(server.proc)


@pytest.fixture(params=["github", "gitlab", "gitea"])
def fake_forge(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A fake forge of each kind (tests/forges/), started on a free loopback port. At
    teardown the test fails if any request coord sent or response the fake gave did
    not match the forge's published description."""
    from tests.forges import FAKES

    fake = FAKES[request.param](tmp_path / "forge").start()
    try:
        yield fake
        fake.settle()
    finally:
        fake.stop()
    assert fake.errors == [], (
        "requests or responses that do not match the forge's description:\n"
        + "\n".join(fake.errors))
