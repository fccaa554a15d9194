"""`coord repo list --order`: the repos in the order dependency-ordered work runs them,
a cycle's group marked and warned, `--cycles error` refused (exit 2, with a hint that
works), `--order-by` without `--order` a usage error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[3]
CATALOG = """\
version: 1
repos:
  - {name: cli}
  - {name: lib-a}
  - {name: lib-b}
  - {name: site}
coordination:
  dependencies:
    - {id: DEP-001, consumer: cli, provider: lib-a}
    - {id: DEP-002, consumer: cli, provider: lib-b}
    - {id: DEP-003, consumer: lib-a, provider: cli, type: dev, source: {file: package.json, line: 12}}
    - {id: DEP-004, consumer: site, provider: cli}
"""
CYCLE = ("dependency cycle among cli, lib-a: cli -> lib-a (DEP-001 runtime); "
         "lib-a -> cli (DEP-003 dev, package.json:12)")


def coord(catalog: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog), *args],
        cwd=catalog.parent, capture_output=True, text=True, timeout=50,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )


def test_the_default_order_leaves_dev_edges_out(eco: Path) -> None:
    r = coord(eco, "repo", "list", "--order", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["levels"] == [[["lib-a"], ["lib-b"]], [["cli"]], [["site"]]]
    assert [(x["name"], x["level"], x["group"]) for x in doc["repos"]] == [
        ("lib-a", 0, None), ("lib-b", 0, None), ("cli", 1, None), ("site", 2, None)]
    assert doc["warnings"] == [] and doc["groups"] == [] and doc["cycle_edges_dropped"] == []


def test_order_by_dev_makes_a_group_marked_and_warned(eco: Path) -> None:
    r = coord(eco, "repo", "list", "--order", "--order-by", "runtime,dev")
    assert r.returncode == 0, r.stderr
    assert CYCLE in " ".join(r.stderr.split())
    rows = [[c.strip() for c in ln.strip("│ ").split("│")] for ln in r.stdout.splitlines()
            if ln.strip("│ ")[:1].isdigit()]
    # cli needs lib-b: the group after it, site after the group; inside the group cli's
    # runtime edge to lib-a still orders (lib-a's dev edge back closes the cycle)
    assert [row[:3] for row in rows] == [["0", "lib-b", ""], ["1", "lib-a", "cycle 1"],
                                         ["1", "cli", "cycle 1"], ["2", "site", ""]]
    doc = json.loads(coord(eco, "repo", "list", "--order", "--order-by", "runtime,dev",
                           "--json").stdout)
    assert doc["groups"] == [["cli", "lib-a"]] and doc["warnings"][0].startswith(CYCLE)
    assert doc["levels"] == [[["lib-b"]], [["lib-a", "cli"]], [["site"]]]
    assert doc["cycle_edges_dropped"] == [{"consumer": "lib-a", "provider": "cli",
                                           "id": "DEP-003", "type": "dev"}]


def test_cycles_error_refuses_and_its_hint_works(eco: Path) -> None:
    r = coord(eco, "repo", "list", "--order", "--order-by", "runtime,dev", "--cycles", "error")
    assert r.returncode == 2 and CYCLE in " ".join(r.stderr.split()), r.stderr
    assert "--cycles group" in r.stderr
    eco.write_text(CATALOG + "order: {by: [runtime, dev], cycles: error}\n")
    assert coord(eco, "repo", "list", "--order").returncode == 2
    assert coord(eco, "repo", "list", "--order", "--cycles", "group").returncode == 0


def test_order_flags_without_order_are_a_usage_error(eco: Path) -> None:
    r = coord(eco, "repo", "list", "--order-by", "runtime")
    assert r.returncode == 2 and "add --order" in r.stderr, r.stderr
    r = coord(eco, "repo", "list", "--order", "--order-by", "runtime,devv")
    assert r.returncode == 2 and "devv" in r.stderr, r.stderr
