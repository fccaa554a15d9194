"""The files beside a catalog are named in one place (#62): :class:`Beside` says where
each is, beside the real file, and no other module of the package spells their names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from coordination.catalog.file.beside import Beside

pytestmark = pytest.mark.timeout(120)  # parses every module, as test_layering does

ROOT = Path(__file__).resolve().parents[3]
HOME = ROOT / "coordination" / "catalog" / "file" / "beside.py"
NAMED = re.compile(r"\.coord[./]")


def test_each_file_keeps_the_name_coord_has_always_given_it(tmp_path: Path) -> None:
    """Catalogs already on disk have these files: a name changed here orphans them."""
    at = Beside.of(tmp_path / "eco.yaml")
    assert {name: getattr(at, name).relative_to(tmp_path).as_posix() for name in (
        "lock", "audit_log", "audit_snapshot", "sweep_markers", "criteria_results",
        "change_mirrors", "redis", "history_0_2", "anchors", "schema", "fleet_roots")} == {
        "lock": ".eco.yaml.coord.lock",
        "audit_log": ".eco.yaml.coord.audit.jsonl",
        "audit_snapshot": ".eco.yaml.coord.audit.last",
        "sweep_markers": ".eco.yaml.coord.sweeps",
        "criteria_results": ".eco.yaml.coord.criteria.json",
        "change_mirrors": ".eco.yaml.coord.changes",
        "redis": ".eco.yaml.coord.redis",
        "history_0_2": ".eco.yaml.coord.history.sqlite",
        "anchors": ".coord.anchors",
        "schema": ".coord/schema.json",
        "fleet_roots": ".coord/fleet.json",
    }


def test_a_linked_catalog_keeps_its_files_beside_the_real_one(tmp_path: Path) -> None:
    real = tmp_path / "real" / "eco.yaml"
    real.parent.mkdir()
    real.write_text("version: 1\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    assert Beside.of(link) == Beside.of(real)
    assert Beside.of(link).audit_log == real.parent / ".eco.yaml.coord.audit.jsonl"


def names_beside(path: Path) -> list[str]:
    """Strings of ``path`` (docstrings aside) that spell a file beside a catalog."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and n.body and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)}
    return [f"{path.relative_to(ROOT)}:{n.lineno}: {n.value!r}" for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs and NAMED.search(n.value)]


def test_no_other_module_names_a_file_beside_the_catalog() -> None:
    found = [hit for package in ("coordination", "workers")
             for path in sorted((ROOT / package).rglob("*.py")) if path != HOME
             for hit in names_beside(path)]
    assert found == [], "\n".join(
        found + ["(a file beside the catalog is named in coordination/catalog/file/beside.py)"])
    assert names_beside(HOME), "the check no longer sees the names it looks for"
