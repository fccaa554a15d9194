"""Bad input, as a table: every kind is refused with exit 2, a located message, no
traceback, and the file byte-identical afterwards, by a read and by an edit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "ecosystem.yaml").read_text()

# name -> (file text, or bytes; message fragments expected on stderr)
CASES: dict[str, tuple[str | bytes, list[str]]] = {
    "bad date": (GOOD.replace("due: 2026-", "due: 2026-13-45 #", 1),
                 ["ecosystem.yaml:", "due: invalid value '2026-13-45'", "month must be in 1..12"]),
    "flow nested 50,000 deep": ("version: 1\nrepos: " + "[" * 50_000 + "]" * 50_000 + "\n",
                                ["ecosystem.yaml:2:", "nested more than 100 levels"]),
    "block nested 3,000 deep": ("version: 1\nrepos:\n" + "".join("  " * i + "- \n" for i in range(3000)),
                                ["ecosystem.yaml:", "nested more than 100 levels"]),
    "tab indentation": ("version: 1\nrepos:\n\t- name: api\n", ["ecosystem.yaml:3"]),
    "duplicate key": ("version: 1\nversion: 1\nrepos: []\n", ["duplicate key 'version'"]),
    "alias": ("version: 1\nrepos:\n  - &a {name: api}\n  - *a\n", ["anchors and aliases"]),
    "merge key": ("version: 1\nx: &b {a: 1}\nrepos:\n  - <<: *b\n", ["ecosystem.yaml:"]),
    "python tag": ("version: 1\nrepos: !!python/object:os.system [x]\n", ["ecosystem.yaml:2"]),
    "not UTF-8": (b"version: 1\nrepos: [\xff]\n", ["not UTF-8 text", "offset"]),
    "empty": ("", ["ecosystem.yaml"]),
    "wrong version": ("version: 9\nrepos: []\n", ["version"]),
    "unknown repo and duplicate id": (
        GOOD.replace("repo: api", "repo: apii", 1), ["unknown repo 'apii'"]),
    # Type errors and reference errors in one file: all listed at once.
    "type and reference errors together": (
        GOOD.replace("repo: api", "repo: apii", 1).replace("timeout: ", "timeout: soon #", 1)
            .replace("id: TODO-005", "id: TODO-004", 1),
        ["unknown repo 'apii'", "duplicate todo id 'TODO-004'", "timeout"]),
}


def coord(eco: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file", str(eco), *args],
                          capture_output=True, text=True, env=base, cwd=ROOT, timeout=45)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("command", [("todo", "list"), ("issue", "create", "--title", "x")],
                         ids=["read", "edit"])
def test_bad_input_is_refused_cleanly(tmp_path: Path, name: str, command: tuple[str, ...]) -> None:
    text, fragments = CASES[name]
    eco = tmp_path / "ecosystem.yaml"
    if isinstance(text, bytes):
        eco.write_bytes(text)
    else:
        eco.write_text(text)
    before = eco.read_bytes()
    r = coord(eco, *command)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and r.stdout == ""
    for frag in fragments:
        assert frag in r.stderr, (frag, r.stderr)
    assert eco.read_bytes() == before


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory"])
def test_only_regular_files_are_read(tmp_path: Path, kind: str) -> None:
    if kind == "fifo":
        target = tmp_path / "catalog.fifo"
        os.mkfifo(target)  # nobody writes: a plain open() would block for ever
    elif kind == "dev-zero":
        target = Path("/dev/zero")  # never ends: a plain read() eats all memory
    else:
        target = tmp_path
    r = coord(target, "todo", "list")
    said = "is a directory" if kind == "directory" else "not a regular file"  # click says it first
    assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_size_cap_is_a_setting(tmp_path: Path) -> None:
    eco = tmp_path / "ecosystem.yaml"
    eco.write_text(GOOD)
    r = coord(eco, "todo", "list", env={"COORD_MAX_CATALOG_BYTES": "2048"})
    assert r.returncode == 2 and "larger than 2048 bytes" in r.stderr
    assert "COORD_MAX_CATALOG_BYTES" in r.stderr
    assert coord(eco, "todo", "list").returncode == 0
