"""The catalog package stays in folders that say what they hold (#62): the file and its
lock (file/), edits/, reads/, selection/, runs/, audit/, rules/ and models/, with only
the manager and the catalog's vocabulary directly in coordination/catalog/."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)

CATALOG = Path(__file__).resolve().parents[3] / "coordination" / "catalog"
#: The house's bound on modules directly in the package (issue #62 asks for at most 25).
MOST_AT_THE_TOP = 25


def test_few_modules_stand_directly_in_the_catalog() -> None:
    top = sorted(p.name for p in CATALOG.glob("*.py") if p.name != "__init__.py")
    assert 0 < len(top) <= MOST_AT_THE_TOP, (
        f"{len(top)} modules directly in coordination/catalog/ (at most {MOST_AT_THE_TOP}): "
        f"put a new one in the folder that holds its kind: {top}")


def test_each_folder_is_a_package_that_loads_nothing_by_itself() -> None:
    """A folder's __init__.py is empty (models/ excepted: it is the public model API), so
    importing one module of a folder loads no other (the warm read's lazy imports)."""
    folders = [p for p in CATALOG.iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert {"file", "edits", "reads", "audit", "rules"} <= {p.name for p in folders}
    for folder in folders:
        init = folder / "__init__.py"
        assert init.is_file(), f"{folder} is no package"
        if folder.name != "models":
            assert init.read_text().strip() == "", f"{init} should be empty"
