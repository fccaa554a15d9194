"""A gate that asks for particular or several people (`from:`, `approvals` > 1) in a
catalog without `approvers:` is never silent (#49 item 7): `plan validate` warns
(gate-self-declared), `coord doctor` exits 1 (its check: test_doctor_approvers.py), and
COORD_REQUIRE_APPROVERS=1 refuses to start its sweep (exit 2, naming the gate and the fix)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from coordination.catalog.file.store import CatalogStore
from coordination.cli.main import cli
from coordination.errors import PlanError
from coordination.planner.validate import validate_plan
from coordination.sweeps import SweepService
from tests.unit.support.catalogs import write_repo_a_catalog
from tests.unit.support.sweeps import fresh_runtime

pytestmark = pytest.mark.timeout(60)


def catalog(tmp: Path, gate: str, extra: str = "") -> Path:
    (tmp / "a").mkdir(exist_ok=True)
    return write_repo_a_catalog(tmp, f"""\
    - {{id: TODO-001, task: build, repo: a, plan: PLAN-001, run: "true"}}
    - {{id: TODO-002, task: ok, repo: a, plan: PLAN-001, gate: {gate}, blocked_by: [TODO-001]}}
""", extra)


def codes(eco: Path) -> list[str]:
    cat = CatalogStore(eco).load()
    return [f.code for f in validate_plan(cat, "PLAN-001")]


@pytest.mark.parametrize("gate", ["{from: [ana, bo]}", "{approvals: 2}"])
def test_plan_validate_warns(tmp_path: Path, gate: str) -> None:
    eco = catalog(tmp_path, gate)
    assert "gate-self-declared" in codes(eco)
    r = CliRunner().invoke(cli, ["--file", str(eco), "plan", "validate", "PLAN-001"])
    assert "TODO-002" in r.output and "approvers" in r.output, r.output
    assert r.exit_code == 0, r.output  # a warning
    assert "gate-self-declared" not in codes(catalog(tmp_path, "{}"))
    with_approvers = catalog(tmp_path, gate, "approvers: {allowed_signers: signers}\n")
    assert "gate-self-declared" not in codes(with_approvers)


def test_require_approvers_refuses_to_start_the_sweep(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    eco = catalog(tmp_path, "{approvals: 2}")
    monkeypatch.setenv("COORD_REQUIRE_APPROVERS", "1")
    svc = SweepService(fresh_runtime(), eco)
    with pytest.raises(PlanError) as got:
        svc.plan_spec("PLAN-001", strategy="levels", ignore_blockers=False)
    assert got.value.exit_code == 2
    assert "TODO-002" in got.value.message and "approvals: 2" in got.value.message
    assert "approvers: {allowed_signers: FILE}" in str(got.value.hint)
    beside = sorted(p.name for p in eco.parent.iterdir())
    r = CliRunner().invoke(cli, ["--file", str(eco), "plan", "sweep", "PLAN-001"])
    assert isinstance(r.exception, PlanError) and r.exception.exit_code == 2, r.output
    assert "COORD_REQUIRE_APPROVERS=1" in r.exception.message
    # Refused before the runtime opens: no embedded server started, nothing left beside
    # the catalog (its conf, AOF and log).
    assert sorted(p.name for p in eco.parent.iterdir()) == beside
    # a plain gate, or one with approvers:, starts
    svc = SweepService(fresh_runtime(), catalog(tmp_path, "{}"))
    assert "TODO-002" in svc.plan_spec("PLAN-001", strategy="levels",
                                       ignore_blockers=False).todos
    monkeypatch.delenv("COORD_REQUIRE_APPROVERS")
    svc = SweepService(fresh_runtime(), catalog(tmp_path, "{approvals: 2}"))
    assert "TODO-002" in svc.plan_spec("PLAN-001", strategy="levels",
                                       ignore_blockers=False).todos
