"""`coord audit --verify` after 0.5's gaps (#59): a hand edit is reported until it was
reported (a later coord edit or the sweep's automatic sync records it, never absorbs
it), ``resources:`` and ``order:`` are covered, a signed entry whose key is not the
name it claims is reported, and the criteria results beside the catalog count only
where an audit entry vouches for them. Real CLI, real ssh-keygen; the sync on the
in-process runtime with embedded workers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordination.catalog.audit import log as audit
from coordination.catalog.runs import criteria
from tests.unit.support.cli import coord_inline

pytestmark = pytest.mark.timeout(180)

CATALOG = """\
version: 1
repos:
  - {name: api, path: api}
resources:
  - {name: db, capacity: 2}
coordination:
  plans:
    - {id: PLAN-001, title: p, status: active, completion_criteria: [said only]}
  todos:
    - {id: TODO-001, task: a, repo: api, plan: PLAN-001, run: "true"}
"""


@pytest.fixture
def audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from coordination.settings import get_settings

    monkeypatch.setenv("COORD_USER", "tester")
    get_settings.cache_clear()
    (tmp_path / "api").mkdir()
    path = tmp_path / "ecosystem.yaml"
    path.write_text(CATALOG)
    assert coord_inline(path, "todo", "update", "TODO-001", "--priority", "low").code == 0
    return path


def verify(audited: Path, code: int = 0) -> Any:
    r = coord_inline(audited, "audit", "--verify", "--json")
    assert r.code == code, (r.out, r.err)
    return json.loads(r.out)


def by_hand(audited: Path, edit: Any) -> None:
    doc = yaml.safe_load(audited.read_text())
    edit(doc)
    audited.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_a_hand_edit_is_not_absorbed_by_the_next_coord_edit(audited: Path) -> None:
    by_hand(audited, lambda d: d["coordination"]["todos"][0].update(task="renamed by hand"))
    assert coord_inline(audited, "todo", "update", "TODO-001", "--priority", "high").code == 0
    doc = verify(audited)  # 0.5: nothing to say (the coord edit absorbed the hand edit)
    [hand] = doc["hand_edits"]
    [change] = hand["changes"]
    assert (change["id"], change["action"], list(change["fields"])) == (
        "TODO-001", "updated", ["task"])
    assert doc["edited_outside_coord"] == [] and doc["reported"] is True
    entries = audit.read(audit.log_path(audited))
    ops = [e["op"] for e in entries]
    assert ops[-3:] == [audit.HAND_EDIT, "update_todo", audit.REPORTED]
    assert entries[-3]["who"] == audit.HAND_WHO
    # Reported once: the next --verify has nothing new; a new hand edit is reported.
    assert verify(audited)["hand_edits"] == [] and verify(audited)["reported"] is False
    by_hand(audited, lambda d: d["coordination"]["plans"][0].update(title="again"))
    doc = verify(audited)
    assert [c["id"] for c in doc["edited_outside_coord"]] == ["PLAN-001"]
    human = coord_inline(audited, "audit", "--verify")
    assert human.code == 0 and "PLAN-001" not in human.out  # reported already


def test_resources_and_order_are_covered(audited: Path) -> None:
    def edit(d: Any) -> None:
        d["resources"][0]["capacity"] = 9
        d["order"] = {"by": ["runtime"], "cycles": "error"}

    by_hand(audited, edit)
    human = coord_inline(audited, "audit", "--verify")
    assert human.code == 0, human.err
    assert "db (resource) updated: capacity" in human.out, human.out
    assert "order (catalog) updated: by, cycles" in human.out, human.out


def test_a_sweeps_sync_records_an_earlier_hand_edit(audited: Path, rt: Any) -> None:
    from tests.unit.support.sweeps import run_sweep

    by_hand(audited, lambda d: d["coordination"]["plans"][0].update(title="hand title"))
    svc, sid, st = run_sweep(rt, audited)
    assert st["status"] == "succeeded", st
    svc.sync(sid)  # what the sweep's end writes into the catalog (the automatic sync)
    entries = audit.read(audit.log_path(audited))
    assert audit.HAND_EDIT in [e["op"] for e in entries]
    doc = verify(audited)
    assert [c["id"] for h in doc["hand_edits"] for c in h["changes"]] == ["PLAN-001"]


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="no ssh-keygen")
def test_a_signed_entry_by_another_persons_key_is_reported(audited: Path, tmp_path: Path) -> None:
    from types import SimpleNamespace

    from coordination.sweeps.governance import control_log

    keys = {}
    for name in ("ana", "bo"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                        str(tmp_path / name)], check=True)
        keys[name] = (tmp_path / f"{name}.pub").read_text().split()[:2]
    allowed = audited.parent / "allowed_signers"
    allowed.write_text("".join(f"{n} {k[0]} {k[1]}\n" for n, k in keys.items()))
    audited.write_text(audited.read_text() + "approvers: {allowed_signers: allowed_signers}\n")
    assert coord_inline(audited, "todo", "update", "TODO-001", "--priority", "medium").code == 0
    rt: Any = SimpleNamespace(settings=SimpleNamespace(approve_key=str(tmp_path / "bo")))
    # ana's name, bo's key (COORD_USER=ana with bo's COORD_APPROVE_KEY)
    control_log.record(rt, audited, "cancel", "S-1", {"cancelled": True}, who="ana")
    control_log.record(rt, audited, "pause", "S-1", {"paused": True}, who="bo")  # honest
    doc = verify(audited, code=1)  # 0.5: exit 0, the entry logged under the name it claims
    [p] = doc["signers"]
    assert (p["who"], p["op"]) == ("ana", "sweep.cancel")
    assert "gives to bo, not to ana" in p["problem"], p
    human = coord_inline(audited, "audit", "--verify")
    assert human.code == 1 and "signer" in human.out and "not to ana" in human.out


def test_criteria_results_count_only_where_an_entry_vouches(audited: Path) -> None:
    assert coord_inline(audited, "plan", "update", "PLAN-001", "--criterion", "flag set", "--check",
                        "test -e flag").code == 0
    r = coord_inline(audited, "plan", "status", "PLAN-001", "--check", "--json")
    assert r.code == 1 and r.json()["checks"][0]["ok"] is False
    path = criteria.results_path(audited)
    data = json.loads(path.read_text())
    data["PLAN-001"][0].update(ok=True, exit_code=0)  # forged: the check passed
    path.write_text(json.dumps(data))
    # 0.5: plan status (and the sync's completion) read the forged result as passed
    assert coord_inline(audited, "plan", "status", "PLAN-001", "--json").json()["checks"][0]["ok"] \
        is None
    assert criteria.read_results(audited) == {}
    doc = verify(audited, code=1)
    [f] = doc["files"]
    assert f["file"] == str(path) and "PLAN-001" in f["problem"]
    # coord's own run vouches again
    (audited.parent / "flag").touch()
    assert coord_inline(audited, "plan", "status", "PLAN-001", "--check", "--json").code == 0
    assert [x["ok"] for x in criteria.read_results(audited)["PLAN-001"]] == [True]
    assert verify(audited)["files"] == []
