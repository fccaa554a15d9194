"""The catalog, fixture and checks of the field-flag tests (test_field_flags.py: the 0.3
fields; test_field_flags_06.py: the 0.6 fields), run through both edit paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from coordination.catalog.audit import log as audit
from coordination.catalog.file.store import CatalogStore

CATALOG = """\
# the fleet
version: 1
repos:
  - name: api        # the service
    path: repos/api
    # who owns it: the platform team
    role: service
  - name: web
coordination:
  plans:
    - id: PLAN-001
      title: Bump libcore   # to 2.0
      # the plan's status, kept by hand
      status: active
      repos: [api, web]
  todos:
    - id: TODO-001
      task: Bump libcore in api   # first
      repo: api
      plan: PLAN-001
      run: make bump
      # after the run, the priority
      priority: high
    - id: TODO-002
      task: Sign-off
      repo: api
      plan: PLAN-001
# end of the catalog
"""


@pytest.fixture(params=["splice", "round-trip"])
def eco_both_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Path:
    """The catalog, edited by each of the store's two paths (an item spliced into the
    text, the whole file through ruamel): both must keep it and refuse alike."""
    from coordination.settings import get_settings

    monkeypatch.setenv("COORD_USER", "tester")  # no `git config` per audit entry
    monkeypatch.setenv("COORD_EDIT_SPLICE", "1" if request.param == "splice" else "0")
    get_settings.cache_clear()
    path = tmp_path / "ecosystem.yaml"
    path.write_text(CATALOG)
    return path


def entries(eco_both_paths: Path) -> list[dict[str, Any]]:
    log = audit.log_path(eco_both_paths)
    return audit.read(log) if log.exists() else []


def item(eco_both_paths: Path, kind: str, key: str) -> Any:
    """The item as the loader reads the file now (its model)."""
    cat = CatalogStore(eco_both_paths).load()
    return {"todo": cat.todo, "plan": cat.plan, "repo": cat.repo}[kind](key)


@dataclass
class Case:
    """One flag: ``args`` set ``field`` of ``kind``/``key`` to ``value`` (the model's
    JSON) by adding ``lines`` to the file; ``clear`` takes it out again; ``bad`` is
    refused with ``says`` (the loader's words) at ``where`` (the field path)."""

    kind: str
    key: str
    args: tuple[str, ...]
    field: str
    value: Any
    lines: tuple[str, ...]
    clear: tuple[tuple[str, ...], ...]
    bad: tuple[str, ...] | None = None
    says: str = ""
    where: str = ""

    @property
    def command(self) -> tuple[str, ...]:
        noun = {"todo": ("todo", "update"), "plan": ("plan", "update"),
                "repo": ("repo", "update")}[self.kind]
        return (*noun, self.key)


def _dumped(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(mode="json", by_alias=True)
    if isinstance(value, list):
        return [_dumped(v) for v in value]
    return value
