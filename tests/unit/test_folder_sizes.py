"""No folder of ``coordination/`` or ``workers/`` but ``cli/`` holds more than
:data:`LIMIT` Python modules directly (its ``__init__.py`` counted): past that, a folder's
parts go in a subfolder of their own (``change/pulls/``: a change's pull requests), so a
reader finds a module by its folder's name. ``cli/`` is one module per command group."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 25
EXEMPT = {Path("coordination/cli")}


def sizes(root: Path) -> dict[Path, int]:
    """Each package folder under ``root``'s ``coordination/`` and ``workers/``: how many
    ``.py`` modules it holds directly."""
    out = {}
    for top in ("coordination", "workers"):
        for folder in [root / top, *(root / top).rglob("*")]:
            if folder.is_dir() and folder.name != "__pycache__":
                n = sum(1 for p in folder.glob("*.py"))
                if n:
                    out[folder.relative_to(root)] = n
    return out


def too_big(root: Path) -> list[str]:
    return sorted(f"{folder}/ holds {n} modules (at most {LIMIT})"
                  for folder, n in sizes(root).items() if folder not in EXEMPT and n > LIMIT)


def test_no_folder_but_cli_holds_more_than_25_modules() -> None:
    assert too_big(ROOT) == [], (
        "move a coherent group of these modules into a subfolder (as change/pulls/ holds "
        "a change's pull requests) and say it in ARCHITECTURE.md")


def test_the_check_counts_a_folder_over_the_limit(tmp_path: Path) -> None:
    crowded = tmp_path / "coordination" / "crowded"
    crowded.mkdir(parents=True)
    for i in range(LIMIT + 1):
        (crowded / f"m{i}.py").write_text("")
    (tmp_path / "coordination" / "cli").mkdir()
    for i in range(LIMIT + 5):
        (tmp_path / "coordination" / "cli" / f"c{i}.py").write_text("")
    assert too_big(tmp_path) == [f"coordination/crowded/ holds {LIMIT + 1} modules (at most "
                                 f"{LIMIT})"]
    (crowded / "m0.py").unlink()
    assert too_big(tmp_path) == []
