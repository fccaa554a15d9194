"""Finding a manifest value's line (coordination.fleet.manifests.base): a key or a table
header is found by a plain text search, where a pattern compiled per dependency was
(issue #61: those compiles cost more than parsing the files); it finds what the
pattern found, wherever the search starts."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coordination.fleet.manifests.base import Lines, _find_key, _find_table, key, table

pytestmark = pytest.mark.timeout(60)


def key_pattern(name: str, separators: str = "=") -> re.Pattern[str]:
    """The pattern key() compiled before (kept here as the reference)."""
    n = re.escape(name)
    return re.compile(rf"""^[ \t]*(?:{n}|"{n}"|'{n}')[ \t]*[{re.escape(separators)}]""", re.M)


def table_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"^[ \t]*\[[ \t]*{re.escape(name)}[ \t]*\]", re.M)


def span(m: re.Match[str] | None) -> tuple[int, int]:
    return (m.start(), m.end()) if m else (-1, -1)


NAMES = st.sampled_from(["serde", "serde_json", "dev", "test", "a.b", "x-y", "workspace"])
PIECES = st.sampled_from(["serde", "serde_json", '"serde"', "'dev'", "dev", "test", "a.b",
                          "[", "]", "[[", " ", "\t", "=", ".", ":", "\n", "\r\n", "x", "#",
                          "[dev]", "[ a.b ]", "workspace", '"x-y"'])


@settings(max_examples=400, deadline=None)
@given(pieces=st.lists(PIECES, max_size=40), name=NAMES, seps=st.sampled_from(["=", "=.", "=:"]),
       start=st.integers(0, 60))
def test_key_and_table_find_what_their_patterns_found(pieces: list[str], name: str, seps: str,
                                                      start: int) -> None:
    text = "".join(pieces)
    start = min(start, len(text))
    assert _find_key(text, key(name, seps), start) == span(
        key_pattern(name, seps).search(text, start))
    assert _find_table(text, table(name), start) == span(table_pattern(name).search(text, start))


def test_lines_find_a_dependency_under_its_own_table() -> None:
    text = ('[package]\nname = "app"\n\n[dev-dependencies]\nserde = "1"\n\n'
            '[dependencies]\nserde_json = "1"\n  "serde" = { version = "1" }\n'
            '[dependencies.tokio]\nversion = "1"\n')
    lines = Lines(text)
    assert lines.find([key("serde", "=.")], [table("dependencies")]) == 9
    assert lines.find([key("tokio", "=."), table("dependencies.tokio")],
                      [table("dependencies")]) == 10
    assert lines.find([key("serde", "=.")], [table("dev-dependencies")]) == 5


@pytest.mark.parametrize("doc", ['a = [', 'a = [\n', 'x = 1\ny = ', '[project\nname = "x"\n',
                                 'a = "\\q"\n', 'a = 1\na = 2\n', '[a]\nb = 1\n[a]\n',
                                 '[project]\nname = "x"\ndependencies = ["a",\n'])
def test_toml_is_read_and_refused_as_tomllib_does(doc: str) -> None:
    """Issue #61: TOML is read by tomli's compiled build (a dependency), 2.5x faster;
    what it refuses is the same problem, at the same line, as tomllib's refusal."""
    import tomllib

    from coordination.fleet.manifests import base

    assert base._tomli is not None  # installed with coord
    with pytest.raises(ValueError) as theirs:
        tomllib.loads(doc)
    with pytest.raises(ValueError) as ours:
        base.toml_loads(doc)
    assert base.unreadable("pyproject.toml", ours.value, doc) == \
        base.unreadable("pyproject.toml", theirs.value, doc)
    good = '[project]\nname = "x"\ndependencies = ["a>=1", "b; python_version < \'3.12\'"]\n'
    assert base.toml_loads(good) == tomllib.loads(good)


def test_a_template_string_over_lines_keeps_the_line_numbers_after_it() -> None:
    """A Kotlin template whose expression holds a quote and a line break (the token
    pattern cannot close it; the scanner reads it by hand): what follows is still
    counted on its own line, as a manifest problem would name it."""
    from coordination.fleet.manifests.scan import tokens

    text = 'val v = "a${listOf(\n  "x")}b"\nval after = 1\n'
    got = list(tokens(text))
    assert [(t.kind, t.text, t.line) for t in got[3:4]] == [
        ("str", 'a${listOf(\n  "x")}b', 1)]
    assert next(t.line for t in got if t.text == "after") == 3
