"""Bad input through the real CLI: several `coord` processes over one catalog at once
(memory capped), and the check that one was refused cleanly (exit 2, `error:`, no
traceback, nothing on stdout)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
READ = ("todo", "list")
EDIT = ("issue", "create", "--title", "x")


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COORD_")}
    env.update(extra or {})
    return env


#: a regression must fail fast, not eat the machine's memory
CAP = 1 << 30


def run(eco: Path, *commands: tuple[str, ...], env: dict[str, str] | None = None,
        timeout: float = 45) -> list[subprocess.CompletedProcess[str]]:
    """Each command over ``eco`` in its own ``coord`` process, all at once."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.clifork import run_capped

    def one(cmd: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        r = run_capped([sys.executable, "-m", "coordination.cli.main", "--file", str(eco), *cmd],
                       CAP, capture_output=True, text=True, timeout=timeout, env=_env(env),
                       cwd=eco.parent if eco.parent.is_dir() else ROOT)
        return subprocess.CompletedProcess(cmd, r.returncode, r.stdout, r.stderr)

    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(one, commands))


def refused(r: subprocess.CompletedProcess[str], says: list[str]) -> None:
    what = (r.args, r.returncode, r.stdout, r.stderr[-2000:])
    assert r.returncode == 2, what
    assert "Traceback" not in r.stderr and r.stdout == "", what
    assert r.stderr.startswith("error: "), what
    at = 0
    for fragment in says:
        found = r.stderr.find(fragment, at)
        assert found >= 0, (fragment, r.stderr[-2000:])
        at = found + len(fragment)
