"""Process ids for tests of what judges a process gone by its id."""

from __future__ import annotations

import subprocess


def dead_pid() -> int:
    """The id of a process that ran and ended (reaped): none runs under it now."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid
