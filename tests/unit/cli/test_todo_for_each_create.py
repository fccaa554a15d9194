"""`coord todo create --for-each SEL [--deps follow]` (#50): a template todo made through
coord (0.4 needed a hand edit), audited, its instances expanded at plan time in the
repos' dependency order; a selector that selects nothing, both or neither of --repo and
--for-each, and --deps without --for-each are refused (exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordination.catalog.audit import log as audit
from coordination.catalog.file.store import CatalogStore
from tests.unit.support.cli import coord

pytestmark = pytest.mark.timeout(60)

CATALOG = """\
version: 1
repos:
  - {name: web, path: web, tags: [python]}
  - {name: api, path: api, tags: [python]}
  - {name: docs, path: docs}
coordination:
  plans:
    - {id: PLAN-001, title: bump, status: active}
  todos: []
  dependencies:
    - {id: DEP-001, consumer: web, provider: api}
"""


def test_a_template_is_created_audited_and_expands_in_dependency_order(eco: Path) -> None:
    r = coord(eco, "todo", "create", "--task", "bump libcore", "--for-each", "tag:python",
              "--deps", "follow", "--plan", "PLAN-001", "--run", "true", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert (doc["id"], doc["for_each"], doc["deps"], doc["repo"]) == (
        "TODO-001", "tag:python", "follow", "")
    todo = CatalogStore(eco).load().todo("TODO-001")
    assert todo is not None and todo.for_each == "tag:python" and todo.deps == "follow"
    [entry] = audit.read(audit.log_path(eco))
    assert entry["op"] == "create_todo" and entry["ids"] == ["TODO-001"]
    assert entry["changes"][0]["fields"]["for_each"] == [None, "tag:python"]
    r = coord(eco, "plan", "show", "PLAN-001", "--json")
    assert r.returncode == 0, r.stderr
    r = coord(eco, "plan", "sweep", "PLAN-001", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    # api (the provider) before web; docs is not python
    assert "TODO-001[api]" in text and "TODO-001[web]" in text and "TODO-001[docs]" not in text
    assert text.index("TODO-001[api]") < text.index("TODO-001[web]")


@pytest.mark.parametrize("args, said", [
    (("--for-each", "tag:rust"), "for_each 'tag:rust': "),
    (("--repo", "api", "--for-each", "api"), "not both"),
    ((), "not neither"),
    (("--repo", "api", "--deps", "follow"), "deps: belongs to a template"),
])
def test_refused_with_nothing_written(eco: Path, args: tuple[str, ...], said: str) -> None:
    before = eco.read_bytes()
    r = coord(eco, "todo", "create", "--task", "t", *args)
    assert r.returncode == 2 and said in r.stderr, r.stderr
    assert eco.read_bytes() == before
    assert not audit.log_path(eco).exists() or audit.read(audit.log_path(eco)) == []
