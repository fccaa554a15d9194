"""Sealed outcomes and gate decisions (issue #38 item 3), in embedded sweeps with
COORD_SIGNING_KEY and COORD_REQUIRE_SIGNED=1: every todo's end is sealed by whoever ends
it; nothing after a gate runs unless the gate's decision is sealed for this sweep, gate,
binding, spec, approvers and votes (coordination/sweeps/governance/decisions.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coordination.runtime.context import Runtime
from coordination.sweeps import SweepService
from coordination.sweeps.governance import decisions
from coordination.sweeps.progress import finish_if_done
from coordination.trust.evidence import outcome_refusal, policy_of
from coordination.trust.signing import Policy
from tests.unit.support.sweeps import PLAN, write_catalog

KEY = "decisions-test-signing-key-0123456789abcdef"
pytestmark = [pytest.mark.timeout(60), pytest.mark.signed(key=KEY)]


def started(rt: Runtime, catalog: Path) -> tuple[SweepService, str]:
    """A sweep whose todos the test runs itself, one by one (no messages sent)."""
    from coordination.dispatch import CeleryDispatcher
    from coordination.sweeps.planning import new_sweep_id
    from tests.unit.support.sweeps import StubApp

    rt.dispatcher = CeleryDispatcher(StubApp(), rt.keys)
    svc = SweepService(rt, catalog)
    spec = svc.plan_spec(PLAN, strategy="levels", ignore_blockers=True)
    return svc, svc.start_spec(spec, new_sweep_id(PLAN))


def run(rt: Runtime, sid: str, todo: str) -> Any:
    from workers.runner import WorkerInfo, run_todo

    return run_todo(rt, sid, todo, WorkerInfo(name="w"))


def test_every_end_of_a_todo_is_sealed_by_whoever_ends_it(keyed_rt: Runtime,
                                                          tmp_path: Path) -> None:
    """A failure (its worker), the skip of what follows it (the progression), a success,
    and a cancel of what never started: each checkpoint's status and exit code verify."""
    rt = keyed_rt
    svc, sid = started(rt, write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "exit 7"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "jobs", "run": "true"},
        {"id": "TODO-004", "repo": "jobs", "run": "true", "blocked_by": ["TODO-003"]},
        {"id": "TODO-005", "repo": "api", "run": "true"},
        {"id": "TODO-006", "repo": "web", "run": "true", "blocked_by": ["TODO-005"]},
    ]))
    run(rt, sid, "TODO-001")
    run(rt, sid, "TODO-003")
    # a failure the progression has not seen yet: the start of what follows skips it
    rt.checkpoints.set_fields(sid, "TODO-005", status="failed", exit_code=1)
    run(rt, sid, "TODO-006")
    svc.cancel(sid)
    ids = ["TODO-001", "TODO-002", "TODO-003", "TODO-004", "TODO-006"]
    cps = rt.checkpoints.get_all(sid, ids)
    assert {t: (c["status"], c.get("exit_code")) for t, c in cps.items()} == {
        "TODO-001": ("failed", 7), "TODO-002": ("skipped", None),
        "TODO-003": ("succeeded", 0), "TODO-004": ("cancelled", None),
        "TODO-006": ("skipped", None)}
    policy = policy_of(rt.settings)
    for t, c in cps.items():
        assert c["outcome_seal"]["sig"].startswith("v1:") and c["outcome_seal"]["run"] == 0
        assert outcome_refusal(policy, sid, t, c, 0) is None, t
    forged = {**cps["TODO-001"], "status": "succeeded", "exit_code": 0}
    assert "signature invalid" in (outcome_refusal(policy, sid, "TODO-001", forged, 0) or "")


def gated(tmp_path: Path, *, last: bool = False) -> Path:
    """TODO-001 -> TODO-002 (a 2-of-2 gate of ana and bo) -> TODO-003 (deploys), unless
    ``last``: the gate ends the plan."""
    todos: list[dict[str, Any]] = [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "api", "gate": {"approvals": 2, "from": ["ana", "bo"]},
         "blocked_by": ["TODO-001"]},
    ]
    if not last:
        todos.append({"id": "TODO-003", "repo": "web", "blocked_by": ["TODO-002"],
                      "run": f"touch {tmp_path}/deployed"})
    return write_catalog(tmp_path / "eco", todos, repos=("api", "web"))


def test_a_forged_gate_status_is_refused_by_the_worker_of_what_follows(
        keyed_rt: Runtime, tmp_path: Path) -> None:
    """The writer passes the gate by hand (status, approvals, no vote) and the todo after
    it is delivered to a worker: it ends failed unrun, naming the gate's decision record,
    the gate and the sweep end failed."""
    rt = keyed_rt
    svc, sid = started(rt, gated(tmp_path))
    run(rt, sid, "TODO-001")
    assert svc.status(sid)["todos"]["TODO-002"]["status"] == "awaiting_approval"
    rt.checkpoints.set_fields(sid, "TODO-002", status="succeeded", approvals=["ana", "bo"])
    outcome, detail = run(rt, sid, "TODO-003")
    record = f"decision record of gate TODO-002 in sweep {sid}"
    assert detail["status"] == "failed" and record in str(detail["reason"]), detail
    assert not (tmp_path / "deployed").exists()
    st = svc.status(sid)
    assert st["status"] == "failed" and record in st["reason"], st
    assert "refused by worker w, at TODO-003" in st["reason"], st
    assert st["todos"]["TODO-002"]["status"] == "failed", st["todos"]["TODO-002"]
    deploy = st["todos"]["TODO-003"]
    assert deploy["status"] == "failed" and deploy["exit_code"] is None, deploy
    assert deploy["reason"].startswith("not run: " + record), deploy


def test_an_honest_decision_is_sealed_and_what_follows_runs(keyed_rt: Runtime,
                                                            tmp_path: Path) -> None:
    rt = keyed_rt
    svc, sid = started(rt, gated(tmp_path))
    run(rt, sid, "TODO-001")
    svc.decide(sid, "TODO-002", "approve", who="ana")
    cp, raw = rt.checkpoints.gate_read(sid, "TODO-002")
    assert cp is not None and "decision" not in cp  # 1 of 2: nothing decided yet
    assert svc.decide(sid, "TODO-002", "approve", who="bo")["status"] == "succeeded"
    run(rt, sid, "TODO-003")
    assert (tmp_path / "deployed").exists()
    assert svc.status(sid)["status"] == "succeeded"

    from coordination.sweeps.spec_store import load_spec

    spec = load_spec(rt, sid)
    assert spec is not None
    cp, raw = rt.checkpoints.gate_read(sid, "TODO-002")
    assert cp is not None
    votes = json.loads(raw)
    policy = policy_of(rt.settings)
    assert decisions.decision_refusal(policy, spec, "TODO-002", cp, votes) is None
    # each part the seal binds, changed after it: refused, naming the record
    record = f"decision record of gate TODO-002 in sweep {sid}"
    for changed, vs in (({**cp, "approvals": ["ana", "bo", "cy"]}, votes),
                        ({**cp, "binding": "0" * 64}, votes),
                        (cp, {"ana": votes["ana"]}),  # a vote taken away
                        (cp, {**votes, "bo": {**votes["bo"], "c": "changed"}})):
        why = decisions.decision_refusal(policy, spec, "TODO-002", changed, vs)
        assert why is not None and why.startswith(record + ": signature invalid"), why
    other = type(spec).from_json(spec.to_json())
    other.sweep_id = "PLAN-001-other"  # copied to another sweep
    assert "signature invalid" in (decisions.decision_refusal(policy, other, "TODO-002", cp,
                                                              votes) or "")
    # of run 0, put back after run 1 opened the gate again
    other = type(spec).from_json(spec.to_json())
    other.run, other.levels = 1, [["TODO-002"]]
    why = decisions.decision_refusal(policy, other, "TODO-002", cp, votes)
    assert why is not None and "decided in run 0, but run 1" in why, why
    other = type(spec).from_json(spec.to_json())
    other.run, other.levels = 1, [["TODO-003"]]  # run 1 kept it: its decision holds
    assert decisions.decision_refusal(policy, other, "TODO-002", cp, votes) is None
    # no key and none required: neither sealed nor checked
    assert decisions.decision_refusal(Policy(), spec, "TODO-002",
                                      {**cp, "decision": None}, votes) is None


def test_a_vote_reads_its_gate_its_votes_and_its_predecessors_in_one_command(
        keyed_rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The binding a vote is signed over is computed from the predecessors' records
    read with the votes it is counted with, as of one instant (one HMGET)."""
    rt = keyed_rt
    svc, sid = started(rt, gated(tmp_path))
    run(rt, sid, "TODO-001")
    client, reads = rt.checkpoints.r, []
    command = client.execute_command

    def spied(*args: Any, **kw: Any) -> Any:
        if args[0] == "HMGET" and args[1] == rt.keys.sweep(sid):
            reads.append(set(args[2:]))
        return command(*args, **kw)

    monkeypatch.setattr(client, "execute_command", spied)
    svc.decide(sid, "TODO-002", "approve", who="ana")
    monkeypatch.undo()
    of_the_gate = [r for r in reads if "g:TODO-002" in r]
    assert of_the_gate and {"t:TODO-002", "t:TODO-001"} <= of_the_gate[0], reads
    assert not [r for r in reads if "t:TODO-001" in r and "g:TODO-002" not in r], reads
    cp, _ = rt.checkpoints.gate_read(sid, "TODO-002")
    assert cp is not None and cp.get("approvals") == ["ana"]


def test_a_forged_gate_that_ends_the_plan_fails_its_sweep_at_its_end(
        keyed_rt: Runtime, tmp_path: Path) -> None:
    """Nothing follows the gate: the sweep's end checks it, ends it and the sweep failed
    (so its sync does not mark the gate completed)."""
    rt = keyed_rt
    svc, sid = started(rt, gated(tmp_path, last=True))
    run(rt, sid, "TODO-001")
    rt.checkpoints.set_fields(sid, "TODO-002", status="succeeded", approvals=["ana", "bo"])
    assert str(finish_if_done(rt, sid, full=True)) == "failed"
    st = svc.status(sid)
    record = f"decision record of gate TODO-002 in sweep {sid}"
    assert st["status"] == "failed" and record in st["reason"], st
    assert st["todos"]["TODO-002"]["status"] == "failed"
    assert "TODO-002" in svc.sync(sid)["failed"]


def test_each_run_keeps_the_last_run_that_dispatched_each_todo(keyed_rt: Runtime,
                                                                tmp_path: Path) -> None:
    """Run 0 is cancelled before anything ran (each todo's cancel sealed in run 0); run 1
    (a resume) runs both, TODO-001 fails; run 2 (resume --only TODO-002) keeps it. Run
    2's signed spec says run 1 ran TODO-001 last: run 0's sealed cancel, put back, is
    refused; run 1's failure holds. A rollback's spec adds its own run for the todos it
    undoes."""
    from coordination.sweeps.rollback import RollbackPlan, rollback_spec
    from coordination.sweeps.spec_store import load_spec

    rt = keyed_rt
    svc, sid = started(rt, write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "exit 7"},
        {"id": "TODO-002", "repo": "web", "run": f"test -f {tmp_path}/ok", "undo": "true"},
    ]))
    svc.cancel(sid)
    cancelled = rt.checkpoints.get_all(sid, ["TODO-001"])["TODO-001"]
    assert cancelled["status"] == "cancelled" and cancelled["outcome_seal"]["run"] == 0
    assert svc.resume(sid)["rerun"] == ["TODO-001", "TODO-002"]
    run(rt, sid, "TODO-001")
    run(rt, sid, "TODO-002")
    (tmp_path / "ok").touch()
    assert svc.resume(sid, only=["TODO-002"])["rerun"] == ["TODO-002"]
    run(rt, sid, "TODO-002")
    spec = load_spec(rt, sid)
    assert spec is not None and spec.run == 2 and spec.levels == [["TODO-002"]]
    assert spec.dispatched == {"TODO-001": 1, "TODO-002": 2}
    assert (spec.last_run("TODO-001"), spec.last_run("TODO-002")) == (1, 2)
    policy = policy_of(rt.settings)
    failed = rt.checkpoints.get_all(sid, ["TODO-001"])["TODO-001"]
    assert failed["status"] == "failed" and failed["outcome_seal"]["run"] == 1
    assert outcome_refusal(policy, sid, "TODO-001", failed, 2, spec.last_run("TODO-001")) \
        is None
    why = outcome_refusal(policy, sid, "TODO-001", cancelled, 2, spec.last_run("TODO-001"))
    assert why is not None and "sealed in run 0, but run 1 ran TODO-001 again" in why, why
    back = rollback_spec(spec, RollbackPlan(["TODO-002"], [["TODO-002"]], [],
                                            {"TODO-002": []}))
    assert back.run == 3 and back.dispatched == {"TODO-001": 1, "TODO-002": 3}
    assert type(back).from_json(back.to_json()).dispatched == back.dispatched
    first = type(spec).from_json(spec.to_json())
    first.run, first.levels, first.dispatched = 0, [["TODO-001", "TODO-002"]], {}
    assert '"dispatched"' not in first.to_json()  # (as a spec of before it reads)


def test_a_poisoned_todo_ends_sealed_as_every_other_end(keyed_rt: Runtime,
                                                        tmp_path: Path) -> None:
    """The lost-run script ends a todo that lost its last allowed run ``failed``, written
    with the seal the door made before it ran (Lua cannot seal), so its sync writes it
    (an unsealed failure was refused). The start script's own poison: below."""
    import time

    from coordination.sweeps.lost import lease_lost
    from coordination.sweeps.spec_store import load_spec

    rt = keyed_rt
    _svc, sid = started(rt, write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true"}]))
    spec = load_spec(rt, sid)
    assert spec is not None
    most = rt.settings.max_lost_runs
    for n in range(most):
        st = rt.transitions.start(sid, "TODO-001", repo="api", concurrency=1, preds=[],
                                  worker=f"w{n}", now=time.time(), max_lost=most)
        assert st.lease is not None, st
        rt.redis.delete(st.lease.key)  # its worker dies
        lease_lost(rt, spec, "TODO-001", rt.checkpoints.get(sid, "TODO-001") or {}, time.time())
    cp = rt.checkpoints.get(sid, "TODO-001") or {}
    assert cp["status"] == "failed" and cp["lost_runs"] == most
    assert outcome_refusal(policy_of(rt.settings), sid, "TODO-001", cp, 0) is None


def test_the_start_scripts_own_endings_are_written_sealed(keyed_rt: Runtime,
                                                          tmp_path: Path) -> None:
    """The start script ends a todo itself when a predecessor did not succeed (skipped)
    and when taking over a dead holder's run was the last its lost runs allowed (failed,
    poison). Each is written with its seal in that same step: read straight after the
    script, before the progression or anything else runs (a worker that died there would
    leave them so), both verify."""
    import time

    from coordination.runtime.transitions import start_token, waiter_rank
    from coordination.sweeps.progress import start_run
    from coordination.sweeps.spec_store import level_index, load_spec

    rt = keyed_rt
    _svc, sid = started(rt, write_catalog(tmp_path, [
        {"id": "TODO-001", "repo": "api", "run": "true"},
        {"id": "TODO-002", "repo": "web", "run": "true", "blocked_by": ["TODO-001"]},
        {"id": "TODO-003", "repo": "jobs", "run": "true"}]))
    spec = load_spec(rt, sid)
    assert spec is not None
    policy = policy_of(rt.settings)

    def ask(todo: str, n: int) -> Any:
        return start_run(rt, spec, todo, worker=f"w{n}", level=level_index(spec, todo),
                         token=f"{start_token(rt.keys, sid, todo)}-{n}",
                         rank=waiter_rank(spec.todos[todo].rank, time.time(), sid, todo),
                         waited=False, probe_for=60.0, waiter_stale=5.0, breaker=None,
                         resources=(), pace=(), patience=time.monotonic() + 5)

    rt.checkpoints.set_fields(sid, "TODO-001", status="failed", exit_code=1)
    assert ask("TODO-002", 0).verdict == "skipped"
    skipped = rt.checkpoints.get(sid, "TODO-002") or {}
    assert skipped["status"] == "skipped" and skipped["outcome_seal"]["run"] == 0
    assert outcome_refusal(policy, sid, "TODO-002", skipped, 0) is None

    verdicts = []
    for n in range(rt.settings.max_lost_runs + 1):
        st = ask("TODO-003", n)
        verdicts.append(str(st.verdict))
        if st.lease is None:
            break
        rt.redis.delete(st.lease.key)  # its worker dies
    assert verdicts[-1] == "poisoned", verdicts
    poisoned = rt.checkpoints.get(sid, "TODO-003") or {}
    assert poisoned["status"] == "failed" and poisoned.get("exit_code") is None
    assert outcome_refusal(policy, sid, "TODO-003", poisoned, 0) is None
    forged = {**poisoned, "status": "succeeded", "exit_code": 0}
    assert "signature invalid" in (outcome_refusal(policy, sid, "TODO-003", forged, 0) or "")


def test_a_refused_gates_failure_is_said_with_its_write(
        keyed_rt: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gate ended ``failed`` on a refused decision says so (``todo.failed``, refused)
    in the same step: a process dying where it used to say it after (the webhooks'
    default events include ``todo.failed``) leaves it said all the same."""
    from coordination.runtime.events import EventLog

    rt = keyed_rt
    svc, sid = started(rt, gated(tmp_path, last=True))
    run(rt, sid, "TODO-001")
    rt.checkpoints.set_fields(sid, "TODO-002", status="succeeded", approvals=["ana", "bo"])
    emit = EventLog.emit

    def dies(self: EventLog, kind: str, **kw: Any) -> str:
        if kind == "todo.failed":
            raise RuntimeError("the process died where it said todo.failed")
        return emit(self, kind, **kw)

    monkeypatch.setattr(EventLog, "emit", dies)
    try:
        finish_if_done(rt, sid, full=True)
    except RuntimeError:
        pass
    assert svc.status(sid)["todos"]["TODO-002"]["status"] == "failed"
    assert [e.data.get("refused") for e in rt.events.read(sweep_id=sid)
            if e.kind == "todo.failed" and e.todo_id == "TODO-002"] == [True]
