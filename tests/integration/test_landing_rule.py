"""One landing rule (#38): `change status`, `change land` (and --dry-run), `change queue
--land` and the train all judge a change the same way, on real git (bare remotes), a
real redis-server and a real `coord worker`.

Each test is one defect found on 0.3: a verify todo that failed in one repo while the
others passed, a gate still waiting or rejected, a change the train dropped, a verify
record forged by a keyless Redis writer, a candidate moved after its verification.
Then the keyless writer's later attempts (an audit of 0.4): the change's sweep pointer
moved back to an older sweep whose gate was approved, an older sealed verify success put
back after a later failure on the same candidates, a failed todo's checkpoint rewritten
to a status that has not ended, a todo's sealed outcome of two runs back put back, and
an approved gate's sealed decision taken away or changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.change_repos import Repos, git
from tests.integration.helpers import Cluster
from tests.integration.landing import (
    NAMES,
    PLAN,
    keyed,
    kinds,
    lands_once_run_again,
    refused,
    start,
    status,
    sweep,
    untouched,
    write_catalog,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_a_verify_todo_failing_in_one_repo_blocks_land_dry_run_and_the_train(
        landing_world: tuple[Cluster, Repos]) -> None:
    c, repos = landing_world
    write_catalog(c)
    base = {n: repos.remote_head(n) for n in NAMES}
    start(c)
    sid = sweep(c, expect=1)  # api's verify todo exits 3: the sweep fails
    doc = status(c)
    assert doc["sweep"] == sid
    assert {t: v["verdict"] for t, v in doc["verify"].items()} == {
        "TODO-101": "passed", "TODO-102": "passed", "TODO-103": "failed"}
    assert "exit 3" in doc["verify"]["TODO-103"]["why"]
    assert "BROKEN in api" in doc["verify"]["TODO-103"]["why"]  # its last line
    assert doc["verify"]["TODO-101"]["candidates"] == {
        n: r["candidate"] for n, r in doc["repos"].items()}
    # no repo is verified by the other repos' verify todos: the set failed
    assert {n: (r["state"], r["verified_by"]) for n, r in doc["repos"].items()} == {
        n: ("drafted", []) for n in NAMES}
    assert doc["landable"] is False and doc["state"] == "drafted"
    assert [(b["kind"], b["id"]) for b in doc["blockers"]] == [("verify", "TODO-103")]

    dry = refused(c, "change", "land", PLAN, "--dry-run")
    assert [(b["kind"], b["id"]) for b in dry["blockers"]] == [("verify", "TODO-103")]
    res = c.cli("change", "land", PLAN, "--dry-run")
    assert res.returncode == 1 and "TODO-103" in res.stderr and "exit 3" in res.stderr
    land = refused(c, "change", "land", PLAN)
    assert land["state"] == "not_ready"
    untouched(repos, base)

    # the train verifies again (`coord todo run`), fails, and drops it with the real reason
    assert c.cli_json("change", "queue", PLAN) == {"train": [PLAN]}
    train = refused(c, "change", "queue", "--land")
    [result] = train["results"]
    assert result["state"] == "failed_verification"
    assert "TODO-103" in result["reason"] and "exit 3" in result["reason"]
    assert "BROKEN in api" in result["reason"]
    untouched(repos, base)
    doc = status(c)
    assert doc["state"] == "failed_verification" and doc["reason"] == result["reason"]
    assert ("train", PLAN) in [(b["kind"], b["id"]) for b in doc["blockers"]]
    assert {r["state"] for r in doc["repos"].values()} == {"drafted"}
    dry = refused(c, "change", "land", PLAN, "--dry-run")
    assert ("train", PLAN) in [(b["kind"], b["id"]) for b in dry["blockers"]]

    # fixed in api's worktree and verified again (each verify todo on the new set): it lands
    wt = Path(doc["repos"]["api"]["worktree"])
    git(wt, "rm", "-q", "BROKEN")
    git(wt, "commit", "-qm", "fix api")
    for tid in ("TODO-101", "TODO-102", "TODO-103"):
        c.cli_json("todo", "run", tid, "--wait", "--ignore-blockers", "--no-sync")
    doc = status(c)
    assert doc["landable"] is True, doc["blockers"]
    assert doc["state"] == "verified" and doc["reason"] is None
    assert all(r["verified_by"] == ["TODO-101", "TODO-102", "TODO-103"]
               for r in doc["repos"].values())
    assert c.cli_json("change", "land", PLAN, "--wait")["state"] == "landed"
    assert [p[0] for p in repos.pushes()] == NAMES
    assert {n: repos.remote_head(n) for n in NAMES} == {
        n: r["candidate"] for n, r in doc["repos"].items()}


def test_a_waiting_gate_blocks_and_a_rejected_one_blocks_the_train(
        landing_world: tuple[Cluster, Repos]) -> None:
    c, repos = landing_world
    write_catalog(c, gate=True, broken=False)
    base = {n: repos.remote_head(n) for n in NAMES}
    start(c)
    sid = c.start_sweep(PLAN)
    c.wait_todo(sid, "TODO-050", {"awaiting_approval"}, timeout=90)
    doc = status(c)
    assert {t: v["verdict"] for t, v in doc["verify"].items()} == dict.fromkeys(
        ("TODO-101", "TODO-102", "TODO-103"), "passed")
    assert doc["gates"] == {"TODO-050": {"verdict": "waiting", "approvals": [],
                                         "why": doc["gates"]["TODO-050"]["why"]}}
    assert [(b["kind"], b["id"]) for b in doc["blockers"]] == [("gate", "TODO-050")]
    dry = refused(c, "change", "land", PLAN, "--dry-run")
    assert [(b["kind"], b["id"]) for b in dry["blockers"]] == [("gate", "TODO-050")]
    assert "waiting" in dry["blockers"][0]["why"]
    res = c.cli("change", "land", PLAN, "--dry-run")
    assert res.returncode == 1 and "gate TODO-050" in res.stderr
    refused(c, "change", "land", PLAN)
    untouched(repos, base)

    res = c.cli("reject", "TODO-050", "--sweep", sid, "--comment", "not today")
    assert res.returncode == 0, res.stderr
    c.wait_sweep(sid)
    doc = status(c)
    assert doc["gates"]["TODO-050"]["verdict"] == "rejected"
    # every repo verified, but the change is never headlined verified (#50: 0.4 was)
    assert {r["state"] for r in doc["repos"].values()} == {"verified"}
    assert doc["state"] == "rejected" and "gate TODO-050 was rejected" in doc["reason"]
    assert f": rejected - gate TODO-050 was rejected" in c.cli("change", "status", PLAN).stdout
    records = c.rt.changes.read(PLAN).verifies
    assert c.cli_json("change", "queue", PLAN) == {"train": [PLAN]}
    train = refused(c, "change", "queue", "--land")
    [result] = train["results"]
    assert result["state"] == "rejected" and "TODO-050" in result["reason"]
    assert "rejected" in result["reason"]
    # the train ran none of its verify todos (0.4 ran them all: #50)
    assert c.rt.changes.read(PLAN).verifies == records
    assert c.rt.changes.train() == []
    untouched(repos, base)


def test_a_verify_record_forged_by_a_keyless_writer_is_refused(
        landing_world: tuple[Cluster, Repos]) -> None:
    c, repos = landing_world
    c.env.update(COORD_SIGNING_KEY="k" * 32, COORD_REQUIRE_SIGNED="1")
    write_catalog(c)
    base = {n: repos.remote_head(n) for n in NAMES}
    start(c)
    sweep(c, expect=1)
    doc = status(c)
    assert doc["verify"]["TODO-103"]["verdict"] == "failed"
    # someone with Redis access and no key: api's verify todo "passed"
    import redis

    r = redis.Redis.from_url(c.redis_url, decode_responses=True)
    key = c.rt.keys.change(PLAN)
    record = json.loads(str(r.hget(key, "verify:TODO-103")))
    assert record["sig"].startswith("v1:") and record["ok"] is False and record["exit_code"] == 3
    forged = {k: v for k, v in record.items() if k not in ("sig", "kid")}
    forged.update(ok=True, exit_code=0, reason=None)
    r.hset(key, "verify:TODO-103", json.dumps(forged))
    doc = status(c)
    assert doc["verify"]["TODO-103"]["verdict"] == "refused"
    assert [(b["kind"], b["id"]) for b in doc["blockers"]] == [("evidence", "TODO-103")]
    why = doc["blockers"][0]["why"]
    assert "verify record verify:TODO-103 of PLAN-001" in why and "unsigned" in why
    # kept its old seal: refused too (changed after it was signed)
    r.hset(key, "verify:TODO-103", json.dumps({**forged, "sig": record["sig"],
                                                "kid": record["kid"]}))
    dry = refused(c, "change", "land", PLAN, "--dry-run")
    assert [(b["kind"], b["id"]) for b in dry["blockers"]] == [("evidence", "TODO-103")]
    assert "signature invalid" in dry["blockers"][0]["why"]
    refused(c, "change", "land", PLAN)
    untouched(repos, base)


def test_a_candidate_moved_after_verification_shows_drafted(
        landing_world: tuple[Cluster, Repos]) -> None:
    c, repos = landing_world
    write_catalog(c, broken=False)
    start(c)
    sweep(c, expect=0)
    doc = status(c)
    assert doc["landable"] is True and doc["state"] == "verified"
    assert {r["state"] for r in doc["repos"].values()} == {"verified"}
    wt = Path(doc["repos"]["core"]["worktree"])
    (wt / "late.txt").write_text("late\n")
    git(wt, "add", "-A")
    git(wt, "commit", "-qm", "late")
    moved = git(wt, "rev-parse", "HEAD")
    doc = status(c)  # nothing ran since: status re-reads the worktree's HEAD
    assert doc["repos"]["core"]["candidate"] == moved
    assert {n: r["state"] for n, r in doc["repos"].items()} == dict.fromkeys(NAMES, "drafted")
    assert doc["state"] == "drafted" and doc["landable"] is False
    assert {v["verdict"] for v in doc["verify"].values()} == {"stale"}
    assert ("repo", "core") in [(b["kind"], b["id"]) for b in doc["blockers"]]
    dry = refused(c, "change", "land", PLAN, "--dry-run")
    assert ("repo", "core") in [(b["kind"], b["id"]) for b in dry["blockers"]]
    assert repos.pushes() == []


def test_the_sweep_pointer_moved_back_to_an_older_approval_is_refused(
        landing_world: tuple[Cluster, Repos]) -> None:
    """Sweep 1 approved the gate, sweep 2 rejected it. The keyless writer points the
    change back at sweep 1: a plain pointer is refused, naming it; the older sealed
    pointer itself, put back, names where the verify todos last ran (sweep 1), and the
    records of sweep 2 are refused against it. Nothing is pushed."""
    c, repos = landing_world
    raw = keyed(c)
    write_catalog(c, gate=True, broken=False)
    base = {n: repos.remote_head(n) for n in NAMES}
    start(c)
    key = c.rt.keys.change(PLAN)
    s1 = c.start_sweep(PLAN)
    c.wait_todo(s1, "TODO-050", {"awaiting_approval"}, timeout=90)
    res = c.cli("approve", "TODO-050", "--sweep", s1)
    assert res.returncode == 0, res.stderr
    c.wait_sweep(s1, timeout=90)
    assert status(c)["landable"] is True
    older = raw.hget(key, "sweep")
    assert json.loads(older)["sweep"] == s1 and json.loads(older)["sig"].startswith("v1:")
    records = {f: raw.hget(key, f) for f in ("verify:TODO-101", "verify:TODO-102",
                                              "verify:TODO-103")}
    # (--again: `change status` above synced sweep 1 into the catalog, its todos completed)
    s2 = str(c.cli_json("plan", "sweep", PLAN, "--again")["sweep_id"])
    c.wait_todo(s2, "TODO-050", {"awaiting_approval"}, timeout=90)
    res = c.cli("reject", "TODO-050", "--sweep", s2, "--comment", "not this one")
    assert res.returncode == 0, res.stderr
    c.wait_sweep(s2, timeout=90)
    doc = status(c)
    assert doc["sweep"] == s2 and doc["gates"]["TODO-050"]["verdict"] == "rejected"

    raw.hset(key, "sweep", s1)  # as 0.4 kept it: a plain sweep id
    doc = status(c)
    assert doc["sweep"] is None and doc["gates"]["TODO-050"]["verdict"] == "missing"
    assert ("evidence", PLAN) in kinds(doc)
    why = next(b["why"] for b in doc["blockers"] if b["id"] == PLAN)
    assert f"sweep pointer of change {PLAN}" in why and "unsigned" in why, why
    assert not doc["landable"]

    raw.hset(key, "sweep", older)  # sealed, of sweep 1: its gate reads approved...
    doc = status(c)
    assert doc["sweep"] == s1 and doc["gates"]["TODO-050"]["verdict"] == "approved"
    # ... but the anchor outside Redis says sweep 2 is the newest: a replay
    assert kinds(doc)[0] == ("evidence", PLAN), doc["blockers"]
    assert doc["blockers"][0]["why"].startswith(
        f"replayed: Redis holds sweep {s1} (run 0) but the newest sweep of {PLAN} is {s2} "
        "(run 0) (anchor: "), doc["blockers"][0]
    # ... and sweep 2 ran the verify todos since: their records are not sweep 1's
    assert kinds(doc)[1:] == [("evidence", t) for t in ("TODO-101", "TODO-102", "TODO-103")]
    for b in doc["blockers"][1:]:
        assert f"verify record verify:{b['id']} of {PLAN}: of run 0 of sweep {s2}" in b["why"]
        assert f"last started in run 0 of sweep {s1}" in b["why"]
    dry = refused(c, "change", "land", PLAN, "--dry-run")
    assert kinds(dry) == kinds(doc)
    # sweep 1's verify records put back too: each record is genuine and of sweep 1, so
    # only the anchor can tell (0.4 landed here)
    raw.hset(key, mapping=records)
    doc = status(c)
    assert kinds(doc) == [("evidence", PLAN)], doc["blockers"]
    assert "replayed: Redis holds sweep" in doc["blockers"][0]["why"]
    for args in (("--dry-run",), ()):
        out = refused(c, "change", "land", PLAN, *args)
        assert kinds(out) == [("evidence", PLAN)], out
    assert c.cli_json("change", "queue", PLAN) == {"train": [PLAN]}
    # The train runs the verify todos again: their pointer is built on the anchor's
    # (sweep 2), never on the one put back, so it judges sweep 2's rejected gate
    [result] = refused(c, "change", "queue", "--land")["results"]
    assert result["state"] == "not_ready", result
    assert f"gate TODO-050 was rejected in sweep {s2}" in result["reason"], result
    assert status(c)["sweep"] == s2
    untouched(repos, base)


def landable_once(c: Cluster, repos: Repos) -> tuple[Any, dict[str, str], str, str]:
    """The change swept once, passing: landable. The keyless writer's client, the
    remotes' heads before, the change's key and the sweep's id."""
    raw = keyed(c)
    write_catalog(c, broken=False)
    base = {n: repos.remote_head(n) for n in NAMES}
    start(c)
    key = c.rt.keys.change(PLAN)
    s1 = sweep(c, expect=0)
    assert status(c)["landable"] is True
    return raw, base, key, s1


def test_an_older_verify_success_put_back_after_a_later_failure_is_refused(
        landing_world: tuple[Cluster, Repos]) -> None:
    c, repos = landing_world
    raw, base, key, s1 = landable_once(c, repos)
    success = raw.hget(key, "verify:TODO-103")
    (c.root / "fail-api").touch()  # api's verify todo now fails, on the same candidates
    again = c.cli_json("todo", "run", "TODO-103", "--wait", "--ignore-blockers", "--no-sync",
                       expect=1, timeout=120)
    doc = status(c)
    assert doc["verify"]["TODO-103"]["verdict"] == "failed"
    assert "failing in api" in doc["verify"]["TODO-103"]["why"]

    raw.hset(key, "verify:TODO-103", success)  # sealed by coord, of sweep 1's run
    doc = status(c)  # the later run failed: so it says, naming the record of an earlier run
    assert doc["verify"]["TODO-103"]["verdict"] == "failed"
    assert kinds(doc) == [("verify", "TODO-103")]
    assert (f"verify record verify:TODO-103 of {PLAN} is of run 0 of sweep {s1}, an earlier "
            "run") in doc["blockers"][0]["why"]
    # ... and with the later run's checkpoint rewritten to succeeded: the record is refused
    from coordination.runtime.sweep_fields import todo_field

    where = c.rt.keys.sweep(again["sweep_id"])
    cp = json.loads(raw.hget(where, todo_field("TODO-103")))
    raw.hset(where, todo_field("TODO-103"), json.dumps({**cp, "status": "succeeded",
                                                        "exit_code": 0, "reason": None}))
    doc = status(c)
    assert doc["verify"]["TODO-103"]["verdict"] == "refused"
    assert kinds(doc) == [("evidence", "TODO-103")]
    why = doc["blockers"][0]["why"]
    assert f"verify record verify:TODO-103 of {PLAN}: of run 0 of sweep {s1}" in why, why
    assert f"last started in run 0 of sweep {again['sweep_id']}" in why, why
    dry = refused(c, "change", "land", PLAN, "--dry-run")
    assert kinds(dry) == [("evidence", "TODO-103")]
    refused(c, "change", "land", PLAN)
    untouched(repos, base)


def test_a_failed_todo_rewritten_to_succeeded_is_refused(
        landing_world: tuple[Cluster, Repos]) -> None:
    """A todo of no verify fails (exit 7) in the plan's last sweep: `change land
    --dry-run` says so. The keyless writer rewrites its checkpoint to succeeded (exit 0):
    with its seal as it was, with no seal, with another todo's: each time the outcome
    is refused, naming the record, and nothing lands. Run again for real, it lands."""
    c, repos = landing_world
    raw = keyed(c)
    write_catalog(c, broken=False, notes=True)
    (c.root / "fail-notes").touch()
    base = {n: repos.remote_head(n) for n in NAMES}
    start(c)
    sid = sweep(c, expect=1)
    doc = status(c)
    assert kinds(doc) == [("run", "TODO-201")], doc["blockers"]
    assert "exit 7" in doc["blockers"][0]["why"], doc["blockers"]

    from coordination.runtime.sweep_fields import todo_field

    where = c.rt.keys.sweep(sid)
    cp = json.loads(raw.hget(where, todo_field("TODO-201")))
    assert cp["exit_code"] == 7 and cp["outcome_seal"]["sig"].startswith("v1:"), cp
    other = json.loads(raw.hget(where, todo_field("TODO-001")))["outcome_seal"]
    record = f"outcome record of TODO-201 in sweep {sid} (succeeded)"
    for seal, says in ((cp["outcome_seal"], "signature invalid"), (None, "unsigned"),
                       (other, "signature invalid")):
        raw.hset(where, todo_field("TODO-201"), json.dumps(
            {**cp, "status": "succeeded", "exit_code": 0, "reason": None,
             "outcome_seal": seal}))
        doc = status(c)
        assert kinds(doc) == [("evidence", "TODO-201")], doc["blockers"]
        why = doc["blockers"][0]["why"]
        assert record in why and says in why, why
        dry = refused(c, "change", "land", PLAN, "--dry-run")
        assert kinds(dry) == [("evidence", "TODO-201")], dry
    refused(c, "change", "land", PLAN)
    untouched(repos, base)

    raw.hset(where, todo_field("TODO-201"), json.dumps(cp))  # as the failure left it
    assert kinds(status(c)) == [("run", "TODO-201")]
    (c.root / "fail-notes").unlink()  # fixed, and run again for real: sealed, it lands
    lands_once_run_again(c, sid, "TODO-201")


def test_a_failed_todo_rewritten_to_not_ended_blocks_and_a_running_sweep_says_so(
        landing_world: tuple[Cluster, Repos]) -> None:
    """While the plan's sweep still runs a todo (TODO-203 waits for a file), `change land
    --dry-run` says the sweep is still running and which todo. It ends with TODO-201
    failed (exit 7). The keyless writer rewrites TODO-201's checkpoint to pending or
    queued (0.4 judged only todos that read ended: "ready"): each time it blocks, named.
    Fixed and run again for real, the change lands."""
    c, repos = landing_world
    raw = keyed(c)
    write_catalog(c, broken=False, notes=True, hold=True)
    (c.root / "fail-notes").touch()
    base = {n: repos.remote_head(n) for n in NAMES}
    start(c)
    sid = c.start_sweep(PLAN)
    for t in ("TODO-101", "TODO-102", "TODO-103", "TODO-201"):
        c.wait_todo(sid, t, {"succeeded", "failed"}, timeout=90)
    c.wait_todo(sid, "TODO-203", {"running"}, timeout=30)
    doc = status(c)
    assert ("run", PLAN) in kinds(doc), doc["blockers"]
    why = next(b["why"] for b in doc["blockers"] if b["id"] == PLAN)
    assert why == (f"the plan's last sweep {sid} is still running (TODO-203 is running): "
                   f"wait for it to end (coord sweep watch {sid})"), why
    dry = refused(c, "change", "land", PLAN, "--dry-run")
    assert ("run", PLAN) in kinds(dry)
    (c.root / "go").touch()
    assert c.wait_sweep(sid, timeout=90)["status"] == "failed"
    doc = status(c)
    assert kinds(doc) == [("run", "TODO-201")], doc["blockers"]

    from coordination.runtime.sweep_fields import todo_field

    where = c.rt.keys.sweep(sid)
    cp = json.loads(raw.hget(where, todo_field("TODO-201")))
    assert cp["status"] == "failed" and cp["outcome_seal"]["sig"].startswith("v1:"), cp
    for status_now, seal in (("pending", cp["outcome_seal"]), ("pending", None),
                             ("queued", None)):
        raw.hset(where, todo_field("TODO-201"), json.dumps(
            {**cp, "status": status_now, "exit_code": None, "reason": None,
             "finished_at": None, "outcome_seal": seal}))
        doc = status(c)
        assert kinds(doc) == [("run", "TODO-201")], doc["blockers"]
        why = doc["blockers"][0]["why"]
        assert why.startswith(f"TODO-201 is {status_now} in the plan's last sweep {sid}, "
                              "which ended failed: it has no outcome of the sweep's last "
                              "run"), why
        dry = refused(c, "change", "land", PLAN, "--dry-run")
        assert kinds(dry) == [("run", "TODO-201")], dry
    raw.hdel(where, todo_field("TODO-201"))  # the checkpoint gone altogether
    assert kinds(refused(c, "change", "land", PLAN, "--dry-run")) == [("run", "TODO-201")]
    refused(c, "change", "land", PLAN)
    untouched(repos, base)

    raw.hset(where, todo_field("TODO-201"), json.dumps(cp))
    (c.root / "fail-notes").unlink()  # fixed, and run again for real: it lands
    lands_once_run_again(c, sid, "TODO-201")


def test_an_outcome_of_two_runs_back_put_back_is_refused(
        landing_world: tuple[Cluster, Repos]) -> None:
    """Run 0: TODO-202 fails, so TODO-201 is skipped (sealed, run 0), and api's verify
    todo fails. Run 1 (resume): TODO-201 runs and fails (exit 7). Run 2 (resume --only
    TODO-103) keeps it. The keyless writer puts run 0's sealed skip back: 0.4 asked only
    whether run 2 ran TODO-201 ("ready"); the spec of run 2 says run 1 ran it last, so
    the outcome is refused, naming it."""
    c, repos = landing_world
    raw = keyed(c)
    write_catalog(c, broken=False, notes=True, pre=True)
    for f in ("fail-pre", "fail-api"):
        (c.root / f).touch()
    base = {n: repos.remote_head(n) for n in NAMES}
    start(c)
    sid = sweep(c, expect=1)

    from coordination.runtime.sweep_fields import todo_field

    where = c.rt.keys.sweep(sid)
    skipped = raw.hget(where, todo_field("TODO-201"))
    assert json.loads(skipped)["status"] == "skipped", skipped
    assert json.loads(skipped)["outcome_seal"]["run"] == 0, skipped
    (c.root / "fail-pre").unlink()
    (c.root / "fail-notes").touch()
    run1 = c.cli_json("sweep", "resume", sid)
    assert run1["rerun"] == ["TODO-103", "TODO-201", "TODO-202"], run1
    assert c.wait_sweep(sid, timeout=90)["status"] == "failed"
    (c.root / "fail-api").unlink()
    run2 = c.cli_json("sweep", "resume", sid, "--only", "TODO-103")
    assert run2["rerun"] == ["TODO-103"], run2
    c.wait_sweep(sid, timeout=90)
    doc = status(c)
    assert kinds(doc) == [("run", "TODO-201")], doc["blockers"]
    assert "exit 7" in doc["blockers"][0]["why"]

    raw.hset(where, todo_field("TODO-201"), skipped)  # run 0's sealed skip, put back
    doc = status(c)
    assert kinds(doc) == [("evidence", "TODO-201")], doc["blockers"]
    why = doc["blockers"][0]["why"]
    assert why.startswith(f"outcome record of TODO-201 in sweep {sid} (skipped): sealed in "
                          "run 0, but run 1 ran TODO-201 again"), why
    dry = refused(c, "change", "land", PLAN, "--dry-run")
    assert kinds(dry) == [("evidence", "TODO-201")], dry
    refused(c, "change", "land", PLAN)
    untouched(repos, base)


def test_an_approved_gates_decision_taken_away_or_changed_is_refused(
        landing_world: tuple[Cluster, Repos]) -> None:
    """The gate was approved and the sweep succeeded: landable. The keyless writer takes
    the gate's sealed decision away, or changes the run it names: its votes still count,
    but the decision does not (0.4's rule read only the votes: "ready"), named."""
    c, repos = landing_world
    raw = keyed(c)
    write_catalog(c, gate=True, broken=False)
    base = {n: repos.remote_head(n) for n in NAMES}
    start(c)
    sid = c.start_sweep(PLAN)
    c.wait_todo(sid, "TODO-050", {"awaiting_approval"}, timeout=90)
    res = c.cli("approve", "TODO-050", "--sweep", sid)
    assert res.returncode == 0, res.stderr
    assert c.wait_sweep(sid, timeout=90)["status"] == "succeeded"
    assert status(c)["landable"] is True

    from coordination.runtime.sweep_fields import todo_field

    where = c.rt.keys.sweep(sid)
    cp = json.loads(raw.hget(where, todo_field("TODO-050")))
    assert cp["status"] == "succeeded" and cp["decision"]["sig"].startswith("v1:"), cp
    record = f"decision record of gate TODO-050 in sweep {sid}"
    for decision, says in ((None, "unsigned"), ({**cp["decision"], "run": 1},
                                                "signature invalid")):
        raw.hset(where, todo_field("TODO-050"), json.dumps({**cp, "decision": decision}))
        doc = status(c)
        assert doc["gates"]["TODO-050"]["verdict"] == "refused", doc["gates"]
        assert kinds(doc) == [("evidence", "TODO-050")], doc["blockers"]
        why = doc["blockers"][0]["why"]
        assert why.startswith(record + ": " + says), why
        dry = refused(c, "change", "land", PLAN, "--dry-run")
        assert kinds(dry) == [("evidence", "TODO-050")], dry
    refused(c, "change", "land", PLAN)
    raw.hset(where, todo_field("TODO-050"), json.dumps(cp))  # as coord's count sealed it
    assert status(c)["landable"] is True
    raw.hset(where, todo_field("TODO-050"), json.dumps({**cp, "decision": None}))
    assert c.cli_json("change", "queue", PLAN) == {"train": [PLAN]}
    train = refused(c, "change", "queue", "--land")
    [result] = train["results"]  # (forged evidence: the train drops it, as a forged vote)
    assert result["state"] == "failed_verification" and record in result["reason"], result
    untouched(repos, base)


def test_an_earlier_sweeps_pointer_and_records_put_back_are_refused_as_a_replay(
        landing_world: tuple[Cluster, Repos]) -> None:
    """The replay of #49: sweep 1 passes, sweep 2's verify todo fails on the same
    candidates, and the keyless writer puts sweep 1's sealed pointer and verify records
    back (each genuine: 0.4 landed). The freshness anchor outside Redis (beside the
    catalog, and refs/coord/changes/<ns>/<PLAN> on each remote) says sweep 2 is the
    newest: status, land --dry-run, land and the train refuse, naming the replay. With
    the file beside the catalog gone (a lander on another machine), the remotes' anchors
    say it; a sweep that passes for real then lands."""
    import shutil

    c, repos = landing_world
    raw, base, key, s1 = landable_once(c, repos)
    good = {f: raw.hget(key, f) for f in ("sweep", "verify:TODO-101", "verify:TODO-102",
                                          "verify:TODO-103")}
    (c.root / "fail-api").touch()  # sweep 2: api's verify todo fails, same candidates
    s2 = sweep(c, 1, "--again")
    doc = status(c)
    assert doc["sweep"] == s2 and doc["verify"]["TODO-103"]["verdict"] == "failed"
    anchors = c.eco.parent / ".coord.anchors"
    [file] = list(anchors.glob("*/PLAN-001.json"))
    assert json.loads(file.read_text())["sweep"] == s2
    for n in NAMES:  # ... and on every remote, signed
        ref = git(repos.remote(n), "for-each-ref", "--format=%(refname)", "refs/coord/")
        assert ref.endswith(f"/{PLAN}"), ref
        rec = json.loads(git(repos.remote(n), "cat-file", "blob", ref))
        assert rec["sweep"] == s2 and rec["sig"].startswith("v1:"), rec

    raw.hset(key, mapping=good)  # sweep 1's genuine pointer and records, put back
    doc = status(c)
    assert doc["sweep"] == s1 and not doc["landable"]
    assert kinds(doc) == [("evidence", PLAN)], doc["blockers"]
    why = doc["blockers"][0]["why"]
    assert why.startswith(f"replayed: Redis holds sweep {s1} (run 0) but the newest sweep of "
                          f"{PLAN} is {s2} (run 0) (anchor: {file}, seq "), why
    dry = refused(c, "change", "land", PLAN, "--dry-run")
    assert kinds(dry) == [("evidence", PLAN)], dry

    # another machine: nothing beside its catalog; the remotes' anchors say it
    shutil.rmtree(anchors)
    out = refused(c, "change", "land", PLAN, "--dry-run")
    assert kinds(out) == [("evidence", PLAN)], out
    assert out["blockers"][0]["why"].startswith("replayed"), out
    assert (f"refs/coord/changes/{c.rt.keys.namespace}/{PLAN} on remote origin"
            in out["blockers"][0]["why"]), out["blockers"][0]["why"]
    assert json.loads(file.read_text())["sweep"] == s2  # learned from the remotes
    assert kinds(status(c)) == [("evidence", PLAN)]
    out = refused(c, "change", "land", PLAN)
    assert kinds(out) == [("evidence", PLAN)], out
    untouched(repos, base)

    (c.root / "fail-api").unlink()  # fixed, and swept again for real: it lands
    s3 = sweep(c, 0, "--again")
    doc = status(c)
    assert doc["sweep"] == s3 and doc["landable"] is True, doc["blockers"]
    res = c.cli("change", "land", PLAN, "--json", timeout=120)
    assert res.returncode == 0, (res.stdout, res.stderr)
    assert json.loads(res.stdout)["state"] == "landed"
