"""The landing rule (coordination.change.rule.judge) on records written as the worker
and the sweeps write them: verdicts per verify todo and gate, and every blocker."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from coordination.change.model import ChangePlan, Target
from coordination.change.rule import judge
from coordination.runtime.changes import RepoRecord
from coordination.runtime.context import Runtime
from coordination.settings import get_settings

pytestmark = pytest.mark.timeout(30)

PLAN = "PLAN-001"
SET = {"api": "a1", "web": "w1"}


def plan(verify: tuple[str, ...] = ("TODO-101", "TODO-102"),
         gates: tuple[str, ...] = ()) -> ChangePlan:
    targets = {r: Target(r, f"/co/{r}", "main", "origin") for r in SET}
    return ChangePlan(PLAN, "chg", "push", targets, verify,
                      ("TODO-001", *verify, *gates), gates)


@pytest.fixture
def signed(monkeypatch: pytest.MonkeyPatch, rt: Runtime) -> Iterator[Runtime]:
    monkeypatch.setenv("COORD_SIGNING_KEY", "s" * 32)
    get_settings.cache_clear()
    rt.settings = get_settings()
    yield rt
    get_settings.cache_clear()


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


def test_an_unsigned_or_moved_verify_record_is_refused_with_a_key(signed: Runtime) -> None:
    rt = signed
    cp = plan(("TODO-101", "TODO-102"))
    candidates(rt)
    rt.changes.record_verify(PLAN, "TODO-101", "api", SET)  # sealed by this process's key
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
    from coordination.runtime import evidence

    raw = rt.redis.hget(rt.keys.sweep(sweep), f"g:{gate}")
    votes = json.loads(raw) if raw else {}
    body = {"d": "approve", "b": binding, "at": 1.0, "c": ""}
    votes[who] = {**evidence.seal("vote", evidence.vote_about(sweep, gate, binding, who), body,
                                  keys), **over}
    rt.redis.hset(rt.keys.sweep(sweep), f"g:{gate}", json.dumps(votes))


def test_an_approved_gate_counts_only_with_sealed_votes_behind_it(signed: Runtime) -> None:
    """A writer without the key sets a 2-of-2 gate's status and approvals by hand (plain
    checkpoint fields): the rule refuses it unless sealed votes under the gate's binding
    back each approval it needs."""
    rt = signed
    cp = plan(("TODO-101",), gates=("TODO-050",))
    cp = ChangePlan(cp.plan, cp.branch, cp.land, cp.targets, cp.verify_todos, cp.todos,
                    cp.gates, {"TODO-050": 2})
    candidates(rt)
    rt.changes.record_verify(PLAN, "TODO-101", "api", SET)
    rt.checkpoints.create_sweep("s-1", {"plan": PLAN, "status": "running"})
    rt.changes.note_sweep(PLAN, "s-1")
    rt.checkpoints.set_fields("s-1", "TODO-050", status="succeeded", approvals=["ana", "bo"],
                              binding="b1")
    key = rt.settings.signing_keys[0]

    def gate() -> tuple[str, str]:
        j = judge(rt, cp, candidates=dict(SET))
        return j.gates["TODO-050"].verdict, j.gates["TODO-050"].why or ""

    verdict, why = gate()  # no votes at all
    assert verdict == "refused" and "only 0 of the 2" in why, why
    vote(rt, "s-1", "TODO-050", "ana", "b1", (key,))
    vote(rt, "s-1", "TODO-050", "bo", "b1")  # unsigned: by someone without the key
    verdict, why = gate()
    assert verdict == "refused" and "only 1 of the 2" in why and "vote of bo" in why, why
    vote(rt, "s-1", "TODO-050", "bo", "b1", (key,), b="b0")  # sealed, then moved binding
    assert gate()[0] == "refused"
    vote(rt, "s-1", "TODO-050", "bo", "b0", (key,))  # sealed, for another binding
    assert gate()[0] == "refused"
    vote(rt, "s-1", "TODO-050", "bo", "b1", (key,), c="changed after")  # altered
    verdict, why = gate()
    assert verdict == "refused" and "signature invalid" in why, why
    vote(rt, "s-1", "TODO-050", "bo", "b1", (key,))
    j = judge(rt, cp, candidates=dict(SET))
    assert j.gates["TODO-050"].verdict == "approved" and j.landable, j.blockers
    rt.checkpoints.set_fields("s-1", "TODO-050", approvals=["ana", "cy"])  # names no vote
    j = judge(rt, cp, candidates=dict(SET))
    assert [(b.kind, b.id) for b in j.blockers] == [("evidence", "TODO-050")]


def test_gates_and_todos_of_the_plans_last_sweep(rt: Runtime) -> None:
    cp = plan(("TODO-101",), gates=("TODO-050", "TODO-051"))
    candidates(rt)
    rt.changes.record_verify(PLAN, "TODO-101", "api", SET)
    j = judge(rt, cp, candidates=dict(SET))
    assert {g: v.verdict for g, v in j.gates.items()} == {"TODO-050": "missing",
                                                          "TODO-051": "missing"}
    rt.checkpoints.create_sweep("s-1", {"plan": PLAN, "status": "running"})
    rt.changes.note_sweep(PLAN, "s-1")
    rt.checkpoints.set_fields("s-1", "TODO-050", status="succeeded", approvals=["ana"],
                              binding="b1")
    vote(rt, "s-1", "TODO-050", "ana", "b1")
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
    rt.checkpoints.set_fields("s-1", "TODO-051", status="succeeded")
    vote(rt, "s-1", "TODO-051", "bo", "")
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
    rt.changes.record_verify(PLAN, "TODO-101", "api", SET)  # the same set passing: still
    assert judge(rt, cp, candidates=dict(SET)).dropped
    new = {"api": "a2", "web": "w1"}
    rt.changes.record_verify(PLAN, "TODO-101", "api", new)
    j = judge(rt, cp, candidates=dict(new))
    assert not j.dropped and j.landable


def test_a_last_sweep_gone_from_redis_blocks(rt: Runtime) -> None:
    cp = plan(("TODO-101",), gates=("TODO-050",))
    candidates(rt)
    rt.changes.record_verify(PLAN, "TODO-101", "api", SET)
    rt.changes.note_sweep(PLAN, "s-expired")
    j = judge(rt, cp, candidates=dict(SET))
    assert [(b.kind, b.id) for b in j.blockers] == [("gate", "TODO-050"), ("run", PLAN)]
    assert all("s-expired is gone" in b.why for b in j.blockers)
