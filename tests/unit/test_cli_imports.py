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

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("celery", "kombu", "networkx")

PROBE = """
import atexit, json, sys
def report():
    names = sorted({m.split('.')[0] for m in sys.modules})
    sys.stderr.write('\\nMODULES ' + json.dumps(names) + '\\n')
atexit.register(report)
from coordination.cli.main import main
main(['--file', sys.argv[1], *sys.argv[2:]])
"""


def loaded(catalog: Path, *args: str) -> set[str]:
    r = subprocess.run(
        [sys.executable, "-c", PROBE, str(catalog), *args],
        cwd=catalog.parent, capture_output=True, text=True, timeout=50,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode in (0, 1), r.stderr
    line = [x for x in r.stderr.splitlines() if x.startswith("MODULES ")][-1]
    return set(json.loads(line[len("MODULES "):]))


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
