"""`make test`'s runner (tests/tiers.sh): both tiers run, the chaos tier's output comes
after the first tier's, and the exit status is non-zero when either tier failed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
#: A stand-in for the venv's python: says which tier it ran and exits as told.
FAKE = """#!/usr/bin/env bash
case "$*" in
  *--ignore=tests/integration/chaos*) echo "first tier ran"; exit "$FIRST" ;;
  *tests/integration/chaos*) echo "chaos tier ran"; exit "$CHAOS" ;;
esac
exit 99
"""


@pytest.mark.parametrize(("first", "chaos", "ok"),
                         [(0, 0, True), (1, 0, False), (0, 1, False), (2, 3, False)])
def test_make_test_fails_when_either_tier_fails(tmp_path: Path, first: int, chaos: int,
                                                 ok: bool) -> None:
    fake = tmp_path / "python"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    done = subprocess.run(["bash", str(ROOT / "tests" / "tiers.sh"), str(fake), "4"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "FIRST": str(first),
                               "CHAOS": str(chaos), "TMPDIR": str(tmp_path)})
    assert (done.returncode == 0) is ok, done
    out = done.stdout
    assert out.index("first tier ran") < out.index("chaos tier ran"), out
    assert f"first tier: exit {first}; chaos tier: exit {chaos}" in out
    assert list(tmp_path.glob("coord-chaos-tier.*")) == []  # its log removed
