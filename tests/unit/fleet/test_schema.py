"""`coord schema`: the catalog's JSON Schema accepts every example catalog of the repo
(ecosystem.yaml, the test fixtures, every catalog the docs show) and refuses what the
loader refuses: unknown keys, bad enums and ids, and the rules between fields a loader's
validator holds (a todo has a repo unless it is a template, a template has none; a wave
names repos or tags)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from coordination.catalog.loader import load_catalog
from coordination.cli.main import cli
from coordination.cli.schema import catalog_schema
from coordination.errors import CatalogError

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[3]
#: Every example catalog file in the repo: the one the demo copies, and the test fixtures.
EXAMPLES = [ROOT / "ecosystem.yaml", *sorted((ROOT / "tests").rglob("fixtures/*.yaml"))]


def docs_catalogs() -> list[tuple[str, str]]:
    """Every catalog the docs show: a ```yaml block that is a mapping with `version:`
    (the others are excerpts: a todo, a repo's keys), as (page:line, text)."""
    found = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        for m in re.finditer(r"^```ya?ml[^\n]*\n(.*?)^```", text, re.S | re.M):
            doc = yaml.safe_load(m.group(1))
            if isinstance(doc, dict) and "version" in doc:
                line = text[:m.start()].count("\n") + 2
                found.append((f"{page.relative_to(ROOT)}:{line}", m.group(1)))
    return found


def as_json(path: Path) -> Any:
    """The YAML document as JSON would hold it (dates become ISO text, as in a file
    an editor validates)."""
    return json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = catalog_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_catalog_is_valid(validator: Any, path: Path) -> None:
    load_catalog(path.read_bytes(), str(path))  # the loader takes it...
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(as_json(path))]
    assert errors == []  # ...and so does the schema


def test_the_docs_show_catalogs() -> None:
    pages = {where.split(":")[0] for where, _ in docs_catalogs()}
    assert {"docs/tutorials/first-sweep.md", "docs/explanation/catalog.md"} <= pages


@pytest.mark.parametrize("where, text", docs_catalogs(), ids=[w for w, _ in docs_catalogs()])
def test_every_catalog_the_docs_show_is_valid(validator: Any, where: str, text: str) -> None:
    doc = json.loads(json.dumps(yaml.safe_load(text), default=str))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert errors == [], where


def test_a_template_is_valid(validator: Any) -> None:
    doc = as_json(EXAMPLES[0])
    todo = doc["coordination"]["todos"][0]
    del todo["repo"]
    todo.update(for_each="tag:python", deps="follow")
    load_catalog(yaml.safe_dump(doc).encode(), "template.yaml")
    assert [e.message for e in validator.iter_errors(doc)] == []


def _bad(doc: dict[str, Any], what: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    todo = doc["coordination"]["todos"][0]
    if what == "unknown key":
        doc["repos"][0]["colour"] = "blue"
    elif what == "bad enum":
        doc["coordination"]["todos"][0]["status"] = "finished"
    elif what == "bad id":
        doc["coordination"]["todos"][0]["id"] = "TASK-1"
    elif what == "bad dependency type":
        doc["coordination"]["dependencies"][0]["type"] = "optional"
    elif what == "bad source line":
        doc["coordination"]["dependencies"][0]["source"] = {"file": "go.mod", "line": 0}
    elif what == "unknown top-level key":
        doc["repositories"] = []
    elif what == "todo with neither repo nor for_each":
        del todo["repo"]
    elif what == "todo with an empty repo":
        todo["repo"] = ""
    elif what == "template with a repo":
        todo["for_each"] = "tag:python"
    elif what == "deps without for_each":
        todo["deps"] = "follow"
    elif what == "instances without for_each":
        todo["instances"] = {"api": "completed"}
    elif what == "empty for_each":
        del todo["repo"]
        todo["for_each"] = ""
    elif what == "wave without repos or tags":
        doc["coordination"]["plans"][0]["waves"] = [{"name": "canary"}]
    elif what == "wave with empty repos":
        doc["coordination"]["plans"][0]["waves"] = [{"name": "canary", "repos": []}]
    return doc


@pytest.mark.parametrize("what", ["unknown key", "bad enum", "bad id", "bad dependency type",
                                  "bad source line", "unknown top-level key",
                                  "todo with neither repo nor for_each", "todo with an empty repo",
                                  "template with a repo", "deps without for_each",
                                  "instances without for_each", "empty for_each",
                                  "wave without repos or tags", "wave with empty repos"])
def test_it_refuses_what_the_loader_refuses(validator: Any, what: str) -> None:
    bad = _bad(as_json(EXAMPLES[0]), what)
    with pytest.raises(CatalogError):
        load_catalog(yaml.safe_dump(bad).encode(), "bad.yaml")
    assert list(validator.iter_errors(bad)), f"the schema let {what} through"


def test_the_schema_says_what_fields_are() -> None:
    schema = catalog_schema()
    defs = schema["$defs"]
    assert isinstance(defs, dict)
    assert defs["DependencyType"]["enum"] == ["runtime", "build", "dev", "test", "api"]
    assert defs["TodoStatus"]["enum"][0] == "pending"
    assert "description" in defs["DependencySource"]["properties"]["line"]
    assert defs["Repo"]["additionalProperties"] is False


def test_coord_schema_prints_it() -> None:
    out = CliRunner().invoke(cli, ["schema"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == json.loads(json.dumps(catalog_schema()))
