"""Catalog commands stay light: no Celery, kombu or networkx, and Rich only to render.

`coord todo list` is typed all day; importing Celery would cost it most of a
second. Each case runs in a fresh interpreter and reports sys.modules as the
command exits.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.unit.support.cli import HEAVY, PROBE, loaded  # noqa: F401

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("args", [
    ("todo", "list"), ("todo", "list", "--json"), ("issue", "list", "--json"),
    ("issue", "create", "--title", "x", "--json"), ("dep", "check", "--json"),
    ("repo", "blocking", "web"), ("todo", "show", "TODO-002"),
], ids=" ".join)
def test_catalog_commands_import_no_runtime(example_catalog: Path, args: tuple[str, ...]) -> None:
    modules = loaded(example_catalog, *args)
    assert "coordination" in modules  # the probe saw the command run
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_json_output_does_not_import_rich(example_catalog: Path) -> None:
    assert "rich" not in loaded(example_catalog, "todo", "list", "--json")
    assert "rich" in loaded(example_catalog, "todo", "list")


def test_only_coord_mcp_loads_the_mcp_sdk(example_catalog: Path) -> None:
    assert "mcp" not in loaded(example_catalog, "todo", "list")
    assert "mcp" not in loaded(example_catalog, "--help")
    assert "mcp" in loaded(example_catalog, "mcp", "--help")  # the probe does see it
