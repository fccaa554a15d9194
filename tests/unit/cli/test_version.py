"""`coord --version` is the installed package's version (importlib.metadata), and that
is pyproject's: the version the README documents (0.3; the 0.4 work is unreleased).
An editable install's metadata changes only on reinstall: after a version bump run
`pip install -e . --no-deps` before this test."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from coordination.cli.main import cli

pytestmark = pytest.mark.timeout(30)
ROOT = Path(__file__).resolve().parents[3]


def pyproject_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return str(tomllib.load(f)["project"]["version"])


def test_the_released_version_is_0_3() -> None:
    assert pyproject_version() == "0.3.0"


def test_coord_version_is_the_installed_metadata_and_pyproject() -> None:
    installed = importlib.metadata.version("coord")
    got = CliRunner().invoke(cli, ["--version"])
    assert got.exit_code == 0, got.output
    assert got.output.split()[-1] == installed, got.output
    assert installed == pyproject_version(), (
        f"the installed coord is {installed}, pyproject says {pyproject_version()}: "
        "reinstall (pip install -e . --no-deps)")
