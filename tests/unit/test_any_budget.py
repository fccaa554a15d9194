"""`Any` stays rare: at most 12 per 1,000 lines over the package's source.

Every ``Any`` is a hole mypy cannot see through. Documents and records have
TypedDicts or dataclasses, JSON has ``coordination.jsonable.JSONValue``, values
only passed through are ``object``; ``Any`` is left for the few places a
library gives nothing better. Counted on the source: every use of the name
``Any`` and of the attribute ``typing.Any`` (its import is not a use).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("coordination", "workers")
#: The most ``Any`` per 1,000 lines of source.
BUDGET_PER_1000 = 12.0


def count_any(source: str, filename: str = "<source>") -> int:
    """How many times ``Any`` is named (``Any``, ``typing.Any``, ``t.Any``)."""
    tree = ast.parse(source, filename=filename)
    return sum(1 for node in ast.walk(tree)
               if (isinstance(node, ast.Name) and node.id == "Any")
               or (isinstance(node, ast.Attribute) and node.attr == "Any"))


def census() -> list[tuple[int, int, str]]:
    """``(Any count, lines, path)`` of every .py file of the packages."""
    out = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            out.append((count_any(text, str(path)), len(text.splitlines()),
                        str(path.relative_to(ROOT))))
    return out


def test_the_count_sees_every_spelling() -> None:
    src = ("import typing\nfrom typing import Any\nimport typing as t\n"
           "def f(a: Any, b: typing.Any, c: t.Any) -> list[Any]: ...\n")
    assert count_any(src) == 4  # three annotations and one inside list[...]; not the import


def test_any_per_thousand_lines_stays_under_budget() -> None:
    rows = census()
    anys = sum(a for a, _n, _p in rows)
    lines = sum(n for _a, n, _p in rows)
    rate = 1000 * anys / lines
    top = sorted((r for r in rows if r[0]), key=lambda r: (-r[0], r[2]))[:15]
    table = "\n".join(f"  {a:4d} Any in {n:5d} lines ({1000 * a / n:5.1f}/1k)  {p}"
                      for a, n, p in top)
    assert rate <= BUDGET_PER_1000, (
        f"{anys} Any in {lines} lines: {rate:.1f} per 1,000 lines, over the budget of "
        f"{BUDGET_PER_1000:g}. Top offenders:\n{table}")
