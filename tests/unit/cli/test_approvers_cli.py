"""`coord approvers set FILE|unset|show` (#50): the catalog's approvers: edited through coord,
checked first (a bad allowed-signers line named by file and line, exit 2, nothing
written) and audited; 0.4 needed a hand edit."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from coordination.catalog.audit import log as audit
from coordination.catalog.file.store import CatalogStore
from tests.unit.support.cli import coord

pytestmark = pytest.mark.timeout(60)


def signers(where: Path, name: str = "alice@example.com") -> str:
    key = where.parent / "id_test"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    line = f"{name} {key.with_suffix('.pub').read_text().split(' ')[0]} " \
           f"{key.with_suffix('.pub').read_text().split(' ')[1]}\n"
    where.write_text("# approvers\n" + line)
    return line


def test_set_checks_writes_and_audits_then_unset(one_todo: Path) -> None:
    (one_todo.parent / ".coord").mkdir()
    signers(one_todo.parent / ".coord" / "allowed_signers")
    r = coord(one_todo, "approvers", "show", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"allowed_signers": None}
    r = coord(one_todo, "approvers", "set", ".coord/allowed_signers", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"allowed_signers": ".coord/allowed_signers"}
    found = CatalogStore(one_todo).load().approvers
    assert found is not None and found.allowed_signers == ".coord/allowed_signers"
    [entry] = audit.read(audit.log_path(one_todo))
    assert entry["op"] == "approvers_set"
    assert entry["changes"] == [{"id": "approvers", "kind": "catalog", "action": "updated",
                                 "fields": {"allowed_signers": [None,
                                                                ".coord/allowed_signers"]}}]
    assert entry["argv"][-4:] == ["approvers", "set", ".coord/allowed_signers", "--json"]
    r = coord(one_todo, "approvers", "unset")
    assert r.returncode == 0, r.stderr
    assert CatalogStore(one_todo).load().approvers is None
    assert [e["op"] for e in audit.read(audit.log_path(one_todo))] == ["approvers_set",
                                                                   "approvers_unset"]


@pytest.mark.parametrize("text, where", [
    ("alice@example.com ssh-ed25519 not-base64!\n", "allowed:1: the key is not a ssh-ed25519"),
    ("# only a comment\n\nalice@example.com\n", "allowed:3: no principals, key type and key"),
    ("# nobody\n", "allowed: names no principal"),
])
def test_a_bad_file_is_named_by_line_and_nothing_is_written(one_todo: Path, text: str,
                                                             where: str) -> None:
    (one_todo.parent / "allowed").write_text(text)
    before = one_todo.read_bytes()
    r = coord(one_todo, "approvers", "set", "allowed")
    assert r.returncode == 2 and where in r.stderr, r.stderr
    assert one_todo.read_bytes() == before
    assert not audit.log_path(one_todo).exists() or audit.read(audit.log_path(one_todo)) == []
    r = coord(one_todo, "approvers", "set", "missing")
    assert r.returncode == 2 and "missing: cannot be read" in r.stderr
