"""`coord plan ...` end to end in a subprocess: real exit codes, stdout purity, imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.support.catalogs import ROOT, catalog_data  # noqa: F401
from tests.unit.support.cli import plan_coord as coord
from tests.unit.support.cli import write_yaml as write

pytestmark = pytest.mark.timeout(120)


def one_json(out: str) -> Any:
    """stdout holds exactly one JSON document and nothing else."""
    return json.loads(out)


@pytest.fixture
def example_file(tmp_path: Path) -> Path:
    return write(tmp_path, yaml.safe_load((ROOT / "ecosystem.yaml").read_text()))


def test_list_and_filters(example_file: Path) -> None:
    r = coord(example_file, "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = one_json(r.stdout)
    assert [(p["id"], p["todos"], p["completed"]) for p in rows] == [("PLAN-001", 5, 0)]
    assert one_json(coord(example_file, "list", "--status", "draft", "--json").stdout) == []
    assert one_json(coord(example_file, "list", "--repo", "web", "--json").stdout)[0]["id"] == \
        "PLAN-001"


def test_show_json_has_levels_and_critical_path(example_file: Path) -> None:
    r = coord(example_file, "show", "PLAN-001", "--json")
    assert r.returncode == 0, r.stderr
    doc = one_json(r.stdout)
    assert doc["levels"] == [["TODO-002"], ["TODO-003", "TODO-004"], ["TODO-005", "TODO-006"]]
    assert doc["critical_path"] == ["TODO-002", "TODO-003", "TODO-005"]
    assert [m["id"] for m in doc["milestones"]] == ["MS-001", "MS-002"]
    human = coord(example_file, "show", "PLAN-001")
    assert "critical path (17h): TODO-002 -> TODO-003 -> TODO-005" in human.stdout


def test_validate_ok_and_unknown_plan(example_file: Path) -> None:
    r = coord(example_file, "validate", "PLAN-001", "--json")
    assert r.returncode == 0 and one_json(r.stdout)["ok"] is True
    bad = coord(example_file, "validate", "PLAN-404", "--json")
    assert bad.returncode == 2 and bad.stdout == ""
    assert "unknown plan 'PLAN-404'" in bad.stderr


def test_validate_errors_exit_1_with_one_json_document(tmp_path: Path) -> None:
    data = catalog_data(4, [(0, 1), (1, 2), (2, 1)], overrides={3: {"run": None}})
    r = coord(write(tmp_path, data), "validate", "PLAN-1", "--json")
    assert r.returncode == 1, r.stderr
    doc = one_json(r.stdout)
    # the cycle, the missing command, and the two todos the cycle leaves unreachable
    assert doc["ok"] is False and doc["errors"] == 4
    assert sorted(f["ids"][0] for f in doc["findings"] if f["code"] == "unreachable") == [
        "TODO-1", "TODO-2"]
    by_code = {f["code"]: f for f in doc["findings"]}
    assert by_code["cycle"]["message"] == "cycle: TODO-1 -> TODO-2 -> TODO-1"
    assert by_code["no-run"]["ids"] == ["TODO-3"]
    assert "error" in r.stderr
    human = coord(write(tmp_path, data), "validate", "PLAN-1")
    assert human.returncode == 1 and "TODO-1 -> TODO-2 -> TODO-1" in human.stdout


def test_graph_formats(example_file: Path) -> None:
    mer = coord(example_file, "graph", "PLAN-001", "--format", "mermaid")
    assert mer.returncode == 0 and mer.stdout.startswith("flowchart LR")
    assert 'subgraph repo_api["api"]' in mer.stdout and "TODO_002 --> TODO_003" in mer.stdout
    dot = coord(example_file, "graph", "PLAN-001", "--format", "dot")
    assert dot.stdout.startswith('digraph "PLAN-001"') and '"cluster_api"' in dot.stdout
    text = coord(example_file, "graph", "PLAN-001", "--format", "text")
    assert "[libcore]" in text.stdout and "* TODO-002" in text.stdout
    data = one_json(coord(example_file, "graph", "PLAN-001", "--json").stdout)
    assert {"from": "TODO-002", "to": "TODO-003", "critical": True} in data["edges"]
    assert len(data["nodes"]) == 5


def test_graph_of_a_cycle_still_draws(tmp_path: Path) -> None:
    r = coord(write(tmp_path, catalog_data(2, [(0, 1), (1, 0)])), "graph", "PLAN-1",
              "--format", "text")
    assert r.returncode == 0 and "unavailable" in r.stdout


def test_dry_run_json_and_nothing_else(example_file: Path) -> None:
    r = coord(example_file, "sweep", "PLAN-001", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    doc = one_json(r.stdout)
    assert doc["levels"] == [["TODO-002"], ["TODO-003", "TODO-004"], ["TODO-005", "TODO-006"]]
    assert doc["critical_path"] == ["TODO-002", "TODO-003", "TODO-005"]
    assert doc["queues"]["TODO-005"] == "coord.repo.web"
    assert doc["todos"] == 5 and doc["skipped"] == [] and doc["blockers"] == []
    assert set(doc) >= {"plan", "strategy", "critical_hours", "total_hours"}
    human = coord(example_file, "sweep", "PLAN-001", "--dry-run")
    assert "nothing enqueued" in human.stdout and "coord.repo.libcore" in human.stdout


def test_a_dry_run_of_a_never_swept_catalog_starts_no_server(tmp_path: Path) -> None:
    """Embedded, and nothing was ever recorded: the todos without an estimate have no runs
    to read, so the dry run starts no redis-server (no server directory appears beside the
    catalog)."""
    from coordination.connection.embedded_server import server_dir

    path = write(tmp_path, catalog_data(2, [(0, 1)]))  # no estimated_hours
    r = coord(path, "sweep", "PLAN-1", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    assert one_json(r.stdout)["todos"] == 2
    assert not server_dir(path).exists()


def test_reads_of_a_never_swept_catalog_refuse_and_start_no_server(tmp_path: Path) -> None:
    """Embedded, and nothing was ever recorded: an unknown sweep's status and a todo's
    logs (followed or not) are refused (exit 2, saying why) without starting a server,
    so no server directory appears beside the catalog."""
    from coordination.connection.embedded_server import server_dir
    from tests.unit.support.cli import clean_error
    from tests.unit.support.cli import coord as coord_any

    path = write(tmp_path, catalog_data(2, [(0, 1)]))
    for args, said in [(("sweep", "status", "NOPE"), "unknown sweep 'NOPE'"),
                       (("sweep", "status", "NOPE", "--json"), "unknown sweep 'NOPE'"),
                       (("logs", "TODO-1"), "no logs of TODO-1"),
                       (("logs", "TODO-1", "--follow"), "no logs of TODO-1"),
                       (("events", "--sweep", "NOPE"), "unknown sweep 'NOPE'")]:
        r = coord_any(path, *args)
        clean_error(r, 2)
        assert said in r.stderr and "no sweep has run from" in r.stderr, r.stderr
        assert not server_dir(path).exists(), args


def test_dry_run_skips_completed_and_reports_blockers(tmp_path: Path) -> None:
    data = catalog_data(3, [(0, 1), (1, 2)], issues=[{"id": "ISSUE-1", "title": "open"}],
                        overrides={0: {"status": "completed"},
                                   2: {"blocked_by": ["TODO-1", "ISSUE-1"]}})
    data["coordination"]["todos"].append(
        {"id": "TODO-9", "task": "elsewhere", "repo": "api", "status": "failed"})
    data["coordination"]["todos"][1]["blocked_by"].append("TODO-9")
    path = write(tmp_path, data)
    blocked = coord(path, "sweep", "PLAN-1", "--dry-run", "--json")
    assert blocked.returncode == 2 and blocked.stdout == ""
    assert "ISSUE-1" in blocked.stderr and "TODO-9" in blocked.stderr
    assert "--ignore-blockers" in blocked.stderr
    r = coord(path, "sweep", "PLAN-1", "--dry-run", "--ignore-blockers", "--json")
    assert r.returncode == 0, r.stderr
    doc = one_json(r.stdout)
    assert doc["skipped"] == ["TODO-0"] and doc["levels"] == [["TODO-1"], ["TODO-2"]]
    assert sorted(b["blocker"] for b in doc["blockers"]) == ["ISSUE-1", "TODO-9"]


def test_dry_run_of_a_cycle_is_bad_input(tmp_path: Path) -> None:
    r = coord(write(tmp_path, catalog_data(3, [(0, 1), (1, 2), (2, 0)])),
              "sweep", "PLAN-1", "--dry-run", "--json")
    assert r.returncode == 2 and r.stdout == ""
    assert "TODO-0 -> TODO-1 -> TODO-2 -> TODO-0" in r.stderr


def test_planning_commands_do_not_import_networkx_unless_a_plan_has_a_cycle(
        example_file: Path, tmp_path: Path) -> None:
    """Planning runs on coord's own small graph (coordination.planner.digraph); networkx
    is loaded only to report the cycles of a plan that has some."""
    code = (
        "import sys\n"
        "from coordination.cli.main import cli\n"
        "for args in (['plan', 'validate', 'PLAN-001', '--json'],\n"
        "             ['plan', 'show', 'PLAN-001', '--json'],\n"
        "             ['plan', 'graph', 'PLAN-001'],\n"
        "             ['plan', 'sweep', 'PLAN-001', '--dry-run', '--json']):\n"
        "    cli.main(['--file', sys.argv[1], *args], standalone_mode=False)\n"
        "    assert 'networkx' not in sys.modules, args\n"
        "from coordination.errors import ValidationFailed\n"
        "try:\n"
        "    cli.main(['--file', sys.argv[2], 'plan', 'validate', 'PLAN-1'], standalone_mode=False)\n"
        "except ValidationFailed:\n"
        "    pass\n"
        "assert 'networkx' in sys.modules, 'the cycle report uses networkx'\n"
    )
    (tmp_path / "cyclic").mkdir()
    cyclic = write(tmp_path / "cyclic", catalog_data(3, [(0, 1), (1, 2), (2, 0)]))
    r = subprocess.run([sys.executable, "-c", code, str(example_file), str(cyclic)],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "TODO-0 -> TODO-1 -> TODO-2 -> TODO-0" in r.stdout + r.stderr


def test_light_commands_do_not_import_celery_or_networkx(example_file: Path) -> None:
    code = (
        "import sys\n"
        "from coordination.cli.main import cli\n"
        "for args in (['plan', 'list', '--json'],):\n"
        "    cli.main(['--file', sys.argv[1], *args], standalone_mode=False)\n"
        "assert 'networkx' not in sys.modules, 'networkx'\n"
        "cli.main(['--file', sys.argv[1], 'plan', 'sweep', 'PLAN-001', '--dry-run', '--json'],"
        " standalone_mode=False)\n"
        "assert 'celery' not in sys.modules, 'celery'\n"
    )
    r = subprocess.run([sys.executable, "-c", code, str(example_file)], capture_output=True,
                       text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
