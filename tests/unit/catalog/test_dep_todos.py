"""`coord dep check --create-todos`: one todo per unsatisfied dependency in the
consumer's repo, labelled with the dependency's id so a second run finds it and makes
no duplicate (until it is completed), in one audited edit; --json lists each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.unit.support.cli import add_dep, coord_bare

pytestmark = pytest.mark.timeout(120)

BROKEN = (
    "    - id: DEP-004\n      consumer: web\n      provider: libcore\n"
    "      version_constraint: \">=2.0\"\n"
    "      validation:\n        command: \"echo 'Version: 1.0'\"\n"
    "        expected_pattern: \"^Version: 2\"\n"
)


def _todos(path: Path) -> list[dict]:
    return list(yaml.safe_load(path.read_text())["coordination"]["todos"])


def _audit(path: Path) -> list[dict]:
    log = path.parent / f".{path.name}.coord.audit.jsonl"
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def test_create_todos_is_idempotent_and_audited(example_catalog: Path) -> None:
    add_dep(example_catalog, BROKEN)
    before = len(_todos(example_catalog))
    r = coord_bare(example_catalog, "dep", "check", "--create-todos", "--json")
    assert r.returncode == 1, r.stderr  # still a failed check
    doc = json.loads(r.stdout)
    (made,) = doc["todos"]
    assert made["dependency"] == "DEP-004" and made["repo"] == "web" and made["created"]
    todos = _todos(example_catalog)
    assert len(todos) == before + 1
    new = todos[-1]
    assert new["id"] == made["todo"] and new["repo"] == "web"
    assert new["labels"] == ["dep:DEP-004"] and new["status"] == "pending"
    assert "DEP-004" in new["task"] and ">=2.0" in new["task"]
    ops = [e["op"] for e in _audit(example_catalog)]
    assert ops.count("dep_check_create_todos") == 1
    entry = [e for e in _audit(example_catalog) if e["op"] == "dep_check_create_todos"][0]
    assert made["todo"] in entry["ids"]

    # a second run finds it: nothing new, no new edit
    again = coord_bare(example_catalog, "dep", "check", "--create-todos", "--json")
    assert json.loads(again.stdout)["todos"] == [{**made, "created": False}]
    assert len(_todos(example_catalog)) == before + 1
    assert [e["op"] for e in _audit(example_catalog)].count("dep_check_create_todos") == 1
    human = coord_bare(example_catalog, "dep", "check", "--create-todos")
    assert f"open already: {made['todo']} in web for DEP-004" in human.stdout

    # completed, and broken again: a new one
    done = coord_bare(example_catalog, "todo", "complete", made["todo"])
    assert done.returncode == 0, done.stderr
    third = json.loads(coord_bare(example_catalog, "dep", "check", "--create-todos", "--json").stdout)
    assert third["todos"][0]["created"] and third["todos"][0]["todo"] != made["todo"]


def test_without_the_flag_or_when_satisfied_nothing_is_created(example_catalog: Path) -> None:
    before = _todos(example_catalog)
    r = coord_bare(example_catalog, "dep", "check", "--create-todos", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["todos"] == [] and _todos(example_catalog) == before
    add_dep(example_catalog, BROKEN)
    plain = coord_bare(example_catalog, "dep", "check", "--json")
    assert "todos" not in json.loads(plain.stdout)
    assert len(_todos(example_catalog)) == len(before)
