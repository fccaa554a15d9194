"""The scan roots `coord init DIR...` remembers beside the catalog (.coord/fleet.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordination.errors import UsageError
from coordination.fleet.roots import remember, remembered, roots_file

pytestmark = pytest.mark.timeout(30)


def test_roots_below_the_catalog_are_relative_and_are_added_to(tmp_path: Path) -> None:
    cat = tmp_path / "cat"
    (cat / "svc").mkdir(parents=True)
    other = tmp_path / "other"
    other.mkdir()
    assert remembered(cat) == ([], None)
    assert remember(cat, [cat, other], 2) == [".", str(other)]
    assert remember(cat, [cat / "svc", other], 3) == [".", str(other), "svc"]  # union, in order
    assert json.loads(roots_file(cat).read_text()) == {"roots": [".", str(other), "svc"],
                                                       "depth": 3}
    assert remembered(cat) == ([cat, other, cat / "svc"], 3)


@pytest.mark.parametrize("text, says", [
    ("{", "not JSON"),
    ('{"roots": "src"}', "roots: a list of directories expected"),
    ('{"roots": [""]}', "roots: a list of directories expected"),
    ('{"roots": ["."], "depth": -1}', "depth: a whole number"),
    ('{"roots": ["."], "depth": true}', "depth: a whole number"),
])
def test_a_malformed_file_is_an_error_naming_it(tmp_path: Path, text: str, says: str) -> None:
    roots_file(tmp_path).parent.mkdir()
    roots_file(tmp_path).write_text(text)
    with pytest.raises(UsageError) as err:
        remembered(tmp_path)
    assert says in str(err.value) and str(roots_file(tmp_path)) in str(err.value)
