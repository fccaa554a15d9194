"""`coord schema`: the catalog's JSON Schema accepts every example catalog of the repo
and refuses what the loader refuses (unknown key, bad enum, bad id)."""

from __future__ import annotations

import copy
import json
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
#: Every example catalog in the repo: the one the demo copies, and the test fixture.
EXAMPLES = [ROOT / "ecosystem.yaml", ROOT / "tests/unit/fixtures/commented.yaml"]


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


def _bad(doc: dict[str, Any], what: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
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
    return doc


@pytest.mark.parametrize("what", ["unknown key", "bad enum", "bad id", "bad dependency type",
                                  "bad source line", "unknown top-level key"])
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
