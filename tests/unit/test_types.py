"""`mypy --strict` (configured in pyproject.toml) passes on the whole package.

A renamed method of Runtime or a store is caught here, not in production."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_mypy_strict_is_clean() -> None:
    pytest.importorskip("mypy")
    text = (ROOT / "pyproject.toml").read_text()
    assert "strict = true" in text, "mypy --strict is configured in pyproject.toml"
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True,
                          text=True, timeout=590)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
