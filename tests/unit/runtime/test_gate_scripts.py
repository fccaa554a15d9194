"""The gate scripts (lua/gate_open.lua, lua/gate_decide.lua), the wave cap of
lua/todo_queue.lua and lua/wave_move.lua, on fakeredis and on a real redis-server."""

from __future__ import annotations

import json
import threading

import pytest
import redis

from coordination.keys import Keys
from coordination.runtime.checkpoints import CheckpointStore
from coordination.runtime.events import EventLog
from coordination.runtime.transitions import GateDecision, GateOpening, Transitions
from coordination.status import TodoStatus

pytestmark = pytest.mark.timeout(30)
KEYS = Keys("gt")
WAITING = (TodoStatus.pending,)


def sweep(r: redis.Redis, *, status: str = "running", levels: int = 2) -> CheckpointStore:
    cps = CheckpointStore(r, KEYS)
    cps.create_sweep("S", {"status": status, "terminal": 0})
    for i in range(levels):
        r.hset(KEYS.sweep("S"), mapping={f"level_left:{i}": 1, f"level_ok:{i}": 0})
    return cps


def opened(r: redis.Redis, binding: str = "b1", needed: int = 2) -> list[tuple[str, int]]:
    return Transitions(r, KEYS, lease_ttl=30).open_gates(
        "S", [GateOpening("G", binding, None, needed, {"from": ["ana", "bo", "cy"]})],
        allowed_from=WAITING)


def vote(r: redis.Redis, who: str, decision: str = "approve", *, comment: str = "",
         level: int = -1, successors: list[tuple[str, str]] | None = None) -> GateDecision:
    """What sweeps/governance/approvals.py does around the script: read the gate, count the
    approvals under its binding (here every vote counts: the script's part is the
    compare-and-set, not the checking), call it, and on ``changed`` read again."""
    cps, tr = CheckpointStore(r, KEYS), Transitions(r, KEYS, lease_ttl=30)
    for _ in range(50):
        cp, raw = cps.gate_read("S", "G")
        binding = str((cp or {}).get("binding") or "")
        votes = {**(json.loads(raw) if raw else {}), who: {"d": decision, "b": binding}}
        users = [u for u, v in votes.items() if v["d"] == "approve" and v["b"] == binding]
        got = tr.decide_gate("S", "G", who=who, decision=decision, binding=binding, seen=raw,
                             counted=users, vote={"d": decision, "b": binding, "at": 1,
                                                  "c": comment},
                             comment=comment, level=level, successors=successors or [])
        if got.verdict != "changed":
            return got
    raise AssertionError("the votes kept changing")


def kinds(r: redis.Redis) -> list[str]:
    return [e.kind for e in EventLog(r, KEYS).read("S")]


def test_a_gate_opens_once_and_says_so_once(r: redis.Redis) -> None:
    cps = sweep(r)
    assert opened(r) == [("G", 0)]
    assert opened(r) == []  # a second sender finds it open
    cp = cps.get("S", "G")
    assert cp is not None and cp["status"] == "awaiting_approval" and cp["needed"] == 2
    assert "lease_key" not in cp
    assert kinds(r) == ["gate.waiting"]
    sweep(r, status="paused")
    r.hdel(KEYS.sweep("S"), "t:G")
    assert opened(r) == []  # nothing opens on a paused sweep


def test_two_approvers_at_once_pass_the_gate_exactly_once(r: redis.Redis) -> None:
    """The race the script closes: each approver's vote and count are one step, so of
    two approvals landing together on a 2-of-N gate exactly one passes it, and its
    successor is queued once."""
    for _ in range(20):
        r.flushall()
        sweep(r)
        r.hset(KEYS.sweep("S"), "r:N", "1")
        opened(r)
        got: dict[str, str] = {}
        barrier = threading.Barrier(2)

        def approve(who: str) -> None:
            barrier.wait()
            got[who] = vote(r, who, level=0, successors=[("N", "q")]).verdict

        threads = [threading.Thread(target=approve, args=(w,)) for w in ("bo", "cy")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got.values()) == ["approved", "counted"], got
        cps = CheckpointStore(r, KEYS)
        assert cps.get("S", "G")["status"] == "succeeded"  # type: ignore[index]
        assert cps.get("S", "N")["status"] == "queued"  # type: ignore[index]
        rec = cps.get_sweep_fields("S", ("terminal",)) or {}
        assert int(rec.get("terminal") or 0) == 1
        assert kinds(r).count("todo.succeeded") == 1 and kinds(r).count("todo.queued") == 1


def test_one_person_counts_once_and_a_rejection_fails_the_gate(r: redis.Redis) -> None:
    sweep(r)
    opened(r, needed=2)
    assert vote(r, "bo").verdict == "counted"
    again = vote(r, "bo")  # (refusing a second approval is the caller's: it read the first)
    assert (again.verdict, again.approvals) == ("counted", 1)
    no = vote(r, "cy", "reject", comment="too risky", level=0)
    assert no.verdict == "rejected" and no.terminal == 1
    cp = CheckpointStore(r, KEYS).get("S", "G")
    assert cp is not None and cp["status"] == "failed" and cp["reason"] == "rejected by cy: too risky"
    late = vote(r, "ana")
    assert (late.verdict, late.detail) == ("status", "failed")
    assert kinds(r)[-2:] == ["gate.rejected", "todo.failed"]


def test_approvals_carry_over_only_under_the_same_binding(r: redis.Redis) -> None:
    """A gate opened again (a resume) keeps the approvals given under the same binding;
    a changed binding (the spec or a predecessor's outcome changed) starts from none."""
    cps = sweep(r)
    opened(r, binding="b1", needed=2)
    vote(r, "bo")
    cps.reset_todos("S", ["G"], status=TodoStatus.pending)
    assert opened(r, binding="b1") == [("G", 1)]
    cps.reset_todos("S", ["G"], status=TodoStatus.pending)
    assert opened(r, binding="b2") == [("G", 0)]
    again = vote(r, "bo")  # a new binding: counts
    assert (again.verdict, again.approvals) == ("counted", 1)


def test_the_wave_cap_counts_the_wave_in_flight(r: redis.Redis) -> None:
    sweep(r)
    tr = Transitions(r, KEYS, lease_ttl=30)
    wave = ["A", "B", "C", "D"]
    r.hset(KEYS.sweep("S"), "t:A", '{"status":"running"}')
    got = tr.queue("S", [(t, "q") for t in ("B", "C", "D")], via="wave", cap=2, counted=wave)
    assert got == ["B"]  # A runs: one place left of two
    assert tr.queue("S", [("C", "q"), ("D", "q")], via="wave", cap=2, counted=wave) == []
    assert tr.queue("S", [("C", "q")], via="no cap") == ["C"]


def test_a_wave_moves_on_once(r: redis.Redis) -> None:
    cps = sweep(r)
    cps.update_sweep("S", wave=0, wave_state="running")
    assert cps.move_wave("S", (0, "running"), wave_state="soaking", wave_until=5.0)
    assert not cps.move_wave("S", (0, "running"), wave_state="done")
    rec = cps.get_sweep_fields("S", ("wave", "wave_state", "wave_until")) or {}
    assert (rec.get("wave"), rec.get("wave_state"), rec.get("wave_until")) == (0, "soaking", 5.0)


def test_the_script_counts_only_votes_the_caller_verified_over_what_it_read(
        r: redis.Redis) -> None:
    """Lua cannot check a seal: votes written straight into the hash (a Redis writer
    without the signing key) pass nothing unless the caller, having verified them,
    counts them; and a caller whose read is stale (another vote landed since) records
    nothing and is told to read again."""
    cps = sweep(r)
    opened(r, needed=2)
    forged = json.dumps({"ana": {"d": "approve", "b": "b1"}, "bo": {"d": "approve", "b": "b1"}})
    r.hset(KEYS.sweep("S"), "g:G", forged)
    tr = Transitions(r, KEYS, lease_ttl=30)
    got = tr.decide_gate("S", "G", who="", decision="approve", binding="b1", seen=forged,
                         counted=[], refused=["vote of ana: unsigned", "vote of bo: unsigned"])
    assert (got.verdict, got.approvals) == ("counted", 0)
    cp = cps.get("S", "G")
    assert cp is not None and cp["status"] == "awaiting_approval"
    assert "approvals" not in cp and cp["refused"] == ["vote of ana: unsigned",
                                                        "vote of bo: unsigned"]
    stale = tr.decide_gate("S", "G", who="cy", decision="approve", binding="b1", seen="",
                           counted=["cy"], vote={"d": "approve", "b": "b1"})
    assert stale.verdict == "changed"
    assert "cy" not in json.loads(r.hget(KEYS.sweep("S"), "g:G"))
    other = tr.decide_gate("S", "G", who="cy", decision="approve", binding="b2", seen=forged,
                           counted=["cy"], vote={"d": "approve", "b": "b2"})
    assert other.verdict == "changed"  # the gate was opened for another binding
    assert kinds(r) == ["gate.waiting"]


def test_the_records_a_count_goes_by_come_in_one_read(r: redis.Redis) -> None:
    """``count_read``: the gate's checkpoint and its votes as stored (the compare-and-set
    value, byte for byte), its predecessors' checkpoints (one with none reads pending)
    and the sweep record's fields asked for; an unknown sweep or gate reads as none."""
    cps = sweep(r)
    opened(r)
    vote(r, "ana")
    cps.set_fields("S", "T1", status="succeeded", exit_code=0)
    cps.update_sweep("S", started_by="ana")
    got = cps.count_read("S", "G", ["T1", "T0"], ("started_by", "starter_sig"))
    cp, raw = cps.gate_read("S", "G")
    assert got.checkpoint == cp and got.checkpoint is not None
    assert got.checkpoint["status"] == "awaiting_approval"
    assert got.votes == raw and json.loads(got.votes)["ana"]["d"] == "approve"
    assert got.preds["T1"]["status"] == "succeeded" and got.preds["T1"]["exit_code"] == 0
    assert got.preds["T0"] == {"status": "pending"}
    assert got.sweep is not None and got.sweep["started_by"] == "ana"
    assert "starter_sig" not in got.sweep and got.sweep["id"] == "S"
    none = cps.count_read("S", "NOPE", [], ())
    assert none.checkpoint is None and none.votes == "" and none.preds == {}
    assert cps.count_read("GONE", "G", ["T1"], ()).sweep is None


def test_the_records_a_start_goes_by_come_in_one_read(r: redis.Redis) -> None:
    """``evidence_read``: the checkpoints asked for that exist, and each gate's votes as
    stored, decoded ({} for none, or for a field that holds no JSON object)."""
    cps = sweep(r)
    opened(r)
    vote(r, "ana")
    cps.set_fields("S", "T1", status="succeeded", exit_code=0)
    r.hset(KEYS.sweep("S"), "g:H", "not json")
    got, votes = cps.evidence_read("S", ["G", "T1", "NOPE"], ["G", "H", "NOPE"])
    assert sorted(got) == ["G", "T1"]
    assert got["T1"]["status"] == "succeeded" and got["G"]["status"] == "awaiting_approval"
    assert list(votes) == ["G", "H", "NOPE"]
    assert votes["G"]["ana"]["d"] == "approve" and votes["H"] == {} and votes["NOPE"] == {}
    assert json.loads(cps.gate_read("S", "G")[1]) == votes["G"]
    assert cps.evidence_read("S", [], []) == ({}, {})
