"""The README a stranger reads in five minutes (issue #42): at most 250 lines, and a
quick start of exactly two commands, `make demo` and `make test`. (Its figures are
generated: tests/unit/test_bench_suite.py; its catalog is checked against the schema:
tests/unit/catalog/test_schema.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from markdown_it import MarkdownIt

pytestmark = pytest.mark.timeout(30)

README = Path(__file__).resolve().parents[2] / "README.md"
MAX_LINES = 250


def quick_start_commands(text: str) -> list[str]:
    """The commands of the first code block of the README's "Quick start" section (what
    to run; the blocks after it are what to try next), their comments left out."""
    in_section = False
    tokens = MarkdownIt("commonmark").parse(text)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.tag == "h2":
            in_section = tokens[i + 1].content.strip().lower() == "quick start"
        elif in_section and tok.type in ("fence", "code_block"):
            return [c for c in (line.split("#", 1)[0].strip()
                                for line in tok.content.splitlines()) if c]
    return []


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines (at most {MAX_LINES})"


def test_the_quick_start_is_make_demo_then_make_test() -> None:
    assert quick_start_commands(README.read_text(encoding="utf-8")) == ["make demo", "make test"]


def test_the_quick_start_is_read_from_its_first_block_wherever_it_is() -> None:
    page = ("# x\n\n## Install\n\n    pip install x\n\n## Quick start\n\n- run:\n\n"
            "  ```sh\n  make demo   # a\n  make test\n  ```\n\nthen:\n\n    coord --help\n")
    assert quick_start_commands(page) == ["make demo", "make test"]
    assert quick_start_commands("# x\n\n## Quick start\n\n    pip install x\n") == ["pip install x"]
