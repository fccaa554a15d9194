"""`coord doctor`'s approvers check: self-declared identities are a warning, a problem
for a gate naming `from:` or needing several approvals; an allowed-signers file must
exist and give every gate approver a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordination.ops import doctor
from coordination.ops.doctor import Doctor, Level
from coordination.settings import Settings
from tests.unit.support.catalogs import write_repo_a_catalog

pytestmark = pytest.mark.timeout(60)


def catalog(tmp: Path, extra: str = "") -> Path:
    return write_repo_a_catalog(tmp, """\
    - {id: TODO-001, task: ok, repo: a, plan: PLAN-001, gate: {approvals: 1, from: [ana, bo]}}
""", extra)


def findings(eco: Path) -> list[tuple[Level, str]]:
    d = Doctor(Settings(redis_url="redis://h:6379/0"), eco)
    return [(f.level, f.message) for f in doctor.check_approvers(d)]


def test_self_declared_approvers_are_a_warning(tmp_path: Path) -> None:
    eco = catalog(tmp_path)
    eco.write_text(eco.read_text().replace("{approvals: 1, from: [ana, bo]}", "{}"))
    [(level, message)] = findings(eco)
    assert level == Level.warning and "self-declared" in message


@pytest.mark.parametrize("gate", ["{approvals: 1, from: [ana, bo]}", "{approvals: 2}"])
def test_a_gate_naming_people_without_approvers_is_a_problem(tmp_path: Path, gate: str) -> None:
    eco = catalog(tmp_path)
    eco.write_text(eco.read_text().replace("{approvals: 1, from: [ana, bo]}", gate))
    [(level, message)] = findings(eco)
    assert level == Level.problem and "self-declared" in message and "TODO-001" in message
    assert ("from: [ana, bo]" in message) if "from" in gate else ("approvals: 2" in message)


def test_the_allowed_signers_file_must_name_every_approver(tmp_path: Path) -> None:
    eco = catalog(tmp_path, "approvers: {allowed_signers: signers}\n")
    [(level, message)] = findings(eco)
    assert level == Level.problem and "unreadable" in message
    (tmp_path / "signers").write_text("ana ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPzz\n")
    [(level, message)] = findings(eco)
    assert level == Level.warning and message.endswith("bo (their approvals cannot count)")
    (tmp_path / "signers").write_text("ana,bo ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPzz\n")
    assert findings(eco)[0][0] == Level.ok
