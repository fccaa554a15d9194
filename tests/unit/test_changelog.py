"""CHANGELOG.md keeps the Keep a Changelog 1.1.0 format (issue #42).

People add lines under `## [Unreleased]` as they merge, and the release renames that heading;
this test catches what drifts: a subsection Keep a Changelog does not have (`### Perf`), a
release without a date or with a date that is no date, versions out of order, an entry
outside any subsection, and a `pyproject.toml` version that is not the newest release.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")
RELEASE = re.compile(r"^## \[(\d+)\.(\d+)\.(\d+)\] - (\d{4}-\d{2}-\d{2})$")


@dataclass
class Version:
    line: int
    heading: str
    subsections: list[tuple[str, int]] = field(default_factory=list)  # (kind, entries)


def parse(text: str) -> tuple[list[str], list[Version]]:
    """The problems found, and the versions in file order."""
    problems: list[str] = []
    versions: list[Version] = []
    lines = text.split("\n")
    if not lines or lines[0] != "# Changelog":
        problems.append("line 1: the file starts with `# Changelog`")
    for n, line in enumerate(lines, 1):
        if n == 1:
            continue
        if line.startswith("# "):
            problems.append(f"line {n}: a second top heading {line!r}")
        elif line.startswith("## "):
            if line != "## [Unreleased]" and not RELEASE.match(line):
                problems.append(f"line {n}: {line!r} is neither `## [Unreleased]` nor "
                                "`## [X.Y.Z] - YYYY-MM-DD`")
            versions.append(Version(n, line))
        elif line.startswith("### "):
            kind = line[4:]
            if not versions:
                problems.append(f"line {n}: {line!r} comes before any version")
            elif kind not in KINDS:
                problems.append(f"line {n}: {line!r} is not one of {', '.join(KINDS)}")
            else:
                versions[-1].subsections.append((kind, 0))
        elif line.startswith("#"):
            problems.append(f"line {n}: only `##` (versions) and `###` (kinds) headings: "
                            f"{line!r}")
        elif line.startswith("- "):
            if not versions or not versions[-1].subsections:
                problems.append(f"line {n}: an entry outside an Added/Changed/... subsection")
            else:
                kind, count = versions[-1].subsections[-1]
                versions[-1].subsections[-1] = (kind, count + 1)
        elif line and not line.startswith("  ") and versions and versions[-1].subsections:
            problems.append(f"line {n}: inside a subsection, a line is an entry (`- `) or "
                            f"its continuation (indented two spaces): {line!r}")
    return problems, versions


def changelog() -> tuple[list[str], list[Version]]:
    return parse((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"))


def test_the_header_names_the_format_and_semver() -> None:
    head = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").split("\n## ", 1)[0]
    assert "https://keepachangelog.com/en/1.1.0/" in head
    assert "https://semver.org/" in head


def test_the_changelog_keeps_the_format() -> None:
    problems, versions = changelog()
    assert versions, "no `## ` version heading"
    for i, v in enumerate(versions):
        if v.heading == "## [Unreleased]" and i != 0:
            problems.append(f"line {v.line}: `## [Unreleased]` is the first version heading")
        if not v.subsections and v.heading != "## [Unreleased]":
            problems.append(f"line {v.line}: {v.heading!r} has no Added/Changed/... "
                            "subsection")
        kinds = [k for k, _ in v.subsections]
        if len(set(kinds)) != len(kinds):
            problems.append(f"line {v.line}: {v.heading!r} repeats a subsection: {kinds}")
        elif kinds != sorted(kinds, key=KINDS.index):
            problems.append(f"line {v.line}: {v.heading!r}'s subsections go in the order "
                            f"{', '.join(KINDS)}, not {', '.join(kinds)}")
        problems += [f"line {v.line}: {v.heading!r}'s `### {k}` has no entry"
                     for k, count in v.subsections if count == 0]
    assert not problems, "\n".join(problems)


def test_releases_are_dated_and_newest_first() -> None:
    _, versions = changelog()
    releases = []
    for v in versions:
        m = RELEASE.match(v.heading)
        if m:
            try:
                when = dt.date.fromisoformat(m[4])
            except ValueError:
                pytest.fail(f"line {v.line}: {m[4]} is not a date")
            releases.append(((int(m[1]), int(m[2]), int(m[3])), when, v.line))
    assert releases, "no released version"
    for (newer, newer_date, line), (older, older_date, _) in zip(releases, releases[1:]):
        assert newer > older, f"line {line}: versions go newest first"
        assert newer_date >= older_date, f"line {line}: dates go newest first"


def test_pyproject_declares_the_newest_release() -> None:
    """Unreleased lines sit above the newest release; releasing renames the heading and
    sets pyproject.toml's version to it, in one commit."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    _, versions = changelog()
    newest = next(RELEASE.match(v.heading) for v in versions if RELEASE.match(v.heading))
    assert newest is not None
    assert declared == ".".join(newest.group(1, 2, 3)), (
        f"pyproject.toml says {declared}, the newest released heading is "
        f"{newest.group(0)!r}: release both or neither")


@pytest.mark.parametrize("text, expected", [
    ("# Changelog\n\n## [Unreleased]\n\n### Perf\n\n- faster\n", "is not one of"),
    ("# Changelog\n\n## [1.0.0]\n\n### Added\n\n- x\n", "is neither"),
    ("# Changelog\n\n## [1.0.0] - 2026-11-25\n\n- x\n", "outside an Added"),
    ("# Changelog\n\n## [1.0.0] - 2026-11-25\n\n### Added\n\nloose text\n",
     "a line is an entry"),
    ("# Changelog\n\n## [1.0.0] - 2026-11-25\n\n#### Added\n\n- x\n", "only `##`"),
])
def test_the_parser_refuses_what_drifts(text: str, expected: str) -> None:
    problems, _ = parse(text)
    assert any(expected in p for p in problems), problems
