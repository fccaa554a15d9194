"""Shared cli helpers for unit tests."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


ROOT = Path(__file__).resolve().parents[3]
PROBE = """
import atexit, json, sys
def report():
    names = sorted({m.split('.')[0] for m in sys.modules})
    sys.stderr.write('\\nMODULES ' + json.dumps(names) + '\\n')
atexit.register(report)
from coordination.cli.main import main
main(['--file', sys.argv[1], *sys.argv[2:]])
"""


HEAVY = ("celery", "kombu", "networkx", "mcp", "starlette", "uvicorn")


def loaded(catalog: Path, *args: str, every: bool = False) -> set[str]:
    """The top-level packages in sys.modules when ``coord --file CATALOG ARGS...`` exits
    (``every``: every module, dotted names included)."""
    probe = PROBE.replace("{m.split('.')[0] for m in sys.modules}", "set(sys.modules)") \
        if every else PROBE
    r = subprocess.run(
        [sys.executable, "-c", probe, str(catalog), *args],
        cwd=catalog.parent, capture_output=True, text=True, timeout=50,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode in (0, 1), r.stderr
    line = [x for x in r.stderr.splitlines() if x.startswith("MODULES ")][-1]
    return set(json.loads(line[len("MODULES "):]))


def clean_error(r: subprocess.CompletedProcess[str], code: int) -> None:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    assert r.stderr.strip(), "an error says something on stderr"


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no such number)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: valid JSON text, but no parser can hold it
        raise ValueError(f"{text} does not fit a double")
    return value


def strict_json(text: str) -> Any:
    """``text`` parsed as strict JSON: Python's ``Infinity``/``NaN`` (and numbers no double
    holds) are refused, as every other JSON parser refuses them."""
    return json.loads(text, parse_constant=_not_json, parse_float=_finite)


def coord(eco: Path, *args: str, env: dict[str, str] | None = None,
          timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """`coord --file ECO ARGS...` in a subprocess; what it prints with ``--json`` must be
    strict JSON (one document, or JSON Lines for `events --follow`), whatever the test."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    base.update(env or {})
    r = subprocess.run(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(eco), *args],
        capture_output=True, text=True, env=base, cwd=ROOT, timeout=timeout,
    )
    if "--json" in args and r.stdout.strip():
        try:
            strict_json(r.stdout)
        except ValueError:
            for line in r.stdout.splitlines():  # JSON Lines
                if line.strip():
                    strict_json(line)
    return r


def plan_coord(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`coord --file PATH plan ARGS...` in a subprocess."""
    return coord(path, "plan", *args, timeout=60)


def write_yaml(tmp_path: Path, data: dict[str, Any]) -> Path:
    """``data`` as ``tmp_path/ecosystem.yaml``."""
    path = tmp_path / "ecosystem.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def coord_bare(catalog: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`coord --file CATALOG ARGS...` in a subprocess run from the catalog's folder, with
    a bare environment (PATH, PYTHONPATH, a wide COLUMNS) and nothing else."""
    return subprocess.run(
        [sys.executable, "-m", "coordination.cli.main", "--file", str(catalog), *args],
        cwd=catalog.parent, capture_output=True, text=True, timeout=50,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )


def refused_and_unchanged(example_catalog: Path, args: tuple[str, ...], message: str) -> None:
    """`coord ARGS` (and with --json) is bad input: exit 2, ``message`` on stderr and no
    traceback, nothing on stdout, and the catalog's bytes unchanged."""
    before = example_catalog.read_bytes()
    for extra in ((), ("--json",)):
        r = coord_bare(example_catalog, *args, *extra)
        assert r.returncode == 2, (r.stdout, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr
        assert r.stdout == ""
    assert example_catalog.read_bytes() == before


def add_dep(catalog: Path, block: str) -> None:
    """``block`` (a YAML fragment: a dependency entry) appended to the catalog file."""
    catalog.write_text(catalog.read_text() + block)


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def coord_inline(eco: Path, *args: str) -> Ran:
    """`coord --file ECO ARGS...` in this process, through the real entry point (its
    mapping of errors to exit codes and `error:` lines on stderr)."""
    from click.testing import CliRunner

    from coordination.cli.main import main

    runner = CliRunner()
    with runner.isolation() as (out, err, _):
        try:
            main(["--file", str(eco), *args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        return Ran(code, out.getvalue().decode(), err.getvalue().decode())
