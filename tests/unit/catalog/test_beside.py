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
    assert {name: getattr(getattr(at, name), "path", getattr(at, name))
             .relative_to(tmp_path).as_posix() for name in (
        "lock", "audit_log", "audit_snapshot", "sweep_markers", "criteria_results",
        "change_mirrors", "redis", "history_0_2", "anchors", "schema", "fleet_roots", "freeze")} == {
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
        "freeze": ".coord/freeze.json",
    }


def test_a_linked_catalog_keeps_its_files_beside_the_real_one(tmp_path: Path) -> None:
    real = tmp_path / "real" / "eco.yaml"
    real.parent.mkdir()
    real.write_text("version: 1\n")
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    assert Beside.of(link) == Beside.of(real)
    assert Beside.of(link).audit_log.path == real.parent / ".eco.yaml.coord.audit.jsonl"


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


# -- nothing but Beside opens them -----------------------------------------------------
#: Who asks where a file beside the catalog is: the module imports beside.py, or calls
#: one of the helpers that hand its path on.
PATH_HELPERS = {"log_path", "snapshot_path", "results_path", "marker_dir", "roots_file",
                "server_dir", "old_file"}
#: Calls that open, write, list or replace a file by hand (``x.replace(one)`` is
#: Path.replace: str.replace takes two).
BY_HAND = {"os.replace", "os.rename", "os.open", "os.unlink", "os.remove", "os.scandir",
           "os.listdir", "os.mkdir", "os.makedirs", "os.fdopen", "open", "shutil.move",
           "shutil.copyfile", "shutil.copy", "shutil.copy2"}
BY_HAND_METHODS = {"write_text", "write_bytes", "read_text", "read_bytes", "unlink",
                   "mkdir", "rmdir", "touch", "rename", "open", "iterdir", "glob"}
#: (module, function) that may, and why: none of them is a file beside the catalog.
MAY = {
    # the catalog file itself (its atomic compare-and-replace) and the lock it flocks
    ("coordination/catalog/file/store.py", "*"),
    # the embedded server's own directory (a path: redis-server writes in it; its
    # privacy checked there) and what it keeps in it
    ("coordination/connection/embedded_server.py", "*"),
    # 0.2's SQLite file: opened read-only by sqlite3, set aside once
    ("coordination/runtime/migrations/v02_embedded_file.py", "*"),
    # `coord init` creating the catalog file itself (and its directory)
    ("coordination/cli/init.py", "_write"),
    # the schema's copy in the user's cache directory, and `coord schema -o FILE`
    ("coordination/cli/schema.py", "_keep"),
    ("coordination/cli/schema.py", "schema_text"),
    ("coordination/cli/schema.py", "schema"),
    # the catalog file itself, read to compare with the log's last entry
    ("coordination/cli/audit.py", "_drift"),
    ("coordination/cli/audit.py", "_outside_now"),
}
#: Receivers whose methods are not a path's: the store reads the catalog file itself.
NOT_PATHS = {"store"}


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def asks_beside(tree: ast.Module) -> bool:
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module == "coordination.catalog.file.beside":
            return True
        if isinstance(n, ast.Call) and (
                isinstance(n.func, ast.Name) and n.func.id in PATH_HELPERS
                or isinstance(n.func, ast.Attribute) and n.func.attr in PATH_HELPERS):
            return True
    return False


def by_hand(path: Path, *, always: bool = False) -> list[str]:
    """The calls of ``path`` that touch a file by hand, when the module deals with files
    beside the catalog (``always``: whether or not), those :data:`MAY` allows aside."""
    rel = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    if not (always or asks_beside(tree)) or (rel, "*") in MAY:
        return []
    found: list[str] = []

    def visit(node: ast.AST, fn: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, child.name)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)) and "tempfile" in {
                    a.name for a in child.names} | {getattr(child, "module", None)}:
                found.append(f"{rel}:{child.lineno}: imports tempfile")
            if isinstance(child, ast.Call) and (rel, fn) not in MAY:
                name = _dotted(child.func)
                method = child.func.attr if isinstance(child.func, ast.Attribute) else None
                receiver = name.rsplit(".", 1)[0]
                if name in BY_HAND or receiver not in NOT_PATHS and (
                        method in BY_HAND_METHODS
                        or method == "replace" and len(child.args) == 1):
                    found.append(f"{rel}:{child.lineno}: {fn}() calls {name}")
            visit(child, fn)

    visit(tree, "<module>")
    return found


def test_no_other_module_opens_a_file_beside_the_catalog() -> None:
    """As rq's registries own their keys: who deals with a file beside the catalog calls
    its handle (:class:`BesideFile`, :class:`BesideDir`), never open/replace/tempfile."""
    found = [hit for package in ("coordination", "workers")
             for path in sorted((ROOT / package).rglob("*.py")) if path != HOME
             for hit in by_hand(path)]
    assert found == [], "\n".join(
        found + ["(read and write files beside the catalog through Beside's handles, "
                 "coordination/catalog/file/beside.py)"])
    assert by_hand(HOME, always=True) != [], "the check no longer sees the calls it looks for"
