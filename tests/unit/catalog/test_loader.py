"""The loader refuses what the catalog format does not allow, fast, with file and line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coordination.catalog.file import loader
from coordination.errors import CatalogError, CatalogSchemaError, CatalogSyntaxError

pytestmark = pytest.mark.timeout(60)

EXAMPLE = Path(__file__).resolve().parents[3] / "ecosystem.yaml"

BOMB = (
    "version: 1\n"
    "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
    "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
    "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
    "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
    "i: [*h, *h, *h, *h, *h, *h, *h, *h, *h]\n"
)

# (name, file bytes, error class, line, text in the message)
BAD: list[tuple[str, bytes, type[CatalogError], int | None, str]] = [
    ("syntax", b"version: 1\nrepos:\n  - name: a\n   path: b\n", CatalogSyntaxError, 4,
     "invalid YAML"),
    ("unclosed flow", b"version: 1\nrepos: [a, b\ncoordination: {}\n", CatalogSyntaxError, None,
     "invalid YAML"),
    ("tab", b"version: 1\nrepos:\n\t- name: a\n", CatalogSyntaxError, 3, "not tabs"),
    ("duplicate key", b"version: 1\nrepos: []\ncoordination: {}\nrepos: []\n",
     CatalogSyntaxError, 4, "duplicate key 'repos' (first at line 2)"),
    ("nested duplicate", b"version: 1\nrepos:\n  - name: a\n    path: x\n    path: y\n",
     CatalogSyntaxError, 5, "duplicate key 'path'"),
    ("python tag", b"version: 1\nrepos: !!python/object/apply:os.system ['echo pwned']\n",
     CatalogSyntaxError, 2, "tag '!!python/object/apply:os.system' is not allowed"),
    ("python object", b"version: 1\nx: !!python/object:os.Popen {}\n", CatalogSyntaxError, 2,
     "is not allowed"),
    ("local tag", b"version: 1\nrepos: !include other.yaml\n", CatalogSyntaxError, 2,
     "tag '!include' is not allowed"),
    ("alias", b"version: 1\nx: &r [api]\ny: *r\n", CatalogSyntaxError, 3, "anchors and aliases"),
    ("recursive alias", b"version: 1\nx: &r [*r]\n", CatalogSyntaxError, 2, "anchors and aliases"),
    ("merge key", b"version: 1\nx: {a: 1}\ny:\n  <<: {b: 2}\n", CatalogSyntaxError, 4,
     "merge keys"),
    ("not utf-8", b"version: 1\nrepos:\n  - name: caf\xe9\n", CatalogSyntaxError, 3,
     "not UTF-8 text: byte 0xe9 at offset 31"),
    ("two documents", b"version: 1\n---\nversion: 1\n", CatalogSyntaxError, 2, "invalid YAML"),
    ("empty", b"", CatalogSchemaError, None, "holds no YAML document"),
    ("only comments", b"# nothing here\n", CatalogSchemaError, None, "holds no YAML document"),
    ("top-level list", b"- version: 1\n", CatalogSchemaError, 1, "must be a mapping, found a list"),
    ("top-level scalar", b"hello\n", CatalogSchemaError, 1, "must be a mapping, found a str"),
    ("no version", b"repos: []\n", CatalogSchemaError, 1, "add 'version: 1'"),
    ("version 2", b"# x\nversion: 2\nrepos: []\n", CatalogSchemaError, 2,
     "unsupported catalog version 2; this coord reads version 1"),
    ("version text", b"version: '1'\n", CatalogSchemaError, 1, "unsupported catalog version '1'"),
    ("wrong type", b"version: 1\nrepos: api\n", CatalogSchemaError, 2, "repos: expected a list"),
    ("unknown ref", b"version: 1\nrepos: [{name: api}]\ncoordination:\n  todos:\n"
     b"    - id: TODO-1\n      task: t\n      repo: apii\n", CatalogSchemaError, 7,
     "todos[0].repo: unknown repo 'apii' (did you mean 'api'?)"),
]


@pytest.mark.parametrize(("name", "data", "cls", "line", "text"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_located_catalog_error(
    name: str, data: bytes, cls: type[CatalogError], line: int | None, text: str
) -> None:
    with pytest.raises(cls) as info:
        loader.load_catalog(data, "eco.yaml")
    message = str(info.value)
    assert text in message
    prefix = "eco.yaml:" if line is None else f"eco.yaml:{line}: "
    assert message.startswith(prefix), message
    assert "Traceback" not in message


def test_alias_bomb_fails_fast() -> None:
    started = time.perf_counter()
    with pytest.raises(CatalogSyntaxError, match="anchors and aliases"):
        loader.load_catalog(BOMB.encode(), "eco.yaml")
    assert time.perf_counter() - started < 1.0


def test_python_tag_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data = f"version: 1\nx: !!python/object/apply:os.system ['touch {marker}']\n".encode()
    with pytest.raises(CatalogSyntaxError):
        loader.load_catalog(data, "eco.yaml")
    assert not marker.exists()


def test_all_duplicate_keys_are_reported() -> None:
    data = b"version: 1\nrepos: []\nrepos: []\ncoordination: {}\ncoordination: {}\n"
    with pytest.raises(CatalogSyntaxError) as info:
        loader.load_catalog(data, "eco.yaml")
    assert [p.line for p in info.value.problems] == [3, 5]


def test_utf8_bom_and_crlf_are_accepted() -> None:
    data = b"\xef\xbb\xbf" + EXAMPLE.read_bytes().replace(b"\n", b"\r\n")
    assert len(loader.load_catalog(data, "eco.yaml").coordination.todos) == 6


def test_example_problems_point_at_the_right_lines() -> None:
    text = EXAMPLE.read_text()
    lines = text.splitlines()
    broken = text.replace("      repo: web\n", "      repo: webb\n").replace(
        "      status: resolved\n", "      status: done\n"
    )
    with pytest.raises(CatalogSchemaError) as info:
        loader.load_catalog(broken.encode(), "ecosystem.yaml")
    # Type and reference problems are listed together (a fix must not uncover a second list).
    problem, ref = info.value.problems
    assert problem.field == "issues[1].status"
    assert lines[problem.line - 1].strip() == "status: resolved"  # type: ignore[operator]
    assert ref.field == "todos[4].repo" and "unknown repo 'webb'" in ref.message

    broken = text.replace("      repo: web\n", "      repo: webb\n")
    with pytest.raises(CatalogSchemaError) as info:
        loader.load_catalog(broken.encode(), "ecosystem.yaml")
    [problem] = info.value.problems
    assert str(problem).startswith(f"ecosystem.yaml:{problem.line}: todos[4].repo: unknown repo")
    assert lines[problem.line - 1].strip() == "repo: web"  # type: ignore[operator]


def test_missing_field_points_at_its_item() -> None:
    text = EXAMPLE.read_text().replace("      task: \"Move jobs to 3.13\"\n", "")
    with pytest.raises(CatalogSchemaError) as info:
        loader.load_catalog(text.encode(), "ecosystem.yaml")
    [problem] = info.value.problems
    assert text.splitlines()[problem.line - 1].strip() == "- id: TODO-004"  # type: ignore[operator]
    assert "todos[3].task: field required (add 'task: <text>')" in str(problem)


def test_yaml11_booleans_are_caught_with_a_quoting_hint() -> None:
    data = b"version: 1\nrepos: [{name: api}]\ncoordination:\n  issues:\n" \
           b"    - id: ISSUE-1\n      title: t\n      assignee: on\n"
    with pytest.raises(CatalogSchemaError, match=r"eco.yaml:7: issues\[0\].assignee: expected "
                       r"text, got true \(quote it"):
        loader.load_catalog(data, "eco.yaml")
