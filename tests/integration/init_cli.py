"""`coord init` as a user runs it, for the tests of `init --from` and `--check
--apply`: a whole process with this tree on its path, its exit code checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def coord(cwd: Path, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COORD_ECOSYSTEM"}
    env.update(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(cwd / ".cache-home"))
    res = subprocess.run([sys.executable, "-m", "coordination.cli.main", *args], cwd=cwd,
                         env=env, capture_output=True, text=True, timeout=120)
    if expect is not None:
        assert res.returncode == expect, (
            f"coord {' '.join(args)} exited {res.returncode}, wanted {expect}\n"
            f"stdout: {res.stdout[-3000:]}\nstderr: {res.stderr[-3000:]}")
    return res


def coord_json(cwd: Path, *args: str, expect: int = 0) -> Any:
    return json.loads(coord(cwd, *args, "--json", expect=expect).stdout)
