"""The markers of a catalog's sweeps and the live overlay on reads
(coordination/catalog/reads/live.py); the real sweeps are in tests/integration/test_live_state.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coordination.catalog.reads import live, cached as reads
from coordination.catalog.file.store import CatalogStore
from tests.unit.support.cli import loaded

pytestmark = pytest.mark.timeout(60)

CATALOG = """version: 1
repos:
  - name: api
    path: api
coordination:
  plans:
    - id: PLAN-001
      title: p
  todos:
    - id: TODO-001
      task: a
      repo: api
      plan: PLAN-001
      run: "true"
    - id: TODO-002
      task: b
      repo: api
      plan: PLAN-001
      run: "true"
"""


@pytest.fixture
def live_eco(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "ecosystem.yaml"
    path.write_text(CATALOG)
    yield path
    live.set_overlay(path, {})


def test_marker_written_listed_and_removed(live_eco: Path) -> None:
    assert live.marked(live_eco) == {}
    assert live.mark(live_eco, "S-1", at=live.where(None, "coord"), plan="PLAN-001",
                     todos=["TODO-001"])
    got = live.marked(live_eco)
    assert got == {"S-1": {"where": "embedded:coord", "plan": "PLAN-001", "todos": ["TODO-001"]}}
    live.wait_mark(live_eco, "S-1", {"host": "h", "pid": 1})
    assert live.marked(live_eco)["S-1"]["waiter"] == {"host": "h", "pid": 1}
    assert live.marked(live_eco)["S-1"]["todos"] == ["TODO-001"]
    live.unmark(live_eco, "S-1")
    assert live.marked(live_eco) == {}
    live.unmark(live_eco, "S-1")  # gone already: nothing
    assert not live.mark(live_eco, "../x", at="a", plan=None, todos=[])  # never outside the dir


def test_where_never_holds_the_url() -> None:
    url = "redis://:s3cret@host:6379/0"
    at = live.where(url, "coord")
    assert "s3cret" not in at and at.startswith("redis:")
    assert at != live.where(url, "other") != live.where("redis://host:6379/1", "coord")


def test_reads_show_the_overlay_and_edits_read_the_file(live_eco: Path) -> None:
    store = CatalogStore(live_eco, cache_dir=None)
    assert store.load().todo("TODO-001").status == "pending"
    live.set_overlay(live_eco, {"TODO-001": "in_progress"})
    assert store.load().todo("TODO-001").status == "in_progress"
    assert store.load().todo("TODO-002").status == "pending"
    listed = reads.list_todos(live_eco, status="in_progress")
    assert [t["id"] for t in listed] == ["TODO-001"]
    # An edit sees the file (and writes nothing of the overlay).
    store.update(lambda doc: None)
    assert "in_progress" not in live_eco.read_text()
    live.set_overlay(live_eco, {})
    assert store.load().todo("TODO-001").status == "pending"
    assert [t["status"] for t in reads.list_todos(live_eco)] == ["pending", "pending"]


def test_a_read_with_no_marker_asks_no_redis(live_eco: Path) -> None:
    modules = loaded(live_eco, "todo", "list", every=True)
    assert "coordination.catalog.reads.live" in modules  # the cheap check ran
    assert not {"coordination.sweeps.writeback.live", "redis"} & modules
    live.mark(live_eco, "S-1", at="redis:0", plan=None, todos=[])  # another Redis's sweep
    modules = loaded(live_eco, "todo", "list", every=True)
    assert not {"coordination.sweeps.writeback.live", "redis"} & modules


def test_a_templates_running_instance_shows_in_its_instances(tmp_path: Path) -> None:
    path = tmp_path / "ecosystem.yaml"
    path.write_text(CATALOG.replace("version: 1\nrepos:\n", "version: 1\nrepos:\n"
                                    "  - name: web\n    path: web\n").replace(
        '      run: "true"\n    - id: TODO-002', '      run: "true"\n    - id: TODO-002\n'
        '      for_each: "api,web"').replace('      task: b\n      repo: api\n', '      task: b\n')
        + "      instances: {api: completed}\n")
    try:
        live.set_overlay(path, {"TODO-002[web]": "in_progress"})
        store = CatalogStore(path, cache_dir=None)
        got = store.load().todo("TODO-002")
        assert got is not None and got.instances == {"api": "completed", "web": "in_progress"}
        data = reads.catalog_data(path)["coordination"]["todos"][1]
        assert data["instances"] == {"api": "completed", "web": "in_progress"}
    finally:
        live.set_overlay(path, {})
