"""`coord plan sweep` (embedded), `coord sweep/events/worker/flower` in a subprocess.

Real exit codes, stdout purity (the sweep id line, or exactly one JSON
document), errors on stderr without a traceback, and no change to the catalog
when the input is refused. No redis-server: embedded mode, or a closed port.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.support.sweeps import write_catalog
from tests.unit.support.cli import clean_error, coord  # noqa: F401

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[3]
SWEEP_ID = re.compile(r"^PLAN-001-\d{14}-[0-9a-f]{4}$")
CLOSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def test_embedded_sweep_prints_only_the_sweep_id(example_catalog: Path) -> None:
    r = coord(example_catalog, "plan", "sweep", "PLAN-001", "--wait")
    assert r.returncode == 0, r.stderr
    assert SWEEP_ID.match(r.stdout.rstrip("\n")) and r.stdout.count("\n") == 1, repr(r.stdout)
    assert "succeeded" in r.stderr and "Traceback" not in r.stderr
    # --wait synced the outcome into the catalog.
    text = example_catalog.read_text()
    # Six todos (TODO-001 already was) and PLAN-001, all of whose todos now are.
    assert text.count("status: completed") == 7
    assert "# checkout, relative to this file" in text


def test_embedded_sweep_json_is_one_document(example_catalog: Path) -> None:
    r = coord(example_catalog, "plan", "sweep", "PLAN-001", "--strategy", "eager", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # exactly one document: json.loads refuses trailing data
    assert SWEEP_ID.match(doc["sweep_id"]) and doc["status"] == "succeeded"
    assert doc["strategy"] == "eager" and doc["plan"] == "PLAN-001"
    assert set(doc["todos"]) == {"TODO-002", "TODO-003", "TODO-004", "TODO-005", "TODO-006"}
    assert all(v["status"] == "succeeded" for v in doc["todos"].values())
    assert sorted(doc["synced"]["completed"]) == sorted(doc["todos"])


def test_sweep_list_quiet_prints_only_the_ids_newest_first(example_catalog: Path) -> None:
    ids = []
    for extra in ((), ("--again",)):
        r = coord(example_catalog, "plan", "sweep", "PLAN-001", "--wait", *extra)
        assert r.returncode == 0, r.stderr
        ids.append(r.stdout.strip())
    r = coord(example_catalog, "sweep", "list", "--limit", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ids[-1] + "\n"  # what ID=$(coord sweep list --limit 1 -q) reads
    assert coord(example_catalog, "sweep", "list", "-q").stdout.split() == ids[::-1]
    clean_error(coord(example_catalog, "sweep", "list", "--quiet", "--json"), 2)


def test_failing_plan_exits_1(tmp_path: Path) -> None:
    eco = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "exit 5"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
    ])
    r = coord(eco, "plan", "sweep", "PLAN-001", "--wait", "--json")
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    assert doc["status"] == "failed" and "TODO-001 failed" in doc["reason"]
    assert doc["todos"]["TODO-001"]["exit_code"] == 5
    assert doc["todos"]["TODO-002"]["status"] == "skipped"
    assert "Traceback" not in r.stderr
    assert "status: failed" in eco.read_text()  # synced: the failure is recorded


def test_unknown_plan_exits_2_and_changes_nothing(example_catalog: Path) -> None:
    before = example_catalog.read_bytes()
    r = coord(example_catalog, "plan", "sweep", "NOPE", "--wait")
    clean_error(r, 2)
    assert "NOPE" in r.stderr and r.stdout == ""
    assert example_catalog.read_bytes() == before


def test_cyclic_plan_exits_2(tmp_path: Path) -> None:
    eco = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true", "blocked_by": ["TODO-002"]},
        {"id": "TODO-002", "repo": "api", "run": "true", "blocked_by": ["TODO-001"]},
    ])
    before = eco.read_bytes()
    r = coord(eco, "plan", "sweep", "PLAN-001", "--json")
    clean_error(r, 2)
    assert "cycle" in r.stderr.lower() and r.stdout == ""
    assert eco.read_bytes() == before


@pytest.mark.parametrize(("args", "why"), [
    # nothing has run from the example catalog: said so, without starting its server
    (("sweep", "status", "PLAN-001-20260101000000-abcd"), "no sweep has run from"),
    (("sweep", "status", "PLAN-001-20260101000000-abcd", "--json"), "no sweep has run from"),
    (("events", "--sweep", "X", "--json"), "no sweep has run from"),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_embedded_unknown_sweep_exits_2(example_catalog: Path, args: tuple[str, ...],
                                        why: str) -> None:
    r = coord(example_catalog, *args)
    clean_error(r, 2)
    assert "unknown sweep" in r.stderr and why in r.stderr, r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize(("args", "said"), [
    (("events", "--json"), []), (("events",), "no events"),
    (("sweep", "list", "--json"), []), (("sweep", "list"), "no sweeps yet"),
    (("sweep", "list", "-q"), ""),
    (("schedule", "list", "--json"), {"schedules": [], "refused": []}),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_embedded_reads_with_no_sweep_yet_answer_without_starting_a_server(
        example_catalog: Path, args: tuple[str, ...], said: object) -> None:
    """Nothing has run from the catalog: a read that lists answers that there is nothing,
    and leaves no server directory beside the catalog (it started none)."""
    from coordination.connection.embedded_server import server_dir

    r = coord(example_catalog, *args)
    assert r.returncode == 0, r.stderr
    if isinstance(said, str):
        assert said in r.stdout if said else r.stdout == "", r.stdout
    else:
        assert json.loads(r.stdout) == said
    assert not server_dir(example_catalog).exists()


def test_embedded_schedule_list_with_no_sweep_yet_names_each_schedule(tmp_path: Path) -> None:
    from coordination.connection.embedded_server import server_dir
    from tests.unit.support.sweeps import with_plan

    eco = with_plan(write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "true"}]),
        schedule={"cron": "0 3 * * *", "timezone": "UTC"})
    r = coord(eco, "schedule", "list", "--json")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["schedules"]
    assert (row["plan"], row["cron"], row["last_fired"], row["last_skipped"]) == (
        "PLAN-001", "0 3 * * *", None, None)
    assert len(row["next"]) == 3, row
    assert not server_dir(eco).exists()


@pytest.mark.parametrize("args", [("sweep", "list"), ("sweep", "list", "--json"),
                                  ("sweep", "status", "X"), ("events",),
                                  ("history", "search", "x"), ("history", "trends", "--json")],
                         ids=" ".join)
def test_unreachable_redis_exits_1_without_traceback(
    example_catalog: Path, args: tuple[str, ...]
) -> None:
    r = coord(example_catalog, *args, env={"COORD_REDIS_URL": CLOSED}, timeout=60)
    clean_error(r, 1)
    assert "cannot reach Redis" in r.stderr and CLOSED in r.stderr
    assert r.stdout == ""


def test_flower_refuses_an_open_bind_without_auth(example_catalog: Path) -> None:
    r = coord(example_catalog, "flower", "--address", "0.0.0.0",
              env={"COORD_REDIS_URL": CLOSED})
    clean_error(r, 2)
    assert "COORD_FLOWER_AUTH" in r.stderr


def test_flower_argv() -> None:
    from coordination.cli.worker import flower_argv
    from coordination.errors import UsageError

    with pytest.raises(UsageError) as exc:
        flower_argv(port=5555, address="0.0.0.0", auth=None)
    assert "COORD_FLOWER_AUTH" in str(exc.value)
    with pytest.raises(UsageError):
        flower_argv(port=5555, address="0.0.0.0", auth="no-colon")
    args = flower_argv(port=5555, address="0.0.0.0", auth="admin:s3cret")
    assert args[:6] == [sys.executable, "-m", "celery", "-A", "workers.flower_app", "flower"]
    assert "--address=0.0.0.0" in args and "--port=5555" in args
    assert "--basic-auth=admin:s3cret" in args
    local = flower_argv(port=1234, address="127.0.0.1", auth=None)
    assert "--port=1234" in local and not any(a.startswith("--basic-auth") for a in local)


def test_flower_and_worker_need_redis(example_catalog: Path) -> None:
    clean_error(coord(example_catalog, "flower"), 2)
    r = coord(example_catalog, "worker", "--repo", "api")
    clean_error(r, 2)
    assert "COORD_REDIS_URL" in r.stderr


def test_worker_for_unknown_repo_names_known_repos(example_catalog: Path) -> None:
    r = coord(example_catalog, "worker", "--repo", "nope", env={"COORD_REDIS_URL": CLOSED})
    clean_error(r, 2)
    assert "nope" in r.stderr
    for repo in ("libcore", "api", "web", "jobs", "infra"):
        assert repo in r.stderr


def test_worker_with_missing_checkout_exits_2(example_catalog: Path, tmp_path: Path) -> None:
    r = coord(example_catalog, "worker", "--repo", "api", "--path", str(tmp_path / "absent"),
              env={"COORD_REDIS_URL": CLOSED})
    clean_error(r, 2)
    assert str(tmp_path / "absent") in r.stderr
