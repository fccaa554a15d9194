"""A sweep refused for what the catalog says changes nothing (`coordination/launch.py`):
it is planned from the catalog before the runtime opens, so a plan or todo not found
(or self-declared approvers: test_self_declared_gates.py) starts no embedded server, and leaves nothing beside the catalog (no ``.<catalog>.coord.redis/`` with its conf,
AOF and log, no lock, no audit line). What needs Redis to judge (a blocker that may have
succeeded in a sweep not synced yet) is still judged there."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from coordination.cli.main import cli
from coordination.errors import CoordError
from tests.unit.support.catalogs import write_repo_a_catalog

pytestmark = pytest.mark.timeout(60)


def catalog(tmp: Path) -> Path:
    (tmp / "a").mkdir(exist_ok=True)
    return write_repo_a_catalog(tmp, """\
    - {id: TODO-001, task: build, repo: a, plan: PLAN-001, run: "true"}
    - {id: TODO-002, task: ship, repo: a, plan: PLAN-001, run: "true", blocked_by: [TODO-001]}
""")


@pytest.mark.parametrize(("argv", "said"), [
    (["plan", "sweep", "PLAN-NOPE"], "unknown plan 'PLAN-NOPE'"),
    (["todo", "run", "TODO-NOPE"], "unknown todo 'TODO-NOPE'"),
], ids=["unknown-plan", "unknown-todo"])
def test_a_refused_sweep_leaves_nothing_beside_the_catalog(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], said: str) -> None:
    monkeypatch.delenv("COORD_REDIS_URL", raising=False)
    eco = catalog(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    r = CliRunner().invoke(cli, ["--file", str(eco), *argv])
    assert isinstance(r.exception, CoordError) and r.exception.exit_code == 2, r.output
    assert said in r.exception.message
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_blocked_todo_is_judged_after_its_blockers_sweeps_are_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TODO-002's blocker may have succeeded in a sweep not synced yet, which only Redis
    says: it is refused as blocked once that was read (a blocker done in a sweep not
    synced lets it run: test_todo_run.py)."""
    monkeypatch.delenv("COORD_REDIS_URL", raising=False)
    eco = catalog(tmp_path)
    r = CliRunner().invoke(cli, ["--file", str(eco), "todo", "run", "TODO-002"])
    assert isinstance(r.exception, CoordError) and r.exception.exit_code == 2, r.output
    assert "TODO-002 is blocked" in r.exception.message
