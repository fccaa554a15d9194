"""Bad input, as a table, through the real CLI: every kind is refused with exit 2, a
message naming the file (and line and field where there is one), no traceback, nothing
on stdout, and the file byte-identical afterwards, by a read (`todo list`) and by an
edit (`issue create`), run side by side.

The first block is what coord 0.1 got wrong (hang, MemoryError, segfault, traceback,
problems listed over several runs); the rest already passed and must not regress.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.unit.support.refusals import EDIT, READ, ROOT, refused, run

pytestmark = pytest.mark.timeout(60)

GOOD = (ROOT / "ecosystem.yaml").read_text()
F = "ecosystem.yaml"


def sub(old: str, new: str, text: str = GOOD) -> str:
    """``text`` with the first ``old`` replaced; fails loudly if the example changed."""
    assert old in text, f"the example catalog no longer holds {old!r}"
    return text.replace(old, new, 1)


def at(old: str, text: str = GOOD, nth: int = 1) -> str:
    """``ecosystem.yaml:N:`` of the line holding the ``nth`` ``old`` in ``text``."""
    pos = -1
    for _ in range(nth):
        pos = text.index(old, pos + 1)
    return f"{F}:{text[:pos].count(chr(10)) + 1}:"


class Case(NamedTuple):
    data: str | bytes
    says: list[str]  # fragments of stderr, in order of appearance


def _flow(n: int) -> str:
    return "version: 1\nrepos: " + "[" * n + "]" * n + "\n"


TWO = sub("repo: api", "repo: apii",
          sub("timeout: ", "timeout: soon #", sub("id: TODO-005", "id: TODO-004")))

CASES: dict[str, Case] = {
    # -- broke in 0.1 ------------------------------------------------------------
    "bad date": Case(sub("due: 2026-11-30", "due: 2026-13-45"), [
        at("due: 2026-11-30") + " plans[0].milestones[0].due: expected a date like 2026-01-31, "
        "got '2026-13-45' (month value is outside expected range of 1-12)"]),
    "impossible day": Case(sub("created: 2026-10-01", "created: 2026-02-30"), [
        at("created: 2026-10-01") + " issues[0].created: expected a date", "'2026-02-30'"]),
    "bad time of day": Case(sub("target: 2026-12-15", "target: 2026-12-15 25:61:00"), [
        at("target: 2026-12-15") + " issues[0].target: expected a date",
        "hour value is outside expected range"]),
    "bad date beside other problems": Case(
        sub("repo: api", "repo: apii", sub("due: 2026-11-30", "due: 2026-13-45")),
        [at("due: 2026-11-30") + " plans[0].milestones[0].due:",
         at("repo: api") + " todos[2].repo: unknown repo 'apii' (did you mean 'api'?)"]),
    "flow nested 50,000 deep": Case(_flow(50_000), [f"{F}:2: nested more than 100 levels deep"]),
    "block nested 3,000 deep": Case(
        "version: 1\nrepos:\n" + "".join("  " * i + "- \n" for i in range(3000)),
        [f"{F}:102: nested more than 100 levels deep"]),
    "compact '? ? ?' 50,000 deep": Case("version: 1\nx:\n  " + "? " * 50_000 + "a\n",
                                        [f"{F}:3: nested more than 100 levels deep"]),
    "compact '- - -' 50,000 deep": Case("version: 1\nx:\n  " + "- " * 50_000 + "a\n",
                                        [f"{F}:3: nested more than 100 levels deep"]),
    "brackets hidden in comments": Case("version: 1\nx: " + "[ # ]\n  " * 50_000 + "\n",
                                        [f"{F}:101: nested more than 100 levels deep"]),
    "brackets hidden in quotes": Case(
        "version: 1\nx: " + '[ "]", ' * 50_000 + "]" * 50_000 + "\n",
        [f"{F}:2: nested more than 100 levels deep"]),
    "type and reference errors together": Case(TWO, [
        at("timeout: soon", TWO) + " todos[1].timeout: expected a number, got 'soon'",
        at("repo: apii", TWO) + " todos[2].repo: unknown repo 'apii' (did you mean 'api'?)",
        at("id: TODO-004", TWO, nth=2) + " todos[4].id: duplicate todo id 'TODO-004' "
        "(first defined at todos[3].id)"]),  # its place in the file, not among the valid
    "a 5,000-digit number": Case("version: 1\nrepos:\n  - name: api\n    concurrency: "
                                 + "9" * 5000 + "\n",
                                 [f"{F}:4: repos[0].concurrency: cannot read the value",
                                  "too many digits"]),
    "NUL byte": Case("version: 1\nrepos: []\x00\n",
                     [f"{F}:2: invalid YAML: control character U+0000 at column 10"]),
    "control character after non-ASCII": Case("version: 1\n# ééé\nrepos: ['a\x07']\n",
                                              [f"{F}:3: invalid YAML: control character U+0007 "
                                               "at column 11"]),
    # -- already refused well --------------------------------------------------------
    "tab indentation": Case("version: 1\nrepos:\n\t- name: api\n",
                            [f"{F}:3: invalid YAML", "indent with spaces, not tabs"]),
    "syntax error": Case("version: 1\nrepos:\n  - name: a\n   path: b\n", [f"{F}:4: invalid YAML"]),
    "unclosed flow list": Case("version: 1\nrepos: [a, b\ncoordination: {}\n",
                               [f"{F}:3: invalid YAML", "flow sequence at line 2"]),
    "duplicate key": Case("version: 1\nversion: 1\nrepos: []\n",
                          [f"{F}:2: duplicate key 'version' (first at line 1)"]),
    "nested duplicate key": Case("version: 1\nrepos:\n  - name: a\n    path: x\n    path: y\n",
                                 [f"{F}:5: duplicate key 'path' (first at line 4)"]),
    "alias": Case("version: 1\nrepos:\n  - &a {name: api}\n  - *a\n",
                  [f"{F}:4: anchors and aliases"]),
    "recursive alias": Case("version: 1\nx: &r [*r]\n", [f"{F}:2: anchors and aliases"]),
    "billion laughs": Case("version: 1\na: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                           + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
                                     for p, c in zip("abcdefgh", "bcdefghi")),
                           [f"{F}:3: anchors and aliases"]),
    "merge key": Case("version: 1\nx: {a: 1}\nrepos:\n  - <<: {b: 2}\n", [f"{F}:4: merge keys"]),
    "python tag": Case("version: 1\nrepos: !!python/object/apply:os.system ['touch pwned']\n",
                       [f"{F}:2: tag '!!python/object/apply:os.system' is not allowed"]),
    "local tag": Case("version: 1\nrepos: !include other.yaml\n",
                      [f"{F}:2: tag '!include' is not allowed"]),
    "%TAG directive": Case("%TAG ! tag:evil.example,2000:\n---\nversion: 1\nrepos: !x []\n",
                           [f"{F}:4: tag 'tag:evil.example,2000:x' is not allowed"]),
    "not UTF-8": Case(b"version: 1\nrepos: [caf\xe9]\n",
                      [f"{F}:2: not UTF-8 text: byte 0xe9 at offset 22"]),
    "UTF-16": Case("version: 1\n".encode("utf-16"), [f"{F}:1: not UTF-8 text: byte 0xff"]),
    "empty": Case("", [f"{F}: the file holds no YAML document"]),
    "only comments": Case("# nothing\n", [f"{F}: the file holds no YAML document"]),
    "two documents": Case("version: 1\n---\nversion: 1\n", [f"{F}:2: invalid YAML"]),
    "top-level list": Case("- version: 1\n", [f"{F}:1: the top level must be a mapping"]),
    "no version": Case("repos: []\n", [f"{F}:1: version: field required"]),
    "wrong version": Case("# x\nversion: 2\nrepos: []\n",
                          [f"{F}:2: version: unsupported catalog version 2"]),
    "version as text": Case("version: '1'\n", [f"{F}:1: version: unsupported catalog version '1'"]),
    "unknown field": Case(sub("priority: high", "priorty: high"),
                          [at("priority: high") + " issues[0].priorty: unknown field 'priorty' "
                           "(did you mean 'priority'?)"]),
    "wrong type": Case("version: 1\nrepos: api\n", [f"{F}:2: repos: expected a list"]),
    "bad enum": Case(sub("status: in_progress", "status: doing"),
                     [at("status: in_progress") + " issues[0].status: 'doing' is not allowed"]),
    "bad id": Case(sub("id: TODO-004", "id: TASK-4"),
                   [at("id: TODO-004") + " todos[3].id: must look like TODO-<digits>"]),
    "unknown repo": Case(sub("repo: api", "repo: apii"),
                         [at("repo: api") + " todos[2].repo: unknown repo 'apii'"]),
    "duplicate id": Case(sub("id: TODO-005", "id: TODO-004"),
                         [at("id: TODO-005") + " todos[4].id: duplicate todo id 'TODO-004' "
                          "(first defined at todos[3].id)"]),
    "yaml 1.1 boolean as text": Case(sub("assignee: ", "assignee: yes #"),
                                     ["assignee: expected text, got true (quote it"]),
    "mapping as key": Case("version: 1\n? [a]\n: 1\n", [f"{F}:2: a mapping key must be plain text"]),
    "bad base64": Case("version: 1\nx: !!binary 'zz'\n", [f"{F}:2: invalid YAML"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_cleanly(tmp_path: Path, name: str) -> None:
    data, says = CASES[name]
    eco = tmp_path / F
    eco.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    before = eco.read_bytes()
    for r in run(eco, READ, EDIT):
        refused(r, says)
    assert eco.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) in ([F], [F, f".{F}.coord.lock"])
    assert not (tmp_path / "pwned").exists()


def test_the_table_covers_a_valid_catalog(tmp_path: Path) -> None:
    """The same harness over the good example: exit 0 for both (the table is not vacuous)."""
    eco = tmp_path / F
    eco.write_text(GOOD)
    read, edit = run(eco, READ), run(eco, EDIT)
    assert read[0].returncode == 0 and edit[0].returncode == 0, (read, edit)
    assert edit[0].stdout.strip().startswith("ISSUE-")


@pytest.mark.timeout(40)
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "/dev/null", "directory"])
def test_only_regular_files_are_read(tmp_path: Path, kind: str) -> None:
    """A FIFO used to block for ever, /dev/zero to eat memory until a MemoryError."""
    if kind == "fifo":
        target = tmp_path / "catalog.fifo"
        os.mkfifo(target)  # nobody writes: a plain open() would block for ever
    elif kind == "directory":
        target = tmp_path / "catalog.d"
        target.mkdir()
    else:
        target = Path(kind)
    for r in run(target, READ, EDIT, timeout=15):
        if kind == "directory":
            assert r.returncode == 2 and "is a directory" in r.stderr, r.stderr  # click says so
            continue
        refused(r, [str(target), "not a regular file"])
    if kind == "fifo":
        assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog.fifo"]


def test_size_cap_is_a_setting(tmp_path: Path) -> None:
    eco = tmp_path / F
    eco.write_text(GOOD)
    before = eco.read_bytes()
    for r in run(eco, READ, EDIT, env={"COORD_MAX_CATALOG_BYTES": "2048"}):
        refused(r, [f"{F}: larger than 2048 bytes", "COORD_MAX_CATALOG_BYTES"])
    assert eco.read_bytes() == before
    assert [r.returncode for r in run(eco, READ)] == [0]  # the default cap is far above it


@pytest.mark.parametrize("value", ["lots", "10", "-1"])
def test_a_bad_size_cap_names_the_variable(tmp_path: Path, value: str) -> None:
    eco = tmp_path / F
    eco.write_text(GOOD)
    before = eco.read_bytes()
    for r in run(eco, READ, EDIT, env={"COORD_MAX_CATALOG_BYTES": value}):
        refused(r, ["COORD_MAX_CATALOG_BYTES"])
    assert eco.read_bytes() == before


def test_an_unbuildable_date_where_text_is_allowed_is_kept_as_written(tmp_path: Path) -> None:
    """2026-02-30 is text to the catalog (the loader no longer fails on it), so a field
    that takes text accepts it, and an edit leaves the line as it was, unquoted."""
    eco = tmp_path / F
    line = "      description: 2026-02-30   # not a date\n"
    text = sub('      description: "Base images drop 3.11; every Python service must move to '
               '3.13."\n', line)
    eco.write_text(sub("      labels: [python, migration]\n", "      labels: [2026-13-45]\n", text))
    read, edit = run(eco, ("issue", "show", "ISSUE-001", "--json"), EDIT)
    assert read.returncode == 0 and edit.returncode == 0, (read.stderr, edit.stderr)
    shown = json.loads(read.stdout)
    assert shown["description"] == "2026-02-30" and shown["labels"] == ["2026-13-45"]
    text = eco.read_text()
    assert line in text and "      labels: [2026-13-45]\n" in text and "ISSUE-004" in text
