"""Randomised landings with faults injected (#25): refused pushes (someone pushes between
prepare and commit, or onto a landed repo before its revert), failing land commands,
and crashes at every step of a landing and of its undo, each followed by a resume.
And the landing rule's faults (#38): a verify todo that failed on the candidates, a
gate rejected, waiting or expired in the plan's last sweep, and a writer without
COORD_SIGNING_KEY forging a verify record, a vote, the plan's sweep pointer, a gate's
decision, rewriting a failed todo to pending, or putting an older sealed success (a
verify record, a todo's outcome of two runs back, an older sweep's pointer and verify
record: a replay only the freshness anchor outside Redis can tell) back after a later
failure, or a gate's binding rolled back to the one its old vote was cast under: each
refused before anything is pushed. Some rounds then repair the fault (verified and approved again, as coord
records it) and land under push and crash faults; some landings pass a gate approved
by a sealed vote. Across every round, a candidate reaches a remote only in a round
whose candidates the test itself verified and approved.

And a keyless writer (#59: redis-py, no key) acts at random points: in a landing, at
its named points, it rewrites another repo's step ``landed`` (on an earlier round's
candidate, or on its own before it landed) or puts an earlier round's signed manifest
in place (a resume after a crash then finds it); after a landed round, it carries the
landing on again in five ways (the state set back to ``landing``; an earlier round's
signed manifest with it; an undo nobody sealed; an earlier round's sealed undo with its
own manifest, and with its steps too): each attempt pushes nothing, and what it reports
matches the remotes. Each of those acts is done in every run, whatever the seed: the
earlier manifest before a crash in the landing after the rule's faults, and a world's
first three replays one way each. A resume the writer's manifest stops is carried on once the
genuine record is back (an operator's repair), and the round's report matches the
remotes as ever.

In-process (a crash is an exception raised at a named step; the kill of a real
process is tests/integration/test_change_land.py's), against local bare repos and
the session's redis-server. After each landing: every remote is at its landed
candidate, or at its base plus a revert, or untouched (or at what someone else
pushed), and coord's report (the landing's result and `change status`) says
exactly that; no candidate or revert was pushed twice. The seed is printed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from coordination.change.landing import Crash, Lander
from coordination.change.model import ChangePlan
from coordination.errors import ChangeNotReady, OperationFailed
from tests.integration.change_repos import World, git

pytestmark = pytest.mark.timeout(900)  # 200 landings: a few minutes on 2 cores, more when loaded

NAMES = ["libz", "core", "api", "web"]
#: Worlds landing at once (threads), each with repos and a plan of its own.
WORLDS = 4
LANDINGS = int(os.environ.get("COORD_CHANGE_CHAOS_LANDINGS", "200"))
#: Read at import: the autouse fixture hides COORD_* settings from the test itself.
SEED = int(os.environ.get("COORD_CHANGE_CHAOS_SEED", time.time_ns() % 2**32))
POINTS = ("before-land", "after-land", "before-revert", "after-revert")


@pytest.fixture
def worlds(tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> list[World]:
    monkeypatch.setenv("COORD_LEASE_TTL", "2")
    monkeypatch.setenv("COORD_SHARE_NAMESPACE", "1")  # one Redis namespace, four catalogs
    monkeypatch.setenv("COORD_SIGNING_KEY", "c" * 32)  # verify records sealed, forgeries seen
    from coordination.settings import get_settings

    get_settings.cache_clear()
    with ThreadPoolExecutor(WORLDS) as pool:  # git set-up, a few hundred processes
        return list(pool.map(lambda i: World(tmp_path / f"w{i}", [f"w{i}-{n}" for n in NAMES],
                                              plan=f"PLAN-{i + 1:03d}"), range(WORLDS)))


class Chaos:
    def __init__(self, w: World, rng: random.Random, script: Path) -> None:
        self.w, self.rng = w, rng
        self.others: dict[str, str] = {}  # repo -> SHA someone else pushed this landing
        self.refuse: dict[tuple[str, str], bool] = {}
        self.crashes: set[tuple[str, str]] = set()
        self.fail_command: str | None = None
        self.script = script
        self.writer: Writer | None = None

    def other_push(self, repo: str) -> None:
        """Someone else pushes onto the remote's main (from a clone of their own)."""
        other = self.w.root / "others" / repo
        if not other.exists():
            git(self.w.root, "clone", "-q", str(self.w.repos.remote(repo)), str(other))
        git(other, "fetch", "-q", "origin")
        git(other, "reset", "-q", "--hard", "origin/main")
        (other / "other.txt").write_text(f"{time.time_ns()}\n")
        git(other, "add", "-A")
        git(other, "commit", "-q", "-m", "someone else")
        git(other, "push", "-q", "origin", "HEAD:main")
        self.others[repo] = git(other, "rev-parse", "HEAD")

    def fault(self, point: str, repo: str) -> None:
        if self.refuse.pop((point, repo), False):
            self.other_push(repo)
        if (self.writer is not None and point.endswith("land")
                and (self.writer.must or self.rng.random() < 0.2)):
            later = self.w.names[self.w.names.index(repo) + 1:]
            self.writer.during(later, crashing=(point, repo) in self.crashes)
        if (point, repo) in self.crashes:
            self.crashes.discard((point, repo))
            raise Crash(f"crash at {point} of {repo}")


class Writer:
    """The keyless writer (#59): redis-py on the test's Redis, never through coord, no
    key. It keeps the change's record of every landed round (genuine, sealed) to put
    back later."""

    def __init__(self, w: World, rng: random.Random) -> None:
        import redis

        self.w, self.rng = w, rng
        self.raw = redis.Redis.from_url(w.rt.settings.redis_url, decode_responses=True)
        self.key = w.rt.keys.change(w.cp.plan)
        self.kept: list[dict[str, str]] = []  # earlier rounds' records, as they ended
        self.undos: list[dict[str, str]] = []  # records of undos under way (sealed)
        self.genuine: dict[str, str] = {}  # the manifest it last put an earlier one over
        self.acts: dict[str, int] = {}
        #: Set, the next ``during`` at a crashing point puts an earlier manifest in place,
        #: whatever the dice: done in every run, not only with most seeds.
        self.must = False

    def _count(self, what: str) -> None:
        self.acts[what] = self.acts.get(what, 0) + 1

    def keep(self) -> None:
        self.kept.append(self.raw.hgetall(self.key))

    def during(self, later: list[str], *, crashing: bool) -> None:
        """At a landing's named point: a repo it has not reached yet (``later``) said
        landed (on an earlier round's candidate, or its own), or, when the landing is
        about to crash, an earlier round's signed manifest put in place (what the
        resume reads)."""
        if crashing and self.kept and (self.must or self.rng.random() < 0.5):
            self.must = False
            now = self.raw.hgetall(self.key)
            self.genuine = {f: now[f] for f in MANIFEST_FIELDS if f in now}
            old = self.rng.choice(self.kept)
            self.raw.hset(self.key, mapping={f: old[f] for f in MANIFEST_FIELDS if f in old})
            self._count("during: earlier manifest")
            return
        if not later:
            return
        target = self.rng.choice(later)
        landed = self.w.rt.changes.read(self.w.cp.plan).repos[target].candidate
        if self.kept and self.rng.random() < 0.5:
            rec = json.loads(self.rng.choice(self.kept).get(f"repo:{target}") or "{}")
            landed = rec.get("candidate") or landed
        self.raw.hset(self.key, f"step:{target}",
                      json.dumps({"state": "landed", "landed": landed}))
        self._count("during: step landed")

    @property
    def replays(self) -> int:
        return sum(v for k, v in self.acts.items() if k.startswith("replay:"))

    def replay(self, cp: ChangePlan, n: int) -> str:
        """After a landed round: carry the landing on again, one of five ways; what it
        did (the record put back as it was after: an operator's repair)."""
        before = self.raw.hgetall(self.key)
        reverted = self.undos
        ways = ["landing again", "earlier manifest", "unsealed undo"]
        if reverted:
            ways += ["earlier sealed undo", "earlier undo and its steps"]
        # the first three: one way each, whatever the seed; then at random
        way = ways[self.replays] if self.replays < 3 else self.rng.choice(ways)
        fields: dict[str, str] = {"state": "landing"}
        if way == "earlier manifest" and self.kept:
            old = self.rng.choice(self.kept[:-1] or self.kept)
            fields.update({f: old[f] for f in MANIFEST_FIELDS if f in old})
        elif way == "unsealed undo":
            fields["reason"] = "the writer says so"
        elif way.startswith("earlier"):
            old = self.rng.choice(reverted)
            fields.update({f: v for f, v in old.items()
                           if f in (*MANIFEST_FIELDS, "reason", "undo")
                           or (way.endswith("steps") and f.startswith("step:"))})
        self.raw.hset(self.key, mapping=fields)
        if way == "landing again" or way == "earlier manifest":
            self.raw.hdel(self.key, "reason", "undo")
        self._count(f"replay: {way}")
        try:
            return way + ": " + str(Lander(self.w.rt, cp, lease_wait=5).land().state)
        except (ChangeNotReady, OperationFailed) as exc:
            return way + ": refused: " + str(exc).splitlines()[0]
        finally:  # the genuine record back, as the writer found it
            self.raw.delete(self.key)
            self.raw.hset(self.key, mapping=before)


def replayed(w: World, writer: Writer, cp: ChangePlan, cands: dict[str, str], n: int) -> None:
    """The writer's replay after a landed round pushes nothing, and what it reports
    matches the remotes (each repo still at its landed candidate)."""
    heads = {r: head_of(w, r) for r in w.names}
    w.repos.log.write_text("")
    said = writer.replay(cp, n)
    assert w.repos.pushes() == [], (n, said)
    assert {r: head_of(w, r) for r in w.names} == heads == cands, (n, said)
    # carried on: the landing found landed; refused; or an earlier undo put back whole
    # (its manifest, reason, seal and steps: all genuine) finding every remote moved on
    # past what it would revert: revert_failed, nothing pushed
    assert said.endswith(": landed") or ": refused: " in said or (
        said == "earlier undo and its steps: revert_failed"), (n, said)


def draft(w: World, n: int) -> dict[str, str]:
    """A new candidate on each repo's current remote main, recorded as the worker's
    calls record it (its verification: :func:`swept`). Made by one `git fast-import` per repo (the worktree's
    files are not needed to land it, only its branch's SHA): six git processes per repo
    were half of each landing's time."""
    from coordination.runtime.changes import RepoRecord

    store, cands, bases = w.rt.changes, {}, {}
    marks = w.root / "marks"
    for repo in w.names:
        rec = store.read(w.cp.plan).repos[repo]
        base = head_of(w, repo)
        body, msg = f"change {n} of {repo}\n", f"change {n} in {repo}\n"
        stream = (f"commit refs/heads/{w.cp.branch}\nmark :1\n"
                  f"committer t <t@t> {1_700_000_000 + n} +0000\n"
                  f"data {len(msg)}\n{msg}from {base}\nM 100644 inline change.txt\n"
                  f"data {len(body)}\n{body}\n")
        args = ("fast-import", "--quiet", "--force", f"--export-marks={marks}")
        try:
            git(rec.worktree, *args, input=stream)
        except subprocess.CalledProcessError:  # the base is someone else's push: fetch it
            git(rec.worktree, "fetch", "-q", "origin", "main")
            git(rec.worktree, *args, input=stream)
        cands[repo] = marks.read_text().split()[1]
        bases[repo] = base
        store.set_repo(w.cp.plan, repo, RepoRecord("main", "origin", base, cands[repo],
                                                   rec.worktree))
    return bases


KEY = "c" * 32
GATE = "TODO-900"
MANIFEST_FIELDS = ("manifest", "manifest_sig", "manifest_key_id")


def gated(cp: ChangePlan) -> ChangePlan:
    """``cp`` with a gate after its verify todo, as the catalog would say it."""
    from coordination.change.model import definition

    spec = {"approvals": 1, "from": [], "starter_may_approve": True, "expires": None,
            "on_expiry": "cancel"}
    return dataclasses.replace(
        cp, gates=(GATE,), todos=(*cp.todos, GATE), gate_needs={GATE: 1},
        gate_specs={GATE: spec},
        definitions={**cp.definitions, GATE: definition({"repo": cp.order[-1], "gate": spec,
                                                         "timeout": 3600})},
        preds={**cp.preds, GATE: tuple(cp.verify_todos)})


def swept(w: World, cp: ChangePlan, sid: str, cands: dict[str, str], *, run: int = 0,
          ok: bool = True, approve: bool = True, **spec: object) -> None:
    """Run ``run`` of the plan's sweep ``sid`` as coord records it: the sweep and its
    signed spec (what the catalog says ``cp`` runs; ``spec``: more of its fields, its
    levels and the last run that dispatched each todo), the plan's sealed sweep pointer,
    every other todo's end (succeeded, its outcome sealed, of that run), the verify
    todo's end on ``cands`` (sealed, of that run), its gate (if any) approved by a sealed
    vote, its decision sealed as coord's count seals it."""
    from coordination.change import anchor
    from coordination.trust import evidence, signing

    rt, plan, todo = w.rt, cp.plan, w.verify_todo
    frozen = {t: {**d, "preds": list(cp.preds.get(t, ()))} for t, d in cp.definitions.items()}
    text = json.dumps({"sweep_id": sid, "plan": plan, "run": run, "todos": frozen, **spec})
    record = {"plan": plan, "status": "succeeded" if ok else "failed", "run": run,
              "spec": text, **signing.sign(sid, run, text, KEY)}
    if run == 0:
        rt.checkpoints.create_sweep(sid, {**record, "created_at": time.time()})
    else:
        rt.checkpoints.update_sweep(sid, **{k: v for k, v in record.items() if k != "status"})
    # (as a sweep's start notes it: the pointer built on the newest freshness anchor's,
    # then anchored beside the catalog; no remote anchor here, which the integration
    # tests cover, so the chaos keeps its pace)
    anchor.note(rt, plan, sid, run, [todo], last=True, base_dir=cp.base_dir, repos={})
    rt.changes.record_verify(plan, todo, w.names[-1], cands, ok=ok, sweep=sid, run=run,
                             exit_code=0 if ok else 3, reason=None if ok else "exit 3")
    rt.checkpoints.set_fields(sid, todo, status="succeeded" if ok else "failed",
                              finished_at=time.time())
    for t in sorted(frozen):
        if t != todo and t not in cp.gates:
            ended(w, sid, t, "succeeded", run)
    if GATE in cp.gates and approve:
        # its binding as coord computes it: the signed spec and its predecessors' ends
        preds = [p for p in cp.preds.get(GATE, ()) if p in frozen]
        binding = evidence.binding_of(evidence.spec_digest_of(plan, frozen),
                                      rt.checkpoints.get_all(sid, preds))
        vote = evidence.seal("vote", evidence.vote_about(sid, GATE, binding, "ana"),
                             {"d": "approve", "b": binding, "at": time.time(), "c": ""},
                             (KEY,))
        votes = {"ana": vote}
        rt.redis.hset(rt.keys.sweep(sid), f"g:{GATE}", json.dumps(votes))
        rt.checkpoints.set_fields(sid, GATE, status="succeeded", approvals=["ana"],
                                  binding=binding, decision=evidence.decision_stamp(
                                      (KEY,), sid, GATE, evidence.spec_digest_of(plan, frozen),
                                      binding, run, ["ana"], votes))


def ended(w: World, sid: str, todo: str, status: str, run: int) -> str:
    """``todo`` ended ``status`` in run ``run`` of ``sid``, its outcome sealed as its
    worker seals it; its checkpoint as stored."""
    from coordination.runtime.sweep_fields import todo_field
    from coordination.trust.evidence import outcome_stamp

    code = {"succeeded": 0, "failed": 7}.get(status)
    w.rt.checkpoints.set_fields(sid, todo, status=status, exit_code=code,
                                finished_at=time.time(),
                                outcome_seal=outcome_stamp((KEY,), sid, todo, run, status, code))
    return str(w.rt.redis.hget(w.rt.keys.sweep(sid), todo_field(todo)))


def head_of(w: World, repo: str) -> str:
    """The remote's main, read from its ref file (a git process per read was a tenth of
    the test's time), or from git once auto-gc packed it."""
    ref = w.repos.remote(repo) / "refs" / "heads" / "main"
    try:
        return ref.read_text().strip()
    except FileNotFoundError:
        return w.repos.remote_head(repo)


def check(w: World, out_state: str, report: dict, bases: dict[str, str],
          cands: dict[str, str], others: dict[str, str], pushes: list[tuple[str, str, str]],
          n: int) -> None:
    doc = w.status()
    assert doc["state"] == out_state == report["state"], (n, doc, report)
    left = set(report["left_landed"])
    for repo in w.names:
        head = head_of(w, repo)
        state = doc["repos"][repo]["state"]
        remote = w.repos.remote(repo)
        where = (n, repo, state, doc["repos"][repo], report)
        if state == "landed":
            assert doc["repos"][repo]["landed"] == cands[repo], where
            if out_state == "landed":
                assert head == cands[repo], where
            else:  # left landed after a failed revert: someone pushed on top
                assert repo in left and repo in others, where
                assert git(remote, "merge-base", "--is-ancestor", cands[repo], head) == "", where
        elif state == "revert_failed":
            assert repo in left and out_state == "revert_failed", where
            assert git(remote, "merge-base", "--is-ancestor", cands[repo], head) == "", where
        elif state == "reverted":
            assert repo in report["reverted"] and repo not in left, where
            assert git(remote, "rev-parse", f"{head}^") == cands[repo], where
            assert (git(remote, "rev-parse", f"{head}^{{tree}}")
                    == git(remote, "rev-parse", f"{bases[repo]}^{{tree}}")), where
        else:  # never landed
            assert state in ("verified", "drafted"), where
            assert head in (bases[repo], others.get(repo)), where
            assert repo not in left and repo not in report["reverted"], where
    if out_state == "landed":
        assert report["landed"] == w.names
    # nothing pushed twice: each candidate once at most, each revert once at most
    news = [p[2] for p in pushes]
    assert len(news) == len(set(news)), (n, pushes)


#: The landing rule's faults: what is wrong -> the blocker (kind) that must refuse it.
RULE_FAULTS = {"verify-failed": "verify", "gate-rejected": "gate", "gate-waiting": "gate",
               "gate-expired": "gate", "forged-verify": "evidence", "forged-vote": "evidence",
               "replayed-verify": "evidence", "moved-pointer": "evidence",
               "failed-to-pending": "run", "replayed-outcome": "evidence",
               "forged-decision": "evidence", "replayed-pointer": "evidence",
               "rolled-back-binding": "evidence"}
#: The todo of no verify the outcome faults are about (the first repo's edit).
EDIT = "TODO-001"


def rule_fault(w: World, fault: str, cands: dict[str, str], n: int) -> ChangePlan:
    """Make ``fault`` true of the change about to land (swept as coord records it, then
    what went wrong, or what a writer without the key did); the change plan to land it
    with, and the blocker's id."""
    store, plan, todo = w.rt.changes, w.cp.plan, w.verify_todo
    sid = f"{plan}-chaos-{n}"
    key = w.rt.keys.change(plan)
    cp = (gated(w.cp) if fault.startswith(("gate", "forged-vote", "moved", "forged-decision",
                                           "replayed-pointer", "rolled-back"))
          else w.cp)
    from coordination.runtime.sweep_fields import todo_field

    where = w.rt.keys.sweep(sid)
    if fault == "verify-failed":
        swept(w, cp, sid, cands, ok=False)
    elif fault == "forged-verify":
        # the verify todo failed (sealed), and someone with Redis access but no key says
        # it passed: a new unsigned record, or the old seal over a changed body
        swept(w, cp, sid, cands, ok=False)
        old = json.loads(str(w.rt.redis.hget(key, f"verify:{todo}")))
        forged = {**old, "ok": True, "exit_code": 0}
        if n % 2:
            forged.pop("sig"), forged.pop("kid")
        w.rt.redis.hset(key, f"verify:{todo}", json.dumps(forged))
        w.rt.checkpoints.set_fields(sid, todo, status="succeeded")
    elif fault == "replayed-verify":
        # run 0 passed; run 1 (a resume) failed on the same candidates; the writer puts
        # run 0's sealed success back, and the checkpoint's status with it
        swept(w, cp, sid, cands)
        success = w.rt.redis.hget(key, f"verify:{todo}")
        swept(w, cp, sid, cands, run=1, ok=False)
        w.rt.redis.hset(key, f"verify:{todo}", str(success))
        w.rt.checkpoints.set_fields(sid, todo, status="succeeded")
    elif fault == "forged-vote":
        swept(w, cp, sid, cands)
        raw = json.loads(str(w.rt.redis.hget(w.rt.keys.sweep(sid), f"g:{GATE}")))
        # no seal at all, or the sealed vote of ana under another approver's name
        forged = ({"bo": {k: v for k, v in raw["ana"].items() if k not in ("sig", "kid")}}
                  if n % 2 else {"bo": raw["ana"]})
        w.rt.redis.hset(w.rt.keys.sweep(sid), f"g:{GATE}", json.dumps(forged))
        w.rt.checkpoints.set_fields(sid, GATE, approvals=["bo"])
    elif fault == "moved-pointer":
        # an older sweep approved the gate; the last one rejected it; the writer points
        # the change back at the older one (a plain id, or the pointer's JSON rewritten)
        swept(w, cp, f"{sid}-older", cands)
        swept(w, cp, sid, cands, approve=False)
        w.rt.checkpoints.set_fields(sid, GATE, status="failed", rejected_by="bo")
        now = json.loads(str(w.rt.redis.hget(key, "sweep")))
        w.rt.redis.hset(key, "sweep", f"{sid}-older" if n % 2 else json.dumps(
            {**now, "sweep": f"{sid}-older"}))
    elif fault == "replayed-pointer":
        # an older sweep passed (verified, its gate approved); the last one's verify todo
        # failed, or its gate was rejected; the writer puts the older sweep's sealed
        # pointer and verify record back: every record genuine, only the anchor outside
        # Redis knows the older sweep is not the newest
        swept(w, cp, f"{sid}-older", cands)
        older = {f: str(w.rt.redis.hget(key, f)) for f in ("sweep", f"verify:{todo}")}
        if n % 2:
            swept(w, cp, sid, cands, ok=False)
        else:
            swept(w, cp, sid, cands, approve=False)
            w.rt.checkpoints.set_fields(sid, GATE, status="failed", rejected_by="bo")
        w.rt.redis.hset(key, mapping=older)
    elif fault == "rolled-back-binding":
        # run 0 approved the gate; run 1 ran the verify todo again (a new end: the gate
        # opened again under a new binding, waiting); the writer puts the old binding,
        # approval and decision back, as though the old vote still counted
        swept(w, cp, sid, cands)
        old = w.rt.checkpoints.get_all(sid, [GATE])[GATE]
        swept(w, cp, sid, cands, run=1, approve=False, levels=[[todo], [GATE]],
              dispatched={todo: 1, GATE: 1})
        w.rt.checkpoints.set_fields(sid, GATE, status="succeeded", approvals=["ana"],
                                    binding=old["binding"], decision=old["decision"])
    elif fault == "failed-to-pending":
        # a todo of no verify failed (sealed); the writer says it has not ended yet
        swept(w, cp, sid, cands)
        failed = json.loads(ended(w, sid, EDIT, "failed", 0))
        w.rt.redis.hset(where, todo_field(EDIT), json.dumps(
            {**failed, "status": rng_choice(n, ("pending", "queued")), "exit_code": None,
             "outcome_seal": failed["outcome_seal"] if n % 2 else None}))
    elif fault == "replayed-outcome":
        # run 0 skipped the edit (sealed); run 1 ran it again and it failed; run 2 ran
        # only the verify todo; the writer puts run 0's sealed skip back
        swept(w, cp, sid, cands)
        skipped = ended(w, sid, EDIT, "skipped", 0)
        swept(w, cp, sid, cands, run=1, levels=[[EDIT], [todo]],
              dispatched={EDIT: 1, todo: 1})
        ended(w, sid, EDIT, "failed", 1)
        swept(w, cp, sid, cands, run=2, levels=[[todo]], dispatched={EDIT: 1, todo: 2})
        ended(w, sid, EDIT, "failed", 1)
        w.rt.redis.hset(where, todo_field(EDIT), skipped)
    elif fault == "forged-decision":
        # the gate approved by a sealed vote, its decision taken away, or another
        # sweep's put in its place
        swept(w, cp, f"{sid}-other", cands)
        other = w.rt.checkpoints.get_all(f"{sid}-other", [GATE])[GATE]["decision"]
        swept(w, cp, sid, cands)
        w.rt.checkpoints.set_fields(sid, GATE, decision=other if n % 2 else None)
    else:
        swept(w, cp, sid, cands, approve=False)
        status = {"gate-rejected": "failed", "gate-waiting": "awaiting_approval",
                  "gate-expired": "cancelled"}[fault]
        w.rt.checkpoints.set_fields(sid, GATE, status=status, approvals=[])
    return cp


def rng_choice(n: int, options: tuple[str, ...]) -> str:
    return options[n // 2 % len(options)]


def blocked_id(w: World, fault: str) -> str:
    if fault in ("moved-pointer", "replayed-pointer"):
        return w.cp.plan
    if fault in ("failed-to-pending", "replayed-outcome"):
        return EDIT
    return GATE if fault.startswith(("gate", "forged-vote", "forged-decision", "rolled")) \
        else w.verify_todo


def refused_by_rule(w: World, cp: ChangePlan, fault: str, bases: dict[str, str], n: int) -> None:
    """The landing is refused, naming the fault's blocker, and nothing reached a remote."""
    from coordination.change.reading import status_of
    from coordination.errors import ChangeNotReady

    with pytest.raises(ChangeNotReady) as info:
        Lander(w.rt, cp, lease_wait=5).land()
    prep = Lander(w.rt, cp, lease_wait=5).prepare(dry_run=True)
    kinds = {(b.kind, b.id) for b in prep.blockers}
    want = (RULE_FAULTS[fault], blocked_id(w, fault))
    assert not prep.ok and want in kinds, (n, fault, prep.problems)
    assert want[1] in str(info.value), (n, fault, str(info.value))
    doc = status_of(w.rt, cp)
    assert not doc["landable"] and want in {(b["kind"], b["id"]) for b in doc["blockers"]}
    assert w.repos.pushes() == [], (n, fault)
    assert {r: head_of(w, r) for r in w.names} == bases, (n, fault)


def run_world(w: World, rng: random.Random, landings: int, counts: dict[str, int],
              legit: set[str], others: set[str], acts: dict[str, int]) -> None:
    """``landings`` rounds; ``legit`` gathers the candidates the test verified and
    approved (only those may reach a remote), ``others`` what someone else pushed."""
    script = w.root / "land.sh"
    script.write_text('#!/bin/sh\n[ -f "$COORD_CHANGE_MANIFEST" ] || exit 9\n'
                      f'[ -f "{w.root}/fail-$COORD_CHANGE_REPO" ] && exit 4\n'
                      'git push -q "$COORD_CHANGE_REMOTE" HEAD:"refs/heads/$COORD_CHANGE_BASE"\n')
    script.chmod(0o755)
    by_command = dataclasses.replace(w.cp, land="command", targets={
        r: dataclasses.replace(t, land_command=str(script)) for r, t in w.cp.targets.items()})
    w.draft()  # the worktrees, made by the worker's path once
    writer = Writer(w, rng)
    for n in range(landings):
        bases = draft(w, n)
        cands = {r: w.rt.changes.read(w.cp.plan).repos[r].candidate for r in w.names}
        chaos = Chaos(w, rng, script)
        cp: ChangePlan = w.cp
        # Each outcome in every run, whatever the seed: landings 1 and 2 have the last
        # repo's push refused (the rest revert), and 2 the first repo's revert too.
        forced = {1: "reverted", 2: "revert_failed"}.get(n)
        # and the landing after the rule's faults has the writer put an earlier round's
        # manifest in place just before a crash, so that the resume reads it
        manifest_put = n == 3 + len(RULE_FAULTS)
        # the landing rule's faults: one of each in the first landings, then at random
        fault = (list(RULE_FAULTS)[n - 3] if 3 <= n < 3 + len(RULE_FAULTS)
                 else rng.choice(list(RULE_FAULTS))
                 if not forced and not manifest_put and rng.random() < 0.12
                 else None)
        if fault:
            w.repos.log.write_text("")
            faulty = rule_fault(w, fault, cands, n)
            refused_by_rule(w, faulty, fault, bases, n)
            counts["refused"] = counts.get("refused", 0) + 1
            if n % 2:  # the fault stays: the next round drafts anew
                continue
            # repaired (verified and approved again, in a new sweep), then landed under
            # the push and crash faults below
            cp = faulty
            swept(w, cp, f"{cp.plan}-chaos-{n}-again", cands)
        elif forced:
            swept(w, cp, f"{cp.plan}-chaos-{n}", cands)
        else:
            cp = by_command if rng.random() < 0.25 else w.cp
            if rng.random() < 0.3:  # behind a gate, approved by a sealed vote
                cp = gated(cp)
            swept(w, cp, f"{cp.plan}-chaos-{n}", cands)
        legit.update(cands.values())
        if forced:
            chaos.refuse[("before-land", w.names[-1])] = True
            if forced == "revert_failed":
                chaos.refuse[("before-revert", w.names[0])] = True
        else:
            roll = rng.random()
            if roll < 0.25:
                chaos.refuse[("before-land", rng.choice(w.names))] = True
            elif roll < 0.35 and cp.land == "command":
                (w.root / f"fail-{rng.choice(w.names)}").touch()
            if rng.random() < 0.15:  # a revert that cannot be pushed either
                chaos.refuse[("before-revert", rng.choice(w.names))] = True
            for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
                chaos.crashes.add((rng.choice(POINTS), rng.choice(w.names)))
        chaos.writer = writer if rng.random() < 0.3 else None
        if manifest_put:
            chaos.writer, writer.must = writer, True
            chaos.crashes.add(("before-land", w.names[0]))
        w.repos.log.write_text("")
        report = None
        for _attempt in range(10):  # a crash, then resume from the manifest
            pushed = w.repos.pushes()
            try:
                report = Lander(w.rt, cp, fault=chaos.fault, lease_wait=5).land().document()
                break
            except Crash:
                left = writer.raw.hgetall(writer.key)
                if left.get("undo"):  # an undo under way, sealed: the writer keeps it
                    writer.undos.append(left)
                continue
            except (ChangeNotReady, OperationFailed) as exc:  # the writer's manifest: refused
                assert writer.genuine, (n, str(exc))
                assert w.repos.pushes() == pushed, (n, str(exc))  # the refusal pushed nothing
                counts["resume refused"] = counts.get("resume refused", 0) + 1
                # an operator puts the genuine record back: the landing carries on
                writer.raw.hset(writer.key, mapping=writer.genuine)
                writer.genuine, chaos.writer = {}, None
                continue
        for f in w.root.glob("fail-*"):
            f.unlink()
        assert report is not None, n
        counts[report["state"]] = counts.get(report["state"], 0) + 1
        if fault:
            counts["repaired"] = counts.get("repaired", 0) + 1
        if GATE in cp.gates:
            counts["gated"] = counts.get("gated", 0) + 1
        others.update(chaos.others.values())
        check(w, report["state"], report, bases, cands, chaos.others, w.repos.pushes(), n)
        assert forced in (None, report["state"]), (n, report)
        if report["state"] == "landed" and writer.kept and (writer.replays < 3
                                                            or rng.random() < 0.35):
            replayed(w, writer, cp, cands, n)
        writer.keep()
    acts.update(writer.acts)


def reached(w: World, legit: set[str], others: set[str]) -> None:
    """Every commit on every remote's main: the seed, someone else's, a candidate the
    test verified and approved, or coord's revert of one (its trailer, over one)."""
    for repo in w.names:
        remote = w.repos.remote(repo)
        log = git(remote, "log", "--first-parent", "--format=%H %P%x00%B%x01", "main")
        chain = [e.strip() for e in log.split("\x01") if e.strip()]
        for entry in chain[:-1]:  # (the last is the seed)
            head, body = entry.split("\x00", 1)
            sha, *parents = head.split()
            ok = (sha in legit or sha in others
                  or (f"Coord-Change: {w.cp.plan}" in body and parents[0] in legit))
            assert ok, (repo, sha, body)


def test_randomised_landings_with_faults_end_consistent(worlds: list[World]) -> None:
    print(f"chaos seed {SEED}, {LANDINGS} landings in {len(worlds)} worlds")
    counts: list[dict[str, int]] = [{} for _ in worlds]
    acts: list[dict[str, int]] = [{} for _ in worlds]
    legit: list[set[str]] = [set() for _ in worlds]
    others: list[set[str]] = [set() for _ in worlds]
    errors: list[BaseException] = []
    started = time.monotonic()

    def one(i: int) -> None:
        try:
            run_world(worlds[i], random.Random(SEED + i), LANDINGS // len(worlds), counts[i],
                      legit[i], others[i], acts[i])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(worlds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    for i, w in enumerate(worlds):  # nothing unverified or unapproved on any remote
        reached(w, legit[i], others[i])
    total = {k: sum(c.get(k, 0) for c in counts)
             for k in ("landed", "reverted", "revert_failed", "refused", "repaired", "gated")}
    rounds = sum(total[k] for k in ("landed", "reverted", "revert_failed", "refused")) \
        - total["repaired"]
    print(f"{rounds} rounds in {time.monotonic() - started:.1f}s: {total}")
    assert rounds == LANDINGS // len(worlds) * len(worlds) >= 200 or LANDINGS < 200
    assert total["landed"] and total["reverted"] and total["revert_failed"]
    assert (total["refused"] >= len(RULE_FAULTS) * len(worlds)
            or LANDINGS // len(worlds) < 3 + len(RULE_FAULTS))
    assert total["repaired"] and total["gated"]
    writer = {k: sum(a.get(k, 0) for a in acts) for k in sorted({k for a in acts for k in a})}
    print(f"the keyless writer: {writer}; resumes it stopped: "
          f"{sum(c.get('resume refused', 0) for c in counts)}")
    acted = {k for k, v in writer.items() if v}
    if LANDINGS // len(worlds) > 3 + len(RULE_FAULTS):  # (forced once a world gets there)
        assert "during: earlier manifest" in acted, writer
    if min(c.get("landed", 0) for c in counts) >= 3:  # (a world's first three landed
        # rounds each carry the landing on again, one way each)
        assert {"replay: landing again", "replay: earlier manifest",
                "replay: unsealed undo"} <= acted, writer
    if LANDINGS >= 200:  # (the writer's step rewrites: dozens in every run at this size)
        assert "during: step landed" in acted, writer
