"""`coord trigger push`'s refusals of bad input (coordination/cli/trigger.py): each exits 2
naming the fix, and starts nothing. What it starts, and its --dry-run's preview, run on a
real redis-server in tests/integration/test_trigger_freeze.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.catalog.file.beside import Beside
from tests.unit.support.cli import coord_inline

pytestmark = pytest.mark.timeout(60)

CATALOG = """\
version: 1
repos:
  - {name: api, path: api}
coordination:
  plans:
    - {id: PLAN-001, title: on pushes, on: {push: {repos: api}}}
  todos:
    - {id: TODO-001, task: test api, repo: api, plan: PLAN-001, run: "echo ok"}
"""


@pytest.fixture
def pushed_eco(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("COORD_REDIS_URL", "COORD_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "api").mkdir()
    path = tmp_path / "ecosystem.yaml"
    path.write_text(CATALOG)
    return path


@pytest.mark.parametrize(("args", "said", "fix"), [
    (("--ref", "not-a-sha"), "--ref 'not-a-sha' is not a commit's SHA", "git rev-parse HEAD"),
    (("--ref", "3f2c1e9", "--dry-run", "--wait"), "--dry-run starts nothing to --wait for",
     "drop --wait"),
])
def test_bad_input_exits_2_naming_the_fix_and_starts_nothing(
        pushed_eco: Path, args: tuple[str, ...], said: str, fix: str) -> None:
    eco = pushed_eco
    before = eco.read_bytes()
    ran = coord_inline(eco, "trigger", "push", "--repo", "api", *args)
    assert ran.code == 2, ran.err
    assert said in ran.err and fix in ran.err
    assert eco.read_bytes() == before
    assert not Beside.of(eco).sweep_markers.path.exists()  # no sweep marked
