"""`coord todo create/update --env KEY=VALUE` and `update --unset-env KEY` (issue #29,
item 10): written as the todo's `env:` mapping, what its command runs with; bad input
exits 2 with a clear message and leaves the catalog as it was. Run as a user runs it:
a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[3]


def coord(catalog: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog), *args],
        cwd=catalog.parent, capture_output=True, text=True, timeout=100,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )


def env_of(catalog: Path, todo: str) -> dict[str, str]:
    r = coord(catalog, "todo", "show", todo, "--json")
    assert r.returncode == 0, r.stderr
    env: dict[str, str] = json.loads(r.stdout)["env"]
    return env


def test_create_and_update_env(example_catalog: Path) -> None:
    r = coord(example_catalog, "todo", "create", "--task", "Smoke test", "--repo", "api",
              "--env", "PYTHON=3.13", "--env", "EXTRA_ARGS=-x --lf", "--env", "EMPTY=")
    assert r.returncode == 0, r.stderr
    new = r.stdout.strip()
    assert env_of(example_catalog, new) == {"PYTHON": "3.13", "EXTRA_ARGS": "-x --lf",
                                            "EMPTY": ""}

    # Set one, add one, remove one; the others stay.
    r = coord(example_catalog, "todo", "update", new, "--env", "PYTHON=3.14",
              "--env", "DEBUG=1", "--unset-env", "EMPTY")
    assert r.returncode == 0, r.stderr
    assert env_of(example_catalog, new) == {"PYTHON": "3.14", "EXTRA_ARGS": "-x --lf",
                                            "DEBUG": "1"}
    # `KEY=` is the empty value, not a removal; removing every one drops `env:`.
    assert coord(example_catalog, "todo", "update", new, "--env", "DEBUG=").returncode == 0
    assert env_of(example_catalog, new)["DEBUG"] == ""
    r = coord(example_catalog, "todo", "update", new, "--unset-env", "PYTHON",
              "--unset-env", "EXTRA_ARGS", "--unset-env", "DEBUG")
    assert r.returncode == 0, r.stderr
    assert env_of(example_catalog, new) == {}
    text = example_catalog.read_text()
    block = text[text.index(f"- id: {new}"):]
    assert "env:" not in block


@pytest.mark.parametrize(("args", "message"), [
    (("todo", "update", "TODO-002", "--env", "1PYTHON=3"), "bad environment variable name '1PYTHON'"),
    (("todo", "update", "TODO-002", "--env", "MY-VAR=3"), "bad environment variable name 'MY-VAR'"),
    (("todo", "update", "TODO-002", "--env", "=3"), "bad environment variable name ''"),
    (("todo", "update", "TODO-002", "--env", "PYTHON"), "expected KEY=VALUE"),
    (("todo", "update", "TODO-002", "--unset-env", "A B"), "bad environment variable name 'A B'"),
    (("todo", "update", "TODO-002", "--env", "A=1", "--unset-env", "A"),
     "--env and --unset-env both name A"),
    (("todo", "create", "--task", "t", "--repo", "api", "--env", "BAD NAME=1"),
     "bad environment variable name 'BAD NAME'"),
    (("todo", "create", "--task", "t", "--repo", "api", "--env", "NOEQUALS"),
     "expected KEY=VALUE"),
], ids=["digit-first", "dash", "empty-name", "no-equals", "unset-bad-name", "set-and-unset",
        "create-bad-name", "create-no-equals"])
def test_bad_env_exits_2_and_changes_nothing(example_catalog: Path, args: tuple[str, ...],
                                             message: str) -> None:
    before = example_catalog.read_bytes()
    r = coord(example_catalog, *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert example_catalog.read_bytes() == before


def test_help_documents_env() -> None:
    r = subprocess.run([sys.executable, "-m", "coordination.cli.main", "todo", "update", "--help"],
                       capture_output=True, text=True, timeout=100,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "--env KEY=VALUE" in r.stdout and "--unset-env KEY" in r.stdout
