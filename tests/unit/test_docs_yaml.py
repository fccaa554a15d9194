"""Every YAML the docs show parses: each ```yaml block, and each indented code block
that starts like a catalog (``todos:``, ``repos:``, ``- id:``...), up to the first
`coord` command line that follows it in the same block. The schema tests
(tests/unit/fleet/test_schema.py) validate the whole catalogs among them; this catches
the excerpts, where an unquoted ``[TODO-009[same]]`` is a flow list YAML refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
#: The first line of an indented block that makes it a catalog excerpt.
CATALOG_KEYS = ("version:", "repos:", "todos:", "plans:", "coordination:", "dependencies:",
                "resources:", "approvers:", "notify:", "- id:")
FENCED = re.compile(r"^```ya?ml[^\n]*\n(.*?)^```", re.S | re.M)


def indented_blocks(text: str) -> list[tuple[int, str]]:
    """Indented code blocks (outside fences) whose first line is a catalog key, as
    (line, text), each cut before a `coord ...` line of the same block."""
    lines = text.split("\n")
    out: list[tuple[int, str]] = []
    fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            fence = not fence
        elif (not fence and line.startswith("    ") and (i == 0 or not lines[i - 1].strip())
              and line[4:].startswith(CATALOG_KEYS)):
            block = []
            j = i
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                if lines[j][4:].startswith(("coord ", "$ ")):
                    break
                block.append(lines[j][4:])
                j += 1
            out.append((i + 1, "\n".join(block)))
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                j += 1
            i = j
            continue
        i += 1
    return out


def blocks() -> list[tuple[str, str]]:
    found = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        where = page.relative_to(ROOT)
        for m in FENCED.finditer(text):
            found.append((f"{where}:{text[:m.start()].count(chr(10)) + 2}", m.group(1)))
        found += [(f"{where}:{line}", block) for line, block in indented_blocks(text)]
    return found


def test_the_docs_yaml_is_found() -> None:
    where = {w.split(":")[0] for w, _ in blocks()}
    assert {"docs/explanation/fleets.md", "docs/how-to/gates-and-waves.md",
            "docs/explanation/catalog.md"} <= where, where


@pytest.mark.parametrize("where, text", blocks(), ids=[w for w, _ in blocks()])
def test_every_yaml_block_of_the_docs_parses(where: str, text: str) -> None:
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as exc:
        pytest.fail(f"{where}: {exc}")


def test_an_unquoted_instance_ref_is_caught() -> None:
    page = "Text.\n\n    todos:\n      - id: TODO-010\n        blocked_by: [TODO-009[same]]\n"
    ((_, block),) = indented_blocks(page)
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(block)
