"""Catalog-tier fixtures: a private catalog cache, the commented catalog, and managers
over the example catalog."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordination.catalog.manager import CoordinationManager
from tests.unit.support.catalogs import COMMENTED


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the default cache dir out of the developer's home: XDG_CACHE_HOME in the
    test's tmp dir (not made); its path."""
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@pytest.fixture
def commented(tmp_path: Path) -> Path:
    """A copy of tests/unit/fixtures/commented.yaml (comments and blank lines a write must
    keep) as the test's catalog."""
    path = tmp_path / "ecosystem.yaml"
    shutil.copyfile(COMMENTED, path)
    return path


@pytest.fixture
def m(example_catalog: Path) -> CoordinationManager:
    """A manager over a copy of the example catalog."""
    return CoordinationManager(example_catalog)


@pytest.fixture
def mgr(example_catalog: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CoordinationManager]:
    """A manager over a copy of the example catalog, acting as COORD_USER=ana@example.com
    (the user its audit entries name)."""
    from coordination.settings import get_settings

    monkeypatch.setenv("COORD_USER", "ana@example.com")
    get_settings.cache_clear()
    yield CoordinationManager(example_catalog)
    get_settings.cache_clear()
