"""The validated-catalog cache's key follows the code that validates: a cached catalog
is never served after a change to any module that validating it runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from coordination.catalog.file import cache

ROOT = Path(__file__).resolve().parents[3]
CATALOG_DIR = ROOT / "coordination" / "catalog"
EXAMPLE = ROOT / "ecosystem.yaml"

#: A fresh interpreter validates the example catalog (no cache) and prints the file of
#: every module of ours it imported on the way.
_IMPORTS_OF_A_LOAD = (
    "import sys\n"
    "from coordination.catalog.file.store import CatalogStore\n"
    "CatalogStore(sys.argv[1], cache_dir=None).load()\n"
    "for name, module in sorted(sys.modules.items()):\n"
    "    if name.split('.')[0] == 'coordination':\n"
    "        print(module.__file__)\n"
)


def validation_files() -> list[Path]:
    out = subprocess.run([sys.executable, "-c", _IMPORTS_OF_A_LOAD, str(EXAMPLE)], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [Path(line).resolve() for line in out.splitlines()]


def test_every_module_a_validation_imports_is_in_the_key() -> None:
    covered = {Path(p).resolve() for p in cache.code_files(str(CATALOG_DIR))}
    imported = validation_files()
    assert len(imported) > 10  # models, checks, loader and what they import
    missing = [str(p.relative_to(ROOT)) for p in imported if p not in covered]
    assert missing == []


def test_the_key_is_taken_over_the_whole_catalog_package() -> None:
    """code_tag() walks coordination/catalog/ (every folder of it) and the base layer,
    wherever in the package the cache's own module sits."""
    assert cache.code_tag() == cache.code_tag_of(str(CATALOG_DIR))


def test_changing_any_file_in_the_key_changes_it(tmp_path: Path) -> None:
    copy = tmp_path / "coordination"
    shutil.copytree(ROOT / "coordination", copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    catalog_dir = str(copy / "catalog")
    files = cache.code_files(catalog_dir)
    assert len(files) > 10
    tag = cache.code_tag_of(catalog_dir)
    for path in files:
        with open(path, "ab") as f:
            f.write(b"\n")
        changed = cache.code_tag_of(catalog_dir)
        assert changed != tag, os.path.relpath(path, copy)
        tag = changed
