"""The test tree keeps the layout ARCHITECTURE.md describes.

- ``tests/unit/<dir>/`` names a package of the code (``coordination/<dir>/``, or
  ``workers/``); beside them only ``support/`` (shared helpers) and ``fixtures/``
  (data files). Tests of a base module (``coordination/<name>.py``) and of the tree as a
  whole sit at ``tests/unit/`` itself. Integration tests are flat under
  ``tests/integration/`` (``chaos/`` holds the fault-injection ones).
- A test module never imports another test module: what tests share lives in a
  conftest or a support module (``tests/unit/support/``, ``tests/integration/*.py``
  not named ``test_*``).
- A fixture is defined once across ``tests/`` (conftest files included): a variant is a
  mark or a differently named fixture, never a second definition of the same name.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
UNIT = TESTS / "unit"
BESIDE_PACKAGES = {"support", "fixtures"}


def packages() -> set[str]:
    code = ROOT / "coordination"
    return {p.name for p in code.iterdir() if (p / "__init__.py").is_file()} | {"workers"}


def files_of_the_tests() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports (``from X import Y`` counts X and X.Y), by line."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def test_each_unit_test_folder_names_a_package_of_the_code() -> None:
    folders = {p.name for p in UNIT.iterdir() if p.is_dir() and p.name != "__pycache__"}
    strays = sorted(folders - packages() - BESIDE_PACKAGES)
    assert strays == [], (
        f"tests/unit/{strays[0]}/ names no package of coordination/ or workers/: move each "
        "test file to the folder of the package whose code it tests")


def test_no_test_module_imports_another() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in files_of_the_tests()
        for line, name in imported_modules(path)
        if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")
    ]
    assert found == [], "\n".join(
        found + ["(what tests share goes in a conftest.py or a support module)"])


def fixture_names(path: Path) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for deco in node.decorator_list:
            call = deco if isinstance(deco, ast.Call) else None
            target = call.func if call else deco
            if ast.unparse(target) not in ("pytest.fixture", "fixture"):
                continue
            named = [k.value for k in (call.keywords if call else []) if k.arg == "name"]
            name = named[0].value if named and isinstance(named[0], ast.Constant) else node.name
            out.append((str(name), node.lineno))
    return out


def test_no_fixture_is_defined_twice() -> None:
    where: dict[str, list[str]] = defaultdict(list)
    for path in files_of_the_tests():
        for name, line in fixture_names(path):
            where[name].append(f"{path.relative_to(ROOT)}:{line}")
    twice = {name: places for name, places in where.items() if len(places) > 1}
    assert twice == {}, "\n".join(
        f"fixture {name!r} is defined {len(places)} times: {', '.join(places)}"
        for name, places in sorted(twice.items()))


def test_the_checks_see_what_they_look_for(tmp_path: Path) -> None:
    """The three checks are not vacuous: they find imports and fixtures where they are."""
    sample = tmp_path / "test_sample.py"
    sample.write_text("import pytest\nfrom tests.unit.catalog.test_store import x\n"
                      "from tests.unit.support import cli\n\n"
                      "@pytest.fixture\ndef a(): ...\n\n"
                      "@pytest.fixture(scope='module', name='b')\ndef _b(): ...\n")
    names = [n for _, n in imported_modules(sample)]
    assert "tests.unit.catalog.test_store" in names and "tests.unit.support.cli" in names
    assert [n for n, _ in fixture_names(sample)] == ["a", "b"]
    assert {"catalog", "runtime", "sweeps", "workers", "mcp_server"} <= packages()
