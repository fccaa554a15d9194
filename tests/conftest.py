"""Shared fixtures. Integration fixtures (real redis-server) live in tests/integration/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "ecosystem.yaml"


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The catalog cache of the test run lives in a temp dir, not in ~/.cache.

    Set process-wide (subprocesses inherit it) for the whole session.
    """
    import os

    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


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
