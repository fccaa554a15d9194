"""The schema `coord init` writes beside a new catalog comes from a cache named by the
code that makes it (issue #61: generating it was most of a small fleet's init): the
same text as generated, made again when that code changes, and never read from a
file of another code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordination.cli import schema

pytestmark = pytest.mark.timeout(60)


def test_the_cached_schema_is_the_generated_one(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    generated = json.dumps(schema.catalog_schema(), indent=2) + "\n"
    first = schema.schema_text()
    where = schema._cached_at()
    assert where is not None and where.read_text() == first == generated
    calls: list[int] = []
    real = schema.catalog_schema
    monkeypatch.setattr(schema, "catalog_schema", lambda: calls.append(1) or real())
    assert schema.schema_text() == generated and calls == []  # read, not made
    # another code (its tag changes): made again, the old one removed
    monkeypatch.setattr(schema.cache, "code_tag", lambda: "another code")
    assert schema.schema_text() == generated and calls == [1]
    assert [p.name for p in (tmp_path / "coord").glob("schema-*.json")] == [
        schema._cached_at().name]  # type: ignore[union-attr]
    assert not where.exists()


def test_without_a_cache_it_is_generated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema.cache, "default_cache_dir", lambda: None)
    assert json.loads(schema.schema_text())["title"].startswith("coord catalog")
