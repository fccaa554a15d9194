"""Steering in the audit log: pause, unpause, cancel, resume and rollback each append
one entry naming who did it (COORD_USER) and what it did, to the hash-chained log;
with the catalog's approvers:, signed by the actor's SSH key (real ssh-keygen)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from coordination.catalog.audit import log as audit
from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from coordination.sweeps.governance import control_log
from coordination.trust import sshsig
from tests.unit.support.sweeps import PLAN, repos_of, write_catalog
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(120)


def steering_entries(cat: Path) -> list[dict[str, Any]]:
    return [e for e in audit.read(audit.log_path(cat)) if str(e["op"]).startswith("sweep.")]


def test_each_steering_action_is_an_entry_naming_its_actor(
        rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.embedded import embedded_workers

    monkeypatch.setenv("COORD_USER", "alice@example.com")
    cat = write_catalog(tmp_path / "eco", [
        {"id": "TODO-001", "repo": "api", "run": "while [ ! -f go ]; do sleep 0.05; done",
         "undo": "true"},
        {"id": "TODO-002", "repo": "web", "run": "true", "undo": "true",
         "blocked_by": ["TODO-001"]},
    ])
    go = tmp_path / "eco" / "repos" / "api" / "go"
    svc = SweepService(rt, cat)
    with embedded_workers(rt, repos_of(svc)):
        sid = svc.start(PLAN, ignore_blockers=True)
        wait_for(lambda: (rt.checkpoints.get(sid, "TODO-001") or {}).get("status") == "running",
                 30, "TODO-001 to run")
        assert svc.pause(sid)["changed"] is True
        assert svc.unpause(sid)["changed"] is True
        assert svc.cancel(sid)["cancelled"] is True
        svc.wait(sid, timeout=60)
        go.write_text("")
        monkeypatch.setenv("COORD_USER", "bob@example.com")
        assert svc.resume(sid)["rerun"] == ["TODO-001", "TODO-002"]
        assert svc.wait(sid, timeout=60)["status"] == "succeeded"
        assert svc.rollback(sid, dry_run=True)["dry_run"] is True  # a preview: no entry
        svc.rollback(sid)
        svc.wait(sid, timeout=60)
    got = steering_entries(cat)
    assert [(e["op"], e["who"], e["ids"]) for e in got] == [
        ("sweep.pause", "alice@example.com", [sid]),
        ("sweep.unpause", "alice@example.com", [sid]),
        ("sweep.cancel", "alice@example.com", [sid]),
        ("sweep.resume", "bob@example.com", [sid]),
        ("sweep.rollback", "bob@example.com", [sid]),
    ]
    pause, _unpause, cancel, resume, rollback = (e["decision"] for e in got)
    assert pause["changed"] is True and pause["sweep_id"] == sid and pause["at"]
    assert cancel["cancelled"] is True
    assert resume["rerun"] == ["TODO-001", "TODO-002"] and resume["run"] == 1
    assert sorted(rollback["compensate"]) == ["TODO-001", "TODO-002"]
    # no approvers: nothing signed, nothing said about it
    assert not any("signature" in e["decision"] or "unsigned" in e["decision"] for e in got)
    count, broken = audit.verify(audit.log_path(cat))
    assert broken is None and count >= 5
    # The events name the actor too: pause and unpause by `by`, a cancel in its reason.
    events = {e.kind: e.to_dict() for e in rt.events.read(sweep_id=sid)}
    assert events["sweep.paused"]["by"] == "alice@example.com"
    assert events["sweep.unpaused"]["by"] == "alice@example.com"
    assert events["sweep.cancelled"]["reason"] == "cancelled by alice@example.com"


def keygen(tmp: Path, name: str) -> Path:
    path = tmp / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                    str(path)], check=True, timeout=30)
    return path


def test_with_approvers_the_actor_signs_and_a_key_nobody_allows_is_said(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COORD_USER", "ana")
    cat = write_catalog(tmp_path / "eco", [{"id": "TODO-001", "repo": "api", "run": "true"}])
    ana, zed = keygen(tmp_path, "ana"), keygen(tmp_path, "zed")
    pub = " ".join(Path(f"{ana}.pub").read_text().split()[:2])
    (cat.parent / "allowed").write_text(f"ana {pub}\n")
    doc = yaml.safe_load(cat.read_text())
    doc["approvers"] = {"allowed_signers": "allowed"}
    cat.write_text(yaml.safe_dump(doc, sort_keys=False))

    def rt_with(key: Path) -> Any:  # what record() reads of a runtime: the signing key
        return SimpleNamespace(settings=SimpleNamespace(approve_key=str(key)))

    control_log.record(rt_with(ana), cat, "cancel", "S-1", {"cancelled": True})
    control_log.record(rt_with(zed), cat, "pause", "S-1", {"changed": True})
    signed, unsigned = steering_entries(cat)
    d = signed["decision"]
    assert d["principal"] == "ana" and d["signed_by"].startswith("SHA256:")
    assert "cancel S-1" in d["signed_message"] and "by ana" in d["signed_message"]
    proof = sshsig.verify(d["signature"], d["signed_message"].encode(), cat.parent / "allowed",
                          ["ana"], over=control_log.OVER)
    assert isinstance(proof, sshsig.Proof)
    # the signature is over this action: it does not verify for another
    other = control_log.message("unpause", "S-1", "ana", d["at"])
    assert not isinstance(sshsig.verify(d["signature"], other, cat.parent / "allowed", None,
                                        over=control_log.OVER), sshsig.Proof)
    # zed's key is in no allowed-signers line: the pause stands, the entry says why
    assert unsigned["op"] == "sweep.pause" and "signature" not in unsigned["decision"]
    assert unsigned["decision"]["unsigned"]
    assert audit.verify(audit.log_path(cat))[1] is None
