"""The landing rule (coordination.change.rule.judge) on records written as the worker
and the sweeps write them: verdicts per verify todo and gate, and every blocker."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from coordination.change.model import ChangePlan, Target
from coordination.change.rule import judge
from coordination.errors import CoordError
from coordination.runtime.changes import RepoRecord
from coordination.runtime.context import Runtime
from coordination.settings import get_settings

pytestmark = [pytest.mark.timeout(30), pytest.mark.signed(key="s" * 32)]

PLAN = "PLAN-001"
SET = {"api": "a1", "web": "w1"}


def plan(verify: tuple[str, ...] = ("TODO-101", "TODO-102"),
         gates: tuple[str, ...] = ()) -> ChangePlan:
    targets = {r: Target(r, f"/co/{r}", "main", "origin") for r in SET}
    return ChangePlan(PLAN, "chg", "push", targets, verify,
                      ("TODO-001", *verify, *gates), gates)


def candidates(rt: Runtime) -> None:
    for r, sha in SET.items():
        rt.changes.set_repo(PLAN, r, RepoRecord("main", "origin", "b", sha, f"/wt/{r}"))


def test_one_failed_verify_todo_vetoes_the_set_the_others_passed_on(rt: Runtime) -> None:
    cp = plan(("TODO-101", "TODO-102", "TODO-103"))
    candidates(rt)
    rt.changes.record_verify(PLAN, "TODO-101", "api", SET)
    rt.changes.record_verify(PLAN, "TODO-102", "web", SET, ok=False, exit_code=3,
                             reason="exit 3", sweep="s-1", run=0)
    rt.changes.record_verify(PLAN, "TODO-103", "web", SET)
    j = judge(rt, cp, candidates=dict(SET))
    assert {t: v.verdict for t, v in j.verify.items()} == {
        "TODO-101": "passed", "TODO-102": "failed", "TODO-103": "passed"}
    assert not j.landable and j.verified_by() == [] and not j.verified
    [b] = j.blockers
    assert (b.kind, b.id) == ("verify", "TODO-102")
    assert "exit 3" in b.why and "s-1" in b.why
    # passed again on the same set: the last end of a todo is what it says
    rt.changes.record_verify(PLAN, "TODO-102", "web", SET)
    j = judge(rt, cp, candidates=dict(SET))
    assert j.landable and j.verified_by() == ["TODO-101", "TODO-102", "TODO-103"]


def test_a_success_on_another_set_is_stale_and_names_the_repo_that_moved(rt: Runtime) -> None:
    cp = plan(("TODO-101",))
    candidates(rt)
    rt.changes.record_verify(PLAN, "TODO-101", "api", SET)
    j = judge(rt, cp, candidates={"api": "a1", "web": "w2"})
    assert j.verify["TODO-101"].verdict == "stale"
    assert j.verify["TODO-101"].candidates == SET
    assert [(b.kind, b.id) for b in j.blockers] == [("verify", "TODO-101"), ("repo", "web")]
    assert "w1" in j.blockers[1].why and "w2" in j.blockers[1].why
    missing = judge(rt, plan(("TODO-101", "TODO-109")), candidates=dict(SET))
    assert missing.verify["TODO-109"].verdict == "missing"
    assert [b.id for b in missing.blockers] == ["TODO-109"]


def ran(rt: Runtime, todo: str, shas: dict[str, str] | None = None, sweep: str = "s-0",
        run: int = 0, **kw: object) -> None:
    """``todo`` started in ``run`` of ``sweep`` (the pointer says so) and ended (sealed
    record, as the worker writes it)."""
    rt.changes.note_sweep(PLAN, sweep, run, [todo], last=False)
    rt.changes.record_verify(PLAN, todo, "api", dict(shas or SET), sweep=sweep, run=run,
                             **kw)  # type: ignore[arg-type]


def test_an_unsigned_or_moved_verify_record_is_refused_with_a_key(signed: Runtime) -> None:
    rt = signed
    cp = plan(("TODO-101", "TODO-102"))
    candidates(rt)
    ran(rt, "TODO-101")  # sealed by this process's key
    rt.changes.note_sweep(PLAN, "s-0", 0, ["TODO-102"], last=False)
    key = rt.keys.change(PLAN)
    # a keyless writer: one verify: field, straight into the hash
    rt.redis.hset(key, "verify:TODO-102", json.dumps({"shas": SET, "ok": True, "at": 1}))
    j = judge(rt, cp, candidates=dict(SET))
    assert j.verify["TODO-101"].verdict == "passed"
    assert j.verify["TODO-102"].verdict == "refused"
    [b] = j.blockers
    assert b.kind == "evidence" and b.id == "TODO-102"
    assert "verify record verify:TODO-102 of PLAN-001" in b.why and "unsigned" in b.why
    # a sealed record copied to another todo fails its seal
    rt.redis.hset(key, "verify:TODO-102", rt.redis.hget(key, "verify:TODO-101"))
    j = judge(rt, cp, candidates=dict(SET))
    assert j.verify["TODO-102"].verdict == "refused"
    assert "signature invalid" in (j.verify["TODO-102"].why or "")


def vote(rt: Runtime, sweep: str, gate: str, who: str, binding: str,
         keys: tuple[str, ...] = (), **over: object) -> None:
    """``who``'s approving vote on ``gate`` as coord approve writes it (sealed with
    ``keys``), with ``over`` changed after sealing (a forgery)."""
    from coordination.trust import evidence

    raw = rt.redis.hget(rt.keys.sweep(sweep), f"g:{gate}")
    votes = json.loads(raw) if raw else {}
    body = {"d": "approve", "b": binding, "at": 1.0, "c": ""}
    votes[who] = {**evidence.seal("vote", evidence.vote_about(sweep, gate, binding, who), body,
                                  keys), **over}
    rt.redis.hset(rt.keys.sweep(sweep), f"g:{gate}", json.dumps(votes))


def create_sweep(rt: Runtime, sid: str, todos: dict[str, object] | None = None,
                 run: int = 0, status: str = "running", **more: object) -> None:
    """A plan sweep ``sid`` at ``run`` whose spec (signed with the process's key, if it
    has one) froze ``todos`` (and ``more`` spec fields: levels, dispatched); the plan's
    pointer names it."""
    from coordination.trust import signing

    text = json.dumps({"sweep_id": sid, "plan": PLAN, "run": run, "todos": todos or {},
                       **more})
    keys = rt.settings.signing_keys
    rt.checkpoints.create_sweep(sid, {"plan": PLAN, "status": status, "run": run,
                                      "spec": text, "created_at": 1.0,
                                      **(signing.sign(sid, run, text, keys[0]) if keys
                                         else {})})
    rt.changes.note_sweep(PLAN, sid, run, [], last=True)


def bound(rt: Runtime, sid: str, gate: str) -> str:
    """Gate ``gate``'s binding in sweep ``sid`` as coord computes it (from the sweep's
    spec and the gate's predecessors' checkpoints now): what its opening stores."""
    from coordination.trust import evidence

    spec = json.loads(str((rt.checkpoints.get_sweep_fields(sid, ("spec",)) or {})["spec"]))
    todos = spec.get("todos") or {}
    preds = [p for p in (todos.get(gate) or {}).get("preds") or [] if p in todos]
    return evidence.binding_of(evidence.spec_digest_of(spec.get("plan"), todos),
                               rt.checkpoints.get_all(sid, preds) if preds else {})


def decided(rt: Runtime, sid: str, gate: str) -> None:
    """Gate ``gate`` of sweep ``sid`` decided as coord's count seals its decision: for
    the sweep's spec and run now, its binding, approvals and votes as they are."""
    from coordination.trust import evidence

    rec = rt.checkpoints.get_sweep_fields(sid, ("spec", "run")) or {}
    spec = json.loads(str(rec.get("spec")))
    cp, raw = rt.checkpoints.gate_read(sid, gate)
    assert cp is not None
    run = int(str(rec.get("run") or 0))
    digest = evidence.spec_digest_of(spec.get("plan"), spec.get("todos") or {})
    rt.checkpoints.set_fields(sid, gate, decision=evidence.decision_stamp(
        rt.settings.signing_keys, sid, gate, digest, str(cp.get("binding") or ""), run,
        cp.get("approvals") or [], json.loads(raw) if raw else {}))


def resumed(rt: Runtime, sid: str, run: int) -> None:
    """Sweep ``sid`` runs again as ``run`` (a resume): its spec signed for that run, as a
    resume signs it."""
    from coordination.trust import signing

    text = str((rt.checkpoints.get_sweep_fields(sid, ("spec",)) or {}).get("spec"))
    keys = rt.settings.signing_keys
    rt.checkpoints.update_sweep(sid, run=run, **(signing.sign(sid, run, text, keys[0])
                                                 if keys else {}))


def test_an_approved_gate_counts_only_with_sealed_votes_behind_it(signed: Runtime) -> None:
    """A writer without the key sets a 2-of-2 gate's status and approvals by hand (plain
    checkpoint fields): the rule refuses it unless sealed votes under the gate's binding
    back each approval it needs."""
    rt = signed
    cp = plan(("TODO-101",), gates=("TODO-050",))
    cp = ChangePlan(cp.plan, cp.branch, cp.land, cp.targets, cp.verify_todos, cp.todos,
                    cp.gates, {"TODO-050": 2})
    candidates(rt)
    create_sweep(rt, "s-1")
    ran(rt, "TODO-101", sweep="s-1")
    rt.checkpoints.set_fields("s-1", "TODO-050", status="succeeded", approvals=["ana", "bo"],
                              binding=bound(rt, "s-1", "TODO-050"))
    key = rt.settings.signing_keys[0]

    def gate() -> tuple[str, str]:
        # (sealed each time as though coord's count decided it: what is checked here is
        # the votes behind the decision; the decision's own check is the next test's)
        decided(rt, "s-1", "TODO-050")
        j = judge(rt, cp, candidates=dict(SET))
        return j.gates["TODO-050"].verdict, j.gates["TODO-050"].why or ""

    verdict, why = gate()  # no votes at all
    assert verdict == "refused" and "only 0 of the 2" in why, why
    vote(rt, "s-1", "TODO-050", "ana", bound(rt, "s-1", "TODO-050"), (key,))
    vote(rt, "s-1", "TODO-050", "bo", bound(rt, "s-1", "TODO-050"))  # unsigned: by someone without the key
    verdict, why = gate()
    assert verdict == "refused" and "only 1 of the 2" in why and "vote of bo" in why, why
    vote(rt, "s-1", "TODO-050", "bo", bound(rt, "s-1", "TODO-050"), (key,), b="b0")  # sealed, then moved binding
    assert gate()[0] == "refused"
    vote(rt, "s-1", "TODO-050", "bo", "b0", (key,))  # sealed, for another binding
    assert gate()[0] == "refused"
    vote(rt, "s-1", "TODO-050", "bo", bound(rt, "s-1", "TODO-050"), (key,), c="changed after")  # altered
    verdict, why = gate()
    assert verdict == "refused" and "signature invalid" in why, why
    vote(rt, "s-1", "TODO-050", "bo", bound(rt, "s-1", "TODO-050"), (key,))
    assert gate()[0] == "approved"
    assert judge(rt, cp, candidates=dict(SET)).landable
    rt.checkpoints.set_fields("s-1", "TODO-050", approvals=["ana", "cy"])  # names no vote
    verdict, why = gate()
    assert verdict == "refused" and "vote of cy" in why, why
    j = judge(rt, cp, candidates=dict(SET))
    assert [(b.kind, b.id) for b in j.blockers] == [("evidence", "TODO-050")]


def test_gates_and_todos_of_the_plans_last_sweep(rt: Runtime) -> None:
    cp = plan(("TODO-101",), gates=("TODO-050", "TODO-051"))
    candidates(rt)
    rt.changes.record_verify(PLAN, "TODO-101", "api", SET)
    j = judge(rt, cp, candidates=dict(SET))
    assert {g: v.verdict for g, v in j.gates.items()} == {"TODO-050": "missing",
                                                          "TODO-051": "missing"}
    create_sweep(rt, "s-1")
    rt.checkpoints.set_fields("s-1", "TODO-050", status="succeeded", approvals=["ana"],
                              binding=bound(rt, "s-1", "TODO-050"))
    vote(rt, "s-1", "TODO-050", "ana", bound(rt, "s-1", "TODO-050"))
    rt.checkpoints.set_fields("s-1", "TODO-051", status="awaiting_approval", approvals=[])
    j = judge(rt, cp, candidates=dict(SET))
    assert j.sweep == "s-1"
    assert j.gates["TODO-050"].verdict == "approved"
    assert j.gates["TODO-050"].approvals == ["ana"]
    assert [(b.kind, b.id) for b in j.blockers] == [("gate", "TODO-051")]
    assert "waiting" in j.blockers[0].why and "s-1" in j.blockers[0].why
    for status, verdict in (("failed", "rejected"), ("cancelled", "expired")):
        rt.checkpoints.set_fields("s-1", "TODO-051", status=status)
        assert judge(rt, cp, candidates=dict(SET)).gates["TODO-051"].verdict == verdict
    rt.checkpoints.set_fields("s-1", "TODO-051", status="succeeded",
                              binding=bound(rt, "s-1", "TODO-051"))
    vote(rt, "s-1", "TODO-051", "bo", bound(rt, "s-1", "TODO-051"))
    rt.checkpoints.set_fields("s-1", "TODO-051", approvals=["bo"])
    rt.checkpoints.set_fields("s-1", "TODO-001", status="failed", reason="exit 2")
    j = judge(rt, cp, candidates=dict(SET))
    assert [(b.kind, b.id) for b in j.blockers] == [("run", "TODO-001")]
    rt.checkpoints.set_fields("s-1", "TODO-001", status="succeeded")
    # the verify todo skipped in the last sweep after its success: not verified
    rt.checkpoints.set_fields("s-1", "TODO-101", status="skipped", finished_at=2e9,
                              reason="blocker TODO-001 failed")
    j = judge(rt, cp, candidates=dict(SET))
    assert j.verify["TODO-101"].verdict == "skipped"
    assert [(b.kind, b.id) for b in j.blockers] == [("verify", "TODO-101")]


def test_a_dropped_change_stays_failed_verification_until_it_passes_on_new_candidates(
        rt: Runtime) -> None:
    cp = plan(("TODO-101",))
    candidates(rt)
    rt.changes.record_verify(PLAN, "TODO-101", "api", SET, ok=False, exit_code=3)
    rt.changes.drop(PLAN, "verify todo TODO-101 failed (exit 3): boom", dict(SET))
    j = judge(rt, cp, candidates=dict(SET))
    assert j.dropped
    assert [(b.kind, b.id) for b in j.blockers] == [("verify", "TODO-101"), ("train", PLAN)]
    assert "boom" in j.blockers[1].why
    new = {"api": "a2", "web": "w1"}
    rt.changes.record_verify(PLAN, "TODO-101", "api", new)
    j = judge(rt, cp, candidates=dict(new))
    assert not j.dropped and j.landable


def test_a_drop_stands_until_every_verify_todo_passed_again_after_it(rt: Runtime) -> None:
    """The audit's train: both verify todos passed on the change's own commits (OWN);
    the train merged the change ahead into them (TRAIN), its first verify todo failed
    there (exit 5) and the train stopped, dropped the change and put its worktrees back
    on OWN. TODO-102's success on OWN is older than the drop: it does not lift it (0.4
    did: status said drafted with no reason and the repos "verified by TODO-102")."""
    cp = plan(("TODO-201", "TODO-202"))
    own, train = dict(SET), {"api": "a1+ahead", "web": "w1+ahead"}
    candidates(rt)
    rt.changes.record_verify(PLAN, "TODO-201", "api", own)
    rt.changes.record_verify(PLAN, "TODO-202", "web", own)
    rt.changes.record_verify(PLAN, "TODO-201", "api", train, ok=False, exit_code=5,
                             reason="exit 5")
    rt.changes.drop(PLAN, "verify todo TODO-201 failed (exit 5) [sweep s-9]", train)
    j = judge(rt, cp, candidates=dict(own))
    assert j.dropped and not j.landable
    assert j.verified_by() == []
    assert {t: v.verdict for t, v in j.verify.items()} == {"TODO-201": "stale",
                                                          "TODO-202": "passed"}
    [train_b] = [b for b in j.blockers if b.kind == "train"]
    assert "TODO-201 failed (exit 5)" in train_b.why
    rt.changes.record_verify(PLAN, "TODO-201", "api", own)  # one of two passed again
    j = judge(rt, cp, candidates=dict(own))
    assert j.dropped and [b.kind for b in j.blockers] == ["train"]
    rt.changes.record_verify(PLAN, "TODO-202", "web", own)  # ... and the other: verified again
    j = judge(rt, cp, candidates=dict(own))
    assert not j.dropped and j.landable
    assert j.verified_by() == ["TODO-201", "TODO-202"]


def test_a_failed_verify_todo_deleted_from_the_catalog_still_vetoes_its_set(
        rt: Runtime) -> None:
    """The audit: TODO-101 (markupsafe's verify) failed, TODO-102 and TODO-103 passed;
    `coord todo delete TODO-101` took it out of the catalog, and 0.4 found the change
    landable (it looked only at the todos the catalog has now)."""
    full = plan(("TODO-101", "TODO-102", "TODO-103"))
    candidates(rt)
    create_sweep(rt, "s-1", {t: {"repo": "api"} for t in full.todos}, status="failed")
    rt.checkpoints.set_fields("s-1", "TODO-001", status="succeeded", exit_code=0)
    for t in ("TODO-101", "TODO-102", "TODO-103"):
        ran(rt, t, sweep="s-1", ok=t != "TODO-101", exit_code=0 if t != "TODO-101" else 3,
            last="broken escape" if t == "TODO-101" else None)
    rt.checkpoints.set_fields("s-1", "TODO-101", status="failed", reason="exit 3",
                              finished_at=2e9)
    assert [(b.kind, b.id) for b in judge(rt, full, candidates=dict(SET)).blockers] == [
        ("verify", "TODO-101")]
    deleted = plan(("TODO-102", "TODO-103"))  # the catalog without TODO-101
    j = judge(rt, deleted, candidates=dict(SET))
    assert not j.landable and j.verified_by() == [] and not j.verified
    assert j.verify["TODO-101"].verdict == "failed"
    assert [(b.kind, b.id) for b in j.blockers] == [("verify", "TODO-101"), ("run", "TODO-101")]
    veto, run = j.blockers
    assert "exit 3" in veto.why and "broken escape" in veto.why
    assert "no verify todo of PLAN-001 now" in veto.why
    assert "failed in the plan's last sweep s-1 (exit 3)" in run.why
    assert "no longer a todo of PLAN-001" in run.why
    # verify: turned off instead of deleted: the same veto (the todo still ran in s-1)
    off = ChangePlan(PLAN, "chg", "push", deleted.targets, deleted.verify_todos,
                     ("TODO-001", "TODO-101", "TODO-102", "TODO-103"))
    j = judge(rt, off, candidates=dict(SET))
    assert [(b.kind, b.id) for b in j.blockers] == [("verify", "TODO-101"), ("run", "TODO-101")]
    # a new sweep of the fixed change, on new candidates: the old failure vetoes nothing
    new = {"api": "a2", "web": "w1"}
    create_sweep(rt, "s-2", {t: {"repo": "api"} for t in deleted.todos}, status="succeeded")
    rt.checkpoints.set_fields("s-2", "TODO-001", status="succeeded", exit_code=0)
    for t in deleted.verify_todos:
        ran(rt, t, new, sweep="s-2")
    assert judge(rt, deleted, candidates=dict(new)).landable


def test_a_last_sweep_gone_from_redis_blocks(rt: Runtime) -> None:
    cp = plan(("TODO-101",), gates=("TODO-050",))
    candidates(rt)
    rt.changes.record_verify(PLAN, "TODO-101", "api", SET)
    rt.changes.note_sweep(PLAN, "s-expired", 0, [], last=True)
    j = judge(rt, cp, candidates=dict(SET))
    assert [(b.kind, b.id) for b in j.blockers] == [("gate", "TODO-050"), ("run", PLAN)]
    assert all("s-expired is gone" in b.why for b in j.blockers)


# -- the sweep pointer, replayed records, a verify todo that died (#38 audit) -----------


def test_a_pointer_moved_by_a_keyless_writer_is_refused_naming_it(
        signed: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The older sweep s-1 approved the gate (sealed votes); the last one, s-2, rejected
    it. A writer without the key points the change back at s-1: refused, and no sweep is
    taken for the plan's last (so its gate is not approved)."""
    rt = signed
    cp = plan(("TODO-101",), gates=("TODO-050",))
    candidates(rt)
    key = rt.settings.signing_keys[0]
    create_sweep(rt, "s-1")
    rt.checkpoints.set_fields("s-1", "TODO-050", status="succeeded", approvals=["ana"],
                              binding=bound(rt, "s-1", "TODO-050"))
    vote(rt, "s-1", "TODO-050", "ana", bound(rt, "s-1", "TODO-050"), (key,))
    decided(rt, "s-1", "TODO-050")
    ran(rt, "TODO-101", sweep="s-1")
    assert judge(rt, cp, candidates=dict(SET)).landable
    old = rt.redis.hget(rt.keys.change(PLAN), "sweep")
    create_sweep(rt, "s-2")
    rt.checkpoints.set_fields("s-2", "TODO-050", status="failed", rejected_by="bo")
    j = judge(rt, cp, candidates=dict(SET))
    assert j.sweep == "s-2" and j.gates["TODO-050"].verdict == "rejected"
    field = rt.keys.change(PLAN)
    for forged in ("s-1", json.dumps({"sweep": "s-1", "run": 0, "verify": {
            "TODO-101": ["s-1", 0]}, "at": 1}),
            json.dumps({**json.loads(str(old)), "sweep": "s-1", "run": 0, "at": 2})):
        rt.redis.hset(field, "sweep", forged)
        j = judge(rt, cp, candidates=dict(SET))
        assert not j.landable and j.sweep is None, forged
        assert j.gates["TODO-050"].verdict == "missing"
        pointer = [b for b in j.blockers if b.id == PLAN]
        assert [b.kind for b in pointer] == ["evidence"], j.blockers
        assert "sweep pointer of change PLAN-001" in pointer[0].why
        assert ("unsigned" in pointer[0].why or "signature invalid" in pointer[0].why)
    # the same under COORD_REQUIRE_SIGNED=1 without a key: an unsigned pointer is refused
    monkeypatch.delenv("COORD_SIGNING_KEY")
    monkeypatch.setenv("COORD_REQUIRE_SIGNED", "1")
    get_settings.cache_clear()
    rt.settings = get_settings()
    rt.redis.hset(field, "sweep", "s-1")
    j = judge(rt, cp, candidates=dict(SET))
    assert [b.id for b in j.blockers if b.kind == "evidence"][0] == PLAN
    assert "sweep pointer of change PLAN-001" in j.blockers[0].why
    assert "COORD_REQUIRE_SIGNED=1" in j.blockers[0].why


def test_a_pointer_names_the_run_its_sweep_is_at(signed: Runtime) -> None:
    rt = signed
    cp = plan(("TODO-101",), gates=("TODO-050",))
    candidates(rt)
    create_sweep(rt, "s-1")
    ran(rt, "TODO-101", sweep="s-1")
    rt.checkpoints.update_sweep("s-1", run=1)  # it ran again (a rollback): not noted
    j = judge(rt, cp, candidates=dict(SET))
    [b] = [b for b in j.blockers if b.id == PLAN]
    assert b.kind == "evidence" and "names run 0 of sweep s-1" in b.why
    assert "at run 1" in b.why


def test_an_older_sealed_success_put_back_after_a_later_failure_is_refused(
        signed: Runtime) -> None:
    rt = signed
    cp = plan(("TODO-101",))
    candidates(rt)
    create_sweep(rt, "s-1")
    ran(rt, "TODO-101", sweep="s-1", run=0)
    assert judge(rt, cp, candidates=dict(SET)).landable
    field = rt.keys.change(PLAN)
    success = rt.redis.hget(field, "verify:TODO-101")
    # run 1 (a resume) fails on the same candidates
    resumed(rt, "s-1", 1)
    rt.changes.note_sweep(PLAN, "s-1", 1, ["TODO-101"], last=True)
    rt.changes.record_verify(PLAN, "TODO-101", "api", dict(SET), ok=False, exit_code=3,
                             reason="exit 3", sweep="s-1", run=1)
    rt.checkpoints.set_fields("s-1", "TODO-101", status="failed", reason="exit 3",
                              finished_at=2e9)
    assert judge(rt, cp, candidates=dict(SET)).verify["TODO-101"].verdict == "failed"
    rt.redis.hset(field, "verify:TODO-101", str(success))  # the keyless writer puts it back
    rt.checkpoints.set_fields("s-1", "TODO-101", status="succeeded")  # and the status
    j = judge(rt, cp, candidates=dict(SET))
    assert j.verify["TODO-101"].verdict == "refused"
    [b] = j.blockers
    assert (b.kind, b.id) == ("evidence", "TODO-101")
    assert "verify record verify:TODO-101 of PLAN-001: of run 0 of sweep s-1" in b.why
    assert "last started in run 1 of sweep s-1" in b.why
    # the record rewritten to say run 1: its seal no longer holds
    rt.redis.hset(field, "verify:TODO-101", json.dumps({**json.loads(str(success)),
                                                        "run": 1}))
    j = judge(rt, cp, candidates=dict(SET))
    assert j.verify["TODO-101"].verdict == "refused"
    assert "signature invalid" in (j.verify["TODO-101"].why or "")


def test_a_verify_todo_that_failed_without_a_record_blocks(rt: Runtime) -> None:
    """Its worker died (or writing the record raised): the run's checkpoint says failed,
    the record is the success of the run before."""
    cp = plan(("TODO-101",))
    candidates(rt)
    create_sweep(rt, "s-1")
    ran(rt, "TODO-101", sweep="s-1", run=0)
    assert judge(rt, cp, candidates=dict(SET)).landable
    rt.checkpoints.update_sweep("s-1", run=1)
    rt.changes.note_sweep(PLAN, "s-1", 1, ["TODO-101"], last=True)
    rt.checkpoints.set_fields("s-1", "TODO-101", status="running")
    j = judge(rt, cp, candidates=dict(SET))
    assert j.verify["TODO-101"].verdict == "missing"
    assert "running again in run 1 of sweep s-1" in (j.verify["TODO-101"].why or "")
    for status in ("failed", "skipped", "cancelled"):
        rt.checkpoints.set_fields("s-1", "TODO-101", status=status, reason="lease lost",
                                  finished_at=2e9)
        j = judge(rt, cp, candidates=dict(SET))
        assert j.verify["TODO-101"].verdict == status
        [b] = j.blockers
        assert (b.kind, b.id) == ("verify", "TODO-101")
        assert f"TODO-101 was {status} in run 1 of sweep s-1 (lease lost)" in b.why
        assert ("verify record verify:TODO-101 of PLAN-001 is of run 0 of sweep s-1, an "
                "earlier run") in b.why
    rt.redis.hdel(rt.keys.change(PLAN), "verify:TODO-101")
    rt.checkpoints.set_fields("s-1", "TODO-101", status="failed")
    assert "left no verify record" in judge(rt, cp, candidates=dict(SET)).blockers[0].why
    ran(rt, "TODO-101", sweep="s-1", run=0)  # (the record back, its pointer as before)
    rt.changes.note_sweep(PLAN, "s-1", 1, ["TODO-101"], last=True)
    # without a pointer naming its run (a record of before): the last sweep's status
    rt.redis.hdel(rt.keys.change(PLAN), "sweep")
    create_sweep(rt, "s-2")
    rt.redis.hset(rt.keys.change(PLAN), "sweep", "s-2")  # as 0.4 before this wrote it
    rt.checkpoints.set_fields("s-2", "TODO-101", status="failed", finished_at=2e9)
    assert judge(rt, cp, candidates=dict(SET)).verify["TODO-101"].verdict == "failed"
    rt.checkpoints.set_fields("s-2", "TODO-101", status="failed", finished_at=1.0)
    assert judge(rt, cp, candidates=dict(SET)).landable  # it passed since (coord todo run)


def frozen(cp: ChangePlan) -> dict[str, object]:
    """The spec's todos a sweep of ``cp`` freezes (as planning does, JSON)."""
    return {t: {**d, "preds": list(cp.preds.get(t, ()))} for t, d in cp.definitions.items()}


def defined(cp: ChangePlan, **edit: dict[str, object]) -> ChangePlan:
    """``cp`` as the catalog says it, with its todos' ``edit``s (and TODO-050 a gate
    after TODO-101)."""
    from dataclasses import replace

    from coordination.change.model import definition

    defs = {t: definition({"repo": "api", "run": f"run {t}", "timeout": 60,
                           "gate": {"approvals": 1} if t in cp.gates else None,
                           **edit.get(t, {})})
            for t in cp.todos}
    preds = {"TODO-101": ("TODO-001",), "TODO-050": ("TODO-101",)}
    preds.update({t: tuple(e["preds"]) for t, e in edit.items()  # type: ignore[arg-type]
                  if "preds" in e})
    return replace(cp, definitions=defs, preds=preds)


def test_a_gate_approved_before_the_catalog_changed_the_plan_is_stale(rt: Runtime) -> None:
    cp = defined(plan(("TODO-101",), gates=("TODO-050",)))
    candidates(rt)
    create_sweep(rt, "s-1", frozen(cp), status="succeeded")
    rt.checkpoints.set_fields("s-1", "TODO-001", status="succeeded", exit_code=0)
    ran(rt, "TODO-101", sweep="s-1")
    rt.checkpoints.set_fields("s-1", "TODO-050", status="succeeded", approvals=["ana"],
                              binding=bound(rt, "s-1", "TODO-050"))
    vote(rt, "s-1", "TODO-050", "ana", bound(rt, "s-1", "TODO-050"))
    assert judge(rt, cp, candidates=dict(SET)).landable
    for edit, said in (({"TODO-101": {"run": "pytest -x"}}, "TODO-101 (run)"),
                       ({"TODO-001": {"env": {"A": "1"}, "undo": "git reset"}},
                        "TODO-001 (undo, env)"),
                       ({"TODO-050": {"preds": ()}}, "TODO-050 (edges)")):
        j = judge(rt, defined(cp, **edit), candidates=dict(SET))
        assert j.gates["TODO-050"].verdict == "stale", edit
        [b] = j.blockers
        assert (b.kind, b.id) == ("gate", "TODO-050")
        assert "approved for another binding" in b.why and said in b.why, b.why
        assert "re-run or resume" in b.why


def test_with_approvers_the_rule_checks_each_votes_ssh_signature(
        rt: Runtime, tmp_path: Path) -> None:
    """No COORD_SIGNING_KEY, an allowed-signers file: a gate whose checkpoint says
    approved by ana counts only if ana's vote carries her SSH signature over exactly
    this gate's binding (real ssh-keygen)."""
    from dataclasses import replace

    from coordination.trust import sshsig

    keys = {}
    for name in ("ana", "zed"):
        keys[name] = tmp_path / name
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                        str(keys[name])], check=True, timeout=30)
    pub = " ".join((tmp_path / "ana.pub").read_text().split()[:2])
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"ana {pub}\n")
    cp = replace(plan(("TODO-101",), gates=("TODO-050",)), allowed_signers=str(allowed))
    candidates(rt)
    create_sweep(rt, "s-1")
    ran(rt, "TODO-101", sweep="s-1")
    rt.checkpoints.set_fields("s-1", "TODO-050", status="succeeded", approvals=["ana"],
                              binding=bound(rt, "s-1", "TODO-050"))

    def signed_by(who: str, binding: str | None = None) -> str:
        binding = binding or bound(rt, "s-1", "TODO-050")
        return sshsig.sign(sshsig.binding_message("s-1", "TODO-050", binding, "approve",
                                                  "ana"), str(keys[who]))

    def gate() -> tuple[str, str]:
        j = judge(rt, cp, candidates=dict(SET))
        return j.gates["TODO-050"].verdict, " ".join(b.why for b in j.blockers)

    vote(rt, "s-1", "TODO-050", "ana", bound(rt, "s-1", "TODO-050"))  # hand-written: no signature
    verdict, why = gate()
    assert verdict == "refused" and "no SSH signature" in why, why
    vote(rt, "s-1", "TODO-050", "ana", bound(rt, "s-1", "TODO-050"), ssh=signed_by("zed"))  # a key not in the file
    verdict, why = gate()
    assert verdict == "refused" and f"is not in {allowed}" in why, why
    vote(rt, "s-1", "TODO-050", "ana", bound(rt, "s-1", "TODO-050"), ssh=signed_by("ana", "b0"))  # another binding
    verdict, why = gate()
    assert verdict == "refused" and "does not verify" in why, why
    vote(rt, "s-1", "TODO-050", "ana", bound(rt, "s-1", "TODO-050"), ssh=signed_by("ana"))
    assert gate() == ("approved", "")
    assert judge(rt, replace(cp, allowed_signers=None), candidates=dict(SET)).landable


def test_an_agent_key_signs_an_approval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    """No COORD_APPROVE_KEY: the ssh-agent's key signs (a real ssh-agent, started here),
    the one whose comment names the approver when it holds several."""
    from coordination.trust import sshsig

    for name in ("other", "ana"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                        str(tmp_path / name)], check=True, timeout=30)
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.02)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        for name in ("other", "ana"):
            subprocess.run(["ssh-add", "-q", str(tmp_path / name)], check=True, timeout=10,
                           capture_output=True, env={**os.environ, "SSH_AUTH_SOCK": str(sock)})
        pubs = {n: " ".join((tmp_path / f"{n}.pub").read_text().split()[:2])
                for n in ("other", "ana")}
        assert sshsig._agent_key(["ana"]).split()[:2] == pubs["ana"].split()
        assert sshsig._agent_key(["nobody"]).split()[:2] == pubs["other"].split()
        allowed = tmp_path / "allowed_signers"
        allowed.write_text(f"ana {pubs['ana']}\nother {pubs['other']}\n")
        message = sshsig.binding_message("s-1", "TODO-050", "b1", "approve", "ana")
        proof = sshsig.verify(sshsig.sign(message, None, who="ana"), message, allowed, ["ana"])
        assert isinstance(proof, sshsig.Proof) and proof.principals == ("ana",), proof
        monkeypatch.delenv("SSH_AUTH_SOCK")
        with pytest.raises(CoordError, match="no key to sign with"):
            sshsig.sign(message, None, who="ana")
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_a_todo_counts_as_not_failed_only_with_its_outcome_sealed(signed: Runtime) -> None:
    """"No todo of the last run failed" with a key: a todo that reads ended otherwise
    counts only with its outcome (status, exit code, run) sealed by whoever ended it; a
    failure rewritten to a success by a keyless writer is refused, naming the record."""
    from coordination.trust.evidence import outcome_stamp

    rt = signed
    key = rt.settings.signing_keys
    cp = plan(("TODO-101",))
    candidates(rt)
    create_sweep(rt, "s-1")
    ran(rt, "TODO-101", sweep="s-1")

    def blockers() -> list[tuple[str, str, str]]:
        return [(b.kind, b.id, b.why) for b in judge(rt, cp, candidates=dict(SET)).blockers]

    rt.checkpoints.set_fields("s-1", "TODO-001", status="failed", exit_code=7,
                              outcome_seal=outcome_stamp(key, "s-1", "TODO-001", 0, "failed", 7))
    assert [b[:2] for b in blockers()] == [("run", "TODO-001")]
    rt.checkpoints.set_fields("s-1", "TODO-001", status="succeeded", exit_code=0)  # forged
    [(kind, tid, why)] = blockers()
    assert (kind, tid) == ("evidence", "TODO-001")
    assert why.startswith("outcome record of TODO-001 in sweep s-1 (succeeded): signature "
                          "invalid"), why
    rt.checkpoints.set_fields("s-1", "TODO-001", outcome_seal=None)
    assert "unsigned" in blockers()[0][2]
    for status in ("succeeded", "skipped", "cancelled"):  # as coord seals them: no blocker
        rt.checkpoints.set_fields("s-1", "TODO-001", status=status, exit_code=None,
                                  outcome_seal=outcome_stamp(key, "s-1", "TODO-001", 0, status,
                                                             None))
        assert blockers() == []


def test_an_outcome_of_an_earlier_run_put_back_is_refused(signed: Runtime) -> None:
    """Sealed in run 0; run 1 of the sweep (its signed spec's levels) ran the todo
    again: run 0's success is not run 1's outcome. A todo run 1 did not run keeps it."""
    from coordination.trust import signing
    from coordination.trust.evidence import outcome_stamp

    rt = signed
    key = rt.settings.signing_keys
    cp = plan(("TODO-101",))
    candidates(rt)
    create_sweep(rt, "s-1")
    text = json.dumps({"sweep_id": "s-1", "plan": PLAN, "run": 1, "todos": {},
                       "levels": [["TODO-001"], ["TODO-101"]]})
    rt.checkpoints.update_sweep("s-1", run=1, spec=text, **signing.sign("s-1", 1, text, key[0]))
    rt.changes.note_sweep(PLAN, "s-1", 1, [], last=True)
    ran(rt, "TODO-101", sweep="s-1", run=1)
    rt.checkpoints.set_fields("s-1", "TODO-001", status="succeeded", exit_code=0,
                              outcome_seal=outcome_stamp(key, "s-1", "TODO-001", 0, "succeeded",
                                                         0))
    j = judge(rt, cp, candidates=dict(SET))
    [b] = j.blockers
    assert (b.kind, b.id) == ("evidence", "TODO-001")
    assert "sealed in run 0, but run 1 ran TODO-001 again" in b.why, b.why
    text = json.dumps({"sweep_id": "s-1", "plan": PLAN, "run": 1, "todos": {},
                       "levels": [["TODO-101"]]})
    rt.checkpoints.update_sweep("s-1", spec=text, **signing.sign("s-1", 1, text, key[0]))
    assert judge(rt, cp, candidates=dict(SET)).landable


# -- the last run's todos: each ended, by a sealed outcome of the last run that ran it;
# -- gates by their sealed decision (#38: a keyless writer's later attempts) -------------


def sealed_end(rt: Runtime, sid: str, todo: str, status: str, run: int = 0,
               exit_code: int | None = None) -> dict[str, object]:
    """``todo`` ended ``status`` in ``run`` of ``sid``, sealed as its worker seals it; its
    checkpoint as written."""
    from coordination.trust.evidence import outcome_stamp

    rt.checkpoints.set_fields(sid, todo, status=status, exit_code=exit_code,
                              outcome_seal=outcome_stamp(rt.settings.signing_keys, sid, todo,
                                                         run, status, exit_code))
    return dict(rt.checkpoints.get_all(sid, [todo])[todo])


def test_a_failed_todo_rewritten_to_not_ended_blocks_naming_it(signed: Runtime) -> None:
    """TODO-001 (no verify todo, no gate) failed in the plan's last sweep, which ended. A
    keyless writer rewrites its checkpoint to pending, queued, running, or deletes it:
    it has no outcome of the last run, and blocks, named (0.4 looked only at todos that
    read ended). While the sweep is still running the rule says so, naming what is left;
    a todo the catalog gained after the sweep froze the plan never ran there: nothing."""
    rt = signed
    cp = plan(("TODO-101",))
    candidates(rt)
    create_sweep(rt, "s-1", {t: {"repo": "api"} for t in cp.todos}, status="failed")
    ran(rt, "TODO-101", sweep="s-1")
    sealed_end(rt, "s-1", "TODO-101", "succeeded", exit_code=0)
    failed = sealed_end(rt, "s-1", "TODO-001", "failed", exit_code=7)

    def blockers() -> list[tuple[str, str, str]]:
        return [(b.kind, b.id, b.why) for b in judge(rt, cp, candidates=dict(SET)).blockers]

    assert [b[:2] for b in blockers()] == [("run", "TODO-001")]
    for status in ("pending", "queued", "running", "held", "bogus"):
        rt.checkpoints.set_fields("s-1", "TODO-001", status=status, exit_code=None)
        [(kind, tid, why)] = blockers()
        assert (kind, tid) == ("run", "TODO-001"), status
        assert why.startswith(f"TODO-001 is {status} in the plan's last sweep s-1, which "
                              "ended failed: it has no outcome of the sweep's last run"), why
        assert "coord sweep resume s-1 --only TODO-001" in why
    rt.redis.hdel(rt.keys.sweep("s-1"), "t:TODO-001")  # the checkpoint itself gone
    assert [b[:2] for b in blockers()] == [("run", "TODO-001")]
    # the sweep still running: one blocker, the plan's, naming what has not ended
    rt.redis.hset(rt.keys.sweep("s-1"), "status", "running")
    rt.checkpoints.set_fields("s-1", "TODO-001", status="running")
    [(kind, tid, why)] = blockers()
    assert (kind, tid) == ("run", PLAN)
    assert why == ("the plan's last sweep s-1 is still running (TODO-001 is running): wait "
                   "for it to end (coord sweep watch s-1)"), why
    rt.redis.hset(rt.keys.sweep("s-1"), "status", "paused")
    assert "is still paused (TODO-001 is running)" in blockers()[0][2]
    # it ends, sealed: landable; a todo the catalog has since is not of that run
    rt.redis.hset(rt.keys.sweep("s-1"), "status", "succeeded")
    sealed_end(rt, "s-1", "TODO-001", "succeeded", exit_code=0)
    assert blockers() == []
    later = ChangePlan(PLAN, "chg", "push", cp.targets, cp.verify_todos,
                       (*cp.todos, "TODO-002"), ())
    assert judge(rt, later, candidates=dict(SET)).landable
    rt.checkpoints.set_fields("s-1", "TODO-001", **{k: v for k, v in failed.items()
                                                    if k != "status"}, status="failed")
    assert [b[:2] for b in blockers()] == [("run", "TODO-001")]


def test_an_outcome_of_two_runs_back_put_back_is_refused(signed: Runtime) -> None:
    """Run 0 skipped TODO-001 (sealed), run 1 ran it again and it failed, run 2 (a resume
    --only of another todo) kept it. The keyless writer puts run 0's sealed skip back:
    the spec of run 2 says run 1 ran TODO-001 last (its map of the last run that
    dispatched each todo), so run 0's outcome is refused (0.4 asked only whether run 2
    ran it)."""
    rt = signed
    cp = plan(("TODO-101",))
    candidates(rt)
    create_sweep(rt, "s-1", {t: {"repo": "api"} for t in cp.todos}, run=0, status="failed",
                 levels=[["TODO-001", "TODO-101"]])
    skipped = sealed_end(rt, "s-1", "TODO-001", "skipped", run=0)
    text = json.dumps({"sweep_id": "s-1", "plan": PLAN, "run": 2,
                       "todos": {t: {"repo": "api"} for t in cp.todos},
                       "levels": [["TODO-101"]], "dispatched": {"TODO-001": 1, "TODO-101": 2}})
    from coordination.trust import signing

    key = rt.settings.signing_keys
    rt.checkpoints.update_sweep("s-1", run=2, spec=text,
                                **signing.sign("s-1", 2, text, key[0]))
    rt.changes.note_sweep(PLAN, "s-1", 2, ["TODO-101"], last=True)
    ran(rt, "TODO-101", sweep="s-1", run=2)
    sealed_end(rt, "s-1", "TODO-101", "succeeded", run=2, exit_code=0)
    sealed_end(rt, "s-1", "TODO-001", "failed", run=1, exit_code=7)
    assert [(b.kind, b.id) for b in judge(rt, cp, candidates=dict(SET)).blockers] == [
        ("run", "TODO-001")]
    rt.redis.hset(rt.keys.sweep("s-1"), "t:TODO-001", json.dumps(skipped))  # put back
    [b] = judge(rt, cp, candidates=dict(SET)).blockers
    assert (b.kind, b.id) == ("evidence", "TODO-001")
    assert b.why.startswith("outcome record of TODO-001 in sweep s-1 (skipped): sealed in "
                            "run 0, but run 1 ran TODO-001 again"), b.why
    sealed_end(rt, "s-1", "TODO-001", "succeeded", run=1, exit_code=0)  # of run 1: holds
    assert judge(rt, cp, candidates=dict(SET)).landable


def test_an_approved_gate_counts_only_with_its_decision_sealed(signed: Runtime) -> None:
    """The gate reads approved, its votes sealed and counting; the landing rule checks its
    decision as what follows a gate does (sweeps/governance/decisions.py): gone, copied from another
    gate, over other approvals, or of a run before the last that opened the gate, it is
    refused, naming the record (0.4's rule read only the votes)."""
    rt = signed
    key = rt.settings.signing_keys[0]
    cp = defined(plan(("TODO-101",), gates=("TODO-050", "TODO-051")))
    candidates(rt)
    gates = frozen(cp)
    create_sweep(rt, "s-1", gates, status="succeeded")
    sealed_end(rt, "s-1", "TODO-001", "succeeded", exit_code=0)
    ran(rt, "TODO-101", sweep="s-1")
    for g in cp.gates:
        rt.checkpoints.set_fields("s-1", g, status="succeeded", approvals=["ana"],
                                  binding=bound(rt, "s-1", g))
        vote(rt, "s-1", g, "ana", bound(rt, "s-1", g), (key,))
        decided(rt, "s-1", g)
    j = judge(rt, cp, candidates=dict(SET))
    assert j.landable and j.gates["TODO-050"].verdict == "approved", j.blockers
    good = rt.checkpoints.get_all("s-1", ["TODO-050", "TODO-051"])
    record = "decision record of gate TODO-050 in sweep s-1"

    def refused() -> str:
        j = judge(rt, cp, candidates=dict(SET))
        assert j.gates["TODO-050"].verdict == "refused", j.gates
        [b] = j.blockers
        assert (b.kind, b.id) == ("evidence", "TODO-050")
        assert b.why.startswith(record + ": "), b.why
        return b.why

    rt.checkpoints.set_fields("s-1", "TODO-050", decision=None)
    assert "unsigned" in refused()
    rt.checkpoints.set_fields("s-1", "TODO-050", decision=good["TODO-051"]["decision"])
    assert "signature invalid" in refused()
    rt.checkpoints.set_fields("s-1", "TODO-050", decision=good["TODO-050"]["decision"],
                              approvals=["ana", "bo"])
    votes = rt.redis.hget(rt.keys.sweep("s-1"), "g:TODO-050")
    vote(rt, "s-1", "TODO-050", "bo", bound(rt, "s-1", "TODO-050"), (key,))  # a sealed vote, but after the decision
    assert "signature invalid" in refused()
    rt.checkpoints.set_fields("s-1", "TODO-050", approvals=["ana"])
    rt.redis.hset(rt.keys.sweep("s-1"), "g:TODO-050", str(votes))  # as they were
    assert judge(rt, cp, candidates=dict(SET)).landable
    # run 1 opened TODO-050 again, run 2 did not: run 0's decision put back is refused
    text = json.dumps({"sweep_id": "s-1", "plan": PLAN, "run": 2, "todos": gates,
                       "levels": [["TODO-051"]], "dispatched": {"TODO-050": 1,
                                                                "TODO-051": 2}})
    from coordination.trust import signing

    rt.checkpoints.update_sweep("s-1", run=2, spec=text, **signing.sign("s-1", 2, text, key))
    rt.changes.note_sweep(PLAN, "s-1", 2, [], last=True)
    decided(rt, "s-1", "TODO-051")  # (decided in run 2 for real)
    why = refused()
    assert "decided in run 0, but run 1 of the sweep opened the gate again" in why, why
    decided(rt, "s-1", "TODO-050")
    assert judge(rt, cp, candidates=dict(SET)).landable
    # what the sweep runs changed since the decision (its spec): refused
    gates["TODO-051"] = {**gates["TODO-051"], "timeout": 61}  # type: ignore[dict-item]
    text = json.dumps({"sweep_id": "s-1", "plan": PLAN, "run": 2, "todos": gates,
                       "levels": [["TODO-051"]], "dispatched": {"TODO-050": 1,
                                                                "TODO-051": 2}})
    rt.checkpoints.update_sweep("s-1", spec=text, **signing.sign("s-1", 2, text, key))
    j = judge(rt, cp, candidates=dict(SET))
    assert [(b.kind, b.id) for b in j.blockers] == [("evidence", g) for g in cp.gates]
    assert all("signature invalid" in b.why for b in j.blockers), j.blockers


def test_blockers_are_told_in_the_rules_order(rt: Runtime) -> None:
    """One change blocked by several checks at once: a repo without a candidate, a
    verify todo, a gate waiting, a failed todo of the last run and the train's drop are
    told in that order (land, its dry run and status print them so)."""
    cp = plan(("TODO-101",), gates=("TODO-050",))
    rt.changes.set_repo(PLAN, "api", RepoRecord("main", "origin", "b", "a1", "/wt/api"))
    rt.changes.record_verify(PLAN, "TODO-101", "api", SET, ok=False, exit_code=3)
    rt.changes.drop(PLAN, "verify todo TODO-101 failed (exit 3)", dict(SET))
    create_sweep(rt, "s-1")
    rt.checkpoints.set_fields("s-1", "TODO-050", status="awaiting_approval", approvals=[])
    rt.checkpoints.set_fields("s-1", "TODO-001", status="failed", reason="exit 2")
    j = judge(rt, cp, candidates={"api": "a1", "web": None})
    assert [(b.kind, b.id) for b in j.blockers] == [
        ("repo", "web"), ("verify", "TODO-101"), ("gate", "TODO-050"), ("run", "TODO-001"),
        ("train", PLAN)]


class _Raising:
    """Stands for ``rt`` or the git module while the checks run: any use is a failure."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"a check of the landing rule used {self.what}.{name}")


def test_the_checks_are_a_pure_policy_over_the_facts_gathered(
        signed: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every git, Redis and file read (and the anchor's write) happens in gather: the
    checks, run over the facts with ``rt`` and git replaced by objects that raise and
    no process or file to be opened, judge exactly as judge does. The facts touch every
    check: a repo whose base is gone, a verify todo run outside the last sweep, a gate
    approved by an SSH-signed vote (allowed signers), a failed todo, the train's drop."""
    import builtins
    import io
    import sys
    from dataclasses import replace

    import coordination.change as change_pkg
    from coordination.change import rule, standing
    from coordination.change.landing_evidence import gather
    from coordination.trust import sshsig

    rt = signed
    key = tmp_path / "ana"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ana", "-f",
                    str(key)], check=True, timeout=30)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text("ana " + " ".join((tmp_path / "ana.pub").read_text().split()[:2]) + "\n")
    cp = replace(plan(("TODO-101", "TODO-102"), gates=("TODO-050",)),
                 allowed_signers=str(allowed))
    candidates(rt)
    create_sweep(rt, "s-1")
    ran(rt, "TODO-101", sweep="s-1")
    ran(rt, "TODO-102", sweep="s-9")  # a coord todo run of it, outside the last sweep
    binding = bound(rt, "s-1", "TODO-050")
    rt.checkpoints.set_fields("s-1", "TODO-050", status="succeeded", approvals=["ana"],
                              binding=binding)
    from coordination.trust import evidence

    ssh = sshsig.sign(sshsig.binding_message("s-1", "TODO-050", binding, "approve", "ana"),
                      str(key))
    rt.redis.hset(rt.keys.sweep("s-1"), "g:TODO-050", json.dumps({"ana": evidence.seal(
        "vote", evidence.vote_about("s-1", "TODO-050", binding, "ana"),
        {"d": "approve", "b": binding, "at": 1.0, "c": "", "ssh": ssh},
        rt.settings.signing_keys)}))
    decided(rt, "s-1", "TODO-050")
    rt.checkpoints.set_fields("s-1", "TODO-001", status="failed", reason="exit 2")
    rt.changes.drop(PLAN, "verify todo TODO-101 failed", {"api": "a0", "web": "w0"})
    bases = {"api": standing.Base(None, True, "read"), "web": standing.Base("b", True, "read")}

    want = judge(rt, cp, candidates=dict(SET), bases=bases)
    ev = gather(rt, cp, rt.changes.read(PLAN), dict(SET), bases, True)
    ev.rt = _Raising("rt")  # type: ignore[assignment]
    for name, mod in list(sys.modules.items()):
        if name.startswith(change_pkg.__name__ + ".") and getattr(mod, "g", None) is not None:
            monkeypatch.setattr(mod, "g", _Raising("git"))

    def refused(*a: object, **k: object) -> None:
        raise AssertionError(f"a check of the landing rule ran a process or opened a file: {a!r}")

    for where, name in ((subprocess, "run"), (subprocess, "Popen"), (builtins, "open"),
                        (io, "open"), (os, "open")):
        monkeypatch.setattr(where, name, refused)
    got = rule.Judgement(plan=cp.plan, candidates=dict(SET), sweep=ev.sweep)
    for check in rule.CHECKS:
        got.blockers.extend(check(ev, got))
    monkeypatch.undo()

    assert [(b.kind, b.id, b.why) for b in got.blockers] == \
        [(b.kind, b.id, b.why) for b in want.blockers]
    assert {t: v.document() for t, v in got.gates.items()} == \
        {t: v.document() for t, v in want.gates.items()}
    assert {t: v.document() for t, v in got.verify.items()} == \
        {t: v.document() for t, v in want.verify.items()}
    assert got.gates["TODO-050"].verdict == "approved", got.gates["TODO-050"].why
    assert got.dropped == want.dropped
    assert {b.kind for b in got.blockers} == {"repo", "run", "train"}, got.blockers
    assert "s-9" in ev.elsewhere and set(got.verify) == {"TODO-101", "TODO-102"}
