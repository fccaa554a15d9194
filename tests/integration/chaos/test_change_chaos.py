"""Randomised landings with faults injected (#25): refused pushes (someone pushes between
prepare and commit, or onto a landed repo before its revert), failing land commands,
and crashes at every step of a landing and of its undo, each followed by a resume.
And the landing rule's faults (#38): a verify todo that failed on the candidates, a
gate rejected, waiting or expired in the plan's last sweep, a verify record forged by
a writer without COORD_SIGNING_KEY: each refused before anything is pushed.

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
from tests.integration.change_repos import World, git

pytestmark = pytest.mark.timeout(300)

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
        if (point, repo) in self.crashes:
            self.crashes.discard((point, repo))
            raise Crash(f"crash at {point} of {repo}")


def draft(w: World, n: int) -> dict[str, str]:
    """A new candidate on each repo's current remote main, recorded and verified as the
    worker's calls record them. Made by one `git fast-import` per repo (the worktree's
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
    store.record_verify(w.cp.plan, w.verify_todo, w.names[-1], cands)
    return bases


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
               "gate-expired": "gate", "forged-verify": "evidence"}
GATE = "TODO-900"


def rule_fault(w: World, fault: str, cands: dict[str, str], n: int) -> ChangePlan:
    """Make ``fault`` true of the change about to land; the change plan to land it with."""
    store, plan, todo = w.rt.changes, w.cp.plan, w.verify_todo
    if fault == "verify-failed":
        store.record_verify(plan, todo, w.names[-1], cands, ok=False, exit_code=3,
                            reason="exit 3", last="3 tests failed")
    elif fault == "forged-verify":
        # the verify todo failed (sealed), and someone with Redis access but no key says
        # it passed: a new unsigned record, or the old seal over a changed body
        store.record_verify(plan, todo, w.names[-1], cands, ok=False, exit_code=3)
        key = w.rt.keys.change(plan)
        old = json.loads(str(w.rt.redis.hget(key, f"verify:{todo}")))
        forged = {**old, "ok": True, "exit_code": 0}
        if n % 2:
            forged.pop("sig"), forged.pop("kid")
        w.rt.redis.hset(key, f"verify:{todo}", json.dumps(forged))
    else:
        sid = f"{plan}-chaos-{n}"
        status = {"gate-rejected": "failed", "gate-waiting": "awaiting_approval",
                  "gate-expired": "cancelled"}[fault]
        w.rt.checkpoints.create_sweep(sid, {"plan": plan, "status": "running",
                                            "created_at": time.time()})
        w.rt.checkpoints.set_fields(sid, GATE, status=status, approvals=[])
        store.note_sweep(plan, sid)
        return dataclasses.replace(w.cp, gates=(GATE,), todos=(*w.cp.todos, GATE))
    return w.cp


def refused_by_rule(w: World, cp: ChangePlan, fault: str, bases: dict[str, str], n: int) -> None:
    """The landing is refused, naming the fault's blocker, and nothing reached a remote."""
    from coordination.change.reading import status_of
    from coordination.errors import ChangeNotReady

    with pytest.raises(ChangeNotReady) as info:
        Lander(w.rt, cp, lease_wait=5).land()
    prep = Lander(w.rt, cp, lease_wait=5).prepare(dry_run=True)
    kinds = {(b.kind, b.id) for b in prep.blockers}
    want = (RULE_FAULTS[fault], GATE if fault.startswith("gate") else w.verify_todo)
    assert not prep.ok and want in kinds, (n, fault, prep.problems)
    assert want[1] in str(info.value), (n, fault, str(info.value))
    doc = status_of(w.rt, cp)
    assert not doc["landable"] and want in {(b["kind"], b["id"]) for b in doc["blockers"]}
    assert w.repos.pushes() == [], (n, fault)
    assert {r: head_of(w, r) for r in w.names} == bases, (n, fault)


def run_world(w: World, rng: random.Random, landings: int, counts: dict[str, int]) -> None:
    script = w.root / "land.sh"
    script.write_text('#!/bin/sh\n[ -f "$COORD_CHANGE_MANIFEST" ] || exit 9\n'
                      f'[ -f "{w.root}/fail-$COORD_CHANGE_REPO" ] && exit 4\n'
                      'git push -q "$COORD_CHANGE_REMOTE" HEAD:"refs/heads/$COORD_CHANGE_BASE"\n')
    script.chmod(0o755)
    by_command = dataclasses.replace(w.cp, land="command", targets={
        r: dataclasses.replace(t, land_command=str(script)) for r, t in w.cp.targets.items()})
    w.draft()  # the worktrees, made by the worker's path once
    for n in range(landings):
        bases = draft(w, n)
        cands = {r: w.rt.changes.read(w.cp.plan).repos[r].candidate for r in w.names}
        chaos = Chaos(w, rng, script)
        cp: ChangePlan = w.cp
        # Each outcome in every run, whatever the seed: landings 1 and 2 have the last
        # repo's push refused (the rest revert), and 2 the first repo's revert too.
        forced = {1: "reverted", 2: "revert_failed"}.get(n)
        # the landing rule's faults: one of each in the first landings, then at random
        fault = (list(RULE_FAULTS)[n - 3] if 3 <= n < 3 + len(RULE_FAULTS)
                 else rng.choice(list(RULE_FAULTS)) if not forced and rng.random() < 0.1
                 else None)
        if fault:
            w.repos.log.write_text("")
            refused_by_rule(w, rule_fault(w, fault, cands, n), fault, bases, n)
            counts["refused"] = counts.get("refused", 0) + 1
            continue
        if forced:
            chaos.refuse[("before-land", w.names[-1])] = True
            if forced == "revert_failed":
                chaos.refuse[("before-revert", w.names[0])] = True
        else:
            cp = by_command if rng.random() < 0.25 else w.cp
            roll = rng.random()
            if roll < 0.25:
                chaos.refuse[("before-land", rng.choice(w.names))] = True
            elif roll < 0.35 and cp is by_command:
                (w.root / f"fail-{rng.choice(w.names)}").touch()
            if rng.random() < 0.15:  # a revert that cannot be pushed either
                chaos.refuse[("before-revert", rng.choice(w.names))] = True
            for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
                chaos.crashes.add((rng.choice(POINTS), rng.choice(w.names)))
        w.repos.log.write_text("")
        report = None
        for _attempt in range(10):  # a crash, then resume from the manifest
            try:
                report = Lander(w.rt, cp, fault=chaos.fault, lease_wait=5).land().document()
                break
            except Crash:
                continue
        for f in w.root.glob("fail-*"):
            f.unlink()
        assert report is not None, n
        counts[report["state"]] = counts.get(report["state"], 0) + 1
        check(w, report["state"], report, bases, cands, chaos.others, w.repos.pushes(), n)
        assert forced in (None, report["state"]), (n, report)


def test_randomised_landings_with_faults_end_consistent(worlds: list[World]) -> None:
    print(f"chaos seed {SEED}, {LANDINGS} landings in {len(worlds)} worlds")
    counts: list[dict[str, int]] = [{} for _ in worlds]
    errors: list[BaseException] = []
    started = time.monotonic()

    def one(i: int) -> None:
        try:
            run_world(worlds[i], random.Random(SEED + i), LANDINGS // len(worlds), counts[i])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(worlds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    total = {k: sum(c.get(k, 0) for c in counts)
             for k in ("landed", "reverted", "revert_failed", "refused")}
    print(f"{sum(total.values())} landings in {time.monotonic() - started:.1f}s: {total}")
    assert sum(total.values()) == LANDINGS // len(worlds) * len(worlds) >= 200 or LANDINGS < 200
    assert total["landed"] and total["reverted"] and total["revert_failed"]
    assert total["refused"] >= len(RULE_FAULTS) * len(worlds) or LANDINGS < 40
