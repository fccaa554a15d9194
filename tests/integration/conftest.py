"""Integration fixtures over the session's real ``redis-server`` (``redis_server`` in
tests/conftest.py, on a free port).

Without ``redis-server`` on PATH the integration tests are skipped, unless
``COORD_REQUIRE_REDIS=1`` (CI), where a missing server is a failure: a green
run must not silently mean "nothing ran".
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.servers import RedisServer

if TYPE_CHECKING:
    from tests.integration.change_repos import Repos, World
    from tests.integration.helpers import Cluster
    from tests.integration.sentinel_bed import SentinelBed

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration carries the ``integration`` marker."""
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def redis_url(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty database, and COORD_REDIS_URL pointing at it for this test."""
    if redis_server.proc.poll() is not None:
        pytest.fail("the session redis-server has exited", pytrace=False)
    client = redis_server.client()
    client.flushall()
    client.close()
    monkeypatch.setenv("COORD_REDIS_URL", redis_server.url)
    from coordination.settings import get_settings

    get_settings.cache_clear()
    yield redis_server.url
    get_settings.cache_clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Remember each phase's report on the item, so fixtures can tell a failed test."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(autouse=True)
def _fresh_workers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """`coord worker`s started afresh (not forked from a warm interpreter) in the chaos
    tier and where a test is marked ``fresh_workers``."""
    from tests.integration import helpers

    node = request.node
    if node.get_closest_marker("chaos") or node.get_closest_marker("fresh_workers"):
        monkeypatch.setattr(helpers, "FRESH_WORKERS", True)


@pytest.fixture
def cluster(redis_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Catalog, `coord worker` subprocesses and CLI processes of one test; all killed after it.

    When the test failed, the workers' log tails are printed (pytest shows them).
    """
    from tests.integration.helpers import Cluster, close_after_test

    c = Cluster(tmp_path, redis_url)
    try:
        yield c
    finally:
        close_after_test(request, [c])


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Any:
    """A headless Chromium driven by chromedriver (skipped without them; a failure under
    COORD_REQUIRE_REDIS=1), quit after the test; when the test failed, what its page
    showed and its console said are printed first (pytest shows them). Its temporary
    files go into a directory of its own, removed after it: Chromium leaves a directory
    of its singleton socket in $TMPDIR as it quits, one each test. (A short path: the
    socket's must fit a unix socket's 108 bytes, which a test's tmp_path does not.)"""
    import shutil
    import tempfile

    from tests.integration.browser import chromium, page_state

    browser_bin, driver_bin = chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser_bin
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,900"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the page's console
    tmp = tempfile.mkdtemp(prefix="coord-chromium-")
    try:
        driver = webdriver.Chrome(service=Service(driver_bin, env={**os.environ, "TMPDIR": tmp}),
                                  options=opts)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print(page_state(driver))
        driver.quit()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[SentinelBed]:
    """A Sentinel-watched Redis (a master, its replica, three sentinels), torn down after."""
    from tests.integration.sentinel_bed import SentinelBed

    b = SentinelBed(tmp_path / "bed")
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def change_world(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> World:
    """The five repos of ``CHAIN`` as remotes and checkouts, a change's catalog over them,
    and leases of 2 s."""
    from coordination.settings import get_settings
    from tests.integration.change_repos import CHAIN, World

    monkeypatch.setenv("COORD_LEASE_TTL", "2")
    get_settings.cache_clear()
    return World(tmp_path, CHAIN)


@pytest.fixture
def landing_world(cluster: Cluster) -> tuple[Cluster, Repos]:
    """The landing tests' three repos (tests/integration/landing.py) beside ``cluster``."""
    from tests.integration.change_repos import make_repos
    from tests.integration.landing import NAMES

    return cluster, make_repos(cluster.root, NAMES)
