"""Approval gates on a real redis-server with a real `coord worker` and the real CLI.

A gate (``gate:``, no ``run:``) waits for people, holding no lease and no worker
slot; `coord approve` / `coord reject` decide it. Here: a 2-of-3 gate refusing the
sweep's starter, a repeat approver and a stranger, passing on a third person's
approval; and gates nobody decides in time, one cancelling its sweep, one rolling
it back.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import PLAN, Cluster, keygen, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def gated_catalog(c: Cluster, gate: str, *, undo: bool = False) -> Path:
    """a: TODO-001 (its undo touches ``undone``) -> TODO-002 (the gate) -> TODO-003."""
    c.repo_dir("a").mkdir(parents=True, exist_ok=True)
    undo_line = '      undo: "touch undone"\n' if undo else ""
    c.eco.write_text(f"""version: 1
repos:
  - {{name: a, path: repos/a, concurrency: 2}}
coordination:
  plans:
    - {{id: {PLAN}, title: gated, status: active}}
  todos:
    - id: TODO-001
      task: build
      repo: a
      plan: {PLAN}
      run: "touch built"
{undo_line}    - id: TODO-002
      task: production approval
      repo: a
      plan: {PLAN}
      gate: {gate}
      blocked_by: [TODO-001]
    - id: TODO-003
      task: deploy
      repo: a
      plan: {PLAN}
      run: "touch deployed"
      blocked_by: [TODO-002]
""")
    return c.eco


def at_the_gate(c: Cluster) -> tuple[str, dict[str, Any]]:
    """A worker for a and a sweep of the plan, run until the gate TODO-002 awaits
    approval: the sweep's id and the gate's checkpoint."""
    c.start_worker("a")
    sid = c.start_sweep()
    return sid, c.wait_todo(sid, "TODO-002", {"awaiting_approval"})


def as_user(c: Cluster, user: str, *args: str) -> Any:
    """`coord ARGS --json` as ``user`` (COORD_USER): (exit code, JSON or stderr)."""
    import subprocess

    res = subprocess.run(c.argv(*args, "--json"), env=dict(c.env, COORD_USER=user),
                         capture_output=True, text=True, timeout=60, cwd=c.root)
    return res.returncode, (json.loads(res.stdout) if res.returncode == 0 else res.stderr)


def kinds(c: Cluster, sid: str, todo: str | None = None) -> list[str]:
    return [e["kind"] for e in c.events(sid) if todo is None or e.get("todo_id") == todo]


def test_two_of_three_gate_refuses_the_starter_and_passes_on_a_third_person(
        cluster: Cluster) -> None:
    c = cluster
    gated_catalog(c, "{approvals: 2, from: [ana, bo, cy], starter_may_approve: false}")
    c.start_worker("a")
    code, out = as_user(c, "ana", "plan", "sweep", PLAN)
    assert code == 0, out
    sid = out["sweep_id"]
    gate = c.wait_todo(sid, "TODO-002", {"awaiting_approval"})
    assert "lease_key" not in gate and "worker" not in gate  # no lease, no worker slot
    assert (c.repo_dir("a") / "built").exists() and not (c.repo_dir("a") / "deployed").exists()
    waiting = [e for e in c.events(sid) if e["kind"] == "gate.waiting"]
    assert len(waiting) == 1 and waiting[0]["needed"] == 2 and waiting[0]["from"] == ["ana", "bo", "cy"]

    approve = ("approve", "TODO-002", "--sweep", sid)
    code, err = as_user(c, "ana", *approve)  # she started the sweep
    assert code == 2 and "started sweep" in err and "starter_may_approve" in err, err
    code, out = as_user(c, "bo", *approve, "--comment", "canary fine")
    assert code == 0 and out["status"] == "awaiting_approval" and out["approvals"] == ["bo"], out
    code, err = as_user(c, "bo", *approve)  # approvers are distinct
    assert code == 2 and "already" in err, err
    code, err = as_user(c, "dan", *approve)  # not one of from:
    assert code == 2 and "may not approve" in err, err
    st = c.status(sid)
    assert st["gates"]["TODO-002"]["approvals"] == ["bo"]
    assert st["todos"]["TODO-002"]["status"] == "awaiting_approval"
    assert not (c.repo_dir("a") / "deployed").exists()

    code, out = as_user(c, "cy", *approve)
    assert code == 0 and out["status"] == "succeeded" and out["approvals"] == ["bo", "cy"], out
    st = c.wait_sweep(sid, 30)
    assert st["status"] == "succeeded", st
    assert (c.repo_dir("a") / "deployed").exists()
    assert st["todos"]["TODO-002"]["reason"] == "approved by bo, cy"
    assert "todo.started" not in kinds(c, sid, "TODO-002")  # never sent to a worker
    approved = [e for e in c.events(sid) if e["kind"] == "gate.approved"]
    assert [(e["by"], e["approvals"], e["passed"]) for e in approved] == [
        ("bo", 1, False), ("cy", 2, True)]
    assert approved[0]["comment"] == "canary fine"

    # The audit log names each approval, and `coord history` finds it there.
    audit = c.cli_json("audit")
    decisions = [(e["who"], e["op"], e["decision"]["status"])
                 for e in (audit["entries"] if isinstance(audit, dict) else audit)
                 if e.get("decision")]
    assert decisions == [("bo", "approve", "awaiting_approval"), ("cy", "approve", "succeeded")]
    found = c.cli_json("history", "search", "approve", "--kind", "edit")
    assert {r.get("who") for r in found} >= {"bo", "cy"}, found


def test_a_rejected_gate_fails_and_what_follows_is_skipped(cluster: Cluster) -> None:
    c = cluster
    gated_catalog(c, "{approvals: 1}")
    sid, _ = at_the_gate(c)
    code, out = as_user(c, "bo", "reject", "TODO-002", "--sweep", sid, "--comment", "not now")
    assert code == 0 and out["status"] == "failed", out
    st = c.wait_sweep(sid, 30)
    assert st["status"] == "failed"
    assert st["todos"]["TODO-002"]["reason"] == "rejected by bo: not now"
    assert st["todos"]["TODO-003"]["status"] == "skipped"
    assert kinds(c, sid, "TODO-002")[-2:] == ["gate.rejected", "todo.failed"]


@pytest.mark.parametrize("on_expiry", ["cancel", "rollback"])
def test_a_gate_nobody_decides_expires(cluster: Cluster, on_expiry: str) -> None:
    c = cluster
    gated_catalog(c, f"{{approvals: 1, expires: 1s, on_expiry: {on_expiry}}}", undo=True)
    sid, _ = at_the_gate(c)

    rec = c.wait_ended(sid, 30)  # its todos not started are cancelled after its status
    st = c.status(sid)
    expired = [e for e in c.events(sid) if e["kind"] == "gate.expired"]
    assert len(expired) == 1 and expired[0]["on_expiry"] == on_expiry
    assert not (c.repo_dir("a") / "deployed").exists()
    if on_expiry == "cancel":
        assert rec["status"] == "cancelled", rec
        assert "gate TODO-002 expired" in (rec.get("reason") or "")
        assert st["todos"]["TODO-002"]["status"] == "cancelled"
        assert st["todos"]["TODO-003"]["status"] == "cancelled"
        assert not (c.repo_dir("a") / "undone").exists()
    else:
        assert rec["status"] == "rolled_back", rec
        assert "gate TODO-002 expired" in (rec.get("reason") or "")
        assert st["todos"]["TODO-001"]["status"] == "compensated"
        assert (c.repo_dir("a") / "undone").exists()
    code, err = as_user(c, "bo", "approve", "TODO-002", "--sweep", sid)
    assert code == 2 and "not awaiting approval" in err, err


def keyless_write(c: Cluster, sid: str, todo: str, votes: dict[str, Any]) -> None:
    """A Redis writer without COORD_SIGNING_KEY (redis-py straight to the sweep's hash):
    the gate's votes field, and its checkpoint's approvals for good measure."""
    import redis

    from coordination.keys import Keys

    r = redis.Redis.from_url(c.redis_url, decode_responses=True)
    key = Keys("coord").sweep(sid)
    cp = json.loads(r.hget(key, f"t:{todo}") or "{}")
    cp["approvals"] = sorted(votes)
    r.hset(key, mapping={f"g:{todo}": json.dumps(votes), f"t:{todo}": json.dumps(cp)})


def refused_of(c: Cluster, sid: str, todo: str, n: int) -> list[str]:
    """The gate's refusals once the supervision pass recorded ``n`` of them."""
    return wait_until(lambda: (lambda got: got if len(got) >= n else None)(
        c.status(sid)["gates"][todo]["refused"]), 30,
        f"{n} refused votes on {todo}", interval=0.1)


def test_forged_votes_never_pass_a_gate_and_are_refused_by_name(cluster: Cluster) -> None:
    """Every process holds COORD_SIGNING_KEY and COORD_REQUIRE_SIGNED=1; a writer
    without the key puts two approvals into the gate's votes: the supervision pass
    refuses both (naming them), the gate waits, and a real approval counts alone."""
    c = cluster
    c.env.update(COORD_SIGNING_KEY="s" * 32, COORD_REQUIRE_SIGNED="1")
    gated_catalog(c, "{approvals: 2, from: [ana, bo, cy]}")
    sid, gate = at_the_gate(c)
    b = gate["binding"]
    keyless_write(c, sid, "TODO-002", {u: {"d": "approve", "b": b, "at": 1, "c": ""}
                                       for u in ("ana", "bo")})
    refused = refused_of(c, sid, "TODO-002", 2)
    assert [w.split(":")[0] for w in refused] == [
        f"vote of ana on gate TODO-002 of sweep {sid}", f"vote of bo on gate TODO-002 of sweep {sid}"]
    assert all("unsigned" in w for w in refused), refused
    st = c.status(sid)
    assert st["todos"]["TODO-002"]["status"] == "awaiting_approval"
    assert st["gates"]["TODO-002"]["approvals"] == []
    assert not (c.repo_dir("a") / "deployed").exists()
    # the pass logs its refusals after it recorded them: wait for the line, not past it
    wait_until(lambda: "vote of ana on gate TODO-002" in "\n".join(
        w.log_text() for w in c.workers), 30, "the refusal in the worker's log", interval=0.1)

    code, out = as_user(c, "cy", "approve", "TODO-002", "--sweep", sid)
    assert code == 0 and out["status"] == "awaiting_approval", out
    assert out["approvals"] == ["cy"] and len(out["refused"]) == 2, out  # ana's still forged
    code, out = as_user(c, "bo", "approve", "TODO-002", "--sweep", sid)  # bo's own, sealed
    assert code == 0 and out["status"] == "succeeded" and out["approvals"] == ["bo", "cy"], out
    assert c.wait_sweep(sid, 30)["status"] == "succeeded"


def test_an_approval_follows_what_was_approved(cluster: Cluster) -> None:
    """Approved, the todo after the gate fails, its command is edited, the sweep
    resumed: the gate waits again (its old vote shown as for an older binding), and
    the new command runs only once approved again. A resume with nothing edited
    keeps the approval."""
    c = cluster
    gated_catalog(c, "{approvals: 1}")
    c.eco.write_text(c.eco.read_text().replace('run: "touch deployed"', 'run: "exit 3"'))
    sid, _ = at_the_gate(c)
    code, out = as_user(c, "bo", "approve", "TODO-002", "--sweep", sid)
    assert code == 0 and out["status"] == "succeeded", out
    assert c.wait_sweep(sid, 30)["status"] == "failed"

    again = c.cli_json("sweep", "resume", sid)  # nothing edited: the approval holds
    assert again["reopened"] == [] and again["rerun"] == ["TODO-003"], again
    assert c.wait_sweep(sid, 30)["status"] == "failed"
    assert c.status(sid)["todos"]["TODO-002"]["status"] == "succeeded"

    c.eco.write_text(c.eco.read_text().replace('run: "exit 3"', 'run: "touch deployed"'))
    again = c.cli_json("sweep", "resume", sid)
    assert again["reopened"] == ["TODO-002"] and again["rerun"] == ["TODO-002", "TODO-003"]
    c.wait_todo(sid, "TODO-002", {"awaiting_approval"})
    st = c.status(sid)
    assert st["todos"]["TODO-003"]["status"] == "pending", st["todos"]["TODO-003"]
    assert st["gates"]["TODO-002"]["approvals"] == []
    assert [(v["by"], v["current"]) for v in st["gates"]["TODO-002"]["votes"]] == [("bo", False)]
    assert not (c.repo_dir("a") / "deployed").exists()
    code, out = as_user(c, "cy", "approve", "TODO-002", "--sweep", sid)
    assert code == 0 and out["status"] == "succeeded", out
    assert c.wait_sweep(sid, 30)["status"] == "succeeded"
    assert (c.repo_dir("a") / "deployed").exists()


def test_an_expired_gate_names_the_approvals_it_had(cluster: Cluster) -> None:
    c = cluster
    # The gate's deadline is an hour off, so no wait for a slow `coord approve` (a busy
    # machine took more than the 3 s this gate once had) lets it expire first; once ana's
    # approval is in, the test moves its deadline to now: the clock is the test's.
    gated_catalog(c, "{approvals: 2, expires: 1h}")
    sid, _ = at_the_gate(c)
    code, out = as_user(c, "ana", "approve", "TODO-002", "--sweep", sid)
    assert code == 0 and out["approvals"] == ["ana"], out
    assert c.rt.checkpoints.get(sid, "TODO-002")["status"] == "awaiting_approval"
    c.rt.checkpoints.set_fields(sid, "TODO-002", expires_at=time.time())
    rec = wait_until(lambda: (lambda r: r if r.get("status") == "cancelled" else None)(
        c.rt.checkpoints.get_sweep(sid) or {}), 30, "the gate to expire", interval=0.1)
    assert "gate TODO-002 expired with 1 of 2 approvals: ana" in rec["reason"], rec
    expired = [e for e in c.events(sid) if e["kind"] == "gate.expired"]
    assert "with 1 of 2 approvals: ana" in expired[0]["reason"]


def test_approvers_prove_who_they_are_with_ssh_signatures(cluster: Cluster) -> None:
    """approvers: {allowed_signers: ...}: ana (who starts the sweep), bo (whose key the
    file also names dan), cy. ana cannot pass the gate as bo with her key; dan's
    approval is bo's key again and counts once; a vote without signature, one by a
    key in no file and one signed for another binding are refused; bo and cy pass it."""
    c = cluster
    keys = signers(c, bo_also="dan")
    c.start_worker("a")

    def signed(user: str, key: str, *args: str) -> Any:
        c.env["COORD_APPROVE_KEY"] = str(keys / key)
        try:
            return as_user(c, user, *(args or approve))
        finally:
            c.env.pop("COORD_APPROVE_KEY")

    code, out = signed("ana", "ana", "plan", "sweep", PLAN)  # her start, signed by her key
    assert code == 0, out
    sid = out["sweep_id"]
    rec = c.rt.checkpoints.get_sweep(sid)
    assert rec["started_by"] == "ana" and rec["starter_key"].startswith("SHA256:"), rec
    gate = c.wait_todo(sid, "TODO-002", {"awaiting_approval"})
    approve = ("approve", "TODO-002", "--sweep", sid)

    code, err = as_user(c, "cy", *approve)  # no key to sign with
    assert code == 2 and "COORD_APPROVE_KEY" in err, err
    # --file naming a catalog without approvers: changes nothing: the sweep's decides
    bare = c.root / "bare.yaml"
    bare.write_text(c.eco.read_text().replace("approvers: {allowed_signers: allowed_signers}\n",
                                              ""))
    import subprocess

    res = subprocess.run([*c.argv(*approve)[:3], "--file", str(bare), *approve],
                         env=dict(c.env, COORD_USER="cy", COORD_SHARE_NAMESPACE="1"),
                         capture_output=True, text=True,
                         timeout=60, cwd=c.root)
    assert res.returncode == 2 and "COORD_APPROVE_KEY" in res.stderr, res.stderr
    code, err = signed("bo", "ana")  # the starter under another name: her key says it's her
    assert code == 2 and "proves ana, who started" in err, err
    code, err = signed("cy", "zed")  # a key in no file
    assert code == 2 and "is not in" in err and "allowed_signers" in err, err
    code, out = signed("bo", "bo")
    assert code == 0 and out["approvals"] == ["bo"] and out["status"] == "awaiting_approval", out
    code, err = signed("dan", "bo")  # bo's key under its other name: one approver
    assert code == 2 and "the same approver as bo's vote" in err, err

    # Votes put into Redis by hand: cy's without signature, cy's signed for another
    # binding: the supervision pass refuses each, by name, with why.
    from coordination.trust import sshsig

    other = sshsig.sign(sshsig.binding_message(sid, "TODO-002", "0" * 64, "approve", "cy"),
                        str(keys / "cy"))
    votes = json.loads(c.rt.checkpoints.gate_read(sid, "TODO-002")[1])
    b = gate["binding"]
    keyless_write(c, sid, "TODO-002", {**votes, "cy": {"d": "approve", "b": b, "at": 2, "c": ""}})
    refused = refused_of(c, sid, "TODO-002", 1)
    assert refused[0].startswith(f"vote of cy on gate TODO-002 of sweep {sid}: no SSH signature")
    assert "COORD_APPROVE_KEY" in refused[0]
    keyless_write(c, sid, "TODO-002", {**votes, "cy": {"d": "approve", "b": b, "at": 3, "c": "",
                                                       "ssh": other}})
    wait_until(lambda: "does not verify over this gate's binding" in " ".join(
        c.status(sid)["gates"]["TODO-002"]["refused"]), 30, "the other binding's refusal")
    st = c.status(sid)
    assert st["todos"]["TODO-002"]["status"] == "awaiting_approval"
    assert st["gates"]["TODO-002"]["approvals"] == ["bo"]
    assert not (c.repo_dir("a") / "deployed").exists()

    code, out = signed("cy", "cy")
    assert code == 0 and out["status"] == "succeeded" and out["approvals"] == ["bo", "cy"], out
    assert c.wait_sweep(sid, 30)["status"] == "succeeded"
    assert (c.repo_dir("a") / "deployed").exists()


def test_without_approvers_identities_are_self_declared_and_approve_says_so(
        cluster: Cluster) -> None:
    import subprocess

    c = cluster
    gated_catalog(c, "{approvals: 1}")
    sid, _ = at_the_gate(c)
    res = subprocess.run(c.argv("approve", "TODO-002", "--sweep", sid),
                         env=dict(c.env, COORD_USER="bo"), capture_output=True, text=True,
                         timeout=60, cwd=c.root)
    assert res.returncode == 0, res.stderr
    assert "approvers are self-declared" in res.stderr and "allowed_signers" in res.stderr


def signers(c: Cluster, bo_also: str = "") -> Path:
    """Keys of ana, bo, cy (in the allowed-signers file) and zed (in none); a 2-of-3
    gate refusing its starter; the catalog's approvers: names the file. ``bo_also``:
    another name the file gives bo's key (one of the gate's approvers too)."""
    keys = c.root / "keys"
    keys.mkdir()
    pub = {n: keygen(keys / n) for n in ("ana", "bo", "cy", "zed")}
    bo = ",".join(["bo", bo_also] if bo_also else ["bo"])
    (c.root / "allowed_signers").write_text(
        f"ana {pub['ana']}\n{bo} {pub['bo']}\ncy {pub['cy']}\n")
    names = ", ".join(["ana", "bo", "cy"] + ([bo_also] if bo_also else []))
    gated_catalog(c, f"{{approvals: 2, from: [{names}], starter_may_approve: false}}")
    c.eco.write_text(c.eco.read_text() + "approvers: {allowed_signers: allowed_signers}\n")
    c.env.pop("SSH_AUTH_SOCK", None)
    return keys


def signed_vote_by_hand(c: Cluster, keys: Path, sid: str, gate: dict[str, Any],
                        who: str) -> None:
    """``who``'s approval of TODO-002, signed by their key over the gate's binding, put
    into Redis by hand (as the only vote)."""
    from coordination.trust import sshsig

    vote = sshsig.sign(sshsig.binding_message(sid, "TODO-002", gate["binding"], "approve",
                                              who), str(keys / who))
    keyless_write(c, sid, "TODO-002", {who: {"d": "approve", "b": gate["binding"], "at": 1,
                                             "c": "", "ssh": vote}})


def with_key(c: Cluster, key: Path | None, user: str, *args: str) -> Any:
    env = {k: v for k, v in c.env.items() if k != "COORD_APPROVE_KEY"}
    if key is not None:
        env["COORD_APPROVE_KEY"] = str(key)
    import subprocess

    res = subprocess.run(c.argv(*args, "--json"), env=dict(env, COORD_USER=user),
                         capture_output=True, text=True, timeout=60, cwd=c.root)
    return res.returncode, (json.loads(res.stdout) if res.returncode == 0 else res.stderr)


def test_the_starter_is_the_key_that_signed_the_start_whatever_name_it_claims(
        cluster: Cluster) -> None:
    """With approvers:, bo starts the sweep as COORD_USER=zed (his own key signs the
    start): his approval is refused, by the CLI and, written into Redis signed by his
    key, by the count (one key: the starter, whatever name it is under); ana and cy
    pass the gate. Without any key, a sweep of the plan is not started at all."""
    c = cluster
    keys = signers(c)
    c.start_worker("a")
    code, err = with_key(c, None, "zed", "plan", "sweep", PLAN)
    assert code == 2, err
    assert "starter_may_approve: false" in err and "no key to sign with" in err, err
    assert "COORD_APPROVE_KEY" in err, err
    assert c.cli_json("sweep", "list") == []  # nothing recorded

    code, out = with_key(c, keys / "bo", "zed", "plan", "sweep", PLAN)
    assert code == 0, out
    sid = out["sweep_id"]
    gate = c.wait_todo(sid, "TODO-002", {"awaiting_approval"})
    approve = ("approve", "TODO-002", "--sweep", sid)
    code, err = with_key(c, keys / "bo", "bo", *approve)
    assert code == 2 and "proves bo, who started sweep" in err, err

    # bo's vote, signed by his key over the binding, put into Redis by hand: the count
    # (the supervision pass) refuses it for what the key proves, not for a name.
    signed_vote_by_hand(c, keys, sid, gate, "bo")
    [why] = refused_of(c, sid, "TODO-002", 1)
    assert why.startswith(f"vote of bo on gate TODO-002 of sweep {sid}: proves bo, who "
                          "started the sweep"), why
    assert c.status(sid)["todos"]["TODO-002"]["status"] == "awaiting_approval"

    code, out = with_key(c, keys / "ana", "ana", *approve)
    assert code == 0 and out["approvals"] == ["ana"], out
    code, out = with_key(c, keys / "cy", "cy", *approve)
    assert code == 0 and out["status"] == "succeeded" and out["approvals"] == ["ana", "cy"], out
    assert c.wait_sweep(sid, 30)["status"] == "succeeded"
    assert (c.repo_dir("a") / "deployed").exists()


def test_a_start_proof_taken_away_leaves_no_vote_counting(cluster: Cluster) -> None:
    """A Redis writer deletes the start's signature (or renames the starter): the
    starter is unproven, so on a gate refusing its starter no vote counts (the CLI says
    why; a vote put in by hand is refused by the count, by name), and nothing after the
    gate runs."""
    c = cluster
    keys = signers(c)
    c.start_worker("a")
    code, out = with_key(c, keys / "ana", "ana", "plan", "sweep", PLAN)
    assert code == 0, out
    sid = out["sweep_id"]
    gate = c.wait_todo(sid, "TODO-002", {"awaiting_approval"})
    import redis

    r = redis.Redis.from_url(c.redis_url, decode_responses=True)
    key = c.rt.keys.sweep(sid)
    for forged in ({"started_by": json.dumps("zed")}, None):
        if forged is None:
            r.hdel(key, "starter_sig")
            says = "its start was not signed"
        else:
            r.hset(key, mapping=forged)  # the signature is of "starter ana"
            says = "does not verify over this sweep's start"
        code, err = with_key(c, keys / "bo", "bo", "approve", "TODO-002", "--sweep", sid)
        assert code == 2 and "starter is unproven" in err and says in err, err
    signed_vote_by_hand(c, keys, sid, gate, "cy")
    [why] = refused_of(c, sid, "TODO-002", 1)
    assert why.startswith(f"vote of cy on gate TODO-002 of sweep {sid}: the sweep's starter "
                          "is unproven"), why
    st = c.status(sid)
    assert st["todos"]["TODO-002"]["status"] == "awaiting_approval"
    assert not (c.repo_dir("a") / "deployed").exists()


@pytest.mark.parametrize("signed_with", ["hmac", "ssh"])
def test_a_binding_rolled_back_to_the_old_votes_does_not_pass_the_gate(
        cluster: Cluster, signed_with: str) -> None:
    """#49: approved (bo's vote, sealed with COORD_SIGNING_KEY, or SSH-signed with
    approvers:), the todo after the gate fails, its command is edited and the sweep
    resumed: the gate waits again under a new binding. A writer without the key puts
    the old binding back into the gate's checkpoint and drops ``settled``: the count
    computes the binding from the signed spec again, so bo's old vote does not count,
    the gate waits (the worker's log says why), nothing after it runs, and an approval
    made now is refused naming the rolled-back binding."""
    import redis

    c = cluster
    gated_catalog(c, "{approvals: 1}")
    c.eco.write_text(c.eco.read_text().replace('run: "touch deployed"', 'run: "exit 3"'))
    if signed_with == "hmac":
        c.env.update(COORD_SIGNING_KEY="s" * 32, COORD_REQUIRE_SIGNED="1")
    else:
        keys = c.root / "keys"
        keys.mkdir()
        pub = {n: keygen(keys / n) for n in ("bo", "cy")}
        (c.root / "allowed_signers").write_text(f"bo {pub['bo']}\ncy {pub['cy']}\n")
        c.eco.write_text(c.eco.read_text() + "approvers: {allowed_signers: allowed_signers}\n")
        c.env.pop("SSH_AUTH_SOCK", None)
    c.start_worker("a")

    def approve(user: str) -> Any:
        if signed_with == "ssh":
            c.env["COORD_APPROVE_KEY"] = str(c.root / "keys" / user)
        try:
            return as_user(c, user, "approve", "TODO-002", "--sweep", sid)
        finally:
            c.env.pop("COORD_APPROVE_KEY", None)

    sid = c.start_sweep()
    old = c.wait_todo(sid, "TODO-002", {"awaiting_approval"})["binding"]
    code, out = approve("bo")
    assert code == 0 and out["status"] == "succeeded", out
    assert c.wait_sweep(sid, 30)["status"] == "failed"
    vote = json.loads(c.rt.checkpoints.gate_read(sid, "TODO-002")[1])["bo"]
    assert vote["b"] == old and (vote.get("sig") or vote.get("ssh")), vote

    c.eco.write_text(c.eco.read_text().replace('run: "exit 3"', 'run: "touch deployed"'))
    again = c.cli_json("sweep", "resume", sid)
    assert again["reopened"] == ["TODO-002"], again
    new = c.wait_todo(sid, "TODO-002", {"awaiting_approval"})["binding"]
    assert new != old

    # the keyless writer: the old binding back, `settled` dropped (so it is counted again)
    r = redis.Redis.from_url(c.redis_url, decode_responses=True)
    key = c.rt.keys.sweep(sid)
    cp = json.loads(r.hget(key, "t:TODO-002") or "{}")
    cp.pop("settled", None)
    r.hset(key, "t:TODO-002", json.dumps({**cp, "binding": old}))
    said = f"gate TODO-002 of sweep {sid}: the binding its checkpoint holds ({old[:12]})"
    wait_until(lambda: said in "\n".join(w.log_text() for w in c.workers)
               or c.status(sid)["todos"]["TODO-002"]["status"] != "awaiting_approval", 30,
               "the supervision pass to count the gate's votes again", interval=0.1)
    st = c.status(sid)
    assert st["todos"]["TODO-002"]["status"] == "awaiting_approval", st["todos"]["TODO-002"]
    assert st["todos"]["TODO-003"]["status"] == "pending"
    assert not (c.repo_dir("a") / "deployed").exists()
    code, err = approve("cy")  # counted under the rolled-back binding: refused, named
    assert code == 2 and said in err, err
    assert not (c.repo_dir("a") / "deployed").exists()
