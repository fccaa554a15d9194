"""The freshness anchor of a change (coordination.change.anchor): which sweep of a plan
is the newest, kept beside the catalog and on the remotes, sealed; a pointer put back
in Redis is named as a replay, and a new pointer builds on the anchor's."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from coordination.change import anchor
from coordination.runtime.context import Runtime
from coordination.trust.signing import Policy

KEY = "a" * 32
pytestmark = [pytest.mark.timeout(60), pytest.mark.signed(key=KEY)]

PLAN = "PLAN-001"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True, timeout=30).stdout.strip()


def repo(tmp_path: Path, name: str) -> tuple[str, str]:
    """A clone of a bare remote of its own: (checkout, remote name)."""
    git(tmp_path, "init", "-q", "--bare", f"{name}.git")
    git(tmp_path, "clone", "-q", f"{name}.git", name)
    return str(tmp_path / name), "origin"


def test_each_note_anchors_the_pointer_one_above_and_a_put_back_one_is_named(
        signed: Runtime, tmp_path: Path) -> None:
    rt, policy = signed, Policy((KEY,))
    anchor.note(rt, PLAN, "s-1", 0, ["TODO-101"], last=True, base_dir=tmp_path, repos={})
    first = rt.changes.read(PLAN).pointer
    anchor.note(rt, PLAN, "s-2", 0, ["TODO-101"], last=True, base_dir=tmp_path, repos={})
    a, refused = anchor.newest(tmp_path, {}, rt.keys.namespace, PLAN, policy, remotes=False)
    assert refused == [] and a is not None
    assert (a.seq, a.sweep, a.run, a.verify) == (2, "s-2", 0, {"TODO-101": ["s-2", 0]})
    assert a.record["sig"].startswith("v1:")
    assert anchor.replayed(PLAN, rt.changes.read(PLAN).pointer or {}, a) is None
    why = anchor.replayed(PLAN, first or {}, a)
    assert why is not None and why.startswith(
        f"replayed: Redis holds sweep s-1 (run 0) but the newest sweep of {PLAN} is s-2 "
        f"(run 0) (anchor: {anchor.local_path(tmp_path, rt.keys.namespace, PLAN)}, seq 2)")
    # the same sweep, a verify todo's run put back
    why = anchor.replayed(PLAN, {"sweep": "s-2", "run": 0,
                                 "verify": {"TODO-101": ["s-1", 0]}}, a)
    assert why is not None and "TODO-101 last started in run 0 of sweep s-1" in why, why
    assert "says run 0 of sweep s-2" in why


def test_a_new_pointer_builds_on_the_anchor_not_on_one_put_back_in_redis(
        signed: Runtime, tmp_path: Path) -> None:
    rt = signed
    anchor.note(rt, PLAN, "s-1", 0, ["TODO-101"], last=True, base_dir=tmp_path, repos={})
    older = rt.redis.hget(rt.keys.change(PLAN), "sweep")
    anchor.note(rt, PLAN, "s-2", 0, ["TODO-101"], last=True, base_dir=tmp_path, repos={})
    rt.redis.hset(rt.keys.change(PLAN), "sweep", older)  # sealed, genuine, put back
    # a todo run of a verify todo (not the plan's sweep): its pointer keeps the newest
    # sweep the anchor names, not the one Redis held
    doc = anchor.note(rt, PLAN, "t-1", 0, ["TODO-102"], last=False, base_dir=tmp_path,
                      repos={})
    assert doc["sweep"] == "s-2" and doc["verify"] == {"TODO-101": ["s-2", 0],
                                                       "TODO-102": ["t-1", 0]}


def test_an_anchor_whose_seal_fails_is_refused_and_none_is_nothing_to_check(
        signed: Runtime, tmp_path: Path) -> None:
    rt, policy = signed, Policy((KEY,))
    ns = rt.keys.namespace
    assert anchor.newest(tmp_path, {}, ns, PLAN, policy, remotes=False) == (None, [])
    anchor.note(rt, PLAN, "s-1", 0, [], last=True, base_dir=tmp_path, repos={})
    path = anchor.local_path(tmp_path, ns, PLAN)
    rec = json.loads(path.read_text())
    path.write_text(json.dumps({**rec, "seq": 99, "sweep": "s-0"}))  # altered
    a, refused = anchor.newest(tmp_path, {}, ns, PLAN, policy, remotes=False)
    assert a is None and len(refused) == 1
    assert "freshness anchor of change PLAN-001" in refused[0]
    assert "signature invalid" in refused[0]
    # of another plan (copied from its file): its seal is about the plan
    anchor.note(rt, "PLAN-002", "s-9", 0, [], last=True, base_dir=tmp_path, repos={})
    path.write_text(anchor.local_path(tmp_path, ns, "PLAN-002").read_text())
    assert "signature invalid" in anchor.newest(tmp_path, {}, ns, PLAN, policy,
                                                remotes=False)[1][0]


def test_the_remotes_hold_it_for_a_lander_elsewhere_who_learns_it(
        signed: Runtime, tmp_path: Path) -> None:
    rt, policy = signed, Policy((KEY,))
    ns = rt.keys.namespace
    repos = {"api": repo(tmp_path, "api"), "web": repo(tmp_path, "web")}
    starter, lander = tmp_path / "starter", tmp_path / "lander"
    anchor.note(rt, PLAN, "s-1", 0, [], last=True, base_dir=starter, repos=repos)
    anchor.note(rt, PLAN, "s-2", 0, [], last=True, base_dir=starter, repos=repos)
    ref = anchor.ref_name(ns, PLAN)
    for name in repos:
        rec = json.loads(git(tmp_path / f"{name}.git", "cat-file", "blob", ref))
        assert (rec["seq"], rec["sweep"]) == (2, "s-2")
    # another machine: nothing beside its catalog; only the remotes say it
    assert anchor.newest(lander, repos, ns, PLAN, policy, remotes=False) == (None, [])
    a, refused = anchor.newest(lander, repos, ns, PLAN, policy, remotes=True)
    assert refused == [] and a is not None and (a.seq, a.sweep) == (2, "s-2")
    assert f"{ref} on remote origin of" in a.where
    assert json.loads(anchor.local_path(lander, ns, PLAN).read_text())["sweep"] == "s-2"
    # one remote's writer rolls its anchor back (to a genuine older one): the newest wins
    api = Path(repos["api"][0])
    old = anchor.evidence.seal(anchor.KIND, anchor.about(ns, PLAN), {
        "plan": PLAN, "seq": 1, "sweep": "s-1", "run": 0, "verify": {}, "at": 1.0}, (KEY,))
    blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=api, check=True,
                          capture_output=True, text=True, input=json.dumps(old)).stdout.strip()
    git(api, "push", "-q", "--force", "origin", f"{blob}:{ref}")
    a, _ = anchor.newest(tmp_path / "third", repos, ns, PLAN, policy, remotes=True)
    assert a is not None and (a.seq, a.sweep) == (2, "s-2")
    # the next start writes one above the newest, everywhere (the rolled-back one too)
    anchor.note(rt, PLAN, "s-3", 0, [], last=True, base_dir=lander, repos=repos)
    rec = json.loads(git(tmp_path / "api.git", "cat-file", "blob", ref))
    assert (rec["seq"], rec["sweep"]) == (3, "s-3")


def test_a_checkout_that_is_no_clone_is_never_a_parents_repo(signed: Runtime,
                                                             tmp_path: Path) -> None:
    """A repo whose checkout is not cloned yet, inside another repository: git run there
    would find the one above it; no anchor is read from or pushed to that one's remote."""
    outer, remote = repo(tmp_path, "outer")
    inner = Path(outer) / "checkouts" / "api"
    inner.mkdir(parents=True)
    anchor.note(signed, PLAN, "s-1", 0, [], last=True, base_dir=tmp_path / "cat",
                repos={"api": (str(inner), remote)})
    refs = git(tmp_path / "outer.git", "for-each-ref", "refs/coord/")
    assert refs == ""
