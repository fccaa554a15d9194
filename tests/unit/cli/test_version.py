"""The package's version is the one its README documents as current: where the README
says a behaviour holds "since X.Y", the declared version is at least X.Y (coord said
0.2.0 while the README documented 0.3). That pyproject, the installed metadata and
`coord --version` agree is test_help.py's test_the_version_comes_from_one_place."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)
ROOT = Path(__file__).resolve().parents[3]


def numbers(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def test_the_version_is_at_least_what_the_readme_calls_current() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    since = set(re.findall(r"\bsince (?:coord )?(\d+\.\d+(?:\.\d+)?)\b", readme))
    assert since, "the README names no version it documents (\"since X.Y\")"
    newer = sorted(v for v in since if numbers(v) > numbers(declared)[:len(numbers(v))])
    assert not newer, (f"pyproject.toml declares {declared}, but the README documents "
                       f"behaviour since {', '.join(newer)}: release the version it documents")
