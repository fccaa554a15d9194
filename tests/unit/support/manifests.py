"""Checkouts holding manifests, and `coord` run in process over them, for the unit tests
of the manifest readers."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from coordination.cli.main import main


def checkout(root: Path, name: str, files: dict[str, str]) -> Path:
    """A git checkout ``root/name`` holding ``files`` (dedented)."""
    d = root / name
    d.mkdir(parents=True)
    for rel, text in files.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(textwrap.dedent(text).lstrip("\n"))
    subprocess.run(["git", "init", "-q", "-b", "main", str(d)], check=True)
    return d


def coord(fleet: Path, capsys: pytest.CaptureFixture[str], *args: str,
          expect: int = 0) -> str:
    """``coord -f FLEET/ecosystem.yaml ARGS`` in process (cwd: the fleet); its stdout."""
    capsys.readouterr()
    cwd = os.getcwd()
    os.chdir(fleet)
    code = 0
    try:
        main(["-f", str(fleet / "ecosystem.yaml"), *args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    assert code == expect, f"coord {' '.join(args)}: exit {code}\n{out}\n{err}"
    return out


def coord_json(fleet: Path, capsys: pytest.CaptureFixture[str], *args: str,
               expect: int = 0) -> Any:
    return json.loads(coord(fleet, capsys, *args, "--json", expect=expect))
