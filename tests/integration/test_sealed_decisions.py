"""Nothing plain decides (#78): a keyless Redis writer (``redis-cli`` against the test's
redis-server, no key) mounts each attack of the 0.6 campaign on the real code paths.

1. It plants a pull request record (``pr:api``: a number no forge has) and a forge view
   ``"source": "webhook"`` approving the verified head: ``coord change status`` cast it
   as a sealed vote on a ``forge_reviews`` gate, with the operator's key. Now a record
   not sealed by coord is never taken (reported on stderr); keyless, only a read of the
   forge made now counts (here the forge cannot be read: no vote).
2. It swaps a pull request number (record and manifest) for another pull request of
   the same head into another base, and has the landing carried on: it merged that one
   and said ``landed``. Now the merge refuses a pull request whose base, as the forge
   says it at merge time, is not the repo's landing base (keyless too); and the landing
   rule's forge check names it.
3. It writes ``state landed`` over a verified, unlanded change: ``coord change prune``
   deleted its branch and its uncommitted worktree. Now ended is what the sealed
   landing record says (with a key), and, key or not, a branch with commits on no
   remote or a worktree with uncommitted changes is kept without ``--force``.
4. It deletes a sweep's record and puts a todo's older sealed context value back: with
   the sweep gone nothing refused it. Now a run-bound value whose sweep is gone is
   refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.change_repos import Repos, World, git
from tests.integration.forge_world import PullWorld, with_forges
from tests.integration.contexts import context_plan, raw_value
from tests.integration.helpers import PLAN, Cluster, keygen
from tests.integration.landing import start, write_catalog

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

KEY = "integration-sealed-decisions-key"


def redis_cli(url: str, *args: str) -> str:
    """One command of the keyless writer: ``redis-cli`` (it holds no key)."""
    out = subprocess.run(["redis-cli", "-u", url, *args], capture_output=True, text=True,
                         timeout=30, check=True)
    assert "ERR" not in out.stdout, out.stdout
    return out.stdout.strip()


# -- 1. a planted forge view casts no vote ---------------------------------------------
@pytest.mark.parametrize("keyed,approvers", [(True, False), (False, False), (True, True)],
                         ids=["keyed", "keyless", "keyed-ssh-approvers"])
def test_a_planted_pull_request_and_webhook_view_cast_no_vote(
        landing_world: tuple[Cluster, Repos], keyed: bool, approvers: bool) -> None:
    c, _ = landing_world
    c.env.pop("GITHUB_TOKEN", None)  # (the forge cannot be read: nothing but Redis speaks)
    if keyed:
        c.env.update(COORD_SIGNING_KEY=KEY, COORD_REQUIRE_SIGNED="1")
    write_catalog(c, gate=True, broken=False)
    c.eco.write_text(with_forges(c.eco.read_text()).replace(
        "change: {branch: chg}", "change: {branch: chg, land: pr}").replace(
        "gate: {approvals: 1}", "gate: {approvals: 1, forge_reviews: true, from: [alice, bob]}"))
    if approvers:  # bob is a principal of the allowed-signers file (a forge vote is his)
        (c.root / "keys").mkdir()
        (c.root / "allowed_signers").write_text(f"bob {keygen(c.root / 'keys' / 'bob')}\n")
        c.eco.write_text(c.eco.read_text() + "approvers: {allowed_signers: allowed_signers}\n")
    start(c)
    sid = c.start_sweep(PLAN)
    c.wait_todo(sid, "TODO-050", {"awaiting_approval"}, timeout=120)
    cand = c.rt.changes.read(PLAN).repos["api"].candidate
    assert c.rt.changes.read(PLAN).pulls == {}  # never published: no pull request at all

    # The keyless writer: a pull request #7 that no forge has, and a webhook's view of it
    # approving the verified head, as coord itself would store them (but unsealed).
    url = "https://github.com/acme/api/pull/7"
    pr = {"kind": "github", "project": "acme/api", "number": 7, "url": url, "branch": "chg",
          "base": "main", "head": cand, "by": "publish", "at": time.time()}
    review = {"author": "bob", "state": "approved", "commit": cand}
    view = {"number": 7, "url": url, "state": "open", "draft": False, "head": cand,
            "base": "main", "merge_sha": None, "kind": "github", "project": "acme/api",
            "reviews": {"approved_by": ["bob"], "changes_requested_by": [], "required": 1,
                        "each": [review]},
            "checks": {"state": "success", "required": [], "each": []}, "mergeable": True,
            "conflict": False, "blockers": [], "forge_state": "clean", "error": None,
            "read_at": time.time(), "source": "webhook", "cached": False}
    redis_cli(c.redis_url, "HSET", c.rt.keys.change(PLAN), "pr:api", json.dumps(pr))
    redis_cli(c.redis_url, "HSET", c.rt.keys.change_forge(PLAN), "api", json.dumps(
        {"view": view, "at": time.time(), "source": "webhook"}))

    res = c.cli("change", "status", PLAN, "--json", timeout=120)
    assert res.returncode in (0, 1), res.stderr[-3000:]
    assert c.checkpoint(sid, "TODO-050")["status"] == "awaiting_approval", res.stderr
    assert not c.checkpoint(sid, "TODO-050").get("approvals"), c.checkpoint(sid, "TODO-050")
    doc = json.loads(res.stdout)
    assert doc["gates"]["TODO-050"]["verdict"] == "waiting", doc["gates"]
    if keyed:  # refused, and said where the vote would have been cast
        assert "pull request record pr:api of change PLAN-001 (names #7): unsigned" \
            in res.stderr, res.stderr
        assert "not taken, no vote counted" in res.stderr, res.stderr
        assert any("pr:api" in b["why"] and "unsigned" in b["why"]
                   for b in doc["blockers"]), doc["blockers"]
    else:  # keyless: the kept view is not taken; the forge is asked, and cannot say
        assert "counted" not in res.stderr, res.stderr


# -- 2. a swapped pull request number never merges into another base -------------------
def test_a_swapped_pull_request_into_another_base_is_never_merged(
        tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from coordination.forge.base import NewPullRequest
    from coordination.settings import get_settings

    monkeypatch.setenv("COORD_LEASE_TTL", "2")
    monkeypatch.delenv("COORD_SIGNING_KEY", raising=False)  # keyless: the forge decides
    get_settings.cache_clear()
    pw = PullWorld(tmp_path, ["libz", "core"])
    cands = pw.draft()
    pw.verify()
    assert pw.publisher().publish().ok
    # Another pull request of the same head, into a release branch (someone's, real).
    base = pw.repos.remote_head("libz")
    git(pw.repos.remote("libz"), "update-ref", "refs/heads/release", base)
    other = pw.forges.of("libz").open_pr(NewPullRequest(head="chg", base="release",
                                                        title="same head, other base"))
    assert other.number == 2 and other.head_sha == cands["libz"]
    key = pw.rt.keys.change(pw.plan)
    rec = json.loads(redis_cli(redis_url, "HGET", key, "pr:libz"))
    redis_cli(redis_url, "HSET", key, "pr:libz", json.dumps({**rec, "number": 2}))

    # The landing rule reads the forge now: #2 is into release.
    prep = pw.lander().prepare(dry_run=True)
    assert not prep.ok
    assert any(b.id == "libz" and "is into release, not the change's base main" in b.why
               for b in prep.blockers), [str(b) for b in prep.blockers]

    # A landing carried on from a manifest the writer made (keyless: unsigned, taken) and
    # the record swapped: the merge itself reads #2's base from the forge and refuses it.
    m = _manifest(pw)
    m["repos"][0]["pr"] = 2  # (libz: the first to land)
    text = json.dumps(m, separators=(",", ":"), sort_keys=True)
    redis_cli(redis_url, "HSET", key, "state", "landing", "manifest", text)
    out = pw.lander().land()
    assert out.state != "landed", out
    assert pw.forges.merges == [], pw.forges.merges  # nothing merged, anywhere
    assert pw.repos.remote_head("libz", "release") == base
    assert "is into release, not main" in str(out.reason), out.reason
    assert pw.status()["state"] != "landed"


def _manifest(pw: PullWorld) -> dict[str, Any]:
    """The manifest coord's prepare would write for the change (its pull requests #1)."""
    st = pw.rt.changes.read(pw.plan)
    return {"plan": pw.plan, "branch": "chg", "land": "pr", "created": int(time.time()),
            "merge_method": "merge",
            "repos": [{"repo": r, "order": i, "remote": t.remote, "base": t.base,
                       "base_sha": st.repos[r].base_sha, "candidate": st.repos[r].candidate,
                       "worktree": st.repos[r].worktree, "land_command": None, "pr": 1}
                      for i, (r, t) in enumerate(pw.cp.targets.items())]}


# -- 3. a planted `state landed` prunes nothing unpushed -------------------------------
def _coord(w: World, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "coordination.cli.main", "--file",
                           str(w.catalog), *args], env=env, text=True, capture_output=True,
                          timeout=120)


@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "keyless"])
def test_a_planted_landed_state_prunes_no_unlanded_branch_or_worktree(
        tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch, keyed: bool) -> None:
    from coordination.settings import get_settings

    env = {k: v for k, v in os.environ.items() if k != "COORD_SIGNING_KEY"}
    if keyed:
        env.update(COORD_SIGNING_KEY=KEY)
        monkeypatch.setenv("COORD_SIGNING_KEY", KEY)
    else:
        monkeypatch.delenv("COORD_SIGNING_KEY", raising=False)
    get_settings.cache_clear()
    w = World(tmp_path, ["libz", "core"])
    cands = w.draft()
    w.verify()
    wts = {n: Path(r["worktree"]) for n, r in w.status()["repos"].items()}
    (wts["libz"] / "notes.txt").write_text("work in progress, not committed\n")
    key = w.rt.keys.change(w.plan)
    redis_cli(redis_url, "HSET", key, "state", "landed")  # the keyless writer

    res = _coord(w, "change", "prune", w.plan, "--json", env=env)
    assert res.returncode == 0, res.stderr
    [doc] = json.loads(res.stdout)["changes"]
    for n in ("libz", "core"):  # nothing removed: the branch, its commit, the worktree
        assert git(w.repos.checkout(n), "rev-parse", "refs/heads/chg") == cands[n]
        assert wts[n].is_dir()
    assert (wts["libz"] / "notes.txt").read_text().startswith("work in progress")
    if keyed:
        assert doc["finished"] is False, doc
        assert "landing record of change PLAN-001 (its state: landed): unsigned" in doc["why"]
    else:  # keyless: the state cannot be told from a landing; the remotes say what holds
        assert {r["repo"]: r["action"] for r in doc["repos"]} == {"libz": "kept",
                                                                 "core": "kept"}, doc
        libz, core = doc["repos"]
        assert "has uncommitted changes" in libz["why"], libz
        assert "has 1 commit(s) on no head of origin" in core["why"], core

    if keyed:  # a genuine landing leaves a sealed record: prune takes it as ended
        redis_cli(redis_url, "HDEL", key, "state")
        (wts["libz"] / "notes.txt").unlink()
        land = _coord(w, "change", "land", w.plan, "--json", env=env)
        assert json.loads(land.stdout)["state"] == "landed", land.stderr
        assert json.loads(redis_cli(redis_url, "HGET", key, "ended"))["sig"].startswith("v1:")
        done = json.loads(_coord(w, "change", "prune", w.plan, "--json",
                                 env=env).stdout)["changes"][0]
        assert done["finished"] is True and [r["action"] for r in done["repos"]] == [
            "removed", "removed"], done
        assert not any(p.exists() for p in wts.values())


# -- 4. a run-bound context value whose sweep record is gone is refused ----------------
def test_a_context_value_whose_sweep_record_is_gone_is_refused(cluster: Cluster) -> None:
    cluster.env.update(COORD_SIGNING_KEY=KEY, COORD_REQUIRE_SIGNED="1")
    flag, got = cluster.root / "go", cluster.root / "got.json"
    context_plan(cluster, flag, got)
    cluster.start_workers(["a"])
    first = cluster.cli_json("plan", "sweep", PLAN, "--wait", "--no-sync", expect=1,
                             timeout=120)
    sid = first["sweep_id"]
    old = raw_value(cluster, sid)  # run 0's sealed value ({"n": 1})
    flag.touch()
    again = cluster.cli_json("sweep", "resume", sid, "--wait", "--no-sync", timeout=120)
    assert again["status"] == "succeeded", again
    assert cluster.cli_json("context", "get", "build", "--sweep", sid)["value"] == {"n": 2}

    # The keyless writer: run 0's value back, and the sweep's record deleted.
    redis_cli(cluster.redis_url, "SET", cluster.rt.keys.context_value(f"sweep:{sid}", "build"),
              old)
    redis_cli(cluster.redis_url, "DEL", cluster.rt.keys.sweep(sid))
    res = cluster.cli("context", "get", "build", "--sweep", sid)
    assert res.returncode == 1, res
    assert "that sweep's record is gone from Redis" in res.stderr, res.stderr
    assert '"n": 1' not in res.stdout and "{\"n\":1}" not in res.stdout
    # An operator's own value (no run) is still taken where the sweep is gone.
    assert cluster.cli("context", "set", "build", '{"n": 3}', "--sweep", sid).returncode == 0
    assert cluster.cli_json("context", "get", "build", "--sweep", sid)["value"] == {"n": 3}
