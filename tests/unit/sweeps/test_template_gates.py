"""A gate template (``for_each`` with ``gate:``) is one gate per repo: `coord approve
TODO-010 --sweep ID` decides every waiting instance at once, each vote on its own
instance's binding (with ``approvers:``, an SSH signature over each binding, which
verifies for that instance only); it prints a summary, and one audit entry names them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from click.testing import CliRunner

from coordination.cli.context import Context
from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from coordination.trust import sshsig
from tests.unit.support.sweeps import (PLAN, at_the_gate, dropped_after, fresh_runtime,
                                       write_catalog)

pytestmark = pytest.mark.timeout(120)

REPOS = ("api", "web", "jobs")


@pytest.fixture
def keyed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """A runtime whose approvals are signed with ana's SSH key (COORD_APPROVE_KEY)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    str(tmp_path / "ana")], check=True, timeout=30)
    pub = " ".join((tmp_path / "ana.pub").read_text().split()[:2])
    (tmp_path / "signers").write_text(f"ana {pub}\n")
    monkeypatch.setenv("COORD_SIGNING_KEY", "w" * 32)
    monkeypatch.setenv("COORD_APPROVE_KEY", str(tmp_path / "ana"))
    monkeypatch.setenv("COORD_USER", "ana")
    with dropped_after(fresh_runtime()) as rt:
        yield rt


def catalog(tmp_path: Path) -> Path:
    cat = write_catalog(tmp_path, [
        {"id": "TODO-009", "for_each": "tag:svc", "run": "true"},
        {"id": "TODO-010", "for_each": "tag:svc", "blocked_by": ["TODO-009[same]"],
         "gate": {"approvals": 1, "from": ["ana", "bo"]}},
        {"id": "TODO-011", "for_each": "tag:svc", "run": "true",
         "blocked_by": ["TODO-010[same]"]},
    ], repos=REPOS)
    text = cat.read_text().replace("path: repos/api", "path: repos/api\n  tags: [svc]")
    for r in REPOS[1:]:
        text = text.replace(f"path: repos/{r}", f"path: repos/{r}\n  tags: [svc]")
    cat.write_text(text + "approvers: {allowed_signers: signers}\n")
    return cat


#: The gate template's instances, one per repo.
GATES = [f"TODO-010[{r}]" for r in REPOS]


def test_approving_a_template_decides_each_waiting_instance_on_its_binding(
        keyed: Runtime, tmp_path: Path) -> None:
    rt = keyed
    cat = catalog(tmp_path)
    with at_the_gate(rt, cat, 30, gates=GATES) as (svc, sid):
        runner = CliRunner()
        with mock.patch("coordination.cli.gates.get_runtime", lambda _file, **_kw: rt):
            from coordination.cli.gates import approve

            res = runner.invoke(approve, ["TODO-010", "--sweep", sid], obj=Context(cat))
        assert res.exit_code == 0, (res.output, res.exception)
        assert (f"approved 3 instance(s) of TODO-010 by ana in sweep {sid}: now 3 succeeded"
                in res.output), res.output
        st = svc.wait(sid, timeout=60)
    assert st["status"] == "succeeded", st
    votes = rt.checkpoints.gate_votes(sid, GATES)
    bindings = {r: str(rt.checkpoints.get(sid, f"TODO-010[{r}]")["binding"]) for r in REPOS}
    assert len(set(bindings.values())) == 3  # each instance its own binding
    allowed = tmp_path / "signers"
    # one signature over the three bindings' tree, each vote with its own path
    assert len({str(votes[f"TODO-010[{r}]"]["ana"]["ssh"]) for r in REPOS}) == 1
    for r in REPOS:
        vote = votes[f"TODO-010[{r}]"]["ana"]
        sig, tree = str(vote["ssh"]), vote["tree"]
        own = sshsig.binding_message(sid, f"TODO-010[{r}]", bindings[r], "approve", "ana")
        assert not isinstance(sshsig.verify_vote(sig, tree, own, allowed, ["ana"]), str)
        assert isinstance(sshsig.verify(sig, own, allowed, ["ana"]), str)  # not alone
        other = "web" if r != "web" else "api"  # another instance's binding: refused
        theirs = sshsig.binding_message(sid, f"TODO-010[{other}]", bindings[other],
                                        "approve", "ana")
        assert isinstance(sshsig.verify_vote(sig, tree, theirs, allowed, ["ana"]), str)
    from coordination.catalog.audit import log as audit

    found = [e for e in audit.read(audit.log_path(cat)) if e.get("op") == "approve"]
    assert len(found) == 1 and sorted(found[0]["ids"]) == sorted(f"TODO-010[{r}]" for r in REPOS)


def test_a_template_with_nothing_waiting_says_so_and_an_unknown_id_is_refused(
        keyed: Runtime, tmp_path: Path) -> None:
    from coordination.errors import NotFoundError, UsageError

    rt = keyed
    cat = catalog(tmp_path)
    with at_the_gate(rt, cat, 30, gates=GATES) as (svc, sid):
        first = svc.decide(sid, "TODO-010[api]", "reject")  # one decided on its own
        assert first["status"] == "failed"
        out = svc.decide_template(sid, "TODO-010", "approve")
        assert [d["todo_id"] for d in out["decided"]] == ["TODO-010[web]", "TODO-010[jobs]"]
        assert out["not_waiting"] == {"failed": 1} and out["failed"] == {}
        with pytest.raises(UsageError, match=r"no instance of TODO-010 awaits approval .*"
                                             r"3 instances: 1 failed, 2 succeeded"):
            svc.decide_template(sid, "TODO-010", "approve")
        with pytest.raises(NotFoundError, match="TODO-099"):
            svc.decide_template(sid, "TODO-099", "approve")
        svc.wait(sid, timeout=60)


def test_approving_many_instances_signs_and_checks_once(
        keyed: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`coord approve TODO-010` over a template's N instances with approvers: one
    ssh-keygen signs every vote (one signature over the tree of their bindings) and
    each check after the first is remembered: a handful of processes, not 5 x N (at
    1,000 instances that was 42 s; see docs/how-to/gates-and-waves.md)."""
    from coordination.trust.approvers import Approvers
    from coordination.trust.approvers import verified
    from coordination.trust.evidence import policy_of

    rt = keyed
    repos = tuple(f"r{i:02d}" for i in range(30))
    cat = write_catalog(tmp_path, [
        {"id": "TODO-010", "for_each": "r*", "gate": {"approvals": 1, "from": ["ana", "bo"]}},
    ], repos=repos)
    cat.write_text(cat.read_text() + "approvers: {allowed_signers: signers}\n")
    svc = SweepService(rt, cat)
    sid = svc.start(PLAN)
    real = subprocess.run
    keygens: list[list[str]] = []

    def counting(args: Any, *a: Any, **kw: Any) -> Any:
        if args and str(args[0]).endswith("ssh-keygen"):
            keygens.append([str(x) for x in args])
        return real(args, *a, **kw)

    monkeypatch.setattr(subprocess, "run", counting)
    from coordination.errors import UsageError

    with pytest.raises(UsageError, match="cy may not approve TODO-010"):
        svc.decide_template(sid, "TODO-010", "approve", who="cy")  # said once, as before
    assert keygens == []  # and nothing signed for it
    out = svc.decide_template(sid, "TODO-010", "approve")
    assert out["statuses"] == {"succeeded": 30} and out["failed"] == {}
    assert len(keygens) <= 3, keygens  # sign once, find-principals and verify once
    # every vote still stands on its own: a fresh reader (nothing remembered) checks each
    from coordination.trust import sshsig

    sshsig._CHECKED.clear()
    gates = [f"TODO-010[{r}]" for r in repos]
    votes = rt.checkpoints.gate_votes(sid, gates)
    for g in gates:
        binding = str(rt.checkpoints.get(sid, g)["binding"])
        users, refused, _ = verified(sid, g, {"approvals": 1, "from": ["ana", "bo"]}, binding,
                                     votes[g], started_by=None,
                                     approvers=Approvers(tmp_path / "signers"),
                                     policy=policy_of(rt.settings))
        assert users == ["ana"], (g, refused)
