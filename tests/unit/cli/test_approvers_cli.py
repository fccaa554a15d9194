"""`coord approvers set FILE|unset|show` (#50): the catalog's approvers: edited through coord,
checked first (a bad allowed-signers line named by file and line, exit 2, nothing
written) and audited; 0.4 needed a hand edit."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from coordination.catalog import audit
from coordination.catalog.store import CatalogStore
from tests.unit.support.cli import coord
from tests.unit.support.sweeps import write_catalog

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def eco(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])


def signers(where: Path, name: str = "alice@example.com") -> str:
    key = where.parent / "id_test"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    line = f"{name} {key.with_suffix('.pub').read_text().split(' ')[0]} " \
           f"{key.with_suffix('.pub').read_text().split(' ')[1]}\n"
    where.write_text("# approvers\n" + line)
    return line


def test_set_checks_writes_and_audits_then_unset(eco: Path) -> None:
    (eco.parent / ".coord").mkdir()
    signers(eco.parent / ".coord" / "allowed_signers")
    r = coord(eco, "approvers", "show", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"allowed_signers": None}
    r = coord(eco, "approvers", "set", ".coord/allowed_signers", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"allowed_signers": ".coord/allowed_signers"}
    found = CatalogStore(eco).load().approvers
    assert found is not None and found.allowed_signers == ".coord/allowed_signers"
    [entry] = audit.read(audit.log_path(eco))
    assert entry["op"] == "approvers_set"
    assert entry["changes"] == [{"id": "approvers", "kind": "catalog", "action": "updated",
                                 "fields": {"allowed_signers": [None,
                                                                ".coord/allowed_signers"]}}]
    assert entry["argv"][-4:] == ["approvers", "set", ".coord/allowed_signers", "--json"]
    r = coord(eco, "approvers", "unset")
    assert r.returncode == 0, r.stderr
    assert CatalogStore(eco).load().approvers is None
    assert [e["op"] for e in audit.read(audit.log_path(eco))] == ["approvers_set",
                                                                   "approvers_unset"]


@pytest.mark.parametrize("text, where", [
    ("alice@example.com ssh-ed25519 not-base64!\n", "allowed:1: the key is not a ssh-ed25519"),
    ("# only a comment\n\nalice@example.com\n", "allowed:3: no principals, key type and key"),
    ("# nobody\n", "allowed: names no principal"),
])
def test_a_bad_file_is_named_by_line_and_nothing_is_written(eco: Path, text: str,
                                                             where: str) -> None:
    (eco.parent / "allowed").write_text(text)
    before = eco.read_bytes()
    r = coord(eco, "approvers", "set", "allowed")
    assert r.returncode == 2 and where in r.stderr, r.stderr
    assert eco.read_bytes() == before
    assert not audit.log_path(eco).exists() or audit.read(audit.log_path(eco)) == []
    r = coord(eco, "approvers", "set", "missing")
    assert r.returncode == 2 and "missing: cannot be read" in r.stderr
