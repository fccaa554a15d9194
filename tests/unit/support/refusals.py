"""Bad input through the real CLI: several `coord` processes over one catalog at once
(memory capped), and the check that one was refused cleanly (exit 2, `error:`, no
traceback, nothing on stdout)."""

from __future__ import annotations

import os
import resource
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


def _capped() -> None:  # a regression must fail fast, not eat the machine's memory
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def run(eco: Path, *commands: tuple[str, ...], env: dict[str, str] | None = None,
        timeout: float = 45) -> list[subprocess.CompletedProcess[str]]:
    """Each command over ``eco`` in its own ``coord`` process, all at once."""
    procs = [
        subprocess.Popen([sys.executable, "-m", "coordination.cli.main", "--file", str(eco), *cmd],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=eco.parent
                         if eco.parent.is_dir() else ROOT, env=_env(env), preexec_fn=_capped)
        for cmd in commands
    ]
    out = []
    try:
        for cmd, p in zip(commands, procs):
            stdout, stderr = p.communicate(timeout=timeout)
            out.append(subprocess.CompletedProcess(cmd, p.returncode, stdout, stderr))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return out


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
